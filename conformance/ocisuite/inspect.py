"""Reading what a container printed about itself: mountinfo, capability masks, namespaces."""

from __future__ import annotations

import os
from dataclasses import dataclass

# capabilities(7) numbering, index == capability number
CAPABILITY_NAMES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
]


def capability_mask(names: list[str]) -> int:
    mask = 0
    for name in names:
        mask |= 1 << CAPABILITY_NAMES.index(name)
    return mask


def capability_names(mask: int) -> list[str]:
    return [name for bit, name in enumerate(CAPABILITY_NAMES) if mask & (1 << bit)]


@dataclass
class MountEntry:
    """One line of /proc/PID/mountinfo, the fields the checks look at."""

    mount_point: str
    options: set[str]  # per-mount options (ro, nosuid, ...)
    propagation: list[str]  # optional fields: shared:N, master:N, unbindable
    fs_type: str
    source: str
    super_options: set[str]


def parse_mountinfo(text: str) -> list[MountEntry]:
    entries = []
    for line in text.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 7:
            continue
        separator = fields.index("-")
        entries.append(MountEntry(
            mount_point=_unescape(fields[4]),
            options=set(fields[5].split(",")),
            propagation=fields[6:separator],
            fs_type=fields[separator + 1],
            source=fields[separator + 2] if len(fields) > separator + 2 else "",
            super_options=set(fields[separator + 3].split(",")) if len(fields) > separator + 3 else set(),
        ))
    return entries


def mount_at(entries: list[MountEntry], mount_point: str) -> MountEntry | None:
    """The topmost (last listed) mount at *mount_point*: the one a path lookup sees."""
    found = None
    for entry in entries:
        if entry.mount_point == mount_point:
            found = entry
    return found


def _unescape(path: str) -> str:
    return path.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def host_namespace(ns_type: str) -> str:
    """The runtime namespace of *ns_type* as ``type:[inode]`` (what readlink shows)."""
    return os.readlink(f"/proc/self/ns/{ns_type}")


NS_FILES = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
            "user": "user", "cgroup": "cgroup", "time": "time"}


def status_fields(text: str) -> dict[str, str]:
    """/proc/PID/status as a dict (``CapEff`` -> ``000...``)."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields
