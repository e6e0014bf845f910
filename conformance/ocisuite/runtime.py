"""Drive the runtime under test through runc's command-line contract.

The spec defines operations, not a command line; every runtime we test
(runc, crun, rootlet) implements runc's: ``RUNTIME --root DIR create --bundle B ID``,
``start ID``, ``state ID``, ``kill ID SIG``, ``delete ID``. Each check gets its
own ``--root`` so that checks running side by side never see each other.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

CALL_TIMEOUT = 30.0
OPERATIONS = ("create", "start", "state", "kill", "delete", "features")


@dataclass
class Outcome:
    """What one invocation of the runtime did."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def first_error_line(self) -> str:
        """The runtime's own words for why it failed (first non-empty line)."""
        for line in (self.stderr + "\n" + self.stdout).splitlines():
            line = line.strip()
            if line:
                return _strip_log_prefix(line)
        return f"exit status {self.returncode}, no message"

    def describe(self) -> str:
        """The runtime's message first (tables truncate), then the operation."""
        operation = next((a for a in self.argv if a in OPERATIONS), shlex.quote(self.argv[-1]))
        return f"{self.first_error_line()} ({operation}: exit {self.returncode})"


def _strip_log_prefix(line: str) -> str:
    """runc logs as ``time=... level=error msg="..."``; keep the message only."""
    match = re.search(r'msg="((?:[^"\\]|\\.)*)"', line)
    if match:
        return match.group(1).replace('\\"', '"')
    return line


class Runtime:
    """One runtime binary plus the state directory a check owns."""

    def __init__(self, command: str, root: Path | None):
        self.command = command
        self.root = root

    def with_root(self, root: Path) -> Runtime:
        return Runtime(self.command, root)

    def argv(self, *args: str) -> list[str]:
        head = [self.command]
        if self.root is not None:
            head += ["--root", str(self.root)]
        return head + list(args)

    def call(self, *args: str, timeout: float = CALL_TIMEOUT, prefix: tuple[str, ...] = (),
             **popen) -> Outcome:
        """Run one runtime command and capture what it printed.

        *prefix* runs the runtime through another command (``sh -c 'setup; exec "$@"'``)
        when a check needs the runtime's own process prepared. Keyword arguments
        go to subprocess (``stdout=`` a file for ``create``, whose stdio the
        container inherits, ``pass_fds=``...).
        """
        argv = [*prefix, *self.argv(*args)]
        popen.setdefault("stdin", subprocess.DEVNULL)
        capture_out = "stdout" not in popen
        capture_err = "stderr" not in popen
        if capture_out:
            popen["stdout"] = subprocess.PIPE
        if capture_err:
            popen["stderr"] = subprocess.PIPE
        try:
            proc = subprocess.run(argv, timeout=timeout, text=True, check=False, **popen)
        except subprocess.TimeoutExpired:
            return Outcome(argv, 124, "", f"timed out after {timeout:.0f}s")
        return Outcome(
            argv,
            proc.returncode,
            proc.stdout if capture_out else "",
            proc.stderr if capture_err else "",
        )

    def state(self, container_id: str) -> dict | None:
        """The state document, or None when the runtime reports an error."""
        outcome = self.call("state", container_id)
        if not outcome.ok:
            return None
        try:
            return json.loads(outcome.stdout)
        except json.JSONDecodeError:
            return None

    def version_text(self) -> str:
        outcome = self.call("--version", timeout=10)
        return (outcome.stdout or outcome.stderr).strip()


def claimed_spec_version(runtime: Runtime) -> str | None:
    """The spec release the runtime says it implements.

    ``features`` (ociVersionMax) is authoritative when present; otherwise the
    ``spec: X`` line that runc-compatible runtimes print with ``--version``.
    """
    features = runtime.call("features", timeout=10)
    if features.ok:
        try:
            return json.loads(features.stdout)["ociVersionMax"]
        except (json.JSONDecodeError, KeyError, TypeError):
            pass
    match = re.search(r"^spec:\s*(\S+)", runtime.version_text(), re.MULTILINE)
    return match.group(1) if match else None


def version_tuple(version: str) -> tuple[int, int, int]:
    """``1.0.2-dev`` -> (1, 0, 2): pre-release tags are ignored on purpose,
    since runtimes say ``-dev`` for the release they implement."""
    numbers = [int(n) for n in re.findall(r"\d+", version.split("-")[0])[:3]]
    return tuple(numbers + [0] * (3 - len(numbers)))  # type: ignore[return-value]


def resolve_command(command: str) -> str:
    """An absolute path for *command* (a path or a name on $PATH)."""
    if os.sep in command:
        return str(Path(command).resolve())
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(directory) / command
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise FileNotFoundError(f"runtime {command!r} not found on $PATH")
