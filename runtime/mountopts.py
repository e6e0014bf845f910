"""Mount options of config.json split into what mount(2) and mount_setattr(2) take.

runc's vocabulary (config.md "Mounts" leaves options to the runtime): flags
such as `ro`/`nosuid`, their opposites (`rw`, `suid`), propagation (`rprivate`),
recursive variants (`rro`, `rnosuid`, applied to the whole tree with
mount_setattr AT_RECURSIVE), `bind`/`rbind`, and everything else passed to the
filesystem as data (`size=64m`, `mode=755`).
"""

from __future__ import annotations

from runtime.sys import constants as k

# option -> (clear?, flag)
_FLAGS: dict[str, tuple[bool, int]] = {
    "async": (True, k.MS_SYNCHRONOUS),
    "atime": (True, k.MS_NOATIME),
    "bind": (False, k.MS_BIND),
    "defaults": (False, 0),
    "dev": (True, k.MS_NODEV),
    "diratime": (True, k.MS_NODIRATIME),
    "dirsync": (False, k.MS_DIRSYNC),
    "exec": (True, k.MS_NOEXEC),
    "iversion": (False, k.MS_I_VERSION),
    "lazytime": (False, k.MS_LAZYTIME),
    "loud": (True, k.MS_SILENT),
    "mand": (False, k.MS_MANDLOCK),
    "noatime": (False, k.MS_NOATIME),
    "nodev": (False, k.MS_NODEV),
    "nodiratime": (False, k.MS_NODIRATIME),
    "noexec": (False, k.MS_NOEXEC),
    "noiversion": (True, k.MS_I_VERSION),
    "nolazytime": (True, k.MS_LAZYTIME),
    "nomand": (True, k.MS_MANDLOCK),
    "norelatime": (True, k.MS_RELATIME),
    "nostrictatime": (True, k.MS_STRICTATIME),
    "nosuid": (False, k.MS_NOSUID),
    "nosymfollow": (False, k.MS_NOSYMFOLLOW),
    "rbind": (False, k.MS_BIND | k.MS_REC),
    "relatime": (False, k.MS_RELATIME),
    "remount": (False, k.MS_REMOUNT),
    "ro": (False, k.MS_RDONLY),
    "rw": (True, k.MS_RDONLY),
    "silent": (False, k.MS_SILENT),
    "strictatime": (False, k.MS_STRICTATIME),
    "suid": (True, k.MS_NOSUID),
    "sync": (False, k.MS_SYNCHRONOUS),
}

# linux.rootfsPropagation values and propagation mount options -> mount(2) flags
PROPAGATION: dict[str, int] = {
    "private": k.MS_PRIVATE,
    "rprivate": k.MS_PRIVATE | k.MS_REC,
    "shared": k.MS_SHARED,
    "rshared": k.MS_SHARED | k.MS_REC,
    "slave": k.MS_SLAVE,
    "rslave": k.MS_SLAVE | k.MS_REC,
    "unbindable": k.MS_UNBINDABLE,
    "runbindable": k.MS_UNBINDABLE | k.MS_REC,
}

# recursive option -> (clear?, MOUNT_ATTR_*)
_RECURSIVE: dict[str, tuple[bool, int]] = {
    "rro": (False, k.MOUNT_ATTR_RDONLY),
    "rrw": (True, k.MOUNT_ATTR_RDONLY),
    "rnosuid": (False, k.MOUNT_ATTR_NOSUID),
    "rsuid": (True, k.MOUNT_ATTR_NOSUID),
    "rnodev": (False, k.MOUNT_ATTR_NODEV),
    "rdev": (True, k.MOUNT_ATTR_NODEV),
    "rnoexec": (False, k.MOUNT_ATTR_NOEXEC),
    "rexec": (True, k.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (False, k.MOUNT_ATTR_NODIRATIME),
    "rdiratime": (True, k.MOUNT_ATTR_NODIRATIME),
    "rrelatime": (False, k.MOUNT_ATTR_RELATIME),
    "rnorelatime": (True, k.MOUNT_ATTR__ATIME),
    "rnoatime": (False, k.MOUNT_ATTR_NOATIME),
    "ratime": (True, k.MOUNT_ATTR_NOATIME),
    "rstrictatime": (False, k.MOUNT_ATTR_STRICTATIME),
    "rnostrictatime": (True, k.MOUNT_ATTR_STRICTATIME),
    "rnosymfollow": (False, k.MOUNT_ATTR_NOSYMFOLLOW),
    "rsymfollow": (True, k.MOUNT_ATTR_NOSYMFOLLOW),
}

# mount(2) flags -> the mount_setattr(2) attributes that set them; atime
# modes are left out: a bind keeps its source's, a new mount gets its own
_ATTRIBUTES = (
    (k.MS_RDONLY, k.MOUNT_ATTR_RDONLY), (k.MS_NOSUID, k.MOUNT_ATTR_NOSUID), (k.MS_NODEV, k.MOUNT_ATTR_NODEV),
    (k.MS_NOEXEC, k.MOUNT_ATTR_NOEXEC), (k.MS_NODIRATIME, k.MOUNT_ATTR_NODIRATIME),
    (k.MS_NOSYMFOLLOW, k.MOUNT_ATTR_NOSYMFOLLOW),
)


def mount_attributes(flags: int) -> int:
    attributes = 0
    for flag, attribute in _ATTRIBUTES:
        if flags & flag:
            attributes |= attribute
    return attributes


# Flags that a bind mount only takes through a second, remounting call.
REMOUNT_FLAGS = (
    k.MS_RDONLY | k.MS_NOSUID | k.MS_NODEV | k.MS_NOEXEC | k.MS_NOATIME | k.MS_NODIRATIME
    | k.MS_RELATIME | k.MS_STRICTATIME | k.MS_NOSYMFOLLOW
)


class MountOptions:
    """What one mount's option list asks of the kernel."""

    __slots__ = ("flags", "propagation", "recursive_set", "recursive_clear", "data", "copy_up")

    def __init__(self) -> None:
        self.flags = 0
        self.propagation: list[int] = []
        self.recursive_set = 0
        self.recursive_clear = 0
        self.data: list[str] = []
        self.copy_up = False

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & k.MS_BIND)


def parse(options: list[str]) -> MountOptions:
    parsed = MountOptions()
    for option in options:
        if option in _FLAGS:
            clear, flag = _FLAGS[option]
            parsed.flags = parsed.flags & ~flag if clear else parsed.flags | flag
        elif option in PROPAGATION:
            parsed.propagation.append(PROPAGATION[option])
        elif option in _RECURSIVE:
            clear, attr = _RECURSIVE[option]
            if clear:
                parsed.recursive_clear |= attr
            else:
                parsed.recursive_set |= attr
        elif option == "tmpcopyup":
            parsed.copy_up = True
        else:
            parsed.data.append(option)
    return parsed


def known_options() -> list[str]:
    return sorted([*_FLAGS, *PROPAGATION, *_RECURSIVE, "tmpcopyup"])
