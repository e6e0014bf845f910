"""Resolve paths inside a rootfs without ever leaving it.

A mount destination such as /etc/evil may be a symlink to /tmp/hostdir
planted by the image (the CVE-2021-30465 class). openat2(RESOLVE_IN_ROOT)
resolves it as if the rootfs were "/", so it lands on rootfs/tmp/hostdir; the
resulting O_PATH fd is then used as /proc/self/fd/N for mount(2), so no path
is looked up twice.
"""

from __future__ import annotations

import errno
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
    and the last component as a directory or an empty file. A dangling
    symlink on the way is followed inside the root: what it names is created."""
    try:
        return _ensure(root_fd, path, is_dir, 0)
    except OSError as err:
        raise fail(f"create {path} in the rootfs", err) from None


def _ensure(root_fd: int, path: str, is_dir: bool, depth: int) -> int:
    try:
        return open_in_root(root_fd, path)
    except FileNotFoundError:
        pass
    if depth > 40:
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
    parts = [part for part in path.split("/") if part and part != "."]
    parent = os.dup(root_fd)
    try:
        for index, part in enumerate(parts):
            prefix = "/".join(parts[: index + 1])
            try:
                fd = open_in_root(root_fd, prefix)
            except FileNotFoundError:
                target = _symlink_target(parent, part)
                if target is not None:
                    base = "/" + "/".join(parts[:index])
                    rest = "/".join(parts[index + 1:])
                    resolved = target if target.startswith("/") else f"{base}/{target}"
                    return _ensure(root_fd, f"{resolved}/{rest}" if rest else resolved, is_dir, depth + 1)
                _create(parent, part, directory=is_dir or index < len(parts) - 1)
                fd = open_in_root(root_fd, prefix)
            os.close(parent)
            parent = fd
        result, parent = parent, -1
        return result
    finally:
        if parent >= 0:
            os.close(parent)


def _symlink_target(parent_fd: int, name: str) -> str | None:
    try:
        return os.readlink(name, dir_fd=parent_fd)
    except OSError:
        return None


def _create(parent_fd: int, name: str, *, directory: bool) -> None:
    try:
        if directory:
            os.mkdir(name, 0o755, dir_fd=parent_fd)
        else:
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o755, dir_fd=parent_fd))
    except FileExistsError:
        pass  # a racing creator: the caller's openat2 decides
