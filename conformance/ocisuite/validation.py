"""Run opencontainers/runtime-tools' validation programs against a runtime.

Those programs (``validation/*/*.t``, built from ``validation/*/*.go``) are
standalone: each reads ``$RUNTIME``, unpacks ``rootfs-<arch>.tar.gz`` from its
working directory into a bundle made with ``os.MkdirTemp`` (so under
``$TMPDIR``), copies ``runtimetest`` from the working directory into it, and
prints TAP. So each runs from the directory that holds the tarball and
``runtimetest`` (the checkout root), with a private ``$TMPDIR`` we remove
afterwards, under a timeout. Nothing from runtime-tools is vendored here.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .runner import remove_workdir
from .runtime import resolve_command

SCRATCH_BASE = "/dev/shm" if os.path.isdir("/dev/shm") else None
GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x"}
TAP_RESULT = re.compile(r"^(not ok|ok)\b\s*(\d+)?\s*(?:-\s*)?(.*)$")
TAP_PLAN = re.compile(r"^1\.\.(\d+)\s*(?:#\s*(.*))?$")


@dataclass
class TapLine:
    ok: bool
    description: str
    directive: str  # "skip", "todo" or ""
    reason: str  # the directive's text

    def text(self) -> str:
        head = "ok" if self.ok else "not ok"
        return f"{head} - {self.description}".strip()


def parse_result_line(line: str) -> TapLine | None:
    match = TAP_RESULT.match(line)
    if not match:
        return None
    rest = match.group(3)
    description, _, directive = rest.partition("#")
    keyword, _, reason = directive.strip().partition(" ")
    if keyword.lower() in ("skip", "todo"):
        return TapLine(match.group(1) == "ok", description.strip(), keyword.lower(), reason.strip())
    return TapLine(match.group(1) == "ok", rest.strip(), "", "")


@dataclass
class ProgramResult:
    program: str
    verdict: str  # ok | not ok | skip
    detail: str  # first failing TAP line, skip reason, or why the program itself failed
    passed: int
    failed: int
    skipped: int
    exit_status: int
    seconds: float


@dataclass
class Tap:
    results: list[TapLine]
    plan_skip: str | None  # reason, when the plan is ``1..0 # SKIP``
    plan: int | None
    loose_errors: list[str]  # "error" of YAML blocks not attached to a result line


def parse_tap(text: str) -> Tap:
    """Result lines, the plan, and the errors runtime-tools reports without a
    result line (its lifecycle programs print ``1..0`` plus a YAML ``error``)."""
    tap = Tap([], None, None, [])
    block: list[str] | None = None
    for raw in text.splitlines():
        stripped = raw.strip()
        if block is not None:
            if stripped == "...":
                _collect_loose_error(tap, "\n".join(block))
                block = None
            else:
                block.append(raw)
            continue
        if raw[:1] in (" ", "\t") and stripped == "---":
            block = []
            continue
        plan = TAP_PLAN.match(stripped)
        if plan:
            tap.plan = int(plan.group(1))
            if plan.group(2) and plan.group(2).lower().startswith("skip"):
                tap.plan_skip = plan.group(2)[4:].strip() or "skipped"
            continue
        result = parse_result_line(stripped)
        if result is not None:
            tap.results.append(result)
    return tap


def _collect_loose_error(tap: Tap, yaml_text: str) -> None:
    if tap.results:
        return  # a diagnostic of the result line before it
    try:
        diagnostic = json.loads(yaml_text)
    except json.JSONDecodeError:
        return
    if isinstance(diagnostic, dict) and diagnostic.get("error"):
        tap.loose_errors.append(str(diagnostic["error"]))


def judge(program: str, stdout: str, stderr: str, exit_status: int, seconds: float,
          timed_out: bool) -> ProgramResult:
    """ok / not ok (first failing TAP line) / skip for one program's run."""
    tap = parse_tap(stdout)
    failed = [t for t in tap.results if not t.ok and t.directive != "todo"]
    skipped = [t for t in tap.results if t.directive == "skip"]
    passed = [t for t in tap.results if t.ok and t.directive != "skip"]
    counts = (len(passed), len(failed) + len(tap.loose_errors), len(skipped), exit_status, round(seconds, 2))
    if timed_out:
        return ProgramResult(program, "not ok", f"timed out after {seconds:.0f}s", *counts)
    if failed:
        return ProgramResult(program, "not ok", failed[0].text(), *counts)
    if tap.loose_errors:
        return ProgramResult(program, "not ok", "error: " + _first_line(tap.loose_errors[0]), *counts)
    if exit_status != 0:
        why = _first_line(stderr) or _first_line(stdout) or "no output"
        return ProgramResult(program, "not ok", f"exit status {exit_status}: {why}", *counts)
    if tap.plan_skip or (tap.results and len(skipped) == len(tap.results)):
        reason = tap.plan_skip or skipped[0].reason or skipped[0].description
        return ProgramResult(program, "skip", reason, *counts)
    if not tap.results:
        # runtime-tools' negative programs print nothing (or just "1..0") when the
        # runtime behaved, and exit 1 through util.Fatal when it did not
        return ProgramResult(program, "ok", "no error reported (exit 0, no TAP results)", *counts)
    summary = f"{len(passed)} passed" + (f", {len(skipped)} skipped" if skipped else "")
    return ProgramResult(program, "ok", summary, *counts)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def find_programs(validation_dir: Path, patterns: list[str]) -> list[Path]:
    """Every built program: ``*.t`` files below *validation_dir*, by name."""
    programs = sorted(p for p in validation_dir.rglob("*.t") if p.is_file() and os.access(p, os.X_OK))
    if patterns:
        programs = [p for p in programs
                    if any(fnmatch.fnmatch(p.stem, pat) or pat in p.stem for pat in patterns)]
    return programs


def find_workdir(validation_dir: Path, tarball: str) -> Path:
    """The directory holding the rootfs tarball and runtimetest: the validation
    directory or one of its parents (in a checkout, the root above validation/)."""
    for candidate in (validation_dir, *validation_dir.parents):
        if (candidate / tarball).is_file() and (candidate / "runtimetest").is_file():
            return candidate
    raise FileNotFoundError(
        f"no directory at or above {validation_dir} holds both {tarball} and runtimetest; "
        "pass --workdir (see conformance/README.md for building runtime-tools)")


def run_program(program: Path, runtime: str, workdir: Path, timeout: float) -> ProgramResult:
    """One program, from *workdir*, with a private TMPDIR removed afterwards."""
    scratch = Path(tempfile.mkdtemp(prefix="rt-validation-", dir=SCRATCH_BASE))
    os.chmod(scratch, 0o755)
    env = dict(os.environ, RUNTIME=runtime, TMPDIR=str(scratch))
    started = time.monotonic()
    timed_out = False
    try:
        proc = subprocess.run([str(program)], cwd=workdir, env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, check=False)
        stdout, stderr, status = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as expired:
        stdout = _text(expired.stdout)
        stderr = _text(expired.stderr)
        status, timed_out = 124, True
    finally:
        remove_leftover_containers(runtime, scratch)
        remove_workdir(scratch)
    return judge(program.stem, stdout, stderr, status, time.monotonic() - started, timed_out)


def _text(data: bytes | str | None) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data or ""


def remove_leftover_containers(runtime: str, scratch: Path) -> None:
    """Containers a program left in the runtime's default root, bundled below *scratch*."""
    listing = subprocess.run([runtime, "list", "--format", "json"],
                             capture_output=True, text=True, check=False)
    try:
        containers = json.loads(listing.stdout or "[]") or []
    except json.JSONDecodeError:
        return
    for container in containers:
        if str(container.get("bundle", "")).startswith(str(scratch)):
            subprocess.run([runtime, "delete", "--force", container["id"]], capture_output=True, check=False)


def render(results: list[ProgramResult]) -> str:
    rows = [("program", "result", "detail")] + [(r.program, r.verdict, r.detail) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(row)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    counts = {v: sum(r.verdict == v for r in results) for v in ("ok", "not ok", "skip")}
    subtests = [sum(getattr(r, f) for r in results) for f in ("passed", "failed", "skipped")]
    lines.append("")
    lines.append(f"programs: {counts['ok']} ok, {counts['not ok']} not ok, {counts['skip']} skip "
                 f"(of {len(results)}); TAP lines: {subtests[0]} ok, {subtests[1]} not ok, "
                 f"{subtests[2]} skip")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="conformance/runtime-tools-runner",
                                     description="Run already-built runtime-tools validation programs.")
    parser.add_argument("--validation-dir", required=True,
                        help="directory holding the built validation programs (*.t), "
                        "e.g. CHECKOUT/validation")
    parser.add_argument("--runtime", required=True, help="runtime binary (path or name on $PATH)")
    parser.add_argument("--workdir", help="directory with rootfs-<arch>.tar.gz and runtimetest "
                        "(default: the validation dir or its nearest parent that has them)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per program (default 120)")
    parser.add_argument("--only", action="append", default=[], help="program name glob/substring; repeatable")
    parser.add_argument("--json", dest="json_out", help="write the results to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runtime = resolve_command(args.runtime)
    validation_dir = Path(args.validation_dir).resolve()
    tarball = f"rootfs-{GO_ARCH.get(platform.machine(), platform.machine())}.tar.gz"
    workdir = Path(args.workdir).resolve() if args.workdir else find_workdir(validation_dir, tarball)
    programs = find_programs(validation_dir, args.only)
    if not programs:
        print(f"no executable *.t programs under {validation_dir}", file=sys.stderr)
        return 2
    results = []
    for program in programs:
        result = run_program(program, runtime, workdir, args.timeout)
        print(f"{result.verdict:6} {result.program} ({result.seconds:.1f}s)", file=sys.stderr, flush=True)
        results.append(result)
    print(f"runtime: {runtime}")
    print(render(results))
    if args.json_out:
        with open(args.json_out, "w") as out:
            json.dump({"runtime": runtime, "results": [asdict(r) for r in results]}, out, indent=1)
            out.write("\n")
    return 1 if any(r.verdict == "not ok" for r in results) else 0
