"""System calls with the step that failed attached.

Execution code calls these instead of runtime._linux or os directly when a
failure must tell the user what was being done: `mount proc on /proc: EPERM`.
"""

from __future__ import annotations

import os

from runtime import _linux
from runtime.errors import RootletError


def fail(step: str, err: OSError) -> RootletError:
    return RootletError(err.strerror or str(err), step=step, errno=err.errno or 0)


def mount(source, target, fstype, flags: int, data=None, *, step: str) -> None:
    try:
        _linux.mount(source, target, fstype, flags, data)
    except OSError as err:
        raise fail(step, err) from None


def write_file(path: str, text: str, *, step: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as err:
        raise fail(step, err) from None
