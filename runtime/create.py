"""`create` (runtime.md "Operations"): fork the container's init
(runtime.init) and answer its requests until it is ready.

The directory of the container is made and locked first, so a duplicate id
fails before anything else exists; a failing create takes everything it
made back down (the init, its cgroup, the state directory) before it reports,
and runs the poststop hooks once any hook has run.
"""

from __future__ import annotations

import os

from runtime import _linux, hooks, log, namespaces
from runtime.cgroups import join
from runtime.reap import kill_and_reap
from runtime.spec.model import Config
from runtime.state import FIFO, ContainerDir, process_start_time, timestamp
from runtime.sync import Channel
from runtime.sys import constants as k
from runtime.sys.calls import fail


class CreateOptions:
    __slots__ = ("bundle", "pid_file", "console_socket", "no_pivot", "no_new_keyring", "preserve_fds")

    def __init__(self, bundle: str, pid_file: str = "", console_socket: str = "", no_pivot: bool = False,
                 no_new_keyring: bool = False, preserve_fds: int = 0):
        self.bundle = bundle
        self.pid_file = pid_file
        self.console_socket = console_socket
        self.no_pivot = no_pivot
        self.no_new_keyring = no_new_keyring
        self.preserve_fds = preserve_fds


def create(root: str, container_id: str, config: Config, options: CreateOptions, *, then=None) -> int:
    """Create the container; returns the init's pid (host view).

    then(directory, state) runs before the container's directory is
    unlocked, and a failure there undoes the create too: `run` starts the
    container this way without reading back what it has just written."""
    directory = ContainerDir.make(root, container_id)
    created = _Creation(directory, config, options)
    try:
        pid = created.run()
        if options.pid_file:
            write_pid_file(options.pid_file, pid)
        if then is not None:
            then(directory, created.state)
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
        self.state: dict = {}  # as saved, once the init is ready
        self.host_bind = 0  # the mount id of the rootfs bind, without a mount namespace (runtime.hostmount)

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
        if "mount" not in config.linux.namespaces:
            from runtime import hostmount

            self.host_bind = hostmount.bind(config.rootfs, config.linux.rootfs_propagation)
        dirs = {}
        if self.cgroup is not None:
            self.cgroup.make()
            dirs = self.cgroup.manager.dirs
        born = namespaces.born_at_clone(config.linux.namespaces)
        try:
            first, born_in_unified = join.fork(dirs, namespaces.flags_of(born))
        except OSError as err:
            raise fail("create the container's init", err) from None
        if first == 0:
            parent_end.close()
            directory.close()  # the lock must not outlive create in the init
            try:
                # Only the init runs this code, so only the init loads it: create's
                # own peak memory stays ~0.1 MB lower, and the import overlaps
                # with the parent writing the cgroup limits.
                from runtime import init
            except BaseException as err:  # noqa: BLE001 - the parent reports it
                child_end.send_error(err)
                os._exit(1)
            init.main(init.InitContext(config, child_end, fifo_fd, console_fd, self.options,
                                       listen_fds + self.options.preserve_fds, directory.id, listen_fds, dirs,
                                       born, born_in_unified))
        self.pids.append(first)
        child_end.close()
        if self.cgroup is not None:
            self.cgroup.apply()
        pid = self._serve(first)
        self.state = self._state(pid)
        directory.save(self.state)
        return pid

    def _serve(self, first: int) -> int:
        """Answer the init's requests until it reports ready."""
        channel, config = self.channel, self.config
        if config.linux.namespaces.get("user") == "":
            channel.receive("idmap")
            from runtime import idmap

            idmap.write_maps(first, config.linux.uid_mappings, config.linux.gid_mappings)
            channel.send("idmapped")
        pid = channel.receive("pid")["pid"] or first  # 0: the init is `first`, born in its pid namespace
        if pid != first:
            os.waitpid(first, 0)
            self.pids = [pid]
        channel.send("cgrouped")  # the limits are written: the init may make its devices
        channel.receive("prestart")
        self.hooks_ran = True
        # runtime.md "State": `created` once the environment exists ("after
        # step 2 in the lifecycle"), which is before the create hooks (steps
        # 3-5); runc says `creating`, crun and runtime-tools `created`.
        state = hooks.state_for_hooks(self.directory.id, "created", pid, config.bundle, config.annotations,
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
            "hooks": {phase: [hooks.to_json(hook) for hook in config.hooks.get(phase, [])]
                      for phase in ("poststart", "poststop")},
            "cgroup": self.cgroup.manager.record() if self.cgroup is not None else None,
            "resources": config.linux.resources,  # as `update` changes them
            "host_bind": self.host_bind,
        }

    def _connect_console(self) -> int:
        if not self.options.console_socket:
            return -1
        from runtime import pty

        return self._keep(pty.connect_console_socket(self.options.console_socket))

    def _keep(self, fd: int) -> int:
        self.fds.append(fd)
        return fd

    def undo(self) -> None:
        for pid in self.pids:
            kill_and_reap(pid)
        if self.cgroup is not None:
            self.cgroup.undo()
        if self.host_bind:
            from runtime import hostmount

            hostmount.release(self.config.rootfs, self.host_bind)
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
