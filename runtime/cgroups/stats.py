"""`events`: a container's cgroup files as runc's Stats (types/events.go
in runc), for both drivers. Loaded only by `events`."""

from __future__ import annotations

import os

from runtime.cgroups.base import number, parse_flat
from runtime.errors import RootletError

_USER_HZ = 100  # cpuacct.stat counts in clock ticks


def v2(manager) -> dict:
    """runc's Stats from the v2 files."""
    directory = manager.dir
    read = lambda name: manager.try_read(directory, name)  # noqa: E731
    cpu = parse_flat(read("cpu.stat") or "")
    memory_stat = parse_flat(read("memory.stat") or "")
    memory_events = parse_flat(read("memory.events") or "")
    hugetlb = {}
    for name in sorted(os.listdir(directory)):
        if name.startswith("hugetlb.") and name.endswith(".current") and name.count(".") == 2:
            size = name.split(".")[1]
            events = parse_flat(read(f"hugetlb.{size}.events") or "")
            hugetlb[size] = _omit_zero({"usage": number(read(name)),
                                        "max": number(read(f"hugetlb.{size}.max")),
                                        "failcnt": events.get("max", 0)}, keep=("failcnt",))
    return {
        "cpu": {
            "usage": _omit_zero({"total": cpu.get("usage_usec", 0) * 1000,
                                 "kernel": cpu.get("system_usec", 0) * 1000,
                                 "user": cpu.get("user_usec", 0) * 1000}, keep=("kernel", "user")),
            "throttling": _omit_zero({"periods": cpu.get("nr_periods", 0),
                                      "throttledPeriods": cpu.get("nr_throttled", 0),
                                      "throttledTime": cpu.get("throttled_usec", 0) * 1000}),
        },
        "cpuset": _cpuset(read("cpuset.cpus.effective"), read("cpuset.mems.effective")),
        "memory": _omit_zero({
            "cache": memory_stat.get("file", 0),
            "usage": _omit_zero({"limit": number(read("memory.max")),
                                 "usage": number(read("memory.current")),
                                 "max": number(read("memory.peak")),
                                 "failcnt": memory_events.get("max", 0)},
                                keep=("limit", "failcnt")),
            "swap": _omit_zero({"limit": number(read("memory.swap.max")),
                                "usage": number(read("memory.swap.current")),
                                "max": number(read("memory.swap.peak")), "failcnt": 0},
                               keep=("limit", "failcnt")),
            "kernel": {"limit": 0, "failcnt": 0},
            "kernelTCP": {"limit": 0, "failcnt": 0},
            "raw": memory_stat,
        }, keep=("usage", "swap", "kernel", "kernelTCP")),
        "pids": _omit_zero({"current": number(read("pids.current")), "limit": number(read("pids.max"))}),
        "blkio": _io_stat(read("io.stat") or ""),
        "hugetlb": hugetlb,
        "intel_rdt": {},
        "network_interfaces": None,
    }


def v1(manager) -> dict:
    """runc's Stats from the v1 files (hugetlb from cgroup2 on a hybrid host)."""

    def read(controller: str, name: str) -> str | None:
        directory = manager.dir_for(controller)
        return manager.try_read(directory, name) if directory else None

    def entry(prefix: str) -> dict:
        return _omit_zero({"limit": number(read("memory", f"{prefix}limit_in_bytes")),
                           "usage": number(read("memory", f"{prefix}usage_in_bytes")),
                           "max": number(read("memory", f"{prefix}max_usage_in_bytes")),
                           "failcnt": number(read("memory", f"{prefix}failcnt"))},
                          keep=("limit", "failcnt"))

    ticks = parse_flat(read("cpuacct", "cpuacct.stat") or "")
    throttling = parse_flat(read("cpu", "cpu.stat") or "")
    percpu = [int(value) for value in (read("cpuacct", "cpuacct.usage_percpu") or "").split()]
    memory_stat = parse_flat(read("memory", "memory.stat") or "")
    return {
        "cpu": {
            "usage": _omit_zero({"total": number(read("cpuacct", "cpuacct.usage")), "percpu": percpu,
                                 "kernel": ticks.get("system", 0) * (1_000_000_000 // _USER_HZ),
                                 "user": ticks.get("user", 0) * (1_000_000_000 // _USER_HZ)},
                                keep=("kernel", "user")),
            "throttling": _omit_zero({"periods": throttling.get("nr_periods", 0),
                                      "throttledPeriods": throttling.get("nr_throttled", 0),
                                      "throttledTime": throttling.get("throttled_time", 0)}),
        },
        "cpuset": _cpuset(read("cpuset", "cpuset.effective_cpus"),
                          read("cpuset", "cpuset.effective_mems")),
        "memory": _omit_zero({
            "cache": memory_stat.get("cache", 0),
            "usage": entry("memory."),
            "swap": entry("memory.memsw."),
            "kernel": entry("memory.kmem."),
            "kernelTCP": entry("memory.kmem.tcp."),
            "raw": memory_stat,
        }, keep=("usage", "swap", "kernel", "kernelTCP")),
        "pids": _omit_zero({"current": number(read("pids", "pids.current")),
                            "limit": number(read("pids", "pids.max"))}),
        "blkio": _omit_zero({
            "ioServiceBytesRecursive": _blkio(read("blkio", "blkio.throttle.io_service_bytes_recursive")),
            "ioServicedRecursive": _blkio(read("blkio", "blkio.throttle.io_serviced_recursive")),
        }),
        "hugetlb": _hugetlb_v1(manager),
        "intel_rdt": {},
        "network_interfaces": None,
    }


def _hugetlb_v1(manager) -> dict:
    directory = manager.dir_for("hugetlb")
    v2 = directory is None
    directory = directory or manager.dirs.get("")
    if not directory:
        return {}
    found = {}
    suffix = ".current" if v2 else ".usage_in_bytes"
    for name in sorted(os.listdir(directory)):
        if name.startswith("hugetlb.") and name.endswith(suffix) and name.count(".") == 2:
            size = name.split(".")[1]
            if v2:
                events = manager.try_read(directory, f"hugetlb.{size}.events") or ""
                failcnt = parse_flat(events).get("max", 0)
                limit = manager.try_read(directory, f"hugetlb.{size}.max")
            else:
                failcnt = number(manager.try_read(directory, f"hugetlb.{size}.failcnt"))
                limit = manager.try_read(directory, f"hugetlb.{size}.limit_in_bytes")
            found[size] = _omit_zero({"usage": number(manager.try_read(directory, name)),
                                      "max": number(limit),
                                      "failcnt": failcnt}, keep=("failcnt",))
    return found


def _omit_zero(values: dict, keep: tuple = ()) -> dict:
    """Go's `omitempty`, which runc's event types use."""
    return {key: value for key, value in values.items() if value or key in keep}


def _cpuset(cpus: str | None, mems: str | None) -> dict:
    from runtime.cgroups.plan import parse_list

    result: dict = {}
    for key, text in (("cpus", cpus), ("mems", mems)):
        if text and text.strip():
            try:
                result[key] = sorted(parse_list(text, key))
            except RootletError:
                pass
    for key in ("cpu_exclusive", "mem_hardwall", "mem_exclusive", "memory_migrate", "memory_spread_page",
                "memory_spread_slab", "memory_pressure", "sched_load_balance", "sched_relax_domain_level"):
        result[key] = 0
    return result


def _io_stat(text: str) -> dict:
    """io.stat ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...") as runc's blkio entries."""
    service_bytes, serviced = [], []
    for line in text.splitlines():
        device, *pairs = line.split()
        major, _, minor = device.partition(":")
        values = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
        for entries, read_key, write_key in ((service_bytes, "rbytes", "wbytes"), (serviced, "rios", "wios")):
            for op, key in (("Read", read_key), ("Write", write_key)):
                entries.append(_omit_zero({"major": int(major), "minor": int(minor), "op": op,
                                           "value": int(values.get(key, 0))}))
    return _omit_zero({"ioServiceBytesRecursive": service_bytes, "ioServicedRecursive": serviced})


def _blkio(text: str | None) -> list[dict]:
    """blkio "8:0 Read 4096" lines as runc's entries (the "Total" lines too)."""
    entries = []
    for line in (text or "").splitlines():
        fields = line.split()
        if len(fields) != 3 or ":" not in fields[0]:
            continue
        major, _, minor = fields[0].partition(":")
        entries.append(_omit_zero({"major": int(major), "minor": int(minor), "op": fields[1],
                                   "value": int(fields[2])}))
    return entries
