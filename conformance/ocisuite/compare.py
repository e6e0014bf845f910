"""Side-by-side markdown tables from several runs' --json files (for RESULTS.md).

``conformance/compare-results suite runc.json crun.json rootlet.json`` or
``conformance/compare-results tools runc.json crun.json rootlet.json``; the
column titles are the file names without ``.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CELL_WIDTH = 90


def _cell(verdict: str, reason: str) -> str:
    text = verdict if not reason or verdict in ("pass", "ok") else f"{verdict}: {' '.join(reason.split())}"
    if len(text) > CELL_WIDTH:
        text = text[: CELL_WIDTH - 3] + "..."
    return text.replace("|", "\\|")


def _verdict_word(verdict: str) -> str:
    return verdict.split(":")[0]


def suite_table(runs: dict[str, dict]) -> str:
    """clause | level | check | one column per runtime; '*' marks rows where they disagree."""
    names = list(runs)
    first = runs[names[0]]["results"]
    by_name = {name: {r["check"]: r for r in run["results"]} for name, run in runs.items()}
    lines = ["| clause | level | check | " + " | ".join(names) + " |",
             "|---|---|---|" + "---|" * len(names)]
    for row in first:
        cells = [by_name[n].get(row["check"], {"result": "-", "reason": ""}) for n in names]
        words = {_verdict_word(c["result"]) for c in cells}
        marker = " *" if len(words) > 1 else ""
        lines.append(f"| {row['clause']} | {row['level']} | {row['check']}{marker} | "
                     + " | ".join(_cell(c["result"], c["reason"]) for c in cells) + " |")
    lines.append("")
    lines.append("| totals | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    for level in ("MUST", "SHOULD", "MAY"):
        counts = [runs[n]["totals"][level] for n in names]
        lines.append(f"| {level} | " + " | ".join(
            f"{c['pass']} pass / {c['fail']} fail / {c['skip']} skip" for c in counts) + " |")
    return "\n".join(lines)


def tools_table(runs: dict[str, dict]) -> str:
    """program | one column per runtime (ok / not ok: first failing TAP line / skip)."""
    names = list(runs)
    by_name = {name: {r["program"]: r for r in run["results"]} for name, run in runs.items()}
    programs = sorted({p for results in by_name.values() for p in results})
    lines = ["| program | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for program in programs:
        cells = [by_name[n].get(program, {"verdict": "-", "detail": ""}) for n in names]
        lines.append(f"| {program} | " + " | ".join(
            _cell(c["verdict"], c["detail"].removeprefix("not ok - ")) for c in cells) + " |")
    lines.append("")
    for name in names:
        results = runs[name]["results"]
        counts = {v: sum(r["verdict"] == v for r in results) for v in ("ok", "not ok", "skip")}
        lines.append(f"- {name}: {counts['ok']} ok, {counts['not ok']} not ok, {counts['skip']} skip "
                     f"of {len(results)} programs")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[0] not in ("suite", "tools"):
        print("usage: compare-results suite|tools RUN.json...", file=sys.stderr)
        return 2
    runs = {Path(p).stem: json.loads(Path(p).read_text()) for p in args[1:]}
    print(suite_table(runs) if args[0] == "suite" else tools_table(runs))
    return 0
