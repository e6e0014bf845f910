"""config-linux.md: devices and default devices, sysctl, maskedPaths,
readonlyPaths, rootfsPropagation, personality."""

from __future__ import annotations

import os

from ..context import Context
from ..inspect import mount_at, parse_mountinfo
from ..registry import Skip, check, expect

STAT_FORMAT = "%F|%t:%T|%a|%u:%g"  # type | major:minor (hex) | mode | owner


def _stat_lines(ctx: Context, paths: list[str], **bundle_changes) -> dict[str, str]:
    script = "; ".join(f"echo {p}=$(stat -c '{STAT_FORMAT}' {p} 2>/dev/null || echo missing)" for p in paths)
    bundle = ctx.bundle().sh(script)
    bundle.linux.update(bundle_changes)
    output = ctx.run(bundle)
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


@check("config-linux.md#devices", "MUST",
       "linux.devices entries exist with their type, numbers, fileMode, uid and gid")
def check_devices(ctx: Context) -> None:
    devices = [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666, "uid": 0, "gid": 0},
        {"path": "/dev/conformance-loop", "type": "b", "major": 7, "minor": 0, "fileMode": 0o640,
         "uid": 0, "gid": 6},
        {"path": "/dev/conformance-fifo", "type": "p", "fileMode": 0o600, "uid": 0, "gid": 0},
    ]
    seen = _stat_lines(ctx, [d["path"] for d in devices], devices=devices)
    wanted = {
        "/dev/fuse": "character special file|a:e5|666|0:0",
        "/dev/conformance-loop": "block special file|7:0|640|0:6",
        "/dev/conformance-fifo": "fifo|0:0|600|0:0",
    }
    wrong = {p: seen.get(p) for p, w in wanted.items() if seen.get(p) != w}
    expect(not wrong, f"devices differ (type|major:minor hex|mode|uid:gid): {wrong}")


@check("config-linux.md#devices", "MUST", "a device path where a non-matching file exists is an error")
def check_device_over_existing_file(ctx: Context) -> None:
    bundle = ctx.bundle()
    bundle.config["root"]["readonly"] = False
    (bundle.rootfs / "etc" / "not-a-device").write_text("regular file\n")
    bundle.linux["devices"] = [{"path": "/etc/not-a-device", "type": "c", "major": 1, "minor": 3}]
    container, _ = ctx.create(bundle)
    expect(container is None, "create accepted a device over an existing regular file")


DEFAULT_DEVICES = {
    "/dev/null": "character special file|1:3",
    "/dev/zero": "character special file|1:5",
    "/dev/full": "character special file|1:7",
    "/dev/random": "character special file|1:8",
    "/dev/urandom": "character special file|1:9",
    "/dev/tty": "character special file|5:0",
}


@check("config-linux.md#default-devices", "MUST",
       "/dev/null, zero, full, random, urandom and tty are supplied")
def check_default_devices(ctx: Context) -> None:
    seen = _stat_lines(ctx, list(DEFAULT_DEVICES))
    wrong = {p: seen.get(p) for p, w in DEFAULT_DEVICES.items() if not (seen.get(p) or "").startswith(w)}
    expect(not wrong, f"wrong or missing: {wrong}")


@check("config-linux.md#default-devices", "MUST",
       "/dev/ptmx is the container's /dev/pts/ptmx (bind mount or symlink)")
def check_default_ptmx(ctx: Context) -> None:
    script = ("readlink /dev/ptmx; stat -L -c '%d:%i' /dev/ptmx /dev/pts/ptmx")
    lines = ctx.run_script(ctx.bundle(), script).split()
    link = lines[0] if len(lines) == 3 else ""
    identities = lines[-2:]
    expect(len(identities) == 2 and identities[0] == identities[1],
           f"/dev/ptmx (link {link!r}) is not /dev/pts/ptmx: {identities}")


@check("config-linux.md#sysctl", "MUST", "sysctl values are set in the container's namespaces")
def check_sysctl(ctx: Context) -> None:
    bundle = ctx.bundle("sh", "-c", "echo net=$(cat /proc/sys/net/ipv4/ip_forward); "
                        "echo ipc=$(cat /proc/sys/kernel/shm_rmid_forced)")
    bundle.linux["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1"}
    output = ctx.run(bundle)
    expect("net=1" in output and "ipc=1" in output, f"sysctls read back {output.split()}")


@check("config-linux.md#masked-paths", "MUST", "maskedPaths (files and directories) cannot be read")
def check_masked_paths(ctx: Context) -> None:
    bundle = ctx.bundle("sh", "-c", "echo file=$(cat /secret-file 2>/dev/null); "
                        "echo dir=$(ls /secret-dir 2>/dev/null); "
                        "echo kcore=$(head -c 16 /proc/kcore | wc -c)")
    (bundle.rootfs / "secret-file").write_text("SECRET\n")
    bundle.mkdir_in_rootfs("/secret-dir")
    (bundle.rootfs / "secret-dir" / "inside").write_text("SECRET\n")
    bundle.linux["maskedPaths"] = ["/secret-file", "/secret-dir", "/proc/kcore"]
    output = ctx.run(bundle)
    expect("SECRET" not in output and "inside" not in output, f"masked content visible: {output.split()}")
    expect("kcore=0" in output, f"/proc/kcore is readable: {output.split()}")


@check("config-linux.md#readonly-paths", "MUST",
       "readonlyPaths are read-only; the rest of a writable root is not")
def check_readonly_paths(ctx: Context) -> None:
    bundle = ctx.bundle("sh", "-c", "for p in /etc /t /var/tmp; do touch $p/new 2>/dev/null "
                        "&& echo $p=writable || echo $p=readonly; done")
    bundle.config["root"]["readonly"] = False
    bundle.mkdir_in_rootfs("/t")
    bundle.add_mount("/t", "tmpfs", "tmpfs", [])
    bundle.linux["readonlyPaths"] = ["/etc", "/t"]
    output = ctx.run(bundle).split()
    expect(output == ["/etc=readonly", "/t=readonly", "/var/tmp=writable"], f"writability: {output}")


# rootfsPropagation value -> (predicate on the optional fields of "/", what is wanted)
ROOT_PROPAGATION = {
    "shared": (lambda p: any(f.startswith("shared:") for f in p), "shared:N"),
    "slave": (lambda p: any(f.startswith("master:") for f in p)
              and not any(f.startswith("shared:") for f in p), "master:N only"),
    "private": (lambda p: not p, "no propagation fields"),
    "unbindable": (lambda p: "unbindable" in p, "unbindable"),
}


def _register_root_propagation_check(value: str) -> None:
    holds, wanted = ROOT_PROPAGATION[value]

    def root_propagation_check(ctx: Context) -> None:
        shared_parent = ctx.tempdir("shared-parent", 0o755)
        ctx.host_mount("-t", "tmpfs", "tmpfs", str(shared_parent))
        ctx.host_mount("--make-shared", str(shared_parent))
        bundle = ctx.bundle(parent=shared_parent).sh("cat /proc/self/mountinfo")
        bundle.linux["rootfsPropagation"] = value
        root = mount_at(parse_mountinfo(ctx.run(bundle)), "/")
        expect(root is not None and holds(root.propagation),
               f"/ shows {root.propagation if root else None}, wanted {wanted} "
               "(rootfs on a shared host mount)")

    root_propagation_check.__name__ = f"check_rootfs_propagation_{value}"
    check("config-linux.md#rootfs-mount-propagation", "MUST",
          f"rootfsPropagation {value} is the propagation of /")(root_propagation_check)


for _value in ROOT_PROPAGATION:
    _register_root_propagation_check(_value)


@check("config-linux.md#personality", "MUST",
       "personality domain LINUX32 makes uname report a 32-bit machine",
       since="1.0.2")
def check_personality(ctx: Context) -> None:
    if os.uname().machine != "x86_64":
        raise Skip(f"check written for x86_64 hosts, this is {os.uname().machine}")
    bundle = ctx.bundle("uname", "-m")
    bundle.linux["personality"] = {"domain": "LINUX32"}
    output = ctx.run(bundle).strip()
    expect(output in ("i686", "i386"), f"uname -m printed {output!r}")
