"""Signal names as runc's `kill` accepts them: SIGKILL, KILL, kill, 9."""

from __future__ import annotations

import _signal

from runtime.errors import RootletError

_BY_NAME = {
    name[3:]: getattr(_signal, name)
    for name in dir(_signal)
    if name.startswith("SIG") and not name.startswith("SIG_") and name[3:].isalnum()
}


def parse(text: str) -> int:
    if text.isdigit():
        number = int(text)
        if 0 < number < _signal.NSIG:
            return number
    else:
        name = text.upper()
        name = name[3:] if name.startswith("SIG") else name
        if name in _BY_NAME:
            return _BY_NAME[name]
        if name.startswith("RTMIN+") and name[6:].isdigit():
            number = _signal.SIGRTMIN + int(name[6:])
            if number <= _signal.SIGRTMAX:
                return number
    raise RootletError(f"unknown signal {text!r}")
