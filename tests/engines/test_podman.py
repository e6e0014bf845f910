"""podman running containers on $ROOTLET (``podman --runtime``), as root and
rootless (as the user rootlet-test), each with its own private storage (vfs),
run dir and tmpdir, the cgroupfs manager and ``--network none``. The image is
loaded with ``podman load`` from the docker-archive the session builds.
"""

from __future__ import annotations

import pytest
from support.runtime import wait_for

from engines.helpers import check


@pytest.fixture
def name(token) -> str:
    return f"pm-{token}"


def inspect(podman, name: str, fmt: str) -> str:
    return check(podman("inspect", "--format", fmt, name)).out.strip()


def start(podman, image, name: str, *cmd: str) -> None:
    check(podman("run", "--detach", "--name", name, *podman.run_flags(), image.name, *cmd))
    wait_for(lambda: inspect(podman, name, "{{.State.Status}}") == "running", timeout=20,
             interval=0.1, what=f"{name} to run")


def test_image_loaded(podman, image):
    ids = check(podman("images", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}"))
    assert f"{image.config_digest} {image.name}" in ids.out.splitlines(), ids


def test_run_rm_output_and_exit_code(podman, image, name):
    r = podman("run", "--rm", "--name", name, *podman.run_flags(), image.name,
               "sh", "-c", "echo out-$((6*7)); echo err-line >&2; exit 3")
    assert r.rc == 3, f"the container's exit code must be podman's:\n{r}"
    assert r.out.splitlines() == ["out-42"], r
    assert "err-line" in r.err, r
    assert name not in check(podman("ps", "--all", "--format", "{{.Names}}")).out.split()


def test_exec(podman, image, name):
    start(podman, image, name, "sleep", "1000")
    r = podman("exec", name, "sh", "-c",
               "tr '\\0' ' ' < /proc/1/cmdline; echo; echo exec-err >&2; exit 4")
    assert r.rc == 4, r
    assert r.out.strip() == "sleep 1000", f"exec did not join the container:\n{r}"
    assert "exec-err" in r.err, r


def test_ps(podman, image, name):
    start(podman, image, name, "sleep", "1000")
    r = check(podman("ps", "--format", "{{.Names}} {{.Status}}"))
    mine = [line for line in r.out.splitlines() if line.split()[0] == name]
    assert mine and mine[0].split()[1] == "Up", r
    top = check(podman("top", name, "args"))
    assert "sleep 1000" in top.out, top


@pytest.mark.parametrize("script,grace,expected", [
    ("trap 'exit 42' TERM; while :; do sleep 0.1; done", "10", 42),
    ("exec sleep 1000", "1", 137),  # pid 1 ignores SIGTERM: SIGKILL after --time
])
def test_stop(podman, image, name, script, grace, expected):
    start(podman, image, name, "sh", "-c", script)
    check(podman("stop", "--time", grace, name))
    assert inspect(podman, name, "{{.State.Status}} {{.State.ExitCode}}") == f"exited {expected}"


def test_inspect_exit_code(podman, image, name):
    r = podman("run", "--name", name, *podman.run_flags(), image.name, "sh", "-c", "exit 5")
    assert r.rc == 5, r
    assert inspect(podman, name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 5"
    check(podman("rm", name))
