"""JSON without the `json` package.

`import json` pulls in `re` and `enum` and costs ~13 ms on this class of
machine, more than a whole lifecycle step. The C accelerator `_json` that
`json` itself uses is enough for our documents, so the hot path talks to it
directly.
"""

from __future__ import annotations

import _json

from runtime.errors import RootletError


def _constant(name: str) -> float:
    return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


class _Context:
    # The attribute set _json.make_scanner reads from json.JSONDecoder.
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_constant)
    memo: dict = {}


_scan = _json.make_scanner(_Context())
_WHITESPACE = " \t\n\r"


def loads(text: str, *, what: str = "JSON document"):
    """Parse `text`; a syntax error names `what` and the offset."""
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration as err:
        raise RootletError(f"{what}: invalid JSON at offset {err.value}") from None
    except ValueError as err:
        raise RootletError(f"{what}: invalid JSON: {err}") from None
    if text[end:].strip(_WHITESPACE):
        raise RootletError(f"{what}: invalid JSON: extra data at offset {end}")
    return value


def load_file(path: str, *, what: str = ""):
    with open(path, "rb") as stream:
        data = stream.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RootletError(f"{what or path}: not UTF-8") from None
    return loads(text, what=what or path)


_compact = _json.make_encoder(
    None, None, _json.encode_basestring_ascii, None, ":", ",", False, False, True
)


def dumps(value, *, indent: int = 0) -> str:
    """Compact JSON, or indented with `indent` spaces (runc's `state` uses 2)."""
    if not indent:
        return "".join(_compact(value, 0))
    parts: list[str] = []
    _write_indented(value, parts, " " * indent, "\n")
    return "".join(parts)


def _write_indented(value, parts: list, step: str, newline: str) -> None:
    if isinstance(value, dict) and value:
        inner = newline + step
        parts.append("{")
        for number, (key, item) in enumerate(value.items()):
            parts.append(("," if number else "") + inner + _json.encode_basestring_ascii(key) + ": ")
            _write_indented(item, parts, step, inner)
        parts.append(newline + "}")
    elif isinstance(value, list) and value:
        inner = newline + step
        parts.append("[")
        for number, item in enumerate(value):
            parts.append(("," if number else "") + inner)
            _write_indented(item, parts, step, inner)
        parts.append(newline + "]")
    else:
        parts.append("".join(_compact(value, 0)))
