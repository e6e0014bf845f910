"""Cgroups: where a container's cgroup is, and the one manager interface
over the v2 (unified) and v1 (legacy and hybrid) drivers.

create:  prepare() checks and plans linux.resources without touching the
         host (bad input fails here, leaving nothing behind), Setup.make()
         makes the cgroup, Manager.fork() and enter() put the init in it,
         and Setup.apply() writes the limits while the init sets up its
         namespaces; the "cgrouped" sync point tells the init they are written.
later:   from_record() rebuilds the manager from the container's state, for
         kill --all, delete, exec, pause/resume, update, events and ps.

The path is linux.cgroupsPath: absolute in the hierarchy, or relative to the
runtime's own cgroup; /rootlet/<id> when empty. An unprivileged caller gets a
cgroup only inside a delegated cgroup v2 subtree (its own cgroup writable,
as under a systemd user session); otherwise the container runs without one,
and asking for limits is an error.
"""

from __future__ import annotations

import os

from runtime.errors import RootletError

DEFAULT_PARENT = "/rootlet"
_LIMIT_SECTIONS = ("memory", "cpu", "pids", "blockIO", "hugepageLimits", "network", "rdma", "unified")


class Setup:
    """The cgroup of one container being created."""

    __slots__ = ("manager", "plan", "device_rules", "top")

    def __init__(self, manager, plan, device_rules, top):
        self.manager = manager
        self.plan = plan
        self.device_rules = device_rules
        self.top = top

    def make(self) -> None:
        """The directories, before the init is forked into them (Manager.fork)."""
        self.manager.create(self.plan, self.top)

    def apply(self) -> None:
        """The limits, while the init sets up its namespaces."""
        self.manager.apply(self.plan, self.device_rules, fresh=True)

    def undo(self) -> None:
        """Kill what is in the cgroup and remove what create made."""
        manager = self.manager
        try:
            manager.kill_all(timeout=5.0)
        except RootletError:
            pass
        manager.close()
        for directory in reversed(manager.created):
            if directory in manager.dirs.values():
                try:
                    manager.remove_directory(directory, timeout=2.0)
                except RootletError:
                    pass
        manager.remove_parents()


def asks_for_limits(resources: dict) -> bool:
    return any(resources.get(section) for section in _LIMIT_SECTIONS)


def prepare(container_id: str, cgroups_path: str, resources: dict,
            rootless: bool | None = None) -> Setup | None:
    """Plan the container's cgroup; None when it runs without one."""
    from runtime.cgroups import host as hosts
    from runtime.cgroups import plan as planner

    if rootless is None:
        rootless = is_rootless()
    found = hosts.host()
    resources = resources or {}
    cpu = resources.get("cpu") or {}
    cpus = _online("/sys/devices/system/cpu/online") if cpu.get("cpus") else None
    mems = _online("/sys/devices/system/node/online", "0") if cpu.get("mems") else None
    use_v2 = found.mode == hosts.UNIFIED
    if found.mode == hosts.NONE:
        return _without_cgroup(resources, "no cgroup filesystem is mounted")
    if rootless and not use_v2:
        return _without_cgroup(resources, f"cgroup v1 ({found.mode} host) offers an unprivileged user no "
                                          f"delegated cgroup")
    plan = planner.plan(resources, v2=use_v2, cpus=cpus, mems=mems)
    for warning in plan.warnings:
        _warn(warning)
    rules = None if rootless else planner.device_rules(resources.get("devices") or [])
    if use_v2:
        from runtime.cgroups.v2 import V2

        unified = found.unified
        own = unified.own
        if rootless:
            delegated = _delegation(unified, own)
            if delegated is None:
                return _without_cgroup(resources, f"the caller's cgroup {own} is not delegated to it "
                                                  f"(not writable)")
            path = _path(cgroups_path, container_id, own, delegated)
            top = unified.directory(delegated)
        else:
            path = _path(cgroups_path, container_id, own, None)
            top = unified.mountpoint
        return Setup(V2(path, {"": unified.directory(path)}), plan, rules, top)
    from runtime.cgroups.v1 import V1

    dirs = {}
    for hierarchy in found.hierarchies():
        dirs[hierarchy.key] = hierarchy.directory(_path(cgroups_path, container_id, hierarchy.own, None))
    top = None
    if found.unified is not None and os.access(found.unified.mountpoint, os.W_OK):
        dirs[""] = found.unified.directory(_path(cgroups_path, container_id, found.unified.own, None))
        top = found.unified.mountpoint
    return Setup(V1(_path(cgroups_path, container_id, "/", None), dirs), plan, rules, top)


def is_rootless() -> bool:
    """Unprivileged, or root only inside a user namespace (as rootless podman
    runs its runtime): either way the host's cgroups are not ours to make."""
    if os.geteuid() != 0:
        return True
    try:
        with open("/proc/self/uid_map") as mapping:
            return mapping.read().split() != ["0", "0", "4294967295"]
    except OSError:
        return False


def from_record(record: dict | None):
    """The manager of a container from its state (None: it has no cgroup)."""
    if not record:
        return None
    if record["driver"] == "v2":
        from runtime.cgroups.v2 import V2

        return V2(record["path"], record["dirs"], record.get("parents", []))
    from runtime.cgroups.v1 import V1

    return V1(record["path"], record["dirs"], record.get("parents", []))


def paused(record: dict | None) -> bool:
    """Whether the container's cgroup is frozen: one small read, for `state`."""
    if not record:
        return False
    if record["driver"] == "v2":
        file = f"{record['dirs']['']}/cgroup.freeze"
        frozen = "1"
    else:
        directory = next((d for key, d in record["dirs"].items() if "freezer" in key.split(",")), None)
        if directory is None:
            return False
        file, frozen = f"{directory}/freezer.state", "FROZEN"
    try:
        with open(file) as state:
            return state.read().strip() == frozen
    except OSError:
        return False


def _path(cgroups_path: str, container_id: str, own: str, delegated: str | None) -> str:
    if cgroups_path.startswith("/"):
        path = cgroups_path
    elif cgroups_path:
        path = f"{own.rstrip('/')}/{cgroups_path}"
    elif delegated is not None:
        path = f"{delegated.rstrip('/')}/rootlet-{container_id}"
    else:
        path = f"{DEFAULT_PARENT}/{container_id}"
    parts = [part for part in path.split("/") if part and part != "."]
    if ".." in parts:
        raise RootletError(f"linux.cgroupsPath {cgroups_path!r} must not contain '..'",
                           path="linux.cgroupsPath")
    return "/" + "/".join(parts)


def _delegation(unified, own: str) -> str | None:
    """Where an unprivileged caller may make cgroups: beside its own cgroup
    when the parent is delegated too (a systemd user session), else below it."""
    directory = unified.directory(own)
    if not (os.access(directory, os.W_OK) and os.access(f"{directory}/cgroup.procs", os.W_OK)):
        return None
    parent = os.path.dirname(own.rstrip("/")) or "/"
    if parent != "/" and os.access(unified.directory(parent), os.W_OK) and \
            os.access(f"{unified.directory(parent)}/cgroup.subtree_control", os.W_OK):
        return parent
    return own


def _without_cgroup(resources: dict, why: str) -> None:
    if asks_for_limits(resources):
        wanted = next(section for section in _LIMIT_SECTIONS if resources.get(section))
        raise RootletError(f"linux.resources.{wanted}: limits need a cgroup, but {why}; delegate a cgroup "
                           f"v2 subtree to this user (e.g. systemd-run --user --scope -p Delegate=yes)",
                           path=f"linux.resources.{wanted}")
    _warn(f"running the container without a cgroup: {why}")
    return None


def _warn(message: str) -> None:
    from runtime import log

    log.warning(message)


def _online(path: str, default: str = "") -> frozenset[int] | None:
    from runtime.cgroups.plan import parse_list

    try:
        with open(path) as online:
            text = online.read().strip()
    except OSError:
        text = default
    return parse_list(text, path) if text else None
