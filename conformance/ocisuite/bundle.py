"""Test bundles: a busybox rootfs and a config.json generated in Python.

The rootfs is Debian's busybox-static plus a symlink per applet, built once
per run into a template on /dev/shm (tmpfs: copying it per check costs a few
milliseconds) and copied for every bundle; busybox itself is hard-linked.
The config starts from runc-style defaults (what ``runc spec`` writes, with
``terminal: false`` so that output can be captured) and each check edits it.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path

DEFAULT_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"]
DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
DEFAULT_OCI_VERSION = "1.0.2-dev"
ROOTFS_DIRS = ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp",
               "root", "home", "var/tmp", "mnt")
MASKED_PATHS = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def find_busybox() -> Path:
    """The static busybox: it must run inside a rootfs that has no libc."""
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.exists(candidate):
            return Path(os.path.realpath(candidate))
    found = shutil.which("busybox")
    if found is None:
        raise RuntimeError("busybox is not installed (Debian: apt-get install busybox-static)")
    return Path(os.path.realpath(found))


def build_rootfs_template(dest: Path) -> Path:
    """Lay out a minimal busybox root filesystem at *dest*."""
    for directory in ROOTFS_DIRS:
        (dest / directory).mkdir(parents=True, exist_ok=True)
    os.chmod(dest / "tmp", 0o1777)
    busybox = dest / "bin" / "busybox"
    shutil.copy2(find_busybox(), busybox)
    os.chmod(busybox, 0o755)
    applets = subprocess.run([str(busybox), "--list"], check=True, capture_output=True,
                             text=True).stdout.split()
    for applet in applets:
        link = dest / "bin" / applet
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    (dest / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                         "nobody:x:65534:65534:nobody:/:/bin/false\n")
    (dest / "etc" / "group").write_text("root:x:0:\nnobody:x:65534:\n")
    return dest


def default_mounts() -> list[dict]:
    """The mounts ``runc spec`` lists, in its order."""
    return [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
    ]


def default_config(args: list[str]) -> dict:
    """A config shaped like ``runc spec``'s output, terminal off."""
    return {
        "ociVersion": DEFAULT_OCI_VERSION,
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": list(args),
            "env": list(DEFAULT_ENV),
            "cwd": "/",
            "capabilities": {key: list(DEFAULT_CAPS)
                             for key in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "conformance",
        "mounts": default_mounts(),
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }


class Bundle:
    """A bundle directory: ``rootfs/`` copied from the template plus ``config``."""

    def __init__(self, path: Path, template: Path, args: list[str]):
        self.path = path
        self.rootfs = path / "rootfs"
        path.mkdir(parents=True)
        shutil.copytree(template, self.rootfs, symlinks=True, copy_function=_link_or_copy)
        self.config = default_config(args)

    @property
    def process(self) -> dict:
        return self.config["process"]

    @property
    def linux(self) -> dict:
        return self.config["linux"]

    def sh(self, script: str) -> Bundle:
        """Make the container's process ``sh -c SCRIPT``."""
        self.process["args"] = ["sh", "-c", script]
        return self

    def add_mount(self, destination: str, source: str, mount_type: str | None,
                  options: list[str] | None = None) -> Bundle:
        mount: dict = {"destination": destination, "source": str(source)}
        if mount_type is not None:
            mount["type"] = mount_type
        if options is not None:
            mount["options"] = list(options)
        self.config["mounts"].append(mount)
        return self

    def bind(self, source: Path | str, destination: str, *options: str) -> Bundle:
        return self.add_mount(destination, str(source), "bind", ["bind", *options])

    def namespaces(self, *types: str) -> Bundle:
        self.linux["namespaces"] = [{"type": t} for t in types]
        return self

    def add_namespace(self, ns_type: str, path: str | None = None) -> Bundle:
        self.linux["namespaces"] = [n for n in self.linux["namespaces"] if n["type"] != ns_type]
        entry = {"type": ns_type}
        if path is not None:
            entry["path"] = path
        self.linux["namespaces"].append(entry)
        return self

    def drop_namespace(self, ns_type: str) -> Bundle:
        self.linux["namespaces"] = [n for n in self.linux["namespaces"] if n["type"] != ns_type]
        return self

    def mkdir_in_rootfs(self, path: str, mode: int = 0o755) -> Path:
        target = self.rootfs / path.lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        os.chmod(target, mode)
        return target

    def write(self) -> Bundle:
        with open(self.path / "config.json", "w") as out:
            json.dump(self.config, out, indent=1)
        return self

    def clone_config(self) -> dict:
        return copy.deepcopy(self.config)


def _link_or_copy(src: str, dst: str) -> None:
    """Hard-link the busybox binary (same tmpfs, 2 MB saved per bundle); copy
    the small files, which a check with a writable root may change."""
    if os.path.getsize(src) > 64 * 1024:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass
    shutil.copy2(src, dst)
