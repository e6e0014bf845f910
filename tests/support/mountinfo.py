"""Parse /proc/<pid>/mountinfo text (as printed inside a container)."""

from __future__ import annotations

from dataclasses import dataclass


def _unescape(s: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and len(s[i + 1:i + 4]) == 3 and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


@dataclass
class Mount:
    mount_id: int
    parent_id: int
    root: str
    mount_point: str
    options: set[str]
    optional: list[str]
    fstype: str
    source: str
    super_options: set[str]

    @property
    def propagation(self) -> str:
        tags = [t.split(":")[0] for t in self.optional]
        if "shared" in tags:
            return "shared"
        if "master" in tags:
            return "slave"
        if "unbindable" in tags:
            return "unbindable"
        return "private"


def parse(text: str) -> list[Mount]:
    mounts = []
    for line in text.splitlines():
        if " - " not in line:
            continue
        left, right = line.split(" - ", 1)
        lf = left.split()
        rf = right.split()
        mounts.append(Mount(
            mount_id=int(lf[0]),
            parent_id=int(lf[1]),
            root=_unescape(lf[3]),
            mount_point=_unescape(lf[4]),
            options=set(lf[5].split(",")),
            optional=lf[6:],
            fstype=rf[0],
            source=_unescape(rf[1]) if len(rf) > 1 else "",
            super_options=set(rf[2].split(",")) if len(rf) > 2 else set(),
        ))
    return mounts


def find(mounts: list[Mount], mount_point: str) -> Mount | None:
    """The top-most (last) mount at *mount_point*."""
    found = None
    for m in mounts:
        if m.mount_point == mount_point:
            found = m
    return found
