"""Failing commands exit non-zero, say why on stderr and leave nothing behind:
no state entry under --root, no process, no mount, no cgroup."""

from __future__ import annotations

import json

import pytest
from support.runtime import assert_nothing_left, pid_alive, wait_for

from .scripts import WAIT_FOR_STOP


def _running(rt, cid, bundle):
    out = bundle.shared_dir()
    bundle.sh(WAIT_FOR_STOP)
    rt.create(cid, bundle)
    rt.ok("start", cid)
    wait_for(lambda: (out / "started").exists(), what="container to start")
    return rt.state(cid)


@pytest.mark.parametrize("command", [
    ("state",), ("start",), ("kill",), ("kill", "--all"), ("delete",),
])
def test_unknown_id_fails(rt, command, token):
    rt.fail(*command, f"no-such-{token}")
    assert rt.ids() == []


def test_delete_force_of_unknown_id_succeeds_silently(rt, token):
    # runc: `delete --force` of a container that does not exist exits 0 and
    # prints nothing (idempotent forced delete).
    r = rt("delete", "--force", f"no-such-{token}")
    assert r.rc == 0, str(r)
    assert rt.ids() == []


def test_duplicate_create_fails_and_leaves_first_intact(rt, cid, make_bundle):
    first = make_bundle()
    out = first.shared_dir()
    first.sh(WAIT_FOR_STOP)
    rt.create(cid, first)
    before = rt.state(cid)
    second = make_bundle()
    second.sh("echo second")
    second.write()
    rt.fail("create", "--bundle", str(second.path), cid)
    after = rt.state(cid)
    assert after == before
    assert pid_alive(after["pid"])
    rt.ok("start", cid)
    wait_for(lambda: (out / "started").exists(), what="first container to start")
    assert rt.state(cid)["bundle"] == str(first.path)
    assert_nothing_left(rt, f"ct-{second.token}", second.token, second.path)


def test_duplicate_run_fails_and_leaves_first_intact(rt, cid, make_bundle):
    first = make_bundle()
    first.sh("sleep 100")
    st = rt.run_detached(cid, first)
    second = make_bundle()
    second.sh("exit 0")
    second.write()
    rt.fail("run", "--bundle", str(second.path), cid)
    assert rt.state(cid) == st


def test_start_twice_fails(rt, cid, bundle):
    st = _running(rt, cid, bundle)
    rt.fail("start", cid)
    assert rt.state(cid) == st


def test_start_of_stopped_container_fails(rt, cid, bundle):
    bundle.sh("exit 0")
    rt.create(cid, bundle)
    rt.ok("start", cid)
    rt.wait_status(cid, "stopped")
    rt.fail("start", cid)


def test_delete_running_without_force_fails(rt, cid, bundle):
    st = _running(rt, cid, bundle)
    rt.fail("delete", cid)
    assert rt.state(cid)["status"] == "running"
    assert pid_alive(st["pid"])


@pytest.mark.parametrize("sig", ["SIGNOPE", "NOPE", "999", "-1"])
def test_kill_with_unknown_signal_fails(rt, cid, bundle, sig):
    st = _running(rt, cid, bundle)
    rt.fail("kill", cid, sig)
    assert rt.state(cid)["status"] == "running"
    assert pid_alive(st["pid"])


def test_kill_of_stopped_container_fails(rt, cid, bundle):
    bundle.sh("exit 0")
    rt.create(cid, bundle)
    rt.ok("start", cid)
    rt.wait_status(cid, "stopped")
    rt.fail("kill", cid, "KILL")


# -- create/run that cannot succeed ----------------------------------------------

def _break_empty_args(b):
    b.process["args"] = []


def _break_missing_binary(b):
    b.args(f"/bin/no-such-binary-{b.token}", b.token)


def _break_missing_on_path(b):
    b.args(f"no-such-binary-{b.token}", b.token)


def _break_missing_rootfs(b):
    b.config["root"]["path"] = f"no-such-rootfs-{b.token}"


def _break_relative_cwd(b):
    b.process["cwd"] = "relative/dir"


def _break_missing_mount_source(b):
    b.bind(f"/nonexistent-{b.token}", "/mnt/x")


def _break_bad_namespace(b):
    b.linux["namespaces"].append({"type": "no-such-ns"})


def _break_bad_namespace_path(b):
    b.linux["namespaces"] = [
        {"type": "network", "path": f"/nonexistent-{b.token}"} if ns["type"] == "network" else ns
        for ns in b.linux["namespaces"]
    ]


def _break_bad_rlimit(b):
    b.process["rlimits"].append({"type": "RLIMIT_NO_SUCH", "hard": 1, "soft": 1})


def _break_missing_process(b):
    del b.config["process"]


BREAKAGES = [
    _break_empty_args,
    _break_missing_binary,
    _break_missing_on_path,
    _break_missing_rootfs,
    _break_relative_cwd,
    _break_missing_mount_source,
    _break_bad_namespace,
    _break_bad_namespace_path,
    _break_bad_rlimit,
    _break_missing_process,
]


def _ids(fn):
    return fn.__name__.removeprefix("_break_")


@pytest.mark.parametrize("breakage", BREAKAGES, ids=_ids)
def test_create_with_bad_config_fails_cleanly(rt, cid, bundle, breakage):
    bundle.sh("echo must-not-run")
    breakage(bundle)
    bundle.write()
    rt.fail("create", "--bundle", str(bundle.path), cid)
    assert_nothing_left(rt, cid, bundle.token, bundle.path)


@pytest.mark.parametrize("breakage", BREAKAGES, ids=_ids)
def test_run_with_bad_config_fails_cleanly(rt, cid, bundle, breakage):
    bundle.sh("echo must-not-run")
    breakage(bundle)
    bundle.write()
    r = rt.fail("run", "--bundle", str(bundle.path), cid)
    assert "must-not-run" not in r.out
    assert_nothing_left(rt, cid, bundle.token, bundle.path)


def test_unknown_capability_is_ignored_with_a_warning(rt, cid, bundle):
    # runc only warns about capabilities it does not know and runs anyway.
    bundle.process["capabilities"]["bounding"].append("CAP_NO_SUCH_THING")
    bundle.sh("echo ran")
    r = rt.run(cid, bundle)
    assert r.rc == 0, str(r)
    assert "ran" in r.out
    assert "CAP_NO_SUCH_THING" in r.err


def test_create_with_unparsable_config_fails_cleanly(rt, cid, bundle):
    bundle.write_raw('{"ociVersion": "1.0.2", "process": ')
    rt.fail("create", "--bundle", str(bundle.path), cid)
    assert_nothing_left(rt, cid, bundle.token, bundle.path)


def test_create_without_config_fails_cleanly(rt, cid, bundle):
    rt.fail("create", "--bundle", str(bundle.path), cid)
    assert_nothing_left(rt, cid, bundle.token, bundle.path)


def test_create_with_missing_bundle_fails_cleanly(rt, cid, testdir):
    rt.fail("create", "--bundle", str(testdir / "no-such-bundle"), cid)
    assert_nothing_left(rt, cid)


@pytest.mark.parametrize("bad_id", ["", "a/b", "..", "a b"])
def test_create_with_invalid_id_fails(rt, bundle, bad_id):
    bundle.sh("echo must-not-run")
    bundle.write()
    rt.fail("create", "--bundle", str(bundle.path), bad_id)
    assert rt.ids() == []
    assert rt.root_entries() == [] or all(".." not in e for e in rt.root_entries())


def test_failed_create_releases_the_id(rt, cid, bundle):
    bundle.process["args"] = []
    bundle.write()
    rt.fail("create", "--bundle", str(bundle.path), cid)
    bundle.sh("exit 0")
    rt.create(cid, bundle)
    assert rt.status(cid) == "created"


# -- --log --log-format json ------------------------------------------------------

def test_json_log_ends_with_error_record_on_failure(rt, cid, bundle, testdir):
    log = testdir / "runtime.log"
    bundle.process["args"] = []
    bundle.write()
    r = rt("create", "--bundle", str(bundle.path), cid,
           global_args=("--log", str(log), "--log-format", "json"))
    assert r.rc != 0
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines, "log file is empty"
    last = json.loads(lines[-1])
    assert last["level"] == "error"
    assert last["msg"].strip()
    for line in lines:
        json.loads(line)  # every line is a JSON object
    assert_nothing_left(rt, cid, bundle.token, bundle.path)


def test_json_log_of_unknown_id(rt, testdir, token):
    log = testdir / "runtime.log"
    r = rt("state", f"nope-{token}", global_args=("--log", str(log), "--log-format", "json"))
    assert r.rc != 0
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["level"] == "error" and last["msg"]
