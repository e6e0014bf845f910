"""The cgroup v1 driver: the same cgroup path in every mounted hierarchy
(cpu, memory, pids, freezer, ... and name=systemd), plus, on a hybrid host,
in the cgroup2 hierarchy mounted beside them, which may hold controllers
(often hugetlb) and always offers cgroup.kill on recent kernels."""

from __future__ import annotations

import errno
import os

from runtime import _linux
from runtime.cgroups.base import (
    Manager,
    enable_controllers,
    kill_in_rounds,
    parse_flat,
    wait_until,
    write_error,
)
from runtime.errors import RootletError


class V1(Manager):
    driver = "v1"

    def dir_for(self, controller: str) -> str | None:
        for key, directory in self.dirs.items():
            if key and controller in key.split(","):
                return directory
        return None

    def _main_dir(self) -> str:
        for controller in ("freezer", "pids", "memory", "cpu"):
            directory = self.dir_for(controller)
            if directory:
                return directory
        return next(iter(self.dirs.values()))

    # ------------------------------------------------------------ create

    def create(self, plan, unified_top: str | None) -> None:
        existed = [directory for directory in self.dirs.values() if not self.make_directory(directory)]
        if existed:
            self.check_empty(existed[0])
        cpuset = self.dir_for("cpuset")
        if cpuset:
            for made in self.created:
                if made == cpuset or cpuset.startswith(made + "/"):
                    self._inherit_cpuset(made)
        if "" in self.dirs and unified_top and any(c == "hugetlb" and self.dir_for(c) is None
                                                  for c in plan.controllers()):
            enable_controllers(self, unified_top, self.dirs[""], {"hugetlb"})

    def _inherit_cpuset(self, directory: str) -> None:
        """A new v1 cpuset cgroup starts with no CPUs and no memory nodes, and
        nothing can join it: copy its parent's."""
        parent = os.path.dirname(directory)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if not self.read(directory, name).strip():
                self.write(directory, name, self.read(parent, name).strip() or "\n")

    def apply(self, plan, device_rules: list | None = None, *, fresh: bool = True) -> None:
        writes = plan.writes
        index = 0
        while index < len(writes):
            controller, alternatives, where = writes[index]
            directory = self.dir_for(controller)
            if directory is None and controller == "hugetlb" and "" in self.dirs:
                directory = self.dirs[""]  # hybrid: hugetlb lives in the cgroup2 hierarchy
                alternatives = [(name.replace(".limit_in_bytes", ".max"), value)
                                for name, value in alternatives]
            if directory is None:
                raise RootletError(f"{where}: the {controller} cgroup controller is not mounted on this host",
                                   path=where)
            name, value = alternatives[0]
            try:
                if len(alternatives) == 1:
                    _linux.write_at(self.fd(directory), name, value)
                else:
                    self.write_first(directory, alternatives, where)
            except OSError as err:
                following = writes[index + 1] if index + 1 < len(writes) else None
                if (name == "memory.limit_in_bytes" and err.errno == errno.EINVAL and following
                        and following[1][0][0] == "memory.memsw.limit_in_bytes"):
                    # memory <= memory+swap must hold at every step: raise the sum first
                    self.write(directory, *following[1][0], where=following[2])
                    self.write(directory, name, value, where)
                    index += 2
                    continue
                raise write_error(directory, name, value, where, err) from None
            index += 1

    # ------------------------------------------------------------ freezer

    def _freezer(self) -> str:
        directory = self.dir_for("freezer")
        if directory is None:
            raise RootletError("the freezer cgroup controller is not mounted on this host")
        return directory

    def freeze(self) -> None:
        directory = self._freezer()

        def frozen() -> bool:
            state = self.read(directory, "freezer.state").strip()
            if state != "FROZEN":
                self.write(directory, "freezer.state", "FROZEN")  # a write restarts a stuck FREEZING
            return state == "FROZEN"

        self.write(directory, "freezer.state", "FROZEN")
        try:
            wait_until(frozen, 10.0, f"{directory} to freeze")
        except RootletError:
            self.thaw()
            raise

    def thaw(self) -> None:
        self.write(self._freezer(), "freezer.state", "THAWED")

    def paused(self) -> bool:
        directory = self.dir_for("freezer")
        return directory is not None and (self.try_read(directory, "freezer.state") or "").strip() == "FROZEN"

    # ------------------------------------------------------------ processes

    def pids(self) -> list[int]:
        return self.pids_in(self._main_dir())

    def kill_all(self, timeout: float = 10.0) -> None:
        unified = self.dirs.get("")
        if unified:
            try:
                _linux.write_at(self.fd(unified), "cgroup.kill", "1")
            except OSError:
                pass
        if self.paused():  # frozen v1 processes die of SIGKILL only once thawed
            self.signal_pids(self.pids(), 9)
            self.thaw()
        kill_in_rounds(self, timeout)

    def signal_all(self, signal: int) -> None:
        if signal == 9:
            self.kill_all()
            return
        freezer = self.dir_for("freezer")
        was_paused = self.paused()
        if freezer and not was_paused:
            self.freeze()
        try:
            self.signal_pids(self.pids(), signal)
        finally:
            if freezer and not was_paused:
                self.thaw()

    def remove(self) -> None:
        self.close()
        failures = []
        for directory in self.dirs.values():
            try:
                self.remove_directory(directory)
            except RootletError as err:
                failures.append(str(err))
        if failures:
            raise RootletError("; ".join(failures))
        self.remove_parents()

    # ------------------------------------------------------------ stats

    def oom_kills(self) -> int:
        memory = self.dir_for("memory")
        control = parse_flat((self.try_read(memory, "memory.oom_control") or "") if memory else "")
        return control.get("oom_kill", 0)
    def stats(self) -> dict:
        from runtime.cgroups import stats

        return stats.v1(self)
