"""Capability names (linux/capability.h) and the sets of config.json as bit masks."""

from __future__ import annotations

from runtime import log

NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
NUMBERS = {name: number for number, name in enumerate(NAMES)}


_last: list[int] = []


def last_supported() -> int:
    """The highest capability this kernel knows (/proc/sys/kernel/cap_last_cap), read once."""
    if not _last:
        try:
            with open("/proc/sys/kernel/cap_last_cap") as text:
                _last.append(int(text.read()))
        except OSError:
            _last.append(len(NAMES) - 1)
    return _last[0]


def mask(names: list[str], where: str) -> int:
    """A bit mask of the named capabilities. Names unknown to rootlet or to
    this kernel are skipped with a warning, as runc does, so that one config
    serves several kernels."""
    bits = 0
    top = last_supported()
    for index, name in enumerate(names):
        number = NUMBERS.get(name)
        if number is None or number > top:
            log.warning(f"{where}[{index}]: capability {name!r} is unknown to this kernel; ignored")
            continue
        bits |= 1 << number
    return bits
