"""Build the container's filesystem view inside its new mount namespace
(or, without one, under the rootfs bind of runtime.hostmount).

Runs in the container's init, in order: make the host's mounts invisible to
propagation, bind the rootfs onto itself, carry out config.mounts, populate
/dev, pivot_root into the rootfs, then mask and write-protect the paths the
config names (config-linux.md "Masked Paths", "Readonly Paths").
"""

from __future__ import annotations

import os
import stat

from runtime import _linux, devices, mountopts
from runtime.errors import RootletError
from runtime.spec.model import Config, Mount
from runtime.sys import constants as k
from runtime.sys.calls import fail, mount
from runtime.sys.paths import ensure_in_root, fd_path, open_in_root

# statvfs f_flag bits -> mount flags the kernel locks in a user namespace
_LOCKED = (
    (os.ST_RDONLY, k.MS_RDONLY), (os.ST_NOSUID, k.MS_NOSUID), (os.ST_NODEV, k.MS_NODEV),
    (os.ST_NOEXEC, k.MS_NOEXEC), (os.ST_NOATIME, k.MS_NOATIME), (os.ST_NODIRATIME, k.MS_NODIRATIME),
    (os.ST_RELATIME, k.MS_RELATIME),
)


def prepare(config: Config) -> None:
    """Stop mount events flowing back to the host, and make the rootfs a mount point.

    Every copied mount becomes a slave first: nothing the container mounts can
    reach the host, the host's later mounts still reach the container, and
    pivot_root(2), which refuses shared mounts, works. linux.rootfsPropagation
    is applied to the container's "/" after pivot_root (see pivot)."""
    mount(None, "/", None, k.MS_SLAVE | k.MS_REC, step="make the host's mounts slaves")
    mount(config.rootfs, config.rootfs, None, k.MS_BIND | k.MS_REC, step="bind the rootfs onto itself")


def mount_all(config: Config, root_fd: int, in_userns: bool) -> None:
    own_cgroup_namespace = "cgroup" in config.linux.namespaces
    for index, entry in enumerate(config.mounts):
        try:
            _mount_one(entry, root_fd, in_userns, own_cgroup_namespace)
        except RootletError as err:
            err.path = f"mounts[{index}]"
            raise


def _mount_one(entry: Mount, root_fd: int, in_userns: bool, own_cgroup_namespace: bool) -> None:
    options = mountopts.parse(entry.options)
    if entry.type in ("cgroup", "cgroup2"):
        _mount_cgroups(entry, root_fd, options, own_cgroup_namespace)
        return
    is_dir = True
    if options.is_bind:
        try:
            is_dir = stat.S_ISDIR(os.stat(entry.source).st_mode)
        except OSError as err:
            raise fail(f"bind mount source {entry.source}", err) from None
    if entry.type in ("proc", "sysfs"):
        _refuse_symlinked_destination(entry, root_fd)
    target_fd = ensure_in_root(root_fd, entry.destination, is_dir=is_dir)
    try:
        _mount_at(entry, options, target_fd, in_userns)
    finally:
        os.close(target_fd)
    if options.flags & ~(k.MS_BIND | k.MS_REC) & mountopts.REMOUNT_FLAGS and options.is_bind:
        _remount_bind(entry, options, root_fd)
    _apply_tree_options(entry, options, root_fd)


def _refuse_symlinked_destination(entry: Mount, root_fd: int) -> None:
    """procfs and sysfs only on a real directory: an image that makes /proc a
    symlink could otherwise steer them, and the masks that follow, elsewhere
    (the CVE-2019-19921 and CVE-2023-27561 class)."""
    try:
        os.close(_linux.openat2(root_fd, entry.destination, k.O_PATH | os.O_CLOEXEC,
                                k.RESOLVE_IN_ROOT | k.RESOLVE_NO_SYMLINKS))
    except FileNotFoundError:
        return
    except OSError as err:
        if err.errno == 40:  # ELOOP: a symlink on the way
            raise RootletError(f"{entry.type} mount destination {entry.destination} is a symlink",
                               step=f"mount {entry.type}") from None
        raise fail(f"open {entry.destination}", err) from None


def _mount_at(entry: Mount, options, target_fd: int, in_userns: bool) -> None:
    step = f"mount {entry.type or 'bind'} on {entry.destination}"
    data = ",".join(options.data) or None
    target = fd_path(target_fd)
    if options.is_bind:
        mount(entry.source, target, None, options.flags & (k.MS_BIND | k.MS_REC), step=step)
        return
    fstype = entry.type or "none"
    try:
        _linux.mount(entry.source or fstype, target, fstype, options.flags, data)
    except OSError as err:
        fallback = _userns_fallback(entry, target, options, err, in_userns)
        if not fallback:
            raise fail(step, err) from None


def _userns_fallback(entry: Mount, target: str, options, err: OSError, in_userns: bool) -> bool:
    """Do what a user namespace allows instead: bind the host's /sys when its
    network namespace is not ours, and leave devpts without a gid the
    namespace does not map. Returns whether the fallback mounted."""
    if not in_userns:
        return False
    if entry.type == "sysfs" and err.errno == 1:
        _linux.mount("/sys", target, None, k.MS_BIND | k.MS_REC, None)
        return True
    if entry.type == "devpts" and err.errno == 22:
        data = ",".join(option for option in options.data if not option.startswith("gid="))
        _linux.mount(entry.source or "devpts", target, "devpts", options.flags, data)
        return True
    return False


def _reopen(root_fd: int, destination: str) -> int:
    try:
        return open_in_root(root_fd, destination)
    except OSError as err:
        raise fail(f"open {destination} after mounting", err) from None


def _remount_bind(entry: Mount, options, root_fd: int) -> None:
    fd = _reopen(root_fd, entry.destination)
    try:
        remount_keeping_locked(fd_path(fd), options.flags & mountopts.REMOUNT_FLAGS,
                               step=f"remount {entry.destination}")
    finally:
        os.close(fd)


def remount_keeping_locked(target: str, flags: int, *, step: str) -> None:
    """Bind-remount with `flags`; inside a user namespace the kernel refuses to
    clear flags it locked (nosuid, nodev, ... of the source), so keep those."""
    base = k.MS_BIND | k.MS_REMOUNT
    try:
        _linux.mount(None, target, None, base | flags, None)
        return
    except OSError as err:
        if err.errno != 1:
            raise fail(step, err) from None
    current = os.statvfs(target).f_flag
    locked = 0
    for bit, flag in _LOCKED:
        if current & bit:
            locked |= flag
    mount(None, target, None, base | flags | locked, step=step)


def _apply_tree_options(entry: Mount, options, root_fd: int) -> None:
    if not options.propagation and not (options.recursive_set or options.recursive_clear):
        return
    fd = _reopen(root_fd, entry.destination)
    try:
        for flag in options.propagation:
            mount(None, fd_path(fd), None, flag, step=f"set propagation of {entry.destination}")
        if options.recursive_set or options.recursive_clear:
            try:
                _linux.mount_setattr(fd, "", k.AT_EMPTY_PATH | k.AT_RECURSIVE,
                                     options.recursive_set, options.recursive_clear)
            except OSError as err:
                raise fail(f"set recursive options on {entry.destination}", err) from None
    finally:
        os.close(fd)


def _mount_cgroups(entry: Mount, root_fd: int, options, own_namespace: bool) -> None:
    """cgroup2 where the host is unified; on v1 and hybrid hosts a tmpfs
    holding one mount per hierarchy, as runc presents them. Each shows the
    container's own cgroup as its root: in a cgroup namespace a fresh cgroup
    filesystem does; without one, a bind of the container's cgroup directory
    does (a fresh mount there would show the host's whole tree, and mounting
    cgroup2 in the host's cgroup namespace waits for an RCU grace period)."""
    own = _own_cgroups()
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        target_fd = ensure_in_root(root_fd, entry.destination)
        try:
            _mount_cgroup(target_fd, entry.destination, "cgroup2", options.flags, None,
                          _own_directory("/sys/fs/cgroup", "/", (), own), own_namespace)
        finally:
            os.close(target_fd)
        _apply_flags(entry, options, root_fd)
        return
    target_fd = ensure_in_root(root_fd, entry.destination)
    try:
        mount("tmpfs", fd_path(target_fd), "tmpfs", options.flags & ~k.MS_RDONLY, "mode=755",
              step=f"mount cgroup on {entry.destination}")
    finally:
        os.close(target_fd)
    # One mount point per hierarchy in the tmpfs just made: nothing else can
    # have put a symlink there, so plain *at calls on its fd are safe.
    top = _reopen(root_fd, entry.destination)
    try:
        for point, root, fstype, super_options in _host_cgroup_mounts():
            name = point.rsplit("/", 1)[1]
            controllers = () if fstype == "cgroup2" else tuple(super_options.split(","))
            os.mkdir(name, 0o755, dir_fd=top)
            sub = os.open(name, k.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=top)
            try:
                own_directory = _own_directory(point, root, controllers, own)
                _mount_cgroup(sub, f"{entry.destination}/{name}", fstype, options.flags,
                              super_options or None, own_directory, own_namespace)
            finally:
                os.close(sub)
    finally:
        os.close(top)
    _apply_flags(entry, options, root_fd)


def _mount_cgroup(target_fd: int, destination: str, fstype: str, flags: int, data, own_directory: str,
                  own_namespace: bool) -> None:
    if own_namespace:
        try:
            _linux.mount(fstype, fd_path(target_fd), fstype, flags, data)
            return
        except PermissionError:
            pass  # cgroup v1 cannot be mounted in a user namespace: bind it instead
    mount(own_directory, fd_path(target_fd), None, k.MS_BIND | k.MS_REC,
          step=f"mount cgroup on {destination}")


def _apply_flags(entry: Mount, options, root_fd: int) -> None:
    """The entry's flags (ro, nosuid, ...) on the whole tree at its
    destination, in one mount_setattr(2) instead of a remount per mount."""
    attr_set = mountopts.mount_attributes(options.flags)
    if not attr_set:
        return
    fd = _reopen(root_fd, entry.destination)
    try:
        _linux.mount_setattr(fd, "", k.AT_EMPTY_PATH | k.AT_RECURSIVE, attr_set, 0)
    except OSError as err:
        raise fail(f"set the options of {entry.destination}", err) from None
    finally:
        os.close(fd)


def _own_cgroups() -> dict[str, str]:
    """/proc/self/cgroup as {controllers: path}, "" for cgroup2."""
    with open("/proc/self/cgroup") as table:
        return dict(line.rstrip("\n").split(":", 2)[1:] for line in table if line.count(":") >= 2)


def _own_directory(point: str, root: str, controllers: tuple[str, ...], own: dict[str, str]) -> str:
    """Where this process's cgroup of one hierarchy is under its mount point."""
    path = next((path for names, path in own.items() if _same_hierarchy(names, controllers)), "/")
    relative = path[len(root.rstrip("/")):] if path.startswith(root) else path
    return point + "/" + relative.strip("/") if relative.strip("/") else point


def _same_hierarchy(names: str, controllers: tuple[str, ...]) -> bool:
    if not controllers:
        return names == ""  # the cgroup2 line, 0::/path
    return bool(names) and set(names.split(",")) <= set(controllers)


def _host_cgroup_mounts() -> list[tuple[str, str, str, str]]:
    """(mount point, root in the hierarchy, fstype, super options) of the host's cgroup mounts."""
    found = []
    with open("/proc/self/mountinfo") as table:
        for line in table:
            head, tail = line.split(" - ", 1)
            fields = head.split(" ")
            root, point = fields[3], fields[4]
            fstype, _source, super_options = tail.split(" ")[:3]
            if fstype in ("cgroup", "cgroup2") and point.startswith("/sys/fs/cgroup/"):
                wanted = ",".join(o for o in super_options.strip().split(",") if o not in ("rw", "ro"))
                found.append((point, root, fstype, wanted))
    return found


def populate_dev(config: Config, root_fd: int, in_userns: bool) -> None:
    """The spec's default devices and /dev links, unless /dev is bound from the host."""
    if any(m.destination == "/dev" and "bind" in " ".join(m.options) for m in config.mounts):
        return
    dev_fd = ensure_in_root(root_fd, "/dev")
    try:
        devices.create_all(devices.default_devices() + config.linux.devices, root_fd, in_userns)
        devices.create_links(dev_fd)
    finally:
        os.close(dev_fd)


def pivot(config: Config, no_pivot: bool) -> None:
    """Make the rootfs "/" and detach the host's tree (runtime-linux.md);
    a container in the host's mount namespace is only chrooted."""
    if "mount" not in config.linux.namespaces:
        os.chdir(config.rootfs)
        os.chroot(".")
        os.chdir("/")
        return
    if no_pivot:
        os.chdir(config.rootfs)
        mount(config.rootfs, "/", None, k.MS_MOVE, step="move the rootfs onto /")
        os.chroot(".")
        os.chdir("/")
        return
    old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new_root = os.open(config.rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(new_root)
        try:
            # pivot_root(".", "."): the old root ends up stacked on "/" and is
            # detached below, so no directory for it is needed in the rootfs.
            _linux.pivot_root(".", ".")
        except OSError as err:
            raise fail("pivot_root into the rootfs", err) from None
        os.fchdir(old_root)
        mount(None, ".", None, k.MS_SLAVE | k.MS_REC, step="make the old root a slave")
        _linux.umount2(".", k.MNT_DETACH)
        os.chdir("/")
    finally:
        os.close(old_root)
        os.close(new_root)
    # Only now, on the container's own "/", so a shared rootfs never shares
    # the host's mounts with the container.
    if config.linux.rootfs_propagation:
        mount(None, "/", None, mountopts.PROPAGATION[config.linux.rootfs_propagation],
              step="set linux.rootfsPropagation")


def mask_paths(paths: list[str]) -> None:
    """Hide each path: /dev/null over a file, an empty read-only tmpfs over a directory."""
    for path in paths:
        try:
            is_dir = stat.S_ISDIR(os.stat(path).st_mode)
        except FileNotFoundError:
            continue
        except OSError as err:
            raise fail(f"mask {path}", err) from None
        if is_dir:
            mount("tmpfs", path, "tmpfs", k.MS_RDONLY, "size=0", step=f"mask {path}")
        else:
            mount("/dev/null", path, None, k.MS_BIND, step=f"mask {path}")


def make_readonly(paths: list[str]) -> None:
    for path in paths:
        try:
            _linux.mount(path, path, None, k.MS_BIND | k.MS_REC, None)
        except FileNotFoundError:
            continue
        except OSError as err:
            raise fail(f"make {path} read-only", err) from None
        remount_keeping_locked(path, k.MS_RDONLY | k.MS_REC, step=f"make {path} read-only")


def make_root_readonly() -> None:
    remount_keeping_locked("/", k.MS_RDONLY, step="remount the rootfs read-only")
