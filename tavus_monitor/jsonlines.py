"""The JSON-line format shared by headless mode and ``history --format jsonl``.

One object per line, for ``| jq``. Keys::

    id, received_at (ISO-8601 UTC), family, event_type, conversation_id,
    subject_id, summary, severity, duplicate_of, error, size, source, payload

``source`` is ``callback`` for what Tavus POSTed, ``api`` for an event
``tavus-monitor recover`` fetched from Tavus's API because its callback never came.

``payload`` is the parsed body (``webhook_url`` token redacted) or null; when
it is null the raw body is given as ``body`` (text) or ``body_base64`` (when
not UTF-8). Characters that a terminal would act on (C1 controls, bidi
overrides, line separators) are escaped, so a line printed to a terminal is
inert; ``jq`` decodes them back.

Every line is strict JSON (RFC 8259) that jq 1.6, ``JSON.parse``, Go and orjson
all read. Two kinds of valid body cannot be written back that way; for them
``payload`` is null, the body is given as ``body`` text and ``note`` says why:

- a number beyond a double's range (``1e400``, an integer past 1.8e308):
  Python reads it as infinity, and neither ``Infinity`` nor a rounded or
  replaced value would be the truth;
- nesting deeper than jq 1.6 reads: its parser holds 256 levels, and an object
  takes two (itself and the key whose value is being read), so a payload of
  128 nested objects is already too deep (the line's own object is the 129th).

The raw body is the truth; ``.body | fromjson`` gives jq's own reading of it
where jq can read it. Integers beyond 64 bits that a double can hold are
written digit for digit (jq and ``JSON.parse`` round them, as they would any).
"""

from __future__ import annotations

import base64
import functools
import json
import math
import re
import threading
from datetime import UTC, datetime
from typing import Any

import orjson

from .attempts import StoredAttempt
from .events import Event
from .redact import redact_payload

_TERMINAL_ACTIVE = re.compile(
    "[\u0080-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)

JQ_STACK_LIMIT = 256
"""Slots of jq 1.6's parser stack (``MAX_PARSING_DEPTH``): an array takes one, an
object two. A line that needs more makes ``jq`` stop: "Exceeds depth limit for parsing"."""

_LINE_SLOTS = 2
"""What the line itself takes before its payload: its object and the ``payload`` key."""

_SHALLOW_BODY = 2 * (JQ_STACK_LIMIT - _LINE_SLOTS)
"""A body of at most this many bytes cannot nest too deeply: each slot of nesting
costs it at least two bytes (``[`` and ``]``; ``{"":`` and ``}`` for an object's two)."""

_SHALLOW_RECORD = JQ_STACK_LIMIT // 2
"""Levels of a line that fit jq's stack whatever they are (objects take two slots)."""

NOTE_OUT_OF_RANGE = (
    "payload given as body text: it holds a number beyond a double's range (such as 1e400), "
    "which a JSON line cannot hold"
)
NOTE_TOO_DEEP = (
    f"payload given as body text: it nests deeper than jq 1.6 reads ({JQ_STACK_LIMIT} levels, "
    "an object counting two)"
)

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
"""Built once: ``json.dumps`` with keyword arguments builds a new encoder per call."""


def _orjson_nesting_limit() -> int | None:
    """The most levels of nested lists ``orjson.dumps`` writes (254 in orjson 3.13).

    Found by trying rather than assumed, since it is orjson's choice; None if it
    writes 1,000 levels (then its refusal is no use as a depth check).
    """
    levels: list[Any] = [0]
    for _ in range(1000):
        levels.append([levels[-1]])
    low, high = 0, len(levels) - 1  # levels[low] is written; levels[high] may not be
    try:
        orjson.dumps(levels[high])
        return None
    except orjson.JSONEncodeError:
        pass
    while high - low > 1:
        middle = (low + high) // 2
        try:
            orjson.dumps(levels[middle])
            low = middle
        except orjson.JSONEncodeError:
            high = middle
    return low


def _wrapping() -> int | None:
    limit = _orjson_nesting_limit()
    if limit is None or limit <= _SHALLOW_RECORD:
        return None
    return limit - _SHALLOW_RECORD


_WRAP = _wrapping()
"""Lists a record is wrapped in so that orjson refuses it exactly when it nests more
than :data:`_SHALLOW_RECORD` levels (None: orjson has no usable limit)."""


class _Wrapper(threading.local):
    """:data:`_WRAP` nested lists, made once per thread; ``hole`` is the innermost."""

    def __init__(self) -> None:
        self.hole: list[Any] = [None]
        self.outer: list[Any] = self.hole
        for _ in range((_WRAP or 1) - 1):
            self.outer = [self.outer]


_WRAPPER = _Wrapper()


def iso_time(epoch: float) -> str:
    """``epoch`` as ISO-8601 UTC to the millisecond, e.g. ``2026-11-24T09:15:02.417Z``.

    The same text as ``datetime.fromtimestamp(epoch, UTC).isoformat(timespec=
    "milliseconds")`` with ``Z``, which costs a datetime per line; here only a
    new second does (headless mode writes thousands of lines a second).
    """
    fraction, whole = math.modf(epoch)
    second, micro = int(whole), round(fraction * 1_000_000)  # datetime's rounding
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    elif micro < 0:
        second, micro = second - 1, micro + 1_000_000
    return f"{_iso_second(second)}.{micro // 1000:03d}Z"


@functools.lru_cache(maxsize=64)
def _iso_second(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds")[: -len("+00:00")]


def event_record(event: Event) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": event.id,
        "received_at": iso_time(event.received_at),
        "family": str(event.family),
        "event_type": event.event_type,
        "conversation_id": event.conversation_id,
        "subject_id": event.subject_id,
        "summary": event.summary,
        "severity": str(event.severity),
        "duplicate_of": event.duplicate_of,
        "error": event.error,
        "size": event.size,
        "source": event.source,
        "payload": redact_payload(event.payload),
    }
    if event.payload is None:
        record.update(_raw_body(event.body))
    return record


def attempt_record(stored: StoredAttempt) -> dict[str, Any]:
    """One attempt to send an event to a handler, as ``history --format jsonl`` lists it."""
    attempt = stored.attempt
    return {
        "kind": stored.kind,
        "target": attempt.target,
        "at": iso_time(attempt.started_at),
        "status": attempt.status,
        "latency_ms": round(attempt.latency_ms, 1),
        "failure": attempt.failure,
        "error": attempt.error,
    }


def _raw_body(body: bytes) -> dict[str, str]:
    try:
        return {"body": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"body_base64": base64.b64encode(body).decode("ascii")}


def event_line(event: Event, extra: dict[str, Any] | None = None) -> str:
    """One JSON line (no trailing newline) for ``event``: strict JSON that jq 1.6 reads.

    ``extra``: keys added after the event's own (``history`` adds ``attempts``).

    orjson writes it (it escapes every C0 control character and writes no
    newline). A payload orjson did not read may hold numbers it cannot write,
    and a long body may nest too deeply for jq; those are checked (see the
    module notes).
    """
    record = event_record(event)
    if extra:
        record.update(extra)
    text = None
    if not event.parsed.standard_parser:
        text = _fast_line(record, shallow=len(event.body) <= _SHALLOW_BODY)
    if text is None:
        text = _checked_line(record, event)
    if text.isascii():
        return text
    return _TERMINAL_ACTIVE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _fast_line(record: dict[str, Any], *, shallow: bool) -> str | None:
    """``record`` written by orjson, unless it may nest more than jq reads (then None).

    A ``shallow`` record (its body too short to nest deeply) is written as it
    is. Any other is wrapped in :data:`_WRAP` lists first: orjson refuses to
    write more levels than its limit, so its refusal is the depth check, for
    about 1 µs instead of a walk through the payload (80 µs on a 200-turn
    transcript). None also when orjson refuses a shallow record (254 nested
    arrays fit in 508 bytes, but not in the levels orjson writes).
    """
    if shallow:
        try:
            return orjson.dumps(record).decode("utf-8")
        except orjson.JSONEncodeError:
            return None
    if _WRAP is None:  # no cheap depth check: the caller walks the payload
        return None
    wrapper = _WRAPPER
    wrapper.hole[0] = record
    try:
        written = orjson.dumps(wrapper.outer)
    except orjson.JSONEncodeError:
        return None
    finally:
        wrapper.hole[0] = None
    return written[_WRAP:-_WRAP].decode("utf-8")


def _checked_line(record: dict[str, Any], event: Event) -> str:
    """The line for a payload that may not fit one: checked, then written, else as text."""
    note = _unwritable(record["payload"])
    if note is None:
        try:
            return orjson.dumps(record).decode("utf-8")
        except orjson.JSONEncodeError:
            pass  # integers beyond 64 bits, or more levels than orjson writes
        try:
            return _ENCODER.encode(record)
        except (ValueError, RecursionError):  # not expected after the check; never raise
            note = NOTE_TOO_DEEP
    record["payload"] = None  # the last key: body and note follow it
    record.update(_raw_body(event.body))
    record["note"] = note
    return orjson.dumps(record).decode("utf-8")


def _unwritable(payload: Any) -> str | None:
    """Why ``payload`` cannot be written in a line (a note), or None when it can.

    Iterative, so a payload nested a thousand levels cannot exhaust the stack.
    """
    pending: list[tuple[Any, int]] = [(payload, _LINE_SLOTS)]
    while pending:
        value, used = pending.pop()
        if isinstance(value, dict):
            if used + 1 > JQ_STACK_LIMIT:
                return NOTE_TOO_DEEP
            pending.extend((item, used + 2) for item in value.values())
        elif isinstance(value, list):
            if used + 1 > JQ_STACK_LIMIT:
                return NOTE_TOO_DEEP
            pending.extend((item, used + 1) for item in value)
        elif _out_of_range(value):
            return NOTE_OUT_OF_RANGE
    return None


def _out_of_range(value: Any) -> bool:
    """Whether ``value`` is a number no double holds (JSON readers refuse or distort it)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, int) and value.bit_length() > 1000:
        try:
            float(value)
        except OverflowError:
            return True
    return False
