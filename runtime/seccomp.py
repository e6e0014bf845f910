"""linux.seccomp (config-linux.md "Seccomp"): plan, build, load, hand over.

plan() turns the OCI section into a SeccompPlan: every value checked (each
error names its JSON path), actions and operators turned into libseccomp's
numbers, syscall names resolved. It follows runc's reading of a profile:

- an entry with several names is one rule per name; names libseccomp does
  not know are skipped (a debug log line), as a kernel that lacks them
  would never see them anyway;
- all `args` of an entry must match together (one rule, up to six
  comparisons), except when two of them compare the same argument:
  libseccomp cannot AND two comparisons of one argument, and runc then
  adds one rule per comparison, so that any of them matches; so do we;
- a rule whose action is the default action adds nothing and is dropped;
- errnoRet (and defaultErrnoRet) default to EPERM and are refused on an
  action that returns no errno (the spec's MUST);
- without `flags`, SECCOMP_FILTER_FLAG_SPEC_ALLOW is set when the kernel
  supports it (runc >= 1.2 and crun do the same);
- SCMP_ACT_NOTIFY needs a listenerPath, may not be the default action and
  may not apply to write or sendmsg: the process sends the notify fd over
  its sync socket right after loading, and must not wait on itself.

prepare() runs in `create` (and `exec`) before the fork: libseccomp builds
the filter and generates its BPF program, or the program comes from a cache
under the state root, keyed by everything that shapes it; a rule libseccomp
refuses fails there, before anything runs. load() then installs the program
with seccomp(2) in the container's process, where runtime.init and
runtime.exec decide (runc's order, see init.seccomp_loader), and
forward_to_listener() gives the notify fd to the agent.
This module imports only the extension, os, sys and rootlet's own small modules.
"""

from __future__ import annotations

import os

from runtime import _seccomp, log
from runtime.errors import ConfigError, RootletError

SPEC_VERSION = "1.2.0"  # the runtime-spec version of the containerProcessState we send
EPERM = 1

_ACTIONS = {
    "SCMP_ACT_KILL": _seccomp.ACT_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": _seccomp.ACT_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": _seccomp.ACT_KILL_PROCESS,
    "SCMP_ACT_TRAP": _seccomp.ACT_TRAP,
    "SCMP_ACT_ERRNO": _seccomp.ACT_ERRNO,
    "SCMP_ACT_TRACE": _seccomp.ACT_TRACE,
    "SCMP_ACT_ALLOW": _seccomp.ACT_ALLOW,
    "SCMP_ACT_LOG": _seccomp.ACT_LOG,
    "SCMP_ACT_NOTIFY": _seccomp.ACT_NOTIFY,
}
_WITH_ERRNO = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
# Actions that let a syscall reach the kernel (or an agent/tracer that may).
_PASSING = frozenset((_seccomp.ACT_ALLOW, _seccomp.ACT_LOG, _seccomp.ACT_NOTIFY))
# API level (seccomp_api_get) each action needs.
_ACTION_LEVEL = {"SCMP_ACT_LOG": 3, "SCMP_ACT_KILL_PROCESS": 3, "SCMP_ACT_NOTIFY": 5}
# The filter flags, as seccomp(2) takes them: rootlet loads the program itself
# (see load()), so what counts is what the kernel accepts, probed once.
_FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": _seccomp.FLAG_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": _seccomp.FLAG_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": _seccomp.FLAG_SPEC_ALLOW,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": _seccomp.FLAG_WAIT_KILLABLE_RECV,
}
# Syscalls the process makes between loading a filter and handing its notify
# fd to the parent; notifying them would wait for an agent that has no fd yet.
_NOT_NOTIFIABLE = ("write", "sendmsg")
# libseccomp builds a binary tree of syscalls past this many rules (runc's threshold).
_TREE_THRESHOLD = 32


class SeccompPlan:
    """A checked, resolved linux.seccomp, ready to compile."""

    __slots__ = ("raw", "default_action", "arches", "flags", "attrs", "rules", "origins", "notify",
                 "listener_path", "listener_metadata", "skipped", "filter", "program")

    def __init__(self, raw: dict):
        self.raw = raw
        self.default_action = 0
        self.arches: list[int] = []
        self.flags: list[str] = []
        self.attrs: list[tuple[int, int]] = []
        # (syscall number, action, ((arg, op, datum_a, datum_b), ...)) as _seccomp.Filter takes them
        self.rules: list[tuple] = []
        self.origins: list[tuple[str, str]] = []  # (JSON path, name) of each rule, for errors
        self.notify = False
        self.listener_path: str = raw.get("listenerPath", "")
        self.listener_metadata: str = raw.get("listenerMetadata", "")
        self.skipped: list[str] = []
        self.filter = None  # the libseccomp filter (_seccomp.Filter), while it is needed
        self.program: bytes | None = None  # the BPF program, from prepare()


def flag_supported(name: str) -> bool:
    flag = _FLAGS[name]
    if flag == _seccomp.FLAG_WAIT_KILLABLE_RECV:  # only ever set with a listener
        flag |= _seccomp.FLAG_NEW_LISTENER
    return _seccomp.flag_supported(flag)


def supported_flags() -> list[str]:
    return [name for name in _FLAGS if flag_supported(name)]


def plan(raw: dict, where: str = "linux.seccomp") -> SeccompPlan:
    if not isinstance(raw, dict):
        raise ConfigError(where, "must be an object")
    result = SeccompPlan(raw)
    level = _seccomp.api_level()
    result.default_action = _action(raw.get("defaultAction"), raw, "defaultErrnoRet",
                                    f"{where}.defaultAction", f"{where}.defaultErrnoRet", level)
    if raw["defaultAction"] == "SCMP_ACT_NOTIFY":
        raise ConfigError(f"{where}.defaultAction", "SCMP_ACT_NOTIFY cannot be the default action: the "
                          "runtime's own calls after loading the filter would wait for the agent")
    for index, name in enumerate(_list(raw, "architectures", where)):
        token = _seccomp.ARCHES.get(name) if isinstance(name, str) else None
        if token is None:
            raise ConfigError(f"{where}.architectures[{index}]", f"{name!r} is not an architecture "
                              f"libseccomp {_version()} knows")
        result.arches.append(token)
    flags = raw.get("flags")
    if flags is None:
        if flag_supported("SECCOMP_FILTER_FLAG_SPEC_ALLOW"):
            result.flags = ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
    else:
        for index, flag in enumerate(_list(raw, "flags", where)):
            if not isinstance(flag, str) or flag not in _FLAGS:
                raise ConfigError(f"{where}.flags[{index}]", f"{flag!r} is not a seccomp filter flag")
            if not flag_supported(flag):
                raise ConfigError(f"{where}.flags[{index}]", f"{flag} is not supported by this kernel")
            if flag not in result.flags:
                result.flags.append(flag)
    for path, value in (("listenerPath", result.listener_path),
                        ("listenerMetadata", result.listener_metadata)):
        if not isinstance(value, str):
            raise ConfigError(f"{where}.{path}", "must be a string")
    if result.listener_metadata and not result.listener_path:
        raise ConfigError(f"{where}.listenerMetadata", "is set without listenerPath")
    for index, entry in enumerate(_list(raw, "syscalls", where)):
        _add_entry(result, entry, f"{where}.syscalls[{index}]", level)
    if len(result.rules) > _TREE_THRESHOLD:
        result.attrs.append((_seccomp.ATTR_OPTIMIZE, 2))
    _check_execve(result, where)
    return result


def _version() -> str:
    return ".".join(map(str, _seccomp.version()))


def _list(raw: dict, key: str, where: str) -> list:
    value = raw.get(key) or []
    if not isinstance(value, list):
        raise ConfigError(f"{where}.{key}", "must be an array")
    return value


def _action(name, raw: dict, errno_key: str, path: str, errno_path: str, level: int) -> int:
    code = _ACTIONS.get(name) if isinstance(name, str) else None
    if code is None:
        raise ConfigError(path, f"{name!r} is not a seccomp action")
    if level < _ACTION_LEVEL.get(name, 0):
        raise ConfigError(path, f"{name} is not supported by libseccomp {_version()} with this kernel "
                          f"(API level {level})")
    errno = raw.get(errno_key)
    if name not in _WITH_ERRNO:
        if errno is not None:
            raise ConfigError(errno_path, f"{name} returns no errno")
        return code
    if errno is None:
        errno = EPERM
    if isinstance(errno, bool) or not isinstance(errno, int) or not 0 <= errno <= 0xFFFF:
        raise ConfigError(errno_path, f"{errno!r} is not an errno number (0 to 65535)")
    return code | errno


def _add_entry(result: SeccompPlan, entry, where: str, level: int) -> None:
    if not isinstance(entry, dict):
        raise ConfigError(where, "must be an object")
    names = entry.get("names")
    if not isinstance(names, list) or not names:
        raise ConfigError(f"{where}.names", "must list at least one syscall")
    action = _action(entry.get("action"), entry, "errnoRet", f"{where}.action", f"{where}.errnoRet", level)
    conditions = [_condition(arg, f"{where}.args[{index}]")
                  for index, arg in enumerate(_list(entry, "args", where))]
    if len(conditions) > 6:
        raise ConfigError(f"{where}.args", "a syscall has at most 6 arguments")
    if action == _seccomp.ACT_NOTIFY:
        if not result.listener_path:
            raise ConfigError(f"{where}.action", "SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath")
        for name in _NOT_NOTIFIABLE:
            if name in names:
                raise ConfigError(f"{where}.names", f"SCMP_ACT_NOTIFY cannot apply to {name}: the runtime "
                                  "needs it to hand the notify fd over")
    indexes = [cond[0] for cond in conditions]
    if len(set(indexes)) == len(indexes):
        groups = [tuple(conditions)]
    else:  # two comparisons of one argument: one rule each (runc)
        groups = [(cond,) for cond in conditions]
    for position, name in enumerate(names):
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}.names[{position}]", "must be a syscall name")
        if action == result.default_action:
            continue  # adds nothing, and libseccomp refuses it
        number = _seccomp.resolve(name)
        if number == _seccomp.NR_ERROR:
            result.skipped.append(name)
            log.debug(f"seccomp: syscall {name!r} ({where}) is unknown to libseccomp {_version()}; skipped")
            continue
        for group in groups:
            result.rules.append((number, action, group))
            result.origins.append((where, name))
        if action == _seccomp.ACT_NOTIFY:
            result.notify = True


def _condition(arg, where: str) -> tuple:
    if not isinstance(arg, dict):
        raise ConfigError(where, "must be an object")
    index = arg.get("index")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= 5:
        raise ConfigError(f"{where}.index", f"{index!r} is not an argument index (0 to 5)")
    values = []
    for key in ("value", "valueTwo"):
        value = arg.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFFFFFFFFFF:
            raise ConfigError(f"{where}.{key}", f"{value!r} is not an unsigned 64-bit number")
        values.append(value)
    if "value" not in arg:
        raise ConfigError(f"{where}.value", "is required")
    op = _seccomp.OPERATORS.get(arg.get("op")) if isinstance(arg.get("op"), str) else None
    if op is None:
        raise ConfigError(f"{where}.op", f"{arg.get('op')!r} is not a seccomp operator")
    return (index, op, values[0], values[1])


def _check_execve(result: SeccompPlan, where: str) -> None:
    """The runtime's last call is execve(2) of the user's program: a filter
    that surely refuses it could never start anything, so say so now."""
    number = _seccomp.resolve("execve")
    verdict, path = result.default_action, f"{where}.defaultAction"
    for (nr, action, conds), (origin, _name) in zip(result.rules, result.origins, strict=True):
        if nr != number:
            continue
        if conds:
            return  # depends on the arguments: cannot tell
        verdict, path = action, origin
    blocking = verdict not in _PASSING and verdict & 0xFFFF0000 != _seccomp.ACT_TRACE
    if blocking:
        raise ConfigError(path, "this filter refuses execve, which starts the container's process; "
                          "allow execve in linux.seccomp.syscalls")


# ---------------------------------------------------------------- build and load

def compile(plan: SeccompPlan):
    """The libseccomp filter of `plan` (rules in memory; no kernel call)."""
    if plan.filter is not None:
        return plan.filter
    try:
        candidate = _seccomp.Filter(plan.default_action)
        for token in plan.arches:
            candidate.add_arch(token)
        for attr, value in plan.attrs:
            candidate.set_attr(attr, value)
    except OSError as err:
        raise RootletError(err.strerror, step="prepare the seccomp filter", path="linux.seccomp",
                           errno=err.errno) from None
    try:
        candidate.add_rules(plan.rules)
    except OSError as err:
        where, name = plan.origins[err.filename]
        raise ConfigError(where, f"libseccomp refuses the rule for {name}: {err.strerror}") from None
    plan.filter = candidate
    return candidate


def prepare(plan: SeccompPlan, root: str = "") -> None:
    """Give `plan` its BPF program: from the cache under the state root
    `root` when this profile was built before, else built by libseccomp
    (and then cached). Generating the program is what costs: ~10 ms for a
    300-rule profile on three x86 arches, against ~0.1 ms to read it."""
    if plan.program is not None:
        return
    key = _cache_key(plan)
    cache = f"{root}/{CACHE_DIR}" if root else ""
    if cache:
        plan.program = _cache_read(cache, key)
        if plan.program is not None:
            return
    try:
        plan.program = compile(plan).export_bpf()
    except OSError as err:
        raise RootletError(err.strerror, step="generate the seccomp filter", path="linux.seccomp",
                           errno=err.errno) from None
    plan.filter = None  # the program is all that is needed from here on
    if cache:
        _cache_write(cache, key, plan.program)


def load(plan: SeccompPlan) -> int:
    """Install the filter in this process; returns its notify fd, or -1."""
    prepare(plan)
    try:
        fd = _seccomp.load_program(plan.program, _load_flags(plan))
    except OSError as err:
        raise RootletError(err.strerror, step="load the seccomp filter", path="linux.seccomp",
                           errno=err.errno) from None
    return fd if plan.notify else -1


def _load_flags(plan: SeccompPlan) -> int:
    """seccomp(2) flags as seccomp_load() would pass them for these attributes."""
    flags = 0
    for name in plan.flags:
        if name != "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" or plan.notify:  # the kernel wants a listener
            flags |= _FLAGS[name]
    if plan.notify:
        flags |= _seccomp.FLAG_NEW_LISTENER
        if flags & _seccomp.FLAG_TSYNC:
            flags |= _seccomp.FLAG_TSYNC_ESRCH
    return flags


# The program cache: <root>/@seccomp/<sha256 of the key>, holding the key, a
# newline and the program. '@' keeps it apart from container ids; it lives and
# dies with the state root and belongs to whoever owns that (root, or the user).
CACHE_DIR = "@seccomp"
_CACHE_FORMAT = b"rootlet-seccomp-bpf 1"
_CACHE_ENTRIES = 64


def _cache_key(plan: SeccompPlan) -> bytes:
    tree = [value for attr, value in plan.attrs if attr == _seccomp.ATTR_OPTIMIZE]
    return repr((_seccomp.version(), _seccomp.api_level(), _seccomp.native_arch(), plan.default_action,
                 plan.arches, tree, plan.rules)).encode()


def _cache_name(key: bytes) -> str:
    try:
        from _sha256 import sha256
    except ImportError:  # Python >= 3.12
        from _sha2 import sha256
    return sha256(key).hexdigest()


def _trusted(info) -> bool:
    return info.st_uid == os.geteuid() and not info.st_mode & 0o022


def _cache_read(cache: str, key: bytes):
    try:
        fd = os.open(f"{cache}/{_cache_name(key)}", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not _trusted(info) or not _trusted(os.stat(cache)):
            return None
        data = os.read(fd, info.st_size + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    header = _CACHE_FORMAT + b"\n" + key + b"\n"
    program = data[len(header):]
    if not data.startswith(header) or not program or len(program) % 8:
        return None
    return program


def _cache_write(cache: str, key: bytes, program: bytes) -> None:
    """Best effort: a state root we cannot write to only means no cache."""
    name = _cache_name(key)
    temporary = f"{cache}/.{name}.{os.getpid()}"
    try:
        try:
            os.mkdir(cache, 0o700)
        except FileExistsError:
            pass
        if not _trusted(os.lstat(cache)):
            return
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, _CACHE_FORMAT + b"\n" + key + b"\n" + program)
        finally:
            os.close(fd)
        os.rename(temporary, f"{cache}/{name}")
        entries = os.listdir(cache)
        if len(entries) > _CACHE_ENTRIES:  # keep the newest
            entries.sort(key=lambda entry: os.stat(f"{cache}/{entry}").st_mtime_ns)
            for entry in entries[:len(entries) - _CACHE_ENTRIES]:
                os.unlink(f"{cache}/{entry}")
    except OSError:
        try:
            os.unlink(temporary)
        except OSError:
            pass


def loader(plan: SeccompPlan, channel):
    """prepare() now (a no-op when the parent did it); returns a function
    that does load_and_hand_over()."""
    prepare(plan)
    return lambda: load_and_hand_over(plan, channel)


def load_and_hand_over(plan: SeccompPlan, channel) -> None:
    """load(), then send the notify fd (if any) to the parent over `channel`
    (a runtime.sync.Channel) and close our copy: the container keeps none."""
    fd = load(plan)
    if fd >= 0:
        try:
            channel.send_fd("seccomp", fd)
        finally:
            os.close(fd)


# ---------------------------------------------------------------- the agent

def forward_to_listener(plan: SeccompPlan, channel, pid: int, state: dict, *, what: str) -> None:
    """Receive the notify fd from `channel` and send it with the container
    process state to plan.listener_path (config-linux.md "The Container
    Process State"): one connection, one message, fd by SCM_RIGHTS."""
    from runtime import _linux, jsonio

    message, fd = channel.receive_fd("seccomp", what=what)
    try:
        if fd < 0:
            raise RootletError("no seccomp notify fd came with the message", step="seccomp listener")
        document = {"ociVersion": SPEC_VERSION, "fds": ["seccompFd"], "pid": pid, "state": state}
        if plan.listener_metadata:
            document["metadata"] = plan.listener_metadata
        sock = -1
        try:
            sock = _linux.unix_connect(plan.listener_path)
            _linux.send_message(sock, jsonio.dumps(document).encode(), fd)
        except OSError as err:
            raise RootletError(f"send the seccomp notify fd to {plan.listener_path}: {err.strerror}",
                               path="linux.seccomp.listenerPath", errno=err.errno or 0) from None
        finally:
            if sock >= 0:
                os.close(sock)
    finally:
        if fd >= 0:
            os.close(fd)


def features() -> dict:
    """The `seccomp` part of `rootlet features`: what this build, libseccomp
    and the running kernel support together."""
    level = _seccomp.api_level()
    return {
        "enabled": True,
        "actions": sorted(name for name in _ACTIONS if level >= _ACTION_LEVEL.get(name, 0)),
        "operators": sorted(_seccomp.OPERATORS),
        "archs": sorted(_seccomp.ARCHES),
        "knownFlags": list(_FLAGS),
        "supportedFlags": supported_flags(),
    }
