"""What the v1 and v2 drivers share: one container cgroup spread over one
or more hierarchy directories, written through directory fds."""

from __future__ import annotations

import errno
import os
import time

from runtime import _linux
from runtime.errors import RootletError

O_PATH = 0o10000000


class Manager:
    """The container's cgroup. `dirs` maps a hierarchy key (a v1 controller
    list such as "cpu,cpuacct", or "" for cgroup2) to its directory."""

    driver = ""

    def __init__(self, path: str, dirs: dict[str, str], created: list[str] | None = None):
        self.path = path
        self.dirs = dirs
        self.created = created or []   # directories this manager made, parents first
        self._fds: dict[str, int] = {}

    # ------------------------------------------------------------ state

    def record(self) -> dict:
        leaves = self.dirs.values()
        return {"driver": self.driver, "path": self.path, "dirs": self.dirs,
                "parents": [directory for directory in self.created if directory not in leaves]}

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds = {}

    def fd(self, directory: str) -> int:
        fd = self._fds.get(directory)
        if fd is None:
            try:
                fd = os.open(directory, O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError as err:
                raise RootletError(f"open cgroup {directory}: {err.strerror}", errno=err.errno or 0) from None
            self._fds[directory] = fd
        return fd

    def remove_parents(self) -> None:
        """rmdir the parent cgroups that this container's create made (a
        relative linux.cgroupsPath such as a/b/<id>), those that are empty
        by now: another container may have come to use one."""
        for directory in reversed(self.created):
            if directory not in self.dirs.values():
                try:
                    os.rmdir(directory)
                except OSError:
                    pass

    # ------------------------------------------------------------ creation

    def make_directory(self, directory: str) -> bool:
        """mkdir the directory and its missing parents; True if the leaf was made."""
        missing = []
        probe = directory
        while not os.path.isdir(probe):
            missing.append(probe)
            probe = os.path.dirname(probe)
        for made in reversed(missing):
            try:
                os.mkdir(made, 0o755)
            except FileExistsError:
                continue
            except OSError as err:
                raise RootletError(f"create cgroup {made}: {err.strerror}", errno=err.errno or 0) from None
            self.created.append(made)
        return bool(missing)

    def check_empty(self, directory: str) -> None:
        if self.read(directory, "cgroup.procs").strip():
            raise RootletError(f"cgroup {directory} already has processes: give the container its own "
                               f"linux.cgroupsPath")

    # ------------------------------------------------------------ files

    def read(self, directory: str, name: str) -> str:
        try:
            return _linux.read_at(self.fd(directory), name)
        except OSError as err:
            raise RootletError(f"read {directory}/{name}: {err.strerror}", errno=err.errno or 0) from None

    def try_read(self, directory: str, name: str) -> str | None:
        try:
            return _linux.read_at(self.fd(directory), name)
        except (OSError, RootletError):
            return None

    def write(self, directory: str, name: str, value: str, where: str = "") -> None:
        try:
            _linux.write_at(self.fd(directory), name, value)
        except OSError as err:
            raise write_error(directory, name, value, where, err) from None

    def write_first(self, directory: str, alternatives: list[tuple[str, str]], where: str) -> None:
        """Write the first alternative whose file exists."""
        fd = self.fd(directory)
        for index, (name, value) in enumerate(alternatives):
            try:
                _linux.write_at(fd, name, value)
                return
            except OSError as err:
                if err.errno == errno.ENOENT and index + 1 < len(alternatives):
                    continue
                raise write_error(directory, name, value, where, err) from None

    # ------------------------------------------------------------ processes

    def pids_in(self, directory: str) -> list[int]:
        """Every process in the cgroup and the cgroups below it."""
        found: list[int] = []
        for top, _dirs, files in os.walk(directory):
            if "cgroup.procs" not in files:
                continue
            try:
                with open(f"{top}/cgroup.procs") as procs:
                    found.extend(int(line) for line in procs.read().split())
            except OSError:
                continue
        return found

    def signal_pids(self, pids: list[int], signal: int) -> None:
        for pid in pids:
            try:
                os.kill(pid, signal)
            except ProcessLookupError:
                pass

    def remove_directory(self, directory: str, timeout: float = 5.0) -> None:
        """rmdir the cgroup and any cgroups the container made below it, once
        their processes are gone (an exiting process leaves its cgroup a little
        after it dies: EBUSY, so retry)."""
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            try:
                _rmdir(directory)
                return
            except OSError as err:
                if err.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise RootletError(f"remove cgroup {directory}: {err.strerror}",
                                       errno=err.errno or 0) from None
            for top, dirs, _files in os.walk(directory, topdown=False):
                for name in dirs:
                    try:
                        _rmdir(f"{top}/{name}")
                    except OSError:
                        pass
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def _rmdir(directory: str) -> None:
    try:
        os.rmdir(directory)
    except FileNotFoundError:
        pass


def write_error(directory: str, name: str, value: str, where: str, err: OSError) -> RootletError:
    text = f"write {value!r} to {directory}/{name}: {err.strerror}"
    if err.errno == errno.ENOENT:
        text += " (this kernel or its enabled controllers do not offer the file)"
    return RootletError(f"{where}: {text}" if where else text, path=where, errno=err.errno or 0)


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while not predicate():
        if time.monotonic() > deadline:
            raise RootletError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def parse_flat(text: str) -> dict[str, int]:
    """A "key value" per line file (cpu.stat, memory.stat, memory.events...)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            values[key] = int(value)
    return values


def number(text: str | None) -> int:
    """A single-number cgroup file; "max" (no limit) as the largest u64, like runc."""
    if text is None:
        return 0
    text = text.strip()
    if text == "max":
        return 2**64 - 1
    return int(text) if text.lstrip("-").isdigit() else 0


def enable_controllers(manager: Manager, top: str, leaf: str, needed: set[str]) -> None:
    """Enable in each cgroup from `top` down to the leaf's parent every
    controller it offers (so stats and limits work), failing only for the
    ones `needed` by the plan."""
    levels = [top]
    relative = leaf[len(top):].strip("/").split("/")[:-1]
    for part in relative:
        levels.append(f"{levels[-1]}/{part}")
    for level in levels:
        offered = set(manager.read(level, "cgroup.controllers").split())
        missing = needed - offered
        if missing:
            raise RootletError(f"the {' and '.join(sorted(missing))} cgroup controller is not available in "
                               f"{level} (cgroup.controllers: {' '.join(sorted(offered)) or 'none'})")
        enabled = set(manager.read(level, "cgroup.subtree_control").split())
        wanted = offered - enabled
        if not wanted:
            continue
        fd = manager.fd(level)
        try:
            _linux.write_at(fd, "cgroup.subtree_control", " ".join(f"+{name}" for name in sorted(wanted)))
            continue
        except OSError:
            pass
        for name in sorted(wanted):  # one by one: enable what can be, fail for what must be
            try:
                _linux.write_at(fd, "cgroup.subtree_control", f"+{name}")
            except OSError as err:
                if name in needed:
                    raise write_error(level, "cgroup.subtree_control", f"+{name}",
                                      f"enable the {name} controller", err) from None


def kill_in_rounds(manager: Manager, timeout: float) -> None:
    """SIGKILL every process listed, again and again, until none is left
    (processes forked meanwhile are caught by a later round)."""
    def gone() -> bool:
        pids = manager.pids()
        manager.signal_pids(pids, 9)
        return not pids

    wait_until(gone, timeout, "the container's processes to die")
