"""config.md#root and config.md#mounts: the root filesystem, mount order, and
the effect of each mount option as the container's /proc/self/mountinfo shows it."""

from __future__ import annotations

import os
import shutil

from ..bundle import Bundle
from ..context import Context
from ..inspect import MountEntry, mount_at, parse_mountinfo
from ..registry import check, expect


def _mounts_seen(ctx: Context, bundle: Bundle, prefix_script: str = "") -> list[MountEntry]:
    output = ctx.run_script(bundle, f"{prefix_script} cat /proc/self/mountinfo")
    return parse_mountinfo(output)


def _mount_seen_at(ctx: Context, bundle: Bundle, point: str) -> MountEntry:
    entry = mount_at(_mounts_seen(ctx, bundle), point)
    expect(entry is not None, f"nothing is mounted at {point} in the container")
    return entry


# -- root -------------------------------------------------------------------
@check("config.md#root", "MUST", "root.path (relative to the bundle) is the process's /")
def check_root_path(ctx: Context) -> None:
    bundle = ctx.bundle("cat", "/marker")
    (bundle.rootfs / "marker").write_text(bundle.path.name + "\n")
    output = ctx.run(bundle).strip()
    expect(output == bundle.path.name, f"/marker reads {output!r}")


@check("config.md#root", "MUST", "an absolute root.path outside the bundle is the process's /")
def check_root_path_absolute(ctx: Context) -> None:
    bundle = ctx.bundle("cat", "/marker")
    elsewhere = ctx.workdir / "rootfs-elsewhere"
    shutil.move(bundle.rootfs, elsewhere)
    (elsewhere / "marker").write_text("absolute\n")
    bundle.config["root"]["path"] = str(elsewhere)
    expect(ctx.run(bundle).strip() == "absolute", "the absolute root.path was not used")


@check("config.md#root", "MUST", "root.readonly true makes / read-only")
def check_root_readonly(ctx: Context) -> None:
    bundle = ctx.bundle()
    entries = _mounts_seen(ctx, bundle, "touch /written 2>/dev/null && echo WROTE;")
    root = mount_at(entries, "/")
    expect(not (bundle.rootfs / "written").exists(), "a file could be created in /")
    expect(root is not None and "ro" in root.options, f"/ is mounted {root.options if root else None}")


@check("config.md#root", "MUST", "root.readonly absent (default false) leaves / writable")
def check_root_writable_by_default(ctx: Context) -> None:
    bundle = ctx.bundle("touch", "/written")
    del bundle.config["root"]["readonly"]
    ctx.run(bundle)
    expect((bundle.rootfs / "written").exists(), "the process could not create /written")


# -- mounts -----------------------------------------------------------------
@check("config.md#mounts", "MUST",
       "mounts are mounted in the listed order (a later one covers an earlier one)")
def check_mount_order(ctx: Context) -> None:
    first, second = ctx.tempdir("first"), ctx.tempdir("second")
    (first / "which").write_text("first\n")
    (second / "which").write_text("second\n")
    bundle = ctx.bundle("cat", "/m/which")
    bundle.mkdir_in_rootfs("/m")
    bundle.bind(first, "/m").bind(second, "/m")
    expect(ctx.run(bundle).strip() == "second", "the first listed mount is on top")


@check("config.md#mounts", "MUST", "mounts nest in order: a bind inside an earlier tmpfs lands in the tmpfs")
def check_mount_nested(ctx: Context) -> None:
    data = ctx.tempdir("data")
    (data / "file").write_text("nested\n")
    bundle = ctx.bundle("cat", "/t/sub/file")
    bundle.mkdir_in_rootfs("/t")
    bundle.add_mount("/t", "tmpfs", "tmpfs", ["mode=755"])
    bundle.bind(data, "/t/sub")
    expect(ctx.run(bundle).strip() == "nested", "the bind mount inside the tmpfs is not visible")


@check("config.md#mounts", "MUST", "a relative destination is taken relative to /", since="1.2.0")
def check_mount_relative_destination(ctx: Context) -> None:
    bundle = ctx.bundle()
    bundle.mkdir_in_rootfs("/relmnt")
    bundle.add_mount("relmnt", "tmpfs", "tmpfs", [])
    entry = mount_at(_mounts_seen(ctx, bundle), "/relmnt")
    expect(entry is not None and entry.fs_type == "tmpfs", "no tmpfs at /relmnt")


def _tmpfs_with(ctx: Context, options: list[str]) -> MountEntry:
    bundle = ctx.bundle()
    bundle.mkdir_in_rootfs("/t")
    bundle.add_mount("/t", "tmpfs", "tmpfs", options)
    return _mount_seen_at(ctx, bundle, "/t")


# option -> (token expected in mountinfo, field holding it, tokens that must be absent)
MOUNT_FLAGS = {
    "ro": ("ro", "options", ()),
    "rw": ("rw", "options", ()),
    "nosuid": ("nosuid", "options", ()),
    "nodev": ("nodev", "options", ()),
    "noexec": ("noexec", "options", ()),
    "noatime": ("noatime", "options", ()),
    "nodiratime": ("nodiratime", "options", ()),
    "relatime": ("relatime", "options", ()),
    "strictatime": (None, "options", ("relatime", "noatime")),
    "sync": ("sync", "super_options", ()),
    "dirsync": ("dirsync", "super_options", ()),
    "lazytime": ("lazytime", "super_options", ()),
}


def _register_flag_check(option: str) -> None:
    token, field, absent = MOUNT_FLAGS[option]

    def flag_check(ctx: Context) -> None:
        entry = _tmpfs_with(ctx, [option])
        seen = getattr(entry, field)
        expect(token is None or token in seen, f"{option}: mountinfo shows {sorted(seen)}")
        clash = [t for t in absent if t in seen]
        expect(not clash, f"{option}: mountinfo still shows {clash}")

    flag_check.__name__ = f"check_mount_option_{option}"
    check("config.md#linux-mount-options", "MUST", f"mount option {option} takes effect")(flag_check)


for _option in MOUNT_FLAGS:
    _register_flag_check(_option)


@check("config.md#linux-mount-options", "MUST", "defaults is accepted (rw, suid, dev, exec...)")
def check_mount_option_defaults(ctx: Context) -> None:
    entry = _tmpfs_with(ctx, ["defaults"])
    expect("rw" in entry.options and "nosuid" not in entry.options, f"defaults gave {sorted(entry.options)}")


@check("config.md#linux-mount-options", "MUST", "noexec forbids executing files from the mount")
def check_noexec_effect(ctx: Context) -> None:
    bundle = ctx.bundle()
    bundle.mkdir_in_rootfs("/t")
    bundle.add_mount("/t", "tmpfs", "tmpfs", ["noexec"])
    output = ctx.run_script(bundle, "cp /bin/busybox /t/bb && /t/bb true && echo EXECUTED || echo DENIED")
    expect("DENIED" in output and "EXECUTED" not in output, f"running a copy from /t: {output!r}")


@check("config.md#linux-mount-options", "MUST", "ro on a bind mount forbids writing through it")
def check_bind_ro_effect(ctx: Context) -> None:
    data = ctx.tempdir("data", 0o777)
    bundle = ctx.bundle("sh", "-c", "touch /data/new 2>/dev/null && echo WROTE || echo REFUSED")
    bundle.mkdir_in_rootfs("/data")
    bundle.bind(data, "/data", "ro")
    output = ctx.run(bundle)
    expect("REFUSED" in output and not (data / "new").exists(), f"writing to the ro bind: {output!r}")


@check("config.md#linux-mount-options", "SHOULD",
       "filesystem-specific options (tmpfs mode=, size=) reach the filesystem")
def check_filesystem_specific_options(ctx: Context) -> None:
    bundle = ctx.bundle("stat", "-c", "%a", "/t")
    bundle.mkdir_in_rootfs("/t")
    bundle.add_mount("/t", "tmpfs", "tmpfs", ["mode=0710", "size=1m"])
    expect(ctx.run(bundle).strip() == "710", "tmpfs mode=0710 was not applied")


def _dir_with_submount(ctx: Context) -> os.PathLike:
    """A host directory with a tmpfs mounted on its ``sub/`` holding ``file``."""
    top = ctx.tempdir("tree", 0o777)
    sub = ctx.tempdir("tree/sub", 0o777)
    ctx.host_mount("-t", "tmpfs", "-o", "mode=777", "tmpfs", str(sub))
    (sub / "file").write_text("in submount\n")
    return top


@check("config.md#linux-mount-options", "MUST", "bind does not carry submounts; rbind does")
def check_bind_vs_rbind(ctx: Context) -> None:
    tree = _dir_with_submount(ctx)
    bundle = ctx.bundle("sh", "-c", "cat /b/sub/file 2>/dev/null || echo none-in-bind; "
                        "cat /rb/sub/file 2>/dev/null || echo none-in-rbind")
    bundle.mkdir_in_rootfs("/b")
    bundle.mkdir_in_rootfs("/rb")
    bundle.add_mount("/b", str(tree), "bind", ["bind"])
    bundle.add_mount("/rb", str(tree), "bind", ["rbind"])
    output = ctx.run(bundle).split("\n")
    expect(output[:2] == ["none-in-bind", "in submount"], f"bind then rbind showed {output[:2]}")


@check("config.md#linux-mount-options", "SHOULD",
       "rro makes every submount of an rbind read-only too", since="1.1.0")
def check_recursive_ro(ctx: Context) -> None:
    tree = _dir_with_submount(ctx)
    bundle = ctx.bundle("sh", "-c", "touch /rb/sub/new 2>/dev/null && echo WROTE || echo REFUSED")
    bundle.mkdir_in_rootfs("/rb")
    bundle.add_mount("/rb", str(tree), "bind", ["rbind", "rro"])
    container, outcome = ctx.create(bundle)
    expect(container is not None, f"create failed: {outcome.first_error_line()}")
    container.must_start()
    container.must_stop()
    expect("REFUSED" in container.output(), "the submount stayed writable under rro")


@check("config.md#linux-mount-options", "SHOULD",
       "rnosuid applies nosuid to every submount of an rbind", since="1.1.0")
def check_recursive_nosuid(ctx: Context) -> None:
    tree = _dir_with_submount(ctx)
    bundle = ctx.bundle()
    bundle.mkdir_in_rootfs("/rb")
    bundle.add_mount("/rb", str(tree), "bind", ["rbind", "rnosuid"])
    entry = _mount_seen_at(ctx, bundle, "/rb/sub")
    expect("nosuid" in entry.options, f"/rb/sub is mounted {sorted(entry.options)}")


@check("config.md#linux-mount-options", "SHOULD", "nosymfollow takes effect", since="1.1.0")
def check_mount_option_nosymfollow(ctx: Context) -> None:
    entry = _tmpfs_with(ctx, ["nosymfollow"])
    expect("nosymfollow" in entry.options, f"mountinfo shows {sorted(entry.options)}")


def _shared_source(ctx: Context) -> os.PathLike:
    """A host directory that is its own shared mount, so slave/shared have a peer group."""
    source = ctx.tempdir("shared-src", 0o777)
    ctx.host_mount("-t", "tmpfs", "-o", "mode=777", "tmpfs", str(source))
    ctx.host_mount("--make-shared", str(source))
    return source


# propagation option -> (bind flavour, predicate on the mountinfo optional fields, wanted)
PROPAGATION = {
    "shared": ("bind", lambda p: any(f.startswith("shared:") for f in p), "shared:N"),
    "slave": ("bind", lambda p: any(f.startswith("master:") for f in p), "master:N"),
    "private": ("bind", lambda p: not p, "no propagation fields"),
    "unbindable": ("bind", lambda p: "unbindable" in p, "unbindable"),
    "rshared": ("rbind", lambda p: any(f.startswith("shared:") for f in p), "shared:N"),
    "rslave": ("rbind", lambda p: any(f.startswith("master:") for f in p), "master:N"),
    "rprivate": ("rbind", lambda p: not p, "no propagation fields"),
    "runbindable": ("rbind", lambda p: "unbindable" in p, "unbindable"),
}


def _register_propagation_check(option: str) -> None:
    flavour, holds, wanted = PROPAGATION[option]

    def propagation_check(ctx: Context) -> None:
        source = _shared_source(ctx)
        bundle = ctx.bundle()
        bundle.mkdir_in_rootfs("/p")
        bundle.add_mount("/p", str(source), "bind", [flavour, option])
        entry = _mount_seen_at(ctx, bundle, "/p")
        expect(holds(entry.propagation), f"{option} bind of a shared mount shows "
               f"{entry.propagation or 'no propagation fields'}, wanted {wanted}")

    propagation_check.__name__ = f"check_mount_propagation_{option}"
    summary = f"propagation option {option} on a bind mount takes effect"
    check("config.md#linux-mount-options", "MUST", summary)(propagation_check)


for _option in PROPAGATION:
    _register_propagation_check(_option)


@check("config.md#linux-mount-options", "MUST",
       "idmap without any mapping and without a user namespace is an error", since="1.2.0")
def check_idmap_without_mapping(ctx: Context) -> None:
    data = ctx.tempdir("data")
    bundle = ctx.bundle()
    bundle.mkdir_in_rootfs("/data")
    bundle.bind(data, "/data", "idmap")
    container, _ = ctx.create(bundle)
    expect(container is None, "create accepted idmap with no mapping and no user namespace")


@check("config.md#posix-platform-mounts", "SHOULD",
       "an idmapped bind mount shows files with the mapped owner",
       since="1.2.0")
def check_idmap_mount(ctx: Context) -> None:
    data = ctx.tempdir("data")
    (data / "file").write_text("x")
    bundle = ctx.bundle("stat", "-c", "%u:%g", "/data/file")
    bundle.mkdir_in_rootfs("/data")
    bundle.bind(data, "/data", "idmap")
    mapping = [{"containerID": 1000, "hostID": 0, "size": 1}]
    bundle.config["mounts"][-1].update(uidMappings=mapping, gidMappings=mapping)
    container, outcome = ctx.create(bundle)
    expect(container is not None, f"create failed: {outcome.first_error_line()}")
    container.must_start()
    container.must_stop()
    expect(container.output().strip() == "1000:1000", f"the host-root file shows as {container.output()!r}")
