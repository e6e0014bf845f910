"""config.md#posix-platform-hooks and runtime.md#lifecycle steps 3-13: when
each hook kind runs, in which namespace, what it gets on stdin, and what a
failing hook does to the operation."""

from __future__ import annotations

import json
import os
import time

from ..bundle import Bundle
from ..context import Container, Context
from ..registry import check, expect

CREATE_PHASE = ["prestart", "createRuntime", "createContainer"]
IN_CONTAINER = {"createContainer", "startContainer"}
CONTAINER_HOOK_DIR = "/hooklog"


class HookRecorder:
    """Hooks that log their name, stdin and mount namespace into a shared directory.

    Runtime-namespace hooks write to the host directory. startContainer's path
    resolves inside the container, so it writes to the same directory
    bind-mounted at /hooklog; createContainer runs before pivot_root, where the
    host path is still visible.
    """

    def __init__(self, ctx: Context, bundle: Bundle):
        self.dir = ctx.tempdir("hooklog", 0o777)
        self.bundle = bundle
        bundle.mkdir_in_rootfs(CONTAINER_HOOK_DIR)
        bundle.bind(self.dir, CONTAINER_HOOK_DIR, "rw")
        bundle.config.setdefault("hooks", {})

    def add(self, kind: str, label: str | None = None, exit_code: int = 0, extra: str = "") -> None:
        """Append a hook of *kind* that records itself as *label* and exits *exit_code*."""
        label = label or kind
        where = CONTAINER_HOOK_DIR if kind == "startContainer" else str(self.dir)
        script = (f"d={where}; cat > $d/{label}.json; readlink /proc/self/ns/mnt > $d/{label}.mnt; "
                  f"{extra} echo {label} >> $d/order; exit {exit_code}")
        hook = {"path": "/bin/sh", "args": ["sh", "-c", script]}
        self.bundle.config["hooks"].setdefault(kind, []).append(hook)

    def add_all(self) -> None:
        for kind in (*CREATE_PHASE, "startContainer", "poststart", "poststop"):
            self.add(kind)

    def wait_for(self, label: str, timeout: float = 3.0) -> None:
        deadline = time.monotonic() + timeout
        while label not in self.order() and time.monotonic() < deadline:
            time.sleep(0.02)

    def order(self) -> list[str]:
        path = self.dir / "order"
        return path.read_text().split() if path.exists() else []

    def stdin_state(self, label: str) -> dict | None:
        try:
            return json.loads((self.dir / f"{label}.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def mount_ns(self, label: str) -> str:
        path = self.dir / f"{label}.mnt"
        return path.read_text().strip() if path.exists() else ""


def _container_mount_ns(container: Container) -> str:
    return os.readlink(f"/proc/{container.pid()}/ns/mnt")


@check("config.md#createruntime-hooks", "MUST",
       "prestart, createRuntime, createContainer run during create, in that order", since="1.0.2")
def check_hooks_create_phase(ctx: Context) -> None:
    bundle = ctx.bundle("true")
    hooks = HookRecorder(ctx, bundle)
    hooks.add_all()
    ctx.must_create(bundle)
    expect(hooks.order() == CREATE_PHASE, f"hooks run by create: {hooks.order()}")


@check("config.md#startcontainer-hooks", "MUST",
       "startContainer runs during start before the user's program; poststart after it, before start returns",
       since="1.0.2")
def check_hooks_start_phase(ctx: Context) -> None:
    bundle = ctx.bundle("sh", "-c", f"echo process >> {CONTAINER_HOOK_DIR}/order; sleep 600")
    hooks = HookRecorder(ctx, bundle)
    for kind in (*CREATE_PHASE, "startContainer", "poststart"):
        # a slow startContainer exposes a poststart that does not wait for the exec
        hooks.add(kind, extra="sleep 0.3;" if kind == "startContainer" else "")
    container = ctx.must_create(bundle)
    container.must_start()
    after_start = hooks.order()[len(CREATE_PHASE):]
    expect(after_start[:1] == ["startContainer"],
           f"after start returned, hooks/process ran as {hooks.order()}")
    expect("poststart" in after_start, f"poststart had not run when start returned: {after_start}")


@check("config.md#poststart", "MUST",
       "poststart runs after the user's program was executed (its pid runs that program)")
def check_poststart_after_exec(ctx: Context) -> None:
    bundle = ctx.bundle("sleep", "600")
    hooks = HookRecorder(ctx, bundle)
    hooks.add("startContainer", extra="sleep 0.3;")  # the exec comes late
    probe = ("pid=$(sed -n 's/.*\"pid\": *\\([0-9]*\\).*/\\1/p' $d/poststart.json); "
             "tr '\\0' ' ' < /proc/$pid/cmdline > $d/poststart.cmdline;")
    hooks.add("poststart", extra=probe)
    container = ctx.must_create(bundle)
    container.must_start()
    cmdline_file = hooks.dir / "poststart.cmdline"
    seen = cmdline_file.read_text().strip() if cmdline_file.exists() else "(hook did not run)"
    expect(seen == "sleep 600", f"the process poststart saw ran {seen!r}, not the user's program")


@check("config.md#poststop", "MUST", "poststop runs during delete, before delete returns, not earlier")
def check_hooks_poststop(ctx: Context) -> None:
    bundle = ctx.bundle("true")
    hooks = HookRecorder(ctx, bundle)
    hooks.add("poststop")
    container = ctx.must_create(bundle)
    container.must_start()
    container.must_stop()
    expect("poststop" not in hooks.order(), "poststop ran before delete")
    expect(container.delete().ok, "delete failed")
    expect(hooks.order() == ["poststop"], f"hooks run by delete: {hooks.order()}")


@check("config.md#posix-platform-hooks", "MUST", "hooks of one kind run in the order they are listed")
def check_hooks_listed_order(ctx: Context) -> None:
    bundle = ctx.bundle("true")
    hooks = HookRecorder(ctx, bundle)
    labels = ["first", "second", "third"]
    for label in labels:
        hooks.add("prestart", label)
    ctx.must_create(bundle)
    expect(hooks.order() == labels, f"prestart hooks ran as {hooks.order()}")


@check("config.md#posix-platform-hooks", "MUST",
       "every hook gets the container's state (id, bundle, status) on stdin", since="1.0.2")
def check_hooks_state_on_stdin(ctx: Context) -> None:
    bundle = ctx.bundle("true")
    hooks = HookRecorder(ctx, bundle)
    hooks.add_all()
    container = ctx.must_create(bundle)
    container.must_start()
    container.must_stop()
    container.delete()
    problems = []
    for label in (*CREATE_PHASE, "startContainer", "poststart", "poststop"):
        state = hooks.stdin_state(label)
        if state is None:
            problems.append(f"{label}: no JSON on stdin")
        elif state.get("id") != container.id or not state.get("bundle") or "status" not in state:
            problems.append(f"{label}: {state}")
    expect(not problems, "; ".join(problems))


@check("runtime.md#state", "MUST",
       "the state given to runtime-namespace hooks carries the pid as the runtime sees it", since="1.1.0")
def check_hooks_runtime_pid(ctx: Context) -> None:
    bundle = ctx.bundle("sleep", "600")
    hooks = HookRecorder(ctx, bundle)
    for kind in ("createRuntime", "poststart"):
        hooks.add(kind)
    container = ctx.must_create(bundle)
    container.must_start()
    pid = container.pid()
    seen = {kind: (hooks.stdin_state(kind) or {}).get("pid") for kind in ("createRuntime", "poststart")}
    expect(all(value == pid for value in seen.values()), f"host pid is {pid}; hooks saw {seen}")


@check("config.md#posix-platform-hooks", "MUST",
       "createContainer/startContainer run in the container's mount namespace, the other hooks outside it",
       since="1.0.2")
def check_hooks_namespaces(ctx: Context) -> None:
    """Runtime-namespace hooks are compared with the container, not with this
    suite: a wrapped runtime (crun-wrapper) has a mount namespace of its own."""
    bundle = ctx.bundle("sleep", "600")
    hooks = HookRecorder(ctx, bundle)
    hooks.add_all()
    container = ctx.must_create(bundle)
    container.must_start()
    inside = _container_mount_ns(container)
    # hold the namespace open: once freed, its inode number could be reused by
    # the mount namespace of a wrapped runtime's delete (crun-wrapper)
    holder = os.open(f"/proc/{container.pid()}/ns/mnt", os.O_RDONLY)
    ctx.on_cleanup(lambda: os.close(holder))
    hooks.wait_for("startContainer")  # hooks-start-phase judges timing; this check only where
    container.kill("KILL")
    container.must_stop()
    container.delete()
    wrong = []
    for label in (*CREATE_PHASE, "startContainer", "poststart", "poststop"):
        seen = hooks.mount_ns(label)
        if not seen or (seen == inside) != (label in IN_CONTAINER):
            where = "inside" if label in IN_CONTAINER else "outside"
            wrong.append(f"{label} ran in {seen or '?'} (container: {inside}; want {where})")
    expect(not wrong, "; ".join(wrong))


@check("config.md#posix-platform-hooks", "MUST", "a hook gets exactly its args (argv) and env (environ)")
def check_hook_args_env(ctx: Context) -> None:
    bundle = ctx.bundle("true")
    out = ctx.tempdir("hook-args", 0o777)
    bundle.config["hooks"] = {"prestart": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", f'echo "$0|$1|$HOOKVAR" > {out}/seen; env > {out}/env', "zero", "one"],
        "env": ["HOOKVAR=value with spaces"],
    }]}
    ctx.must_create(bundle)
    seen = (out / "seen").read_text().strip() if (out / "seen").exists() else "(hook did not run)"
    expect(seen == "zero|one|value with spaces", f"hook saw $0|$1|$HOOKVAR = {seen!r}")
    environment = (out / "env").read_text().split("\n")
    allowed = ("HOOKVAR=", "PWD=", "SHLVL=", "_=")  # the last three: set by the shell itself
    stray = [line for line in environment if line and not line.startswith(allowed)]
    expect(not stray, f"the hook's environment has variables not in its env: {stray[:4]}")


@check("config.md#posix-platform-hooks", "MUST",
       "a hook that outlives its timeout is aborted and fails the operation")
def check_hook_timeout(ctx: Context) -> None:
    bundle = ctx.bundle("true")
    bundle.config["hooks"] = {"prestart": [{"path": "/bin/sleep", "args": ["sleep", "20"], "timeout": 1}]}
    started = time.monotonic()
    container, outcome = ctx.create(bundle)
    elapsed = time.monotonic() - started
    expect(container is None, f"create succeeded although its hook ran past its timeout ({elapsed:.1f}s)")
    expect(elapsed < 10, f"create took {elapsed:.1f}s: the 1s timeout was not enforced")


def _failing_create_hook(ctx: Context, kind: str) -> None:
    bundle = ctx.bundle("sh", "-c", f"echo process >> {CONTAINER_HOOK_DIR}/order")
    hooks = HookRecorder(ctx, bundle)
    hooks.add(kind, exit_code=1)
    container, outcome = ctx.create(bundle)
    expect(container is None, f"create succeeded although a {kind} hook failed")
    leftover = ctx.runtime.state(ctx.containers[-1].id)
    expect(leftover is None, f"the container was not destroyed (step 12): state {leftover}")


@check("runtime.md#lifecycle", "MUST", "a failing prestart hook fails create; the container is destroyed")
def check_prestart_failure(ctx: Context) -> None:
    _failing_create_hook(ctx, "prestart")


@check("runtime.md#lifecycle", "MUST",
       "a failing createRuntime hook fails create; the container is destroyed",
       since="1.0.2")
def check_create_runtime_failure(ctx: Context) -> None:
    _failing_create_hook(ctx, "createRuntime")


@check("runtime.md#lifecycle", "MUST",
       "a failing createContainer hook fails create; the container is destroyed",
       since="1.0.2")
def check_create_container_failure(ctx: Context) -> None:
    _failing_create_hook(ctx, "createContainer")


@check("runtime.md#lifecycle", "MUST",
       "after a failing create hook the poststop hooks still run (steps 12-13)", since="1.0.2")
def check_failed_create_runs_poststop(ctx: Context) -> None:
    bundle = ctx.bundle("true")
    hooks = HookRecorder(ctx, bundle)
    hooks.add("createRuntime", exit_code=1)
    hooks.add("poststop")
    container, _ = ctx.create(bundle)
    expect(container is None, "create succeeded although a createRuntime hook failed")
    expect("poststop" in hooks.order(), f"poststop did not run after the failed create: {hooks.order()}")


@check("runtime.md#lifecycle", "MUST",
       "a failing startContainer hook fails start and the user's program does not run", since="1.0.2")
def check_start_container_failure(ctx: Context) -> None:
    bundle = ctx.bundle("sh", "-c", f"echo process >> {CONTAINER_HOOK_DIR}/order")
    hooks = HookRecorder(ctx, bundle)
    hooks.add("startContainer", exit_code=1)
    container = ctx.must_create(bundle)
    outcome = container.start()
    expect(not outcome.ok, "start succeeded although a startContainer hook failed")
    container.wait_status("stopped", 2)
    expect("process" not in hooks.order(), "the user's program ran although startContainer failed")


@check("runtime.md#lifecycle", "MUST",
       "a failing poststart hook fails start and the container is stopped", since="1.3.0")
def check_poststart_failure(ctx: Context) -> None:
    bundle = ctx.bundle("sleep", "600")
    hooks = HookRecorder(ctx, bundle)
    hooks.add("poststart", exit_code=1)
    container = ctx.must_create(bundle)
    outcome = container.start()
    expect(not outcome.ok, "start succeeded although a poststart hook failed")
    status = container.wait_status("stopped", 5)
    expect(status in ("stopped", None), f"the container was not stopped: status {status!r}")


@check("runtime.md#lifecycle", "MUST",
       "a failing poststop hook is only a warning: delete succeeds and later poststop hooks run")
def check_poststop_failure(ctx: Context) -> None:
    bundle = ctx.bundle("true")
    hooks = HookRecorder(ctx, bundle)
    hooks.add("poststop", "failing", exit_code=1)
    hooks.add("poststop", "after")
    container = ctx.must_create(bundle)
    container.must_start()
    container.must_stop()
    outcome = container.delete()
    expect(outcome.ok, f"delete failed because of a poststop hook: {outcome.describe()}")
    expect(hooks.order() == ["failing", "after"], f"poststop hooks ran as {hooks.order()}")
    expect(container.state() is None, "the container still exists after delete")
