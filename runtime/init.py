"""The container's init: everything between fork() and execve() of the user's program.

The order follows runtime-linux.md and config.md: become non-dumpable and
drop stray fds first; join or create namespaces (the user namespace first, so
that the others belong to it; the parent writes its id maps meanwhile); fork
once more when a pid or time namespace applies only to children; build the
rootfs; let the parent run createRuntime hooks; run createContainer hooks;
pivot_root; apply the process's attributes; report ready; block on
exec.fifo until `start`; run startContainer hooks; execve.

Any failure goes back to the parent over the sync channel as a RootletError
with the step that failed; this process then exits.
"""

from __future__ import annotations

import os
import stat

from runtime import _linux, capabilities, hooks, rootfs
from runtime.errors import RootletError
from runtime.spec.model import Config
from runtime.sync import Channel
from runtime.sys import constants as k
from runtime.sys.calls import fail, write_file
from runtime.sys.paths import ensure_in_root, fd_path

NAMESPACE_FLAGS = {
    "user": k.CLONE_NEWUSER, "mount": k.CLONE_NEWNS, "pid": k.CLONE_NEWPID, "network": k.CLONE_NEWNET,
    "ipc": k.CLONE_NEWIPC, "uts": k.CLONE_NEWUTS, "cgroup": k.CLONE_NEWCGROUP, "time": k.CLONE_NEWTIME,
}
# setns(2) order for existing namespaces: the user namespace grants the rights
# to join the others; the mount namespace changes what paths mean, so it is last.
_JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")
_RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}
# sysctl prefixes and the namespace that makes them the container's own
_SYSCTL_NAMESPACES = (
    ("net.", "network"), ("kernel.shm", "ipc"), ("kernel.msg", "ipc"), ("kernel.sem", "ipc"),
    ("fs.mqueue.", "ipc"), ("kernel.hostname", "uts"), ("kernel.domainname", "uts"),
)


class InitContext:
    """What the forked init needs; it inherits this object through fork()."""

    __slots__ = ("config", "channel", "fifo_fd", "console_fd", "no_pivot", "extra_fds", "container_id",
                 "listen_fds")

    def __init__(self, config: Config, channel: Channel, fifo_fd: int, console_fd: int,
                 no_pivot: bool, extra_fds: int, container_id: str, listen_fds: int):
        self.config = config
        self.channel = channel
        self.fifo_fd = fifo_fd
        self.console_fd = console_fd
        self.no_pivot = no_pivot
        self.extra_fds = extra_fds
        self.container_id = container_id
        self.listen_fds = listen_fds


def main(ctx: InitContext) -> None:
    """Entry point in the forked child; never returns."""
    try:
        _linux.prctl(k.PR_SET_DUMPABLE, 0)
        _close_stray_fds(ctx)
        _enter_namespaces(ctx)
        _setup_container(ctx)
    except BaseException as err:  # noqa: BLE001 - everything must reach the parent
        try:
            ctx.channel.send_error(err)
        finally:
            os._exit(1)
    os._exit(127)


def _close_stray_fds(ctx: InitContext) -> None:
    """Keep stdio, the fds the caller passes on (--preserve-fds, LISTEN_FDS)
    and our own channels; mark everything else close-on-exec."""
    floor = 3 + ctx.extra_fds
    ctx.channel.sock = _lift_socket(ctx.channel.sock, floor)
    ctx.fifo_fd = _lift(ctx.fifo_fd, floor)
    if ctx.console_fd >= 0:
        ctx.console_fd = _lift(ctx.console_fd, floor)
    for fd in range(3, floor):
        try:
            os.set_inheritable(fd, True)
        except OSError:
            pass
    _linux.close_range(floor, 0xFFFFFFFF, k.CLOSE_RANGE_CLOEXEC)


def _lift(fd: int, floor: int) -> int:
    if fd >= floor:
        return fd
    import fcntl

    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor)
    os.close(fd)
    return new


def _lift_socket(sock, floor: int):
    if sock.fileno() >= floor:
        return sock
    import _socket

    new = _socket.socket(fileno=_lift(sock.detach(), floor))
    return new


# ---------------------------------------------------------------- namespaces

def _enter_namespaces(ctx: InitContext) -> None:
    namespaces = ctx.config.linux.namespaces
    for kind in _JOIN_ORDER:
        if namespaces.get(kind):
            _join(kind, namespaces[kind])
    if namespaces.get("user") == "":
        _new_user_namespace(ctx)
    flags = 0
    for kind, path in namespaces.items():
        if kind != "user" and not path:
            flags |= NAMESPACE_FLAGS[kind]
    try:
        _linux.unshare_namespaces(flags)
    except OSError as err:
        raise fail("create namespaces", err) from None
    if namespaces.get("network") == "":
        try:
            _linux.bring_loopback_up()
        except OSError as err:
            raise fail("bring up lo in the new network namespace", err) from None
    if ctx.config.linux.time_offsets:
        _write_time_offsets(ctx.config.linux.time_offsets)
    # A new or joined pid namespace, and a new time namespace, hold only the
    # caller's children: fork once more so that init is inside.
    if "pid" in namespaces or namespaces.get("time") == "":
        _fork_init(ctx)
    else:
        ctx.channel.send("pid", pid=os.getpid())


def _join(kind: str, path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise fail(f"open {kind} namespace {path}", err) from None
    try:
        _linux.join_namespace(fd, NAMESPACE_FLAGS[kind])
    except OSError as err:
        raise fail(f"join {kind} namespace {path}", err) from None
    finally:
        os.close(fd)


def _new_user_namespace(ctx: InitContext) -> None:
    try:
        _linux.unshare_namespaces(k.CLONE_NEWUSER)
    except OSError as err:
        raise fail("create user namespace", err) from None
    # An unprivileged parent can write our maps only while we are dumpable.
    _linux.prctl(k.PR_SET_DUMPABLE, 1)
    ctx.channel.send("idmap")
    ctx.channel.receive("idmapped", what="rootlet create")
    _linux.prctl(k.PR_SET_DUMPABLE, 0)
    try:
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    except OSError as err:
        raise fail("become root in the user namespace (is uid/gid 0 mapped?)", err) from None


def _write_time_offsets(offsets: dict) -> None:
    lines = "".join(
        f"{clock} {value.get('secs', 0)} {value.get('nanosecs', 0)}\n" for clock, value in offsets.items()
    )
    write_file("/proc/self/timens_offsets", lines, step="write linux.timeOffsets")


def _fork_init(ctx: InitContext) -> None:
    gate_read, gate_write = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid:
        ctx.channel.send("pid", pid=pid)
        os._exit(0)
    os.close(gate_write)
    os.read(gate_read, 1)  # returns at EOF: our parent has reported our pid and exited
    os.close(gate_read)


# ---------------------------------------------------------------- the container

def _in_user_namespace() -> bool:
    with open("/proc/self/uid_map") as mapping:
        return mapping.read().split() != ["0", "0", "4294967295"]


def _setup_container(ctx: InitContext) -> None:
    config = ctx.config
    os.setsid()
    os.umask(0)
    in_userns = _in_user_namespace()
    if "mount" not in config.linux.namespaces:
        raise RootletError("rootlet needs a mount namespace", step="check linux.namespaces")
    rootfs.prepare(config)
    root_fd = os.open(config.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    rootfs.mount_all(config, root_fd, in_userns)
    rootfs.populate_dev(config, root_fd, in_userns)
    process = config.process
    if process is not None and process.terminal:
        _setup_console(ctx, root_fd)
    if process is not None:
        os.close(ensure_in_root(root_fd, process.cwd))
    os.close(root_fd)
    _set_names(config)
    ctx.channel.send("prestart")
    ctx.channel.receive("go", what="rootlet create")
    hooks.run_all("createContainer", config.hooks.get("createContainer", []), _hook_state(ctx, "creating"))
    rootfs.pivot(config, ctx.no_pivot)
    _write_sysctls(config)
    rootfs.mask_paths(config.linux.masked_paths)
    rootfs.make_readonly(config.linux.readonly_paths)
    if config.root_readonly:
        rootfs.make_root_readonly()
    if process is None:
        raise RootletError("config.json has no process to run", path="process")
    program = _find_program(process.args[0], process.env)
    _apply_process(process)
    ctx.channel.send("ready")
    _wait_for_start(ctx)
    hooks.run_all("startContainer", config.hooks.get("startContainer", []), _hook_state(ctx, "created"))
    env = dict(_env_pairs(process.env))
    if "HOME" not in env:
        env["HOME"] = _home_of(process.uid)
    if ctx.listen_fds:
        env["LISTEN_FDS"] = str(ctx.listen_fds)
        env["LISTEN_PID"] = "1"
    try:
        os.execve(program, process.args, env)
    except OSError as err:
        os.write(2, f"rootlet: exec {process.args[0]}: {err.strerror}\n".encode())
        os._exit(127)


def _hook_state(ctx: InitContext, status: str) -> dict:
    config = ctx.config
    return hooks.state_for_hooks(ctx.container_id, status, os.getpid(), config.bundle, config.annotations,
                                 config.oci_version)


def _set_names(config: Config) -> None:
    try:
        if config.hostname:
            _linux.set_hostname(config.hostname)
        if config.domainname:
            _linux.set_domainname(config.domainname)
    except OSError as err:
        raise fail("set hostname", err) from None


def _write_sysctls(config: Config) -> None:
    for key, value in config.linux.sysctl.items():
        owner = next((ns for prefix, ns in _SYSCTL_NAMESPACES if key.startswith(prefix)), None)
        if owner is None or owner not in config.linux.namespaces or config.linux.namespaces[owner]:
            raise RootletError(f"sysctl {key} is not in a namespace the container owns",
                               path=f"linux.sysctl.{key}")
        write_file("/proc/sys/" + key.replace(".", "/"), value, step=f"write sysctl {key}")


def _setup_console(ctx: InitContext, root_fd: int) -> None:
    """A pty from the container's own devpts; the master goes to the console
    socket (SCM_RIGHTS), the slave becomes stdio and /dev/console."""
    if ctx.console_fd < 0:
        raise RootletError("process.terminal needs --console-socket", path="process.terminal")
    try:
        ptmx = ensure_in_root(root_fd, "/dev/pts/ptmx", is_dir=False)
        master = os.open(fd_path(ptmx), os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        os.close(ptmx)
        _linux.unlock_pty(master)
        slave = _linux.open_pty_peer(master, os.O_RDWR | os.O_NOCTTY)
        size = ctx.config.process.console_size
        if size:
            _linux.set_window_size(slave, size[0], size[1])
    except OSError as err:
        raise fail("open a pty in the container's devpts", err) from None
    console = ensure_in_root(root_fd, "/dev/console", is_dir=False)
    from runtime.sys.calls import mount

    mount(fd_path(slave), fd_path(console), None, k.MS_BIND, step="bind the pty onto /dev/console")
    os.close(console)
    _send_fd(ctx.console_fd, master)
    os.close(master)
    os.close(ctx.console_fd)
    ctx.console_fd = -1
    for target in (0, 1, 2):
        os.dup2(slave, target)
    os.close(slave)
    try:
        _linux.set_controlling_terminal(0)
    except OSError as err:
        raise fail("make the pty the controlling terminal", err) from None


def _send_fd(socket_fd: int, fd: int) -> None:
    import _socket
    import sys

    sock = _socket.socket(fileno=os.dup(socket_fd))
    try:
        sock.sendmsg([b"console"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fd.to_bytes(4, sys.byteorder))])
    except OSError as err:
        raise fail("send the pty master to --console-socket", err) from None
    finally:
        sock.close()


def _env_pairs(env: list[str]):
    for entry in env:
        name, _, value = entry.partition("=")
        yield name, value


def _home_of(uid: int) -> str:
    """HOME from the container's /etc/passwd, "/" without an entry (as runc)."""
    try:
        with open("/etc/passwd") as passwd:
            for line in passwd:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5] or "/"
    except OSError:
        pass
    return "/"


def _find_program(name: str, env: list[str]) -> str:
    """process.args[0] looked up on the container's PATH, as execvp(3) would;
    checked before `create` returns so that a typo fails early."""
    if "/" in name:
        candidates = [name]
    else:
        path = dict(_env_pairs(env)).get("PATH", "/usr/local/bin:/usr/bin:/bin")
        candidates = [f"{directory or '.'}/{name}" for directory in path.split(":")]
    for candidate in candidates:
        try:
            info = os.stat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode) and info.st_mode & 0o111:
            return candidate
    raise RootletError(f"executable file {name!r} not found in the container's $PATH",
                       path="process.args[0]")


def _apply_process(process) -> None:
    """rlimits, oom score and no_new_privs first (they need privilege), then
    the user, then capabilities (config.md "Linux Process")."""
    for name, soft, hard in process.rlimits:
        try:
            _linux.set_rlimit(_RLIMITS[name], soft, hard)
        except OSError as err:
            raise fail(f"set {name} to {soft}:{hard}", err) from None
    if process.oom_score_adj is not None:
        write_file("/proc/self/oom_score_adj", str(process.oom_score_adj), step="write process.oomScoreAdj")
    caps = process.capabilities
    _drop_bounding(capabilities.mask(caps["bounding"], "process.capabilities.bounding"))
    _set_user(process)
    _set_capabilities(caps)
    if process.no_new_privileges:
        _linux.prctl(k.PR_SET_NO_NEW_PRIVS, 1)
    os.chdir(process.cwd)
    os.umask(process.umask if process.umask is not None else 0o022)


def _drop_bounding(keep: int) -> None:
    for number in range(capabilities.last_supported() + 1):
        if not keep & (1 << number):
            try:
                _linux.prctl(k.PR_CAPBSET_DROP, number)
            except OSError as err:
                raise fail(f"drop {capabilities.NAMES[number]} from the bounding set", err) from None


def _set_user(process) -> None:
    try:
        with open("/proc/self/setgroups") as setgroups:
            may_set_groups = setgroups.read().strip() == "allow"
    except OSError:
        may_set_groups = True
    try:
        if may_set_groups:
            os.setgroups(process.additional_gids)
        elif process.additional_gids:
            raise RootletError("additional groups need setgroups, which this user namespace denies",
                               path="process.user.additionalGids")
        os.setresgid(process.gid, process.gid, process.gid)
        _linux.prctl(k.PR_SET_KEEPCAPS, 1)
        os.setresuid(process.uid, process.uid, process.uid)
        _linux.prctl(k.PR_SET_KEEPCAPS, 0)
    except OSError as err:
        raise fail(f"switch to user {process.uid}:{process.gid}", err) from None


def _set_capabilities(caps: dict) -> None:
    masks = {name: capabilities.mask(caps[name], f"process.capabilities.{name}") for name in caps}
    try:
        _linux.set_capabilities(masks["effective"], masks["permitted"], masks["inheritable"])
        _linux.prctl(k.PR_CAP_AMBIENT, k.PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError as err:
        raise fail("set capabilities", err) from None
    # The kernel raises an ambient capability only if it is also permitted and
    # inheritable; runc skips the others quietly, and so do we.
    for number in range(capabilities.last_supported() + 1):
        if masks["ambient"] & (1 << number):
            try:
                _linux.prctl(k.PR_CAP_AMBIENT, k.PR_CAP_AMBIENT_RAISE, number)
            except OSError:
                continue


def _wait_for_start(ctx: InitContext) -> None:
    """Block until `start` opens exec.fifo for reading (runtime.md "start").
    The fifo is reached through our O_PATH fd: its path is outside the rootfs."""
    fd = os.open(fd_path(ctx.fifo_fd), os.O_WRONLY | os.O_CLOEXEC)
    os.write(fd, b"0")
    os.close(fd)
    os.close(ctx.fifo_fd)
