"""Run the checks against one runtime, print the table, write JSON, set the exit status."""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import checks
from .bundle import build_rootfs_template
from .context import Context
from .registry import LEVELS, Check, Fail, Skip
from .runtime import Runtime, claimed_spec_version, resolve_command, version_tuple

REASON_WIDTH = 110


@dataclass
class Result:
    check: Check
    verdict: str  # pass | fail | skip
    reason: str
    seconds: float

    def cell(self) -> str:
        if not self.reason:
            return self.verdict
        reason = " ".join(self.reason.split())
        if len(reason) > REASON_WIDTH:
            reason = reason[: REASON_WIDTH - 3] + "..."
        return f"{self.verdict}: {reason}".replace("|", "\\|")

    def as_json(self) -> dict:
        clause = self.check.clause
        return {"check": self.check.name, "clause": clause.anchor, "level": clause.level,
                "summary": clause.summary, "since": clause.since, "result": self.verdict,
                "reason": self.reason, "seconds": round(self.seconds, 3)}


@dataclass
class Suite:
    """What every check of one run shares: the runtime, the template, the claimed spec."""

    runtime: Runtime
    workdir: Path
    template: Path
    claimed_spec: str | None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="conformance/run",
        description="Check a runc-compatible runtime against the OCI runtime-spec.")
    parser.add_argument("--runtime", help="runtime binary (path or name on $PATH); required unless --list")
    parser.add_argument("--root", help="directory for state, bundles and logs "
                        "(default: a fresh directory on /dev/shm, removed afterwards)")
    parser.add_argument("--only", action="append", default=[],
                        help="run checks whose name or clause matches (glob or substring); repeatable")
    parser.add_argument("--json", dest="json_out", help="write the results to this file")
    parser.add_argument("--jobs", type=int, default=3, help="checks run side by side (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--list", action="store_true", help="list the checks and exit")
    return parser.parse_args(argv)


def selected_checks(patterns: list[str]) -> list[Check]:
    every = checks.ordered()
    if not patterns:
        return every
    return [c for c in every if any(_matches(p, c) for p in patterns)]


def _matches(pattern: str, check: Check) -> bool:
    for text in (check.name, check.clause.anchor):
        if any(ch in pattern for ch in "*?[") and fnmatch.fnmatch(text, pattern):
            return True
        if pattern in text:
            return True
    return False


def run_check(suite: Suite, check: Check) -> Result:
    """One check in its own context; its cleanup runs whatever the verdict."""
    started = time.monotonic()
    ctx = Context(suite.runtime, suite.workdir / check.name, suite.template, f"oc{os.getpid()}")
    try:
        check.func(ctx)
        verdict, reason = "pass", ""
    except Skip as skip:
        verdict, reason = "skip", str(skip)
    except Fail as failure:
        verdict, reason = "fail", str(failure)
    except Exception as error:  # noqa: BLE001 - a broken check is reported, not fatal
        verdict = "fail"
        reason = f"suite error: {type(error).__name__}: {error} @ {_where(error)}"
    finally:
        ctx.cleanup()
    if verdict == "fail" and _predates(suite.claimed_spec, check.clause.since):
        verdict = "skip"
        reason = f"runtime claims spec {suite.claimed_spec} < {check.clause.since}; would fail: {reason}"
    return Result(check, verdict, reason, time.monotonic() - started)


def _where(error: Exception) -> str:
    frame = traceback.extract_tb(error.__traceback__)[-1]
    return f"{Path(frame.filename).name}:{frame.lineno}"


def _predates(claimed: str | None, since: str) -> bool:
    return claimed is not None and version_tuple(claimed) < version_tuple(since)


def run_all(suite: Suite, checks_to_run: list[Check], jobs: int) -> list[Result]:
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(lambda c: run_check(suite, c), checks_to_run))


def totals(results: list[Result]) -> dict[str, dict[str, int]]:
    counts = {level: {"pass": 0, "fail": 0, "skip": 0} for level in LEVELS}
    for result in results:
        counts[result.check.clause.level][result.verdict] += 1
    return counts


def render_table(results: list[Result]) -> str:
    rows = [("clause", "level", "result", "check")]
    rows += [(r.check.clause.anchor, r.check.clause.level, r.cell(), r.check.name) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for index, row in enumerate(rows):
        lines.append("| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) + " |")
        if index == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def render_totals(counts: dict[str, dict[str, int]]) -> str:
    return "\n".join(
        f"{level:6}: {c['pass']} passed, {c['fail']} failed, {c['skip']} skipped"
        for level, c in counts.items() if sum(c.values()))


def write_json(path: str, runtime: Runtime, claimed: str | None, results: list[Result]) -> None:
    document = {
        "runtime": runtime.command,
        "version": runtime.version_text(),
        "claimed_spec": claimed,
        "totals": totals(results),
        "results": [r.as_json() for r in results],
    }
    with open(path, "w") as out:
        json.dump(document, out, indent=1)
        out.write("\n")


def prepare_workdir(root: str | None) -> tuple[Path, bool]:
    """The run's directory, and whether we made it (and so remove it afterwards)."""
    if root:
        path = Path(root).resolve()
        path.mkdir(parents=True, exist_ok=True)
        return _traversable(Path(tempfile.mkdtemp(prefix="run-", dir=path))), False
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    return _traversable(Path(tempfile.mkdtemp(prefix="oci-conformance-", dir=base))), True


def _traversable(path: Path) -> Path:
    """mkdtemp makes 0700; a container whose root is a mapped uid must reach its rootfs."""
    os.chmod(path, 0o755)
    return path


def remove_workdir(path: Path) -> None:
    """Unmount whatever is left below *path* (deepest first) before deleting it,
    so that removing files can never reach through a leaked mount."""
    prefix = str(path) + "/"
    with open("/proc/self/mountinfo") as mountinfo:
        points = [line.split()[4] for line in mountinfo if line.split()[4].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)
    shutil.rmtree(path, ignore_errors=True)


def run_suite(command: str, patterns: list[str], jobs: int, root: str | None = None,
              keep: bool = False) -> tuple[Runtime, str | None, list[Result], float]:
    """Build the template, run the selected checks, clean up; for main and pytest."""
    runtime = Runtime(resolve_command(command), None)
    workdir, made_here = prepare_workdir(root)
    try:
        template = build_rootfs_template(workdir / "template-rootfs")
        claimed = claimed_spec_version(runtime)
        suite = Suite(runtime, workdir, template, claimed)
        started = time.monotonic()
        results = run_all(suite, selected_checks(patterns), jobs)
        return runtime, claimed, results, time.monotonic() - started
    finally:
        if made_here and not keep:
            remove_workdir(workdir)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for c in selected_checks(args.only):
            print(f"{c.name:40} {c.clause.anchor} {c.clause.level} {c.clause.summary}")
        return 0
    if not args.runtime:
        print("conformance/run: --runtime is required", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("conformance/run: must run as root (it creates containers)", file=sys.stderr)
        return 2
    runtime, claimed, results, elapsed = run_suite(args.runtime, args.only, args.jobs, args.root, args.keep)
    print(f"runtime: {runtime.command} ({runtime.version_text().splitlines()[0]}; "
          f"claims spec {claimed})")
    print(render_table(results))
    print()
    counts = totals(results)
    print(render_totals(counts))
    print(f"{len(results)} checks in {elapsed:.1f}s")
    if args.json_out:
        write_json(args.json_out, runtime, claimed, results)
    return 1 if counts["MUST"]["fail"] else 0
