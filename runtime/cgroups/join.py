"""Putting a new process (a container's init, or an exec'd process) in the
container's cgroup without the kernel's global lock.

Moving a process in by pid, as runc does, takes the threadgroup lock that
all cgroup hierarchies share, and its first writer waits for an RCU grace
period: 5-15 ms here, most of a container start. A child born in the cgroup2
directory (clone3 CLONE_INTO_CGROUP) never takes it, and neither does a
single-threaded process that moves itself through the v1 `tasks` files. So
fork() makes the child in the cgroup2 directory, and the child calls enter()
before anything else, while it is still the host's root.

`dirs` is the container's cgroup as its state records it: a hierarchy key
(a v1 controller list, or "" for cgroup2) to the directory.
"""

from __future__ import annotations

import os

from runtime import _linux
from runtime.errors import RootletError
from runtime.sys import constants as k


def fork(dirs: dict[str, str], namespace_flags: int = 0) -> tuple[int, bool]:
    """clone3() a child in the new namespaces of `namespace_flags` and, when
    the kernel lets us, in the cgroup2 directory. Returns (pid, whether the
    child was born in that directory), pid 0 in the child."""
    unified = dirs.get("")
    if unified is not None:
        try:
            fd = os.open(unified, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            fd = -1  # enter() reports what is wrong with it
        if fd >= 0:
            try:
                return _linux.clone_process(namespace_flags, fd), True
            except OSError:
                pass  # the kernel refuses this cgroup to clone3: enter() moves the child
            finally:
                os.close(fd)
    return _linux.clone_process(namespace_flags), False


def enter(dirs: dict[str, str], born_in_unified: bool) -> None:
    """Move the calling process, single-threaded and not yet in a user
    namespace, into every hierarchy of the cgroup."""
    for key, directory in dirs.items():
        if key:
            name = "tasks"  # "0": the calling thread, which is the whole process
        elif born_in_unified:
            continue
        else:
            name = "cgroup.procs"
        try:
            _linux.write_at(k.AT_FDCWD, f"{directory}/{name}", "0")
        except OSError as err:
            raise RootletError(f"join cgroup {directory}: {err.strerror}", errno=err.errno or 0) from None
