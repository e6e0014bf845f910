"""Fixtures for running the runtime as the unprivileged user rootlet-test.

The user is NOT created here: the CI setup script creates it (with
/etc/subuid and /etc/subgid ranges). Without it these tests are skipped.
"""

from __future__ import annotations

import os
import pwd
import signal
import stat
import tempfile
from pathlib import Path

import pytest
from support.bundle import Bundle, rootless_config
from support.runtime import Runtime, pids_matching

USER = "rootlet-test"


@pytest.fixture(scope="session")
def rootless_user():
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        pytest.skip(f"user {USER!r} does not exist (`id {USER}` fails); the CI setup "
                    f"script creates it with /etc/subuid and /etc/subgid ranges")
    return pw


@pytest.fixture(scope="session")
def rootless_binary(runtime_binary):
    path = os.path.realpath(runtime_binary)
    p = path
    while p != "/":
        mode = os.stat(p).st_mode
        need = stat.S_IXOTH | (stat.S_IROTH if p == path else 0)
        if mode & need != need:
            pytest.skip(f"{path} is not usable by other users ({p} mode {oct(mode)})")
        p = os.path.dirname(p)
    return runtime_binary


@pytest.fixture
def userdir(testdir, rootless_user):
    """A directory owned by the user, inside the 0755 test tree."""
    d = Path(tempfile.mkdtemp(prefix="user-", dir=testdir))
    os.chmod(d, 0o755)
    os.chown(d, rootless_user.pw_uid, rootless_user.pw_gid)
    return d


@pytest.fixture
def urt(rootless_binary, rootless_user, userdir, token):
    """The runtime, run as rootlet-test through setpriv."""
    pw = rootless_user
    xdg = userdir / "xdg"
    root = userdir / "state"
    for d in (xdg, root):
        d.mkdir(mode=0o700)
        os.chown(d, pw.pw_uid, pw.pw_gid)
    prefix = [
        "setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups",
        "env", f"HOME={pw.pw_dir}", f"XDG_RUNTIME_DIR={xdg}", f"USER={pw.pw_name}",
        f"LOGNAME={pw.pw_name}",
    ]
    runtime = Runtime(rootless_binary, root, prefix=prefix, cwd=userdir)
    yield runtime
    runtime.cleanup()
    for pid in pids_matching(token):  # last resort; never expected
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def ubundle(userdir, rootfs_template, rootless_user, token):
    """A bundle owned by the user, config per `spec --rootless` semantics
    (files the test adds later stay root-owned, which is fine for reading)."""
    pw = rootless_user
    b = Bundle(userdir, rootfs_template, token)
    b.config = rootless_config(pw.pw_uid, pw.pw_gid)
    b.chown_all(pw.pw_uid, pw.pw_gid)
    return b
