"""The user's process: what both a container's init and `exec` do to it
between the last namespace and execve() (config.md "Process", "Linux Process").

The order matters: rlimits, the oom score and the bounding set need
privilege, so they come first; then the ids (keeping capabilities across the
switch); then the capability sets; no_new_privs last, just before the
seccomp filter that relies on it.
"""

from __future__ import annotations

import os
import stat

from runtime import _linux, capabilities
from runtime.errors import RootletError
from runtime.spec.model import Process
from runtime.sys import constants as k
from runtime.sys.calls import fail, write_file

_RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}


def env_pairs(env: list[str]):
    for entry in env:
        name, _, value = entry.partition("=")
        yield name, value


def home_of(uid: int) -> str:
    """HOME from the container's /etc/passwd, "/" without an entry (as runc)."""
    try:
        with open("/etc/passwd") as passwd:
            for line in passwd:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5] or "/"
    except OSError:
        pass
    return "/"


def find_program(name: str, env: list[str]) -> str:
    """process.args[0] looked up on the container's PATH, as execvp(3) would;
    checked before `create` returns so that a typo fails early."""
    if "/" in name:
        candidates = [name]
    else:
        path = dict(env_pairs(env)).get("PATH", "/usr/local/bin:/usr/bin:/bin")
        candidates = [f"{directory or '.'}/{name}" for directory in path.split(":")]
    for candidate in candidates:
        try:
            info = os.stat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode) and info.st_mode & 0o111:
            return candidate
    raise RootletError(f"executable file {name!r} not found in the container's $PATH",
                       path="process.args[0]")


def apply(process: Process, load_filter=None) -> None:
    """rlimits, oom score and no_new_privs first (they need privilege), then
    the user, then capabilities (config.md "Linux Process").

    `load_filter` installs linux.seccomp when there is no no_new_privs: then
    only CAP_SYS_ADMIN allows it, so it runs before the bounding set, the ids
    and the capabilities change (runc's order)."""
    for name, soft, hard in process.rlimits:
        try:
            _linux.set_rlimit(_RLIMITS[name], soft, hard)
        except OSError as err:
            raise fail(f"set {name} to {soft}:{hard}", err) from None
    if process.oom_score_adj is not None:
        write_file("/proc/self/oom_score_adj", str(process.oom_score_adj), step="write process.oomScoreAdj")
    if load_filter is not None and not process.no_new_privileges:
        load_filter()
    caps = process.capabilities
    _drop_bounding(capabilities.mask(caps["bounding"], "process.capabilities.bounding"))
    _set_user(process)
    _set_capabilities(caps)
    if process.no_new_privileges:
        _linux.prctl(k.PR_SET_NO_NEW_PRIVS, 1)
    os.chdir(process.cwd)
    os.umask(process.umask if process.umask is not None else 0o022)


def _drop_bounding(keep: int) -> None:
    for number in range(capabilities.last_supported() + 1):
        if not keep & (1 << number):
            try:
                _linux.prctl(k.PR_CAPBSET_DROP, number)
            except OSError as err:
                raise fail(f"drop {capabilities.NAMES[number]} from the bounding set", err) from None


def _set_user(process) -> None:
    try:
        with open("/proc/self/setgroups") as setgroups:
            may_set_groups = setgroups.read().strip() == "allow"
    except OSError:
        may_set_groups = True
    try:
        if may_set_groups:
            os.setgroups(process.additional_gids)
        elif process.additional_gids:
            raise RootletError("additional groups need setgroups, which this user namespace denies",
                               path="process.user.additionalGids")
        os.setresgid(process.gid, process.gid, process.gid)
        _linux.prctl(k.PR_SET_KEEPCAPS, 1)
        os.setresuid(process.uid, process.uid, process.uid)
        _linux.prctl(k.PR_SET_KEEPCAPS, 0)
    except OSError as err:
        raise fail(f"switch to user {process.uid}:{process.gid}", err) from None


def _set_capabilities(caps: dict) -> None:
    masks = {name: capabilities.mask(caps[name], f"process.capabilities.{name}") for name in caps}
    try:
        _linux.set_capabilities(masks["effective"], masks["permitted"], masks["inheritable"])
        _linux.prctl(k.PR_CAP_AMBIENT, k.PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError as err:
        raise fail("set capabilities", err) from None
    # The kernel raises an ambient capability only if it is also permitted and
    # inheritable; runc skips the others quietly, and so do we.
    for number in range(capabilities.last_supported() + 1):
        if masks["ambient"] & (1 << number):
            try:
                _linux.prctl(k.PR_CAP_AMBIENT, k.PR_CAP_AMBIENT_RAISE, number)
            except OSError:
                continue




def environment(process: Process, extra: dict[str, str]) -> dict[str, str]:
    env = dict(env_pairs(process.env))
    if "HOME" not in env:
        env["HOME"] = home_of(process.uid)
    env.update(extra)
    return env


def execute(process: Process, program: str, extra_env: dict[str, str], filter_plan=None,
            report_fd: int = -1) -> None:
    """execve() the user's program; on failure say why on stderr (and on
    `report_fd`, which `start` reads) and exit 127. With `filter_plan` (a
    runtime.seccomp.SeccompPlan) the filter goes in right before, so that the
    fewest calls happen under it."""
    env = environment(process, extra_env)
    try:
        if filter_plan is not None:
            from runtime import seccomp

            seccomp.load(filter_plan)
        os.execve(program, process.args, env)
    except (OSError, RootletError) as err:
        message = f"exec {process.args[0]}: {getattr(err, 'strerror', None) or err}"
        os.write(2, f"rootlet: {message}\n".encode())
        if report_fd >= 0:
            os.write(report_fd, message.encode())
        os._exit(127)
