"""Whether this process runs in a user namespace other than the host's."""

from __future__ import annotations


def in_user_namespace() -> bool:
    """True unless /proc/self/uid_map is the initial namespace's identity map.

    Inside one, rootlet is rootless whatever its uid says: mknod is
    forbidden, /run is not ours, and cgroups are delegated or absent."""
    try:
        with open("/proc/self/uid_map") as mapping:
            return mapping.read().split() != ["0", "0", "4294967295"]
    except OSError:
        return False
