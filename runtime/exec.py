"""`exec`: run another process in a running container (runc's `exec`).

The new process joins every namespace of the container's init (the user
namespace first), forks once more when the pid namespace applies only to
children, and then gets the same treatment as the init's own process
(runtime.process): rlimits, user, capabilities, no_new_privs. Without
--detach rootlet waits and exits with its status.
"""

from __future__ import annotations

import os

from runtime import _linux, fds, jsonio, namespaces, pty
from runtime import process as user_process
from runtime.cgroups import join
from runtime.errors import RootletError, WrongState
from runtime.spec.model import Process
from runtime.state import ContainerDir, status
from runtime.sync import Channel, fork_reported
from runtime.sys import constants as k
from runtime.sys.calls import fail


class ExecOptions:
    __slots__ = ("args", "process_file", "detach", "pid_file", "tty", "console_socket", "cwd", "env", "user",
                 "additional_gids", "caps", "no_new_privs", "preserve_fds")

    def __init__(self, **values):
        for name in self.__slots__:
            setattr(self, name, values.get(name))


def build_process(base: dict, options: ExecOptions) -> Process:
    """The process to run: --process FILE as it is, or the container's own
    process with the command line's changes (runc's rules)."""
    if options.process_file:
        raw = jsonio.load_file(options.process_file, what=options.process_file)
        from runtime.spec import schema

        schema.validate(raw, "config", definition="Process", prefix="process")
        return Process(raw, where="process")
    if not options.args:
        raise RootletError("exec needs a command to run (or --process FILE)")
    raw = dict(base)
    raw["args"] = list(options.args)
    raw["terminal"] = bool(options.tty)
    raw["env"] = list(base.get("env", [])) + list(options.env or [])
    if options.cwd:
        raw["cwd"] = options.cwd
    user = dict(base.get("user", {}))
    if options.user:
        uid, _, gid = options.user.partition(":")
        if not uid.isdigit() or (gid and not gid.isdigit()):
            raise RootletError(f"--user {options.user!r}: use UID[:GID] with numbers")
        user["uid"] = int(uid)
        user["gid"] = int(gid) if gid else 0
    if options.additional_gids:
        user["additionalGids"] = [int(gid) for gid in options.additional_gids]
    raw["user"] = user
    if options.caps:
        caps = {name: list(values) for name, values in (base.get("capabilities") or {}).items()}
        for name in ("bounding", "effective", "inheritable", "permitted", "ambient"):
            caps[name] = caps.get(name, []) + [c for c in options.caps if c not in caps.get(name, [])]
        raw["capabilities"] = caps
    if options.no_new_privs:
        raw["noNewPrivileges"] = True
    return Process(raw, where="process")


def execute(root: str, container_id: str, options: ExecOptions) -> int:
    with ContainerDir.open(root, container_id, shared=True) as directory:
        state = directory.load()
        current = status(directory, state)
        if current not in ("created", "running"):
            raise WrongState(f"cannot exec in container {container_id!r}: it is {current}")
        init_pid = state["pid"]
        process = build_process(state.get("process", {}), options)
        filters = None
        if state.get("seccomp"):  # the container's linux.seccomp applies to exec'd processes too
            from runtime import seccomp

            filters = seccomp.plan(state["seccomp"])
            seccomp.prepare(filters, root)
    relay = None
    console_socket = options.console_socket or ""
    if process.terminal and not console_socket and not options.detach:
        from runtime import console

        relay = console.Relay()
        console_socket = relay.socket_path
    try:
        pid = _spawn(init_pid, process, console_socket, int(options.preserve_fds or 0), filters, state)
    finally:
        if relay is not None and console_socket and options.detach:
            relay.close()
    if options.pid_file:
        from runtime.create import write_pid_file

        write_pid_file(options.pid_file, pid)
    if options.detach:
        return 0
    from runtime.run import wait_in_foreground

    return wait_in_foreground(pid, relay)


def _spawn(init_pid: int, process: Process, console_socket: str, preserve_fds: int, filters=None,
           state: dict | None = None) -> int:
    joins = namespaces.of_process(init_pid)
    parent_end, child_end = Channel.pair()
    console_fd = pty.connect_console_socket(console_socket) if console_socket else -1
    _linux.prctl(k.PR_SET_CHILD_SUBREAPER, 1)
    dirs = ((state or {}).get("cgroup") or {}).get("dirs", {})
    try:
        first, born_in_unified = join.fork(dirs)
    except OSError as err:
        raise fail("fork the process to exec", err) from None
    if first == 0:
        parent_end.close()
        # A container without a mount namespace of its own is only chrooted (runtime.hostmount)
        root = f"/proc/{init_pid}/root" if "mount" not in joins else ""
        _child(joins, process, child_end, console_fd, preserve_fds, filters, dirs, born_in_unified, root)
    child_end.close()
    if console_fd >= 0:
        os.close(console_fd)
    try:
        pid = parent_end.receive("pid", what="rootlet exec")["pid"]
        if pid != first:
            os.waitpid(first, 0)
        if filters is not None and filters.notify:
            from runtime import hooks, seccomp

            container = hooks.state_for_hooks(state["id"], "running", init_pid, state["bundle"],
                                              state.get("annotations", {}), state["ociVersion"])
            seccomp.forward_to_listener(filters, parent_end, pid, container, what="rootlet exec")
        parent_end.receive("ready", what="rootlet exec")
    except BaseException:
        from runtime.reap import kill_and_reap

        kill_and_reap(first)
        raise
    finally:
        parent_end.close()
    return pid


def _child(joins: dict[str, str], process: Process, channel: Channel, console_fd: int,
           preserve_fds: int, filters, cgroup_dirs: dict[str, str], born_in_unified: bool, root: str) -> None:
    """In the forked child; never returns. `root`: chroot there first."""
    try:
        _linux.prctl(k.PR_SET_DUMPABLE, 0)
        if cgroup_dirs:  # before the container's user namespace takes our rights on the host
            join.enter(cgroup_dirs, born_in_unified)
        (console_fd,) = fds.seal(preserve_fds, channel, [console_fd])
        root_fd = os.open(root, k.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) if root else -1
        namespaces.join_all(joins)
        if "pid" in joins:
            fork_reported(channel, lambda: (os.fork(),))
        else:
            channel.send("pid", pid=os.getpid())
        if root_fd >= 0:
            os.fchdir(root_fd)
            os.chroot(".")
            os.close(root_fd)
        os.setsid()
        if process.terminal:
            root_fd = os.open("/", k.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                pty.attach(console_fd, root_fd, process.console_size, bind_console=False)
            finally:
                os.close(root_fd)
        program = user_process.find_program(process.args[0], process.env)
        hand_over = None
        if filters is not None:  # loaded where runtime.init loads it (see init.seccomp_loader)
            from runtime import seccomp

            hand_over = seccomp.loader(filters, channel)
        user_process.apply(process, hand_over)
        late = None
        if hand_over is not None and process.no_new_privileges:
            if filters.notify:
                hand_over()
            else:
                late = filters
        channel.send("ready")
    except BaseException as err:  # noqa: BLE001 - everything must reach the parent
        try:
            channel.send_error(err)
        finally:
            os._exit(1)
    user_process.execute(process, program, {}, late)
