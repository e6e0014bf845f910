"""The config.json that `rootlet spec` writes: runc's defaults (an isolated
busybox-style shell), and with --rootless the variant an unprivileged user
can run: a user namespace mapping the caller to root, no network namespace
(its sysfs could not be mounted), /sys bound from the host, no devpts gid.
Unlike runc's, both carry a default seccomp profile (spec/seccomp_default.py)."""

from __future__ import annotations

import os

from runtime import jsonio
from runtime.errors import RootletError
from runtime.spec import seccomp_default

_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
_MASKED = [
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
]
_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def default_config(*, rootless: bool) -> dict:
    devpts = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
    if rootless:
        sysfs = {"destination": "/sys", "type": "none", "source": "/sys",
                 "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
    else:
        devpts.append("gid=5")
        sysfs = {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                 "options": ["nosuid", "noexec", "nodev", "ro"]}
    config = {
        "ociVersion": "1.2.0",
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {name: list(_CAPS) for name in ("bounding", "effective", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "rootlet",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": devpts},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            sysfs,
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
                           {"type": "mount"}],
            "maskedPaths": list(_MASKED),
            "readonlyPaths": list(_READONLY),
            "seccomp": seccomp_default.profile(),
        },
    }
    if rootless:
        linux = config["linux"]
        del linux["resources"]
        linux["namespaces"] = [{"type": kind} for kind in ("pid", "ipc", "uts", "mount", "user")]
        linux["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    return config


def write_default(bundle: str, *, rootless: bool) -> None:
    path = f"{bundle}/config.json"
    if os.path.exists(path):
        raise RootletError(f"{path} already exists; remove it first")
    with open(path, "x") as stream:
        stream.write(jsonio.dumps(default_config(rootless=rootless), indent=2) + "\n")
