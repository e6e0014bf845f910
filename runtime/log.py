"""runc's logging contract: `--log FILE` gets one entry per line, as logfmt
text or, with `--log-format json`, as {"level", "msg", "time"} objects;
containerd reads the last error entry of that file and shows it to its user.
Errors also go to stderr as one line."""

from __future__ import annotations

import os
import time

from runtime import jsonio

_LEVELS = {"debug": 0, "info": 1, "warning": 2, "error": 3}


class _Settings:
    path = ""
    json = False
    debug = False


settings = _Settings()


def configure(path: str, log_format: str, debug: bool) -> None:
    settings.path = path
    settings.json = log_format == "json"
    settings.debug = debug


def _now() -> str:
    now = time.time()
    local = time.localtime(now)
    offset = time.strftime("%z", local)
    return time.strftime("%Y-%m-%dT%H:%M:%S", local) + f".{int(now % 1 * 1e9):09d}" + \
        f"{offset[:3]}:{offset[3:]}"


def _entry(level: str, message: str) -> str:
    if settings.json:
        return jsonio.dumps({"level": level, "msg": message, "time": _now()}) + "\n"
    return f"time={jsonio.dumps(_now())} level={level} msg={jsonio.dumps(message)}\n"


def write(level: str, message: str) -> None:
    if level == "debug" and not settings.debug:
        return
    if settings.path:
        try:
            fd = os.open(settings.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, _entry(level, message).encode())
            finally:
                os.close(fd)
            if level != "error":
                return
        except OSError:
            pass
    if level == "error":
        os.write(2, f"rootlet: {message}\n".encode())
    elif not settings.path:
        os.write(2, _entry(level, message).encode())


def error(message: str) -> None:
    write("error", message)


def warning(message: str) -> None:
    write("warning", message)


def debug(message: str) -> None:
    write("debug", message)
