"""Which cgroup layout this host has, read once from /proc/self/mountinfo and
/proc/self/cgroup.

unified: one cgroup2 mount (normally /sys/fs/cgroup) and no v1 hierarchy.
hybrid:  v1 hierarchies plus a cgroup2 mount beside them (systemd's
         /sys/fs/cgroup/unified), which may hold controllers such as hugetlb.
legacy:  v1 hierarchies only.
"""

from __future__ import annotations

UNIFIED, HYBRID, LEGACY, NONE = "unified", "hybrid", "legacy", "none"
V1_CONTROLLERS = frozenset((
    "cpuset", "cpu", "cpuacct", "memory", "devices", "freezer", "net_cls", "net_prio", "blkio", "perf_event",
    "hugetlb", "pids", "rdma", "misc", "debug",
))


class Hierarchy:
    """One mounted hierarchy: v1 (its controllers, e.g. ("cpu", "cpuacct")
    or ("name=systemd",)) or v2 (controllers empty)."""

    __slots__ = ("key", "mountpoint", "root", "own")

    def __init__(self, key: str, mountpoint: str, root: str, own: str):
        self.key = key              # "memory", "cpu,cpuacct", "name=systemd"; "" for cgroup2
        self.mountpoint = mountpoint
        self.root = root            # the hierarchy path the mount shows as its root
        self.own = own              # this process's cgroup in the hierarchy

    def directory(self, path: str) -> str:
        """The directory of cgroup `path` (absolute in the hierarchy) under this mount."""
        root = self.root.rstrip("/")
        if root and (path == root or path.startswith(root + "/")):
            path = path[len(root):]
        return self.mountpoint + path.rstrip("/") if path != "/" else self.mountpoint


class Host:
    __slots__ = ("mode", "unified", "v1")

    def __init__(self, mode: str, unified: Hierarchy | None, v1: dict[str, Hierarchy]):
        self.mode = mode
        self.unified = unified
        self.v1 = v1  # controller name (or "name=systemd") -> its hierarchy

    def hierarchies(self) -> list[Hierarchy]:
        """Each v1 hierarchy once, in mount order."""
        seen: dict[str, Hierarchy] = {}
        for hierarchy in self.v1.values():
            seen.setdefault(hierarchy.key, hierarchy)
        return list(seen.values())


_cached: Host | None = None


def host() -> Host:
    global _cached
    if _cached is None:
        with open("/proc/self/mountinfo") as mountinfo, open("/proc/self/cgroup") as cgroup:
            _cached = parse(mountinfo.read(), cgroup.read())
    return _cached


def parse(mountinfo: str, proc_cgroup: str) -> Host:
    """Pure: the Host that these two files describe."""
    own: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        _number, controllers, path = line.split(":", 2)
        own[controllers] = path
    unified = None
    v1: dict[str, Hierarchy] = {}
    for line in mountinfo.splitlines():
        head, _, tail = line.partition(" - ")
        fields = head.split(" ")
        fstype, _source, options = (tail.split(" ") + ["", ""])[:3]
        if fstype == "cgroup2":
            if unified is None or fields[4] == "/sys/fs/cgroup":
                unified = Hierarchy("", fields[4], _unescape(fields[3]), own.get("", "/"))
        elif fstype == "cgroup":
            names = [o for o in options.split(",") if o in V1_CONTROLLERS or o.startswith("name=")]
            key = next((k for k in own if k and set(k.split(",")) == set(names)), ",".join(names))
            hierarchy = Hierarchy(key, fields[4], _unescape(fields[3]), own.get(key, "/"))
            for name in names:
                v1.setdefault(name, hierarchy)
    if unified is not None and not v1:
        mode = UNIFIED
    elif v1:
        mode = HYBRID if unified is not None else LEGACY
    else:
        mode = NONE
    return Host(mode, unified, v1)


def _unescape(text: str) -> str:
    return text.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
