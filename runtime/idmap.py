"""Write a new user namespace's uid and gid maps (user_namespaces(7)).

Root writes /proc/PID/{uid,gid}_map itself. An unprivileged caller may write
only a one-line map of its own id (and must deny setgroups first); anything
else goes through the setuid helpers newuidmap/newgidmap, which check the
ranges against /etc/subuid and /etc/subgid.
"""

from __future__ import annotations

import os

from runtime.errors import RootletError
from runtime.spec.model import IdMapping
from runtime.sys.calls import write_file


def write_maps(pid: int, uid_mappings: list[IdMapping], gid_mappings: list[IdMapping]) -> None:
    privileged = os.geteuid() == 0
    own_uid = _only_own(uid_mappings, os.geteuid())
    own_gid = _only_own(gid_mappings, os.getegid())
    if privileged or own_gid:
        if not privileged:
            write_file(f"/proc/{pid}/setgroups", "deny", step="deny setgroups in the user namespace")
        _write(pid, "gid_map", gid_mappings)
    else:
        _helper("newgidmap", pid, gid_mappings)
    if privileged or own_uid:
        _write(pid, "uid_map", uid_mappings)
    else:
        _helper("newuidmap", pid, uid_mappings)


def _only_own(mappings: list[IdMapping], own: int) -> bool:
    return len(mappings) == 1 and mappings[0].host_id == own and mappings[0].size == 1


def _write(pid: int, name: str, mappings: list[IdMapping]) -> None:
    text = "".join(mapping.line() for mapping in mappings)
    write_file(f"/proc/{pid}/{name}", text, step=f"write {name}")


def _helper(program: str, pid: int, mappings: list[IdMapping]) -> None:
    args = [program, str(pid)]
    for mapping in mappings:
        args += [str(mapping.container_id), str(mapping.host_id), str(mapping.size)]
    path = _find(program)
    child = os.fork()
    if child == 0:
        try:
            os.execv(path, args)
        finally:
            os._exit(127)
    _, status = os.waitpid(child, 0)
    if status != 0:
        raise RootletError(f"{' '.join(args)} failed (status {os.waitstatus_to_exitcode(status)}); "
                           "check the caller's ranges in /etc/subuid and /etc/subgid",
                           step=f"run {program}")


def _find(program: str) -> str:
    for directory in ("/usr/bin", "/bin", "/usr/local/bin", "/usr/sbin"):
        path = f"{directory}/{program}"
        if os.access(path, os.X_OK):
            return path
    raise RootletError(f"{program} not found: install the uidmap package", step=f"run {program}")
