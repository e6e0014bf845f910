"""Joining and creating namespaces (config-linux.md "Namespaces").

Shared by a container's init (new namespaces, or existing ones by `path`)
and by `exec` (every namespace of the running container).
"""

from __future__ import annotations

import os

from runtime import _linux
from runtime.sys import constants as k
from runtime.sys.calls import fail

FLAGS = {
    "user": k.CLONE_NEWUSER, "mount": k.CLONE_NEWNS, "pid": k.CLONE_NEWPID, "network": k.CLONE_NEWNET,
    "ipc": k.CLONE_NEWIPC, "uts": k.CLONE_NEWUTS, "cgroup": k.CLONE_NEWCGROUP, "time": k.CLONE_NEWTIME,
}
# setns(2) order: the user namespace grants the right to join the others;
# the mount namespace changes what paths mean, so it comes last.
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")
# /proc/PID/ns/<name> for each kind
PROC_NAMES = {
    "user": "user", "mount": "mnt", "pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts",
    "cgroup": "cgroup", "time": "time",
}


def join(kind: str, path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise fail(f"open {kind} namespace {path}", err) from None
    try:
        _linux.join_namespace(fd, FLAGS[kind])
    except OSError as err:
        raise fail(f"join {kind} namespace {path}", err) from None
    finally:
        os.close(fd)


def join_all(paths: dict[str, str]) -> None:
    for kind in JOIN_ORDER:
        if paths.get(kind):
            join(kind, paths[kind])


def born_at_clone(wanted: dict[str, str]) -> list[str]:
    """The new namespaces the init can be born in (clone3 flags), which saves
    an unshare and, with a pid namespace, the second fork. None when a user
    namespace is involved (the init enters its cgroup as the host's root
    first, and new namespaces must belong to the user namespace) or a new
    time namespace (its offsets must be written before any process is in it);
    never the cgroup namespace, rooted at the cgroup the init enters once born."""
    if "user" in wanted or wanted.get("time") == "":
        return []
    return [kind for kind in ("mount", "uts", "ipc", "pid", "network") if wanted.get(kind) == ""]


def flags_of(kinds: list[str]) -> int:
    flags = 0
    for kind in kinds:
        flags |= FLAGS[kind]
    return flags


def create(kinds: list[str]) -> None:
    flags = flags_of(kinds)
    if not flags:
        return
    try:
        _linux.unshare_namespaces(flags)
    except OSError as err:
        raise fail(f"create {', '.join(kinds)} namespaces", err) from None


def of_process(pid: int) -> dict[str, str]:
    """The namespaces of `pid` that differ from ours, as paths to join."""
    found = {}
    for kind, name in PROC_NAMES.items():
        theirs = f"/proc/{pid}/ns/{name}"
        try:
            if os.stat(theirs).st_ino != os.stat(f"/proc/self/ns/{name}").st_ino:
                found[kind] = theirs
        except FileNotFoundError:
            continue  # a kernel without this namespace type
    return found
