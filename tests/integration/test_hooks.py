"""hooks: order, namespaces, state on stdin, failures and timeouts."""

from __future__ import annotations

import json
import os
import time

import pytest
from support.runtime import assert_nothing_left, is_runc, pid_alive, pids_matching, wait_for

RUNC_POSTSTART = pytest.mark.xfail(
    is_runc(), strict=True,
    reason="runc 1.1 runs poststart hooks at the end of `create` (state 'created'), "
           "before the user program starts, not during `start`")

ALL_HOOKS = ["prestart", "createRuntime", "createContainer", "startContainer",
             "poststart", "poststop"]
# hooks that run in the container's namespaces (after the rootfs is set up)
IN_CONTAINER = {"createContainer", "startContainer"}


def _hook_script(name, hostdir):
    """Record the hook's name, its stdin and its namespaces.

    createContainer runs in the container's mount namespace before
    pivot_root (host paths still resolve) and startContainer after it (only
    the /hooks bind mount is reachable): write wherever the log dir is."""
    return (
        f'if [ -d "{hostdir}" ]; then d="{hostdir}"; else d=/hooks; fi; '
        f'cat > "$d/{name}.json"; '
        f'readlink /proc/self/ns/uts > "$d/{name}.uts"; '
        f'hostname > "$d/{name}.hostname"; '
        f'echo {name} >> "$d/log"'
    )


def _add_hook(bundle, kind, args, **extra):
    hooks = bundle.config.setdefault("hooks", {})
    hooks.setdefault(kind, []).append({"path": "/bin/sh", "args": ["sh", "-c", *args], **extra})


@pytest.fixture
def hooked(bundle):
    """The bundle with every hook kind recording into the shared dir."""
    hostdir = bundle.shared_dir("/hooks")
    for name in ALL_HOOKS:
        _add_hook(bundle, name, [_hook_script(name, hostdir)])
    bundle.config["hostname"] = "hooked-ct"
    return hostdir


def _log(hostdir):
    p = hostdir / "log"
    return p.read_text().split() if p.exists() else []


def test_create_runs_creation_hooks_in_order(rt, cid, bundle, hooked):
    bundle.sh("exit 0")
    rt.create(cid, bundle)
    log = _log(hooked)
    assert log[:3] == ["prestart", "createRuntime", "createContainer"]
    assert "startContainer" not in log and "poststop" not in log


@RUNC_POSTSTART
def test_poststart_runs_at_start_not_at_create(rt, cid, bundle, hooked):
    bundle.sh("exit 0")
    rt.create(cid, bundle)
    assert "poststart" not in _log(hooked)
    rt.ok("start", cid)
    assert "poststart" in _log(hooked)


def test_start_runs_start_hooks(rt, cid, bundle, hooked):
    bundle.sh("echo ran > /hooks/program")
    rt.create(cid, bundle)
    rt.ok("start", cid)
    rt.wait_status(cid, "stopped")
    log = _log(hooked)
    assert log[:3] == ["prestart", "createRuntime", "createContainer"]
    assert sorted(log[3:]) == ["poststart", "startContainer"]
    assert "poststop" not in log


def test_delete_runs_poststop_last(rt, cid, bundle, hooked):
    bundle.sh("exit 0")
    rt.create(cid, bundle)
    rt.ok("start", cid)
    rt.wait_status(cid, "stopped")
    rt.ok("delete", cid)
    log = _log(hooked)
    assert log[-1] == "poststop"
    assert sorted(log) == sorted(ALL_HOOKS)


def test_run_runs_every_hook_once(rt, cid, bundle, hooked):
    bundle.sh("exit 0")
    assert rt.run(cid, bundle).rc == 0
    log = _log(hooked)
    assert sorted(log) == sorted(ALL_HOOKS)
    assert log[:3] == ["prestart", "createRuntime", "createContainer"]
    assert log[-1] == "poststop"


def test_start_container_hook_runs_before_user_program(rt, cid, bundle, hooked):
    bundle.sh("echo program >> /hooks/log")
    rt.create(cid, bundle)
    rt.ok("start", cid)
    rt.wait_status(cid, "stopped")
    log = _log(hooked)
    assert log.index("startContainer") < log.index("program")


@pytest.mark.parametrize("name", ALL_HOOKS)
def test_hook_namespace(rt, cid, bundle, hooked, name):
    bundle.sh("exit 0")
    assert rt.run(cid, bundle).rc == 0
    uts = (hooked / f"{name}.uts").read_text().strip()
    host = os.readlink("/proc/self/ns/uts")
    if name in IN_CONTAINER:
        assert uts != host
    else:
        assert uts == host


def test_start_container_hook_sees_container_hostname(rt, cid, bundle, hooked):
    # (runc sets the hostname after the createContainer hooks have run)
    bundle.sh("exit 0")
    assert rt.run(cid, bundle).rc == 0
    assert (hooked / "startContainer.hostname").read_text().strip() == "hooked-ct"


@pytest.mark.parametrize("name", [
    "prestart", "createRuntime", "createContainer", "startContainer",
    pytest.param("poststart", marks=RUNC_POSTSTART), "poststop"])
def test_hook_gets_state_on_stdin(rt, cid, bundle, hooked, name):
    bundle.config["annotations"] = {"hook.test": "yes"}
    bundle.sh("exit 0")
    assert rt.run(cid, bundle).rc == 0
    state = json.loads((hooked / f"{name}.json").read_text())
    assert state["id"] == cid
    assert state["bundle"] == str(bundle.path)
    assert state["ociVersion"]
    assert state.get("annotations") == {"hook.test": "yes"}
    # runtime.md "State": `created` is "after step 2 in the lifecycle", and
    # the create hooks are steps 3-5; runc 1.1 says `creating` there.
    during_create = "creating" if is_runc() else "created"
    expected = {
        "prestart": during_create, "createRuntime": during_create, "createContainer": during_create,
        "startContainer": "created", "poststart": "running", "poststop": "stopped",
    }
    assert state["status"] == expected[name]
    if name != "poststop":
        assert isinstance(state["pid"], int) and state["pid"] > 0


def test_hook_args_and_env(rt, cid, bundle):
    out = bundle.shared_dir()
    bundle.config["hooks"] = {"prestart": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", f'echo "$0|$1|$FOO|$HOOKVAR" > {out}/args', "zero", "one"],
        "env": ["FOO=foo value", "HOOKVAR=1", "PATH=/usr/bin:/bin"],
    }]}
    bundle.sh("exit 0")
    assert rt.run(cid, bundle).rc == 0
    assert (out / "args").read_text() == "zero|one|foo value|1\n"


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_failing_creation_hook_fails_create_and_leaves_nothing(rt, cid, bundle, kind):
    out = bundle.shared_dir()
    bundle.sh("echo ran > /out/program")
    _add_hook(bundle, kind, ["exit 1", f"hook-{bundle.token}"])
    bundle.write()
    rt.fail("create", "--bundle", str(bundle.path), cid)
    assert not (out / "program").exists()
    assert_nothing_left(rt, cid, bundle.token, bundle.path)


def test_failing_start_container_hook_prevents_user_program(rt, cid, bundle):
    # runc's `start` itself exits 0 here: the hook runs in the container's
    # init after `start` has released it; the init then exits with an error.
    out = bundle.shared_dir()
    bundle.sh("echo ran > /out/program")
    _add_hook(bundle, "startContainer", ["exit 1"])
    rt.create(cid, bundle)
    pid = rt.state(cid)["pid"]
    rt("start", cid)
    wait_for(lambda: not pid_alive(pid), what="init to go away")
    assert not (out / "program").exists()
    assert rt.status(cid) == "stopped"


def test_hook_timeout_fails_create_and_kills_hook(rt, cid, bundle):
    # The hook is one process (sleep itself): runc kills it on timeout but
    # then still waits for EOF on the hook's output, so a hook that leaves a
    # child behind (e.g. `sh -c 'sleep 30; true'`) blocks runc until it exits.
    marker = f"29.{int(bundle.token, 16) % 1000000:06d}"
    bundle.sh("exit 0")
    bundle.config["hooks"] = {"prestart": [{
        "path": "/bin/sleep", "args": ["sleep", marker], "timeout": 1,
    }]}
    bundle.write()
    t0 = time.monotonic()
    rt.fail("create", "--bundle", str(bundle.path), cid)
    assert time.monotonic() - t0 < 10
    assert not pids_matching(marker)
    assert_nothing_left(rt, cid, bundle.token, bundle.path)


def test_hook_within_timeout_succeeds(rt, cid, bundle):
    out = bundle.shared_dir()
    bundle.sh("exit 0")
    bundle.config["hooks"] = {"prestart": [{
        "path": "/bin/sh", "args": ["sh", "-c", f"sleep 0.1; touch {out}/hooked"],
        "timeout": 5,
    }]}
    assert rt.run(cid, bundle).rc == 0
    assert (out / "hooked").exists()


def test_poststop_runs_on_forced_delete(rt, cid, bundle, hooked):
    bundle.sh("while :; do sleep 0.05; done")
    rt.create(cid, bundle)
    rt.ok("start", cid)
    rt.ok("delete", "--force", cid)
    assert _log(hooked)[-1] == "poststop"
