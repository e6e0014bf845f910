"""What a check works with: its own state dir, bundles, containers, cleanup.

A :class:`Context` belongs to one check. Everything it makes (state under
``--root``, bundles, host mounts, containers) lives under the check's private
directory and is undone by :meth:`Context.cleanup`, so a failing check cannot
leave anything behind that changes the verdict of another.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from .bundle import Bundle
from .registry import Fail, Refused
from .runtime import Outcome, Runtime

WAIT_TIMEOUT = 10.0
_ids = itertools.count(1)


class Container:
    """A container this check created, with the files holding its stdout/stderr."""

    def __init__(self, ctx: Context, container_id: str, bundle: Bundle, out_path: Path, err_path: Path):
        self.ctx = ctx
        self.id = container_id
        self.bundle = bundle
        self.out_path = out_path
        self.err_path = err_path

    @property
    def runtime(self) -> Runtime:
        return self.ctx.runtime

    def start(self) -> Outcome:
        return self.runtime.call("start", self.id)

    def must_start(self) -> None:
        outcome = self.start()
        if not outcome.ok:
            raise Fail(f"start failed: {outcome.describe()}")

    def state(self) -> dict | None:
        return self.runtime.state(self.id)

    def status(self) -> str | None:
        state = self.state()
        return None if state is None else state.get("status")

    def pid(self) -> int:
        state = self.state()
        if not state or not isinstance(state.get("pid"), int) or state["pid"] <= 0:
            raise Fail(f"state of {self.id} has no usable pid: {state}")
        return state["pid"]

    def kill(self, signal: str = "KILL") -> Outcome:
        return self.runtime.call("kill", self.id, signal)

    def delete(self, *flags: str) -> Outcome:
        return self.runtime.call("delete", *flags, self.id)

    def wait_status(self, wanted: str, timeout: float = WAIT_TIMEOUT) -> str | None:
        """Poll ``state`` until the status is *wanted*; return the last status seen."""
        deadline = time.monotonic() + timeout
        delay = 0.005
        status = self.status()
        while status != wanted and time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
            status = self.status()
        return status

    def must_stop(self, timeout: float = WAIT_TIMEOUT) -> None:
        status = self.wait_status("stopped", timeout)
        if status != "stopped":
            raise Fail(f"container {self.id} did not reach 'stopped' within {timeout:.0f}s "
                       f"(status {status!r}); stderr: {self.errors()[-300:]!r}")

    def wait_for_output(self, marker: str, timeout: float = 5.0) -> None:
        """Wait until the process printed *marker* (e.g. its signal handlers are set)."""
        deadline = time.monotonic() + timeout
        while marker not in self.output():
            if time.monotonic() > deadline:
                raise Fail(f"the process never printed {marker!r}; stderr: {self.errors()[-300:]!r}")
            time.sleep(0.01)

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def errors(self) -> str:
        return self.err_path.read_text(errors="replace")


class Context:
    """Per-check workspace; see the module docstring."""

    def __init__(self, runtime: Runtime, workdir: Path, template: Path, id_prefix: str):
        self.workdir = workdir
        self.template = template
        self.id_prefix = id_prefix
        workdir.mkdir(parents=True)
        self.runtime = runtime.with_root(workdir / "state")
        self.containers: list[Container] = []
        self._cleanups: list[Callable[[], object]] = []
        self._bundles = itertools.count(1)

    # -- things to build -------------------------------------------------
    def bundle(self, *args: str, parent: Path | None = None) -> Bundle:
        """A fresh bundle whose process is *args* (default: ``true``), in the
        check's directory or in *parent*."""
        path = (parent or self.workdir) / f"bundle{next(self._bundles)}"
        return Bundle(path, self.template, list(args) or ["true"])

    def new_id(self) -> str:
        """Unique across the host, not just this --root: cgroup paths derive from it."""
        return f"{self.id_prefix}-{next(_ids)}"

    def tempdir(self, name: str, mode: int = 0o755) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, mode)
        return path

    def on_cleanup(self, action: Callable[[], object]) -> None:
        self._cleanups.append(action)

    def host_mount(self, *mount_args: str) -> None:
        """Run ``mount`` on the host (for a check's own directories) and undo it later."""
        target = mount_args[-1]
        subprocess.run(["mount", *mount_args], check=True, capture_output=True)
        self.on_cleanup(lambda: subprocess.run(["umount", "-l", target], capture_output=True))

    # -- the runtime's operations ------------------------------------------
    def create(self, bundle: Bundle, container_id: str | None = None, *, write: bool = True,
               extra_args: tuple[str, ...] = (), prefix: tuple[str, ...] = (),
               **popen) -> tuple[Container | None, Outcome]:
        """``create``; the container inherits stdout/stderr files we can read later."""
        if write:
            bundle.write()
        container_id = container_id or self.new_id()
        tag = f"{container_id}-{len(self.containers)}"
        out_path = self.workdir / f"{tag}.out"
        err_path = self.workdir / f"{tag}.err"
        with open(out_path, "w") as out, open(err_path, "w") as err:
            outcome = self.runtime.call("create", "--bundle", str(bundle.path), *extra_args,
                                        container_id, stdout=out, stderr=err, prefix=prefix, **popen)
        outcome.stdout = out_path.read_text(errors="replace")
        outcome.stderr = err_path.read_text(errors="replace")
        container = Container(self, container_id, bundle, out_path, err_path)
        self.containers.append(container)
        return (container if outcome.ok else None), outcome

    def must_create(self, bundle: Bundle, container_id: str | None = None, **kwargs) -> Container:
        container, outcome = self.create(bundle, container_id, **kwargs)
        if container is None:
            raise Fail(f"create failed: {outcome.describe()}")
        return container

    def create_or_refused(self, bundle: Bundle, **kwargs) -> Container:
        """For optional features: a failing create is the runtime declining them."""
        container, outcome = self.create(bundle, **kwargs)
        if container is None:
            raise Refused(outcome.first_error_line())
        return container

    def run(self, bundle: Bundle, *, refusable: bool = False, timeout: float = WAIT_TIMEOUT) -> str:
        """create + start + wait for 'stopped'; return what the process printed."""
        container = self.create_or_refused(bundle) if refusable else self.must_create(bundle)
        container.must_start()
        container.must_stop(timeout)
        return container.output()

    def run_script(self, bundle: Bundle, script: str, **kwargs) -> str:
        return self.run(bundle.sh(script), **kwargs)

    # -- teardown --------------------------------------------------------------
    def cleanup(self) -> None:
        """Kill and delete every container, then undo host mounts (newest first)."""
        for container in self.containers:
            if container.state() is None:
                continue
            container.kill("KILL")
            container.wait_status("stopped", 5)
            if not container.delete().ok:
                container.delete("--force")
        for action in reversed(self._cleanups):
            try:
                action()
            except Exception:  # noqa: BLE001 - cleanup must go on
                pass


def parse_lines(text: str) -> dict[str, str]:
    """``key=value`` lines (what the check scripts print) as a dict."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values
