"""What Tavus callback payloads mean, field by field.

Every quirk real deliveries show is absorbed here (renamed fields, reasons with
and without `` reached``, timings as floats or ISO strings, request bodies as
objects or JSON strings), so the rest of the program reads one clean shape.
See ``docs/tavus-callbacks.md`` in the team's shared folder for the sources.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

# The types code refers to by name (views that read one type's payload). The full list
# of known types, and what the monitor does with each, is ``event_types.REGISTRY``.
JOIN_EVENT_TYPES = frozenset({"system.replica_joined", "system.pal_joined"})
SHUTDOWN = "system.shutdown"
TRANSCRIPTION_READY = "application.transcription_ready"
RECORDING_READY = "application.recording_ready"
RECORDING_COPY_FAILED = "application.recording_copy_failed"
PERCEPTION_ANALYSIS = "application.perception_analysis"
PERCEPTION_UNAVAILABLE = "application.perception_unavailable"
POST_CALL_ACTION = "application.post_call_action_executed"
CANVAS_INTERACTION = "canvas.interaction"


def as_text(value: Any) -> str | None:
    """A field as text: strings as they are, numbers spelled out, else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    return None


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def parse_time(value: Any) -> float | None:
    """Seconds since the epoch from a Unix number or an ISO-8601 string.

    Tavus sends both (``1779475657.84`` and ``2025-07-11T06:45:47.472Z``), and
    video jobs use ``2024-08-28 15:27:40.824457`` with no zone: naive times are
    taken as UTC.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
        return number if math.isfinite(number) else None
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if ":" not in text:  # a clock time is no number: skip the failing float() (an exception)
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            return number if math.isfinite(number) else None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


# ---------------------------------------------------------------- shutdown


class ShutdownKind(StrEnum):
    """How a conversation ended, for colour and for alerts."""

    NORMAL = "normal"
    TIMEOUT = "timeout"
    ERROR = "error"
    UNKNOWN = "unknown"


_REASONS: dict[str, tuple[str, str, ShutdownKind]] = {
    # code: (plain words, short words for narrow columns, kind). The short words are
    # told apart by their first characters, so a column cut short still says which.
    "end_conversation_endpoint_hit": (
        "ended through the API (/end)",
        "ended via API",
        ShutdownKind.NORMAL,
    ),
    "participant_left_timeout": (
        "participant left (timeout)",
        "left · timeout",
        ShutdownKind.NORMAL,
    ),
    "daily_room_has_been_deleted": ("the room was deleted", "room deleted", ShutdownKind.NORMAL),
    "max_call_duration": ("maximum call duration reached", "max duration", ShutdownKind.TIMEOUT),
    "participant_absent_timeout": (
        "participant never joined (absent timeout)",
        "never joined",
        ShutdownKind.TIMEOUT,
    ),
    "bot_could_not_join_meeting_it_was_probably_ended": (
        "replica could not join (the meeting had probably ended)",
        "join failed",
        ShutdownKind.ERROR,
    ),
    "exception_encountered_during_conversation_startup": (
        "error while starting the conversation",
        "startup error",
        ShutdownKind.ERROR,
    ),
}
_INTERNAL_ERROR = re.compile(r"internal error occurred at step\s*(?P<step>.*)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ShutdownReason:
    raw: str
    """The value as delivered, shown verbatim beside the plain words."""
    code: str
    """``raw`` without the optional trailing `` reached``."""
    words: str
    kind: ShutdownKind
    short: str = ""
    """A few words for a narrow column ("left · timeout", "never joined"); ``raw`` when
    the reason is not documented."""


def shutdown_reason(properties: dict[str, Any]) -> ShutdownReason | None:
    """The reason of a ``system.shutdown`` (``shutdown_reason`` or ``reason``)."""
    raw = as_text(properties.get("shutdown_reason"))
    if raw is None:
        raw = as_text(properties.get("reason"))
    if raw is None:
        return None
    code = raw.strip()
    if code.endswith(" reached"):
        code = code[: -len(" reached")].rstrip()
    known = _REASONS.get(code)
    if known is not None:
        words, short, kind = known
        return ShutdownReason(raw, code, words, kind, short)
    internal = _INTERNAL_ERROR.fullmatch(code)
    if internal is not None:
        step = internal.group("step").strip()
        words = f"internal error at step {step}" if step else "internal error"
        short = f"internal error at {step}" if step else "internal error"
        return ShutdownReason(raw, code, words, ShutdownKind.ERROR, short)
    return ShutdownReason(raw, code, raw, ShutdownKind.UNKNOWN, raw)


def reason_codes_with(text: str) -> list[str]:
    """The documented reason codes whose short words hold ``text`` (ignoring case).

    A stored shutdown's summary has the reason's plain words and its raw value, not
    the short words a narrow column shows ("left · timeout"): searching for what the
    list shows means searching for these codes too.
    """
    wanted = text.strip().lower()
    if not wanted:
        return []
    return [code for code, (_, short, _) in _REASONS.items() if wanted in short.lower()]


# --------------------------------------------------------------- transcript


@dataclass(frozen=True, slots=True)
class Turn:
    role: str
    content: str
    at: float | None = None
    """Wall-clock time of the turn (epoch seconds), when delivered."""
    seconds_from_start: float | None = None
    duration: float | None = None
    inference_id: str | None = None


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _raw_turns(properties: dict[str, Any]) -> list[dict[str, Any]]:
    """The transcript's entries that are objects (others are skipped everywhere)."""
    raw_turns = properties.get("transcript")
    if not isinstance(raw_turns, list):
        return []
    return [raw for raw in raw_turns if isinstance(raw, dict)]


def _role(raw: dict[str, Any]) -> str:
    return as_text(raw.get("role")) or "unknown"


def transcript_turns(properties: dict[str, Any]) -> list[Turn]:
    """The turns of a transcript, skipping entries that are not objects."""
    turns: list[Turn] = []
    for raw in _raw_turns(properties):
        content = raw.get("content")
        turns.append(
            Turn(
                role=_role(raw),
                content=content if isinstance(content, str) else json.dumps(content),
                at=parse_time(raw.get("timestamp")),
                seconds_from_start=_finite(raw.get("seconds_from_start")),
                duration=_finite(raw.get("duration")),
                inference_id=as_text(raw.get("inference_id")),
            )
        )
    return turns


def transcript_roles(properties: dict[str, Any]) -> Counter[str]:
    """How many turns each role has, counted as :func:`transcript_turns` would.

    For summaries: it builds no turns (no time parsing), so classifying a long
    transcript on the event loop stays cheap.
    """
    return Counter(_role(raw) for raw in _raw_turns(properties))


@dataclass(frozen=True, slots=True)
class TranscriptAnalysis:
    """What the Tavus sample server prints for a transcript, plus talk time."""

    user_turns: int
    assistant_turns: int
    tool_turns: int
    talk_seconds: dict[str, float] | None
    """Seconds spoken per role, when the turns carry durations."""

    @property
    def total_turns(self) -> int:
        return self.user_turns + self.assistant_turns


def analyse_transcript(turns: list[Turn]) -> TranscriptAnalysis:
    talk: dict[str, float] = {}
    for turn in turns:
        if turn.duration is not None and turn.role != "system":
            talk[turn.role] = talk.get(turn.role, 0.0) + turn.duration
    return TranscriptAnalysis(
        user_turns=sum(turn.role == "user" for turn in turns),
        assistant_turns=sum(turn.role == "assistant" for turn in turns),
        tool_turns=sum(turn.role == "tool" for turn in turns),
        talk_seconds=talk or None,
    )


# ---------------------------------------------------------------- recording


@dataclass(frozen=True, slots=True)
class Recording:
    location: str | None
    """``storage_uri`` when given, else ``s3://bucket/key`` from the old fields."""
    provider: str | None
    duration: float | None


def recording(properties: dict[str, Any]) -> Recording:
    uri = as_text(properties.get("storage_uri"))
    provider = as_text(properties.get("storage_provider"))
    bucket = as_text(properties.get("bucket_name"))
    key = as_text(properties.get("s3_key"))
    if uri is None and key is not None:
        uri = f"s3://{bucket}/{key}" if bucket else key
        provider = provider or "s3"
    return Recording(uri, provider, _finite(properties.get("duration")))


# --------------------------------------------------------- post-call action


@dataclass(frozen=True, slots=True)
class PostCallAction:
    tool: str | None
    status: str | None
    request_body: Any
    """The request body as a value, even when Tavus sent it as a JSON string."""
    response: Any


def post_call_action(properties: dict[str, Any]) -> PostCallAction:
    request = as_dict(properties.get("request"))
    body = request.get("body")
    if isinstance(body, str):
        with contextlib.suppress(ValueError, RecursionError):
            body = json.loads(body)
    return PostCallAction(
        tool=as_text(properties.get("tool_name")) or as_text(properties.get("tool_id")),
        status=as_text(properties.get("status")),
        request_body=body,
        response=properties.get("response"),
    )


# ------------------------------------------------------ objective, guardrail


def objective_name(payload: dict[str, Any]) -> str | None:
    """Objective name from ``properties`` or, in some deliveries, the top level."""
    return as_text(as_dict(payload.get("properties")).get("objective_name")) or as_text(
        payload.get("objective_name")
    )


def objective_outputs(payload: dict[str, Any]) -> dict[str, Any]:
    outputs = as_dict(payload.get("properties")).get("output_variables")
    if not isinstance(outputs, dict):
        outputs = payload.get("output_variables")
    return as_dict(outputs)


def guardrail_name(payload: dict[str, Any]) -> str | None:
    properties = as_dict(payload.get("properties"))
    for source in (properties, payload):
        for key in ("guardrail_name", "guardrail"):
            name = as_text(source.get(key))
            if name:
                return name
    return None


# ------------------------------------------------------------------- video


def video_error(body: dict[str, Any]) -> str | None:
    """A failed video's error: ``error_details`` (specific) before ``status_details``.

    ``status_details`` is a generic sentence ("An error occurred while generating this
    request…"); ``error_details``, when Tavus fills it, says what went wrong. It may be
    an object, which is shown as compact JSON.
    """
    details = body.get("error_details")
    if details not in (None, "", {}, []):
        text = as_text(details)
        if text is not None:
            return text
        with contextlib.suppress(ValueError, RecursionError):
            return json.dumps(details, ensure_ascii=False)
    return as_text(body.get("status_details"))
