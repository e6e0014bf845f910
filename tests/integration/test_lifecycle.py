"""create / start / state / run / kill / delete / list, as runc does them."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import time

import pytest
from support.runtime import (
    assert_nothing_left,
    children,
    cmdline,
    pid_alive,
    wait_for,
)

from .scripts import IDLE, WAIT_FOR_STOP


def _created(rt, cid, bundle, script=WAIT_FOR_STOP, *extra):
    out = bundle.shared_dir()
    bundle.sh(script)
    rt.create(cid, bundle, *extra)
    return out


def _running(rt, cid, bundle, script=WAIT_FOR_STOP):
    out = _created(rt, cid, bundle, script)
    rt.ok("start", cid)
    wait_for(lambda: (out / "started").exists(), what="container to start")
    return out


# -- create / start / state / delete -------------------------------------------------

def test_create_leaves_container_created_with_live_init(rt, cid, bundle):
    _created(rt, cid, bundle)
    st = rt.state(cid)
    assert st["status"] == "created"
    assert st["id"] == cid
    assert isinstance(st["pid"], int) and st["pid"] > 0
    assert pid_alive(st["pid"])


def test_create_does_not_run_user_program_yet(rt, cid, bundle):
    out = _created(rt, cid, bundle)
    time.sleep(0.2)
    assert not (out / "started").exists()
    pid = rt.state(cid)["pid"]
    # The init is still the runtime, not the user's `sh -c ...`.
    assert cmdline(pid)[:2] != ["sh", "-c"], cmdline(pid)


def test_start_runs_user_program_and_state_is_running(rt, cid, bundle):
    out = _created(rt, cid, bundle)
    pid = rt.state(cid)["pid"]
    rt.ok("start", cid)
    wait_for(lambda: (out / "started").exists(), what="user program to run")
    st = rt.state(cid)
    assert st["status"] == "running"
    assert st["pid"] == pid
    assert any(bundle.token in a for a in cmdline(pid))


def test_state_becomes_stopped_when_process_exits(rt, cid, bundle):
    out = _running(rt, cid, bundle)
    pid = rt.state(cid)["pid"]
    (out / "stop").touch()
    wait_for(lambda: not pid_alive(pid), what="container process to exit")
    rt.wait_status(cid, "stopped")


def test_delete_removes_stopped_container(rt, cid, bundle):
    bundle.sh("exit 0")
    rt.create(cid, bundle)
    rt.ok("start", cid)
    rt.wait_status(cid, "stopped")
    rt.ok("delete", cid)
    rt.fail("state", cid)
    assert_nothing_left(rt, cid, bundle.token, bundle.path)


def test_delete_of_created_container_kills_init(rt, cid, bundle):
    out = _created(rt, cid, bundle)
    pid = rt.state(cid)["pid"]
    rt.ok("delete", cid)
    wait_for(lambda: not pid_alive(pid), what="init to die")
    assert not (out / "started").exists()
    assert_nothing_left(rt, cid, bundle.token, bundle.path)


def test_delete_force_kills_running_container(rt, cid, bundle):
    _running(rt, cid, bundle)
    pid = rt.state(cid)["pid"]
    rt.ok("delete", "--force", cid)
    wait_for(lambda: not pid_alive(pid), what="container to die")
    assert_nothing_left(rt, cid, bundle.token, bundle.path)


def test_state_reports_oci_fields(rt, cid, bundle):
    _created(rt, cid, bundle)
    st = rt.state(cid)
    assert st["ociVersion"]
    assert st["bundle"] == str(bundle.path)
    assert st["rootfs"] == str(bundle.rootfs)
    assert st["created"].startswith(time.strftime("%Y-", time.gmtime()))
    assert "owner" in st


def test_state_lists_annotations(rt, cid, bundle):
    bundle.config["annotations"] = {"org.example.key": "value-1", "other": "x y"}
    _created(rt, cid, bundle)
    assert rt.state(cid)["annotations"] == {"org.example.key": "value-1", "other": "x y"}


def test_pid_file_of_create_holds_init_pid(rt, cid, bundle, testdir):
    pidfile = testdir / "ct.pid"
    _created(rt, cid, bundle, WAIT_FOR_STOP, "--pid-file", str(pidfile))
    assert int(pidfile.read_text().strip()) == rt.state(cid)["pid"]


def test_pid_file_of_run_detach_holds_container_pid(rt, cid, bundle, testdir):
    pidfile = testdir / "ct.pid"
    bundle.shared_dir()
    bundle.sh(WAIT_FOR_STOP)
    st = rt.run_detached(cid, bundle, "--pid-file", str(pidfile))
    assert int(pidfile.read_text().strip()) == st["pid"]


# -- run --------------------------------------------------------------------------

@pytest.mark.parametrize("status", [0, 3, 255])
def test_run_foreground_exits_with_container_status(rt, cid, bundle, status):
    bundle.sh(f"exit {status}")
    r = rt.run(cid, bundle)
    assert r.rc == status, str(r)


def test_run_foreground_passes_stdout_through(rt, cid, bundle):
    bundle.sh("echo hello-from-container")
    assert rt.run_ok(cid, bundle).strip() == "hello-from-container"


def test_run_foreground_deletes_container_on_exit(rt, cid, bundle):
    bundle.sh("exit 0")
    assert rt.run(cid, bundle).rc == 0
    assert_nothing_left(rt, cid, bundle.token, bundle.path)


def test_run_foreground_killed_exits_128_plus_signal(rt, cid, bundle, testdir):
    out = bundle.shared_dir()
    bundle.sh(WAIT_FOR_STOP)
    bundle.write()
    with open(testdir / "run.out", "wb") as f:
        p = rt.spawn("run", "--bundle", str(bundle.path), cid, stdout=f, stderr=f)
        try:
            wait_for(lambda: (out / "started").exists(), what="container to start")
            rt.ok("kill", cid, "KILL")
            rc = p.wait(timeout=10)
        finally:
            if p.poll() is None:
                p.kill()
    assert rc == 128 + signal.SIGKILL


def test_run_keep_leaves_stopped_container(rt, cid, bundle):
    bundle.sh("exit 7")
    r = rt.run(cid, bundle, "--keep")
    assert r.rc == 7
    st = rt.state(cid)
    assert st["status"] == "stopped"
    assert st["pid"] == 0  # runc reports pid 0 once the container has stopped
    assert cid in rt.ids()
    rt.ok("delete", cid)
    assert_nothing_left(rt, cid, bundle.token, bundle.path)


def test_run_detach_returns_while_container_runs(rt, cid, bundle):
    out = bundle.shared_dir()
    bundle.sh(WAIT_FOR_STOP)
    st = rt.run_detached(cid, bundle)
    assert st["status"] == "running"
    assert pid_alive(st["pid"])
    wait_for(lambda: (out / "started").exists(), what="user program")
    (out / "stop").touch()
    rt.wait_status(cid, "stopped")
    rt.ok("delete", cid)


# -- list ------------------------------------------------------------------------

def test_list_quiet_prints_ids(rt, make_bundle):
    ids = []
    for _ in range(2):
        b = make_bundle()
        b.sh("sleep 100")
        cid = f"ct-{b.token}"
        rt.create(cid, b)
        ids.append(cid)
    assert sorted(rt.ids()) == sorted(ids)


def test_list_json_describes_each_container(rt, cid, bundle):
    _running(rt, cid, bundle)
    st = rt.state(cid)
    entries = rt.ok("list", "--format", "json").json()
    assert isinstance(entries, list) and len(entries) == 1
    e = entries[0]
    assert e["id"] == cid
    assert e["status"] == "running"
    assert e["pid"] == st["pid"]
    assert e["bundle"] == str(bundle.path)
    assert e["created"] == st["created"]


def test_list_default_table(rt, cid, bundle):
    _created(rt, cid, bundle)
    lines = rt.ok("list").out.splitlines()
    assert lines[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    row = lines[1].split()
    assert row[:4] == [cid, str(rt.state(cid)["pid"]), "created", str(bundle.path)]
    assert row[5] == "root"


def test_list_json_with_no_containers(rt):
    # runc prints "null" here (a nil Go slice), not "[]"; accept both.
    assert rt.ok("list", "--format", "json").json() in ([], None)


def test_list_quiet_with_no_containers_is_empty(rt):
    assert rt.ok("list", "-q").out.strip() == ""


# -- kill -------------------------------------------------------------------------

TRAP_SCRIPT = (
    "for s in TERM USR1 HUP; do trap \"echo $s >> /out/signals\" $s; done; " + IDLE
)


def test_kill_default_signal_is_sigterm(rt, cid, bundle):
    out = _running(rt, cid, bundle, TRAP_SCRIPT)
    rt.ok("kill", cid)
    wait_for(lambda: (out / "signals").exists(), what="trap to run")
    assert (out / "signals").read_text().split() == ["TERM"]
    assert rt.status(cid) == "running"


@pytest.mark.parametrize("sig", ["SIGUSR1", "USR1", str(int(signal.SIGUSR1))])
def test_kill_accepts_signal_names_and_numbers(rt, cid, bundle, sig):
    out = _running(rt, cid, bundle, TRAP_SCRIPT)
    rt.ok("kill", cid, sig)
    wait_for(lambda: (out / "signals").exists(), what="trap to run")
    assert (out / "signals").read_text().split() == ["USR1"]


@pytest.mark.parametrize("sig", ["SIGKILL", "KILL", "9"])
def test_kill_sigkill_stops_container(rt, cid, bundle, sig):
    _running(rt, cid, bundle)
    pid = rt.state(cid)["pid"]
    rt.ok("kill", cid, sig)
    wait_for(lambda: not pid_alive(pid), what="container to die")
    rt.wait_status(cid, "stopped")


# PID 1 of a pid namespace ignores signals it has no handler for, so TERM
# leaves the init alive while its children die only if they get it too.
CHILDREN_SCRIPT = "sleep 1000 & sleep 1000 & touch /out/started; wait"


def _init_children(pid):
    return wait_for(lambda: len(children(pid)) == 2 and children(pid),
                    what="two children in the container")


def test_kill_all_signals_every_container_process(rt, cid, bundle):
    _running(rt, cid, bundle, CHILDREN_SCRIPT)
    pid = rt.state(cid)["pid"]
    kids = _init_children(pid)
    rt.ok("kill", "--all", cid, "TERM")
    wait_for(lambda: not any(pid_alive(k) for k in kids), what="children to die")


def test_kill_without_all_signals_only_init(rt, cid, bundle):
    _running(rt, cid, bundle, CHILDREN_SCRIPT)
    pid = rt.state(cid)["pid"]
    kids = _init_children(pid)
    rt.ok("kill", cid, "TERM")
    time.sleep(0.3)
    assert all(pid_alive(k) for k in kids)
    assert pid_alive(pid)
    assert rt.status(cid) == "running"


def test_kill_all_without_pid_namespace_kills_every_process(rt, cid, bundle):
    bundle.drop_namespace("pid")
    _running(rt, cid, bundle, CHILDREN_SCRIPT)
    pid = rt.state(cid)["pid"]
    kids = _init_children(pid)
    rt.ok("kill", "--all", cid, "KILL")
    wait_for(lambda: not any(pid_alive(p) for p in [pid, *kids]), what="all to die")
    rt.wait_status(cid, "stopped")
    rt.ok("delete", cid)
    assert_nothing_left(rt, cid, bundle.token, bundle.path)


# -- concurrency -----------------------------------------------------------------

def test_concurrent_state_and_kill_never_see_corrupt_json(rt, make_bundle, testdir):
    """Readers racing create/start/delete on one id get either a clean error
    or a complete, well-formed state document."""
    b = make_bundle()
    b.sh("sleep 100")
    b.write()
    cid = f"ct-{b.token}"
    readers = []
    logs = []
    for i, args in enumerate([("state", cid), ("state", cid), ("kill", cid, "0"),
                              ("list", "--format", "json")]):
        log = testdir / f"reader{i}.log"
        logs.append((args, log))
        script = (
            'end=$(( $(date +%s) + 3 )); '
            'while [ "$(date +%s)" -lt "$end" ]; do '
            '  "$@" >> "$LOG.out" 2>/dev/null; echo "rc=$?" >> "$LOG.out"; '
            '  echo "----" >> "$LOG.out"; '
            "done"
        )
        readers.append(subprocess.Popen(
            ["sh", "-c", script, "reader", *rt.argv(*args)],
            env={**os.environ, "LOG": str(log)},
        ))
    try:
        deadline = time.monotonic() + 2.5
        cycles = 0
        while time.monotonic() < deadline:
            rt.ok("create", "--bundle", str(b.path), cid)
            rt.ok("start", cid)
            rt.ok("delete", "--force", cid)
            cycles += 1
    finally:
        for p in readers:
            p.wait(timeout=20)
    assert cycles >= 2
    seen_ok = 0
    for args, log in logs:
        text = (log.parent / (log.name + ".out")).read_text()
        for chunk in text.split("----\n"):
            if not chunk.strip():
                continue
            body, _, rc = chunk.rstrip("\n").rpartition("rc=")
            if args[0] == "kill" or rc.strip() != "0":
                continue
            doc = json.loads(body)  # must never be truncated or interleaved
            seen_ok += 1
            if args[0] == "state":
                assert doc["id"] == cid
                assert doc["status"] in ("created", "running", "stopped")
            else:
                assert doc is None or isinstance(doc, list)
    assert seen_ok > 0


# -- terminal ---------------------------------------------------------------------

def _read_pty(master, until, timeout=5.0):
    data = b""
    deadline = time.monotonic() + timeout
    while until not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the container side is closed
                break
            if not chunk:
                break
            data += chunk
    return data.decode(errors="replace")


def test_terminal_is_sent_over_console_socket(rt, cid, bundle, testdir):
    sock_path = testdir / "console.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(sock_path))
    srv.listen(1)
    srv.settimeout(10)
    bundle.process["terminal"] = True
    bundle.sh("tty; [ -c /dev/console ] && echo console-ok; "
              "read line; echo \"got:$line\"; echo done-term")
    master = None
    try:
        rt.create(cid, bundle, "--console-socket", str(sock_path))
        conn, _ = srv.accept()
        with conn:
            _msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 1)
        assert len(fds) == 1
        master = fds[0]
        rt.ok("start", cid)
        out = _read_pty(master, b"console-ok")
        os.write(master, b"typed-in\n")
        out += _read_pty(master, b"done-term")
    finally:
        srv.close()
        if master is not None:
            os.close(master)
    lines = [line.strip() for line in out.splitlines()]
    assert lines[0].startswith("/dev/pts/"), out
    assert os.path.basename(lines[0]).isdigit()
    assert "console-ok" in lines
    assert "got:typed-in" in lines


def test_foreground_run_relays_a_terminal_without_console_socket(rt, cid, bundle):
    """`run` with process.terminal and no --console-socket gives the
    container a pty of its own and copies it to the caller's terminal."""
    import pty as host_pty
    import select

    bundle.process["terminal"] = True
    bundle.sh("tty; stty size; read line; echo got:$line; exit 4")
    bundle.write()
    master, slave = host_pty.openpty()
    os.set_blocking(master, True)
    proc = rt.spawn("run", "--bundle", str(bundle.path), cid, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    output = b""
    os.write(master, b"hello\n")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if not select.select([master], [], [], 0.2)[0]:
            continue
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break  # EIO: the last holder of the slave is gone
        if not chunk:
            break
        output += chunk
    os.close(master)
    assert proc.wait(timeout=15) == 4
    text = output.decode(errors="replace")
    assert "/dev/pts/" in text
    assert "got:hello" in text


@pytest.mark.rootlet_only
def test_terminal_relay_types_end_of_file_when_piped_input_ends(rt, cid, bundle):
    """`echo cmds | rootlet run` with process.terminal: the commands run and
    the end of the pipe reaches the container's shell as ^D, so it exits."""
    bundle.process["terminal"] = True
    bundle.args("sh")
    bundle.write()
    proc = rt.spawn("run", "--bundle", str(bundle.path), cid, stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = proc.communicate(b"echo piped-$((40+2))\n", timeout=15)
    assert proc.returncode == 0
    assert b"piped-42" in out
