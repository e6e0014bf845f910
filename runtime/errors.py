"""One exception hierarchy for everything rootlet reports to a user.

The CLI turns any RootletError into one line on stderr and one error entry in
the log (`--log`, `--log-format json`), which is what containerd shows its
users; only `--debug` adds a traceback.
"""

from __future__ import annotations


class RootletError(Exception):
    """A failure a user can act on.

    `step` names what rootlet was doing ("mount proc on /proc"), `path` the
    file or JSON path involved and `errno` the kernel's answer, when known.
    """

    def __init__(self, message: str, *, step: str = "", path: str = "", errno: int = 0):
        super().__init__(message)
        self.message = message
        self.step = step
        self.path = path
        self.errno = errno

    def __str__(self) -> str:
        text = self.message
        if self.step:
            text = f"{self.step}: {text}"
        return text


class ConfigError(RootletError):
    """config.json is invalid; `path` is the JSON path (`process.args`)."""

    def __init__(self, path: str, message: str):
        super().__init__(message, path=path)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ContainerNotFound(RootletError):
    def __init__(self, container_id: str):
        super().__init__(f"container {container_id!r} does not exist")


class ContainerExists(RootletError):
    def __init__(self, container_id: str):
        super().__init__(f"container {container_id!r} already exists")


class WrongState(RootletError):
    """The container is not in a state that allows the action (spec: runtime.md, Operations)."""
