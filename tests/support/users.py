"""Unprivileged-user helpers for the rootless suite."""

from __future__ import annotations


def subid_range(path: str, user: str, uid: int) -> tuple[int, int] | None:
    """(start, count) of the first /etc/subuid or /etc/subgid range of *user*."""
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[0] in (user, str(uid)):
                    return int(parts[1]), int(parts[2])
    except OSError:
        pass
    return None
