"""containerd + ctr running containers on $ROOTLET (``ctr run --runc-binary``).

One containerd serves the session (see conftest.py); each test removes its
tasks and containers. Long-running tasks are started with ``ctr run -d``;
everything else uses ``ctr run --rm`` and checks the output and exit code
the user sees.
"""

from __future__ import annotations

import json
import subprocess
import tempfile

import pytest
from support.runtime import cmdline, wait_for

from engines.drivers import run_in_pty, skopeo_push
from engines.helpers import check, kill_all, with_descendants

MiB = 1024 * 1024


@pytest.fixture
def cid(token) -> str:
    return f"ctr-{token}"


def cgroup_of(pid: int, controller: str) -> str:
    """The v1 cgroup path of *pid* in *controller*'s hierarchy (or the v2 path)."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _n, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in controllers.split(","):
                return path
    raise AssertionError(f"no {controller} cgroup for pid {pid}")


def cgroup_file(pid: int, controller: str, name: str) -> str:
    path = cgroup_of(pid, controller)
    assert path != "/", f"pid {pid} is in the root {controller} cgroup (no container cgroup)"
    with open(f"/sys/fs/cgroup/{controller}{path}/{name}") as f:
        return f.read().strip()


def test_run_output_and_exit_code(ctd, image, cid):
    r = ctd.run_rm(image.name, cid, "sh", "-c",
                   "echo out-$((6*7)); echo err-line >&2; exit 7")
    assert r.rc == 7, f"the container's exit code must be ctr's:\n{r}"
    assert r.out.splitlines() == ["out-42"], r
    assert "err-line" in r.err, r
    assert cid not in ctd.tasks()
    assert cid not in ctd.ctr_ok("container", "ls", "-q").out.split(), "--rm left it"


def test_run_with_tty(ctd, image, cid):
    r = ctd.run_rm(image.name, cid, "sh", "-c",
                   "tty; [ -t 0 ] && [ -t 1 ] && echo both-ttys; exit 3", tty=True)
    assert r.rc == 3, r
    assert "/dev/pts/0" in r.out, r
    assert "both-ttys" in r.out, r


def test_task_exec(ctd, image, cid):
    ctd.start_detached(image.name, cid, "sleep", "1000")
    r = ctd.ctr("task", "exec", "--exec-id", "e1", cid, "sh", "-c",
                "tr '\\0' ' ' < /proc/1/cmdline; echo; echo exec-err >&2; exit 5")
    assert r.rc == 5, r
    assert r.out.strip() == "sleep 1000", f"exec did not join the container:\n{r}"
    assert "exec-err" in r.err, r
    t = run_in_pty(ctd.ctr_argv("task", "exec", "-t", "--exec-id", "e2", cid,
                                "sh", "-c", "tty; exit 4"))
    assert t.rc == 4, t
    assert "/dev/pts/" in t.out, t
    assert ctd.status(cid) == "RUNNING"


@pytest.mark.parametrize("signal,script,expected", [
    ("SIGTERM", "trap 'exit 42' TERM; echo ready; while :; do sleep 0.1; done", 42),
    ("SIGKILL", "echo ready; exec sleep 1000", 137),
])
def test_task_kill(ctd, image, cid, signal, script, expected):
    """``ctr task kill`` reaches the container's init; the foreground
    ``ctr run --rm`` returns the status it died with."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(
            ctd.ctr_argv("run", "--rm", *ctd.runtime_flags(), image.name, cid,
                         "sh", "-c", script),
            stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
        try:
            def ready():
                if p.poll() is not None:
                    err.seek(0)
                    raise AssertionError(f"ctr run exited {p.returncode}: {err.read()!r}")
                out.seek(0)
                return b"ready" in out.read()

            wait_for(ready, timeout=30, interval=0.05, what="the container to start")
            check(ctd.ctr("task", "kill", "--signal", signal, cid))
            rc = p.wait(timeout=30)
            err.seek(0)
            assert rc == expected, f"ctr run exited {rc}: {err.read()!r}"
        finally:
            if p.poll() is None:
                kill_all(with_descendants({p.pid}))
                p.wait()


def test_task_ps(ctd, image, cid):
    init = ctd.start_detached(image.name, cid, "sh", "-c", "sleep 1001 & exec sleep 1000")
    pids: set[int] = set()

    def listed():
        nonlocal pids
        lines = ctd.ctr_ok("task", "ps", cid).out.splitlines()
        assert lines and lines[0].split()[0] == "PID", lines
        pids = {int(line.split()[0]) for line in lines[1:]}
        return len(pids) >= 2

    wait_for(listed, timeout=10, interval=0.1, what="two processes in ctr task ps")
    assert init in pids, (init, pids)
    assert [cmdline(p) for p in sorted(pids - {init})] == [["sleep", "1001"]], pids


def test_task_pause_resume(ctd, image, cid):
    pid = ctd.start_detached(image.name, cid, "sleep", "1000")
    check(ctd.ctr("task", "pause", cid))
    assert ctd.status(cid) == "PAUSED"
    assert cgroup_file(pid, "freezer", "freezer.state") == "FROZEN"
    check(ctd.ctr("task", "resume", cid))
    assert ctd.status(cid) == "RUNNING"
    assert cgroup_file(pid, "freezer", "freezer.state") == "THAWED"
    r = ctd.ctr("task", "exec", "--exec-id", "after", cid, "echo", "thawed")
    assert r.rc == 0 and r.out.strip() == "thawed", r


def test_task_metrics(ctd, image, cid):
    ctd.start_detached(image.name, cid, "sh", "-c", "sleep 1001 & exec sleep 1000")
    wait_for(lambda: len(ctd.ctr_ok("task", "ps", cid).out.splitlines()) >= 3, timeout=10,
             interval=0.1, what="both processes")
    r = check(ctd.ctr("task", "metrics", "--format", "json", cid))
    metrics = json.loads(r.out)
    assert metrics["pids"]["current"] == 2, metrics.get("pids")
    assert metrics["memory"]["usage"]["usage"] > 0, metrics.get("memory")
    table = check(ctd.ctr("task", "metrics", cid)).out
    assert "pids.current" in table and "memory.usage_in_bytes" in table, table


def test_memory_limit(ctd, image, cid):
    limit = 64 * MiB
    pid = ctd.start_detached(image.name, cid, "sleep", "1000",
                             flags=("--memory-limit", str(limit)))
    assert int(cgroup_file(pid, "memory", "memory.limit_in_bytes")) == limit
    metrics = json.loads(check(ctd.ctr("task", "metrics", "--format", "json", cid)).out)
    assert metrics["memory"]["usage"]["limit"] == limit, metrics["memory"]


def test_oom_kill_exit_137(ctd, image, cid):
    """busybox tail keeps all of an endless newline-free stream in memory: the
    cgroup's OOM killer ends it with SIGKILL, status 128+9."""
    r = ctd.run_rm(image.name, cid, "tail", "/dev/zero",
                   flags=("--memory-limit", str(32 * MiB)), timeout=60)
    assert r.rc == 137, r


def test_seccomp_default_profile(ctd, image, cid):
    """Creating a user namespace needs no capability, only containerd's
    default seccomp profile forbids it (unshare without CAP_SYS_ADMIN)."""
    script = "grep ^Seccomp: /proc/self/status; unshare -U true && echo unshared"
    plain = ctd.run_rm(image.name, cid + "-plain", "sh", "-c", script)
    assert plain.rc == 0 and "unshared" in plain.out, f"control (no profile):\n{plain}"
    assert "Seccomp:\t0" in plain.out, plain
    r = ctd.run_rm(image.name, cid, "sh", "-c", script, flags=("--seccomp",))
    assert "Seccomp:\t2" in r.out, f"no seccomp filter installed:\n{r}"
    assert "unshared" not in r.out and r.rc != 0, r
    assert "Operation not permitted" in r.err, r


def test_seccomp_custom_profile(ctd, image, cid, engine_dir):
    profile = engine_dir / f"seccomp-{cid}.json"
    profile.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": 1}],
    }))
    r = ctd.run_rm(image.name, cid, "sh", "-c",
                   "echo data > /tmp/file && cat /tmp/file && mkdir /tmp/dir",
                   flags=("--seccomp", "--seccomp-profile", str(profile)))
    assert r.out.strip() == "data", r
    assert r.rc == 1 and "Operation not permitted" in r.err, r


def test_registry_push_pull_run(ctd, registry, image, cid, engine_dir):
    """docker-registry on 127.0.0.1 <- skopeo copy <- ctr image pull --plain-http."""
    ref = f"{registry.address}/rootlet/busybox:latest"
    work = engine_dir / "skopeo"
    work.mkdir(exist_ok=True)
    try:
        check(skopeo_push(image.oci_archive, ref, work))
        check(ctd.ctr("image", "pull", "--plain-http", ref, timeout=120))
        images = ctd.ctr_ok("image", "ls", "-q").out.split()
        assert ref in images, images
        r = ctd.run_rm(ref, cid, "sh", "-c", "echo pulled-and-ran; exit 9")
        assert r.rc == 9 and r.out.strip() == "pulled-and-ran", r
    except AssertionError as e:
        raise AssertionError(f"{e}\n--- docker-registry log ---\n{registry.log_tail()}") from None
    finally:
        ctd.ctr("image", "rm", ref)
