"""The event model: what one delivery is, decided in exactly one place.

``classify(body, headers)`` is pure: bytes and headers in, a
:class:`Classification` out, no I/O and no exceptions. The store adds what
needs history (an id and ``duplicate_of``) and turns it into an :class:`Event`.
Every view reads these fields instead of re-parsing payloads its own way.
What differs per event type (family, summary, severity) is data in
:mod:`tavus_monitor.event_types`; this module finds the type and applies it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any

from . import callbacks as cb
from . import event_types
from .event_types import SUMMARY_LIMIT as SUMMARY_LIMIT
from .event_types import Family as Family
from .event_types import Severity as Severity
from .event_types import one_line as one_line
from .jsonbody import ParsedBody, parse_json

Headers = tuple[tuple[str, str], ...]

API_PATH_PREFIX = "api:"
"""How a stored ``path`` marks an event that came from Tavus's API, not as a callback."""
SOURCE_API = "api"
SOURCE_CALLBACK = "callback"
RECOVERED_PREFIX = "recovered · "
"""How the summary of an event recovered from the API begins, so every list shows it."""


@dataclass(frozen=True, slots=True)
class Classification:
    """What ``classify`` decides about a body, before it has a store id."""

    family: Family
    event_type: str
    conversation_id: str | None
    subject_id: str | None
    """The conversation, replica or video the callback is about."""
    summary: str
    error: str | None = None
    """Why the body is malformed (or of unknown shape); None when it is understood."""
    occurred_at: float | None = None
    """The time the payload itself gives, if any (epoch seconds)."""
    severity: Severity = Severity.INFO

    parsed: ParsedBody | None = field(default=None, compare=False, repr=False)
    """The parse ``classify`` made, handed on so the stored Event does not parse again."""

    @property
    def is_join(self) -> bool:
        return self.event_type in cb.JOIN_EVENT_TYPES


@dataclass(frozen=True, slots=True)
class EventRow:
    """An event without its body: what lists show, cheap to hold by the thousand."""

    id: int
    received_at: float
    family: Family
    event_type: str
    conversation_id: str | None
    subject_id: str | None
    summary: str
    duplicate_of: int | None
    error: str | None
    size: int
    occurred_at: float | None = None
    severity: Severity = Severity.INFO

    @classmethod
    def of(cls, event: Event) -> EventRow:
        return cls(
            event.id,
            event.received_at,
            event.family,
            event.event_type,
            event.conversation_id,
            event.subject_id,
            event.summary,
            event.duplicate_of,
            event.error,
            event.size,
            event.occurred_at,
            event.severity,
        )


_ROW_FIELDS = tuple(row_field.name for row_field in fields(EventRow))


def row_fields(values: Sequence[Any]) -> dict[str, Any]:
    """EventRow's fields from plain values in field order (more values are ignored).

    The order in which the store selects a row's columns and the writer
    process sends back what it stored, so both read them in one place.
    """
    named = dict(zip(_ROW_FIELDS, values, strict=False))
    named["family"] = Family(named["family"])
    named["severity"] = Severity(named["severity"])
    return named


@dataclass(frozen=True, kw_only=True)
class Event(EventRow):
    """One stored delivery: the bytes as received plus what they mean.

    An Event is an :class:`EventRow` that also carries its body and request
    facts; lists hold rows, the inspector and the exporters hold Events.
    """

    body: bytes
    headers: Headers = ()
    remote_addr: str | None = None
    path: str = "/webhook"
    sha256: bytes = field(default=b"", repr=False)

    @classmethod
    def classified(
        cls,
        c: Classification,
        *,
        event_id: int,
        received_at: float,
        body: bytes,
        duplicate_of: int | None = None,
        headers: Headers = (),
        remote_addr: str | None = None,
        path: str = "/webhook",
        sha256: bytes = b"",
    ) -> Event:
        """What ``body``, classified as ``c``, is once stored with ``event_id``.

        ``c``'s parse becomes the Event's (``parsed`` is a cached property), so
        the body is parsed once between classification and the JSON line.
        """
        event = cls(
            id=event_id,
            received_at=received_at,
            family=c.family,
            event_type=c.event_type,
            conversation_id=c.conversation_id,
            subject_id=c.subject_id,
            summary=c.summary,
            duplicate_of=duplicate_of,
            error=c.error,
            size=len(body),
            occurred_at=c.occurred_at,
            severity=c.severity,
            body=body,
            headers=headers,
            remote_addr=remote_addr,
            path=path,
            sha256=sha256,
        )
        if c.parsed is not None:
            event.__dict__["parsed"] = c.parsed
        return event

    @property
    def source(self) -> str:
        """``api`` for an event recovered from Tavus's API, ``callback`` for one Tavus POSTed.

        Recovery (:mod:`tavus_monitor.recover`) stores what a verbose GET returned as a
        delivery whose ``path`` starts with ``api:``: the request it came from, in the
        column that otherwise holds the request's path, so no schema change was needed.
        """
        return SOURCE_API if self.path.startswith(API_PATH_PREFIX) else SOURCE_CALLBACK

    @cached_property
    def parsed(self) -> ParsedBody:
        return parse_json(self.body, header(self.headers, "content-type"))

    @property
    def payload(self) -> Any:
        """The parsed body, or None when it could not be parsed."""
        return self.parsed.value


def header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    """The first header called ``name`` (case-insensitive)."""
    wanted = name.lower()
    for key, value in headers:
        if key.lower() == wanted:
            return value
    return None


def body_digest(body: bytes) -> bytes:
    """The identity of a body: two deliveries with equal digests are one redelivery."""
    return hashlib.sha256(body).digest()


def classify(body: bytes, headers: Iterable[tuple[str, str]] = ()) -> Classification:
    """Decide what a delivery is. Pure and total: never raises, never does I/O."""
    parsed = parse_json(body, header(headers, "content-type"))
    if parsed.error is not None:
        return _with_parse(_malformed(parsed.error), parsed)
    value = parsed.value
    if not isinstance(value, dict):
        kind = type(value).__name__
        names = {"list": "an array", "str": "a string", "NoneType": "null", "bool": "a boolean"}
        reason = f"JSON {names.get(kind, 'a number')}, not an object"
        return _with_parse(_malformed(reason), parsed)
    return _with_parse(classify_object(value), parsed)


def _with_parse(classification: Classification, parsed: ParsedBody) -> Classification:
    """Attach the parse to a Classification no one has seen yet.

    ``dataclasses.replace`` would copy every field (a third of classify's time on
    the ingest path); setting the one field on the fresh object is equivalent.
    """
    object.__setattr__(classification, "parsed", parsed)
    return classification


def classify_object(payload: Mapping[str, Any]) -> Classification:
    """Classify a parsed JSON object (section 5 of the callback notes)."""
    obj = dict(payload)
    if "event_type" in obj:
        event_type = obj["event_type"]
        if isinstance(event_type, str) and event_type.strip():
            return _classify_conversation(obj, event_type.strip())
        return _unknown(obj, "event_type is present but is not a non-empty string")
    if "video_id" in obj:
        return _classify_video(obj)
    if "replica_id" in obj and "status" in obj:
        return _classify_replica(obj)
    return _unknown(obj, None)


# ------------------------------------------------------------------ families


def _malformed(reason: str) -> Classification:
    return Classification(
        family=Family.MALFORMED,
        event_type="malformed",
        conversation_id=None,
        subject_id=None,
        summary=one_line(f"malformed: {reason}"),
        error=reason,
        severity=Severity.ERROR,
    )


def _unknown(obj: dict[str, Any], reason: str | None) -> Classification:
    keys = ", ".join(sorted(str(key) for key in obj)[:8]) or "no keys"
    summary = f"unknown callback shape ({keys})"
    if reason:
        summary = f"unknown callback: {reason}"
    return Classification(
        family=Family.UNKNOWN,
        event_type="unknown",
        conversation_id=cb.as_text(obj.get("conversation_id")),
        subject_id=None,
        summary=one_line(summary),
        error=reason,
        severity=Severity.WARNING,
    )


def _classify_conversation(obj: dict[str, Any], event_type: str) -> Classification:
    entry = event_types.conversation_type(event_type)
    props = cb.as_dict(obj.get("properties"))
    conversation_id = cb.as_text(obj.get("conversation_id"))
    return Classification(
        family=entry.family,
        event_type=event_type,
        conversation_id=conversation_id,
        subject_id=conversation_id,
        summary=one_line(entry.summary(event_type, obj, props)),
        occurred_at=cb.parse_time(obj.get("timestamp")),
        severity=entry.rate(event_type, obj, props),
    )


_NO_PROPERTIES: dict[str, Any] = {}
"""Replica and video bodies are flat: their summaries read the body itself."""


def _classify_replica(obj: dict[str, Any]) -> Classification:
    event_type = f"replica.{cb.as_text(obj.get('status')) or 'unknown'}"
    entry = event_types.lookup(Family.REPLICA, event_type)
    return Classification(
        family=Family.REPLICA,
        event_type=event_type,
        conversation_id=None,
        subject_id=cb.as_text(obj.get("replica_id")),
        summary=one_line(entry.summary(event_type, obj, _NO_PROPERTIES)),
        severity=entry.rate(event_type, obj, _NO_PROPERTIES),
    )


def _classify_video(obj: dict[str, Any]) -> Classification:
    event_type = f"video.{cb.as_text(obj.get('status')) or 'unknown'}"
    entry = event_types.lookup(Family.VIDEO, event_type)
    return Classification(
        family=Family.VIDEO,
        event_type=event_type,
        conversation_id=None,
        subject_id=cb.as_text(obj.get("video_id")),
        summary=one_line(entry.summary(event_type, obj, _NO_PROPERTIES)),
        occurred_at=cb.parse_time(obj.get("updated_at")),
        severity=entry.rate(event_type, obj, _NO_PROPERTIES),
    )


# ------------------------------------------- what the store takes and refuses


@dataclass(frozen=True, slots=True)
class Delivery:
    """A request body as it arrived, with the request facts worth keeping."""

    body: bytes
    headers: Headers = ()
    received_at: float = 0.0
    remote_addr: str | None = None
    path: str = "/webhook"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A request that was refused (wrong token, wrong path, too large, ...)."""

    id: int
    received_at: float
    method: str
    path: str
    """The path with any token redacted."""
    remote_addr: str | None
    size: int | None
    status: int
    reason: str


class StoreError(Exception):
    """The store could not keep a delivery (disk full, file unreadable, ...)."""


class StoreFileLost(StoreError):
    """The store file was deleted or replaced under the running monitor."""
