"""The channel between `create` and the container's init.

A SOCK_SEQPACKET socketpair keeps message boundaries, so each message is one
compact JSON object ({"type": ...}). A child failure travels back as
{"type": "error", "step", "errno", "message"} and is raised again in the
parent as the same RootletError; end-of-file means the child died.
"""

from __future__ import annotations

import os

from runtime import _linux, jsonio
from runtime.errors import RootletError


class Channel:
    __slots__ = ("fd",)

    def __init__(self, fd: int):
        self.fd = fd

    @classmethod
    def pair(cls) -> tuple[Channel, Channel]:
        parent, child = _linux.seqpacket_pair()
        return cls(parent), cls(child)

    def send(self, kind: str, **fields) -> None:
        fields["type"] = kind
        _linux.send_message(self.fd, jsonio.dumps(fields).encode())

    def send_error(self, err: BaseException) -> None:
        if isinstance(err, RootletError):
            self.send("error", message=err.message, step=err.step, path=err.path, errno=err.errno)
        elif isinstance(err, OSError):
            self.send("error", message=err.strerror or str(err), step="", path="", errno=err.errno or 0)
        else:
            self.send("error", message=f"{type(err).__name__}: {err}", step="", path="", errno=0)

    def send_fd(self, kind: str, fd: int, **fields) -> None:
        """A message carrying one file descriptor (SCM_RIGHTS)."""
        fields["type"] = kind
        _linux.send_message(self.fd, jsonio.dumps(fields).encode(), fd)

    def receive_fd(self, expected: str, *, what: str = "container init") -> tuple[dict, int]:
        """The next message and the fd it carries (-1 if none; close-on-exec)."""
        data, fd = _linux.receive_message(self.fd)
        try:
            return self._decode(data, expected, what), fd
        except BaseException:
            if fd >= 0:
                os.close(fd)
            raise

    def receive(self, expected: str, *, what: str = "container init") -> dict:
        """The next message, which must be of type `expected`; errors are raised."""
        message, fd = self.receive_fd(expected, what=what)
        if fd >= 0:
            os.close(fd)
        return message

    @staticmethod
    def _decode(data: bytes, expected: str, what: str) -> dict:
        if not data:
            raise RootletError(f"{what} exited before it was ready")
        message = jsonio.loads(data.decode())
        if message["type"] == "error":
            raise RootletError(message["message"], step=message["step"], path=message["path"],
                               errno=message["errno"])
        if message["type"] != expected:
            raise RootletError(f"{what} sent {message['type']!r}, expected {expected!r}")
        return message

    def close(self) -> None:
        os.close(self.fd)


def fork_reported(channel: Channel, fork) -> tuple:
    """Call fork(), which forks and returns (pid, ...); in the parent, report
    the child's pid on `channel` as "pid" and exit. The child gets fork()'s
    result once that report is sent, so that it comes first on the channel."""
    read_end, write_end = os.pipe()
    result = fork()
    if result[0]:
        channel.send("pid", pid=result[0])
        os._exit(0)  # closes write_end: the child reads end-of-file
    os.close(write_end)
    os.read(read_end, 1)
    os.close(read_end)
    return result
