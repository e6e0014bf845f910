"""The container side of a terminal (config.md "process.terminal").

The pty comes from the container's own devpts instance, so the master is
opened at <root>/dev/pts/ptmx and the slave through TIOCGPTPEER, never by a
path in the host's /dev/pts. The master goes to whoever listens on
--console-socket (SCM_RIGHTS, as runc does); the slave becomes stdio, the
controlling terminal and, for a container's init, /dev/console.
"""

from __future__ import annotations

import os

from runtime import _linux
from runtime.errors import RootletError
from runtime.sys import constants as k
from runtime.sys.calls import fail, mount
from runtime.sys.paths import ensure_in_root, fd_path


def connect_console_socket(path: str) -> int:
    """A connection to the --console-socket listener, for attach()."""
    try:
        return _linux.unix_connect(path)
    except OSError as err:
        raise RootletError(f"connect to --console-socket {path}: {err.strerror}") from None


def attach(console_fd: int, root_fd: int, size: tuple[int, int] | None, *, bind_console: bool) -> None:
    """Make a pty this process's terminal; closes `console_fd`."""
    if console_fd < 0:
        raise RootletError("process.terminal needs --console-socket", path="process.terminal")
    master, slave = _open_pair(root_fd, size)
    try:
        if bind_console:
            console = ensure_in_root(root_fd, "/dev/console", is_dir=False)
            try:
                mount(fd_path(slave), fd_path(console), None, k.MS_BIND, step="bind the pty on /dev/console")
            finally:
                os.close(console)
        try:
            _linux.send_message(console_fd, b"console", master)
        except OSError as err:
            raise fail("send the pty master to --console-socket", err) from None
    finally:
        os.close(master)
        os.close(console_fd)
    for target in (0, 1, 2):
        os.dup2(slave, target)
    os.close(slave)
    try:
        _linux.set_controlling_terminal(0)
    except OSError as err:
        raise fail("make the pty the controlling terminal", err) from None


def _open_pair(root_fd: int, size: tuple[int, int] | None) -> tuple[int, int]:
    try:
        ptmx = ensure_in_root(root_fd, "/dev/pts/ptmx", is_dir=False)
        try:
            master = os.open(fd_path(ptmx), os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        finally:
            os.close(ptmx)
        _linux.unlock_pty(master)
        slave = _linux.open_pty_peer(master, os.O_RDWR | os.O_NOCTTY)
        if size:
            _linux.set_window_size(slave, size[0], size[1])
    except OSError as err:
        raise fail("open a pty in the container's devpts", err) from None
    return master, slave

