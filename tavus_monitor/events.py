"""The event model: what one delivery is, decided in exactly one place.

``classify(body, headers)`` is pure: bytes and headers in, a
:class:`Classification` out, no I/O and no exceptions. The store adds what
needs history (an id and ``duplicate_of``) and turns it into an :class:`Event`.
Every view reads these fields instead of re-parsing payloads its own way.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from functools import cached_property
from typing import Any

from . import callbacks as cb
from .jsonbody import ParsedBody, parse_json

SUMMARY_LIMIT = 160
Headers = tuple[tuple[str, str], ...]


class Family(StrEnum):
    """Which kind of resource a callback is about (section 5 of the callback notes)."""

    CONVERSATION = "conversation"
    OBJECTIVE = "objective"
    GUARDRAIL = "guardrail"
    REPLICA = "replica"
    VIDEO = "video"
    UNKNOWN = "unknown"
    MALFORMED = "malformed"


class Severity(StrEnum):
    """How much an event deserves attention: drives colour and announcements."""

    INFO = "info"
    SUCCESS = "success"
    WARNING = "warning"
    ERROR = "error"


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


def one_line(text: str, limit: int = SUMMARY_LIMIT) -> str:
    """Collapse all whitespace to single spaces and cut to ``limit`` characters."""
    flat = " ".join(text.split())  # str.split() and re's \s agree on what whitespace is
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


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
    lowered = event_type.lower()
    if "guardrail" in lowered:
        family = Family.GUARDRAIL
    elif "objective" in lowered:
        family = Family.OBJECTIVE
    else:
        family = Family.CONVERSATION
    conversation_id = cb.as_text(obj.get("conversation_id"))
    return Classification(
        family=family,
        event_type=event_type,
        conversation_id=conversation_id,
        subject_id=conversation_id,
        summary=one_line(_conversation_summary(family, event_type, obj)),
        occurred_at=cb.parse_time(obj.get("timestamp")),
        severity=_conversation_severity(family, event_type, obj),
    )


_SHUTDOWN_SEVERITY = {
    cb.ShutdownKind.NORMAL: Severity.INFO,
    cb.ShutdownKind.TIMEOUT: Severity.WARNING,
    cb.ShutdownKind.ERROR: Severity.ERROR,
    cb.ShutdownKind.UNKNOWN: Severity.WARNING,
}
_FIXED_SEVERITY = {
    cb.TRANSCRIPTION_READY: Severity.SUCCESS,
    cb.RECORDING_READY: Severity.SUCCESS,
    cb.RECORDING_COPY_FAILED: Severity.ERROR,
    cb.PERCEPTION_ANALYSIS: Severity.SUCCESS,
    cb.PERCEPTION_UNAVAILABLE: Severity.WARNING,
}
_GOOD_STATUSES = frozenset({"success", "succeeded", "successful", "ok", "completed", "done"})
_BAD_STATUSES = frozenset({"error", "failed", "failure", "timeout", "timed_out"})


def _conversation_severity(family: Family, event_type: str, obj: dict[str, Any]) -> Severity:
    if family is Family.GUARDRAIL:
        return Severity.WARNING
    if family is Family.OBJECTIVE:
        return Severity.SUCCESS if event_type.endswith(".completed") else Severity.INFO
    props = cb.as_dict(obj.get("properties"))
    if event_type == cb.SHUTDOWN:
        reason = cb.shutdown_reason(props)
        return _SHUTDOWN_SEVERITY[reason.kind] if reason else Severity.WARNING
    if event_type == cb.POST_CALL_ACTION:
        status = (cb.post_call_action(props).status or "").lower()
        if status in _GOOD_STATUSES:
            return Severity.SUCCESS
        return Severity.ERROR if status in _BAD_STATUSES else Severity.INFO
    return _FIXED_SEVERITY.get(event_type, Severity.INFO)


def _job_severity(status: str) -> Severity:
    if status in ("ready", "completed"):
        return Severity.SUCCESS
    return Severity.ERROR if status == "error" else Severity.INFO


def _conversation_summary(family: Family, event_type: str, obj: dict[str, Any]) -> str:
    props = cb.as_dict(obj.get("properties"))
    if family is Family.OBJECTIVE:
        state = event_type.rsplit(".", 1)[-1]
        name = cb.objective_name(obj) or "(unnamed)"
        outputs = cb.objective_outputs(obj)
        detail = (
            f" ({', '.join(f'{k}={_short(v)}' for k, v in outputs.items())})" if outputs else ""
        )
        return f"objective {name} {state}{detail}"
    if family is Family.GUARDRAIL:
        name = cb.guardrail_name(obj) or "(unnamed)"
        reason = cb.as_text(props.get("reason"))
        return f"guardrail {name} triggered" + (f": {reason}" if reason else "")
    replica = cb.as_text(props.get("replica_id")) or cb.as_text(props.get("face_id"))
    if event_type in cb.JOIN_EVENT_TYPES:
        suffix = " (pal_joined)" if event_type == "system.pal_joined" else ""
        return f"replica {replica or '(unknown)'} joined{suffix}"
    if event_type == cb.SHUTDOWN:
        shutdown = cb.shutdown_reason(props)
        if shutdown is None:
            return "shutdown: no reason given"
        shown = (
            shutdown.words
            if shutdown.words == shutdown.raw
            else f"{shutdown.words} ({shutdown.raw})"
        )
        return f"shutdown: {shown}"
    if event_type == cb.TRANSCRIPTION_READY:
        roles = cb.transcript_roles(props)
        user, assistant, tool = roles["user"], roles["assistant"], roles["tool"]
        return (
            f"transcript: {user + assistant} turns ({user} user, {assistant} assistant"
            + (f", {tool} tool" if tool else "")
            + ")"
        )
    if event_type == cb.RECORDING_READY:
        rec = cb.recording(props)
        length = f" ({rec.duration:g} s)" if rec.duration is not None else ""
        return f"recording ready: {rec.location or '(no location)'}{length}"
    if event_type == cb.RECORDING_COPY_FAILED:
        message = cb.as_text(props.get("error_message")) or "no message"
        return f"recording copy failed: {message}"
    if event_type == cb.PERCEPTION_ANALYSIS:
        analysis_text = cb.as_text(props.get("analysis")) or ""
        return f"perception analysis: {_first_sentence(analysis_text) or '(empty)'}"
    if event_type == cb.PERCEPTION_UNAVAILABLE:
        reason_text = cb.as_text(props.get("reason")) or "no reason given"
        return f"perception unavailable: {reason_text.replace('_', ' ')}"
    if event_type == cb.POST_CALL_ACTION:
        action = cb.post_call_action(props)
        return f"post-call action {action.tool or '(unnamed)'}: {action.status or 'no status'}"
    keys = ", ".join(sorted(str(key) for key in props)[:6])
    return f"{event_type}" + (f" ({keys})" if keys else "")


def _classify_replica(obj: dict[str, Any]) -> Classification:
    replica_id = cb.as_text(obj.get("replica_id"))
    status = cb.as_text(obj.get("status")) or "unknown"
    name = cb.as_text(obj.get("replica_name"))
    who = f"replica {replica_id or '(no id)'}" + (f" ({name})" if name else "")
    if status == "error":
        message = cb.as_text(obj.get("error_message")) or "no message"
        summary = f"{who} training failed: {message}"
    else:
        summary = f"{who} training {status}"
    return Classification(
        family=Family.REPLICA,
        event_type=f"replica.{status}",
        conversation_id=None,
        subject_id=replica_id,
        summary=one_line(summary),
        severity=_job_severity(status),
    )


def _classify_video(obj: dict[str, Any]) -> Classification:
    video_id = cb.as_text(obj.get("video_id"))
    status = cb.as_text(obj.get("status")) or "unknown"
    name = cb.as_text(obj.get("video_name"))
    who = f"video {name!r}" if name else f"video {video_id or '(no id)'}"
    if status == "error":
        message = cb.as_text(obj.get("status_details")) or cb.as_text(obj.get("error_details"))
        summary = f"{who} failed: {message or 'no message'}"
    elif status == "ready":
        summary = f"{who} ready"
    else:
        progress = cb.as_text(obj.get("generation_progress"))
        summary = f"{who} {status}" + (f" ({progress})" if progress else "")
    return Classification(
        family=Family.VIDEO,
        event_type=f"video.{status}",
        conversation_id=None,
        subject_id=video_id,
        summary=one_line(summary),
        occurred_at=cb.parse_time(obj.get("updated_at")),
        severity=_job_severity(status),
    )


def _short(value: Any, limit: int = 30) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _first_sentence(text: str) -> str:
    flat = one_line(text, limit=10_000)
    match = re.match(r"(.+?[.:!?])(\s|$)", flat)
    return match.group(1) if match else flat
