"""Defensive parsing of callback bodies.

A callback body is untrusted bytes. The standard library's ``json`` module is
lenient where we must be strict (it accepts ``NaN`` and lone surrogates) and
fails in ways that are not ``ValueError`` (``RecursionError`` on deep nesting),
so every way a body can be wrong is turned here into one plain reason, and
nothing raises.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from typing import Any

import orjson

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


@dataclass(frozen=True, slots=True)
class ParsedBody:
    """The outcome of parsing a body: a value, or ``None`` with the reason."""

    value: Any
    error: str | None
    standard_parser: bool = False
    """Whether the standard library read the body (orjson refused it, or it may hold
    integers beyond 64 bits). Its numbers are then Python's reading: integers of any
    size, and infinity for one beyond a double's range (``1e400``), which no JSON
    writer may write; :mod:`tavus_monitor.jsonlines` checks such values before writing."""


class _NonStandardConstant(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _reject_constant(name: str) -> Any:
    raise _NonStandardConstant(name)


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
"""Built once: ``json.loads`` with a keyword argument builds a new decoder per call."""

_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_DIGIT_RUN = b"0" * 19
"""orjson reads integers beyond 64 bits as floats; bodies that may hold one (19 digits
in a row anywhere) take the exact (standard library) path."""


def _may_hold_long_integer(body: bytes) -> bool:
    """Whether ``body`` has 19 ASCII digits in a row (what ``re`` ``\\d{19}`` finds).

    Mapping digits to "0" and the rest to " " and then a substring search is
    about ten times faster than the regular expression on a transcript.
    """
    return _LONG_DIGIT_RUN in body.translate(_DIGITS_AS_ZEROS)


def parse_json(body: bytes, content_type: str | None = None) -> ParsedBody:
    """Parse ``body`` as strict JSON (RFC 8259), never raising.

    ``content_type`` only sharpens the reason given for a body that is not
    JSON (a form post says so instead of "expecting value").
    """
    if not _may_hold_long_integer(body):
        # The fast path: orjson is strict (no NaN, no lone surrogates, no BOM, valid
        # UTF-8), so whatever it accepts is valid JSON; whatever it refuses goes on to
        # the path below, which says exactly why.
        try:
            return ParsedBody(orjson.loads(body), None)
        except orjson.JSONDecodeError:
            pass
    if not body.strip():
        return ParsedBody(None, "empty body")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ParsedBody(None, f"not UTF-8: byte 0x{body[exc.start]:02x} at offset {exc.start}")
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        value = _DECODER.decode(text)
    except _NonStandardConstant as exc:
        return ParsedBody(None, f"not valid JSON: {exc.name} is not a JSON number")
    except json.JSONDecodeError as exc:
        return ParsedBody(None, _not_json_reason(exc, text, content_type))
    except RecursionError:
        return ParsedBody(None, "not parsed: JSON nested too deeply (over ~1,000 levels)")
    except ValueError:
        # int() refuses integers over sys.get_int_max_str_digits() digits.
        limit = sys.get_int_max_str_digits()
        return ParsedBody(None, f"not parsed: an integer longer than {limit:,} digits")
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        return ParsedBody(None, "not valid JSON text: a \\u escape is a lone UTF-16 surrogate")
    return ParsedBody(value, None, standard_parser=True)


def _not_json_reason(exc: json.JSONDecodeError, text: str, content_type: str | None) -> str:
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type == "application/x-www-form-urlencoded" or (
        "=" in text[:200] and not text.lstrip().startswith(("{", "["))
    ):
        shown = media_type or "no Content-Type"
        return f"form-encoded body ({shown}), not JSON"
    if exc.pos >= len(text.rstrip()):
        return f"not JSON: body ends early (truncated?) at line {exc.lineno} column {exc.colno}"
    if exc.msg.startswith("Unterminated string"):
        # The string runs to the end of the body; the position is where it starts.
        return (
            "not JSON: body ends early (truncated?) inside a string starting at "
            f"line {exc.lineno} column {exc.colno}"
        )
    # Some messages end in " at" ("Invalid control character at"); avoid "at at".
    message = exc.msg.removesuffix(" at")
    return f"not JSON: {message} at line {exc.lineno} column {exc.colno}"


def _has_lone_surrogate(value: Any) -> bool:
    """True when any string (key or value) in ``value`` holds a lone surrogate.

    Iterative so a deep (but parseable) document cannot exhaust the stack.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
