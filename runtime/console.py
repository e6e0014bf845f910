"""A terminal for `rootlet run` in the foreground without --console-socket.

rootlet plays the console socket's other end itself: it receives the pty
master from the init, puts the caller's terminal in raw mode, and copies
bytes both ways until the container exits, as `runc run` does.
"""

from __future__ import annotations

import _socket
import os
import time

from runtime import _linux

_BUFFER = 65536


class Relay:
    def __init__(self) -> None:
        self.directory = f"/tmp/rootlet-console-{os.getpid()}-{time.monotonic_ns()}"
        os.mkdir(self.directory, 0o700)
        self.socket_path = f"{self.directory}/sock"
        self.listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        self.listener.bind(self.socket_path)
        self.listener.listen(1)

    def close(self) -> None:
        self.listener.close()
        try:
            os.unlink(self.socket_path)
            os.rmdir(self.directory)
        except OSError:
            pass

    def _receive_master(self) -> int:
        connection, _ = self.listener._accept()
        try:
            _, master = _linux.receive_message(connection)
        finally:
            os.close(connection)
        if master < 0:
            raise OSError("no pty master received from the container")
        return master

    def copy_until_exit(self, pid: int) -> int:
        from runtime.run import exit_code

        master = self._receive_master()
        self.close()
        _follow_window_size(master)
        saved = _make_raw(0)
        try:
            _copy(master, pid)
        finally:
            if saved is not None:
                import termios

                try:
                    termios.tcsetattr(0, termios.TCSADRAIN, saved)
                except termios.error:
                    pass  # our terminal is gone
            os.close(master)
        _, status = os.waitpid(pid, 0)
        return exit_code(status)


def _follow_window_size(master: int) -> None:
    """Give the container's terminal our terminal's size, now and on SIGWINCH."""
    if not os.isatty(0):
        return
    import _signal
    import fcntl
    import termios

    def copy(*_args) -> None:
        packed = fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8)
        rows, cols = int.from_bytes(packed[0:2], "little"), int.from_bytes(packed[2:4], "little")
        _linux.set_window_size(master, rows, cols)

    copy()
    _signal.signal(_signal.SIGWINCH, copy)


def _make_raw(fd: int):
    if not os.isatty(fd):
        return None
    import termios

    saved = termios.tcgetattr(fd)
    raw = termios.tcgetattr(fd)
    raw[0] &= ~(termios.BRKINT | termios.ICRNL | termios.INPCK | termios.ISTRIP | termios.IXON)
    raw[1] &= ~termios.OPOST
    raw[3] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN | termios.ISIG)
    termios.tcsetattr(fd, termios.TCSADRAIN, raw)  # keep what was typed ahead
    return saved


def _copy(master: int, pid: int) -> None:
    pidfd = os.pidfd_open(pid)
    watched = [master, 0, pidfd]
    try:
        while True:
            for fd in _linux.wait_readable(watched):
                if fd == master:
                    try:
                        data = os.read(master, _BUFFER)
                    except OSError:
                        return  # EIO: every slave fd is closed
                    if not data:
                        return
                    os.write(1, data)
                elif fd == 0:
                    try:
                        data = os.read(0, _BUFFER)
                    except OSError:
                        data = b""
                    if data:
                        os.write(master, data)
                        continue
                    watched.remove(0)
                    if os.isatty(0) or not _end_of_input(master):
                        return  # our terminal hung up: closing the master hangs up the container's
                else:
                    _drain(master)
                    return
    finally:
        os.close(pidfd)


def _end_of_input(master: int) -> bool:
    """Input from a pipe or file ended: type the terminal's end-of-file
    character (^D), as a person would. False if the container's pty is gone."""
    try:
        os.write(master, b"\x04")
    except OSError:
        return False
    return True


def _drain(master: int) -> None:
    while _linux.wait_readable([master], 0):
        try:
            data = os.read(master, _BUFFER)
        except OSError:
            return
        if not data:
            return
        os.write(1, data)
