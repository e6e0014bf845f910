"""runtime.md: the operations (state, create, start, kill, delete), their
required errors, and the state document's fields and status transitions."""

from __future__ import annotations

import os
from pathlib import Path

from ..context import Context
from ..registry import check, expect
from ..schema import load_schema, validate

LONG_SLEEP = ["sleep", "600"]


def _process_alive(pid: int) -> bool:
    """A pid that exists and is not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except FileNotFoundError:
        return []


# -- state ------------------------------------------------------------------
@check("runtime.md#state", "MUST", "state reports ociVersion, id, status, pid and the bundle's absolute path")
def check_state_fields(ctx: Context) -> None:
    bundle = ctx.bundle(*LONG_SLEEP)
    container = ctx.must_create(bundle)
    state = container.state()
    expect(state is not None, "state failed for a created container")
    missing = [k for k in ("ociVersion", "id", "status", "pid", "bundle") if k not in state]
    expect(not missing, f"state lacks {missing}: {state}")
    expect(state["id"] == container.id, f"id is {state['id']!r}, not {container.id!r}")
    expect(os.path.isabs(state["bundle"]), f"bundle {state['bundle']!r} is not absolute")
    expect(os.path.realpath(state["bundle"]) == os.path.realpath(bundle.path),
           f"bundle {state['bundle']!r} is not {bundle.path}")
    expect(isinstance(state["pid"], int) and _process_alive(state["pid"]),
           f"pid {state['pid']!r} is not a live process on the host")


@check("runtime.md#state", "MUST",
       "state JSON adheres to the spec's state schema (pid required while created/running)")
def check_state_schema(ctx: Context) -> None:
    schema = load_schema("state")
    container = ctx.must_create(ctx.bundle("sh", "-c", "exit 0"))
    documents = {"created": container.state()}
    container.must_start()
    container.must_stop()
    documents["stopped"] = container.state()
    for phase, document in documents.items():
        expect(document is not None, f"state failed while {phase}")
        problems = validate(document, schema)
        expect(not problems, f"state while {phase} violates the schema: {'; '.join(problems[:2])}")


@check("runtime.md#state", "MUST",
       "status goes created (after create) -> running (after start) -> stopped (after exit)")
def check_status_transitions(ctx: Context) -> None:
    container = ctx.must_create(ctx.bundle(*LONG_SLEEP))
    expect(container.status() == "created", f"after create: {container.status()!r}")
    container.must_start()
    expect(container.status() == "running", f"after start: {container.status()!r}")
    container.kill("KILL")
    expect(container.wait_status("stopped") == "stopped", "not stopped after its process was killed")


@check("runtime.md#state", "MUST", "status becomes stopped when the process exits by itself")
def check_status_stopped_on_exit(ctx: Context) -> None:
    container = ctx.must_create(ctx.bundle("true"))
    container.must_start()
    container.must_stop()


@check("runtime.md#state", "MUST",
       "pid is the host pid of the process that runs the user's program after start")
def check_state_pid_is_process(ctx: Context) -> None:
    container = ctx.must_create(ctx.bundle(*LONG_SLEEP))
    container.must_start()
    pid = container.pid()
    expect(_cmdline(pid) == LONG_SLEEP, f"/proc/{pid}/cmdline is {_cmdline(pid)}, not {LONG_SLEEP}")


@check("runtime.md#state", "SHOULD",
       "state carries the config's annotations (an OPTIONAL field, expected when set)")
def check_state_annotations(ctx: Context) -> None:
    bundle = ctx.bundle(*LONG_SLEEP)
    annotations = {"org.example.conformance": "yes", "k2": "v with spaces"}
    bundle.config["annotations"] = annotations
    container = ctx.must_create(bundle)
    state = container.state() or {}
    expect(state.get("annotations") == annotations, f"annotations in state: {state.get('annotations')!r}")


@check("runtime.md#query-state", "MUST", "state of an unknown container id fails")
def check_state_unknown_id(ctx: Context) -> None:
    outcome = ctx.runtime.call("state", ctx.new_id())
    expect(not outcome.ok, f"state of an unknown id succeeded: {outcome.stdout[:200]!r}")


@check("runtime.md#query-state", "MUST", "state without a container id fails")
def check_state_without_id(ctx: Context) -> None:
    outcome = ctx.runtime.call("state")
    expect(not outcome.ok, "state without an id succeeded")


# -- create -----------------------------------------------------------------
@check("runtime.md#create", "MUST",
       "create with an id already in use fails and leaves the existing container untouched")
def check_create_duplicate_id(ctx: Context) -> None:
    first = ctx.must_create(ctx.bundle(*LONG_SLEEP))
    pid = first.pid()
    second, outcome = ctx.create(ctx.bundle(*LONG_SLEEP), first.id)
    expect(second is None, "a second create with the same id succeeded")
    state = first.state() or {}
    expect(state.get("status") == "created" and state.get("pid") == pid,
           f"the first container changed: {state}")


@check("runtime.md#create", "MUST", "create without a container id fails")
def check_create_without_id(ctx: Context) -> None:
    bundle = ctx.bundle().write()
    outcome = ctx.runtime.call("create", "--bundle", str(bundle.path))
    expect(not outcome.ok, "create without an id succeeded")


@check("runtime.md#create", "MUST", "process.args is not run by create, only by start")
def check_create_does_not_run_args(ctx: Context) -> None:
    container = ctx.must_create(ctx.bundle("sh", "-c", "echo ran"))
    expect(container.wait_status("stopped", 0.3) == "created",
           f"status after create is {container.status()!r}")
    expect("ran" not in container.output(), "the user's program ran during create")
    container.must_start()
    container.must_stop()
    expect("ran" in container.output(), "the user's program did not run after start")


@check("runtime.md#create", "MUST",
       "a config the runtime cannot apply (missing root.path) fails create; no container is left")
def check_create_unappliable_config(ctx: Context) -> None:
    bundle = ctx.bundle()
    bundle.config["root"]["path"] = "does-not-exist"
    container, outcome = ctx.create(bundle)
    expect(container is None, "create succeeded with a root.path that does not exist")
    expect(ctx.runtime.state(ctx.containers[-1].id) is None, "a container exists after the failed create")


@check("runtime.md#errors", "MUST",
       "a failed create leaves the environment as if never attempted: the id can be reused")
def check_failed_create_leaves_nothing(ctx: Context) -> None:
    broken = ctx.bundle()
    broken.config["root"]["path"] = "does-not-exist"
    container, _ = ctx.create(broken)
    expect(container is None, "create succeeded with a root.path that does not exist")
    reused_id = ctx.containers[-1].id
    again, outcome = ctx.create(ctx.bundle(), reused_id)
    expect(again is not None, f"create with the id of the failed attempt failed: {outcome.describe()}")


@check("runtime.md#lifecycle", "MUST", "changing config.json after create does not affect the container")
def check_config_update_after_create(ctx: Context) -> None:
    bundle = ctx.bundle("echo", "original")
    container = ctx.must_create(bundle)
    bundle.config["process"]["args"] = ["echo", "changed"]
    bundle.write()
    container.must_start()
    container.must_stop()
    expect(container.output().strip() == "original", f"the process printed {container.output()!r}")


# -- start ------------------------------------------------------------------
@check("runtime.md#start", "MUST", "start of a running container fails and has no effect on it")
def check_start_running(ctx: Context) -> None:
    container = ctx.must_create(ctx.bundle(*LONG_SLEEP))
    container.must_start()
    pid = container.pid()
    outcome = container.start()
    expect(not outcome.ok, "a second start succeeded")
    state = container.state() or {}
    expect(state.get("status") == "running" and state.get("pid") == pid, f"container changed: {state}")


@check("runtime.md#start", "MUST", "start of a stopped container fails")
def check_start_stopped(ctx: Context) -> None:
    container = ctx.must_create(ctx.bundle("sh", "-c", "echo once"))
    container.must_start()
    container.must_stop()
    outcome = container.start()
    expect(not outcome.ok, "start of a stopped container succeeded")
    expect(container.output().count("once") == 1, f"the process ran again: {container.output()!r}")
    expect(container.status() == "stopped", f"status became {container.status()!r}")


@check("runtime.md#start", "MUST", "start of an unknown container id fails")
def check_start_unknown_id(ctx: Context) -> None:
    outcome = ctx.runtime.call("start", ctx.new_id())
    expect(not outcome.ok, "start of an unknown id succeeded")


@check("runtime.md#start", "MUST", "start without a container id fails")
def check_start_without_id(ctx: Context) -> None:
    expect(not ctx.runtime.call("start").ok, "start without an id succeeded")


@check("runtime.md#start", "MUST", "a bundle without process cannot be started (create or start fails)")
def check_start_without_process(ctx: Context) -> None:
    bundle = ctx.bundle()
    del bundle.config["process"]
    container, _ = ctx.create(bundle)
    if container is None:
        return  # refused at create: an error was generated before start
    expect(not container.start().ok, "start succeeded for a config without process")


# -- kill -------------------------------------------------------------------
@check("runtime.md#kill", "MUST", "kill sends the given signal to the container process")
def check_kill_delivers_signal(ctx: Context) -> None:
    script = "trap 'echo got-usr1; exit 0' USR1; echo ready; while :; do sleep 0.05; done"
    container = ctx.must_create(ctx.bundle("sh", "-c", script))
    container.must_start()
    container.wait_for_output("ready")
    outcome = container.kill("USR1")
    expect(outcome.ok, f"kill USR1 failed: {outcome.describe()}")
    container.must_stop()
    expect("got-usr1" in container.output(), f"the process did not see SIGUSR1: {container.output()!r}")


@check("runtime.md#kill", "MUST",
       "kill of a created (not yet started) container is allowed and delivers the signal")
def check_kill_created(ctx: Context) -> None:
    container = ctx.must_create(ctx.bundle(*LONG_SLEEP))
    outcome = container.kill("KILL")
    expect(outcome.ok, f"kill of a created container failed: {outcome.describe()}")
    expect(container.wait_status("stopped") == "stopped", "the created container did not stop after SIGKILL")


@check("runtime.md#kill", "MUST", "kill of a stopped container fails and has no effect")
def check_kill_stopped(ctx: Context) -> None:
    container = ctx.must_create(ctx.bundle("true"))
    container.must_start()
    container.must_stop()
    outcome = container.kill("KILL")
    expect(not outcome.ok, "kill of a stopped container succeeded")
    expect(container.status() == "stopped", f"status became {container.status()!r}")


@check("runtime.md#kill", "MUST", "kill of an unknown container id fails")
def check_kill_unknown_id(ctx: Context) -> None:
    expect(not ctx.runtime.call("kill", ctx.new_id(), "KILL").ok, "kill of an unknown id succeeded")


@check("runtime.md#kill", "MUST", "kill without a container id fails")
def check_kill_without_id(ctx: Context) -> None:
    expect(not ctx.runtime.call("kill").ok, "kill without an id succeeded")


# -- delete -----------------------------------------------------------------
@check("runtime.md#delete", "MUST", "delete of a running container fails and leaves it running")
def check_delete_running(ctx: Context) -> None:
    container = ctx.must_create(ctx.bundle(*LONG_SLEEP))
    container.must_start()
    pid = container.pid()
    outcome = container.delete()
    expect(not outcome.ok, "delete of a running container succeeded")
    state = container.state() or {}
    expect(state.get("status") == "running" and _process_alive(pid), f"container changed: {state}")


@check("runtime.md#delete", "MUST", "delete of a created (not stopped) container fails and leaves it created")
def check_delete_created(ctx: Context) -> None:
    container = ctx.must_create(ctx.bundle(*LONG_SLEEP))
    outcome = container.delete()
    expect(not outcome.ok, "delete of a created container succeeded (the spec allows it only when stopped)")
    expect(container.status() == "created", f"status became {container.status()!r}")


@check("runtime.md#delete", "MUST",
       "delete of a stopped container removes it and its process; state then fails")
def check_delete_stopped(ctx: Context) -> None:
    container = ctx.must_create(ctx.bundle("sh", "-c", "sleep 600 & exit 0"))
    pid = container.pid()
    container.must_start()
    container.must_stop()
    outcome = container.delete()
    expect(outcome.ok, f"delete of a stopped container failed: {outcome.describe()}")
    expect(container.state() is None, "state still answers after delete")
    expect(not _process_alive(pid), f"the container's process {pid} still exists")
    leftovers = [line for line in Path("/proc/self/mountinfo").read_text().splitlines()
                 if str(container.bundle.rootfs) in line]
    expect(not leftovers, f"host mounts below the rootfs remain: {leftovers[:2]}")


@check("runtime.md#delete", "MUST",
       "delete does not remove what create did not make (bundle, bind-mounted host files)")
def check_delete_keeps_foreign_resources(ctx: Context) -> None:
    shared = ctx.tempdir("host-data")
    (shared / "keep-me").write_text("data")
    bundle = ctx.bundle("true")
    bundle.mkdir_in_rootfs("/data")
    bundle.bind(shared, "/data", "rw")
    container = ctx.must_create(bundle)
    container.must_start()
    container.must_stop()
    expect(container.delete().ok, "delete of a stopped container failed")
    expect((shared / "keep-me").read_text() == "data", "the bind-mounted host file was removed")
    expect((bundle.path / "config.json").is_file() and (bundle.rootfs / "bin" / "busybox").is_file(),
           "the bundle was removed or emptied")


@check("runtime.md#delete", "MUST", "delete of an unknown container id fails")
def check_delete_unknown_id(ctx: Context) -> None:
    expect(not ctx.runtime.call("delete", ctx.new_id()).ok, "delete of an unknown id succeeded")


@check("runtime.md#delete", "MUST", "delete without a container id fails")
def check_delete_without_id(ctx: Context) -> None:
    expect(not ctx.runtime.call("delete").ok, "delete without an id succeeded")


@check("runtime.md#delete", "MAY", "after delete the id may be used again by a new container")
def check_id_reuse_after_delete(ctx: Context) -> None:
    first = ctx.must_create(ctx.bundle("true"))
    first.must_start()
    first.must_stop()
    expect(first.delete().ok, "delete failed")
    ctx.must_create(ctx.bundle("true"), first.id)

