"""The engines under test, each bound to private directories in a Sandbox.

Every class takes the runtime binary (``$ROOTLET``) and wires it in as a
user would: ``ctr run --runc-binary``, ``podman --runtime``, ``dockerd
--add-runtime``. Commands return :class:`support.runtime.Result`.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from support.runtime import Result, wait_for

from engines.helpers import (
    DEFAULT_TIMEOUT,
    Sandbox,
    check,
    free_port,
    run,
    run_in_pty,
    stop_process,
    wait_socket,
)

CLEAN_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def private_dir(base: Path, prefix: str) -> Path:
    """A new 0755 directory in *base* (each module starts its engines anew)."""
    d = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    os.chmod(d, 0o755)
    return d


def _tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


# -- containerd ----------------------------------------------------------------

class Containerd:
    """containerd on a private root, state dir and socket; ctr in namespace *ns*."""

    def __init__(self, base: Path, sandbox: Sandbox, runtime: str, ns: str):
        self.dir = private_dir(base, "containerd-")
        self.sandbox = sandbox
        self.runtime = runtime
        self.ns = ns
        self.sock = self.dir / "containerd.sock"
        self.log = self.dir / "containerd.log"
        self.config = self.dir / "config.toml"
        self.config.write_text(
            "version = 2\n"
            f'root = "{self.dir / "root"}"\n'
            f'state = "{self.dir / "state"}"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            "[grpc]\n"
            f'  address = "{self.sock}"\n'
            '[plugins."io.containerd.internal.v1.opt"]\n'
            f'  path = "{self.dir / "opt"}"\n'
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = self.sandbox.popen(["containerd", "--config", self.config], self.log)
        wait_socket(self.sock, self.proc, self.log)
        wait_for(lambda: self.ctr("version", timeout=10).rc == 0, timeout=20,
                 interval=0.1, what="containerd to answer")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def ctr_argv(self, *args: str) -> list[str]:
        return self.sandbox.cmd(["ctr", "--address", self.sock, "--namespace", self.ns,
                                 *map(str, args)])

    def ctr(self, *args: str, timeout: float = DEFAULT_TIMEOUT, **kw) -> Result:
        return run(self.ctr_argv(*args), timeout=timeout, **kw)

    def ctr_ok(self, *args: str, **kw) -> Result:
        return check(self.ctr(*args, **kw))

    def runtime_flags(self, runtime: str | None = None) -> list[str]:
        return ["--runc-binary", runtime or self.runtime]

    def run_rm(self, image: str, cid: str, *cmd: str, flags: tuple[str, ...] = (),
               tty: bool = False, runtime: str | None = None, **kw) -> Result:
        """``ctr run --rm [-t]``: the task's output and exit status."""
        argv = self.ctr_argv("run", "--rm", *self.runtime_flags(runtime), *flags,
                             *(["-t"] if tty else []), image, cid, *cmd)
        if tty:
            return run_in_pty(argv, **kw)
        return run(argv, **kw)

    def start_detached(self, image: str, cid: str, *cmd: str,
                       flags: tuple[str, ...] = ()) -> int:
        """``ctr run -d``; returns the task's host pid."""
        self.ctr_ok("run", "-d", "--null-io", *self.runtime_flags(), *flags, image, cid, *cmd)
        return self.task_pid(cid)

    def tasks(self) -> dict[str, dict]:
        """``ctr task ls``: {id: {"pid": int, "status": str}}."""
        out = {}
        for line in self.ctr_ok("task", "ls").out.splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 3:
                out[parts[0]] = {"pid": int(parts[1]), "status": parts[2]}
        return out

    def task_pid(self, cid: str) -> int:
        return self.tasks()[cid]["pid"]

    def status(self, cid: str) -> str:
        return self.tasks().get(cid, {}).get("status", "")

    def reset(self) -> None:
        """Kill and delete every task and container of our namespace."""
        for cid in self.tasks():
            self.ctr("task", "kill", "--signal", "SIGKILL", cid, timeout=15)
        deadline = time.monotonic() + 10
        while any(t["status"] not in ("STOPPED", "UNKNOWN") for t in self.tasks().values()):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        for cid in self.tasks():
            self.ctr("task", "delete", "--force", cid, timeout=15)
        for cid in self.ctr_ok("container", "ls", "-q").out.split():
            self.ctr("container", "delete", cid, timeout=15)


# -- docker-registry ----------------------------------------------------------

class Registry:
    """Debian's docker-registry on 127.0.0.1 (a free port), private storage."""

    def __init__(self, base: Path):
        self.dir = private_dir(base, "registry-")
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.config = self.dir / "config.yml"
        self.log = self.dir / "registry.log"
        self.config.write_text(
            "version: 0.1\n"
            "log:\n  level: info\n"
            "storage:\n"
            f"  filesystem:\n    rootdirectory: {self.dir / 'storage'}\n"
            "http:\n"
            f"  addr: {self.address}\n"
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as f:
            self.proc = subprocess.Popen(["docker-registry", "serve", str(self.config)],
                                         stdin=subprocess.DEVNULL, stdout=f,
                                         stderr=subprocess.STDOUT, start_new_session=True)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"docker-registry exited {self.proc.returncode}:\n"
                                     f"{_tail(self.log)}")
            try:
                with urllib.request.urlopen(f"http://{self.address}/v2/", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_for(up, timeout=20, interval=0.1, what="docker-registry to answer")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def log_tail(self) -> str:
        return _tail(self.log)


def skopeo_push(oci_archive: Path, ref: str, workdir: Path) -> Result:
    """Copy an OCI archive to a plain-HTTP registry with skopeo."""
    policy = workdir / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    tmp = workdir / "skopeo-tmp"
    tmp.mkdir(exist_ok=True)
    env = {"PATH": CLEAN_PATH.split("=", 1)[1], "HOME": str(workdir), "TMPDIR": str(tmp)}
    return run(["skopeo", "--policy", str(policy), "copy", "--dest-tls-verify=false",
                f"oci-archive:{oci_archive}", f"docker://{ref}"], env=env)


# -- podman ---------------------------------------------------------------------

class Podman:
    """podman with private storage (vfs), run dir, tmpdir, network config and
    containers.conf, the cgroupfs manager and no events log; as root or, with
    *user*, rootless as that user (own HOME and XDG_RUNTIME_DIR)."""

    def __init__(self, base: Path, sandbox: Sandbox, runtime: str, cgroup_parent: str,
                 user: pwd.struct_passwd | None = None):
        self.sandbox = sandbox
        self.runtime = runtime
        self.user = user
        # short: podman refuses a runroot longer than 50 characters
        self.dir = private_dir(base, "pmu-" if user else "pmr-")
        self.cgroup_parent = cgroup_parent
        names = ("root", "run", "tmp", "networks", "home", "xdg", "tmpdir")
        self.paths = {n: self.dir / n for n in names}
        for p in self.paths.values():
            p.mkdir(mode=0o700)
        (self.dir / "containers.conf").write_text(
            "[engine]\n"
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "none"\n'
        )
        (self.dir / "storage.conf").write_text(
            "[storage]\n"
            'driver = "vfs"\n'
            f'graphroot = "{self.paths["root"]}"\n'
            f'runroot = "{self.paths["run"]}"\n'
        )
        if user is not None:
            for top, dirs, files in os.walk(self.dir):
                for name in [top, *(os.path.join(top, n) for n in dirs + files)]:
                    os.chown(name, user.pw_uid, user.pw_gid)

    def env(self) -> list[str]:
        home = self.paths["home"]
        env = [CLEAN_PATH, f"HOME={home}", f"TMPDIR={self.paths['tmpdir']}",
               f"CONTAINERS_CONF={self.dir / 'containers.conf'}",
               f"CONTAINERS_STORAGE_CONF={self.dir / 'storage.conf'}"]
        if self.user is not None:
            env += [f"XDG_RUNTIME_DIR={self.paths['xdg']}", f"USER={self.user.pw_name}",
                    f"LOGNAME={self.user.pw_name}", f"XDG_CONFIG_HOME={home}/.config",
                    f"XDG_DATA_HOME={home}/.local/share"]
        return env

    def argv(self, *args: str) -> list[str]:
        prefix = []
        if self.user is not None:
            prefix = ["setpriv", f"--reuid={self.user.pw_uid}",
                      f"--regid={self.user.pw_gid}", "--init-groups"]
        return self.sandbox.cmd([
            *prefix, "env", "-i", *self.env(), "podman",
            "--root", self.paths["root"], "--runroot", self.paths["run"],
            "--tmpdir", self.paths["tmp"], "--storage-driver", "vfs",
            "--cgroup-manager", "cgroupfs", "--events-backend", "none",
            "--network-config-dir", self.paths["networks"],
            "--runtime", self.runtime, *map(str, args)])

    def __call__(self, *args: str, timeout: float = DEFAULT_TIMEOUT, **kw) -> Result:
        return run(self.argv(*args), timeout=timeout, cwd=self.dir, **kw)

    def ok(self, *args: str, **kw) -> Result:
        return check(self(*args, **kw))

    def run_flags(self) -> list[str]:
        """What every container gets: no network, and (as root) rlimits the
        host's hard limits allow (root here lacks CAP_SYS_RESOURCE, and podman
        would otherwise ask for its own, higher, nofile/nproc)."""
        flags = ["--network", "none"]
        if self.user is None:
            flags += ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
                      "--cgroup-parent", self.cgroup_parent]
        return flags

    def reset(self) -> None:
        self("rm", "--force", "--all", "--time", "0", timeout=60)


# -- docker ---------------------------------------------------------------------

def docker_cli() -> str | None:
    """Debian's docker.io client (matches its dockerd), else docker on PATH."""
    if os.access("/usr/bin/docker", os.X_OK):
        return "/usr/bin/docker"
    from shutil import which
    return which("docker")


class Docker:
    """dockerd with private data-root, exec-root, pidfile, socket and config,
    no iptables and no bridge, ``rootlet`` added as a runtime; the containerd
    it manages itself (no system containerd socket exists in the sandbox)."""

    def __init__(self, base: Path, sandbox: Sandbox, runtime: str, cgroup_parent: str):
        self.dir = private_dir(base, "docker-")
        self.sandbox = sandbox
        self.runtime = runtime
        self.sock = self.dir / "docker.sock"
        self.log = self.dir / "dockerd.log"
        self.config = self.dir / "daemon.json"
        self.config.write_text("{}\n")
        self.client_config = self.dir / "client"
        self.client_config.mkdir()
        self.cgroup_parent = cgroup_parent
        self.cli = docker_cli()
        self.proc: subprocess.Popen | None = None

    def dockerd_argv(self) -> list[str]:
        return ["dockerd", "--config-file", str(self.config),
                "--add-runtime", f"rootlet={self.runtime}",
                "--data-root", str(self.dir / "data"), "--exec-root", str(self.dir / "exec"),
                "--pidfile", str(self.dir / "dockerd.pid"), "-H", f"unix://{self.sock}",
                "--iptables=false", "--ip6tables=false", "--bridge=none",
                "--ip-masq=false", "--userland-proxy=false",
                "--cgroup-parent", self.cgroup_parent, "--log-level", "warn"]

    def start(self) -> None:
        self.proc = self.sandbox.popen(self.dockerd_argv(), self.log)
        wait_socket(self.sock, self.proc, self.log, timeout=60)
        wait_for(lambda: self.docker("version", timeout=10).rc == 0, timeout=30,
                 interval=0.2, what="dockerd to answer")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=20)

    def argv(self, *args: str) -> list[str]:
        return self.sandbox.cmd(["env", "-i", CLEAN_PATH, f"HOME={self.dir}",
                                 f"DOCKER_CONFIG={self.client_config}", self.cli,
                                 "-H", f"unix://{self.sock}", *map(str, args)])

    def docker(self, *args: str, timeout: float = DEFAULT_TIMEOUT, **kw) -> Result:
        return run(self.argv(*args), timeout=timeout, **kw)

    def ok(self, *args: str, **kw) -> Result:
        return check(self.docker(*args, **kw))

    def run_flags(self) -> list[str]:
        return ["--runtime", "rootlet", "--network", "none"]

    def reset(self) -> None:
        ids = self.docker("ps", "-aq", timeout=30).out.split()
        if ids:
            self.docker("rm", "--force", *ids, timeout=60)

    def log_tail(self) -> str:
        return _tail(self.log)


__all__ = ["Containerd", "Docker", "Podman", "Registry", "run_in_pty", "skopeo_push"]
