"""Cgroup v2: the behaviours of tests/integration/test_cgroups.py again,
packed into few containers (under software emulation every runtime command
costs seconds), plus what only v2 has: io.max, cpuset, hugetlb, the eBPF
device filter, raw `unified` settings, and a delegated rootless subtree."""

from __future__ import annotations

import json
import os
import re
import time

import pytest
from support import cgroups
from support.bundle import rootless_config
from support.runtime import Runtime, assert_nothing_left, pid_alive, wait_for

MiB = 1024 * 1024


def _resources(bundle) -> dict:
    return bundle.linux.setdefault("resources", {})


def _file(pid: int, name: str) -> str:
    with open(os.path.join(cgroups.cgroup_dir(pid), name)) as f:
        return f.read().strip()


def _state_file(rt, cid) -> dict:
    return json.loads((rt.root / cid / "state.json").read_text())


COUNTER = ("touch /out/started; sleep 1000 & sleep 1000 & "
           "i=0; while :; do i=$((i+1)); echo $i > /out/n; sleep 0.05; done")


def test_limits_pause_update_events_ps_kill_all_and_delete(rt, cid, bundle):
    """One container through the whole cgroup life cycle."""
    multi_cpu = len(os.sched_getaffinity(0)) >= 2
    cpu = {"shares": 1024, "quota": 50000, "period": 100000}
    if multi_cpu:
        cpu.update(cpus="1", mems="0")
    _resources(bundle).update({
        "memory": {"limit": 64 * MiB, "swap": 96 * MiB, "reservation": 8 * MiB},
        "pids": {"limit": 40},
        "cpu": cpu,
        "unified": {"memory.high": str(48 * MiB)},
    })
    bundle.drop_namespace("pid")  # kill --all must find the children through the cgroup
    out = bundle.shared_dir()
    bundle.sh(COUNTER)
    rt.run_detached(cid, bundle)
    wait_for(lambda: (out / "started").exists(), timeout=30, what="container to start")
    pid = rt.state(cid)["pid"]
    # limits, as the kernel holds them
    assert _file(pid, "memory.max") == str(64 * MiB)
    assert _file(pid, "memory.swap.max") == str(32 * MiB)  # v2 counts swap alone
    assert _file(pid, "memory.low") == str(8 * MiB)
    assert _file(pid, "memory.high") == str(48 * MiB)
    assert _file(pid, "pids.max") == "40"
    assert _file(pid, "cpu.max") == "50000 100000"
    assert _file(pid, "cpu.weight") == "39"
    if multi_cpu:
        assert _file(pid, "cpuset.cpus") == "1"
        with open(f"/proc/{pid}/status") as status:
            assert "Cpus_allowed_list:\t1\n" in status.read()
    assert _state_file(rt, cid)["cgroup"]["driver"] == "v2"
    # pause / resume
    rt.ok("pause", cid)
    assert rt.status(cid) == "paused"
    assert _file(pid, "cgroup.freeze") == "1"
    frozen = (out / "n").read_text()
    time.sleep(1.0)
    assert (out / "n").read_text() == frozen
    rt.ok("resume", cid)
    wait_for(lambda: (out / "n").read_text() not in ("", frozen), timeout=20, what="the container to go on")
    # update
    rt.ok("update", "--memory", "80m", "--memory-swap", "80m", "--pids-limit", "30", "--cpu-shares", "512",
          cid)
    assert _file(pid, "memory.max") == str(80 * MiB)
    assert _file(pid, "memory.swap.max") == "0"
    assert _file(pid, "pids.max") == "30"
    assert _file(pid, "cpu.weight") == "20"
    # events --stats and ps
    stats = json.loads(rt.ok("events", "--stats", cid).out)
    assert stats["type"] == "stats" and stats["id"] == cid
    assert stats["data"]["memory"]["usage"]["limit"] == 80 * MiB and stats["data"]["pids"]["limit"] == 30
    assert stats["data"]["cpu"]["usage"]["total"] > 0 and stats["data"]["pids"]["current"] >= 3
    pids = json.loads(rt.ok("ps", "--format", "json", cid).out)
    assert pid in pids and len(pids) >= 3
    # kill --all: cgroup.kill reaches the init's children, which share our pid namespace
    rt.ok("kill", "--all", cid, "KILL")
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=20, what="every process to die")
    rt.ok("delete", cid)
    assert_nothing_left(rt, cid)


AWK_EATS_MEMORY = "awk 'BEGIN { s = \"x\"; while (1) s = s s }'"
FORKS_THEN_SPINS = (
    "(i=0; while [ $i -lt 20 ]; do sleep 30 & i=$((i+1)); done) 2>/out/err; "
    "n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo $n > /out/count; "
    "while :; do :; done"
)


def test_pids_cpu_and_memory_limits_are_observed(rt, cid, bundle):
    _resources(bundle).update({"pids": {"limit": 8}, "cpu": {"quota": 10000, "period": 100000}})
    out = bundle.shared_dir()
    bundle.sh(FORKS_THEN_SPINS)
    rt.run_detached(cid, bundle)
    wait_for(lambda: (out / "count").exists() and (out / "count").read_text(), timeout=60, what="the forks")
    pid = rt.state(cid)["pid"]
    assert int((out / "count").read_text()) <= 8
    assert "can't fork" in (out / "err").read_text() or "Resource temporarily" in (out / "err").read_text()
    before = cgroups.stat_value(_file(pid, "cpu.stat"), "usage_usec")
    started = time.monotonic()
    time.sleep(2.0)
    used = (cgroups.stat_value(_file(pid, "cpu.stat"), "usage_usec") - before) / 1e6
    assert used < 0.35 * (time.monotonic() - started), f"{used}s of CPU at a 10% quota"
    assert cgroups.stat_value(_file(pid, "cpu.stat"), "nr_throttled") > 0
    rt.ok("delete", "--force", cid)
    # memory: the OOM killer ends a process over its limit
    other = f"{cid}-oom"
    bundle.linux["resources"] = {"memory": {"limit": 32 * MiB, "swap": 32 * MiB}}
    bundle.args("sh", "-c", AWK_EATS_MEMORY)
    r = rt.run(other, bundle, "--keep", timeout=120)
    assert r.rc == 137, str(r)
    directory = _state_file(rt, other)["cgroup"]["dirs"][""]
    with open(f"{directory}/memory.events") as events:
        assert cgroups.stat_value(events.read(), "oom_kill") >= 1
    rt.ok("delete", other)
    assert_nothing_left(rt, other)


def _device(path: str):
    if not os.path.exists(path):
        return None
    st = os.stat(path)
    kind = {0o020000: "c", 0o060000: "b"}.get(st.st_mode & 0o170000)
    return (path, kind, os.major(st.st_rdev), os.minor(st.st_rdev)) if kind else None


def test_the_ebpf_device_filter(rt, cid, bundle):
    from runtime import _bpf

    found = [d for d in map(_device, ("/dev/vda", "/dev/rtc0", "/dev/fuse", "/dev/loop-control")) if d]
    if len(found) < 2:
        pytest.skip("needs two openable device nodes (the VM has /dev/vda and /dev/rtc0)")
    (allowed, allowed_kind, major, minor), (denied, *_rest) = found[:2]
    for name in ("allowed", "denied"):
        (bundle.rootfs / "mnt" / name).touch()
    bundle.add_mount("/mnt/allowed", allowed, "bind", ["bind"])
    bundle.add_mount("/mnt/denied", denied, "bind", ["bind"])
    _resources(bundle)["devices"] = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": allowed_kind, "major": major, "minor": minor, "access": "r"},
    ]
    out = bundle.shared_dir()
    bundle.sh("for d in allowed denied; do if (exec 3</mnt/$d) 2>/dev/null; then echo $d:open; "
              "else echo $d:refused; fi; done > /out/result; "
              "if (exec 3<>/mnt/allowed) 2>/dev/null; then echo rw:open; else echo rw:refused; fi "
              ">> /out/result; "
              "cat /dev/null && echo null:open >> /out/result; touch /out/started; sleep 1000")
    rt.run_detached(cid, bundle)
    wait_for(lambda: (out / "started").exists(), timeout=30, what="container to start")
    assert (out / "result").read_text().split() == ["allowed:open", "denied:refused", "rw:refused",
                                                    "null:open"]
    fd = os.open(cgroups.cgroup_dir(rt.state(cid)["pid"]), os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert len(_bpf.bpf_query(fd, _bpf.BPF_CGROUP_DEVICE)) == 1
    finally:
        os.close(fd)


def _seconds(text: str) -> float:
    """busybox `time`: "real 0m 2.51s"."""
    found = re.search(r"real\s+(?:(\d+)m\s*)?([\d.]+)s", text)
    assert found, text
    return int(found.group(1) or 0) * 60 + float(found.group(2))


def test_io_max_throttles_reads(rt, cid, bundle):
    device = _device("/dev/vda")
    if device is None or device[1] != "b":
        pytest.skip("needs the VM runner's scratch disk /dev/vda")
    _path, _kind, major, minor = device
    bundle.linux["devices"] = [{"path": "/dev/disk0", "type": "b", "major": major, "minor": minor}]
    _resources(bundle)["blockIO"] = {"throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": MiB}]}
    bundle.linux["namespaces"].append({"type": "cgroup"})
    bundle.config["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                                    "options": ["nosuid", "noexec", "nodev", "ro"]})
    bundle.sh("cat /sys/fs/cgroup/io.max; time dd if=/dev/disk0 of=/dev/null bs=256k count=12 iflag=direct")
    r = rt.run(cid, bundle, timeout=120)
    assert r.rc == 0, str(r)
    assert f"{major}:{minor} rbps={MiB}" in r.out
    assert _seconds(r.err) >= 2.0, f"3 MiB at 1 MiB/s:\n{r.err}"


def test_hugetlb_limit_stops_an_allocation(rt, cid, bundle):
    try:
        free = int(open("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages").read())
    except OSError:
        free = 0
    if free < 4:
        pytest.skip("needs 4 free 2 MiB huge pages (the VM runner reserves 16)")
    _resources(bundle)["hugepageLimits"] = [{"pageSize": "2MB", "limit": 2 * MiB}]
    (bundle.rootfs / "mnt" / "huge").mkdir()
    bundle.add_mount("/mnt/huge", "hugetlbfs", "hugetlbfs", ["pagesize=2M"])
    bundle.sh("fallocate -l 2097152 /mnt/huge/one && echo one:ok; "
              "fallocate -l 4194304 /mnt/huge/two 2>/dev/null && echo two:ok || echo two:refused")
    assert rt.run_ok(cid, bundle, timeout=120).split() == ["one:ok", "two:refused"]


def test_an_unknown_unified_key_fails_and_leaves_nothing(rt, cid, bundle):
    _resources(bundle)["unified"] = {"memory.no_such_file": "1"}
    bundle.args("true")
    bundle.write()
    r = rt.fail("create", "--bundle", str(bundle.path), cid)
    assert 'linux.resources.unified["memory.no_such_file"]' in r.err and "memory.no_such_file" in r.err, r.err
    _resources(bundle).pop("unified")
    _resources(bundle)["memory"] = {"disableOOMKiller": True}
    bundle.write()
    assert "disableOOMKiller" in rt.fail("create", "--bundle", str(bundle.path), cid).err
    assert_nothing_left(rt, cid, bundle.token, bundle.path)


DELEGATED = "/sys/fs/cgroup/rootlet-delegated"


def test_rootless_in_a_delegated_subtree(runtime_binary, testdir, rootfs_template, token, make_bundle):
    """As under a systemd user session: the user owns a cgroup subtree and
    runs in a leaf of it; the container's cgroup goes beside that leaf."""
    import pwd

    try:
        user = pwd.getpwnam("rootlet-test")
    except KeyError:
        pytest.skip("user rootlet-test does not exist")
    leaf = f"{DELEGATED}/session-{token}"
    os.makedirs(leaf)
    try:
        with open(f"{DELEGATED}/cgroup.subtree_control", "w") as control:
            control.write("+memory +pids")
        for path in (DELEGATED, leaf):
            for name in ("", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"):
                os.chown(os.path.join(path, name) if name else path, user.pw_uid, user.pw_gid)
        home = testdir / "user"
        home.mkdir()
        os.chmod(testdir, 0o755)
        os.chown(home, user.pw_uid, user.pw_gid)
        bundle = make_bundle()
        bundle.config = rootless_config(user.pw_uid, user.pw_gid, ["sh", "-c", "cat /proc/self/cgroup"])
        bundle.config["linux"]["resources"] = {"memory": {"limit": 32 * MiB}, "pids": {"limit": 20}}
        bundle.write()
        bundle.chown_all(user.pw_uid, user.pw_gid)
        # a root shell puts itself in the user's leaf, then becomes the user
        wrap = ["sh", "-c", f'echo $$ > {leaf}/cgroup.procs && exec "$@"', "wrap",
                "setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups",
                "env", f"XDG_RUNTIME_DIR={home}", f"HOME={home}"]
        urt = Runtime(runtime_binary, home / "state", prefix=wrap)
        cid = f"ct-{token}"
        r = urt("run", "--bundle", str(bundle.path), cid, timeout=120)
        assert r.rc == 0, str(r)
        assert f"0::/rootlet-delegated/rootlet-{cid}" in r.out
        assert not os.path.exists(f"{DELEGATED}/rootlet-{cid}")
    finally:
        for directory in sorted((d for d, _, _ in os.walk(DELEGATED)), key=len, reverse=True):
            try:
                with open(f"{directory}/cgroup.procs") as procs:
                    for pid in procs.read().split():
                        with open("/sys/fs/cgroup/cgroup.procs", "w") as root_procs:
                            root_procs.write(pid)
                os.rmdir(directory)
            except OSError:
                pass
