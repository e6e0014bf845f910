"""The cgroup v2 driver: one directory in the unified hierarchy."""

from __future__ import annotations

import errno
import os

from runtime import _bpf, _linux
from runtime.cgroups.base import (
    Manager,
    enable_controllers,
    kill_in_rounds,
    parse_flat,
    wait_until,
    write_error,
)
from runtime.errors import RootletError


class V2(Manager):
    driver = "v2"

    @property
    def dir(self) -> str:
        return self.dirs[""]

    # ------------------------------------------------------------ create

    def create(self, plan, top: str) -> None:
        """Make the cgroup and enable the controllers down to it from `top`
        (the hierarchy's root, or the root of a delegated subtree)."""
        if not self.make_directory(self.dir):
            self.check_empty(self.dir)
        enable_controllers(self, top, self.dir, plan.controllers())

    def apply(self, plan, device_rules: list | None = None, *, fresh: bool = True) -> None:
        fd = self.fd(self.dir)
        for _controller, alternatives, where in plan.writes:
            if len(alternatives) == 1:
                name, value = alternatives[0]
                try:
                    _linux.write_at(fd, name, value)
                except OSError as err:
                    raise write_error(self.dir, name, value, where, err) from None
            else:
                self.write_first(self.dir, alternatives, where)
        if device_rules is not None and any(not allow for allow, *_ in device_rules):
            self.attach_device_filter(device_rules, fresh)  # a filter only where something is denied

    def attach_device_filter(self, rules: list, fresh: bool) -> None:
        from runtime.cgroups import bpf

        fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            old = [] if fresh else _bpf.bpf_query(fd, _bpf.BPF_CGROUP_DEVICE)
            program = _bpf.bpf_load_device_program(bpf.assemble(rules), bpf.LICENSE)
            try:
                _bpf.bpf_attach(program, fd, _bpf.BPF_CGROUP_DEVICE, _bpf.BPF_F_ALLOW_MULTI)
            finally:
                os.close(program)
            for prog_id in old:  # replaced: the new program alone decides
                old_fd = _bpf.bpf_program_fd(prog_id)
                try:
                    _bpf.bpf_detach(old_fd, fd, _bpf.BPF_CGROUP_DEVICE)
                finally:
                    os.close(old_fd)
        except OSError as err:
            raise RootletError(f"linux.resources.devices: install the device filter on {self.dir}: "
                               f"{err.filename}: {err.strerror}", path="linux.resources.devices",
                               errno=err.errno or 0) from None
        finally:
            os.close(fd)

    # ------------------------------------------------------------ freezer

    def freeze(self) -> None:
        self.write(self.dir, "cgroup.freeze", "1")
        wait_until(lambda: "frozen 1" in self.read(self.dir, "cgroup.events"), 10.0,
                   f"{self.dir} to freeze")

    def thaw(self) -> None:
        self.write(self.dir, "cgroup.freeze", "0")

    def paused(self) -> bool:
        return (self.try_read(self.dir, "cgroup.freeze") or "0").strip() == "1"

    # ------------------------------------------------------------ processes

    def pids(self) -> list[int]:
        return self.pids_in(self.dir)

    def populated(self) -> bool:
        text = self.try_read(self.dir, "cgroup.events")
        return text is not None and "populated 1" in text

    def kill_all(self, timeout: float = 10.0) -> None:
        try:
            _linux.write_at(self.fd(self.dir), "cgroup.kill", "1")
        except OSError as err:
            if err.errno != errno.ENOENT:  # before Linux 5.14: one process at a time
                raise write_error(self.dir, "cgroup.kill", "1", "", err) from None
            kill_in_rounds(self, timeout)
        wait_until(lambda: not self.populated(), timeout, f"the processes of {self.dir} to die")

    def signal_all(self, signal: int) -> None:
        if signal == 9:
            self.kill_all()
            return
        was_paused = self.paused()
        if not was_paused:
            self.freeze()
        try:
            self.signal_pids(self.pids(), signal)
        finally:
            if not was_paused:
                self.thaw()

    def remove(self) -> None:
        self.close()
        self.remove_directory(self.dir)
        self.remove_parents()

    # ------------------------------------------------------------ stats

    def oom_kills(self) -> int:
        events = parse_flat(self.try_read(self.dir, "memory.events") or "")
        return events.get("oom_kill", 0) + events.get("oom_group_kill", 0)

    def stats(self) -> dict:
        from runtime.cgroups import stats

        return stats.v2(self)
