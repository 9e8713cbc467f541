"""``tavus-monitor export``: stored deliveries as JSON lines, raw body files or a HAR file.

Each writer takes an iterator of events (:func:`tavus_monitor.storewalk.walk`
reads them a page at a time) and writes each one before reading the next, so a
million events export in the memory of one page. That is why the HAR file,
one JSON document, is not built as a dict and dumped: its envelope is written
by hand around one ``orjson.dumps`` per entry.

- **jsonl**: the lines of ``history --format jsonl`` and headless mode
  (:mod:`tavus_monitor.jsonlines`), oldest first.
- **raw**: one file per delivery, the body byte for byte as Tavus sent it (the
  token in ``webhook_url`` included: these are test fixtures, and a fixture
  that is not what arrived tests something else), named ``000042-system.shutdown.json``
  (``.bin`` for a body that is not UTF-8 text).
- **har**: HTTP Archive 1.2, one entry per delivery: the request as it arrived
  (its headers, its body, the callback path with the token redacted) and what
  the monitor answered (``200`` and ``{"status":"success"}``; an event is stored
  only when it was answered so). HAR is for sharing and for HTTP tools, so the
  token is redacted in the body's text too (see :func:`redact_body`), and
  ``bodySize`` stays the size that was delivered. HAR 1.2 gives only a
  response's content an ``encoding``; a request body that is not UTF-8 is
  given as ``text`` decoded with replacement characters (what a viewer can show)
  plus ``_base64``, the exact bytes (HAR allows fields starting with ``_``),
  and a ``comment`` saying so. ``time`` and ``timings`` are 0: the store keeps
  when a delivery arrived, not how long its exchange took.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from . import __version__
from .events import Event, header
from .jsonlines import event_line, iso_time
from .redact import redact_path

FORMATS = ("jsonl", "raw", "har")

ANSWER_BODY = b'{"status":"success"}'
"""What the monitor answers a stored delivery (``server._SUCCESS_BYTES``; a test holds
the two equal)."""
ANSWER_HEADERS = (
    ("content-length", str(len(ANSWER_BODY))),
    ("content-type", "application/json"),
)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AGO = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_TOKEN_IN_BODY = re.compile(rb"((?:^|/)webhook/+)[^/?#\s\"\\]+", re.IGNORECASE)
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_TYPE_IN_NAME = 80


class ExportError(Exception):
    """A value the user gave cannot be used; the text is one sentence."""


def parse_since(text: str, now: datetime | None = None) -> float:
    """``2h``, ``30m``, ``7d`` (that long before ``now``) or an ISO date or time (local
    time unless it names a zone) as epoch seconds."""
    now = now or datetime.now().astimezone()
    match = _AGO.fullmatch(text.strip())
    if match:
        amount, unit = float(match.group(1)), match.group(2).lower()
        return (now - timedelta(seconds=amount * _UNITS[unit])).timestamp()
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ExportError(
            f"--since {text!r} is neither a time ago (30m, 2h, 7d) nor an ISO date or time "
            "(2026-11-24, 2026-11-24T09:00)."
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # the user's local time, as a date they type means
    return moment.timestamp()


# ------------------------------------------------------------------ jsonl


def write_jsonl(events: Iterable[Event], sink: IO[str]) -> int:
    """One line per event (:func:`tavus_monitor.jsonlines.event_line`); returns how many."""
    count = 0
    for event in events:
        sink.write(event_line(event))
        sink.write("\n")
        count += 1
    return count


# -------------------------------------------------------------------- raw


def raw_name(event: Event) -> str:
    """``000042-system.shutdown.json``: the id (sorted as arrived), the type (made safe
    for any file system), ``.json`` for a text body, ``.bin`` for bytes."""
    kind = _UNSAFE_NAME.sub("_", event.event_type).strip("._")[:_TYPE_IN_NAME] or "event"
    try:
        event.body.decode("utf-8")
        suffix = "json"
    except UnicodeDecodeError:
        suffix = "bin"
    return f"{event.id:06d}-{kind}.{suffix}"


def write_raw(events: Iterable[Event], directory: Path) -> int:
    """Each event's body, byte for byte, in ``directory`` (made if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    count = 0
    for event in events:
        (directory / raw_name(event)).write_bytes(event.body)
        count += 1
    return count


# -------------------------------------------------------------------- har


def write_har(events: Iterable[Event], sink: IO[str]) -> int:
    """An HTTP Archive 1.2 document, written entry by entry; returns how many."""
    creator = {"name": "tavus-monitor", "version": __version__}
    sink.write('{"log": {"version": "1.2", "creator": ')
    sink.write(json.dumps(creator))
    sink.write(', "pages": [], "entries": [')
    count = 0
    for event in events:
        sink.write(",\n" if count else "\n")
        sink.write(orjson.dumps(har_entry(event)).decode("utf-8"))
        count += 1
    sink.write("\n]}}\n")
    return count


def har_entry(event: Event) -> dict[str, Any]:
    """One delivery as a HAR 1.2 entry: the request as received, the monitor's answer."""
    url = _request_url(event)
    shown, redacted = redact_body(event.body)
    post_data: dict[str, Any] = {
        "mimeType": header(event.headers, "content-type") or "application/json",
    }
    notes = []
    try:
        post_data["text"] = shown.decode("utf-8")
    except UnicodeDecodeError:
        post_data["text"] = shown.decode("utf-8", errors="replace")
        post_data["_base64"] = base64.b64encode(shown).decode("ascii")
        notes.append("the body is not UTF-8: text has replacement characters, _base64 the bytes")
    if redacted:
        notes.append("the webhook token in the body is redacted")
    if notes:
        post_data["comment"] = "; ".join(notes)
    entry: dict[str, Any] = {
        "startedDateTime": iso_time(event.received_at),
        "time": 0,
        "request": {
            "method": "POST",
            "url": url,
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": [{"name": name, "value": value} for name, value in event.headers],
            "queryString": [
                {"name": name, "value": value}
                for name, value in parse_qsl(urlsplit(url).query, keep_blank_values=True)
            ],
            "postData": post_data,
            "headersSize": -1,
            "bodySize": event.size,
        },
        "response": {
            "status": 200,
            "statusText": "OK",
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": [{"name": name, "value": value} for name, value in ANSWER_HEADERS],
            "content": {
                "size": len(ANSWER_BODY),
                "mimeType": "application/json",
                "text": ANSWER_BODY.decode("ascii"),
            },
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": len(ANSWER_BODY),
        },
        "cache": {},
        "timings": {"send": 0, "wait": 0, "receive": 0},
        "comment": f"tavus-monitor event {event.id}: {event.event_type}",
    }
    if event.remote_addr:  # HAR has no field for the client's address (serverIPAddress is ours)
        entry["comment"] += f" from {event.remote_addr}"
    return entry


def redact_body(body: bytes) -> tuple[bytes, bool]:
    """``body`` with the segment after ``webhook/`` in any URL replaced by ``<token>``
    (as :func:`tavus_monitor.redact.redact_url`, stopping at a JSON string's end), and
    whether anything was."""
    shown, count = _TOKEN_IN_BODY.subn(rb"\1<token>", body)
    return shown, count > 0


def _request_url(event: Event) -> str:
    """The URL the delivery was posted to, as far as its headers tell, token redacted."""
    host = header(event.headers, "x-forwarded-host") or header(event.headers, "host")
    scheme = header(event.headers, "x-forwarded-proto") or "http"
    path = redact_path(event.path)
    if not path.startswith("/"):
        path = "/" + path
    return f"{scheme}://{host or 'localhost'}{path}"


def exported(events: Iterator[Event], fmt: str, sink: IO[str] | None, out: Path | None) -> int:
    """Write ``events`` as ``fmt`` to ``sink`` (jsonl, har) or into ``out`` (raw)."""
    if fmt == "raw":
        assert out is not None
        return write_raw(events, out)
    assert sink is not None
    return write_jsonl(events, sink) if fmt == "jsonl" else write_har(events, sink)
