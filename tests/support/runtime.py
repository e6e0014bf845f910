"""Run the runtime under test (``$ROOTLET``, default ``rootlet``) and inspect
what it leaves on the host.

Every invocation passes ``--root <dir>`` so tests never touch /run/rootlet.
The runtime's stdout/stderr go to temporary *files*, never pipes: with
``create`` and ``run -d`` the container inherits them and would otherwise keep
a pipe open for its whole life.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# Seconds any single runtime command may take ($ROOTLET_TEST_TIMEOUT).
DEFAULT_TIMEOUT = float(os.environ.get("ROOTLET_TEST_TIMEOUT", "15"))


def runtime_spec() -> str:
    return os.environ.get("ROOTLET", "rootlet")


def runtime_name() -> str:
    return os.path.basename(runtime_spec())


def is_runc() -> bool:
    return runtime_name() == "runc"


def resolve_runtime() -> str | None:
    spec = runtime_spec()
    if os.sep in spec:
        return os.path.abspath(spec) if os.access(spec, os.X_OK) else None
    return shutil.which(spec)


@dataclass
class Result:
    argv: list[str]
    rc: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)

    def __str__(self) -> str:
        return (
            f"$ {' '.join(self.argv)}\n-> exit {self.rc}\n"
            f"--- stdout ---\n{self.out}\n--- stderr ---\n{self.err}"
        )


def wait_for(pred, timeout: float = 5.0, interval: float = 0.01, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    """True if *pid* exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def proc_status(pid: int) -> dict[str, str]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def pids_matching(marker: str) -> list[int]:
    """Live processes (other than this one) whose command line contains *marker*."""
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        if any(marker in a for a in cmdline(pid)) and pid_alive(pid):
            found.append(pid)
    return found


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def host_mounts_mentioning(text: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.rstrip("\n") for line in f if text in line]


def cgroup_dirs_named(cid: str, max_depth: int = 3) -> list[str]:
    """cgroup directories (v1 and v2) whose name contains the container id."""
    found = []
    base = "/sys/fs/cgroup"
    if not os.path.isdir(base):
        return found
    for top, dirs, _files in os.walk(base):
        depth = top[len(base):].count(os.sep)
        if depth >= max_depth:
            dirs[:] = []
        for d in dirs:
            if cid in d:
                found.append(os.path.join(top, d))
    return found


class Runtime:
    """The runtime binary bound to one ``--root`` directory.

    ``prefix`` is prepended to every command (e.g. setpriv for rootless runs).
    """

    def __init__(self, binary: str, root: Path, prefix: list[str] | None = None,
                 env: dict[str, str] | None = None, cwd: Path | None = None):
        self.binary = binary
        self.root = Path(root)
        self.prefix = list(prefix or [])
        self.env = env
        self.cwd = cwd

    def argv(self, *args: str, global_args: tuple[str, ...] = ()) -> list[str]:
        return [*self.prefix, self.binary, "--root", str(self.root), *global_args,
                *map(str, args)]

    # -- running --------------------------------------------------------
    def spawn(self, *args: str, stdin=subprocess.DEVNULL, stdout=None, stderr=None,
              global_args: tuple[str, ...] = (), pass_fds=(), wrap: list[str] | None = None,
              **kw) -> subprocess.Popen:
        argv = [*(wrap or []), *self.argv(*args, global_args=global_args)]
        return subprocess.Popen(
            argv, stdin=stdin, stdout=stdout, stderr=stderr, env=self.env,
            cwd=self.cwd, pass_fds=pass_fds, start_new_session=True, **kw,
        )

    def __call__(self, *args: str, timeout: float = DEFAULT_TIMEOUT, stdin=subprocess.DEVNULL,
                 stdout=None, global_args: tuple[str, ...] = (), pass_fds=(),
                 wrap: list[str] | None = None) -> Result:
        """Run to completion. Output is collected through files, so containers
        that inherit the runtime's stdio cannot block us."""
        with tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
            p = self.spawn(*args, stdin=stdin, stdout=stdout if stdout is not None else fout,
                           stderr=ferr, global_args=global_args, pass_fds=pass_fds, wrap=wrap)
            try:
                rc = p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                raise AssertionError(
                    f"{' '.join(p.args)} did not finish within {timeout}s"
                ) from None
            fout.seek(0)
            ferr.seek(0)
            return Result(list(p.args), rc, fout.read().decode(errors="replace"),
                          ferr.read().decode(errors="replace"))

    def ok(self, *args: str, **kw) -> Result:
        r = self(*args, **kw)
        assert r.rc == 0, f"expected success:\n{r}"
        return r

    def fail(self, *args: str, **kw) -> Result:
        r = self(*args, **kw)
        assert r.rc != 0, f"expected failure:\n{r}"
        assert r.err.strip(), f"expected an error message on stderr:\n{r}"
        return r

    # -- queries --------------------------------------------------------
    def state(self, cid: str) -> dict:
        r = self.ok("state", cid)
        try:
            return r.json()
        except ValueError as e:
            raise AssertionError(f"state output is not JSON: {e}\n{r}") from None

    def status(self, cid: str) -> str:
        return self.state(cid)["status"]

    def ids(self) -> list[str]:
        return self.ok("list", "-q").out.split()

    def wait_status(self, cid: str, status: str, timeout: float = 5.0) -> dict:
        last = {}

        def check():
            nonlocal last
            last = self.state(cid)
            return last["status"] == status

        try:
            wait_for(check, timeout=timeout, what=f"{cid} to be {status}")
        except AssertionError:
            raise AssertionError(f"{cid} never became {status}; last state {last}") from None
        return last

    # -- lifecycle shortcuts ----------------------------------------------
    # *bundle* is a support.bundle.Bundle; its config is written first.
    def create(self, cid: str, bundle, *extra: str, **kw) -> Result:
        bundle.write()
        return self.ok("create", "--bundle", str(bundle.path), *extra, cid, **kw)

    def run(self, cid: str, bundle, *extra: str, **kw) -> Result:
        """Foreground ``run``; returns the result (rc = container exit status)."""
        bundle.write()
        return self("run", "--bundle", str(bundle.path), *extra, cid, **kw)

    def run_ok(self, cid: str, bundle, *extra: str, **kw) -> str:
        """Foreground ``run`` that must exit 0; returns the container's stdout."""
        r = self.run(cid, bundle, *extra, **kw)
        assert r.rc == 0, f"container run failed:\n{r}"
        return r.out

    def run_detached(self, cid: str, bundle, *extra: str, **kw) -> dict:
        bundle.write()
        self.ok("run", "--detach", "--bundle", str(bundle.path), *extra, cid, **kw)
        return self.state(cid)

    def cleanup(self) -> None:
        """Force-delete everything under our --root (best effort, bounded)."""
        try:
            r = self("list", "-q", timeout=5)
            for cid in r.out.split() if r.rc == 0 else []:
                self("kill", cid, "KILL", timeout=5)
                self("delete", "--force", cid, timeout=5)
        except AssertionError:  # a hung runtime: give up rather than stall the suite
            pass

    def root_entries(self) -> list[str]:
        try:
            return os.listdir(self.root)
        except FileNotFoundError:
            return []


def assert_nothing_left(rt: Runtime, cid: str, marker: str | None = None,
                        bundle_path: Path | None = None, grace: float = 2.0) -> None:
    """A failed or deleted container leaves no state, process, mount or cgroup."""
    ids = rt.ids()
    assert cid not in ids, f"{cid} still listed: {ids}"
    entries = [e for e in rt.root_entries() if cid in e]
    assert not entries, f"state left under {rt.root}: {entries}"
    if marker:
        try:
            wait_for(lambda: not pids_matching(marker), timeout=grace, what="processes to go")
        except AssertionError:
            left = {p: cmdline(p) for p in pids_matching(marker)}
            raise AssertionError(f"processes left behind: {left}") from None
    if bundle_path is not None:
        left = host_mounts_mentioning(str(bundle_path))
        assert not left, f"mounts left behind: {left}"
    cgroups = cgroup_dirs_named(cid)
    assert not cgroups, f"cgroups left behind: {cgroups}"
