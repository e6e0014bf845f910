"""Running real container engines in a sandbox that leaves the host alone.

Each engine daemon (and every client command) runs inside a private mount
namespace held open by a ``sleep`` process (:class:`Sandbox`). In it

* /run and /dev/shm are fresh tmpfs: containerd 1.6 puts its shims' sockets
  in /run/containerd/s whatever --state says, podman keeps its locks in
  /dev/shm/libpod_lock, dockerd uses the system containerd when
  /run/containerd/containerd.sock exists;
* /etc and /var/lib are overlays whose upper layer is a private directory:
  anything an engine writes there (dockerd's key.json, a CNI config...) lands
  in the sandbox and is reported (:meth:`Sandbox.writes`), never on the host.

The engines' own roots, state dirs and sockets are private directories under
/tmp (not /dev/shm, which the sandbox hides). At the end every process that
lives in the sandbox's mount namespace or mentions the private directory in
its command line or environment, and their descendants, is killed; the
namespace and all of its mounts go with its last process.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from support.runtime import Result, cmdline, wait_for

# Seconds one engine command may take ($ROOTLET_ENGINE_TIMEOUT): generous for
# a 2-core machine, short enough that a hung runtime cannot stall the suite.
DEFAULT_TIMEOUT = float(os.environ.get("ROOTLET_ENGINE_TIMEOUT", "30"))

# Mount points the sandbox replaces: (path, how).
_MASKS = (("/run", "tmpfs"), ("/dev/shm", "tmpfs"), ("/etc", "overlay"),
          ("/var/lib", "overlay"))


def need_binaries(*names: str) -> dict[str, str]:
    """Paths of *names*, or a list of the missing ones (for a skip reason)."""
    found = {n: shutil.which(n) for n in names}
    missing = [n for n, p in found.items() if p is None]
    if missing:
        raise LookupError(", ".join(missing))
    return found  # type: ignore[return-value]


def engine_base(prefix: str) -> Path:
    """A fresh 0755 directory under $ROOTLET_ENGINE_TMPDIR or /tmp."""
    parent = os.environ.get("ROOTLET_ENGINE_TMPDIR", "/tmp")
    d = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(d, 0o755)
    return d


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(argv: list[str], timeout: float = DEFAULT_TIMEOUT, env: dict | None = None,
        cwd: str | Path | None = None, input: bytes | None = None) -> Result:
    """Run to completion with output collected in files (a container that
    inherits our stdio cannot hold a pipe open); kill its group on timeout."""
    with tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr, \
            tempfile.TemporaryFile() as fin:
        if input is not None:
            fin.write(input)
            fin.seek(0)
        p = subprocess.Popen(argv, stdin=fin if input is not None else subprocess.DEVNULL,
                             stdout=fout, stderr=ferr, env=env, cwd=cwd,
                             start_new_session=True)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _killpg(p.pid)
            p.wait()
            fout.seek(0)
            ferr.seek(0)
            raise AssertionError(
                f"{' '.join(map(str, argv))} did not finish within {timeout}s\n"
                f"--- stdout ---\n{fout.read().decode(errors='replace')}\n"
                f"--- stderr ---\n{ferr.read().decode(errors='replace')}") from None
        fout.seek(0)
        ferr.seek(0)
        return Result(list(map(str, argv)), rc, fout.read().decode(errors="replace"),
                      ferr.read().decode(errors="replace"))


def run_in_pty(argv: list[str], timeout: float = DEFAULT_TIMEOUT, env: dict | None = None,
               send: bytes = b"") -> Result:
    """Run with a pseudo-terminal as stdin/stdout/stderr (``-t`` clients
    refuse anything else); *out* is everything read from the terminal."""
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                             start_new_session=True)
    finally:
        os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        if send:
            os.write(master, send)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                _killpg(p.pid)
                p.wait()
                raise AssertionError(f"{' '.join(argv)} did not finish within {timeout}s;"
                                     f" output so far: {b''.join(chunks)!r}")
            ready, _, _ = select.select([master], [], [], min(left, 0.2))
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every slave end is closed
                    data = b""
                if not data:
                    break
                chunks.append(data)
            elif p.poll() is not None:
                # Exited, but a grandchild may still hold the slave: drain briefly.
                ready, _, _ = select.select([master], [], [], 0.2)
                if not ready:
                    break
        rc = p.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
    return Result(list(argv), rc, b"".join(chunks).decode(errors="replace"), "")


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def check(r: Result, rc: int = 0) -> Result:
    assert r.rc == rc, f"expected exit {rc}:\n{r}"
    return r


# -- processes ----------------------------------------------------------------

def _ppids() -> dict[int, int]:
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        out[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def mount_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def _environ(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read()
    except OSError:
        return b""


def with_descendants(pids: set[int]) -> set[int]:
    parents = _ppids()
    found = set(pids)
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in found and pid not in found:
                found.add(pid)
                grew = True
    return found


def kill_all(pids: set[int]) -> None:
    me = os.getpid()
    for pid in pids:
        if pid in (me, 1):
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def stop_process(p: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if it does not exit within *timeout*."""
    if p.poll() is None:
        try:
            p.terminate()
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


# -- the sandbox --------------------------------------------------------------

class Sandbox:
    """A private mount namespace (see the module docstring). ``cmd(argv)``
    is *argv* run inside it; ``popen``/``run`` run such commands."""

    def __init__(self, base: Path):
        self.base = Path(base)
        self.upper = self.base / "sandbox"
        lines = ["set -e"]
        for path, how in _MASKS:
            if not os.path.isdir(path) or os.path.islink(path):
                continue
            if how == "tmpfs":
                lines.append(f"mount -t tmpfs -o mode=0755 sandbox {path}")
            else:
                name = path.strip("/").replace("/", "_")
                up, work = self.upper / name, self.upper / f"{name}.work"
                up.mkdir(parents=True)
                work.mkdir()
                lines.append(f"mount -t overlay sandbox -o lowerdir={path},upperdir={up},"
                             f"workdir={work} {path}")
        if os.path.isdir("/dev/shm"):
            lines.append("chmod 1777 /dev/shm")
        lines += ["echo ready", "exec sleep infinity"]
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
             "\n".join(lines)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        ready = self.holder.stdout.readline()
        if ready.strip() != b"ready":
            err = self.holder.stderr.read() if self.holder.poll() is not None else b""
            self.holder.kill()
            self.holder.wait()
            raise RuntimeError(f"could not set up the mount namespace sandbox: "
                               f"{err.decode(errors='replace')}")
        self.holder.stdout.close()
        self.holder.stderr.close()
        self.ns = mount_ns(self.holder.pid)

    def cmd(self, argv: list[str]) -> list[str]:
        return ["nsenter", f"--mount=/proc/{self.holder.pid}/ns/mnt", "--", *map(str, argv)]

    def run(self, argv: list[str], **kw) -> Result:
        return run(self.cmd(argv), **kw)

    def popen(self, argv: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
        with open(log, "ab") as f:
            return subprocess.Popen(self.cmd(argv), stdin=subprocess.DEVNULL, stdout=f,
                                    stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)

    def kill_mentioning(self, path: Path) -> None:
        """Kill what an engine left behind: processes whose command line or
        environment mentions *path* (one engine's directory), and their
        descendants."""
        for _ in range(50):
            left = self.processes(str(path), namespace=False)
            if not left:
                return
            kill_all(left)
            time.sleep(0.1)

    def processes(self, marker: str | None = None, namespace: bool = True) -> set[int]:
        """Processes in the namespace (the holder included), any process
        whose command line or environment mentions the private directory
        (rootless podman's pause process, catatonit, has left both the
        namespace and its parent), and all their descendants."""
        found = set()
        base = marker or str(self.base)
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            if pid == os.getpid():
                continue
            if ((namespace and mount_ns(pid) == self.ns) or any(base in a for a in cmdline(pid))
                    or base.encode() in _environ(pid)):
                found.add(pid)
        return with_descendants(found)

    def writes(self) -> list[str]:
        """Files the engines created or changed in the masked /etc and /var/lib."""
        out = []
        for path, how in _MASKS:
            if how != "overlay":
                continue
            up = self.upper / path.strip("/").replace("/", "_")
            for top, _dirs, files in os.walk(up):
                for name in files:
                    out.append(os.path.join(path, os.path.relpath(os.path.join(top, name), up)))
        return sorted(out)

    def close(self) -> None:
        """Kill everything left inside; the namespace dies with the holder."""
        for _ in range(50):
            left = self.processes() - {self.holder.pid}
            if not left:
                break
            kill_all(left)
            time.sleep(0.1)
        kill_all({self.holder.pid})
        self.holder.wait()


def remove_tree(path: Path) -> None:
    """rm -rf unless something is still mounted below it (never recurse into
    a mount) or $ROOTLET_KEEP_TMP is set."""
    if os.environ.get("ROOTLET_KEEP_TMP"):
        sys.stderr.write(f"\nkept {path}\n")
        return
    with open("/proc/self/mountinfo") as f:
        leaked = [line.split()[4] for line in f if str(path) in line.split()[4]]
    if leaked:
        sys.stderr.write(f"\nnot removing {path}: still mounted: {leaked}\n")
        return
    shutil.rmtree(path, ignore_errors=True)


def remove_cgroups(name: str) -> list[str]:
    """rmdir the (empty) cgroup trees called *name* directly under each
    hierarchy, deepest first; returns those that could not be removed."""
    left = []
    base = "/sys/fs/cgroup"
    if not os.path.isdir(base):
        return left
    for hier in sorted(os.listdir(base)):
        top = os.path.join(base, hier, name)
        if not os.path.isdir(top):
            continue
        for d, _dirs, _files in sorted(os.walk(top), key=lambda t: -t[0].count("/")):
            try:
                os.rmdir(d)
            except OSError:
                left.append(d)
    return left


def wait_socket(path: Path, proc: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    def up():
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args} exited with {proc.returncode}:\n"
                                 f"{log.read_text(errors='replace')[-4000:]}")
        return path.is_socket()

    wait_for(up, timeout=timeout, interval=0.05, what=f"{path}")
