"""The rootfs of a container that has no mount namespace of its own.

config-linux.md lets a config leave out the mount namespace: the container
then lives in the runtime's, so its mounts (config.mounts, /dev, the masks)
are the host's too. rootlet confines them to one place and takes them back
at delete: before the init is forked, the rootfs is bound onto itself and
made private (or given linux.rootfsPropagation), so every later mount lands
under that bind and nothing propagates from it to the host's peers; delete
detaches the bind, and with it everything below, in one lazy unmount. The
init chroots into the rootfs instead of pivot_root, which would move the
host's root. The bind's mount id, kept in the container's state, makes sure
delete only ever detaches the mount that create made.
"""

from __future__ import annotations

import os

from runtime import _linux, mountopts
from runtime.errors import RootletError
from runtime.sys import constants as k
from runtime.sys.calls import fail, mount


def bind(rootfs: str, propagation: str) -> int:
    """Bind the rootfs onto itself in the host's mount namespace; returns the
    bind's mount id."""
    mount(rootfs, rootfs, None, k.MS_BIND | k.MS_REC,
          step="bind the rootfs onto itself (the container has no mount namespace)")
    try:
        mount(None, rootfs, None, mountopts.PROPAGATION.get(propagation, k.MS_PRIVATE | k.MS_REC),
              step="set the propagation of the rootfs bind")
        return mount_id(rootfs)
    except BaseException:
        _linux.umount2(rootfs, k.MNT_DETACH)
        raise


def release(rootfs: str, bound: int) -> None:
    """Detach the bind that bind() made, and every mount below it; a rootfs
    whose top mount is another (or that is gone) is left alone."""
    try:
        if mount_id(rootfs) != bound:
            return
        _linux.umount2(rootfs, k.MNT_DETACH)
    except (OSError, RootletError):
        return


def mount_id(path: str) -> int:
    """The id of the mount `path` is on (/proc/self/fdinfo: statx's
    STATX_MNT_ID without statx, which Python's os lacks)."""
    try:
        fd = os.open(path, k.O_PATH | os.O_CLOEXEC)
    except OSError as err:
        raise fail(f"open {path}", err) from None
    try:
        with open(f"/proc/self/fdinfo/{fd}") as info:
            for line in info:
                if line.startswith("mnt_id:"):
                    return int(line.split()[1])
    finally:
        os.close(fd)
    raise RootletError(f"no mount id for {path} in /proc/self/fdinfo")
