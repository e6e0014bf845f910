"""Which file descriptors reach the container (runtime-linux.md "File descriptors").

Only stdio and the fds the caller hands on (--preserve-fds N: 3..3+N-1, and
LISTEN_FDS for socket activation) may survive execve. rootlet's own fds (the
sync channel, exec.fifo, the console socket) are moved above that range so
they cannot shadow a passed fd, and every fd from there up, including ones
a careless caller leaked to us, is marked close-on-exec in one close_range(2).
"""

from __future__ import annotations

import os

from runtime import _linux
from runtime.sys import constants as k


def seal(passed: int, channel, own_fds: list[int]) -> list[int]:
    """Returns `own_fds` renumbered; `channel` (a runtime.sync.Channel) is moved in place."""
    floor = 3 + passed
    channel.fd = _lift(channel.fd, floor)
    moved = [_lift(fd, floor) if fd >= 0 else fd for fd in own_fds]
    for fd in range(3, floor):
        try:
            os.set_inheritable(fd, True)
        except OSError:
            pass  # the caller promised more fds than it passed
    _linux.close_range(floor, 0xFFFFFFFF, k.CLOSE_RANGE_CLOEXEC)
    return moved


def _lift(fd: int, floor: int) -> int:
    if fd >= floor:
        return fd
    new = _linux.dup_above(fd, floor)
    os.close(fd)
    return new
