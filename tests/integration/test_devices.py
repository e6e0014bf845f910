"""/dev contents: default devices and links, linux.devices."""

from __future__ import annotations

import pytest
from support import mountinfo

DEFAULT_DEVICES = {
    "/dev/null": (1, 3),
    "/dev/zero": (1, 5),
    "/dev/full": (1, 7),
    "/dev/random": (1, 8),
    "/dev/urandom": (1, 9),
    "/dev/tty": (5, 0),
}


def _stat(rt, cid, bundle, *paths):
    """{path: (type, major, minor, mode, uid, gid)} as seen inside."""
    bundle.args("stat", "-c", "%n|%F|%t|%T|%a|%u|%g", *paths)
    out = {}
    for line in rt.run_ok(cid, bundle).splitlines():
        name, ftype, major, minor, mode, uid, gid = line.split("|")
        out[name] = (ftype, int(major, 16), int(minor, 16), mode, int(uid), int(gid))
    return out


@pytest.mark.parametrize("path", sorted(DEFAULT_DEVICES))
def test_default_device_node(rt, cid, bundle, path):
    st = _stat(rt, cid, bundle, path)[path]
    assert st[0] == "character special file"
    assert st[1:3] == DEFAULT_DEVICES[path]
    assert st[3] == "666"


def test_default_devices_are_usable(rt, cid, bundle):
    bundle.sh(
        "echo x > /dev/null && echo null-ok; "
        "head -c 4 /dev/zero | od -An -tx1; "
        "head -c 16 /dev/urandom | wc -c; "
        "{ echo x > /dev/full; } 2>&1; echo full-rc=$?"
    )
    out = rt.run_ok(cid, bundle).split("\n")
    assert out[0] == "null-ok"
    assert out[1].split() == ["00"] * 4
    assert out[2].strip() == "16"
    assert "No space left on device" in "\n".join(out[3:])
    assert "full-rc=1" in out


@pytest.mark.parametrize("link,target", [
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
    ("/dev/ptmx", "pts/ptmx"),
])
def test_default_dev_symlinks(rt, cid, bundle, link, target):
    bundle.args("readlink", link)
    assert rt.run_ok(cid, bundle).strip() == target


def test_dev_pts_and_shm_mounts(rt, cid, bundle):
    bundle.args("cat", "/proc/self/mountinfo")
    mounts = mountinfo.parse(rt.run_ok(cid, bundle))
    assert mountinfo.find(mounts, "/dev").fstype == "tmpfs"
    pts = mountinfo.find(mounts, "/dev/pts")
    assert pts.fstype == "devpts"
    assert "newinstance" in pts.super_options or "ptmxmode=666" in pts.super_options
    shm = mountinfo.find(mounts, "/dev/shm")
    assert shm.fstype == "tmpfs"
    assert {"nosuid", "nodev", "noexec"} <= shm.options


def test_dev_contains_only_expected_entries(rt, cid, bundle):
    bundle.args("ls", "-A", "/dev")
    entries = set(rt.run_ok(cid, bundle).split())
    expected = {"null", "zero", "full", "random", "urandom", "tty", "fd", "stdin",
                "stdout", "stderr", "ptmx", "pts", "shm", "mqueue"}
    assert expected <= entries
    # no host devices leak in (no terminal configured, so no console either)
    assert not entries & {"sda", "vda", "mem", "kmsg", "console", "loop0"}


def test_custom_char_device(rt, cid, bundle):
    bundle.linux["devices"] = [{
        "path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
        "fileMode": 0o640, "uid": 1000, "gid": 1001,
    }]
    st = _stat(rt, cid, bundle, "/dev/mynull")["/dev/mynull"]
    assert st == ("character special file", 1, 3, "640", 1000, 1001)


def test_custom_device_is_usable(rt, cid, bundle):
    bundle.linux["devices"] = [{"path": "/dev/myzero", "type": "c", "major": 1, "minor": 5,
                                "fileMode": 0o666, "uid": 0, "gid": 0}]
    bundle.sh("head -c 3 /dev/myzero | od -An -tx1")
    assert rt.run_ok(cid, bundle).split() == ["00"] * 3


def test_custom_device_in_subdirectory(rt, cid, bundle):
    bundle.linux["devices"] = [{"path": "/dev/sub/dir/mynull", "type": "c", "major": 1,
                                "minor": 3, "fileMode": 0o600, "uid": 0, "gid": 0}]
    st = _stat(rt, cid, bundle, "/dev/sub/dir/mynull")["/dev/sub/dir/mynull"]
    assert st[:4] == ("character special file", 1, 3, "600")


def test_custom_fifo_device(rt, cid, bundle):
    bundle.linux["devices"] = [{"path": "/dev/myfifo", "type": "p", "fileMode": 0o600,
                                "uid": 0, "gid": 0}]
    st = _stat(rt, cid, bundle, "/dev/myfifo")["/dev/myfifo"]
    assert st[0] == "fifo"
