"""config.md#process and its POSIX/Linux parts, checked from inside the container.

runtime.md#start requires the program to run "as specified by process", so
each property below is a MUST unless the spec says otherwise.
"""

from __future__ import annotations

import array
import os
import socket
import threading
from pathlib import Path

from ..context import Context, parse_lines
from ..inspect import capability_mask, capability_names, status_fields
from ..registry import Skip, check, expect


@check("config.md#process", "MUST",
       "args[0] is looked up like execvp's file (via PATH) and gets the other args")
def check_process_args(ctx: Context) -> None:
    output = ctx.run(ctx.bundle("echo", "one", "two words", "*"))
    expect(output == "one two words *\n", f"echo printed {output!r}")


@check("config.md#process", "MUST", "env is the process's environment, values kept verbatim")
def check_process_env(ctx: Context) -> None:
    bundle = ctx.bundle("env")
    wanted = {"PATH": "/bin:/usr/bin", "ONE": "1", "SPACED": "a b  c", "EQUALS": "x=y=z", "EMPTY": ""}
    bundle.process["env"] = [f"{k}={v}" for k, v in wanted.items()]
    seen = parse_lines(ctx.run(bundle))
    wrong = {k: seen.get(k) for k, v in wanted.items() if seen.get(k) != v.strip()}
    expect(not wrong, f"variables differ from the config: {wrong}")


@check("config.md#process", "MUST", "cwd is the working directory of the process")
def check_process_cwd(ctx: Context) -> None:
    bundle = ctx.bundle("pwd")
    bundle.process["cwd"] = "/var/tmp"
    output = ctx.run(bundle).strip()
    expect(output == "/var/tmp", f"pwd printed {output!r}")


@check("config.md#process", "MUST", "consoleSize is ignored when terminal is false")
def check_console_size_ignored(ctx: Context) -> None:
    bundle = ctx.bundle("echo", "fine")
    bundle.process["consoleSize"] = {"height": 10, "width": 20}
    expect(ctx.run(bundle).strip() == "fine", "the container did not run")


@check("config.md#posix-platform-user", "MUST", "user.uid and user.gid are the process's ids")
def check_user_ids(ctx: Context) -> None:
    bundle = ctx.bundle("sh", "-c", "echo uid=$(id -u); echo gid=$(id -g)")
    bundle.process["user"] = {"uid": 1234, "gid": 4321}
    seen = parse_lines(ctx.run(bundle))
    expect(seen.get("uid") == "1234" and seen.get("gid") == "4321", f"id reports {seen}")


@check("config.md#posix-platform-user", "MUST", "additionalGids are the process's supplementary groups")
def check_additional_gids(ctx: Context) -> None:
    bundle = ctx.bundle("sh", "-c", "grep ^Groups: /proc/self/status")
    bundle.process["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5, 1001, 4000]}
    groups = set(ctx.run(bundle).split(":", 1)[-1].split())
    expect({"5", "1001", "4000"} <= groups, f"supplementary groups are {sorted(groups)}")


@check("config.md#posix-platform-user", "MUST", "umask is the process's umask", since="1.0.2")
def check_umask(ctx: Context) -> None:
    bundle = ctx.bundle("sh", "-c", "umask")
    bundle.process["user"]["umask"] = 0o027
    output = ctx.run(bundle).strip()
    expect(output.lstrip("0") == "27", f"umask printed {output!r}, wanted 0027")


@check("config.md#posix-process", "MUST",
       "each rlimit's soft and hard values are the process's (lowered limits)")
def check_rlimits(ctx: Context) -> None:
    bundle = ctx.bundle("cat", "/proc/self/limits")
    bundle.process["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 768},
        {"type": "RLIMIT_CORE", "soft": 4096, "hard": 8192},
        {"type": "RLIMIT_MSGQUEUE", "soft": 4096, "hard": 8192},
    ]
    limits = {" ".join(line.split()[:-3]): line.split()[-3:-1]
              for line in ctx.run(bundle).splitlines()[1:] if line.strip()}
    wanted = {"Max open files": ["512", "768"], "Max core file size": ["4096", "8192"],
              "Max msgqueue size": ["4096", "8192"]}
    wrong = {name: limits.get(name) for name, value in wanted.items() if limits.get(name) != value}
    expect(not wrong, f"limits differ (soft, hard): {wrong}")


@check("config.md#posix-process", "MUST", "an rlimit type with no kernel counterpart is an error")
def check_rlimit_unknown_type(ctx: Context) -> None:
    bundle = ctx.bundle("true")
    bundle.process["rlimits"] = [{"type": "RLIMIT_CONFORMANCE_BOGUS", "soft": 1, "hard": 1}]
    container, _ = ctx.create(bundle)
    expect(container is None, "create accepted an unknown rlimit type")


@check("config.md#posix-process", "MUST", "duplicated rlimit types are an error")
def check_rlimit_duplicate(ctx: Context) -> None:
    bundle = ctx.bundle("true")
    bundle.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 100},
                                 {"type": "RLIMIT_NOFILE", "soft": 200, "hard": 200}]
    container, _ = ctx.create(bundle)
    expect(container is None, "create accepted two RLIMIT_NOFILE entries")


@check("config.md#linux-process", "MUST",
       "each capability set (bounding/effective/permitted/inheritable/ambient) is as configured")
def check_capability_sets(ctx: Context) -> None:
    bundle = ctx.bundle("cat", "/proc/self/status")
    kept = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"]
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    bundle.process["capabilities"] = {"bounding": kept + ["CAP_SYS_ADMIN"], "effective": kept,
                                      "permitted": kept, "inheritable": kept, "ambient": kept}
    bundle.process["noNewPrivileges"] = False
    status = status_fields(ctx.run(bundle))
    wanted = {"CapBnd": kept + ["CAP_SYS_ADMIN"],
              "CapEff": kept, "CapPrm": kept, "CapInh": kept, "CapAmb": kept}
    wrong = {}
    for field, names in wanted.items():
        seen = int(status.get(field, "0"), 16)
        if seen != capability_mask(names):
            wrong[field] = capability_names(seen)
    expect(not wrong, f"sets differ from the config (uid 1000): {wrong}")


@check("config.md#linux-process", "SHOULD",
       "an unknown capability is logged as a warning, not a failure", since="1.1.0")
def check_unknown_capability(ctx: Context) -> None:
    bundle = ctx.bundle("echo", "ran")
    bundle.process["capabilities"]["bounding"].append("CAP_CONFORMANCE_BOGUS")
    container, outcome = ctx.create(bundle)
    expect(container is not None, f"create failed: {outcome.first_error_line()}")
    container.must_start()
    container.must_stop()
    expect("ran" in container.output(), "the process did not run")


@check("config.md#linux-process", "MUST",
       "noNewPrivileges true sets the no_new_privs bit; false leaves it clear")
def check_no_new_privileges(ctx: Context) -> None:
    seen = {}
    for setting in (True, False):
        bundle = ctx.bundle("grep", "^NoNewPrivs:", "/proc/self/status")
        bundle.process["noNewPrivileges"] = setting
        seen[setting] = ctx.run(bundle).split()[-1:] or ["?"]
    expect(seen == {True: ["1"], False: ["0"]}, f"NoNewPrivs for true/false: {seen}")


@check("config.md#linux-process", "MUST", "oomScoreAdj sets the process's oom_score_adj")
def check_oom_score_adj(ctx: Context) -> None:
    bundle = ctx.bundle("cat", "/proc/self/oom_score_adj")
    bundle.process["oomScoreAdj"] = 423
    output = ctx.run(bundle).strip()
    expect(output == "423", f"oom_score_adj is {output!r}")


@check("config.md#linux-process", "MUST",
       "without oomScoreAdj the runtime leaves oom_score_adj as it was (inherited)")
def check_oom_score_adj_unset(ctx: Context) -> None:
    bundle = ctx.bundle("cat", "/proc/self/oom_score_adj")
    bundle.write()
    set_own_score = ("sh", "-c", 'echo 237 > /proc/self/oom_score_adj && exec "$@"', "sh")
    container, outcome = ctx.create(bundle, write=False, prefix=set_own_score)
    expect(container is not None, f"create failed: {outcome.describe()}")
    container.must_start()
    container.must_stop()
    expect(container.output().strip() == "237",
           f"the runtime ran with oom_score_adj 237, the process has {container.output().strip()!r}")


@check("config.md#process", "MUST",
       "terminal true gives the process a pty on stdio and /dev/console (via --console-socket)")
def check_terminal(ctx: Context) -> None:
    bundle = ctx.bundle("sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo stdio-is-tty; "
                        "[ -c /dev/console ] && echo console-exists; tty")
    bundle.process["terminal"] = True
    receiver = ConsoleReceiver(ctx.workdir / "console.sock")
    container, outcome = ctx.create(bundle, extra_args=("--console-socket", str(receiver.path)))
    if container is None and "console" in outcome.first_error_line().lower() and receiver.master is None:
        raise Skip(f"runtime refused --console-socket: {outcome.first_error_line()}")
    expect(container is not None, f"create failed: {outcome.describe()}")
    receiver.wait_for_master()
    container.must_start()
    container.must_stop()
    text = receiver.read_all()
    expect("stdio-is-tty" in text and "console-exists" in text and "/dev/pts/" in text,
           f"through the pty the process printed {text!r}")


class ConsoleReceiver:
    """The --console-socket listener: receives the pty master, then reads it."""

    def __init__(self, path: Path):
        self.path = path
        self.master: int | None = None
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(1)
        self.listener.settimeout(10)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        try:
            connection, _ = self.listener.accept()
        except OSError:
            return
        with connection:
            fds = array.array("i")
            _, ancillary, _, _ = connection.recvmsg(1024, socket.CMSG_SPACE(fds.itemsize))
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[: fds.itemsize])
            if fds:
                self.master = fds[0]

    def wait_for_master(self) -> None:
        self.thread.join(10)
        self.listener.close()
        expect(self.master is not None, "no pty master arrived on the console socket")

    def read_all(self) -> str:
        """Everything the process wrote (EIO ends it once the slave side is closed)."""
        os.set_blocking(self.master, False)
        chunks = []
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(self.master)
        return b"".join(chunks).decode(errors="replace")


LSM_MARKERS = {"apparmor": Path("/sys/module/apparmor/parameters/enabled"),
               "selinux": Path("/sys/fs/selinux/enforce")}


def _lsm_enabled(name: str) -> bool:
    """securityfs's lsm list when mounted, else the LSM's own marker file."""
    lsm_list = Path("/sys/kernel/security/lsm")
    if lsm_list.exists():
        return name in lsm_list.read_text().strip().split(",")
    marker = LSM_MARKERS[name]
    return marker.exists() and (name != "apparmor" or marker.read_text().strip() == "Y")


def _label_must_fail(ctx: Context, field: str, value: str, lsm: str) -> None:
    """Without the LSM the label cannot be applied: create or start must fail
    (runtime.md#create), and the process must not run unconfined."""
    if _lsm_enabled(lsm):
        raise Skip(f"host has {lsm}: checking a loaded label is not covered, only its absence")
    bundle = ctx.bundle("echo", "ran-unlabelled")
    bundle.process[field] = value
    container, _ = ctx.create(bundle)
    if container is None:
        return
    started = container.start()
    container.wait_status("stopped", 2)
    expect(not started.ok and "ran-unlabelled" not in container.output(),
           f"{field} {value!r} was ignored on a host without {lsm}: the process ran")


@check("config.md#linux-process", "MUST",
       "an apparmorProfile the host cannot apply (no AppArmor) is an error")
def check_apparmor_profile_unappliable(ctx: Context) -> None:
    _label_must_fail(ctx, "apparmorProfile", "conformance_profile", "apparmor")


@check("config.md#linux-process", "MUST",
       "a selinuxLabel the host cannot apply (no SELinux) is an error")
def check_selinux_label_unappliable(ctx: Context) -> None:
    _label_must_fail(ctx, "selinuxLabel", "system_u:system_r:container_t:s0", "selinux")
