"""runtime-linux.md (file descriptors, /dev symlinks) and
config-linux.md#default-filesystems."""

from __future__ import annotations

import os

from ..context import Context
from ..inspect import mount_at, parse_mountinfo
from ..registry import check, expect

DEV_LINKS = {"/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0",
             "/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2"}
DEFAULT_FILESYSTEMS = {"/proc": "proc", "/sys": "sysfs", "/dev/pts": "devpts", "/dev/shm": "tmpfs"}


def _open_fds(pid: int) -> dict[int, str]:
    fd_dir = f"/proc/{pid}/fd"
    return {int(fd): os.readlink(f"{fd_dir}/{fd}") for fd in os.listdir(fd_dir)}


@check("runtime-linux.md#file-descriptors", "MUST",
       "by default only stdin, stdout and stderr are open in the process")
def check_only_stdio_fds(ctx: Context) -> None:
    container = ctx.must_create(ctx.bundle("sleep", "600"))
    container.must_start()
    fds = _open_fds(container.pid())
    expect(sorted(fds) == [0, 1, 2], f"open descriptors: {fds}")


@check("runtime-linux.md#file-descriptors", "MAY", "descriptors passed with --preserve-fds reach the process")
def check_preserved_fds(ctx: Context) -> None:
    passed = ctx.workdir / "passed-fd"
    passed.write_text("")
    open_fd3 = ("sh", "-c", f'exec 3>>"{passed}" && exec "$@"', "sh")
    bundle = ctx.bundle("sleep", "600")
    container = ctx.must_create(bundle, extra_args=("--preserve-fds", "1"), prefix=open_fd3)
    container.must_start()
    fds = _open_fds(container.pid())
    expect(fds.get(3) == str(passed), f"open descriptors: {fds}")
    expect(sorted(fds) == [0, 1, 2, 3], f"more than the preserved descriptor: {fds}")


@check("runtime-linux.md#dev-symbolic-links", "MUST",
       "/dev/fd, /dev/stdin, /dev/stdout, /dev/stderr link to /proc/self/fd")
def check_dev_symlinks(ctx: Context) -> None:
    script = "; ".join(f"echo {link}=$(readlink {link})" for link in DEV_LINKS)
    output = ctx.run_script(ctx.bundle(), script)
    seen = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)
    wrong = {link: seen.get(link) for link, target in DEV_LINKS.items() if seen.get(link) != target}
    expect(not wrong, f"links differ: {wrong}")


@check("config-linux.md#default-filesystems", "SHOULD",
       "/proc, /sys, /dev/pts, /dev/shm are proc, sysfs, devpts, tmpfs")
def check_default_filesystems(ctx: Context) -> None:
    entries = parse_mountinfo(ctx.run(ctx.bundle("cat", "/proc/self/mountinfo")))
    seen = {point: getattr(mount_at(entries, point), "fs_type", None) for point in DEFAULT_FILESYSTEMS}
    expect(seen == DEFAULT_FILESYSTEMS, f"filesystems: {seen}")
