"""runc's command line: global flags, one small function per command.

Parsing is done here by hand, not with argparse (~16 ms to import): flags
are `--name value`, `--name=value` or `-name` like runc's (Go) parser, must
precede the positional arguments, and each command imports only what it
needs, so `state` does not pay for `create`.
"""

from __future__ import annotations

import os
import sys

from runtime import __version__, log
from runtime.errors import RootletError

USAGE = """usage: rootlet [global options] COMMAND [options] [arguments]

A rootless-first, runc-compatible OCI container runtime.

commands:
  spec      write a default config.json into a bundle
  create    create a container from a bundle
  start     run the user's process in a created container
  run       create and start a container (waits for it unless --detach)
  state     print the state of a container as JSON
  list      list the containers
  kill      send a signal to a container's init (or --all its processes)
  delete    delete a container and everything create made
  exec      run another process in a running container
  pause     freeze every process of a container (its cgroup)
  resume    thaw a paused container
  update    change the resource limits of a running container
  events    print a container's stats and OOM events as JSON lines
  ps        list the processes of a container
  features  print the features this runtime supports as JSON

global options:
  --root DIR               state directory (default /run/rootlet, or
                           $XDG_RUNTIME_DIR/rootlet for an unprivileged user)
  --log FILE               append log entries to FILE
  --log-format text|json   format of the log entries (default text)
  --debug                  log debug entries; show tracebacks
  --systemd-cgroup         use systemd for cgroups (not supported yet)
  --rootless auto|true|false
  --version, -v            print the version
  --help, -h               print this help
"""

MULTI = "multi"  # a flag that may be repeated, collecting its values
GLOBAL_FLAGS = {
    "root": True, "log": True, "log-format": True, "debug": False, "systemd-cgroup": False,
    "rootless": True, "criu": True, "version": False, "help": False,
}
GLOBAL_ALIASES = {"v": "version", "h": "help"}

# command -> ({flag: takes a value (True, False or MULTI)}, {alias: flag}, usage of the arguments)
COMMANDS: dict[str, tuple[dict[str, object], dict[str, str], str]] = {
    "spec": ({"bundle": True, "rootless": False}, {"b": "bundle"}, ""),
    "create": ({"bundle": True, "pid-file": True, "console-socket": True, "no-pivot": False,
                "no-new-keyring": False, "preserve-fds": True},
               {"b": "bundle"}, "ID"),
    "run": ({"bundle": True, "pid-file": True, "console-socket": True, "no-pivot": False,
             "no-new-keyring": False, "preserve-fds": True, "detach": False, "keep": False,
             "no-subreaper": False},
            {"b": "bundle", "d": "detach"}, "ID"),
    "start": ({}, {}, "ID"),
    "state": ({}, {}, "ID"),
    "list": ({"format": True, "quiet": False}, {"f": "format", "q": "quiet"}, ""),
    "kill": ({"all": False}, {"a": "all"}, "ID [SIGNAL]"),
    "delete": ({"force": False}, {"f": "force"}, "ID"),
    "exec": ({"process": True, "detach": False, "pid-file": True, "tty": False, "console-socket": True,
              "cwd": True, "env": MULTI, "user": True, "additional-gids": MULTI, "cap": MULTI,
              "no-new-privs": False, "preserve-fds": True, "process-label": True,
              "apparmor": True, "cgroup": True, "ignore-paused": False},
             {"p": "process", "d": "detach", "t": "tty", "e": "env", "u": "user", "g": "additional-gids",
              "c": "cap"}, "ID [COMMAND [ARGS...]]"),
    "features": ({}, {}, ""),
    "pause": ({}, {}, "ID"),
    "resume": ({}, {}, "ID"),
    "update": ({"resources": True, "memory": True, "memory-swap": True, "memory-reservation": True,
                "kernel-memory": True, "kernel-memory-tcp": True, "cpu-share": True, "cpu-shares": True,
                "cpu-quota": True, "cpu-period": True, "cpu-rt-period": True, "cpu-rt-runtime": True,
                "cpu-idle": True, "cpu-burst": True, "cpuset-cpus": True, "cpuset-mems": True,
                "pids-limit": True, "blkio-weight": True, "l3-cache-schema": True, "mem-bw-schema": True},
               {"r": "resources"}, "ID"),
    "events": ({"stats": False, "interval": True}, {}, "ID"),
    "ps": ({"format": True}, {"f": "format"}, "ID [PS OPTIONS...]"),
}


class Usage(RootletError):
    """A command line rootlet cannot parse."""


def parse_flags(args: list[str], known: dict[str, object], aliases: dict[str, str]) -> tuple[dict, list[str]]:
    """Split `args` into flags and the positional arguments that follow them."""
    flags: dict[str, object] = {}
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            index += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        name, has_value, value = arg.lstrip("-").partition("=")
        name = aliases.get(name, name)
        if name not in known:
            raise Usage(f"flag provided but not defined: {arg}")
        if known[name]:
            if not has_value:
                index += 1
                if index >= len(args):
                    raise Usage(f"flag needs an argument: {arg}")
                value = args[index]
            if known[name] == MULTI:
                flags.setdefault(name, []).append(value)
            else:
                flags[name] = value
        else:
            flags[name] = value.lower() not in ("false", "0") if has_value else True
        index += 1
    return flags, args[index:]


def default_root() -> str:
    """/run/rootlet for real root; an unprivileged user, or "root" inside a
    user namespace (rootless podman runs us so), gets $XDG_RUNTIME_DIR/rootlet."""
    from runtime.sys.userns import in_user_namespace

    if os.geteuid() == 0 and not in_user_namespace():
        return "/run/rootlet"
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime_dir:
        return f"{runtime_dir}/rootlet"
    return f"/tmp/rootlet-{os.geteuid()}"


def _bundle(flags: dict) -> str:
    return os.path.abspath(flags.get("bundle") or ".")


def _one_id(positional: list[str], command: str) -> str:
    if len(positional) != 1:
        raise Usage(f"{command} needs exactly one container id, got {len(positional)} arguments")
    return positional[0]


def _preserve_fds(flags: dict) -> int:
    text = flags.get("preserve-fds", "0")
    if not text.isdigit():
        raise Usage(f"--preserve-fds: {text!r} is not a number")
    return int(text)


# ---------------------------------------------------------------- commands

def cmd_spec(root: str, flags: dict, positional: list[str]) -> int:
    from runtime.spec import defaults

    defaults.write_default(_bundle(flags), rootless=bool(flags.get("rootless")))
    return 0


def _create_options(flags: dict):
    from runtime.create import CreateOptions

    return CreateOptions(_bundle(flags), pid_file=os.path.abspath(flags["pid-file"]) if flags.get("pid-file")
                         else "", console_socket=flags.get("console-socket", ""),
                         no_pivot=bool(flags.get("no-pivot")),
                         no_new_keyring=bool(flags.get("no-new-keyring")), preserve_fds=_preserve_fds(flags))


def cmd_create(root: str, flags: dict, positional: list[str]) -> int:
    from runtime import create
    from runtime.spec import load

    container_id = _one_id(positional, "create")
    options = _create_options(flags)
    create.create(root, container_id, load.load_bundle(options.bundle), options)
    return 0


def cmd_run(root: str, flags: dict, positional: list[str]) -> int:
    from runtime import run
    from runtime.spec import load

    container_id = _one_id(positional, "run")
    options = _create_options(flags)
    config = load.load_bundle(options.bundle)
    return run.run(root, container_id, config, options, detach=bool(flags.get("detach")),
                   keep=bool(flags.get("keep")))


def cmd_start(root: str, flags: dict, positional: list[str]) -> int:
    from runtime import container

    container.start(root, _one_id(positional, "start"))
    return 0


def cmd_state(root: str, flags: dict, positional: list[str]) -> int:
    from runtime import container, jsonio

    state = container.get_state(root, _one_id(positional, "state"))
    os.write(1, (jsonio.dumps(state, indent=2) + "\n").encode())
    return 0


def cmd_list(root: str, flags: dict, positional: list[str]) -> int:
    from runtime import container, listing

    output_format = flags.get("format", "table")
    if output_format not in ("table", "json"):
        raise Usage(f"--format: {output_format!r} is not one of table, json")
    os.write(1, listing.render(container.list_all(root), output_format, bool(flags.get("quiet"))).encode())
    return 0


def cmd_kill(root: str, flags: dict, positional: list[str]) -> int:
    from runtime import container, signals

    if not 1 <= len(positional) <= 2:
        raise Usage("kill needs a container id and optionally a signal")
    signal = signals.parse(positional[1] if len(positional) == 2 else "SIGTERM")
    container.kill(root, positional[0], signal, bool(flags.get("all")))
    return 0


def cmd_delete(root: str, flags: dict, positional: list[str]) -> int:
    from runtime import container

    container.delete(root, _one_id(positional, "delete"), bool(flags.get("force")))
    return 0


def cmd_exec(root: str, flags: dict, positional: list[str]) -> int:
    from runtime import exec as container_exec

    if not positional:
        raise Usage("exec needs a container id")
    for unsupported in ("process-label", "apparmor", "cgroup"):
        if flags.get(unsupported):
            raise RootletError(f"exec --{unsupported} is not supported on this host")
    options = container_exec.ExecOptions(
        args=positional[1:], process_file=flags.get("process"), detach=bool(flags.get("detach")),
        pid_file=os.path.abspath(flags["pid-file"]) if flags.get("pid-file") else "",
        tty=bool(flags.get("tty")), console_socket=flags.get("console-socket", ""), cwd=flags.get("cwd"),
        env=flags.get("env", []), user=flags.get("user"), additional_gids=flags.get("additional-gids", []),
        caps=flags.get("cap", []), no_new_privs=bool(flags.get("no-new-privs")),
        preserve_fds=_preserve_fds(flags))
    return container_exec.execute(root, positional[0], options)


def cmd_features(root: str, flags: dict, positional: list[str]) -> int:
    from runtime import features, jsonio

    os.write(1, (jsonio.dumps(features.document(), indent=4) + "\n").encode())
    return 0


def cmd_pause(root: str, flags: dict, positional: list[str]) -> int:
    from runtime.cgroups import commands

    commands.pause(root, _one_id(positional, "pause"))
    return 0


def cmd_resume(root: str, flags: dict, positional: list[str]) -> int:
    from runtime.cgroups import commands

    commands.resume(root, _one_id(positional, "resume"))
    return 0


def cmd_update(root: str, flags: dict, positional: list[str]) -> int:
    from runtime.cgroups import commands

    container_id = _one_id(positional, "update")
    for unsupported in ("l3-cache-schema", "mem-bw-schema"):
        if flags.get(unsupported):
            raise RootletError(f"update --{unsupported}: Intel RDT is not supported")
    if flags.get("resources"):
        delta = commands.resources_from_file(flags["resources"])
    else:
        delta = commands.resources_from_flags(flags)
    commands.update(root, container_id, delta)
    return 0


def cmd_events(root: str, flags: dict, positional: list[str]) -> int:
    import gc

    from runtime.cgroups import commands

    gc.enable()  # it runs until stopped (see bin/rootlet)

    interval = commands.parse_duration(flags.get("interval", "5s"))
    commands.events(root, _one_id(positional, "events"), bool(flags.get("stats")), interval)
    return 0


def cmd_ps(root: str, flags: dict, positional: list[str]) -> int:
    from runtime.cgroups import commands

    output_format = flags.get("format", "table")
    if output_format not in ("table", "json"):
        raise Usage(f"--format: {output_format!r} is not one of table, json")
    if not positional:
        raise Usage("ps needs a container id")
    commands.ps(root, positional[0], output_format, positional[1:])
    return 0


HANDLERS = {
    "spec": cmd_spec, "create": cmd_create, "run": cmd_run, "start": cmd_start, "state": cmd_state,
    "list": cmd_list, "kill": cmd_kill, "delete": cmd_delete, "features": cmd_features, "exec": cmd_exec,
    "pause": cmd_pause, "resume": cmd_resume, "update": cmd_update, "events": cmd_events, "ps": cmd_ps,
}


def _command_usage(command: str) -> str:
    known, aliases, positional = COMMANDS[command]
    names = {flag: [f"--{flag}"] for flag in known}
    for alias, flag in aliases.items():
        names[flag].append(f"-{alias}")
    lines = [f"usage: rootlet {command} [options] {positional}".rstrip(), "", "options:"]
    lines += [f"  {', '.join(names[flag])}{' VALUE' if known[flag] else ''}" for flag in known]
    return "\n".join(lines) + "\n"


def dispatch(argv: list[str]) -> int:
    flags, rest = parse_flags(argv, GLOBAL_FLAGS, GLOBAL_ALIASES)
    log.configure(flags.get("log", ""), flags.get("log-format", "text"), bool(flags.get("debug")))
    if flags.get("version"):
        os.write(1, f"rootlet version {__version__}\nspec: 1.2.0\n".encode())
        return 0
    if flags.get("help") or not rest:
        os.write(1 if flags.get("help") else 2, USAGE.encode())
        return 0 if flags.get("help") else 1
    if flags.get("log-format", "text") not in ("text", "json"):
        raise Usage(f"--log-format: {flags['log-format']!r} is not one of text, json")
    if flags.get("systemd-cgroup"):
        raise RootletError("--systemd-cgroup is not supported yet: rootlet manages cgroups through cgroupfs")
    command, arguments = rest[0], rest[1:]
    if command not in HANDLERS:
        raise Usage(f"unknown command {command!r} (see rootlet --help)")
    if arguments[:1] in (["--help"], ["-h"]):
        os.write(1, _command_usage(command).encode())
        return 0
    known, aliases, _ = COMMANDS[command]
    command_flags, positional = parse_flags(arguments, known, aliases)
    root = os.path.abspath(flags.get("root") or default_root())
    return HANDLERS[command](root, command_flags, positional)


def main() -> None:
    argv = sys.argv[1:]
    try:
        code = dispatch(argv)
    except RootletError as err:
        log.error(str(err))
        code = 1
    except KeyboardInterrupt:
        code = 130
    except Exception as err:  # noqa: BLE001 - a user sees one line, --debug shows the rest
        if log.settings.debug:
            import traceback

            traceback.print_exc()
        log.error(f"internal error: {type(err).__name__}: {err}")
        code = 1
    sys.stdout.flush()
    os._exit(code)
