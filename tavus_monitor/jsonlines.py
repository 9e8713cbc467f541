"""The JSON-line format shared by headless mode and ``history --format jsonl``.

One object per line, for ``| jq``. Keys::

    id, received_at (ISO-8601 UTC), family, event_type, conversation_id,
    subject_id, summary, severity, duplicate_of, error, size, payload

``payload`` is the parsed body (``webhook_url`` token redacted) or null; when
it is null the raw body is given as ``body`` (text) or ``body_base64`` (when
not UTF-8). Characters that a terminal would act on (C1 controls, bidi
overrides, line separators) are escaped, so a line printed to a terminal is
inert; ``jq`` decodes them back.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import re
from datetime import UTC, datetime
from typing import Any

import orjson

from .events import Event
from .redact import redact_payload

_TERMINAL_ACTIVE = re.compile(
    "[\u0080-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
"""Built once: ``json.dumps`` with keyword arguments builds a new encoder per call."""


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
        "payload": redact_payload(event.payload),
    }
    if event.payload is None:
        try:
            record["body"] = event.body.decode("utf-8")
        except UnicodeDecodeError:
            record["body_base64"] = base64.b64encode(event.body).decode("ascii")
    return record


def event_line(event: Event) -> str:
    """One JSON line (no trailing newline) for ``event``."""
    record = event_record(event)
    try:
        # orjson escapes every C0 control character and writes no newline.
        text = orjson.dumps(record).decode("utf-8")
    except (TypeError, orjson.JSONEncodeError):
        # Integers beyond 64 bits or nesting beyond orjson's limit: the standard encoder.
        text = _standard_line(record, event)
    if text.isascii():
        return text
    return _TERMINAL_ACTIVE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _standard_line(record: dict[str, Any], event: Event) -> str:
    try:
        return _ENCODER.encode(record)
    except (RecursionError, ValueError):
        # A payload nested too deeply to re-encode: give the bytes instead.
        record["payload"] = None
        record["body"] = event.body.decode("utf-8", errors="replace")
        return _ENCODER.encode(record)
