"""The operations on an existing container (runtime.md "Operations"):
start releases the waiting init through exec.fifo; state and list report;
kill signals; delete reaps what is left. Each holds the container's lock for
the whole transition. `create` is runtime.create; this module stays light,
since `state` and `kill` are called far more often than `create`.
"""

from __future__ import annotations

import os

from runtime import _linux, log
from runtime.errors import ContainerNotFound, RootletError, WrongState
from runtime.reap import wait_gone
from runtime.state import FIFO, ContainerDir, init_alive, process_start_time, public_state, status

# ---------------------------------------------------------------- start

def start(root: str, container_id: str) -> None:
    with ContainerDir.open(root, container_id) as directory:
        state = directory.load()
        current = status(directory, state)
        if current != "created":
            raise WrongState(f"cannot start container {container_id!r}: it is {current}, not created")
        release(directory, state)


def release(directory: ContainerDir, state: dict) -> None:
    """Let the waiting init exec the user's program, then run poststart hooks."""
    fifo = f"{directory.path}/{FIFO}"
    # The pidfd first: once the fifo is open, a short program may run, exit
    # and be reaped by its parent before we could look at it.
    pidfd = os.pidfd_open(state["pid"])
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        report = _read_until_exec(fd, pidfd, directory.id)
    finally:
        os.close(fd)
        os.close(pidfd)
    os.unlink(fifo)
    if report:
        raise RootletError(f"container {directory.id!r} did not start: {report}")
    _run_recorded_hooks(directory, state, "poststart", "running", state["pid"])


def _read_until_exec(fifo_fd: int, pidfd: int, container_id: str) -> str:
    """What the init writes on exec.fifo: "0" when released, then nothing
    until execve closes its end (end-of-file), or why it failed."""
    received = b""
    while True:
        ready = _linux.wait_readable([fifo_fd, pidfd])
        if fifo_fd in ready:
            chunk = os.read(fifo_fd, 4096)
            if chunk:
                received += chunk
                continue
            if received:
                return received[1:].decode(errors="replace")
        if pidfd in ready and not received:
            raise RootletError(f"container {container_id!r} init exited before it was started")


# ---------------------------------------------------------------- state, list

def get_state(root: str, container_id: str) -> dict:
    with ContainerDir.open(root, container_id, shared=True) as directory:
        return public_state(directory, directory.load())


def list_all(root: str) -> list[dict]:
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        try:
            found.append(get_state(root, name))
        except RootletError:
            continue  # being created or deleted right now
    return found


# ---------------------------------------------------------------- kill

def kill(root: str, container_id: str, signal: int, all_processes: bool) -> None:
    with ContainerDir.open(root, container_id) as directory:
        state = directory.load()
        if not init_alive(state):
            raise WrongState(f"container {container_id!r} is not running")
        manager = _cgroup_of(state)
        if all_processes and manager is not None:
            try:
                manager.signal_all(signal)  # the cgroup holds every process, forked or exec'd
            finally:
                manager.close()
        elif all_processes:
            for pid in _processes_in_pid_namespace_of(state["pid"]):
                _signal(pid, signal)
        else:
            _signal_init(state, signal)


def _cgroup_of(state: dict):
    if not state.get("cgroup"):
        return None
    from runtime import cgroups

    return cgroups.from_record(state["cgroup"])


def _signal_init(state: dict, signal: int) -> None:
    """Signal through a pidfd checked against the recorded start time, so a
    recycled pid is never hit."""
    pidfd = os.pidfd_open(state["pid"])
    try:
        if process_start_time(state["pid"]) != state["init_start"]:
            raise WrongState(f"container {state['id']!r} is not running")
        from runtime import _linux

        _linux.pidfd_send_signal(pidfd, signal)
    finally:
        os.close(pidfd)


def _signal(pid: int, signal: int) -> None:
    try:
        os.kill(pid, signal)
    except ProcessLookupError:
        pass


def _processes_in_pid_namespace_of(init_pid: int) -> list[int]:
    """Every process of the container: those in its pid namespace, or, when it
    shares ours, the init's descendants (never the host's processes)."""
    target = os.stat(f"/proc/{init_pid}/ns/pid").st_ino
    shares_ours = target == os.stat("/proc/self/ns/pid").st_ino
    parents: dict[int, int] = {}
    found = [init_pid]
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == init_pid:
            continue
        try:
            if shares_ours:
                with open(f"/proc/{name}/stat", "rb") as stat:
                    text = stat.read()
                parents[int(name)] = int(text[text.rindex(b")") + 2:].split()[1])
            elif os.stat(f"/proc/{name}/ns/pid").st_ino == target:
                found.append(int(name))
        except OSError:
            continue
    if shares_ours:
        found += [pid for pid in parents if _descends_from(pid, init_pid, parents)]
    return found


def _descends_from(pid: int, ancestor: int, parents: dict[int, int]) -> bool:
    seen = 0
    while pid in parents and seen < 4096:
        pid = parents[pid]
        if pid == ancestor:
            return True
        seen += 1
    return False


# ---------------------------------------------------------------- delete

def delete(root: str, container_id: str, force: bool) -> None:
    try:
        directory = ContainerDir.open(root, container_id)
    except ContainerNotFound:
        if force:
            return  # runc: a forced delete of what is not there succeeds
        raise
    with directory:
        state = directory.load()
        current = status(directory, state)
        if current in ("running", "paused") and not force:
            raise WrongState(f"cannot delete container {container_id!r} that is {current} (use --force)")
        destroy(directory, state)


def destroy(directory: ContainerDir, state: dict) -> None:
    """Kill what is left of the container, remove its state, run poststop hooks."""
    manager = _cgroup_of(state)
    try:
        if init_alive(state):
            _signal_init(state, 9)
            if manager is not None and manager.paused():
                manager.thaw()  # a frozen v1 process dies of SIGKILL only once thawed
            if not wait_gone(state["pid"], 10.0):
                raise RootletError(f"container {directory.id!r} init did not die after SIGKILL")
        if manager is not None:  # what is left (processes outside the init's pid namespace), then the cgroup
            manager.kill_all()
            manager.remove()
    finally:
        if manager is not None:
            manager.close()
    if state.get("host_bind"):
        from runtime import hostmount

        hostmount.release(state["rootfs"], state["host_bind"])
    directory.remove()
    _run_recorded_hooks(directory, state, "poststop", "stopped", 0)


def _run_recorded_hooks(directory: ContainerDir, state: dict, phase: str, status_now: str, pid: int) -> None:
    """The poststart or poststop hooks that create recorded in the state. A
    failing one is a warning and the others still run (config.md)."""
    if not state.get("hooks", {}).get(phase):
        return
    from runtime import hooks

    hook_state = hooks.state_for_hooks(directory.id, status_now, pid, state["bundle"],
                                       state.get("annotations", {}), state["ociVersion"])
    hooks.run_all(phase, hooks.from_state(state, phase), hook_state, warn=log.warning)
