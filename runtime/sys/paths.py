"""Resolve paths inside a rootfs without ever leaving it.

A mount destination such as /etc/evil may be a symlink to /tmp/hostdir
planted by the image (the CVE-2021-30465 class). openat2(RESOLVE_IN_ROOT)
resolves it as if the rootfs were "/", so it lands on rootfs/tmp/hostdir; the
resulting O_PATH fd is then used as /proc/self/fd/N for mount(2), so no path
is looked up twice.
"""

from __future__ import annotations

import os

from runtime import _linux
from runtime.sys import constants as k
from runtime.sys.calls import fail

_RESOLVE = k.RESOLVE_IN_ROOT | k.RESOLVE_NO_MAGICLINKS
_PATH_FLAGS = k.O_PATH | os.O_CLOEXEC


def open_in_root(root_fd: int, path: str) -> int:
    """An O_PATH fd for `path` resolved inside the root; raises OSError."""
    return _linux.openat2(root_fd, path, _PATH_FLAGS, _RESOLVE)


def fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def ensure_in_root(root_fd: int, path: str, *, is_dir: bool = True) -> int:
    """Open `path` inside the root, creating missing parents as directories
    and the last component as a directory or an empty file."""
    try:
        return open_in_root(root_fd, path)
    except FileNotFoundError:
        pass
    parts = [part for part in path.split("/") if part and part != "."]
    parent = os.dup(root_fd)
    try:
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            prefix = "/".join(parts[: index + 1])
            try:
                fd = open_in_root(root_fd, prefix)
            except FileNotFoundError:
                _create(parent, part, directory=is_dir or not last)
                fd = open_in_root(root_fd, prefix)
            os.close(parent)
            parent = fd
        result, parent = parent, -1
        return result
    except OSError as err:
        raise fail(f"create {path} in the rootfs", err) from None
    finally:
        if parent >= 0:
            os.close(parent)


def _create(parent_fd: int, name: str, *, directory: bool) -> None:
    try:
        if directory:
            os.mkdir(name, 0o755, dir_fd=parent_fd)
        else:
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o755, dir_fd=parent_fd))
    except FileExistsError:
        pass  # a racing creator or a dangling symlink: the caller's openat2 decides
