"""The runtime run by an unprivileged user (spec --rootless semantics)."""

from __future__ import annotations

import json
import os

import pytest
from support.runtime import assert_nothing_left, pid_alive, proc_status, wait_for
from support.users import subid_range

WAIT_FOR_STOP = "touch /out/started; while [ ! -e /out/stop ]; do sleep 0.02; done"


def test_spec_rootless_maps_the_caller(urt, userdir, rootless_user):
    d = userdir / "specdir"
    d.mkdir()
    os.chown(d, rootless_user.pw_uid, rootless_user.pw_gid)
    urt.ok("spec", "--rootless", "--bundle", str(d))
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["linux"]["uidMappings"] == [
        {"containerID": 0, "hostID": rootless_user.pw_uid, "size": 1}]
    assert cfg["linux"]["gidMappings"] == [
        {"containerID": 0, "hostID": rootless_user.pw_gid, "size": 1}]
    types = [ns["type"] for ns in cfg["linux"]["namespaces"]]
    assert "user" in types and "network" not in types
    sys_mount = next(m for m in cfg["mounts"] if m["destination"] == "/sys")
    assert "rbind" in sys_mount["options"]


def test_rootless_container_user_is_root(urt, cid, ubundle):
    ubundle.sh("id -u; id -g; cat /proc/self/uid_map")
    r = urt.run(cid, ubundle)
    assert r.rc == 0, str(r)
    lines = r.out.splitlines()
    assert lines[:2] == ["0", "0"]
    assert lines[2].split() == ["0", str(os.stat(ubundle.rootfs).st_uid), "1"]


def test_rootless_process_runs_as_user_on_host(urt, cid, ubundle, rootless_user):
    out = ubundle.shared_dir()
    ubundle.sh(WAIT_FOR_STOP)
    st = urt.run_detached(cid, ubundle)
    wait_for(lambda: (out / "started").exists(), what="container to start")
    status = proc_status(st["pid"])
    assert status["Uid"].split() == [str(rootless_user.pw_uid)] * 4
    assert status["Gid"].split() == [str(rootless_user.pw_gid)] * 4


def test_rootless_lifecycle(urt, cid, ubundle):
    out = ubundle.shared_dir()
    ubundle.sh(WAIT_FOR_STOP)
    urt.create(cid, ubundle)
    st = urt.state(cid)
    assert st["status"] == "created"
    assert not (out / "started").exists()
    urt.ok("start", cid)
    wait_for(lambda: (out / "started").exists(), what="container to start")
    assert urt.status(cid) == "running"
    assert urt.ids() == [cid]
    urt.ok("kill", cid, "KILL")
    wait_for(lambda: not pid_alive(st["pid"]), what="container to die")
    urt.wait_status(cid, "stopped")
    urt.ok("delete", cid)
    assert_nothing_left(urt, cid, ubundle.token, ubundle.path)


def test_rootless_run_exit_status(urt, cid, ubundle):
    ubundle.sh("exit 5")
    assert urt.run(cid, ubundle).rc == 5
    assert_nothing_left(urt, cid, ubundle.token, ubundle.path)


def test_rootless_hostname(urt, cid, ubundle):
    ubundle.config["hostname"] = "rootless-ct"
    ubundle.args("hostname")
    r = urt.run(cid, ubundle)
    assert r.rc == 0, str(r)
    assert r.out.strip() == "rootless-ct"


def test_rootless_state_dir_belongs_to_user(urt, cid, ubundle, rootless_user):
    ubundle.sh("sleep 100")
    urt.create(cid, ubundle)
    for dirpath, dirnames, filenames in os.walk(urt.root):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            assert os.lstat(name).st_uid == rootless_user.pw_uid, name


@pytest.fixture
def subids(rootless_user):
    u = subid_range("/etc/subuid", rootless_user.pw_name, rootless_user.pw_uid)
    g = subid_range("/etc/subgid", rootless_user.pw_name, rootless_user.pw_gid)
    if not u or not g or u[1] < 2000 or g[1] < 2000:
        pytest.skip(f"no usable /etc/subuid and /etc/subgid ranges for {rootless_user.pw_name}")
    return u, g


def test_rootless_multi_range_mapping_via_newuidmap(urt, cid, ubundle, rootless_user, subids):
    (ustart, ucount), (gstart, gcount) = subids
    ubundle.linux["uidMappings"] = [
        {"containerID": 0, "hostID": rootless_user.pw_uid, "size": 1},
        {"containerID": 1, "hostID": ustart, "size": ucount},
    ]
    ubundle.linux["gidMappings"] = [
        {"containerID": 0, "hostID": rootless_user.pw_gid, "size": 1},
        {"containerID": 1, "hostID": gstart, "size": gcount},
    ]
    ubundle.process["user"] = {"uid": 1000, "gid": 1000}
    out = ubundle.shared_dir()
    ubundle.sh("cat /proc/self/uid_map > /out/uid_map; id -u > /out/id; " + WAIT_FOR_STOP)
    st = urt.run_detached(cid, ubundle)
    wait_for(lambda: (out / "started").exists(), what="container to start")
    rows = [line.split() for line in (out / "uid_map").read_text().splitlines()]
    assert rows == [["0", str(rootless_user.pw_uid), "1"], ["1", str(ustart), str(ucount)]]
    assert (out / "id").read_text().strip() == "1000"
    assert proc_status(st["pid"])["Uid"].split() == [str(ustart + 999)] * 4


def _fails_cleanly(urt, cid, bundle):
    bundle.write()
    urt.fail("create", "--bundle", str(bundle.path), cid)
    assert_nothing_left(urt, cid, bundle.token, bundle.path)


def test_rootless_mapping_host_root_is_refused(urt, cid, ubundle):
    ubundle.linux["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 1}]
    ubundle.sh("echo must-not-run")
    _fails_cleanly(urt, cid, ubundle)


def test_rootless_mapping_outside_subuid_range_is_refused(urt, cid, ubundle, rootless_user,
                                                          subids):
    (ustart, ucount), _ = subids
    ubundle.linux["uidMappings"] = [
        {"containerID": 0, "hostID": rootless_user.pw_uid, "size": 1},
        {"containerID": 1, "hostID": ustart + ucount + 1000, "size": 100},
    ]
    ubundle.sh("echo must-not-run")
    _fails_cleanly(urt, cid, ubundle)


def test_rootless_bind_from_untraversable_host_dir_is_refused(urt, cid, ubundle, testdir):
    private = testdir / "root-only"
    private.mkdir(mode=0o700)
    (private / "sub").mkdir()
    (private / "sub" / "secret").write_text("s\n")
    ubundle.bind(private / "sub", "/mnt/private", "ro")
    ubundle.sh("cat /mnt/private/secret")
    _fails_cleanly(urt, cid, ubundle)


def test_rootless_network_namespace_only_loopback(urt, cid, ubundle):
    # An unprivileged user may create a network namespace inside its user ns.
    ubundle.linux["namespaces"].append({"type": "network"})
    ubundle.sh("tail -n +3 /proc/net/dev | cut -d: -f1")
    r = urt.run(cid, ubundle)
    assert r.rc == 0, str(r)
    assert r.out.split() == ["lo"]
