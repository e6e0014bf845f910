"""Shared fixtures for the real-container suites.

The runtime under test is ``$ROOTLET`` (a path or a name looked up on PATH,
default ``rootlet``); set ``ROOTLET=runc`` to check the tests themselves
against runc. Fixtures here are lazy: unit tests that do not request them are
unaffected.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from support.bundle import Bundle, build_rootfs_template  # noqa: E402
from support.runtime import (  # noqa: E402
    Runtime,
    host_mounts_mentioning,
    pids_matching,
    resolve_runtime,
    runtime_name,
    runtime_spec,
)

_CONTAINER_DIRS = ("integration", "rootless")


def pytest_collection_modifyitems(config, items):
    name = runtime_name()
    not_rootlet = pytest.mark.skip(
        reason=f"rootlet-specific check; runtime under test is {name!r}"
    )
    not_root = pytest.mark.skip(reason="real-container tests need root (euid 0)")
    here = Path(__file__).parent
    for item in items:
        if "rootlet_only" in item.keywords and name != "rootlet":
            item.add_marker(not_rootlet)
        runc_only = item.get_closest_marker("runc_only")
        if runc_only is not None and name == "rootlet":
            item.add_marker(pytest.mark.skip(reason=f"checks runc's mechanism: {runc_only.args[0]}"))
        try:
            rel = Path(str(item.fspath)).relative_to(here)
        except ValueError:
            continue
        if rel.parts and rel.parts[0] in _CONTAINER_DIRS:
            if rel.parts[0] == "rootless":
                item.add_marker(pytest.mark.rootless)
            if os.geteuid() != 0:
                item.add_marker(not_root)


@pytest.fixture(scope="session")
def runtime_binary() -> str:
    path = resolve_runtime()
    if path is None:
        pytest.fail(f"runtime {runtime_spec()!r} ($ROOTLET) not found or not executable")
    return path


def _remove_tree(path: Path) -> None:
    if os.environ.get("ROOTLET_KEEP_TMP"):
        return
    leaked = host_mounts_mentioning(str(path))
    if leaked:  # never recurse into something still mounted
        sys.stderr.write(f"\nnot removing {path}: mounts left behind: {leaked}\n")
        return
    shutil.rmtree(path, ignore_errors=True)


def _tmp_parent() -> str:
    """$ROOTLET_TEST_TMPDIR, else /dev/shm (tmpfs: creating the ~400 busybox
    applet links per bundle is ~100x faster than on ext4), else /tmp."""
    chosen = os.environ.get("ROOTLET_TEST_TMPDIR")
    if chosen:
        return chosen
    try:
        with open("/proc/self/mountinfo") as f:
            if any(line.split()[4] == "/dev/shm" and " - tmpfs " in line for line in f):
                if os.access("/dev/shm", os.W_OK | os.X_OK):
                    return "/dev/shm"
    except OSError:
        pass
    return "/tmp"


@pytest.fixture(scope="session")
def work_base():
    """A 0755 directory for bundles: pytest's own tmp dirs are 0700, which
    user-namespaced and rootless containers cannot traverse."""
    base = Path(tempfile.mkdtemp(prefix="rootlet-it-", dir=_tmp_parent()))
    os.chmod(base, 0o755)
    yield base
    _remove_tree(base)


@pytest.fixture(scope="session")
def rootfs_template(work_base) -> Path:
    return build_rootfs_template(work_base / "rootfs-template")


@pytest.fixture
def token() -> str:
    return secrets.token_hex(5)


@pytest.fixture
def testdir(work_base):
    d = Path(tempfile.mkdtemp(prefix="t-", dir=work_base))
    os.chmod(d, 0o755)
    yield d
    _remove_tree(d)


@pytest.fixture
def cid(token) -> str:
    return f"ct-{token}"


@pytest.fixture
def make_bundle(testdir, rootfs_template):
    """Factory: a fresh bundle (default config, not yet written). At teardown
    any process still carrying one of the bundles' tokens is killed, so a
    broken runtime cannot pile up containers across the session."""
    tokens = []

    def make(token: str | None = None) -> Bundle:
        b = Bundle(testdir, rootfs_template, token or secrets.token_hex(5))
        tokens.append(b.token)
        return b

    yield make
    for t in tokens:
        for pid in pids_matching(t):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def bundle(make_bundle, token) -> Bundle:
    return make_bundle(token)


@pytest.fixture
def rt(runtime_binary, testdir):
    """The runtime with a private --root; everything left is force-deleted."""
    runtime = Runtime(runtime_binary, testdir / "state")
    yield runtime
    runtime.cleanup()
