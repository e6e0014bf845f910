"""`exec`: another process in a running container, with runc's flags."""

from __future__ import annotations

import json
import os

import pytest
from support.runtime import pid_alive, proc_status, wait_for


@pytest.fixture
def running(rt, cid, bundle):
    bundle.args("sleep", "1000")
    rt.run_detached(cid, bundle)
    return cid


def _status_fields(text: str) -> dict[str, str]:
    return {key: value.strip() for key, _, value in (line.partition(":") for line in text.splitlines())}


def test_exec_runs_in_the_containers_pid_and_uts_namespaces(rt, running, bundle):
    init = rt.state(running)["pid"]
    out = rt.ok("exec", running, "sh", "-c", "echo $$; hostname; cat /proc/1/cmdline").out.split("\n")
    assert out[0] != "1"
    assert out[1] == bundle.config.get("hostname", out[1])
    assert out[2].startswith("sleep")
    for ns in ("pid", "uts", "mnt", "net", "ipc"):
        assert os.readlink(f"/proc/{init}/ns/{ns}")  # the container has its own
    assert rt.state(running)["status"] == "running"


def test_exec_exits_with_the_process_status(rt, running):
    assert rt("exec", running, "sh", "-c", "exit 7").rc == 7


def test_exec_sees_the_containers_rootfs(rt, running):
    out = rt.ok("exec", running, "cat", "/etc/passwd").out
    assert out.startswith("root:x:0:0")


def test_exec_user_env_and_cwd_flags(rt, running):
    out = rt.ok("exec", "--user", "1000:1001", "--env", "FOO=bar", "--env", "BAZ=qux", "--cwd", "/tmp",
                running, "sh", "-c", "id -u; id -g; echo $FOO $BAZ; pwd").out.split()
    assert out == ["1000", "1001", "bar", "qux", "/tmp"]


def test_exec_additional_gids(rt, running):
    out = rt.ok("exec", "--additional-gids", "10", "--additional-gids", "20", running,
                "cat", "/proc/self/status").out
    assert _status_fields(out)["Groups"].split() == ["10", "20"]


def test_exec_cap_flag_adds_a_capability(rt, running):
    plain = _status_fields(rt.ok("exec", running, "cat", "/proc/self/status").out)
    added = _status_fields(rt.ok("exec", "--cap", "CAP_SYS_ADMIN", running, "cat", "/proc/self/status").out)
    assert not int(plain["CapEff"], 16) & (1 << 21)
    assert int(added["CapEff"], 16) & (1 << 21)


def test_exec_no_new_privs_flag(rt, running, bundle):
    bundle.process["noNewPrivileges"] = False
    out = rt.ok("exec", "--no-new-privs", running, "cat", "/proc/self/status").out
    assert _status_fields(out)["NoNewPrivs"] == "1"


def test_exec_process_file(rt, running, testdir):
    process = {"args": ["sh", "-c", "echo from-file $X; id -u"], "cwd": "/", "env": ["X=1", "PATH=/bin"],
               "user": {"uid": 5, "gid": 5}, "terminal": False}
    path = testdir / "process.json"
    path.write_text(json.dumps(process))
    assert rt.ok("exec", "--process", str(path), running).out.split() == ["from-file", "1", "5"]


@pytest.mark.rootlet_only
def test_exec_invalid_process_file_names_the_field(rt, running, testdir):
    path = testdir / "process.json"
    path.write_text(json.dumps({"args": [], "cwd": "/"}))
    r = rt.fail("exec", "--process", str(path), running)
    assert "process.args" in r.err


def test_exec_detach_with_pid_file(rt, running, testdir):
    pid_file = testdir / "exec.pid"
    rt.ok("exec", "--detach", "--pid-file", str(pid_file), running, "sleep", "1000")
    pid = int(pid_file.read_text())
    assert pid_alive(pid)
    assert proc_status(pid)["Name"] == "sleep"
    init = rt.state(running)["pid"]
    assert os.stat(f"/proc/{pid}/ns/pid").st_ino == os.stat(f"/proc/{init}/ns/pid").st_ino


def test_exec_of_missing_program_fails_naming_it(rt, running):
    r = rt.fail("exec", running, "no-such-program")
    assert "no-such-program" in r.err


def test_exec_into_stopped_container_is_refused(rt, cid, bundle):
    bundle.args("true")
    rt.run_detached(cid, bundle)
    rt.wait_status(cid, "stopped")
    r = rt.fail("exec", cid, "true")
    assert "stopped" in r.err


@pytest.mark.rootlet_only
def test_exec_into_unknown_container_is_refused(rt, token):
    r = rt.fail("exec", f"nope-{token}", "true")
    assert f"nope-{token}" in r.err


def test_exec_process_is_killed_with_the_container(rt, running, testdir):
    pid_file = testdir / "exec.pid"
    rt.ok("exec", "--detach", "--pid-file", str(pid_file), running, "sleep", "1000")
    pid = int(pid_file.read_text())
    rt.ok("delete", "--force", running)
    wait_for(lambda: not pid_alive(pid), what="exec'd process to die with its pid namespace")


def test_exec_does_not_leak_fds(rt, running):
    out = rt.ok("exec", running, "ls", "/proc/self/fd").out.split()
    assert sorted(out) == ["0", "1", "2", "3"]  # 3 is ls's own directory fd
