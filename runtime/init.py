"""The container's init: everything between its clone3() by `create` and
execve() of the user's program.

The order follows runtime-linux.md and config.md: become non-dumpable,
enter the container's cgroup (runtime.cgroups.join) and drop stray fds
first; join or create namespaces (the user namespace first, so
that the others belong to it; the parent writes its id maps meanwhile); fork
once more when a pid or time namespace applies only to children; build the
rootfs; let the parent run createRuntime hooks; run createContainer hooks;
pivot_root; apply the process's attributes; report ready; block on
exec.fifo until `start`; run startContainer hooks; execve. The seccomp
filter goes in at one of three points (see seccomp_loader).

Any failure goes back to the parent over the sync channel as a RootletError
with the step that failed; this process then exits.
"""

from __future__ import annotations

import os

from runtime import _linux, fds, hooks, namespaces, rootfs
from runtime import process as user_process
from runtime.cgroups import join
from runtime.errors import RootletError
from runtime.spec.model import Config
from runtime.sync import Channel, fork_reported
from runtime.sys import constants as k
from runtime.sys.calls import fail, write_file
from runtime.sys.paths import ensure_in_root, fd_path
from runtime.sys.userns import in_user_namespace

# sysctl prefixes and the namespace that makes them the container's own
_SYSCTL_NAMESPACES = (
    ("net.", "network"), ("kernel.shm", "ipc"), ("kernel.msg", "ipc"), ("kernel.sem", "ipc"),
    ("fs.mqueue.", "ipc"), ("kernel.hostname", "uts"), ("kernel.domainname", "uts"),
)


class InitContext:
    """What the init needs from create."""

    __slots__ = ("config", "channel", "fifo_fd", "console_fd", "no_pivot", "new_keyring", "extra_fds",
                 "container_id", "listen_fds", "cgroup_dirs", "born", "born_in_unified")

    def __init__(self, config: Config, channel: Channel, fifo_fd: int, console_fd: int, options,
                 extra_fds: int, container_id: str, listen_fds: int, cgroup_dirs: dict[str, str],
                 born: list[str], born_in_unified: bool):
        self.config = config
        self.channel = channel
        self.fifo_fd = fifo_fd
        self.console_fd = console_fd
        self.no_pivot: bool = options.no_pivot
        self.new_keyring: bool = not options.no_new_keyring
        self.extra_fds = extra_fds
        self.container_id = container_id
        self.listen_fds = listen_fds
        self.cgroup_dirs = cgroup_dirs  # the container's cgroup, entered first thing (runtime.cgroups.join)
        self.born = born  # the new namespaces clone3 made this process in (namespaces.born_at_clone)
        self.born_in_unified = born_in_unified  # whether clone3 made it in the cgroup2 directory too


def main(ctx: InitContext) -> None:
    """Entry point in the init; never returns."""
    try:
        _linux.prctl(k.PR_SET_DUMPABLE, 0)
        if ctx.cgroup_dirs:  # while still the host's root: before any namespace
            join.enter(ctx.cgroup_dirs, ctx.born_in_unified)
        ctx.fifo_fd, ctx.console_fd = fds.seal(ctx.extra_fds, ctx.channel, [ctx.fifo_fd, ctx.console_fd])
        _enter_namespaces(ctx)
        _setup_container(ctx)
    except BaseException as err:  # noqa: BLE001 - everything must reach the parent
        try:
            ctx.channel.send_error(err)
        finally:
            os._exit(1)
    os._exit(127)


# ---------------------------------------------------------------- namespaces

def _enter_namespaces(ctx: InitContext) -> None:
    """Join and create the namespaces; returns in the process that becomes init."""
    wanted = ctx.config.linux.namespaces
    namespaces.join_all(wanted)
    if wanted.get("user") == "":
        _new_user_namespace(ctx)
    namespaces.create([kind for kind, path in wanted.items()
                       if not path and kind not in ("user", "cgroup") and kind not in ctx.born])
    if wanted.get("network") == "":
        try:
            _linux.bring_loopback_up()
        except OSError as err:
            raise fail("bring up lo in the new network namespace", err) from None
    if ctx.config.linux.time_offsets:
        _write_time_offsets(ctx.config.linux.time_offsets)
    # A new or joined pid namespace, and a new time namespace, hold only the
    # children of who enters them: unless clone3 made us in it, fork once more.
    if "pid" not in ctx.born and ("pid" in wanted or wanted.get("time") == ""):
        fork_reported(ctx.channel, lambda: (os.fork(),))
    else:
        ctx.channel.send("pid", pid=0)  # ours: the one clone3 returned to create
    if wanted.get("cgroup") == "":  # rooted at the cgroup this process entered first thing
        namespaces.create(["cgroup"])


def _new_user_namespace(ctx: InitContext) -> None:
    namespaces.create(["user"])
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


def _join_own_keyring(container_id: str) -> None:
    """Keyrings are not namespaced: without a session keyring of its own the
    container would share its creator's (runc does the same; --no-new-keyring
    opts out). A kernel without keyrings, or one that refuses them to a user
    namespace, just leaves the container without one."""
    try:
        _linux.join_session_keyring(f"_ses.{container_id}")  # the name runc gives it
    except OSError as err:
        if err.errno not in (1, 13, 38, 122):  # EPERM, EACCES, ENOSYS, EDQUOT
            raise fail("join a session keyring of the container's own", err) from None


def _write_time_offsets(offsets: dict) -> None:
    lines = "".join(
        f"{clock} {value.get('secs', 0)} {value.get('nanosecs', 0)}\n" for clock, value in offsets.items()
    )
    write_file("/proc/self/timens_offsets", lines, step="write linux.timeOffsets")


# ---------------------------------------------------------------- the container

def _setup_container(ctx: InitContext) -> None:
    config = ctx.config
    os.setsid()
    os.umask(0)
    in_userns = in_user_namespace()
    if "mount" in config.linux.namespaces:
        rootfs.prepare(config)  # without one, create has bound the rootfs (runtime.hostmount)
    root_fd = os.open(config.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    rootfs.mount_all(config, root_fd, in_userns)
    # The device rules must be in place before mknod, which they govern; the
    # parent writes the limits while this process builds the mounts above.
    ctx.channel.receive("cgrouped", what="rootlet create")
    rootfs.populate_dev(config, root_fd, in_userns)
    process = config.process
    if process is not None and process.terminal:
        from runtime import pty  # only with a terminal

        pty.attach(ctx.console_fd, root_fd, process.console_size, bind_console=True)
        ctx.console_fd = -1
    if process is not None:
        os.close(ensure_in_root(root_fd, process.cwd))
    os.close(root_fd)
    _set_names(config)
    ctx.channel.send("prestart")
    ctx.channel.receive("go", what="rootlet create")
    # status `created`: see create._Creation._serve
    hooks.run_all("createContainer", config.hooks.get("createContainer", []), _hook_state(ctx, "created"))
    if ctx.new_keyring:
        _join_own_keyring(ctx.container_id)
    rootfs.pivot(config, ctx.no_pivot)
    _write_sysctls(config)
    rootfs.mask_paths(config.linux.masked_paths)
    rootfs.make_readonly(config.linux.readonly_paths)
    if config.root_readonly:
        rootfs.make_root_readonly()
    if process is None:
        raise RootletError("config.json has no process to run", path="process")
    program = user_process.find_program(process.args[0], process.env)
    if config.linux.personality is not None:
        try:
            _linux.personality(config.linux.personality)
        except OSError as err:
            raise fail("set linux.personality", err) from None
    filters = config.linux.seccomp
    hand_over = seccomp_loader(filters, ctx.channel) if filters is not None else None
    user_process.apply(process, hand_over)
    late = None
    if hand_over is not None and process.no_new_privileges:
        if filters.notify:
            hand_over()  # the agent must have its fd before create returns
        else:
            late = filters  # as late as possible: right before execve
    ctx.channel.send("ready")
    started = _wait_for_start(ctx)
    try:
        hooks.run_all("startContainer", config.hooks.get("startContainer", []), _hook_state(ctx, "created"))
    except RootletError as err:
        os.write(started, str(err).encode())
        os._exit(1)
    extra = {"LISTEN_FDS": str(ctx.listen_fds), "LISTEN_PID": "1"} if ctx.listen_fds else {}
    user_process.execute(process, program, extra, late, report_fd=started)


def seccomp_loader(filters, channel: Channel):
    """Compile linux.seccomp now, so that a rule libseccomp refuses fails
    create; returns what loads it and hands its notify fd to the parent.

    When it loads is runc's rule: without no_new_privs only CAP_SYS_ADMIN
    may install a filter, so it goes in before the capabilities drop
    (process.apply); with no_new_privs as late as possible, right before
    execve, except that with SCMP_ACT_NOTIFY the agent needs the fd while
    create still runs, so the filter goes in before the process reports ready."""
    from runtime import seccomp

    return seccomp.loader(filters, channel)


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


def _wait_for_start(ctx: InitContext) -> int:
    """Block until `start` opens exec.fifo for reading (runtime.md "start").

    The fifo is reached through our O_PATH fd (its path is outside the
    rootfs). The open write end is returned: `start` reads "0" now, then
    either an error (a failing startContainer hook, a failing execve) or
    end-of-file when execve closes it, and only then runs poststart hooks."""
    fd = os.open(fd_path(ctx.fifo_fd), os.O_WRONLY | os.O_CLOEXEC)
    os.write(fd, b"0")
    os.close(ctx.fifo_fd)
    return fd
