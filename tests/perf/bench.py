"""Side-by-side benchmarks of rootlet against runc and crun.

Run from the repository root as ``python -m tests.perf.bench`` (or as a script).
See tests/perf/README.md for what each benchmark measures. This is a measuring
tool, not a pass/fail test: a runtime that is missing or fails a benchmark is
reported as ``n/a (reason)`` and the suite goes on.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MAKE_BUNDLE = REPO_ROOT / "scripts" / "make-bundle"
UNIFIED_MOUNT = "/sys/fs/cgroup/unified"
CGROUP_ROOT = Path("/sys/fs/cgroup")
GNU_TIME = "/usr/bin/time"
DEFAULT_RUNTIMES = "rootlet,runc,crun"
BASELINE = "runc"
COMMAND_TIMEOUT_S = 60.0
RUN_COUNT = 100
PARALLEL_COUNT = 20
MEMORY_LIMIT_BYTES = 256 * 1024 * 1024
PIDS_LIMIT = 100
CPU_SHARES = 512

# Syscalls a typical container workload needs, allowed one rule each so the
# profile has roughly the size of Docker's default. Deliberately missing are the
# ones that reach outside the container: mount, pivot_root, reboot, kexec_load,
# module loading, bpf, perf_event_open, unshare, setns, keyctl, clock setting...
SECCOMP_ALLOWED_SYSCALLS = """
read write readv writev pread64 pwrite64 preadv pwritev preadv2 pwritev2 lseek sendfile splice tee
vmsplice copy_file_range open openat openat2 creat close close_range dup dup2 dup3 pipe pipe2 fcntl
flock ioctl stat fstat lstat newfstatat statx statfs fstatfs access faccessat faccessat2 readlink
readlinkat getdents getdents64 getcwd chdir fchdir mkdir mkdirat rmdir rename renameat renameat2 link
linkat unlink unlinkat symlink symlinkat mknod mknodat truncate ftruncate fallocate fadvise64 readahead
chmod fchmod fchmodat chown fchown lchown fchownat umask utime utimes futimesat utimensat fsync
fdatasync sync syncfs sync_file_range setxattr lsetxattr fsetxattr getxattr lgetxattr fgetxattr
listxattr llistxattr flistxattr removexattr lremovexattr fremovexattr mmap munmap mprotect mremap
msync mincore madvise brk mlock mlock2 munlock mlockall munlockall mbind set_mempolicy get_mempolicy
remap_file_pages memfd_create membarrier pkey_mprotect pkey_alloc pkey_free poll ppoll select pselect6
epoll_create epoll_create1 epoll_ctl epoll_wait epoll_pwait epoll_pwait2 eventfd eventfd2 signalfd
signalfd4 timerfd_create timerfd_settime timerfd_gettime inotify_init inotify_init1 inotify_add_watch
inotify_rm_watch rt_sigaction rt_sigprocmask rt_sigreturn rt_sigpending rt_sigtimedwait
rt_sigqueueinfo rt_tgsigqueueinfo rt_sigsuspend sigaltstack kill tkill tgkill pause clone clone3 fork
vfork execve execveat exit exit_group wait4 waitid set_tid_address set_robust_list get_robust_list
restart_syscall futex rseq arch_prctl set_thread_area get_thread_area prctl seccomp personality uname
getpid getppid gettid getpgid setpgid getpgrp getsid setsid getuid geteuid getgid getegid setuid
setgid setreuid setregid setresuid getresuid setresgid getresgid setfsuid setfsgid getgroups
setgroups capget capset getrlimit setrlimit prlimit64 getrusage sysinfo times getpriority setpriority
ioprio_get ioprio_set getcpu getrandom sched_yield sched_setparam sched_getparam sched_setscheduler
sched_getscheduler sched_get_priority_max sched_get_priority_min sched_rr_get_interval
sched_setaffinity sched_getaffinity sched_setattr sched_getattr nanosleep clock_nanosleep
clock_gettime clock_getres gettimeofday time alarm getitimer setitimer timer_create timer_settime
timer_gettime timer_getoverrun timer_delete socket socketpair bind listen accept accept4 connect
getsockname getpeername sendto recvfrom sendmsg recvmsg sendmmsg recvmmsg shutdown setsockopt
getsockopt shmget shmat shmdt shmctl semget semop semtimedop semctl msgget msgsnd msgrcv msgctl
mq_open mq_unlink mq_timedsend mq_timedreceive mq_notify mq_getsetattr io_setup io_destroy
io_getevents io_pgetevents io_submit io_cancel io_uring_setup io_uring_enter io_uring_register
pidfd_open pidfd_send_signal pidfd_getfd sethostname setdomainname ptrace process_vm_readv
process_vm_writev chroot ustat sysfs
""".split()

SECCOMP_ARCHITECTURES = {
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
}


class BenchError(Exception):
    """A runtime failed one step; the benchmark records it as n/a for that runtime."""


def progress(message: str) -> None:
    """Progress goes to stderr so stdout holds only the report."""
    print(f"  .. {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- processes


@dataclass
class Outcome:
    """What one finished command did: exit code, wall time, peak RSS and its output."""

    argv: list[str]
    returncode: int
    elapsed_ms: float
    maxrss_kib: int
    stdout: str
    stderr: str
    timed_out_after_s: float | None = None

    def first_error_line(self) -> str:
        """The first non-empty line of stderr (else stdout): what a person would read first."""
        if self.timed_out_after_s is not None:
            return f"timed out after {self.timed_out_after_s:.0f}s, killed"
        for text in (self.stderr, self.stdout):
            for line in text.splitlines():
                if line.strip():
                    return line.strip()[:160]
        return f"exit status {self.returncode}"


@dataclass
class Launched:
    """A child that is running: kept so it can be reaped with wait4, even after Ctrl-C."""

    argv: list[str]
    process: subprocess.Popen
    started: float
    stdout_file: object
    stderr_file: object


class Spawner:
    """Starts and reaps every command the same way, so all runtimes pay the same harness cost.

    Children get their own session so a Ctrl-C reaches only this script, which then
    cleans up instead of leaving half-created containers behind. Output goes to
    unlinked temp files rather than pipes: a container's init inherits the
    runtime's stdio, and a pipe it keeps open would never reach EOF.
    """

    def __init__(self) -> None:
        self.in_flight: dict[int, Launched] = {}
        self.lock = threading.Lock()

    def spawn(self, argv: list[str]) -> Launched:
        stdout_file = tempfile.TemporaryFile()
        stderr_file = tempfile.TemporaryFile()
        started = time.perf_counter()
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=stdout_file, stderr=stderr_file, start_new_session=True
        )
        launched = Launched(argv, process, started, stdout_file, stderr_file)
        with self.lock:
            self.in_flight[process.pid] = launched
        return launched

    def reap(self, launched: Launched, timeout_s: float = COMMAND_TIMEOUT_S) -> Outcome:
        """Wait with wait4 (for ru_maxrss); a timer kills the child's session if it hangs."""
        pid = launched.process.pid
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            kill_session(pid)

        killer = threading.Timer(timeout_s, expire)
        killer.start()
        try:
            _, status, rusage = os.wait4(pid, 0)
        finally:
            killer.cancel()
        elapsed_ms = (time.perf_counter() - launched.started) * 1000.0
        launched.process.returncode = os.waitstatus_to_exitcode(status)
        with self.lock:
            self.in_flight.pop(pid, None)
        return Outcome(
            argv=launched.argv,
            returncode=launched.process.returncode,
            elapsed_ms=elapsed_ms,
            maxrss_kib=rusage.ru_maxrss,
            stdout=read_and_close(launched.stdout_file),
            stderr=read_and_close(launched.stderr_file),
            timed_out_after_s=timeout_s if expired.is_set() else None,
        )

    def run(self, argv: list[str], timeout_s: float = COMMAND_TIMEOUT_S) -> Outcome:
        return self.reap(self.spawn(argv), timeout_s)

    def reap_everything(self) -> None:
        """Used by cleanup: let in-flight children finish (or kill them) so nothing is left running."""
        with self.lock:
            pending = list(self.in_flight.values())
        for launched in pending:
            try:
                self.reap(launched, timeout_s=30.0)
            except ChildProcessError:
                pass


def kill_session(pid: int) -> None:
    """Children lead their own session, so their process group id is their pid."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def read_and_close(handle) -> str:
    handle.seek(0)
    text = handle.read().decode(errors="replace")
    handle.close()
    return text


# --------------------------------------------------------------------------- runtimes


@dataclass
class Runtime:
    """One runtime under test, with its own --root state dir and the containers it owns."""

    name: str
    binary: str | None
    command_prefix: list[str]
    missing: str | None = None
    wrapped: bool = False
    version: str = "n/a"
    root: Path | None = None
    containers: set[str] = field(default_factory=set)
    spawner: Spawner | None = None
    id_counter: Iterator[int] = field(default_factory=itertools.count)
    delete_hangs: bool = False

    def argv(self, *args: str) -> list[str]:
        return [*self.command_prefix, "--root", str(self.root), *args]

    def new_id(self, prefix: str, label: str) -> str:
        return f"{prefix}-{self.name}-{label}{next(self.id_counter)}"

    def call(self, *args: str, timeout_s: float = COMMAND_TIMEOUT_S) -> Outcome:
        """Run one subcommand; a non-zero exit becomes a BenchError carrying its first error line."""
        outcome = self.spawner.run(self.argv(*args), timeout_s)
        if outcome.timed_out_after_s is not None and args[0] == "delete":
            self.delete_hangs = True
        if outcome.returncode != 0:
            raise BenchError(f"{args[0]}: {outcome.first_error_line()}")
        return outcome

    def create(self, container_id: str, bundle: Path) -> Outcome:
        self.containers.add(container_id)
        return self.call("create", "--bundle", str(bundle), container_id)

    def run_once(self, container_id: str, bundle: Path) -> Outcome:
        self.containers.add(container_id)
        outcome = self.call("run", "--bundle", str(bundle), container_id)
        self.containers.discard(container_id)
        return outcome

    def start(self, container_id: str) -> Outcome:
        return self.call("start", container_id)

    def delete(self, container_id: str, timeout_s: float = COMMAND_TIMEOUT_S) -> Outcome:
        outcome = self.call("delete", "-f", container_id, timeout_s=timeout_s)
        self.containers.discard(container_id)
        return outcome

    def state(self, container_id: str) -> tuple[Outcome, dict]:
        outcome = self.call("state", container_id)
        try:
            return outcome, json.loads(outcome.stdout)
        except json.JSONDecodeError as err:
            raise BenchError(f"state: not JSON ({err})") from err


def host_is_hybrid() -> bool:
    """crun refuses hosts where a cgroup2 mount sits beside v1; this detects that layout."""
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return False
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[4] == UNIFIED_MOUNT and " - cgroup2 " in line:
            return True
    return False


def crun_wrapper(command: str) -> list[str]:
    """Private mount namespace without the cgroup2 mount, then exec COMMAND with the args."""
    script = f'umount {UNIFIED_MOUNT}; exec {shlex.quote(command)} "$@"'
    return ["unshare", "-m", "sh", "-c", script, "crun"]


def locate_binary(name: str) -> tuple[list[str] | None, str | None]:
    """The argv prefix for a runtime name; rootlet may come from $ROOTLET (a path or a command line)."""
    if name == "rootlet" and os.environ.get("ROOTLET"):
        words = shlex.split(os.environ["ROOTLET"])
        found = shutil.which(words[0])
        if not found:
            return None, f"ROOTLET={os.environ['ROOTLET']!r} is not executable"
        return [found, *words[1:]], None
    found = shutil.which(name)
    if not found:
        return None, f"{name} not found on PATH"
    return [found], None


def resolve_runtime(name: str, spawner: Spawner, state_base: Path) -> Runtime:
    prefix, missing = locate_binary(name)
    runtime = Runtime(name=name, binary=prefix[0] if prefix else None, command_prefix=prefix or [])
    runtime.spawner = spawner
    runtime.missing = missing
    runtime.root = state_base / name
    runtime.root.mkdir(parents=True, exist_ok=True)
    if missing:
        return runtime
    runtime.version = first_line_of_version(spawner, prefix)
    if name == "crun" and host_is_hybrid():
        if not shutil.which("unshare"):
            runtime.missing = "unshare not found (needed to run crun on a hybrid cgroup host)"
        runtime.command_prefix = [*crun_wrapper(prefix[0]), *prefix[1:]]
        runtime.wrapped = True
    return runtime


def first_line_of_version(spawner: Spawner, prefix: list[str]) -> str:
    try:
        outcome = spawner.run([*prefix, "--version"], timeout_s=30.0)
    except OSError as err:
        return f"n/a ({err})"
    line = (outcome.stdout or outcome.stderr).strip().splitlines()
    return line[0] if line else f"n/a (exit status {outcome.returncode})"


# --------------------------------------------------------------------------- bundles


def build_bundles(workdir: Path, spec_runtime: str) -> dict[str, Path]:
    """One busybox rootfs shared by config variants, so every runtime starts the same files."""
    base = workdir / "bundle"
    subprocess.run(["sh", str(MAKE_BUNDLE), str(base), spec_runtime], check=True, capture_output=True)
    default_config = json.loads((base / "config.json").read_text())
    variants = {
        "true": config_variant(default_config, base, ["/bin/true"]),
        "sleep": config_variant(default_config, base, ["sleep", "1000"]),
        "seccomp": with_seccomp(config_variant(default_config, base, ["sleep", "1000"])),
        "limits": with_limits(config_variant(default_config, base, ["sleep", "1000"])),
    }
    bundles = {}
    for name, config in variants.items():
        bundle_dir = workdir / "bundles" / name
        bundle_dir.mkdir(parents=True)
        (bundle_dir / "config.json").write_text(json.dumps(config, indent=2))
        bundles[name] = bundle_dir
    return bundles


def config_variant(default_config: dict, base: Path, args: list[str]) -> dict:
    config = json.loads(json.dumps(default_config))
    config["process"]["args"] = args
    config["process"]["terminal"] = False
    config["root"]["path"] = str(base / "rootfs")
    return config


def with_seccomp(config: dict) -> dict:
    config["linux"]["seccomp"] = seccomp_profile()
    return config


def seccomp_profile() -> dict:
    """A deny-by-default allow-list with one rule per syscall, about the size of Docker's."""
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": SECCOMP_ARCHITECTURES.get(platform.machine(), []),
        "syscalls": [{"names": [name], "action": "SCMP_ACT_ALLOW"} for name in SECCOMP_ALLOWED_SYSCALLS],
    }


def with_limits(config: dict) -> dict:
    resources = config["linux"].setdefault("resources", {})
    resources["memory"] = {"limit": MEMORY_LIMIT_BYTES}
    resources["pids"] = {"limit": PIDS_LIMIT}
    resources["cpu"] = {"shares": CPU_SHARES}
    return config


# --------------------------------------------------------------------------- statistics


def percentile(values: list[float], fraction: float) -> float:
    """Linear interpolation between closest ranks; fine for the tens of samples we take."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


@dataclass
class Summary:
    median: float
    p10: float
    p90: float
    count: int


def summarize(values: list[float]) -> Summary:
    return Summary(percentile(values, 0.5), percentile(values, 0.1), percentile(values, 0.9), len(values))


# --------------------------------------------------------------------------- results


@dataclass
class Metric:
    """One measured quantity, with samples (or the reason it is n/a) for each runtime.

    wrapper_share says how much of crun's unshare+sh wrapper cost is inside one
    sample: (which wrapper measurement, how many times), or None when the wrapper
    cost does not apply (memory figures).
    """

    title: str
    unit: str
    wrapper_share: tuple[str, float] | None = ("noop", 1.0)
    samples: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def add(self, runtime: str, value: float) -> None:
        self.samples.setdefault(runtime, []).append(value)

    def fail(self, runtime: str, reason: str) -> None:
        self.errors.setdefault(runtime, reason)


@dataclass
class Section:
    """One benchmark's metrics, plus the crun-wrapper cost sampled during it (see probe_wrapper)."""

    key: str
    title: str
    metrics: dict[str, Metric] = field(default_factory=dict)
    wrapper_samples: dict[str, list[float]] = field(default_factory=dict)

    def metric(self, key: str, title: str, unit: str = "ms", wrapper_share=("noop", 1.0)) -> Metric:
        self.metrics[key] = Metric(title, unit, wrapper_share)
        return self.metrics[key]

    def failed(self, keys: Iterable[str], runtime: str) -> bool:
        return any(runtime in self.metrics[key].errors for key in keys)

    def fail(self, keys: Iterable[str], runtime: str, reason: str) -> None:
        for key in keys:
            self.metrics[key].fail(runtime, reason)


@dataclass
class Context:
    """Everything a benchmark needs: the runtimes, bundles, sizes and a fresh-id source."""

    runtimes: list[Runtime]
    bundles: dict[str, Path]
    rounds: int
    populate_count: int
    parallel_rounds: int
    id_prefix: str
    spawner: Spawner
    scratch: Path
    wrapper_ms: dict[str, float] = field(default_factory=dict)

    def usable(self) -> list[Runtime]:
        return [runtime for runtime in self.runtimes if not runtime.missing]


Step = Callable[[Runtime, int], dict[str, float]]


def run_rounds(
    ctx: Context, section: Section, keys: list[str], rounds: int, step: Step, wrapper_kind: str = "noop"
) -> None:
    """Take ROUNDS samples per runtime, interleaved A B C A B C so machine noise hits all alike.

    A runtime whose step fails is marked n/a for KEYS and skipped for the rest.
    Each round also samples the crun wrapper alone, so the cost subtracted from
    crun was measured under the same load.
    """
    for runtime in ctx.runtimes:
        if runtime.missing:
            section.fail(keys, runtime.name, runtime.missing)
    for round_index in range(rounds):
        for runtime in ctx.usable():
            if section.failed(keys, runtime.name):
                continue
            try:
                values = step(runtime, round_index)
            except (BenchError, OSError) as err:
                section.fail(keys, runtime.name, str(err))
                continue
            for key, value in values.items():
                section.metrics[key].add(runtime.name, value)
        probe_wrapper(ctx, section, wrapper_kind)


def probe_wrapper(ctx: Context, section: Section, kind: str) -> None:
    """One sample of the crun wrapper doing nothing: alone ("noop") or PARALLEL_COUNT at once."""
    if not any(runtime.wrapped for runtime in ctx.usable()):
        return
    argv = crun_wrapper("true")
    started = time.perf_counter()
    count = PARALLEL_COUNT if kind == "noop-parallel" else 1
    outcomes = [ctx.spawner.reap(launched) for launched in [ctx.spawner.spawn(argv) for _ in range(count)]]
    if all(outcome.returncode == 0 for outcome in outcomes):
        section.wrapper_samples.setdefault(kind, []).append((time.perf_counter() - started) * 1000.0)


def delete_quietly(runtime: Runtime, container_id: str, timeout_s: float = COMMAND_TIMEOUT_S) -> None:
    """Untimed teardown; anything it misses is swept up by the final cleanup.

    Once a runtime's delete has hung, later ones are skipped: hundreds of
    timeouts in a row would stall the suite for hours.
    """
    if runtime.delete_hangs:
        return
    try:
        runtime.delete(container_id, timeout_s)
    except (BenchError, OSError):
        pass


# --------------------------------------------------------------------------- benchmarks


def bench_wrapper(ctx: Context) -> Section:
    """The harness floor and the cost of crun's unshare+sh wrapper, subtracted from crun's figures."""
    section = Section("overhead", "0. harness floor and crun wrapper overhead")
    floor = section.metric("floor", "spawn /bin/true (harness floor)", wrapper_share=None)
    samples = ctx.rounds * 3
    for _ in range(samples):
        floor.add("harness", ctx.spawner.run(["true"]).elapsed_ms)
    if any(runtime.wrapped for runtime in ctx.usable()):
        measure_wrapper_noop(ctx, section, samples)
    measure_rss_floor(ctx, section)
    return section


def measure_rss_floor(ctx: Context, section: Section) -> None:
    """What the create max-RSS figures cannot go below: GNU time's own footprint, and the wrapper's."""
    commands = {"rss-floor": ("max RSS of /bin/true via GNU time", ["true"])}
    if any(runtime.wrapped for runtime in ctx.usable()):
        commands["noop-rss"] = ("max RSS of the crun wrapper no-op", crun_wrapper("true"))
    for key, (title, argv) in commands.items():
        metric = section.metric(key, title, unit="KiB", wrapper_share=None)
        try:
            for _ in range(3):
                metric.add("harness", peak_rss_of(ctx.spawner, argv, ctx.scratch / f"{key}.rss")[1])
        except BenchError as err:
            metric.fail("harness", str(err))


def measure_wrapper_noop(ctx: Context, section: Section, samples: int) -> None:
    noop = section.metric("noop", "unshare -m sh -c 'umount ...; exec true'", wrapper_share=None)
    parallel = section.metric(
        "noop-parallel", f"{PARALLEL_COUNT} such no-ops in parallel (wall)", wrapper_share=None
    )
    outcome = ctx.spawner.run(crun_wrapper("true"))
    if outcome.returncode != 0:
        noop.fail("harness", outcome.first_error_line())
        return
    for _ in range(samples):
        probe_wrapper(ctx, section, "noop")
    for _ in range(ctx.parallel_rounds):
        probe_wrapper(ctx, section, "noop-parallel")
    for kind, metric in (("noop", noop), ("noop-parallel", parallel)):
        for value in section.wrapper_samples.get(kind, []):
            metric.add("harness", value)
        ctx.wrapper_ms[kind] = summarize(section.wrapper_samples[kind]).median


def bench_run(ctx: Context) -> Section:
    """1. `run` of /bin/true, RUN_COUNT containers one after another."""
    section = Section("run", f"1. run /bin/true, {RUN_COUNT} sequential containers")
    section.metric("run", "run /bin/true (per container)")
    total = section.metric(
        "total", f"total for {RUN_COUNT} runs", unit="s", wrapper_share=("noop", RUN_COUNT)
    )

    def step(runtime: Runtime, round_index: int) -> dict[str, float]:
        container_id = runtime.new_id(ctx.id_prefix, "run")
        return {"run": runtime.run_once(container_id, ctx.bundles["true"]).elapsed_ms}

    run_rounds(ctx, section, ["run"], RUN_COUNT, step)
    for runtime in ctx.usable():
        samples = section.metrics["run"].samples.get(runtime.name, [])
        if len(samples) == RUN_COUNT:
            total.add(runtime.name, sum(samples) / 1000.0)
        else:
            total.fail(runtime.name, section.metrics["run"].errors.get(runtime.name, "incomplete"))
    for runtime in ctx.runtimes:
        if runtime.missing:
            total.fail(runtime.name, runtime.missing)
    return section


def bench_lifecycle(ctx: Context) -> Section:
    """2. create + start + delete -f of a `sleep 1000` container, and each step alone."""
    section = Section("lifecycle", "2. create / start / delete -f of a sleep 1000 container")
    section.metric("create", "create")
    section.metric("start", "start")
    section.metric("delete", "delete -f (running)")
    section.metric("all", "create + start + delete -f", wrapper_share=("noop", 3))

    def step(runtime: Runtime, round_index: int) -> dict[str, float]:
        container_id = runtime.new_id(ctx.id_prefix, "life")
        created = runtime.create(container_id, ctx.bundles["sleep"]).elapsed_ms
        started = runtime.start(container_id).elapsed_ms
        deleted = runtime.delete(container_id).elapsed_ms
        return {"create": created, "start": started, "delete": deleted, "all": created + started + deleted}

    run_rounds(ctx, section, list(section.metrics), ctx.rounds, step)
    return section


def bench_state_list(ctx: Context) -> Section:
    """3. state and list with 1 and with many existing (created, never started) containers."""
    many = ctx.populate_count
    section = Section("state-list", f"3. state and list with 1 and {many} existing containers")
    section.metric("state-1", "state, 1 container")
    section.metric("list-1", "list, 1 container")
    section.metric("state-many", f"state, {many} containers")
    section.metric("list-many", f"list, {many} containers")
    owned: dict[str, list[str]] = {runtime.name: [] for runtime in ctx.runtimes}
    try:
        populate(ctx, section, owned, 1, ["state-1", "list-1", "state-many", "list-many"])
        run_rounds(ctx, section, ["state-1", "list-1"], ctx.rounds, state_list_step(owned, "1", 1))
        populate(ctx, section, owned, many, ["state-many", "list-many"])
        run_rounds(
            ctx, section, ["state-many", "list-many"], ctx.rounds, state_list_step(owned, "many", many)
        )
    finally:
        delete_all_in_parallel(ctx, owned)
    return section


def state_list_step(owned: dict[str, list[str]], suffix: str, expected: int) -> Step:
    def step(runtime: Runtime, round_index: int) -> dict[str, float]:
        ids = owned[runtime.name]
        state_outcome, state = runtime.state(ids[round_index % len(ids)])
        if state.get("status") != "created":
            raise BenchError(f"state says {state.get('status')!r}, expected 'created'")
        list_outcome = runtime.call("list")
        listed = sum(1 for line in list_outcome.stdout.splitlines() if f"-{runtime.name}-pop" in line)
        if listed != expected:
            raise BenchError(f"list shows {listed} of {expected} containers")
        return {f"state-{suffix}": state_outcome.elapsed_ms, f"list-{suffix}": list_outcome.elapsed_ms}

    return step


def populate(
    ctx: Context, section: Section, owned: dict[str, list[str]], target: int, keys: list[str]
) -> None:
    """Create containers (interleaved across runtimes) until each runtime owns TARGET of them."""
    for runtime in ctx.runtimes:
        if runtime.missing:
            section.fail(keys, runtime.name, runtime.missing)
    for count in range(target):
        for runtime in ctx.usable():
            if section.failed(keys, runtime.name) or len(owned[runtime.name]) > count:
                continue
            container_id = runtime.new_id(ctx.id_prefix, "pop")
            try:
                runtime.create(container_id, ctx.bundles["sleep"])
            except (BenchError, OSError) as err:
                section.fail(keys, runtime.name, f"populating #{count + 1}: {err}")
                continue
            owned[runtime.name].append(container_id)
        if target > 1 and (count + 1) % 50 == 0:
            progress(f"populated {count + 1}/{target} containers per runtime")


def delete_all_in_parallel(ctx: Context, owned: dict[str, list[str]]) -> None:
    """Teardown of the populated containers, a few at a time to save wall time on 2 cores."""
    jobs = [(runtime, cid) for runtime in ctx.usable() for cid in owned.get(runtime.name, [])]
    if len(jobs) > 1:
        progress(f"deleting {len(jobs)} containers")
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda job: delete_quietly(*job), jobs))


def bench_exec(ctx: Context) -> Section:
    """4. `exec ID /bin/true` into a running container."""
    section = Section("exec", "4. exec /bin/true into a running container")
    section.metric("exec", "exec /bin/true")
    running: dict[str, str] = {}
    try:
        start_one_per_runtime(ctx, section, running, ["exec"])

        def step(runtime: Runtime, round_index: int) -> dict[str, float]:
            return {"exec": runtime.call("exec", running[runtime.name], "/bin/true").elapsed_ms}

        run_rounds(ctx, section, ["exec"], ctx.rounds, step)
    finally:
        for runtime in ctx.usable():
            if runtime.name in running:
                delete_quietly(runtime, running[runtime.name])
    return section


def start_one_per_runtime(ctx: Context, section: Section, running: dict[str, str], keys: list[str]) -> None:
    for runtime in ctx.usable():
        container_id = runtime.new_id(ctx.id_prefix, "exec")
        try:
            runtime.create(container_id, ctx.bundles["sleep"])
            running[runtime.name] = container_id
            runtime.start(container_id)
        except (BenchError, OSError) as err:
            section.fail(keys, runtime.name, f"setup: {err}")


def bench_create_config(ctx: Context) -> Section:
    """5. create with a ~300-rule seccomp profile and with cgroup limits, beside a plain create."""
    section = Section("create-config", "5. create with seccomp profile / with cgroup limits")
    variants = {
        "plain": "create, runc spec default config",
        "seccomp": f"create, seccomp allow-list ({len(SECCOMP_ALLOWED_SYSCALLS)} rules)",
        "limits": "create, memory 256MiB + pids 100 + cpu shares",
    }
    for key, title in variants.items():
        section.metric(key, title)
    bundle_of = {"plain": "sleep", "seccomp": "seccomp", "limits": "limits"}
    for key in variants:
        run_rounds(ctx, section, [key], ctx.rounds, create_variant_step(ctx, section, key, bundle_of[key]))
    return section


def create_variant_step(ctx: Context, section: Section, key: str, bundle_name: str) -> Step:
    def step(runtime: Runtime, round_index: int) -> dict[str, float]:
        container_id = runtime.new_id(ctx.id_prefix, key[:3])
        try:
            elapsed = runtime.create(container_id, ctx.bundles[bundle_name]).elapsed_ms
        except BenchError as err:
            delete_quietly(runtime, container_id)
            raise BenchError(f"refused: {err}") from err
        if key == "limits" and round_index == 0:
            section.metrics[key].notes[runtime.name] = describe_applied_limits(runtime, container_id)
        delete_quietly(runtime, container_id)
        return {key: elapsed}

    return step


def describe_applied_limits(runtime: Runtime, container_id: str) -> str:
    """Checks the limits really landed in the init's v1 cgroups, so a fast create is not a no-op."""
    try:
        _, state = runtime.state(container_id)
        cgroups = cgroup_paths(int(state["pid"]))
        memory = read_cgroup_file("memory", cgroups, "memory.limit_in_bytes")
        pids = read_cgroup_file("pids", cgroups, "pids.max")
        shares = read_cgroup_file("cpu", cgroups, "cpu.shares")
    except (BenchError, OSError, KeyError, ValueError) as err:
        return f"limits not checked: {err}"
    applied = memory == str(MEMORY_LIMIT_BYTES) and pids == str(PIDS_LIMIT) and shares == str(CPU_SHARES)
    verdict = "limits verified" if applied else "LIMITS NOT APPLIED"
    return f"{verdict} (memory={memory} pids={pids} shares={shares})"


def cgroup_paths(pid: int) -> dict[str, str]:
    paths = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            paths[controller or "unified"] = path
    return paths


def read_cgroup_file(controller: str, cgroups: dict[str, str], filename: str) -> str:
    path = CGROUP_ROOT / controller / cgroups[controller].lstrip("/") / filename
    try:
        return path.read_text().strip()
    except OSError:
        return "?"


def bench_memory(ctx: Context) -> Section:
    """6. Peak RSS of the `create` process, and the memory of the init waiting for `start`."""
    section = Section("memory", "6. memory: create's peak RSS, waiting init before start")
    section.metric("create-rss", "create: max RSS (ru_maxrss via GNU time)", unit="KiB", wrapper_share=None)
    section.metric("init-rss", "waiting init (state pid): VmRSS", unit="KiB", wrapper_share=None)
    section.metric("init-hwm", "waiting init (state pid): VmHWM", unit="KiB", wrapper_share=None)
    section.metric("init-pss", "waiting init (state pid): Pss", unit="KiB", wrapper_share=None)

    def step(runtime: Runtime, round_index: int) -> dict[str, float]:
        container_id = runtime.new_id(ctx.id_prefix, "mem")
        runtime.containers.add(container_id)
        create_argv = runtime.argv("create", "--bundle", str(ctx.bundles["sleep"]), container_id)
        try:
            created, create_rss = peak_rss_of(ctx.spawner, create_argv, ctx.scratch / f"{container_id}.rss")
            if created.returncode != 0:
                raise BenchError(f"create: {created.first_error_line()}")
            _, state = runtime.state(container_id)
            memory = read_process_memory(int(state["pid"]))
        finally:
            delete_quietly(runtime, container_id)
        if runtime.wrapped:
            section.metrics["create-rss"].notes[runtime.name] = "max over unshare, sh and crun"
        for key in ("init-rss", "init-hwm", "init-pss"):
            section.metrics[key].notes[runtime.name] = f"state pid is {memory['name']!r}"
        return {
            "create-rss": create_rss,
            "init-rss": memory["VmRSS"],
            "init-hwm": memory["VmHWM"],
            "init-pss": memory["Pss"],
        }

    run_rounds(ctx, section, list(section.metrics), min(ctx.rounds, 10), step)
    return section


def peak_rss_of(spawner: Spawner, argv: list[str], report: Path) -> tuple[Outcome, int]:
    """Peak RSS of ARGV in KiB, as GNU time's wait4 sees it.

    A direct child of this script would report Python's own RSS: the high-water
    mark of the (v)forked image survives exec into ru_maxrss. Started from the
    small `time` process instead, the floor is time's own ~1 MiB.
    """
    if not os.access(GNU_TIME, os.X_OK):
        raise BenchError(f"needs {GNU_TIME} (GNU time) to measure a child's peak RSS")
    outcome = spawner.run([GNU_TIME, "-f", "%M", "-o", str(report), *argv])
    try:
        return outcome, int(report.read_text().split()[-1])
    except (OSError, ValueError, IndexError) as err:
        raise BenchError(f"no peak RSS from {GNU_TIME}: {err}") from err


def read_process_memory(pid: int) -> dict:
    """VmRSS/VmHWM from status and Pss from smaps_rollup (RSS overstates shared binaries like runc's)."""
    memory: dict = {"name": "?", "VmRSS": 0, "VmHWM": 0, "Pss": 0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            label, _, value = line.partition(":")
            if label == "Name":
                memory["name"] = value.strip()
            elif label in ("VmRSS", "VmHWM"):
                memory[label] = int(value.split()[0])
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                memory["Pss"] = int(line.split()[1])
    except (OSError, ValueError) as err:
        raise BenchError(f"reading /proc/{pid}: {err}") from err
    return memory


def bench_parallel(ctx: Context) -> Section:
    """7. PARALLEL_COUNT creates launched at once; then every container is checked end to end."""
    section = Section("parallel", f"7. {PARALLEL_COUNT} containers created in parallel")
    section.metric(
        "parallel", f"{PARALLEL_COUNT} parallel creates (wall)", wrapper_share=("noop-parallel", 1)
    )

    def step(runtime: Runtime, round_index: int) -> dict[str, float]:
        ids = [runtime.new_id(ctx.id_prefix, "par") for _ in range(PARALLEL_COUNT)]
        try:
            elapsed = create_all_at_once(ctx, runtime, ids)
            correct, problem = check_parallel_batch(runtime, ids)
        finally:
            for container_id in ids:
                if container_id in runtime.containers:
                    delete_quietly(runtime, container_id)
        record_correctness(section.metrics["parallel"], runtime.name, correct, problem)
        return {"parallel": elapsed}

    run_rounds(ctx, section, ["parallel"], ctx.parallel_rounds, step, wrapper_kind="noop-parallel")
    return section


def record_correctness(metric: Metric, runtime: str, correct: int, problem: str) -> None:
    """Keeps a running 'k/n correct' note over all rounds, with the first problem seen."""
    previous = metric.notes.get(runtime, "0/0 correct").split()[0]
    good, total = (int(number) for number in previous.split("/"))
    note = f"{good + correct}/{total + PARALLEL_COUNT} correct"
    old_problem = metric.notes.get(runtime, "").partition(" correct")[2].strip()
    first_problem = old_problem or (f"(first problem: {problem})" if problem else "")
    metric.notes[runtime] = f"{note} {first_problem}".strip()


def create_all_at_once(ctx: Context, runtime: Runtime, ids: list[str]) -> float:
    runtime.containers.update(ids)
    started = time.perf_counter()
    launched = [
        ctx.spawner.spawn(runtime.argv("create", "--bundle", str(ctx.bundles["sleep"]), cid)) for cid in ids
    ]
    outcomes = [ctx.spawner.reap(child) for child in launched]
    elapsed = (time.perf_counter() - started) * 1000.0
    failures = [outcome for outcome in outcomes if outcome.returncode != 0]
    if failures:
        raise BenchError(f"{len(failures)} creates failed: {failures[0].first_error_line()}")
    return elapsed


def check_parallel_batch(runtime: Runtime, ids: list[str]) -> tuple[int, str]:
    """created -> start -> running -> delete -> gone, for every container of the batch."""
    problems: dict[str, str] = {}
    for expected, action in (("created", None), ("running", runtime.start)):
        for container_id in ids:
            if container_id in problems:
                continue
            try:
                if action:
                    action(container_id)
                _, state = runtime.state(container_id)
                if state.get("status") != expected or not state.get("pid"):
                    problems[container_id] = f"status {state.get('status')!r}, expected {expected!r}"
            except BenchError as err:
                problems[container_id] = str(err)
    for container_id in ids:
        if runtime.delete_hangs:
            problems.setdefault(container_id, "delete hangs")
            continue
        try:
            runtime.delete(container_id)
            runtime.state(container_id)
            problems.setdefault(container_id, "state still answers after delete")
        except BenchError:
            pass
    first_problem = next(iter(problems.values()), "")
    return len(ids) - len(problems), first_problem


BENCHMARKS: dict[str, Callable[[Context], Section]] = {
    "run": bench_run,
    "lifecycle": bench_lifecycle,
    "state-list": bench_state_list,
    "exec": bench_exec,
    "create-config": bench_create_config,
    "memory": bench_memory,
    "parallel": bench_parallel,
}


# --------------------------------------------------------------------------- report


def format_value(value: float, unit: str) -> str:
    if math.isnan(value):
        return "-"
    if unit == "KiB":
        return f"{value:,.0f}"
    if unit == "s":
        return f"{value:.2f}"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


@dataclass
class Row:
    """One line of a table: a runtime's summary, or why it has none."""

    label: str
    summary: Summary | None
    reason: str = ""
    note: str = ""


def metric_rows(metric: Metric, runtimes: list[str], ctx: Context, section: Section) -> list[Row]:
    wrapped = {runtime.name for runtime in ctx.runtimes if runtime.wrapped}
    rows = []
    for name in runtimes:
        samples = metric.samples.get(name)
        if not samples:
            reason = metric.errors.get(name, "no samples")
            rows.append(Row(name, None, reason=reason))
            continue
        rows.append(Row(name, summarize(samples), note=metric.notes.get(name, "")))
        cost = wrapper_cost(metric, ctx, section) if name in wrapped else None
        if cost is not None:
            rows.append(net_row(name, rows[-1].summary, metric, cost))
    return rows


def wrapper_cost(metric: Metric, ctx: Context, section: Section) -> float | None:
    """The wrapper's share of one sample, in the metric's unit: the median of the wrapper
    probes taken during this benchmark (else in benchmark 0), times the calls per sample."""
    if metric.wrapper_share is None:
        return None
    kind, times = metric.wrapper_share
    probes = section.wrapper_samples.get(kind)
    per_call_ms = summarize(probes).median if probes else ctx.wrapper_ms.get(kind)
    if per_call_ms is None:
        return None
    return per_call_ms * times / (1000.0 if metric.unit == "s" else 1.0)


def net_row(name: str, summary: Summary, metric: Metric, cost: float) -> Row:
    """crun's median with the wrapper's cost taken out.

    Only the median is given: subtracting one median from a p10 or p90 would
    suggest a precision this estimate does not have.
    """
    times = metric.wrapper_share[1]
    per_call_ms = cost / times * (1000.0 if metric.unit == "s" else 1.0)
    note = f"median minus {f'{times:g} x ' if times != 1 else ''}{format_value(per_call_ms, 'ms')} ms wrapper"
    return Row(f"{name}-net", Summary(summary.median - cost, math.nan, math.nan, summary.count), note=note)


def render_metric(metric: Metric, rows: list[Row]) -> list[str]:
    unit = metric.unit
    baseline = next((row.summary for row in rows if row.label == BASELINE and row.summary), None)
    lines = [
        f"  {metric.title}",
        f"    {'runtime':<14}{'median ' + unit:>14}{'p10':>11}{'p90':>11}{'vs runc':>9}  n",
    ]
    for row in rows:
        if row.summary is None:
            lines.append(f"    {row.label:<14}n/a ({row.reason})")
            continue
        summary = row.summary
        spread = (
            (format_value(summary.p10, unit), format_value(summary.p90, unit))
            if summary.count > 1
            else ("-", "-")
        )
        ratio = f"{summary.median / baseline.median:.2f}x" if baseline and baseline.median > 0 else "-"
        note = f"  {row.note}" if row.note else ""
        lines.append(
            f"    {row.label:<14}{format_value(summary.median, unit):>14}{spread[0]:>11}{spread[1]:>11}"
            f"{ratio:>9}  {summary.count}{note}"
        )
    return lines


def render_section(section: Section, ctx: Context) -> str:
    names = section_row_names(section, ctx)
    lines = [f"== {section.title} =="]
    for metric in section.metrics.values():
        lines.extend(render_metric(metric, metric_rows(metric, names, ctx, section)))
    return "\n".join(lines) + "\n"


def section_row_names(section: Section, ctx: Context) -> list[str]:
    if section.key == "overhead":
        return ["harness"]
    return [runtime.name for runtime in ctx.runtimes]


def render_header(ctx: Context, spec_runtime: str) -> str:
    lines = ["rootlet perf suite"]
    lines.append(f"  kernel {platform.release()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    lines.append(
        f"  cgroups: {'hybrid (v1 + cgroup2 at ' + UNIFIED_MOUNT + ')' if host_is_hybrid() else 'not hybrid'}"
    )
    lines.append(
        f"  rounds {ctx.rounds}, populate {ctx.populate_count}, parallel rounds {ctx.parallel_rounds}, "
        f"bundle from `{spec_runtime} spec`"
    )
    for runtime in ctx.runtimes:
        status = f"n/a ({runtime.missing})" if runtime.missing else runtime.version
        wrapper = "  [via unshare -m wrapper]" if runtime.wrapped else ""
        lines.append(f"  {runtime.name:<8} {status}{wrapper}")
    return "\n".join(lines) + "\n"


def report_json(ctx: Context, sections: list[Section], spec_runtime: str) -> dict:
    return {
        "host": {
            "kernel": platform.release(),
            "cpus": os.cpu_count(),
            "hybrid_cgroups": host_is_hybrid(),
            "python": platform.python_version(),
        },
        "settings": {
            "rounds": ctx.rounds,
            "populate": ctx.populate_count,
            "parallel_rounds": ctx.parallel_rounds,
            "bundle_spec_from": spec_runtime,
        },
        "runtimes": {
            runtime.name: {"version": runtime.version, "missing": runtime.missing, "wrapped": runtime.wrapped}
            for runtime in ctx.runtimes
        },
        "wrapper_ms": ctx.wrapper_ms,
        "benchmarks": [section_json(section, ctx) for section in sections],
    }


def section_json(section: Section, ctx: Context) -> dict:
    names = section_row_names(section, ctx)
    metrics = []
    for key, metric in section.metrics.items():
        rows = metric_rows(metric, names, ctx, section)
        baseline = next((row.summary for row in rows if row.label == BASELINE and row.summary), None)
        results = {}
        for row in rows:
            entry: dict = {"error": row.reason or None, "note": row.note or None}
            if row.summary:
                entry.update(
                    {key: None if math.isnan(value) else value for key, value in vars(row.summary).items()}
                )
                if baseline and baseline.median > 0:
                    entry["ratio_vs_runc"] = row.summary.median / baseline.median
                entry["samples"] = metric.samples.get(row.label)
            results[row.label] = entry
        metrics.append({"key": key, "title": metric.title, "unit": metric.unit, "results": results})
    wrapper_medians = {kind: summarize(probes).median for kind, probes in section.wrapper_samples.items()}
    return {"key": section.key, "title": section.title, "wrapper_ms": wrapper_medians, "metrics": metrics}


# --------------------------------------------------------------------------- cleanup


CLEANUP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
CLEANUP_TIMEOUT_S = 15.0


def clean_up(runtimes: list[Runtime], spawner: Spawner, workdir: Path, id_prefix: str) -> None:
    """Remove every container, process, state dir and temp file we made.

    Ctrl-C and SIGTERM are ignored meanwhile: a second signal (timeout(1) sends
    one to the child and one to its group) must not abandon a half-done cleanup.
    """
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in CLEANUP_SIGNALS}
    try:
        spawner.reap_everything()
        for runtime in runtimes:
            if not runtime.missing:
                delete_leftovers(runtime)
        killed = kill_stragglers(workdir)
        if killed:
            print(f"cleanup: killed leftover processes {killed}", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)
        remove_leftover_cgroups(id_prefix)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def delete_leftovers(runtime: Runtime) -> None:
    """Delete what we know we made, then whatever `list` still shows in our private --root."""
    for container_id in sorted(runtime.containers):
        delete_quietly(runtime, container_id, CLEANUP_TIMEOUT_S)
    if runtime.delete_hangs:
        print(f"cleanup: {runtime.name} delete hangs; its containers are ended by pid", file=sys.stderr)
        return
    try:
        listed = runtime.call("list", "-q", timeout_s=CLEANUP_TIMEOUT_S).stdout.split()
    except (BenchError, OSError):
        return
    for container_id in listed:
        delete_quietly(runtime, container_id, CLEANUP_TIMEOUT_S)


def kill_stragglers(workdir: Path) -> list[int]:
    """End, by pid, processes whose argv names our unique temp dir.

    Only this run starts such processes: a runtime killed on timeout, or one
    whose delete failed, can leave its helper or waiting init behind.
    """
    marker = str(workdir).encode()
    killed = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker not in (entry / "cmdline").read_bytes():
                continue
            os.kill(int(entry.name), signal.SIGKILL)
            killed.append(int(entry.name))
        except (OSError, ProcessLookupError):
            continue
    return killed


def remove_leftover_cgroups(id_prefix: str) -> None:
    """rmdir (never rm -r) empty cgroups named after our containers, if a runtime left any."""
    for directory in CGROUP_ROOT.glob(f"*/{id_prefix}-*"):
        try:
            directory.rmdir()
        except OSError:
            pass


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtimes", default=DEFAULT_RUNTIMES, help="comma-separated (default: %(default)s)")
    parser.add_argument("--rounds", type=int, help="samples per runtime per benchmark (default 20, quick 5)")
    parser.add_argument("--only", help=f"comma-separated subset of: {','.join(BENCHMARKS)}")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, 100 instead of 500 containers")
    args = parser.parse_args(argv)
    args.runtime_names = [name.strip() for name in args.runtimes.split(",") if name.strip()]
    args.selected = [name.strip() for name in (args.only or ",".join(BENCHMARKS)).split(",") if name.strip()]
    unknown = [name for name in args.selected if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {','.join(BENCHMARKS)}")
    if args.rounds is None:
        args.rounds = 5 if args.quick else 20
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def pick_spec_runtime(runtimes: list[Runtime]) -> str:
    """The bundle uses runc's default config; without runc, the first runtime that can write one."""
    for preferred in (BASELINE, "crun", "rootlet"):
        for runtime in runtimes:
            if runtime.name == preferred and not runtime.missing:
                return runtime.binary
    raise SystemExit("no runtime available to write a default config.json")


def raise_keyboard_interrupt(signum, frame) -> None:
    """SIGTERM/SIGHUP take the same cleanup path as Ctrl-C."""
    raise KeyboardInterrupt


def run_suite(
    args: argparse.Namespace, workdir: Path, token: str, spawner: Spawner, runtimes: list[Runtime]
) -> int:
    spec_runtime = pick_spec_runtime(runtimes)
    (workdir / "scratch").mkdir()
    progress(f"building bundle in {workdir}")
    ctx = Context(
        runtimes=runtimes,
        bundles=build_bundles(workdir, spec_runtime),
        rounds=args.rounds,
        populate_count=100 if args.quick else 500,
        parallel_rounds=min(args.rounds, 3 if args.quick else 5),
        id_prefix=token,
        spawner=spawner,
        scratch=workdir / "scratch",
    )
    print(render_header(ctx, Path(spec_runtime).name), flush=True)
    sections = [bench_wrapper(ctx)]
    print(render_section(sections[0], ctx), flush=True)
    for name in args.selected:
        progress(f"benchmark {name}")
        sections.append(BENCHMARKS[name](ctx))
        print(render_section(sections[-1], ctx), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report_json(ctx, sections, spec_runtime), indent=2) + "\n")
        progress(f"wrote {args.json}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    signal.signal(signal.SIGHUP, raise_keyboard_interrupt)
    token = f"rlp{secrets.token_hex(3)}"
    workdir = Path(tempfile.mkdtemp(prefix=f"rootlet-perf-{token}-")).resolve()
    spawner = Spawner()
    runtimes: list[Runtime] = []
    try:
        runtimes = [resolve_runtime(name, spawner, workdir / "state") for name in args.runtime_names]
        return run_suite(args, workdir, token, spawner, runtimes)
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
        return 130
    finally:
        clean_up(runtimes, spawner, workdir, token)


if __name__ == "__main__":
    sys.exit(main())
