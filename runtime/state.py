"""Where a container's state lives, how it is locked, and what its status is.

Layout: <root>/<id>/state.json (written atomically: temp file, then
rename; not fsynced, as it describes processes that do not outlive a
reboot) and <root>/<id>/exec.fifo while the container is `created`. Every
command that reads or changes a container holds flock() on its directory, so
commands on one id are serialized; `state` and `list` take a shared lock.

Status is derived, never stored (runtime.md "State"): init alive and
exec.fifo present -> created; alive without it -> running; its cgroup
frozen -> paused; gone or a zombie -> stopped. The init's start time,
recorded at create, tells a reused pid from ours.
"""

from __future__ import annotations

import os
import time

from runtime import _linux, jsonio
from runtime.errors import ContainerExists, ContainerNotFound, RootletError
from runtime.sys import constants as k

STATE_FILE = "state.json"
FIFO = "exec.fifo"
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def check_id(container_id: str) -> None:
    if not container_id or container_id in (".", "..") or not set(container_id) <= _ID_CHARS:
        raise RootletError(f"invalid container id {container_id!r}: use letters, digits and _+-.")


class ContainerDir:
    """An open, locked state directory of one container."""

    __slots__ = ("root", "id", "path", "fd")

    def __init__(self, root: str, container_id: str, fd: int):
        self.root = root
        self.id = container_id
        self.path = f"{root}/{container_id}"
        self.fd = fd

    @classmethod
    def make(cls, root: str, container_id: str) -> ContainerDir:
        """Create and lock the directory of a new container; a duplicate id fails."""
        check_id(container_id)
        os.makedirs(root, mode=0o711, exist_ok=True)
        try:
            os.mkdir(f"{root}/{container_id}", 0o711)
        except FileExistsError:
            raise ContainerExists(container_id) from None
        fd = os.open(f"{root}/{container_id}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        _linux.flock(fd, k.LOCK_EX)
        return cls(root, container_id, fd)

    @classmethod
    def open(cls, root: str, container_id: str, *, shared: bool = False) -> ContainerDir:
        check_id(container_id)
        try:
            fd = os.open(f"{root}/{container_id}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ContainerNotFound(container_id) from None
        _linux.flock(fd, k.LOCK_SH if shared else k.LOCK_EX)
        # A create that failed, or a delete, may have removed it while we waited.
        if not os.path.exists(f"{root}/{container_id}/{STATE_FILE}"):
            os.close(fd)
            raise ContainerNotFound(container_id)
        return cls(root, container_id, fd)

    def load(self) -> dict:
        return jsonio.load_file(f"{self.path}/{STATE_FILE}", what=f"state of {self.id}")

    def save(self, state: dict) -> None:
        temporary = f"{self.path}/.{STATE_FILE}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, jsonio.dumps(state).encode())
        finally:
            os.close(fd)
        os.rename(temporary, f"{self.path}/{STATE_FILE}")

    def remove(self) -> None:
        """Delete the directory and everything in it; the lock goes with it."""
        for name in os.listdir(self.path):
            os.unlink(f"{self.path}/{name}")
        os.rmdir(self.path)
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> ContainerDir:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat, or None if the pid is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        return None
    fields = text[text.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def init_alive(state: dict) -> bool:
    pid = state.get("pid", 0)
    return pid > 0 and process_start_time(pid) == state.get("init_start")


def status(directory: ContainerDir, state: dict) -> str:
    if not init_alive(state):
        return "stopped"
    if state.get("cgroup"):
        from runtime import cgroups

        if cgroups.paused(state["cgroup"]):
            return "paused"
    if os.path.exists(f"{directory.path}/{FIFO}"):
        return "created"
    return "running"


def timestamp() -> str:
    """RFC 3339 in UTC with nanoseconds, as runc's `created`."""
    now = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now // 1_000_000_000)) + \
        f".{now % 1_000_000_000:09d}Z"


def public_state(directory: ContainerDir, state: dict) -> dict:
    """What `state` prints: the spec's fields plus runc's rootfs, created, owner."""
    current = status(directory, state)
    return {
        "ociVersion": state["ociVersion"],
        "id": state["id"],
        "pid": state["pid"] if current != "stopped" else 0,
        "status": current,
        "bundle": state["bundle"],
        "rootfs": state["rootfs"],
        "created": state["created"],
        "owner": state["owner"],
        "annotations": state.get("annotations", {}),
    }
