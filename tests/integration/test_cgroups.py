"""linux.resources through cgroups, and the commands that work on a
container's cgroup (pause, resume, update, events, ps, kill --all).

Limits are OBSERVED, not only written: a process over its memory limit is
killed, forks fail past pids.limit, a CPU quota throttles, a device rule
stops an open(). The same tests run on cgroup v1 (this host) and, from
tests/vm, on a pure cgroup v2 host.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from support import cgroups
from support.runtime import assert_nothing_left, cgroup_dirs_named, pid_alive, wait_for

from .scripts import IDLE

MiB = 1024 * 1024
# character devices that are not in every container's default set, and that
# anyone may open without side effects
DEVICE_CANDIDATES = ("/dev/fuse", "/dev/loop-control", "/dev/net/tun")


def _resources(bundle) -> dict:
    return bundle.linux.setdefault("resources", {})


def _memory_limit(bundle, limit: int) -> None:
    # swap counts memory + swap: equal values mean "no swap", on hosts that have some
    _resources(bundle)["memory"] = {"limit": limit, "swap": limit}


def _running(rt, cid, bundle, script=IDLE):
    out = bundle.shared_dir()
    bundle.sh(script)
    rt.run_detached(cid, bundle)
    wait_for(lambda: (out / "started").exists(), what="container to start")
    return out


def _init(rt, cid) -> int:
    return rt.state(cid)["pid"]


def _stats(rt, cid) -> dict:
    lines = rt.ok("events", "--stats", cid).out.splitlines()
    assert len(lines) == 1, lines
    event = json.loads(lines[0])
    assert event["type"] == "stats" and event["id"] == cid
    return event["data"]


# -- memory -------------------------------------------------------------------------

def test_memory_limit_oom_kills_the_process(rt, cid, bundle):
    _memory_limit(bundle, 32 * MiB)
    # awk doubles a string until it holds far more than the limit
    bundle.args("awk", "BEGIN { s = \"x\"; while (1) s = s s }")
    r = rt.run(cid, bundle, "--keep", timeout=60)
    assert r.rc == 137, str(r)
    assert rt.status(cid) == "stopped"
    record = json.loads((rt.root / cid / "state.json").read_text())["cgroup"]
    memory = next(directory for key, directory in record["dirs"].items()
                  if (key == "" if record["driver"] == "v2" else "memory" in key.split(",")))
    if record["driver"] == "v2":
        events = open(os.path.join(memory, "memory.events")).read()
        assert cgroups.stat_value(events, "oom_kill") >= 1, events
    else:
        control = open(os.path.join(memory, "memory.oom_control")).read()
        assert cgroups.stat_value(control, "oom_kill") >= 1, control
    rt.ok("delete", cid)
    assert_nothing_left(rt, cid)


def test_memory_limit_lets_a_smaller_process_live(rt, cid, bundle):
    _memory_limit(bundle, 64 * MiB)
    bundle.sh("head -c 8000000 /dev/zero | wc -c")
    assert rt.run_ok(cid, bundle).strip() == "8000000"


def test_memory_limit_is_written(rt, cid, bundle):
    _memory_limit(bundle, 48 * MiB)
    _resources(bundle)["memory"]["reservation"] = 16 * MiB
    _running(rt, cid, bundle)
    pid = _init(rt, cid)
    assert int(cgroups.read(pid, "memory", "memory.limit_in_bytes", "memory.max")) == 48 * MiB
    assert int(cgroups.read(pid, "memory", "memory.soft_limit_in_bytes", "memory.low")) == 16 * MiB
    if cgroups.is_v2():
        assert cgroups.read(pid, "memory", "", "memory.swap.max") == "0"


# -- pids ---------------------------------------------------------------------------

# busybox sh exits when a fork fails: the forks run in a subshell. Past it
# only builtins run, and the shell finally becomes a sleep without forking.
COUNT_PROCESSES = "n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo $n > /out/count; : > /out/done; " \
                  "exec sleep 30"
FORK_MANY = (
    "touch /out/started; (i=0; while [ $i -lt 20 ]; do sleep 30 & i=$((i+1)); done) 2>/out/err; "
    + COUNT_PROCESSES
)


def test_forks_fail_beyond_the_pids_limit(rt, cid, bundle):
    _resources(bundle)["pids"] = {"limit": 8}
    out = _running(rt, cid, bundle, FORK_MANY)
    wait_for(lambda: (out / "done").exists(), timeout=20, what="the forks")
    assert int((out / "count").read_text()) <= 8
    assert "can't fork" in (out / "err").read_text() or "Resource temporarily" in (out / "err").read_text()
    assert int(cgroups.read(_init(rt, cid), "pids", "pids.max", "pids.max")) == 8


# -- cpu ----------------------------------------------------------------------------

def test_cpu_quota_throttles(rt, cid, bundle):
    _resources(bundle)["cpu"] = {"quota": 10000, "period": 100000, "shares": 512}
    _running(rt, cid, bundle, "touch /out/started; while :; do :; done")
    pid = _init(rt, cid)
    if cgroups.is_v2():
        assert cgroups.read(pid, "cpu", "", "cpu.max") == "10000 100000"
        assert cgroups.read(pid, "cpu", "", "cpu.weight") == str(1 + ((512 - 2) * 9999) // 262142)
    else:
        assert cgroups.read(pid, "cpu", "cpu.cfs_quota_us", "") == "10000"
        assert cgroups.read(pid, "cpu", "cpu.shares", "") == "512"
    before = _stats(rt, cid)["cpu"]
    started = time.monotonic()
    time.sleep(1.0)
    after = _stats(rt, cid)["cpu"]
    elapsed = time.monotonic() - started
    used = (after["usage"]["total"] - before["usage"].get("total", 0)) / 1e9
    assert used < 0.35 * elapsed, f"a busy loop used {used:.2f}s of CPU in {elapsed:.2f}s at a 10% quota"
    throttled = after["throttling"].get("throttledPeriods", 0) - \
        before["throttling"].get("throttledPeriods", 0)
    assert throttled > 0, after


# -- devices ------------------------------------------------------------------------

def _device():
    for path in DEVICE_CANDIDATES:
        if os.path.exists(path) and os.stat(path).st_mode & 0o170000 == 0o020000:
            st = os.stat(path)
            return path, os.major(st.st_rdev), os.minor(st.st_rdev)
    pytest.skip(f"none of {DEVICE_CANDIDATES} exists on this host")


@pytest.mark.parametrize("rules, expected", [
    ([], "opened"),
    ([{"allow": False, "access": "rwm"}], "denied"),
    ([{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": "MAJOR", "minor": "MINOR",
                                          "access": "rw"}], "opened"),
    ([{"allow": True, "type": "c", "major": "MAJOR", "access": "rwm"},
      {"allow": False, "type": "c", "major": "MAJOR", "minor": "MINOR", "access": "r"}], "denied"),
], ids=["no-rules", "deny-all", "deny-all-then-allow", "allow-then-deny-read"])
def test_device_rules_decide_whether_a_device_opens(rt, cid, bundle, rules, expected):
    path, major, minor = _device()
    (bundle.rootfs / "mnt" / "dev").touch()
    bundle.add_mount("/mnt/dev", path, "bind", ["bind"])
    numbers = {"MAJOR": major, "MINOR": minor}
    _resources(bundle)["devices"] = [
        {key: numbers.get(value, value) if isinstance(value, str) else value for key, value in rule.items()}
        for rule in rules]
    bundle.sh("if (exec 3</mnt/dev) 2>/dev/null; then echo opened; else echo denied; fi; "
              "cat /dev/null && echo null-ok")
    assert rt.run_ok(cid, bundle).split() == [expected, "null-ok"]


# -- pause / resume -----------------------------------------------------------------

COUNT = "touch /out/started; i=0; while :; do i=$((i+1)); echo $i > /out/n; sleep 0.02; done"


def test_pause_freezes_and_resume_thaws(rt, cid, bundle):
    out = _running(rt, cid, bundle, COUNT)
    rt.ok("pause", cid)
    assert rt.status(cid) == "paused"
    assert [s["status"] for s in json.loads(rt.ok("list", "--format", "json").out)] == ["paused"]
    frozen = (out / "n").read_text()
    time.sleep(0.3)
    assert (out / "n").read_text() == frozen, "a paused container kept running"
    rt.fail("pause", cid)  # already paused
    rt.fail("exec", cid, "true")
    rt.ok("resume", cid)
    assert rt.status(cid) == "running"
    wait_for(lambda: (out / "n").read_text() not in ("", frozen), what="the container to go on")
    rt.fail("resume", cid)  # not paused


def test_a_paused_container_can_be_force_deleted(rt, cid, bundle):
    _running(rt, cid, bundle, COUNT)
    pid = _init(rt, cid)
    rt.ok("pause", cid)
    rt.fail("delete", cid)
    rt.ok("delete", "--force", cid)
    wait_for(lambda: not pid_alive(pid), what="init to die")
    assert_nothing_left(rt, cid)


# -- update -------------------------------------------------------------------------

SPAWN_ON_SIGNAL = (
    "touch /out/started; while [ ! -e /out/go ]; do sleep 0.02; done; "
    "(i=0; while [ $i -lt 12 ]; do sleep 30 & i=$((i+1)); done) 2>/out/err; " + COUNT_PROCESSES
)


def test_update_changes_a_running_containers_limits(rt, cid, bundle):
    _resources(bundle)["pids"] = {"limit": 100}
    _memory_limit(bundle, 64 * MiB)
    out = _running(rt, cid, bundle, SPAWN_ON_SIGNAL)
    pid = _init(rt, cid)
    rt.ok("update", "--pids-limit", "5", "--memory", "96m", "--memory-swap", "96m", "--cpu-quota", "20000",
          "--cpu-period", "100000", cid)
    assert cgroups.read(pid, "pids", "pids.max", "pids.max") == "5"
    assert int(cgroups.read(pid, "memory", "memory.limit_in_bytes", "memory.max")) == 96 * MiB
    if cgroups.is_v2():
        assert cgroups.read(pid, "cpu", "", "cpu.max") == "20000 100000"
    else:
        assert cgroups.read(pid, "cpu", "cpu.cfs_quota_us", "") == "20000"
    (out / "go").touch()
    wait_for(lambda: (out / "done").exists(), timeout=20, what="the forks")
    assert int((out / "count").read_text()) <= 5, "the new pids limit did not hold"
    recorded = json.loads((rt.root / cid / "state.json").read_text())["resources"]
    assert recorded["pids"] == {"limit": 5} and recorded["memory"]["limit"] == 96 * MiB


def test_update_from_a_resources_file_and_stdin(rt, cid, bundle, testdir):
    _running(rt, cid, bundle)
    pid = _init(rt, cid)
    spec = testdir / "resources.json"
    spec.write_text(json.dumps({"pids": {"limit": 33}}))
    rt.ok("update", "--resources", str(spec), cid)
    assert cgroups.read(pid, "pids", "pids.max", "pids.max") == "33"
    with open(testdir / "stdin.json", "w+") as stdin:
        stdin.write(json.dumps({"pids": {"limit": 44}}))
        stdin.seek(0)
        rt.ok("update", "-r", "-", cid, stdin=stdin)
    assert cgroups.read(pid, "pids", "pids.max", "pids.max") == "44"


def test_update_refuses_bad_values_naming_them(rt, cid, bundle, testdir):
    _running(rt, cid, bundle)
    assert "--memory" in rt.fail("update", "--memory", "lots", cid).err
    spec = testdir / "resources.json"
    spec.write_text(json.dumps({"memory": {"limit": -5}}))
    assert "linux.resources.memory.limit" in rt.fail("update", "-r", str(spec), cid).err
    assert "linux.resources.cpu.cpus" in rt.fail("update", "--cpuset-cpus", "0-4096", cid).err


def test_update_of_a_stopped_container_fails(rt, cid, bundle):
    bundle.args("true")
    rt.run_ok(cid, bundle, "--keep")
    rt.fail("update", "--pids-limit", "5", cid)


# -- events, ps, exec, kill --all ---------------------------------------------------

def test_events_stats_prints_runcs_json(rt, cid, bundle):
    _memory_limit(bundle, 64 * MiB)
    _resources(bundle)["pids"] = {"limit": 50}
    _running(rt, cid, bundle)
    data = _stats(rt, cid)
    assert set(data) >= {"cpu", "memory", "pids", "blkio", "hugetlb"}
    assert data["cpu"]["usage"]["total"] > 0
    assert data["memory"]["usage"]["usage"] > 0
    assert data["memory"]["usage"]["limit"] == 64 * MiB
    assert data["pids"]["current"] >= 1 and data["pids"]["limit"] == 50


def test_events_streams_stats_and_reports_oom(rt, cid, bundle):
    _memory_limit(bundle, 32 * MiB)
    out = bundle.shared_dir()
    bundle.sh("touch /out/started; while [ ! -e /out/go ]; do sleep 0.02; done; "
              "awk 'BEGIN { s = \"x\"; while (1) s = s s }'; sleep 0.3")
    rt.run_detached(cid, bundle)
    wait_for(lambda: (out / "started").exists(), what="container to start")
    events = rt.spawn("events", "--interval", "200ms", cid, stdout=subprocess.PIPE)
    try:
        first = json.loads(events.stdout.readline())
        assert first["type"] == "stats" and first["id"] == cid
        (out / "go").touch()
        seen = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = events.stdout.readline()
            if not line:
                break
            seen.append(json.loads(line)["type"])
            if "oom" in seen:
                break
        assert "oom" in seen, seen
    finally:
        events.kill()
        events.wait()


def test_events_ends_when_the_container_stops(rt, cid, bundle):
    out = _running(rt, cid, bundle, "touch /out/started; while [ ! -e /out/stop ]; do sleep 0.02; done")
    events = rt.spawn("events", "--interval", "100ms", cid, stdout=subprocess.DEVNULL)
    time.sleep(0.3)
    (out / "stop").touch()
    assert events.wait(timeout=15) == 0


def test_ps_lists_the_containers_processes(rt, cid, bundle):
    _running(rt, cid, bundle, "touch /out/started; sleep 1000 & sleep 1000")
    init = _init(rt, cid)
    pids = json.loads(rt.ok("ps", "--format", "json", cid).out)
    assert init in pids and len(pids) == 2 and all(pid_alive(p) for p in pids)
    table = rt.ok("ps", cid).out.splitlines()
    column = table[0].split().index("PID")
    assert sorted(int(line.split()[column]) for line in table[1:]) == sorted(pids)
    custom = rt.ok("ps", cid, "-o", "pid,comm").out.splitlines()
    assert custom[0].split() == ["PID", "COMMAND"] and len(custom) == 3


def test_exec_joins_the_containers_cgroup(rt, cid, bundle):
    _resources(bundle)["pids"] = {"limit": 50}
    _running(rt, cid, bundle)
    init = _init(rt, cid)
    rt.ok("exec", "-d", "--pid-file", str(bundle.path / "exec.pid"), cid, "sleep", "100")
    exec_pid = int((bundle.path / "exec.pid").read_text())
    assert cgroups.cgroup_dir(exec_pid, "pids") == cgroups.cgroup_dir(init, "pids")
    assert exec_pid in json.loads(rt.ok("ps", "--format", "json", cid).out)


def test_kill_all_reaches_every_process_in_the_cgroup(rt, cid, bundle):
    # without a pid namespace, killing the init would leave its children running
    bundle.drop_namespace("pid")
    _running(rt, cid, bundle, "touch /out/started; sleep 1000 & sleep 1000 & while :; do sleep 0.02; done")
    pids = json.loads(rt.ok("ps", "--format", "json", cid).out)
    assert len(pids) >= 3
    rt.ok("kill", "--all", cid, "KILL")
    wait_for(lambda: not any(pid_alive(p) for p in pids), what="every process to die")
    rt.ok("delete", cid)
    assert_nothing_left(rt, cid)


def test_kill_all_with_sigterm(rt, cid, bundle):
    bundle.drop_namespace("pid")
    _running(rt, cid, bundle, "touch /out/started; sleep 1000 & sleep 1000")
    pids = json.loads(rt.ok("ps", "--format", "json", cid).out)
    rt.ok("kill", "--all", cid, "TERM")
    wait_for(lambda: not any(pid_alive(p) for p in pids), what="every process to die")


def test_delete_kills_what_the_init_left_and_removes_the_cgroup(rt, cid, bundle):
    bundle.drop_namespace("pid")
    _running(rt, cid, bundle, "touch /out/started; sleep 1000 & sleep 1000")
    pids = json.loads(rt.ok("ps", "--format", "json", cid).out)
    assert cgroup_dirs_named(cid)
    rt.ok("delete", "--force", cid)
    wait_for(lambda: not any(pid_alive(p) for p in pids), what="every process to die")
    assert_nothing_left(rt, cid)


def test_state_records_the_cgroup_and_run_removes_it(rt, cid, bundle):
    bundle.linux["cgroupsPath"] = f"/rootlet-test-{cid}"
    bundle.args("cat", "/proc/self/cgroup")
    out = rt.run_ok(cid, bundle)
    assert f":/rootlet-test-{cid}\n" in out
    assert_nothing_left(rt, cid)


def test_a_relative_cgroups_path_is_below_the_runtimes_own_cgroup(rt, cid, bundle):
    bundle.linux["cgroupsPath"] = f"rootlet-test-{cid}"
    _running(rt, cid, bundle)
    directory = cgroups.cgroup_dir(_init(rt, cid), "pids")
    own = cgroups.cgroup_dir(os.getpid(), "pids")
    assert directory == os.path.join(own, f"rootlet-test-{cid}")


@pytest.mark.rootlet_only
def test_delete_removes_the_parent_cgroups_create_made(rt, cid, bundle):
    """runc 1.1 leaves the parents of a cgroupsPath a/b/<id> behind."""
    bundle.linux["cgroupsPath"] = f"/rootlet-test-parent-{cid}/b/{cid}"
    _running(rt, cid, bundle)
    made = os.path.dirname(os.path.dirname(cgroups.cgroup_dir(_init(rt, cid), "pids")))
    assert os.path.basename(made) == f"rootlet-test-parent-{cid}"
    rt.ok("delete", "--force", cid)
    assert not os.path.exists(made)


@pytest.mark.rootlet_only
def test_delete_keeps_a_parent_cgroup_another_container_uses(rt, cid, bundle, make_bundle):
    parent = f"rootlet-test-parent-{cid}"
    bundle.linux["cgroupsPath"] = f"/{parent}/{cid}"
    other = make_bundle().args("sleep", "1000")
    other.linux["cgroupsPath"] = f"/{parent}/{cid}-2"
    _running(rt, cid, bundle)
    rt.create(f"{cid}-2", other)
    made = os.path.dirname(cgroups.cgroup_dir(_init(rt, cid), "pids"))
    rt.ok("delete", "--force", cid)
    try:
        assert os.path.isdir(made)
    finally:
        rt.ok("delete", "--force", f"{cid}-2")
        for hierarchy in os.listdir("/sys/fs/cgroup"):  # it was not the second container's to remove
            if os.path.isdir(f"/sys/fs/cgroup/{hierarchy}/{parent}"):
                os.rmdir(f"/sys/fs/cgroup/{hierarchy}/{parent}")


# -- bad input leaves nothing behind ------------------------------------------------

@pytest.mark.parametrize("resources, path", [
    ({"memory": {"limit": -5}}, "linux.resources.memory.limit"),
    ({"cpu": {"cpus": "0-4096"}}, "linux.resources.cpu.cpus"),
    ({"cpu": {"cpus": "zero"}}, "linux.resources.cpu.cpus"),
    ({"cpu": {"idle": 3}}, "linux.resources.cpu.idle"),
    ({"devices": [{"allow": False, "type": "x", "access": "rwm"}]}, "linux.resources.devices[0].type"),
    ({"devices": [{"allow": False, "access": "rwx"}]}, "linux.resources.devices[0].access"),
    ({"rdma": {"mlx5_0": {"hcaHandles": 3}}}, "linux.resources.rdma"),
    ({"hugepageLimits": [{"pageSize": "2XB", "limit": 0}]}, "linux.resources.hugepageLimits[0].pageSize"),
    ({"unified": {"../etc": "1"}}, "linux.resources.unified"),
], ids=["negative-memory", "cpuset-out-of-range", "cpuset-syntax", "idle", "device-type", "device-access",
        "rdma", "hugepage-size", "unified-key"])
def test_bad_resources_fail_naming_the_field_and_leave_nothing(rt, cid, bundle, resources, path):
    bundle.linux["resources"] = resources
    bundle.args("true")
    bundle.write()
    r = rt.fail("create", "--bundle", str(bundle.path), cid)
    assert path in r.err, r.err
    assert_nothing_left(rt, cid, bundle.token, bundle.path)


def test_a_value_the_kernel_refuses_names_the_file_and_leaves_nothing(rt, cid, bundle):
    # the kernel wants a CFS quota of at least 1ms
    _resources(bundle)["cpu"] = {"quota": 500, "period": 100000}
    bundle.args("true")
    bundle.write()
    r = rt.fail("create", "--bundle", str(bundle.path), cid)
    assert "linux.resources.cpu.quota" in r.err and ("cpu.max" in r.err or "cpu.cfs_quota_us" in r.err), r.err
    assert_nothing_left(rt, cid, bundle.token, bundle.path)


def test_unified_on_v1_or_an_unknown_unified_key_fails_and_leaves_nothing(rt, cid, bundle):
    _resources(bundle)["unified"] = {"memory.no_such_file": "1"}
    bundle.args("true")
    bundle.write()
    r = rt.fail("create", "--bundle", str(bundle.path), cid)
    assert 'linux.resources.unified' in r.err, r.err
    assert_nothing_left(rt, cid, bundle.token, bundle.path)


def test_disable_oom_killer(rt, cid, bundle):
    _resources(bundle)["memory"] = {"limit": 64 * MiB, "disableOOMKiller": True}
    if cgroups.is_v2():
        bundle.args("true")
        bundle.write()
        assert "disableOOMKiller" in rt.fail("create", "--bundle", str(bundle.path), cid).err
        assert_nothing_left(rt, cid)
    else:
        _running(rt, cid, bundle)
        control = cgroups.read(_init(rt, cid), "memory", "memory.oom_control", "")
        assert cgroups.stat_value(control, "oom_kill_disable") == 1


def test_features_report_cgroup_support(rt):
    cgroup = json.loads(rt.ok("features").out)["linux"]["cgroup"]
    assert cgroup["v1"] is True and cgroup["v2"] is True
