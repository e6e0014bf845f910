"""Fixtures for the engine suite: containerd, podman and Docker on $ROOTLET.

Run: ``ROOTLET=/usr/sbin/runc pytest tests/engines`` (to check the tests
themselves), then ``pytest tests/engines`` (rootlet on PATH) or
``ROOTLET=/path/to/rootlet pytest tests/engines``; the ``ctr run`` timing is
printed in the summary at the end. Needs root; each engine's tests skip,
naming what is missing, when its binaries are not installed
(scripts/setup.sh installs them). ``-m 'not engines'`` leaves them out of a
run of the whole suite.

Every daemon starts here on private directories inside a Sandbox (see
helpers.py) and is stopped at the end of the session together with whatever
it left running; nothing is written to a default engine path of the host.
"""

from __future__ import annotations

import os
import pwd
import secrets
import signal
import stat

import pytest
from support.image import build_busybox_image
from support.runtime import resolve_runtime, runtime_spec

from engines.drivers import Containerd, Docker, Podman, Registry
from engines.helpers import Sandbox, engine_base, need_binaries, remove_cgroups, remove_tree

ROOTLESS_USER = "rootlet-test"

# Lines for the end-of-run summary (timings, what the sandbox caught).
REPORT: list[str] = []


def pytest_terminal_summary(terminalreporter):
    if REPORT:
        terminalreporter.write_sep("-", "engines")
        for line in REPORT:
            terminalreporter.write_line(line)


@pytest.fixture
def report():
    """report(line): print *line* in the summary at the end of the run."""
    return REPORT.append


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "engines: starts real container engines on $ROOTLET (tests/engines;"
        " deselect with -m 'not engines')")


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="engine tests start daemons and need root (euid 0)")
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here + os.sep):
            item.add_marker(pytest.mark.engines)
            if os.geteuid() != 0:
                item.add_marker(skip)


def _need(*names: str) -> None:
    try:
        need_binaries(*names)
    except LookupError as e:
        pytest.skip(f"not installed: {e} (scripts/setup.sh installs the engine packages)")


@pytest.fixture(scope="session")
def engine_runtime() -> str:
    """Absolute path of $ROOTLET (default: rootlet on PATH)."""
    path = resolve_runtime()
    if path is None:
        pytest.fail(f"runtime {runtime_spec()!r} ($ROOTLET) not found or not executable")
    return path


@pytest.fixture(scope="session")
def session_token() -> str:
    return secrets.token_hex(4)


@pytest.fixture(scope="session")
def engine_dir(session_token):
    """/tmp/rootlet-eng-*: every engine's private directories (a short path:
    podman refuses a runroot longer than 50 characters)."""
    base = engine_base("rootlet-eng-")
    yield base
    remove_tree(base)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def sandbox(engine_dir, cgroup_parent):
    """The engines' mount namespace; closed (everything in it killed) before
    the cgroups and directories are removed."""
    _need("unshare", "nsenter")
    box = Sandbox(engine_dir)
    # A SIGTERM (say, from `timeout`) must not leave daemons behind: make it
    # interrupt the run like Ctrl-C, which still tears the fixtures down.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield box
    finally:
        signal.signal(signal.SIGTERM, previous)
        box.close()
    writes = box.writes()
    if writes:
        REPORT.append(f"engines wrote (kept off the host by the sandbox): {', '.join(writes)}")


@pytest.fixture(scope="session")
def cgroup_parent(session_token):
    """A cgroup name for the engines' containers, removed at the end."""
    name = f"rootlet-engines-{session_token}"
    yield name
    remove_cgroups(name)


@pytest.fixture(scope="session")
def image(engine_dir, rootfs_template):
    """The busybox image, as an OCI archive and a docker-archive."""
    return build_busybox_image(rootfs_template, engine_dir / "image")


def _serving(daemon, sandbox, load_image, what: str):
    """Start `daemon`, load the test image into it, hand it to the tests;
    afterwards remove what they left, stop it and anything still naming its
    directory."""
    try:
        daemon.start()
        r = load_image()
        assert r.rc == 0, f"{what} failed:\n{r}"
        yield daemon
    finally:
        try:
            if daemon.proc is not None and daemon.proc.poll() is None:
                daemon.reset()
        except AssertionError:
            pass
        daemon.stop()
        sandbox.kill_mentioning(daemon.dir)


# -- containerd ----------------------------------------------------------------

@pytest.fixture(scope="module")
def containerd(sandbox, engine_dir, engine_runtime, cgroup_parent, image):
    """containerd with the busybox image imported into namespace *cgroup_parent*
    (ctr puts a container's cgroup at /<namespace>/<id>)."""
    _need("containerd", "ctr", "containerd-shim-runc-v2")
    ctd = Containerd(engine_dir, sandbox, engine_runtime, ns=cgroup_parent)
    yield from _serving(ctd, sandbox, lambda: ctd.ctr("image", "import", image.oci_archive, timeout=120),
                        "ctr image import")


@pytest.fixture
def ctd(containerd):
    """containerd, with every task and container of the test removed after it."""
    yield containerd
    containerd.reset()


@pytest.fixture(scope="module")
def registry(engine_dir):
    _need("docker-registry", "skopeo")
    reg = Registry(engine_dir)
    try:
        reg.start()
        yield reg
    finally:
        reg.stop()


# -- podman ---------------------------------------------------------------------

def _podman(sandbox, engine_dir, runtime, cgroup_parent, image, user):
    pm = Podman(engine_dir, sandbox, runtime, f"/{cgroup_parent}/podman", user=user)
    r = pm("load", "--input", image.docker_archive, timeout=120)
    assert r.rc == 0, f"podman load failed:\n{r}"
    return pm


@pytest.fixture(scope="module")
def podman_root(sandbox, engine_dir, engine_runtime, cgroup_parent, image):
    _need("podman", "conmon")
    pm = _podman(sandbox, engine_dir, engine_runtime, cgroup_parent, image, None)
    yield pm
    pm.reset()


@pytest.fixture(scope="session")
def rootless_runtime(engine_runtime) -> str:
    """$ROOTLET, checked to be executable by other users (every directory
    on the way searchable, the file readable and executable)."""
    path = os.path.realpath(engine_runtime)
    p = path
    while p != "/":
        mode = os.stat(p).st_mode
        need = stat.S_IXOTH | (stat.S_IROTH if p == path else 0)
        if mode & need != need:
            pytest.fail(f"{path} is not usable by other users ({p} has mode {oct(mode)});"
                        f" rootless podman runs it as {ROOTLESS_USER}")
        p = os.path.dirname(p)
    return engine_runtime


@pytest.fixture(scope="module")
def podman_rootless(sandbox, engine_dir, rootless_runtime, cgroup_parent, image):
    _need("podman", "conmon", "newuidmap", "newgidmap", "setpriv")
    try:
        user = pwd.getpwnam(ROOTLESS_USER)
    except KeyError:
        pytest.skip(f"user {ROOTLESS_USER!r} does not exist (scripts/setup.sh creates it)")
    with open("/etc/subuid") as f:
        if not any(line.startswith(f"{ROOTLESS_USER}:") for line in f):
            pytest.skip(f"{ROOTLESS_USER} has no /etc/subuid range (scripts/setup.sh adds it)")
    pm = _podman(sandbox, engine_dir, rootless_runtime, cgroup_parent, image, user)
    yield pm
    pm.reset()
    sandbox.kill_mentioning(pm.dir)  # its pause process (catatonit) outlives it


@pytest.fixture(params=["root", "rootless"])
def podman(request):
    """Each podman test runs twice: as root and rootless."""
    pm = request.getfixturevalue(f"podman_{request.param}")
    yield pm
    pm.reset()


# -- docker ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def dockerd(sandbox, engine_dir, engine_runtime, cgroup_parent, image):
    _need("dockerd", "containerd", "containerd-shim-runc-v2")
    dk = Docker(engine_dir, sandbox, engine_runtime, f"/{cgroup_parent}/docker")
    if dk.cli is None:
        pytest.skip("not installed: docker (the client; Debian package docker.io)")
    yield from _serving(dk, sandbox, lambda: dk.docker("load", "--input", image.docker_archive, timeout=120),
                        "docker load")


@pytest.fixture
def docker(dockerd):
    yield dockerd
    dockerd.reset()
