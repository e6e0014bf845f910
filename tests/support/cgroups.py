"""Where a process's cgroup files are on this host, found from
/proc/PID/cgroup and /proc/self/mountinfo (so the tests do not depend on the
runtime's own notion of paths, and run against runc too)."""

from __future__ import annotations

import os


def _mounts() -> tuple[str | None, dict[str, str]]:
    unified, v1 = None, {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            head, _, tail = line.partition(" - ")
            point = head.split()[4]
            fstype, _source, options = tail.split()[:3]
            if fstype == "cgroup2" and (unified is None or point == "/sys/fs/cgroup"):
                unified = point
            elif fstype == "cgroup":
                for option in options.split(","):
                    v1.setdefault(option, point)
    return unified, v1


def host_mode() -> str:
    """unified, hybrid, legacy or none."""
    unified, v1 = _mounts()
    if v1:
        return "hybrid" if unified else "legacy"
    return "unified" if unified else "none"


def is_v2() -> bool:
    return host_mode() == "unified"


def cgroup_dir(pid: int, controller: str = "memory") -> str:
    """The directory of `pid`'s cgroup in the hierarchy that holds `controller`
    (on a unified host, the one cgroup2 directory)."""
    unified, v1 = _mounts()
    with open(f"/proc/{pid}/cgroup") as f:
        lines = [line.rstrip("\n").split(":", 2) for line in f]
    if not v1:
        path = next(path for _n, controllers, path in lines if controllers == "")
        return os.path.join(unified, path.lstrip("/"))
    for _n, controllers, path in lines:
        if controller in controllers.split(","):
            return os.path.join(v1[controller], path.lstrip("/"))
    raise LookupError(f"no {controller} hierarchy for pid {pid}")


def read(pid: int, controller: str, v1_name: str, v2_name: str) -> str:
    name = v2_name if is_v2() else v1_name
    with open(os.path.join(cgroup_dir(pid, controller), name)) as f:
        return f.read().strip()


def stat_value(text: str, key: str) -> int:
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return int(value)
    raise KeyError(key)
