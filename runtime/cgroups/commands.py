"""The commands that work on a container through its cgroup, as runc has
them: pause, resume, update, events and ps."""

from __future__ import annotations

import os

from runtime import cgroups, jsonio, log
from runtime.errors import RootletError, WrongState
from runtime.state import ContainerDir, init_alive, status


def _manager(state: dict, container_id: str):
    manager = cgroups.from_record(state.get("cgroup"))
    if manager is None:
        raise RootletError(f"container {container_id!r} has no cgroup (it was created without one: "
                           f"see the warning of its create)")
    return manager


# ---------------------------------------------------------------- pause, resume

def pause(root: str, container_id: str) -> None:
    with ContainerDir.open(root, container_id) as directory:
        state = directory.load()
        current = status(directory, state)
        if current not in ("running", "created"):
            raise WrongState(f"cannot pause container {container_id!r}: it is {current}")
        manager = _manager(state, container_id)
        try:
            manager.freeze()
        finally:
            manager.close()


def resume(root: str, container_id: str) -> None:
    with ContainerDir.open(root, container_id) as directory:
        state = directory.load()
        current = status(directory, state)
        if current != "paused":
            raise WrongState(f"cannot resume container {container_id!r}: it is {current}, not paused")
        manager = _manager(state, container_id)
        try:
            manager.thaw()
        finally:
            manager.close()


# ---------------------------------------------------------------- update

# runc's `update` flags: flag -> (section, key, how to parse)
UPDATE_FLAGS = {
    "memory": ("memory", "limit", "bytes"), "memory-swap": ("memory", "swap", "bytes"),
    "memory-reservation": ("memory", "reservation", "bytes"), "kernel-memory": ("memory", "kernel", "bytes"),
    "kernel-memory-tcp": ("memory", "kernelTCP", "bytes"),
    "cpu-share": ("cpu", "shares", "int"), "cpu-shares": ("cpu", "shares", "int"),
    "cpu-quota": ("cpu", "quota", "int"), "cpu-period": ("cpu", "period", "int"),
    "cpu-rt-period": ("cpu", "realtimePeriod", "int"), "cpu-rt-runtime": ("cpu", "realtimeRuntime", "int"),
    "cpu-idle": ("cpu", "idle", "int"), "cpu-burst": ("cpu", "burst", "int"),
    "cpuset-cpus": ("cpu", "cpus", "str"), "cpuset-mems": ("cpu", "mems", "str"),
    "pids-limit": ("pids", "limit", "int"), "blkio-weight": ("blockIO", "weight", "int"),
}
_UPDATABLE = ("memory", "cpu", "pids", "blockIO", "hugepageLimits", "unified")
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_bytes(text: str, flag: str) -> int:
    """runc's sizes: -1, a number, or a number with k/m/g/t/p (binary units,
    optionally followed by b or ib: 512m, 1GiB, 64kb)."""
    value = text.strip().lower()
    if value == "-1":
        return -1
    for suffix in ("ib", "b"):
        if value.endswith(suffix) and len(value) > len(suffix) and not value[-len(suffix) - 1].isdigit():
            value = value[:-len(suffix)]
            break
    unit = value[-1:] if value[-1:].isalpha() else ""
    digits = value[:len(value) - len(unit)]
    try:
        number = float(digits)
    except ValueError:
        number = -1.0
    if unit not in _UNITS or number < 0 or not digits:
        raise RootletError(f"--{flag}: {text!r} is not a size (such as 512m, 1g or -1)")
    return int(number * _UNITS[unit])


def resources_from_flags(flags: dict) -> dict:
    delta: dict = {}
    for flag, (section, key, kind) in UPDATE_FLAGS.items():
        text = flags.get(flag)
        if text is None:
            continue
        if kind == "bytes":
            value = parse_bytes(text, flag)
        elif kind == "int":
            if not text.strip().lstrip("-").isdigit():
                raise RootletError(f"--{flag}: {text!r} is not a number")
            value = int(text)
        else:
            value = text
        delta.setdefault(section, {})[key] = value
    return delta


def resources_from_file(path: str) -> dict:
    """--resources FILE (or - for stdin): a LinuxResources object."""
    if path == "-":
        chunks = []
        while True:
            chunk = os.read(0, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        text, what = b"".join(chunks).decode(), "--resources from stdin"
    else:
        try:
            with open(path) as stream:
                text = stream.read()
        except OSError as err:
            raise RootletError(f"--resources {path}: {err.strerror}") from None
        what = f"--resources {path}"
    raw = jsonio.loads(text, what=what)
    from runtime.spec import schema

    schema.validate(raw, "config", definition="Resources", prefix="linux.resources")
    return raw


def merge(current: dict, delta: dict) -> dict:
    """The container's resources with the update applied, section by section."""
    merged = {key: (dict(value) if isinstance(value, dict) else value) for key, value in current.items()}
    for section, value in delta.items():
        if isinstance(value, dict) and isinstance(merged.get(section), dict):
            merged[section].update(value)
        else:
            merged[section] = value
    return merged


def update(root: str, container_id: str, delta: dict) -> None:
    from runtime.cgroups import plan as planner

    with ContainerDir.open(root, container_id) as directory:
        state = directory.load()
        current = status(directory, state)
        if current == "stopped":
            raise WrongState(f"cannot update container {container_id!r}: it is stopped")
        manager = _manager(state, container_id)
        ignored = [section for section in delta if section not in _UPDATABLE and delta[section]]
        if ignored:
            log.warning(f"update: linux.resources.{', '.join(ignored)} cannot change on a running container; "
                        f"ignored")
        sections = tuple(section for section in delta if section in _UPDATABLE)
        merged = merge(state.get("resources") or {}, {section: delta[section] for section in sections})
        cpu = merged.get("cpu") or {}
        cpus = cgroups._online("/sys/devices/system/cpu/online") if cpu.get("cpus") else None
        mems = cgroups._online("/sys/devices/system/node/online", "0") if cpu.get("mems") else None
        plan = planner.plan(merged, v2=manager.driver == "v2", sections=sections, cpus=cpus, mems=mems)
        for warning in plan.warnings:
            log.warning(warning)
        try:
            manager.apply(plan, None, fresh=False)
        finally:
            manager.close()
        state["resources"] = merged
        directory.save(state)


# ---------------------------------------------------------------- events

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """A Go duration ("5s", "250ms", "1m30s") in seconds."""
    rest, total = text.strip(), 0.0
    if not rest:
        raise RootletError("--interval: empty duration")
    while rest:
        digits = len(rest) - len(rest.lstrip("0123456789."))
        unit_end = digits + len(rest[digits:]) - len(rest[digits:].lstrip("nuµmsh"))
        number, unit = rest[:digits], rest[digits:unit_end]
        if not number or unit not in _DURATION_UNITS:
            raise RootletError(f"--interval: {text!r} is not a duration (such as 5s or 250ms)")
        try:
            total += float(number) * _DURATION_UNITS[unit]
        except ValueError:
            raise RootletError(f"--interval: {text!r} is not a duration (such as 5s or 250ms)") from None
        rest = rest[unit_end:]
    if total <= 0:
        raise RootletError("--interval: the duration must be positive")
    return total


def _load_running(root: str, container_id: str) -> dict:
    with ContainerDir.open(root, container_id, shared=True) as directory:
        state = directory.load()
        if status(directory, state) == "stopped":
            raise WrongState(f"container {container_id!r} is not running")
        return state


def _emit(event: dict) -> None:
    os.write(1, (jsonio.dumps(event) + "\n").encode())


def events(root: str, container_id: str, stats_only: bool, interval: float) -> None:
    """runc's `events`: one stats event (--stats), or a stats event every
    interval and an oom event whenever the kernel's OOM killer strikes in the
    container, until the container stops."""
    import time

    from runtime import _linux

    state = _load_running(root, container_id)
    manager = _manager(state, container_id)
    try:
        if stats_only:
            _emit({"type": "stats", "id": container_id, "data": manager.stats()})
            return
        pidfd = os.pidfd_open(state["pid"])
        try:
            ooms = manager.oom_kills()
            next_stats = time.monotonic()
            while True:
                now = time.monotonic()
                if now >= next_stats:
                    _emit({"type": "stats", "id": container_id, "data": manager.stats()})
                    next_stats = now + interval
                seen = manager.oom_kills()
                if seen > ooms:
                    _emit({"type": "oom", "id": container_id})
                ooms = seen
                pause_ms = int(min(0.1, max(0.0, next_stats - time.monotonic())) * 1000)
                if _linux.wait_readable([pidfd], pause_ms):
                    if manager.oom_kills() > ooms:
                        _emit({"type": "oom", "id": container_id})
                    return  # the init exited: the container stopped
                if not init_alive(state):
                    return
        finally:
            os.close(pidfd)
    finally:
        manager.close()


# ---------------------------------------------------------------- ps

def ps(root: str, container_id: str, output_format: str, ps_args: list[str]) -> None:
    state = _load_running(root, container_id)
    manager = _manager(state, container_id)
    try:
        pids = sorted(set(manager.pids()))
    finally:
        manager.close()
    if output_format == "json":
        _emit_text(jsonio.dumps(pids) + "\n")
        return
    import subprocess

    try:
        result = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, check=False)
    except OSError as err:
        raise RootletError(f"run ps: {err.strerror}") from None
    if result.returncode != 0:
        raise RootletError(f"ps {' '.join(ps_args or ['-ef'])} failed: {result.stderr.decode().strip()}")
    lines = result.stdout.decode(errors="replace").splitlines()
    if not lines:
        raise RootletError("ps printed nothing")
    header = lines[0].split()
    if "PID" not in header:
        raise RootletError(f"ps output has no PID column (ps {' '.join(ps_args)})")
    column = header.index("PID")
    wanted = set(pids)
    out = [lines[0]]
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > column and fields[column].isdigit() and int(fields[column]) in wanted:
            out.append(line)
    _emit_text("".join(f"{line}\n" for line in out))


def _emit_text(text: str) -> None:
    os.write(1, text.encode())
