"""The pure parts of runtime.cgroups: host detection, the resource planners
and their conversions, the device-filter assembler, and the command-line
parsers of update and events."""

from __future__ import annotations

import itertools
import random

import pytest

from runtime import cgroups
from runtime.cgroups import bpf, host, plan
from runtime.cgroups.commands import merge, parse_bytes, parse_duration, resources_from_flags
from runtime.errors import ConfigError, RootletError

HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
HYBRID_CGROUP = "4:memory:/user.slice\n3:freezer:/\n2:cpu,cpuacct:/\n1:name=systemd:/user.slice/s\n0::/u\n"
UNIFIED_MOUNTINFO = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"


def test_host_detection_hybrid():
    found = host.parse(HYBRID_MOUNTINFO, HYBRID_CGROUP)
    assert found.mode == host.HYBRID
    assert [h.key for h in found.hierarchies()] == ["cpu,cpuacct", "memory", "freezer", "name=systemd"]
    assert found.v1["cpuacct"].mountpoint == "/sys/fs/cgroup/cpu,cpuacct"
    assert found.v1["memory"].own == "/user.slice"
    assert found.v1["name=systemd"].own == "/user.slice/s"
    assert found.unified.mountpoint == "/sys/fs/cgroup/unified" and found.unified.own == "/u"
    assert found.v1["memory"].directory("/rootlet/x") == "/sys/fs/cgroup/memory/rootlet/x"


def test_host_detection_unified_and_legacy():
    assert host.parse(UNIFIED_MOUNTINFO, "0::/\n").mode == host.UNIFIED
    legacy = "\n".join(line for line in HYBRID_MOUNTINFO.splitlines() if "cgroup2" not in line)
    assert host.parse(legacy, HYBRID_CGROUP).mode == host.LEGACY
    assert host.parse("", "").mode == host.NONE


def test_a_mount_of_a_subtree_maps_paths_below_its_root():
    found = host.parse("30 23 0:26 /ctr /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "0::/ctr/a\n")
    assert found.unified.directory("/ctr/a/b") == "/sys/fs/cgroup/a/b"


@pytest.mark.parametrize("cgroups_path, own, expected", [
    ("", "/", "/rootlet/c1"), ("/abs/path", "/x", "/abs/path"), ("rel/x", "/own", "/own/rel/x"),
    ("rel", "/", "/rel"), ("//a//b/", "/", "/a/b"),
])
def test_cgroups_path(cgroups_path, own, expected):
    assert cgroups._path(cgroups_path, "c1", own, None) == expected


def test_cgroups_path_refuses_dot_dot():
    with pytest.raises(RootletError, match="linux.cgroupsPath"):
        cgroups._path("/a/../../etc", "c1", "/", None)


def test_rootless_default_path_is_in_the_delegated_subtree():
    assert cgroups._path("", "c1", "/user/app.scope", "/user") == "/user/rootlet-c1"


# -- planners -----------------------------------------------------------------------

def writes(resources, v2, **kw):
    return [(controller, alternatives[0][0] if len(alternatives) == 1 else tuple(a[0] for a in alternatives),
             alternatives[0][1]) for controller, alternatives, _ in plan.plan(resources, v2=v2, **kw).writes]


@pytest.mark.parametrize("shares, weight", [
    (2, 1), (1024, 39), (262144, 10000), (512, 20), (1, 1), (10**9, 10000),
])
def test_cpu_shares_to_weight(shares, weight):
    assert plan.shares_to_weight(shares) == weight


@pytest.mark.parametrize("blkio, io", [(10, 1), (1000, 10000), (500, 4950)])
def test_blkio_weight_to_io_weight(blkio, io):
    assert plan.blkio_to_io_weight(blkio) == io


def test_memory_v2():
    got = writes({"memory": {"limit": 100, "swap": 300, "reservation": 50}}, True)
    assert got == [("memory", "memory.max", "100"), ("memory", "memory.swap.max", "200"),
                   ("memory", "memory.low", "50")]
    assert writes({"memory": {"limit": -1}}, True) == [("memory", "memory.max", "max"),
                                                       ("memory", "memory.swap.max", "max")]
    assert writes({"memory": {"limit": 100, "swap": -1}}, True)[1] == ("memory", "memory.swap.max", "max")


def test_memory_v1():
    got = writes({"memory": {"limit": 100, "swap": 300, "reservation": 50, "swappiness": 10,
                             "disableOOMKiller": True}}, False)
    assert got == [("memory", "memory.limit_in_bytes", "100"),
                   ("memory", "memory.memsw.limit_in_bytes", "300"),
                   ("memory", "memory.soft_limit_in_bytes", "50"), ("memory", "memory.swappiness", "10"),
                   ("memory", "memory.oom_control", "1")]


@pytest.mark.parametrize("memory, v2, path", [
    ({"limit": -2}, True, "linux.resources.memory.limit"),
    ({"reservation": -7}, False, "linux.resources.memory.reservation"),
    ({"limit": 100, "swap": 50}, True, "linux.resources.memory.swap"),
    ({"limit": 100, "swap": 50}, False, "linux.resources.memory.swap"),
    ({"swap": 50}, True, "linux.resources.memory.swap"),
    ({"disableOOMKiller": True}, True, "linux.resources.memory.disableOOMKiller"),
    ({"swappiness": 101}, False, "linux.resources.memory.swappiness"),
])
def test_bad_memory_values_name_the_field(memory, v2, path):
    with pytest.raises(ConfigError) as caught:
        plan.plan({"memory": memory}, v2=v2)
    assert caught.value.path == path


def test_kernel_memory_is_only_a_warning():
    result = plan.plan({"memory": {"kernel": 1000}}, v2=False)
    assert result.writes == [] and "kernel" in result.warnings[0]


def test_cpu_v2():
    cpu = {"shares": 1024, "quota": 50000, "period": 100000, "burst": 1000, "idle": 1}
    assert writes({"cpu": cpu}, True) == [
        ("cpu", "cpu.weight", "39"), ("cpu", "cpu.max", "50000 100000"), ("cpu", "cpu.max.burst", "1000"),
        ("cpu", "cpu.idle", "1")]
    assert writes({"cpu": {"quota": -1}}, True) == [("cpu", "cpu.max", "max")]
    assert writes({"cpu": {"period": 20000}}, True) == [("cpu", "cpu.max", "max 20000")]
    assert writes({"cpu": {"quota": 5000}}, True) == [("cpu", "cpu.max", "5000")]


def test_cpu_v1():
    cpu = {"shares": 1024, "quota": 50000, "period": 100000, "realtimeRuntime": 10}
    assert writes({"cpu": cpu}, False) == [
        ("cpu", "cpu.shares", "1024"), ("cpu", "cpu.cfs_period_us", "100000"),
        ("cpu", "cpu.cfs_quota_us", "50000"),
        ("cpu", "cpu.rt_runtime_us", "10")]


def test_realtime_is_refused_on_v2():
    with pytest.raises(ConfigError, match="real-time"):
        plan.plan({"cpu": {"realtimeRuntime": 10}}, v2=True)


def test_cpuset_is_checked_against_the_host():
    available = {"cpus": frozenset({0, 1}), "mems": frozenset({0})}
    assert writes({"cpu": {"cpus": "0-1", "mems": "0"}}, True, **available) == [
        ("cpuset", "cpuset.cpus", "0-1"), ("cpuset", "cpuset.mems", "0")]
    with pytest.raises(ConfigError, match="CPU 2 does not exist") as caught:
        plan.plan({"cpu": {"cpus": "0-2"}}, v2=False, cpus=frozenset({0, 1}))
    assert caught.value.path == "linux.resources.cpu.cpus"
    with pytest.raises(ConfigError, match="runs backwards"):
        plan.plan({"cpu": {"mems": "3-1"}}, v2=True)


def test_cpu_lists_round_trip():
    assert plan.parse_list("0-3,5,7-8", "x") == {0, 1, 2, 3, 5, 7, 8}
    assert plan.format_list({0, 1, 2, 3, 5, 7, 8}) == "0-3,5,7-8"


def test_pids():
    assert writes({"pids": {"limit": 10}}, True) == [("pids", "pids.max", "10")]
    assert writes({"pids": {"limit": -1}}, False) == [("pids", "pids.max", "max")]


BLOCK = {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 100}],
         "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
         "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 0}]}


def test_block_io_v2():
    assert writes({"blockIO": BLOCK}, True) == [
        ("io", ("io.bfq.weight", "io.weight"), "500"), ("io", ("io.bfq.weight", "io.weight"), "8:0 100"),
        ("io", "io.max", "8:0 rbps=1048576"), ("io", "io.max", "8:16 wiops=max")]
    alternatives = plan.plan({"blockIO": {"weight": 500}}, v2=True).writes[0][1]
    assert alternatives == [("io.bfq.weight", "500"), ("io.weight", "4950")]


def test_block_io_v1():
    assert writes({"blockIO": BLOCK}, False) == [
        ("blkio", ("blkio.weight", "blkio.bfq.weight"), "500"),
        ("blkio", ("blkio.weight_device", "blkio.bfq.weight_device"), "8:0 100"),
        ("blkio", "blkio.throttle.read_bps_device", "8:0 1048576"),
        ("blkio", "blkio.throttle.write_iops_device", "8:16 0")]


def test_hugepages():
    limits = {"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}
    assert writes(limits, True) == [("hugetlb", "hugetlb.2MB.max", "4194304")]
    assert writes(limits, False) == [("hugetlb", "hugetlb.2MB.limit_in_bytes", "4194304")]


def test_unified():
    assert writes({"unified": {"memory.high": "1000", "cgroup.max.depth": "3"}}, True) == [
        ("memory", "memory.high", "1000"), ("", "cgroup.max.depth", "3")]
    with pytest.raises(ConfigError, match="cgroup v2"):
        plan.plan({"unified": {"memory.high": "1"}}, v2=False)
    with pytest.raises(ConfigError) as caught:
        plan.plan({"unified": {"../x": "1"}}, v2=True)
    assert caught.value.path == 'linux.resources.unified["../x"]'


def test_rdma_and_network_on_v2_are_refused():
    with pytest.raises(ConfigError, match="RDMA"):
        plan.plan({"rdma": {"mlx": {"hcaHandles": 1}}}, v2=False)
    with pytest.raises(ConfigError, match="net_cls"):
        plan.plan({"network": {"classID": 1}}, v2=True)
    assert writes({"network": {"classID": 7}}, False) == [("net_cls", "net_cls.classid", "7")]


def test_sections_limit_the_plan():
    resources = {"memory": {"limit": 100}, "pids": {"limit": 5}}
    assert writes(resources, True, sections=("pids",)) == [("pids", "pids.max", "5")]


# -- devices ------------------------------------------------------------------------

def test_device_rules_v1():
    got = writes({"devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "b", "major": 8,
                                                                   "access": "r"}]}, False)
    assert got[:2] == [("devices", "devices.deny", "a"), ("devices", "devices.allow", "b 8:* r")]
    assert ("devices", "devices.allow", "c 1:3 rwm") in got  # /dev/null stays usable
    # nothing denied: nothing to write
    assert writes({"devices": [{"allow": True, "access": "rwm"}]}, False) == []


@pytest.mark.parametrize("rule, path", [
    ({"allow": False, "type": "x"}, "linux.resources.devices[0].type"),
    ({"allow": False, "access": "rwx"}, "linux.resources.devices[0].access"),
])
def test_bad_device_rules(rule, path):
    with pytest.raises(ConfigError) as caught:
        plan.device_rules([rule])
    assert caught.value.path == path


def run_program(program: bytes, kind: int, major: int, minor: int, access: int) -> int:
    """A tiny interpreter for the instructions bpf.assemble emits."""
    registers = [0] * 11
    context = [(access << 16) | kind, major, minor]
    pc = 0
    for _ in range(10000):
        code, regs = program[pc * 8], program[pc * 8 + 1]
        dst, src = regs & 0xF, regs >> 4
        off = int.from_bytes(program[pc * 8 + 2:pc * 8 + 4], "little", signed=True)
        imm = int.from_bytes(program[pc * 8 + 4:pc * 8 + 8], "little", signed=True)
        pc += 1
        if code == 0x61:
            assert src == 1
            registers[dst] = context[off // 4]
        elif code == 0x57:
            registers[dst] &= imm & 0xFFFFFFFFFFFFFFFF
        elif code == 0x77:
            registers[dst] >>= imm
        elif code == 0xB7:
            registers[dst] = imm & 0xFFFFFFFFFFFFFFFF
        elif code == 0x05:
            pc += off
        elif code == 0x55:
            pc += off if registers[dst] != imm else 0
        elif code == 0x45:
            pc += off if registers[dst] & imm else 0
        elif code == 0x95:
            return registers[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
    raise AssertionError("the program did not exit")


def _random_rule(rng):
    kind = rng.choice("abc")
    return (rng.random() < 0.5, kind, None if kind == "a" or rng.random() < 0.3 else rng.choice((1, 8, 136)),
            None if kind == "a" or rng.random() < 0.4 else rng.choice((3, 5, 0)),
            "".join(c for c in "rwm" if rng.random() < 0.6) or "r")


def test_the_device_program_decides_like_the_rules():
    rng = random.Random(4)
    accesses = ["".join(p) for n in (1, 2, 3) for p in itertools.combinations("rwm", n)]
    for _ in range(150):
        rules = [_random_rule(rng) for _ in range(rng.randint(0, 6))]
        program = bpf.assemble(rules)
        assert len(program) % 8 == 0
        for kind, major, minor, access in itertools.product("bc", (1, 8, 136), (3, 5, 0), accesses):
            expected = bpf.evaluate(rules, kind, major, minor, access)
            mask = sum(bpf.ACCESS_BITS[c] for c in access)
            got = run_program(program, bpf.DEVICE_TYPES[kind], major, minor, mask)
            assert got == int(expected), (rules, kind, major, minor, access)


def test_per_access_semantics():
    deny_all = (False, "a", None, None, "rwm")
    read_only_null = [deny_all, (True, "c", 1, 3, "r")]
    assert bpf.evaluate(read_only_null, "c", 1, 3, "r")
    assert not bpf.evaluate(read_only_null, "c", 1, 3, "rw")
    split = [deny_all, (True, "c", 1, 3, "r"), (True, "c", 1, 3, "w")]
    assert bpf.evaluate(split, "c", 1, 3, "rw")  # each bit allowed by some later rule
    assert not bpf.evaluate([(True, "a", None, None, "rwm"), (False, "c", 1, None, "w")], "c", 1, 3, "rw")
    assert bpf.needed(read_only_null) and not bpf.needed([(True, "a", None, None, "rwm")])


# -- update and events flags --------------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ("1024", 1024), ("512m", 512 << 20), ("1G", 1 << 30), ("64kb", 64 << 10), ("2GiB", 2 << 30), ("-1", -1),
    ("1.5k", 1536),
])
def test_sizes(text, value):
    assert parse_bytes(text, "memory") == value


@pytest.mark.parametrize("text", ["", "lots", "-5", "12x", "m"])
def test_bad_sizes(text):
    with pytest.raises(RootletError, match="--memory"):
        parse_bytes(text, "memory")


@pytest.mark.parametrize("text, seconds", [("5s", 5), ("250ms", 0.25), ("1m30s", 90), ("1.5h", 5400)])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5", "s", "-1s", "0s", "1d"])
def test_bad_durations(text):
    with pytest.raises(RootletError, match="--interval"):
        parse_duration(text)


def test_update_flags_become_resources_and_merge():
    delta = resources_from_flags({"memory": "64m", "cpu-share": "512", "cpuset-cpus": "0", "pids-limit": "9",
                                  "blkio-weight": "300"})
    assert delta == {"memory": {"limit": 64 << 20}, "cpu": {"shares": 512, "cpus": "0"}, "pids": {"limit": 9},
                     "blockIO": {"weight": 300}}
    current = {"memory": {"limit": 1, "swap": 5}, "devices": [{"allow": False}]}
    assert merge(current, delta)["memory"] == {"limit": 64 << 20, "swap": 5}
    assert current["memory"] == {"limit": 1, "swap": 5}
