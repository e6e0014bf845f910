"""The lifecycle operations (runtime.md "Operations") as state transitions.

create forks the init (runtime.init) and answers its requests until it is
ready; start releases it through exec.fifo; kill signals it; delete reaps
what is left. Each holds the container's lock for the whole transition, and a
failing create takes everything it made back down before it reports.
"""

from __future__ import annotations

import os
import select

from runtime import _linux, hooks, idmap, init, log
from runtime.errors import ContainerNotFound, RootletError, WrongState
from runtime.spec.model import Config, Hook
from runtime.state import FIFO, ContainerDir, init_alive, process_start_time, public_state, status, timestamp
from runtime.sync import Channel
from runtime.sys import constants as k


class CreateOptions:
    __slots__ = ("bundle", "pid_file", "console_socket", "no_pivot", "preserve_fds")

    def __init__(self, bundle: str, pid_file: str = "", console_socket: str = "", no_pivot: bool = False,
                 preserve_fds: int = 0):
        self.bundle = bundle
        self.pid_file = pid_file
        self.console_socket = console_socket
        self.no_pivot = no_pivot
        self.preserve_fds = preserve_fds


def create(root: str, container_id: str, config: Config, options: CreateOptions) -> int:
    """Create the container; returns the init's pid (host view)."""
    directory = ContainerDir.make(root, container_id)
    created = _Creation(directory, config, options)
    try:
        pid = created.run()
        if options.pid_file:
            write_pid_file(options.pid_file, pid)
    except BaseException:
        created.undo()
        raise
    finally:
        created.close()
    return pid


class _Creation:
    """One create in progress: what it has made so far, so it can be undone."""

    def __init__(self, directory: ContainerDir, config: Config, options: CreateOptions):
        self.directory = directory
        self.config = config
        self.options = options
        self.pids: list[int] = []
        self.fds: list[int] = []
        self.channel: Channel | None = None
        self.cgroup = None  # a runtime.cgroups.Setup once planned
        self.hooks_ran = False  # from the first hook on, a failure ends in poststop

    def run(self) -> int:
        config, directory = self.config, self.directory
        if config.linux.seccomp is not None:  # its BPF program, built or found in the cache, before the fork
            from runtime import seccomp

            seccomp.prepare(config.linux.seccomp, directory.root)
        # Our init ends up as our child when its forking parent exits, so that
        # a failing create can reap it and `run` can wait for it.
        _linux.prctl(k.PR_SET_CHILD_SUBREAPER, 1)
        fifo = f"{directory.path}/{FIFO}"
        os.mkfifo(fifo, 0o622)
        os.chmod(fifo, 0o622)
        fifo_fd = self._keep(os.open(fifo, k.O_PATH | os.O_CLOEXEC))
        console_fd = self._connect_console()
        parent_end, child_end = Channel.pair()
        self.channel = parent_end
        listen_fds = _listen_fds()
        self.cgroup = _plan_cgroup(directory.id, config)  # bad linux.resources fail here, before any fork
        context = init.InitContext(config, child_end, fifo_fd, console_fd, self.options.no_pivot,
                                   listen_fds + self.options.preserve_fds, directory.id, listen_fds)
        first = os.fork()
        if first == 0:
            parent_end.close()
            directory.close()  # the lock must not outlive create in the init
            init.main(context)
        self.pids.append(first)
        child_end.close()
        if self.cgroup is not None:
            self.cgroup.create()  # while the init sets up its namespaces
        pid = self._serve(first)
        directory.save(self._state(pid))
        return pid

    def _serve(self, first: int) -> int:
        """Answer the init's requests until it reports ready."""
        channel, config = self.channel, self.config
        if config.linux.namespaces.get("user") == "":
            channel.receive("idmap")
            idmap.write_maps(first, config.linux.uid_mappings, config.linux.gid_mappings)
            channel.send("idmapped")
        if self.cgroup is not None:  # moving a first process costs the kernel a grace period: overlap it
            self.cgroup.join_early(first)
        pid = channel.receive("pid")["pid"]
        if pid != first:
            os.waitpid(first, 0)
            self.pids = [pid]
        # init joins the container's cgroup before it makes its cgroup namespace
        if self.cgroup is not None:
            self.cgroup.join(pid)
        channel.send("cgrouped")
        channel.receive("prestart")
        self.hooks_ran = True
        state = hooks.state_for_hooks(self.directory.id, "creating", pid, config.bundle, config.annotations,
                                      config.oci_version)
        hooks.run_all("prestart", config.hooks.get("prestart", []), state)
        hooks.run_all("createRuntime", config.hooks.get("createRuntime", []), state)
        channel.send("go")
        if config.linux.seccomp is not None and config.linux.seccomp.notify:
            from runtime import seccomp

            seccomp.forward_to_listener(config.linux.seccomp, channel, pid, state, what="container init")
        channel.receive("ready")
        return pid

    def _state(self, pid: int) -> dict:
        config = self.config
        return {
            "ociVersion": config.oci_version,
            "id": self.directory.id,
            "pid": pid,
            "init_start": process_start_time(pid),
            "bundle": config.bundle,
            "rootfs": config.rootfs,
            "created": timestamp(),
            "owner": _owner(),
            "annotations": config.annotations,
            "process": config.raw_process,
            "seccomp": config.linux.seccomp.raw if config.linux.seccomp is not None else None,  # for exec
            "hooks": {phase: [_hook_dict(hook) for hook in config.hooks.get(phase, [])]
                      for phase in ("poststart", "poststop")},
            "cgroup": self.cgroup.manager.record() if self.cgroup is not None else None,
            "resources": config.linux.resources,  # as `update` changes them
        }

    def _connect_console(self) -> int:
        if not self.options.console_socket:
            return -1
        import _socket

        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.connect(self.options.console_socket)
        except OSError as err:
            sock.close()
            raise RootletError(f"connect to --console-socket {self.options.console_socket}: "
                               f"{err.strerror}") from None
        return self._keep(sock.detach())

    def _keep(self, fd: int) -> int:
        self.fds.append(fd)
        return fd

    def undo(self) -> None:
        for pid in self.pids:
            kill_and_reap(pid)
        if self.cgroup is not None:
            self.cgroup.undo()
        self.directory.remove()
        if self.hooks_ran:
            # runtime.md "Lifecycle": a failing create hook stops the container
            # and the lifecycle goes on at delete, which runs poststop hooks.
            config = self.config
            state = hooks.state_for_hooks(self.directory.id, "stopped", 0, config.bundle, config.annotations,
                                          config.oci_version)
            hooks.run_all("poststop", config.hooks.get("poststop", []), state, warn=log.warning)

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []
        if self.cgroup is not None:
            self.cgroup.manager.close()
        if self.channel is not None:
            self.channel.close()
        self.directory.close()


def _plan_cgroup(container_id: str, config: Config):
    from runtime import cgroups

    linux = config.linux
    return cgroups.prepare(container_id, linux.cgroups_path, linux.resources)


def _listen_fds() -> int:
    """Socket-activation fds handed to us (sd_listen_fds(3)) pass on to the container."""
    count = os.environ.get("LISTEN_FDS", "")
    return int(count) if count.isdigit() and os.environ.get("LISTEN_PID") == str(os.getpid()) else 0


def _hook_dict(hook: Hook) -> dict:
    return {"path": hook.path, "args": hook.args, "env": hook.env, "timeout": hook.timeout}


def _hooks_from_state(state: dict, phase: str) -> list[Hook]:
    return [Hook(h["path"], h["args"], h["env"], h["timeout"]) for h in state.get("hooks", {}).get(phase, [])]


def _owner() -> str:
    uid = os.geteuid()
    try:
        with open("/etc/passwd") as passwd:
            for line in passwd:
                fields = line.split(":")
                if len(fields) > 2 and fields[2] == str(uid):
                    return fields[0]
    except OSError:
        pass
    return str(uid)


def write_pid_file(path: str, pid: int) -> None:
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as stream:
        stream.write(str(pid))
    os.rename(temporary, path)


def kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        return
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        _wait_gone(pid, 5.0)


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait until `pid` exits (it need not be our child); False on timeout."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except OSError as err:
        if err.errno == 22:  # EINVAL: the pid is still referenced but its process is reaped
            return True
        raise
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(int(timeout * 1000)))
    finally:
        os.close(pidfd)


# ---------------------------------------------------------------- start

def start(root: str, container_id: str) -> None:
    directory = ContainerDir.open(root, container_id)
    try:
        state = directory.load()
        current = status(directory, state)
        if current != "created":
            raise WrongState(f"cannot start container {container_id!r}: it is {current}, not created")
        release(directory, state)
    finally:
        directory.close()


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
    hook_state = hooks.state_for_hooks(directory.id, "running", state["pid"], state["bundle"],
                                       state.get("annotations", {}), state["ociVersion"])
    # config.md: a failing poststart hook is a warning; the others still run
    hooks.run_all("poststart", _hooks_from_state(state, "poststart"), hook_state, warn=log.warning)


def _read_until_exec(fifo_fd: int, pidfd: int, container_id: str) -> str:
    """What the init writes on exec.fifo: "0" when released, then nothing
    until execve closes its end (end-of-file), or why it failed."""
    poller = select.poll()
    poller.register(fifo_fd, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    received = b""
    while True:
        ready = dict(poller.poll())
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
    directory = ContainerDir.open(root, container_id, shared=True)
    try:
        return public_state(directory, directory.load())
    finally:
        directory.close()


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
    directory = ContainerDir.open(root, container_id)
    try:
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
    finally:
        directory.close()


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
    try:
        state = directory.load()
        current = status(directory, state)
        if current in ("running", "paused") and not force:
            raise WrongState(f"cannot delete container {container_id!r} that is {current} (use --force)")
        destroy(directory, state)
    finally:
        directory.close()


def destroy(directory: ContainerDir, state: dict) -> None:
    """Kill what is left of the container, remove its state, run poststop hooks."""
    manager = _cgroup_of(state)
    try:
        if init_alive(state):
            _signal_init(state, 9)
            if manager is not None and manager.paused():
                manager.thaw()  # a frozen v1 process dies of SIGKILL only once thawed
            if not _wait_gone(state["pid"], 10.0):
                raise RootletError(f"container {directory.id!r} init did not die after SIGKILL")
        if manager is not None:  # what is left (processes outside the init's pid namespace), then the cgroup
            manager.kill_all()
            manager.remove()
    finally:
        if manager is not None:
            manager.close()
    directory.remove()
    hook_state = hooks.state_for_hooks(directory.id, "stopped", 0, state["bundle"],
                                       state.get("annotations", {}), state["ociVersion"])
    # config.md: a failing poststop hook is a warning; the others still run
    hooks.run_all("poststop", _hooks_from_state(state, "poststop"), hook_state, warn=log.warning)
