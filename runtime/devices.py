"""Device nodes of the container's /dev (config-linux.md "Default Devices", "Devices").

As real root the nodes are made with mknod; inside a user namespace mknod is
forbidden, so an empty file is bind-mounted over with the host's node, the
way every rootless runtime does it.
"""

from __future__ import annotations

import os
import stat

from runtime.errors import RootletError
from runtime.spec.model import Device
from runtime.sys import constants as k
from runtime.sys.calls import fail, mount
from runtime.sys.paths import ensure_in_root, fd_path

_DEFAULTS = (
    ("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0),
)
_LINKS = (
    ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"),
)
_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def default_devices() -> list[Device]:
    return [Device(f"/dev/{name}", "c", major, minor, 0o666, 0, 0) for name, major, minor in _DEFAULTS]


def create_all(wanted: list[Device], root_fd: int, in_userns: bool) -> None:
    """Create each device; a later entry for the same path (the config's)
    replaces an earlier one (a default)."""
    by_path = {device.path: device for device in wanted}
    for device in by_path.values():
        if in_userns:
            _bind_from_host(device, root_fd)
        else:
            _make_node(device, root_fd)


def _make_node(device: Device, root_fd: int) -> None:
    parent_path, name = device.path.rsplit("/", 1)
    parent = ensure_in_root(root_fd, parent_path or "/")
    try:
        kind = _TYPES[device.type]
        number = os.makedev(device.major, device.minor)
        if _existing_matches(parent, name, device, kind, number):
            os.unlink(name, dir_fd=parent)
        os.mknod(name, kind | (device.file_mode & 0o7777), number, dir_fd=parent)
        os.chown(name, device.uid, device.gid, dir_fd=parent, follow_symlinks=False)
    except OSError as err:
        raise fail(f"create device {device.path}", err) from None
    finally:
        os.close(parent)


def _existing_matches(parent: int, name: str, device: Device, kind: int, number: int) -> bool:
    """Whether something is at the path already; if it is not this very
    device, that is an error (config-linux.md "Devices")."""
    try:
        info = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if stat.S_IFMT(info.st_mode) != kind or (kind != stat.S_IFIFO and info.st_rdev != number):
        raise RootletError(f"{device.path} exists in the rootfs and is not the device the config asks for",
                           step=f"create device {device.path}")
    return True


def _bind_from_host(device: Device, root_fd: int) -> None:
    if not os.path.exists(device.path):
        raise RootletError(f"host has no {device.path} to bind into the user namespace",
                           step=f"create device {device.path}")
    target = ensure_in_root(root_fd, device.path, is_dir=False)
    try:
        mount(device.path, fd_path(target), None, k.MS_BIND, step=f"bind device {device.path}")
    finally:
        os.close(target)


def create_links(dev_fd: int) -> None:
    links = list(_LINKS)
    if os.path.exists("/proc/kcore"):
        links.append(("core", "/proc/kcore"))
    for name, target in links:
        try:
            os.symlink(target, name, dir_fd=dev_fd)
        except FileExistsError:
            pass
        except OSError as err:
            raise fail(f"create /dev/{name}", err) from None
