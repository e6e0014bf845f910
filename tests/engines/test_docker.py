"""Docker running containers on $ROOTLET: ``dockerd --add-runtime
rootlet=$ROOTLET`` on private data-root, exec-root, pidfile and socket, with
no iptables and no bridge, managing its own containerd; containers run with
``--runtime rootlet --network none``. The image comes from ``docker load`` of
the docker-archive the session builds.
"""

from __future__ import annotations

import json
import os

import pytest
from support.runtime import cmdline, wait_for

from engines.helpers import check


@pytest.fixture
def name(token) -> str:
    return f"dk-{token}"


def inspect(docker, name: str, fmt: str) -> str:
    return check(docker.docker("inspect", "--format", fmt, name)).out.strip()


def start(docker, image, name: str, *cmd: str) -> None:
    check(docker.docker("run", "--detach", "--name", name, *docker.run_flags(),
                        image.name, *cmd))
    wait_for(lambda: inspect(docker, name, "{{.State.Status}}") == "running", timeout=20,
             interval=0.1, what=f"{name} to run")


def test_daemon_knows_rootlet(docker, engine_runtime, image):
    info = json.loads(check(docker.docker("info", "--format", "{{json .Runtimes}}")).out)
    assert info["rootlet"]["path"] == engine_runtime, info
    images = check(docker.docker("images", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}"))
    assert f"{image.config_digest} {image.name}" in images.out.splitlines(), images


def test_run_rm_output_and_exit_code(docker, image, name):
    r = docker.docker("run", "--rm", "--name", name, *docker.run_flags(), image.name,
                      "sh", "-c", "echo out-$((6*7)); echo err-line >&2; exit 3")
    assert r.rc == 3, f"the container's exit code must be docker's:\n{r}"
    assert r.out.splitlines() == ["out-42"], r
    assert "err-line" in r.err, r
    assert name not in check(docker.docker("ps", "--all", "--format", "{{.Names}}")).out.split()


def test_run_uses_rootlet(docker, image, name):
    """The container's init was started by the runtime docker was given."""
    start(docker, image, name, "sleep", "1000")
    assert inspect(docker, name, "{{.HostConfig.Runtime}}") == "rootlet"
    pid = int(inspect(docker, name, "{{.State.Pid}}"))
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[:2] == [b"sleep", b"1000"]


def test_exec(docker, image, name):
    start(docker, image, name, "sleep", "1000")
    r = docker.docker("exec", name, "sh", "-c",
                      "tr '\\0' ' ' < /proc/1/cmdline; echo; echo exec-err >&2; exit 4")
    assert r.rc == 4, r
    assert r.out.strip() == "sleep 1000", f"exec did not join the container:\n{r}"
    assert "exec-err" in r.err, r


@pytest.mark.parametrize("script,grace,expected", [
    ("trap 'exit 42' TERM; while :; do sleep 0.1; done", "10", 42),
    ("exec sleep 1000", "1", 137),  # pid 1 ignores SIGTERM: SIGKILL after --time
])
def test_stop(docker, image, name, script, grace, expected):
    start(docker, image, name, "sh", "-c", script)
    check(docker.docker("stop", "--time", grace, name))
    assert inspect(docker, name, "{{.State.Status}} {{.State.ExitCode}}") == f"exited {expected}"


def test_dockerd_runs_its_own_containerd(docker):
    """No system containerd socket exists in the sandbox, so dockerd started
    (and manages) a containerd of its own under its exec-root."""
    exec_root = str(docker.dir / "exec")
    managed = [p for p in docker.sandbox.processes()
               if (args := cmdline(p)) and os.path.basename(args[0]) == "containerd"
               and any(a.startswith(exec_root) for a in args)]
    assert managed, "no containerd started by dockerd"
