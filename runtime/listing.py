"""`list` output: runc's table (tab-aligned columns) or its JSON array."""

from __future__ import annotations

from runtime import jsonio

_COLUMNS = ("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")


def render(states: list[dict], output_format: str, quiet: bool) -> str:
    if quiet:
        return "".join(f"{state['id']}\n" for state in states)
    if output_format == "json":
        return jsonio.dumps(states) + "\n"
    rows = [_COLUMNS] + [
        (s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"]) for s in states
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(_COLUMNS))]
    lines = ("   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)
    return "".join(line.rstrip() + "\n" for line in lines)
