"""linux.resources turned into cgroup file writes: pure functions, no I/O.

`plan(resources, v2=...)` returns the writes in order, each a tuple
(controller, alternatives, where): the controller that owns the files ("" for
cgroup core files), a list of (file, value) of which the first file that
exists is written, and the JSON path the value came from, for errors. The
conversions from the spec's (cgroup v1 shaped) values to cgroup v2 are the
ones runc and crun use, so a config means the same thing under each runtime.

Device rules are not file writes on cgroup v2; `device_rules` gives the
effective rule list for both drivers (runtime.cgroups.bpf assembles the v2
program from it).
"""

from __future__ import annotations

from runtime.errors import ConfigError

PREFIX = "linux.resources"
# cgroup v2 controllers whose files are named "<controller>.<...>"
V2_CONTROLLERS = ("cpu", "cpuset", "io", "memory", "pids", "hugetlb", "rdma", "misc")
UNLIMITED_V1 = "-1"

# Devices every container may use, as runc allows them (after the config's
# rules, so they cannot be denied): mknod of anything, the standard /dev
# nodes, ptys.
_DEFAULT_RULES = (
    (True, "c", None, None, "m"), (True, "b", None, None, "m"),
    (True, "c", 1, 3, "rwm"), (True, "c", 1, 8, "rwm"), (True, "c", 1, 7, "rwm"), (True, "c", 5, 0, "rwm"),
    (True, "c", 1, 5, "rwm"), (True, "c", 1, 9, "rwm"), (True, "c", 5, 1, "rwm"),
    (True, "c", 136, None, "rwm"),
    (True, "c", 5, 2, "rwm"),
)

Write = tuple  # (controller, [(file, value), ...], where)


class Plan:
    __slots__ = ("writes", "warnings")

    def __init__(self):
        self.writes: list[Write] = []
        self.warnings: list[str] = []

    def add(self, controller: str, file: str, value, where: str) -> None:
        self.writes.append((controller, [(file, str(value))], where))

    def add_first(self, controller: str, alternatives: list[tuple[str, object]], where: str) -> None:
        self.writes.append((controller, [(file, str(value)) for file, value in alternatives], where))

    def controllers(self) -> set[str]:
        return {controller for controller, _, _ in self.writes if controller}


def plan(resources: dict, *, v2: bool, sections: tuple[str, ...] | None = None,
         cpus: frozenset[int] | None = None, mems: frozenset[int] | None = None) -> Plan:
    """The writes for `resources` (all sections, or only `sections`).
    `cpus`/`mems`, when given, are the CPUs and memory nodes that exist."""
    result = Plan()
    for section, planner in _SECTIONS:
        value = resources.get(section)
        if value is None or (sections is not None and section not in sections):
            continue
        planner(result, value, v2, f"{PREFIX}.{section}")
    if resources.get("devices") and (sections is None or "devices" in sections):
        _devices(result, resources["devices"], v2)
    cpu = resources.get("cpu") or {}
    for key, existing in (("cpus", cpus), ("mems", mems)):
        if cpu.get(key) and (sections is None or "cpu" in sections):
            wanted = parse_list(cpu[key], f"{PREFIX}.cpu.{key}")
            missing = sorted(wanted - existing) if existing is not None else []
            if missing:
                what = "CPU" if key == "cpus" else "memory node"
                raise ConfigError(f"{PREFIX}.cpu.{key}", f"{what} {missing[0]} does not exist on this host "
                                  f"(available: {format_list(existing)})")
            result.add("cpuset", f"cpuset.{key}", cpu[key], f"{PREFIX}.cpu.{key}")
    return result


# ---------------------------------------------------------------- helpers

def _limit(section: dict, key: str, where: str) -> int | None:
    """A byte/count limit: None or 0 = not set, -1 = unlimited, else positive."""
    value = section.get(key)
    if value is None or value == 0:
        return None
    if value < -1:
        raise ConfigError(f"{where}.{key}",
                          f"{value} is not a limit: use -1 (unlimited) or a positive number")
    return value


def _max_or(value: int) -> str:
    return "max" if value == -1 else str(value)


def parse_list(text: str, where: str) -> frozenset[int]:
    """A cpuset list ("0-3,8,10-11") as a set of numbers."""
    found: set[int] = set()
    for part in text.strip().split(","):
        first, dash, last = part.strip().partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise ConfigError(where, f"{text!r} is not a list of numbers and ranges such as 0-3,5")
        low, high = int(first), int(last) if dash else int(first)
        if high < low:
            raise ConfigError(where, f"{text!r}: range {part} runs backwards")
        found.update(range(low, high + 1))
    return frozenset(found)


def format_list(numbers) -> str:
    ordered = sorted(numbers)
    ranges: list[str] = []
    index = 0
    while index < len(ordered):
        end = index
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        ranges.append(str(ordered[index]) if end == index else f"{ordered[index]}-{ordered[end]}")
        index = end + 1
    return ",".join(ranges)


def shares_to_weight(shares: int) -> int:
    """cpu.shares (2..262144) to cpu.weight (1..10000), runc's and crun's formula."""
    shares = min(max(shares, 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_to_io_weight(weight: int) -> int:
    """blkio.weight (10..1000) to io.weight (1..10000), linearly as runc does."""
    weight = min(max(weight, 10), 1000)
    return 1 + ((weight - 10) * 9999) // 990


def swap_v2(swap: int | None, limit: int | None, where: str) -> int | None:
    """The spec's swap (memory + swap, as cgroup v1 counts it) as memory.swap.max
    (swap alone): None = leave it, -1 = max."""
    if limit == -1 and swap is None:
        return -1  # unlimited memory and no word on swap: both unlimited, as on v1
    if swap is None or swap == -1:
        return swap
    if limit is None or limit == -1:
        raise ConfigError(f"{where}.swap", "a swap limit needs a memory limit (memory.limit)")
    if swap < limit:
        raise ConfigError(f"{where}.swap", f"{swap} is below memory.limit {limit}: swap counts memory + swap")
    return swap - limit


# ---------------------------------------------------------------- sections

def _memory(out: Plan, memory: dict, v2: bool, where: str) -> None:
    limit = _limit(memory, "limit", where)
    reservation = _limit(memory, "reservation", where)
    swap = _limit(memory, "swap", where)
    if memory.get("kernel"):
        out.warnings.append(f"{where}.kernel is ignored: kernel memory limits are deprecated by Linux")
    if v2:
        if memory.get("disableOOMKiller"):
            raise ConfigError(f"{where}.disableOOMKiller", "cgroup v2 cannot disable the OOM killer")
        if limit is not None:
            out.add("memory", "memory.max", _max_or(limit), f"{where}.limit")
        converted = swap_v2(swap, limit, where)
        if converted is not None:
            out.add("memory", "memory.swap.max", _max_or(converted), f"{where}.swap")
        if reservation is not None:
            out.add("memory", "memory.low", _max_or(reservation), f"{where}.reservation")
        for key in ("kernelTCP", "swappiness"):
            if memory.get(key) is not None:
                out.warnings.append(f"{where}.{key} is ignored: cgroup v2 has no such setting")
        return
    if limit is not None and swap not in (None, -1) and swap < limit:
        raise ConfigError(f"{where}.swap", f"{swap} is below memory.limit {limit}: swap counts memory + swap")
    if limit is not None:
        out.add("memory", "memory.limit_in_bytes", limit, f"{where}.limit")
    if swap is not None:
        out.add("memory", "memory.memsw.limit_in_bytes", swap, f"{where}.swap")
    elif limit == -1:
        out.add("memory", "memory.memsw.limit_in_bytes", -1, f"{where}.swap")
    if reservation is not None:
        out.add("memory", "memory.soft_limit_in_bytes", reservation, f"{where}.reservation")
    kernel_tcp = _limit(memory, "kernelTCP", where)
    if kernel_tcp is not None:
        out.add("memory", "memory.kmem.tcp.limit_in_bytes", kernel_tcp, f"{where}.kernelTCP")
    swappiness = memory.get("swappiness")
    if swappiness is not None:
        if not 0 <= swappiness <= 100:
            raise ConfigError(f"{where}.swappiness", f"{swappiness} is not between 0 and 100")
        out.add("memory", "memory.swappiness", swappiness, f"{where}.swappiness")
    if memory.get("disableOOMKiller"):
        out.add("memory", "memory.oom_control", 1, f"{where}.disableOOMKiller")
    if memory.get("useHierarchy"):
        out.add("memory", "memory.use_hierarchy", 1, f"{where}.useHierarchy")


def _cpu(out: Plan, cpu: dict, v2: bool, where: str) -> None:
    shares = cpu.get("shares")
    quota = cpu.get("quota")
    period = cpu.get("period")
    if quota is not None and quota < -1:
        raise ConfigError(f"{where}.quota", f"{quota} is not a quota: use -1 (unlimited) or microseconds")
    if quota == 0:
        quota = None
    if period == 0:
        period = None
    if v2:
        if shares:
            out.add("cpu", "cpu.weight", shares_to_weight(shares), f"{where}.shares")
        if quota is not None or period is not None:
            value = "max" if quota in (None, -1) else str(quota)
            out.add("cpu", "cpu.max", f"{value} {period}" if period else value,
                    f"{where}.quota" if quota is not None else f"{where}.period")
        if cpu.get("burst") is not None:
            out.add("cpu", "cpu.max.burst", cpu["burst"], f"{where}.burst")
        for key in ("realtimeRuntime", "realtimePeriod"):
            if cpu.get(key):
                raise ConfigError(f"{where}.{key}", "cgroup v2 has no real-time CPU scheduling limits")
    else:
        if shares:
            out.add("cpu", "cpu.shares", min(max(shares, 2), 262144), f"{where}.shares")
        if period is not None:
            out.add("cpu", "cpu.cfs_period_us", period, f"{where}.period")
        if quota is not None:
            out.add("cpu", "cpu.cfs_quota_us", quota, f"{where}.quota")
        if cpu.get("burst") is not None:
            out.add("cpu", "cpu.cfs_burst_us", cpu["burst"], f"{where}.burst")
        if cpu.get("realtimePeriod"):
            out.add("cpu", "cpu.rt_period_us", cpu["realtimePeriod"], f"{where}.realtimePeriod")
        if cpu.get("realtimeRuntime"):
            out.add("cpu", "cpu.rt_runtime_us", cpu["realtimeRuntime"], f"{where}.realtimeRuntime")
    if cpu.get("idle") is not None:
        if cpu["idle"] not in (0, 1):
            raise ConfigError(f"{where}.idle", f"{cpu['idle']} is not 0 or 1")
        out.add("cpu", "cpu.idle", cpu["idle"], f"{where}.idle")


def _pids(out: Plan, pids: dict, v2: bool, where: str) -> None:
    limit = pids.get("limit")
    if limit is not None:
        out.add("pids", "pids.max", limit if limit > 0 else "max", f"{where}.limit")


def _device_number(entry: dict, where: str) -> str:
    for key in ("major", "minor"):
        if entry.get(key) is None or entry[key] < 0:
            raise ConfigError(f"{where}.{key}", "a block device needs its major and minor number")
    return f"{entry['major']}:{entry['minor']}"


_THROTTLES = (
    ("throttleReadBpsDevice", "read_bps_device", "rbps"),
    ("throttleWriteBpsDevice", "write_bps_device", "wbps"),
    ("throttleReadIOPSDevice", "read_iops_device", "riops"),
    ("throttleWriteIOPSDevice", "write_iops_device", "wiops"),
)


def _block_io(out: Plan, block: dict, v2: bool, where: str) -> None:
    weight = block.get("weight")
    for key in ("weight", "leafWeight"):  # 0 = not set, as engines send it
        if block.get(key) and not 10 <= block[key] <= 1000:
            raise ConfigError(f"{where}.{key}", f"{block[key]} is not between 10 and 1000")
    if v2:
        if weight:
            out.add_first("io", [("io.bfq.weight", weight), ("io.weight", blkio_to_io_weight(weight))],
                          f"{where}.weight")
        if block.get("leafWeight"):
            out.warnings.append(f"{where}.leafWeight is ignored: cgroup v2 has no leaf weight")
    else:
        if weight:
            out.add_first("blkio", [("blkio.weight", weight), ("blkio.bfq.weight", weight)],
                          f"{where}.weight")
        if block.get("leafWeight"):
            out.add("blkio", "blkio.leaf_weight", block["leafWeight"], f"{where}.leafWeight")
    for index, entry in enumerate(block.get("weightDevice") or []):
        at = f"{where}.weightDevice[{index}]"
        device = _device_number(entry, at)
        for key in ("weight", "leafWeight"):
            if entry.get(key) and not 10 <= entry[key] <= 1000:
                raise ConfigError(f"{at}.{key}", f"{entry[key]} is not between 10 and 1000")
        if entry.get("weight"):
            if v2:
                out.add_first("io", [("io.bfq.weight", f"{device} {entry['weight']}"),
                                     ("io.weight", f"{device} {blkio_to_io_weight(entry['weight'])}")], at)
            else:
                out.add_first("blkio", [("blkio.weight_device", f"{device} {entry['weight']}"),
                                        ("blkio.bfq.weight_device", f"{device} {entry['weight']}")], at)
        if entry.get("leafWeight") and not v2:
            out.add("blkio", "blkio.leaf_weight_device", f"{device} {entry['leafWeight']}", at)
    for key, v1_file, v2_key in _THROTTLES:
        for index, entry in enumerate(block.get(key) or []):
            at = f"{where}.{key}[{index}]"
            device = _device_number(entry, at)
            rate = entry.get("rate", 0)
            if v2:
                out.add("io", "io.max", f"{device} {v2_key}={rate if rate else 'max'}", at)
            else:
                out.add("blkio", f"blkio.throttle.{v1_file}", f"{device} {rate}", at)


def _hugepages(out: Plan, limits: list, v2: bool, where: str) -> None:
    for index, entry in enumerate(limits):
        size = entry["pageSize"]
        digits = size.rstrip("KMGB")
        if not digits.isdigit() or size[len(digits):] not in ("KB", "MB", "GB"):
            raise ConfigError(f"{where}[{index}].pageSize", f"{size!r} is not a page size such as 2MB or 1GB")
        file = f"hugetlb.{size}.max" if v2 else f"hugetlb.{size}.limit_in_bytes"
        out.add("hugetlb", file, entry["limit"], f"{where}[{index}].limit")


def _network(out: Plan, network: dict, v2: bool, where: str) -> None:
    if v2 and network:
        raise ConfigError(where, "cgroup v2 has no net_cls or net_prio controller")
    if network.get("classID") is not None:
        out.add("net_cls", "net_cls.classid", network["classID"], f"{where}.classID")
    for index, entry in enumerate(network.get("priorities") or []):
        out.add("net_prio", "net_prio.ifpriomap", f"{entry['name']} {entry['priority']}",
                f"{where}.priorities[{index}]")


def _rdma(out: Plan, rdma: dict, v2: bool, where: str) -> None:
    if rdma:
        raise ConfigError(where, "RDMA limits are not supported by rootlet")


def _unified(out: Plan, unified: dict, v2: bool, where: str) -> None:
    if not unified:
        return
    if not v2:
        raise ConfigError(where, "raw cgroup v2 settings need a cgroup v2 (unified) host")
    for key, value in unified.items():
        at = f'{where}["{key}"]'
        if "/" in key or key.startswith(".") or "." not in key:
            raise ConfigError(at, f"{key!r} is not a cgroup v2 file name")
        controller = key.split(".", 1)[0]
        out.add(controller if controller in V2_CONTROLLERS else "", key, value, at)


def _devices(out: Plan, rules: list, v2: bool) -> None:
    effective = device_rules(rules)
    if v2 or not any(not allow for allow, *_ in effective):
        return  # v2: a bpf program, not files; v1 with nothing denied: the parent's "allow all" stands
    where = f"{PREFIX}.devices"
    for allow, kind, major, minor, access in effective:
        if kind == "a":
            out.add("devices", "devices.allow" if allow else "devices.deny", "a", where)
            continue
        number = f"{'*' if major is None else major}:{'*' if minor is None else minor}"
        out.add("devices", "devices.allow" if allow else "devices.deny", f"{kind} {number} {access}", where)


def device_rules(rules: list) -> list[tuple]:
    """The config's rules, checked, then the devices every container gets:
    [(allow, type, major|None, minor|None, access)]. Later rules override
    earlier ones. linux.devices get no rule of their own: the config's list
    is what the container may use (config-linux.md "Allowed Device List")."""
    effective = []
    for index, rule in enumerate(rules or []):
        at = f"{PREFIX}.devices[{index}]"
        kind = rule.get("type", "a") or "a"
        if kind not in ("a", "b", "c"):
            raise ConfigError(f"{at}.type", f"{kind!r} is not a device type: use a, b or c")
        access = rule.get("access", "rwm") or "rwm"
        if not set(access) <= set("rwm"):
            raise ConfigError(f"{at}.access", f"{access!r} is not a combination of r, w and m")
        major, minor = rule.get("major"), rule.get("minor")
        major = None if major is None or major == -1 else major
        minor = None if minor is None or minor == -1 else minor
        if kind == "a":
            major = minor = None  # type "a" matches every device: numbers do not narrow it
        access = "".join(c for c in "rwm" if c in access)
        effective.append((bool(rule.get("allow")), kind, major, minor, access))
    effective.extend(_DEFAULT_RULES)
    return effective


_SECTIONS = (
    ("memory", _memory), ("cpu", _cpu), ("pids", _pids), ("blockIO", _block_io),
    ("hugepageLimits", _hugepages), ("network", _network), ("rdma", _rdma), ("unified", _unified),
)
