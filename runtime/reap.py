"""Waiting for processes that need not be our children."""

from __future__ import annotations

import os

from runtime import _linux


def kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        return
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        wait_gone(pid, 5.0)


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait until `pid` exits (it need not be our child); False on timeout."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except OSError as err:
        if err.errno == 22:  # EINVAL: the pid is still referenced but its process is reaped
            return True
        raise
    try:
        return bool(_linux.wait_readable([pidfd], int(timeout * 1000)))
    finally:
        os.close(pidfd)
