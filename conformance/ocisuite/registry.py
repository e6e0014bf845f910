"""The catalogue of checks: each one names the spec clause it verifies.

A check is a plain function taking a :class:`~ocisuite.context.Context`. It
passes by returning, fails by raising :class:`Fail` (``expect`` does that) and
skips by raising :class:`Skip`. The decorator :func:`check` records it with its
clause so that the report can say, per row, which sentence of the runtime-spec
the result is evidence for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

LEVELS = ("MUST", "SHOULD", "MAY")


class Fail(AssertionError):
    """The runtime did something the clause forbids (or failed to do what it requires)."""


class Skip(Exception):  # noqa: N818 - a verdict, not an error
    """The check could not judge the runtime: host limitation, refusal of an optional feature..."""


class Refused(Skip):
    """The runtime declined a configuration the spec lets it decline; the reason is its own error."""

    def __init__(self, first_error_line: str):
        super().__init__(f"runtime refused: {first_error_line}")


@dataclass(frozen=True)
class Clause:
    """Where the requirement is written: ``doc#section`` plus its RFC 2119 level."""

    anchor: str
    level: str
    summary: str
    since: str = "1.0.0"  # the spec release that introduced the requirement


@dataclass(frozen=True)
class Check:
    name: str
    clause: Clause
    func: Callable


CHECKS: list[Check] = []


def check(anchor: str, level: str, summary: str, since: str = "1.0.0") -> Callable:
    """Register the decorated function as a check of *anchor* at *level*.

    *since* is the runtime-spec release that added the requirement, so that a
    runtime claiming an older spec is not failed on a newer clause.
    """
    if level not in LEVELS:
        raise ValueError(f"unknown level {level}")

    def register(func: Callable) -> Callable:
        name = func.__name__.removeprefix("check_").replace("_", "-")
        if any(c.name == name for c in CHECKS):
            raise ValueError(f"duplicate check name {name}")
        CHECKS.append(Check(name, Clause(anchor, level, summary, since), func))
        return func

    return register


def expect(condition: object, message: str) -> None:
    """Fail the running check with *message* unless *condition* holds."""
    if not condition:
        raise Fail(message)
