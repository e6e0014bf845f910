"""OCI bundles for the integration tests.

The busybox rootfs is built once per session into a template directory
(the same layout as scripts/make-bundle produces) and copied per test; the
config.json is generated from :func:`default_config`, a dict modelled on the
output of ``runc spec`` (with ``terminal: false``), which each test edits
before calling :meth:`Bundle.write`.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
DEFAULT_HOSTNAME = "rootlet-ct"

_ROOTFS_DIRS = (
    "bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp",
    "root", "home", "var/tmp", "mnt",
)


def busybox_path() -> str:
    path = shutil.which("busybox")
    if path is None:
        raise RuntimeError("busybox (Debian busybox-static) is not installed")
    return os.path.realpath(path)


def build_rootfs_template(dest: Path) -> Path:
    """Create a busybox rootfs at *dest* (what scripts/make-bundle does)."""
    dest.mkdir(parents=True)
    for d in _ROOTFS_DIRS:
        (dest / d).mkdir(parents=True, exist_ok=True)
    os.chmod(dest / "tmp", 0o1777)
    bb = dest / "bin" / "busybox"
    shutil.copy2(busybox_path(), bb)
    os.chmod(bb, 0o755)
    applets = subprocess.run(
        [str(bb), "--list"], check=True, capture_output=True, text=True
    ).stdout.split()
    for applet in applets:
        link = dest / "bin" / applet
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    (dest / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/:/bin/false\n"
    )
    (dest / "etc" / "group").write_text("root:x:0:\nnobody:x:65534:\n")
    return dest


def default_mounts() -> list[dict]:
    return [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": [
                "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5",
            ],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
    ]


MASKED_PATHS = [
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
    "/proc/scsi",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def default_config(args: list[str] | None = None) -> dict:
    """A config.json dict shaped like ``runc spec``'s default (terminal off)."""
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": list(args) if args else ["sh"],
            "env": [DEFAULT_PATH, "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": list(DEFAULT_CAPS),
                "effective": list(DEFAULT_CAPS),
                "permitted": list(DEFAULT_CAPS),
                "ambient": list(DEFAULT_CAPS),
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": DEFAULT_HOSTNAME,
        "mounts": default_mounts(),
        "linux": {
            "namespaces": [
                {"type": "pid"},
                {"type": "network"},
                {"type": "ipc"},
                {"type": "uts"},
                {"type": "mount"},
            ],
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }


def rootless_config(uid: int, gid: int, args: list[str] | None = None) -> dict:
    """``spec --rootless`` semantics for host user uid/gid."""
    cfg = default_config(args)
    linux = cfg["linux"]
    linux["namespaces"] = [
        {"type": t} for t in ("pid", "ipc", "uts", "mount", "user")
    ]
    linux["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": 1}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": gid, "size": 1}]
    for m in cfg["mounts"]:
        if m["destination"] == "/dev/pts":
            m["options"] = [o for o in m["options"] if o != "gid=5"]
        if m["destination"] == "/sys":
            m.update(
                type="none",
                source="/sys",
                options=["rbind", "nosuid", "noexec", "nodev", "ro"],
            )
    return cfg


class Bundle:
    """A bundle directory ``<base>/bundle-<token>`` with rootfs and config."""

    def __init__(self, base: Path, template: Path, token: str):
        self.token = token
        self.path = base / f"bundle-{token}"
        self.rootfs = self.path / "rootfs"
        self.path.mkdir(mode=0o755)
        shutil.copytree(template, self.rootfs, symlinks=True)
        self.config = default_config()
        self._shared: Path | None = None

    # -- config helpers -------------------------------------------------
    @property
    def process(self) -> dict:
        return self.config["process"]

    @property
    def linux(self) -> dict:
        return self.config["linux"]

    def args(self, *argv: str) -> Bundle:
        self.process["args"] = list(argv)
        return self

    def sh(self, script: str) -> Bundle:
        """Run *script* with ``sh -c``; ``$0`` is the unique token so the
        process can be found on the host by its command line."""
        return self.args("sh", "-c", script, self.token)

    def add_mount(self, destination: str, source: str, type_: str = "none",
                  options: list[str] | None = None) -> Bundle:
        m = {"destination": destination, "type": type_, "source": str(source)}
        if options is not None:
            m["options"] = list(options)
        self.config["mounts"].append(m)
        return self

    def bind(self, source: str | Path, destination: str, *opts: str) -> Bundle:
        return self.add_mount(destination, str(source), "bind", ["bind", *opts])

    def set_namespaces(self, *types: str) -> Bundle:
        self.linux["namespaces"] = [{"type": t} for t in types]
        return self

    def namespace_types(self) -> list[str]:
        return [ns["type"] for ns in self.linux["namespaces"]]

    def drop_namespace(self, type_: str) -> Bundle:
        self.linux["namespaces"] = [
            ns for ns in self.linux["namespaces"] if ns["type"] != type_
        ]
        return self

    def shared_dir(self, destination: str = "/out") -> Path:
        """A world-writable host directory bind-mounted rw at *destination*."""
        if self._shared is None:
            self._shared = self.path.parent / f"out-{self.token}"
            self._shared.mkdir()
            os.chmod(self._shared, 0o777)
            # pre-create the mount point: root in a user namespace may not
            # be able to create it in a rootfs owned by the host's root
            (self.rootfs / destination.lstrip("/")).mkdir(parents=True, exist_ok=True)
            self.bind(self._shared, destination, "rw")
        return self._shared

    def write(self, config: dict | None = None) -> Bundle:
        if config is not None:
            self.config = config
        with open(self.path / "config.json", "w") as f:
            json.dump(self.config, f, indent=1)
        return self

    def write_raw(self, text: str) -> Bundle:
        (self.path / "config.json").write_text(text)
        return self

    def clone_config(self) -> dict:
        return copy.deepcopy(self.config)

    def chown_all(self, uid: int, gid: int) -> None:
        for top in [self.path] + ([self._shared] if self._shared else []):
            os.lchown(top, uid, gid)
            for dirpath, dirnames, filenames in os.walk(top):
                for name in dirnames + filenames:
                    os.lchown(os.path.join(dirpath, name), uid, gid)
