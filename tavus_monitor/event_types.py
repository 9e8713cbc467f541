"""The Tavus event types the monitor knows, as data: one entry per type.

Before this module a new event type touched nine places (constants, three
``if`` chains in classification, two sets in the lifecycle, the toasts, the
transcript pane, the samples and two test tables), and forgetting one was a
silent omission. Now each type is one :class:`EventType` in :data:`REGISTRY`
(family, summary, severity, lifecycle stage, notification, place in the demo
call) plus one ``samples/<name>.json``; classification, the conversation
lifecycle, the toasts, ``trigger`` and the tests all iterate the registry, and
a test fails when an entry has no sample or a sample no entry. The shape is
harlequin's ``HARLEQUIN_ACTIONS = {"quit": Action(...)}``: behaviour as data,
functions only where a type needs one.

Types nobody registered still arrive ("additional webhooks coming soon"), so
every family also has a fallback entry (:data:`FALLBACKS`): an unknown
``application.*`` type is shown as what it is, a new objective state gets the
objective summary, a new video status the video summary.

Lookups are one dict access: classification runs per delivery in the writer
process, and ``bench/ingest.py`` measures it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from . import callbacks as cb

SUMMARY_LIMIT = 160


class Family(StrEnum):
    """Which kind of resource a callback is about (section 5 of the callback notes)."""

    CONVERSATION = "conversation"
    OBJECTIVE = "objective"
    GUARDRAIL = "guardrail"
    REPLICA = "replica"
    VIDEO = "video"
    UNKNOWN = "unknown"
    MALFORMED = "malformed"


ENVELOPE_FAMILIES = frozenset({Family.CONVERSATION, Family.OBJECTIVE, Family.GUARDRAIL})
"""Families whose bodies carry the conversation envelope and an ``event_type``.

A body with an ``event_type`` is only ever one of these, even when its type
is spelled like a replica or video one (``"replica.ready"``)."""


class Severity(StrEnum):
    """How much an event deserves attention: drives colour and announcements."""

    INFO = "info"
    SUCCESS = "success"
    WARNING = "warning"
    ERROR = "error"


class Notify(StrEnum):
    """When an event of a type becomes a toast (only originals; duplicates never do)."""

    ERRORS = "errors"
    """Only when its severity is ERROR: failures are worth an interruption, the rest is not."""
    CALL = "call"
    """Always, prefixed with the conversation id: the moments a developer waits for in a
    call (its end, its transcript). A warning unless the event is INFO or SUCCESS."""
    OUTCOME = "outcome"
    """When it finished either way (SUCCESS or ERROR): training and rendering take
    minutes, and their end is what the developer is waiting for."""


@dataclass(frozen=True, slots=True)
class LifecycleStage:
    """One step of a call as the Conversations view shows it, in :data:`STAGES` order."""

    name: str
    required: bool
    """Every call has it: missing means waiting (or overdue), never "not received".
    Optional stages (recording, perception) are opt-in on the Tavus side."""
    overdue_after_shutdown: float | None = None
    """Seconds after the shutdown arrived when a missing stage turns overdue."""
    count_unit: str | None = None
    """When set, a received stage notes how many events it holds ("2 action(s)")."""


TRANSCRIPT_GRACE_SECONDS = 120.0
"""A transcript normally follows the shutdown within a second; after this it is overdue."""

JOINED = LifecycleStage("joined", required=True)
SHUTDOWN = LifecycleStage("shutdown", required=True)
TRANSCRIPT = LifecycleStage(
    "transcript", required=True, overdue_after_shutdown=TRANSCRIPT_GRACE_SECONDS
)
RECORDING = LifecycleStage("recording", required=False)
PERCEPTION = LifecycleStage("perception", required=False)
POST_CALL_ACTIONS = LifecycleStage("post-call actions", required=False, count_unit="action(s)")

STAGES: tuple[LifecycleStage, ...] = (
    JOINED,
    SHUTDOWN,
    TRANSCRIPT,
    RECORDING,
    PERCEPTION,
    POST_CALL_ACTIONS,
)
"""A call's lifecycle in the order Tavus delivers it."""

Summarise = Callable[[str, dict[str, Any], dict[str, Any]], str]
"""``(event_type, body, properties) -> summary`` before it is cut to one line."""
Rate = Callable[[str, dict[str, Any], dict[str, Any]], Severity]
"""``(event_type, body, properties) -> severity`` for types whose severity depends on content."""


@dataclass(frozen=True, slots=True)
class EventType:
    """Everything the monitor does differently for one Tavus event type."""

    name: str
    """The ``event_type`` as classified, and the stem of its sample ``samples/<name>.json``."""
    family: Family
    summary: Summarise
    severity: Severity | Rate
    """A fixed severity, or a function of the body when the body decides (a shutdown's reason)."""
    stage: LifecycleStage | None = None
    """Where a conversation's lifecycle places it; None: listed under "other"."""
    notify: Notify = Notify.ERRORS
    call_offset: float | None = None
    """Seconds after the join at which the demo call (``trigger``) sends it; None:
    not part of one call, sent after it by ``trigger --all``."""

    def rate(self, event_type: str, body: dict[str, Any], properties: dict[str, Any]) -> Severity:
        severity = self.severity
        if isinstance(severity, Severity):
            return severity
        return severity(event_type, body, properties)

    @property
    def sample(self) -> str:
        """The sample's file name inside the ``tavus_monitor.samples`` package."""
        return f"{self.name}.json"


# ------------------------------------------------------------------ text helpers


def one_line(text: str, limit: int = SUMMARY_LIMIT) -> str:
    """Collapse all whitespace to single spaces and cut to ``limit`` characters."""
    flat = " ".join(text.split())  # str.split() and re's \s agree on what whitespace is
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _short(value: Any, limit: int = 30) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _first_sentence(text: str) -> str:
    flat = one_line(text, limit=10_000)
    match = re.match(r"(.+?[.:!?])(\s|$)", flat)
    return match.group(1) if match else flat


# ----------------------------------------------------- conversation summaries


def _replica(properties: dict[str, Any]) -> str:
    replica = cb.as_text(properties.get("replica_id")) or cb.as_text(properties.get("face_id"))
    return replica or "(unknown)"


def _joined(event_type: str, body: dict[str, Any], properties: dict[str, Any]) -> str:
    return f"replica {_replica(properties)} joined"


def _pal_joined(event_type: str, body: dict[str, Any], properties: dict[str, Any]) -> str:
    """The newer name of the same join: said, so the twin of a replica_joined is visible."""
    return f"replica {_replica(properties)} joined (pal_joined)"


def _shutdown(event_type: str, body: dict[str, Any], properties: dict[str, Any]) -> str:
    shutdown = cb.shutdown_reason(properties)
    if shutdown is None:
        return f"{SHUTDOWN_PREFIX}no reason given"
    shown = (
        shutdown.words if shutdown.words == shutdown.raw else f"{shutdown.words} ({shutdown.raw})"
    )
    return f"{SHUTDOWN_PREFIX}{shown}"


SHUTDOWN_PREFIX = "shutdown: "


def shutdown_of_summary(summary: str) -> cb.ShutdownReason | None:
    """The reason a stored shutdown summary names (what :func:`_shutdown` wrote), or None.

    Lists hold rows without bodies, and the summary is what the store keeps of a
    shutdown: this reads it back, so the system pane can show the reason's short
    words without loading every body. The raw value is the part in parentheses
    whose plain words are the text before it; a reason that is not documented was
    written verbatim and comes back verbatim.
    """
    if not summary.startswith(SHUTDOWN_PREFIX):
        return None
    shown = summary[len(SHUTDOWN_PREFIX) :]
    if shown == "no reason given":
        return None
    if shown.endswith(")"):
        start = shown.find(" (")
        while start != -1:
            reason = cb.shutdown_reason({"shutdown_reason": shown[start + 2 : -1]})
            if reason is not None and reason.words == shown[:start]:
                return reason
            start = shown.find(" (", start + 1)
    return cb.shutdown_reason({"shutdown_reason": shown})


_SHUTDOWN_SEVERITY = {
    cb.ShutdownKind.NORMAL: Severity.INFO,
    cb.ShutdownKind.TIMEOUT: Severity.WARNING,
    cb.ShutdownKind.ERROR: Severity.ERROR,
    cb.ShutdownKind.UNKNOWN: Severity.WARNING,
}


def _shutdown_severity(
    event_type: str, body: dict[str, Any], properties: dict[str, Any]
) -> Severity:
    reason = cb.shutdown_reason(properties)
    return _SHUTDOWN_SEVERITY[reason.kind] if reason else Severity.WARNING


def _transcript(event_type: str, body: dict[str, Any], properties: dict[str, Any]) -> str:
    roles = cb.transcript_roles(properties)
    user, assistant, tool = roles["user"], roles["assistant"], roles["tool"]
    return (
        f"transcript: {user + assistant} turn{'' if user + assistant == 1 else 's'} "
        f"({user} user, {assistant} assistant" + (f", {tool} tool" if tool else "") + ")"
    )


def _recording(event_type: str, body: dict[str, Any], properties: dict[str, Any]) -> str:
    rec = cb.recording(properties)
    length = f" ({rec.duration:g} s)" if rec.duration is not None else ""
    return f"recording ready: {rec.location or '(no location)'}{length}"


def _recording_copy_failed(
    event_type: str, body: dict[str, Any], properties: dict[str, Any]
) -> str:
    message = cb.as_text(properties.get("error_message")) or "no message"
    return f"recording copy failed: {message}"


def _perception(event_type: str, body: dict[str, Any], properties: dict[str, Any]) -> str:
    analysis = cb.as_text(properties.get("analysis")) or ""
    return f"perception analysis: {_first_sentence(analysis) or '(empty)'}"


def _perception_unavailable(
    event_type: str, body: dict[str, Any], properties: dict[str, Any]
) -> str:
    reason = cb.as_text(properties.get("reason")) or "no reason given"
    return f"perception unavailable: {reason.replace('_', ' ')}"


def _post_call_action(event_type: str, body: dict[str, Any], properties: dict[str, Any]) -> str:
    action = cb.post_call_action(properties)
    return f"post-call action {action.tool or '(unnamed)'}: {action.status or 'no status'}"


_GOOD_STATUSES = frozenset({"success", "succeeded", "successful", "ok", "completed", "done"})
_BAD_STATUSES = frozenset({"error", "failed", "failure", "timeout", "timed_out"})


def _post_call_action_severity(
    event_type: str, body: dict[str, Any], properties: dict[str, Any]
) -> Severity:
    status = (cb.post_call_action(properties).status or "").lower()
    if status in _GOOD_STATUSES:
        return Severity.SUCCESS
    return Severity.ERROR if status in _BAD_STATUSES else Severity.INFO


def _objective(event_type: str, body: dict[str, Any], properties: dict[str, Any]) -> str:
    state = event_type.rsplit(".", 1)[-1]
    name = cb.objective_name(body) or "(unnamed)"
    outputs = cb.objective_outputs(body)
    detail = f" ({', '.join(f'{k}={_short(v)}' for k, v in outputs.items())})" if outputs else ""
    return f"objective {name} {state}{detail}"


def _objective_severity(
    event_type: str, body: dict[str, Any], properties: dict[str, Any]
) -> Severity:
    """Completion is the good news; activated and pending are in-call progress."""
    return Severity.SUCCESS if event_type.endswith(".completed") else Severity.INFO


def _guardrail(event_type: str, body: dict[str, Any], properties: dict[str, Any]) -> str:
    name = cb.guardrail_name(body) or "(unnamed)"
    reason = cb.as_text(properties.get("reason"))
    return f"guardrail {name} triggered" + (f": {reason}" if reason else "")


def _other_conversation(event_type: str, body: dict[str, Any], properties: dict[str, Any]) -> str:
    """An unregistered type: its name and property keys say what it might be."""
    keys = ", ".join(sorted(str(key) for key in properties)[:6])
    return f"{event_type}" + (f" ({keys})" if keys else "")


_CANVAS_ACTIONS = {
    "submit": "submitted",
    "skip": "skipped",
    "dismiss": "dismissed",
    "clear": "cleared",
    "error": "failed",
}


def _canvas(event_type: str, body: dict[str, Any], properties: dict[str, Any]) -> str:
    """What the participant did with which Magic Canvas component, and what they gave.

    ``component`` is ``canvas.question``, ``canvas.input``, …: the part after the
    dot says it. ``value`` is whatever the component collects, shown as compact JSON.
    """
    component = cb.as_text(properties.get("component")) or "(no component)"
    component = component.removeprefix("canvas.") or component
    action = cb.as_text(properties.get("type")) or "(no type)"
    summary = f"canvas {component} {_CANVAS_ACTIONS.get(action, action)}"
    value = properties.get("value")
    if value is None or value == "" or value == {}:
        return summary
    shown = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return f"{summary}: {_short(shown, 80)}"


def _canvas_severity(event_type: str, body: dict[str, Any], properties: dict[str, Any]) -> Severity:
    """An ``error`` interaction is the component failing in the participant's hands."""
    return Severity.WARNING if properties.get("type") == "error" else Severity.INFO


# ------------------------------------------------------ replica and video jobs


def _job_severity(event_type: str, body: dict[str, Any], properties: dict[str, Any]) -> Severity:
    status = cb.as_text(body.get("status")) or "unknown"
    if status in ("ready", "completed"):
        return Severity.SUCCESS
    return Severity.ERROR if status == "error" else Severity.INFO


def _replica_training(event_type: str, body: dict[str, Any], properties: dict[str, Any]) -> str:
    replica_id = cb.as_text(body.get("replica_id"))
    status = cb.as_text(body.get("status")) or "unknown"
    name = cb.as_text(body.get("replica_name"))
    who = f"replica {replica_id or '(no id)'}" + (f" ({name})" if name else "")
    if status == "error":
        message = cb.as_text(body.get("error_message")) or "no message"
        return f"{who} training failed: {message}"
    return f"{who} training {status}"


def _video_generation(event_type: str, body: dict[str, Any], properties: dict[str, Any]) -> str:
    video_id = cb.as_text(body.get("video_id"))
    status = cb.as_text(body.get("status")) or "unknown"
    name = cb.as_text(body.get("video_name"))
    who = f"video {name!r}" if name else f"video {video_id or '(no id)'}"
    if status == "error":
        return f"{who} failed: {cb.video_error(body) or 'no message'}"
    if status == "ready":
        return f"{who} ready"
    progress = cb.as_text(body.get("generation_progress"))
    return f"{who} {status}" + (f" ({progress})" if progress else "")


def _no_summary(event_type: str, body: dict[str, Any], properties: dict[str, Any]) -> str:
    """Unknown and malformed bodies are summarised by classification, which knows why."""
    return event_type


# --------------------------------------------------------------------- registry

_REGISTERED: tuple[EventType, ...] = (
    # One call, in the order Tavus delivers it (``trigger`` sends these as one conversation).
    EventType(
        "system.replica_joined",
        Family.CONVERSATION,
        _joined,
        Severity.INFO,
        stage=JOINED,
        call_offset=0.0,
    ),
    EventType(
        "system.pal_joined",
        Family.CONVERSATION,
        _pal_joined,
        Severity.INFO,
        stage=JOINED,
        call_offset=0.001,
    ),
    EventType(
        "conversation.objective.completed",
        Family.OBJECTIVE,
        _objective,
        _objective_severity,
        call_offset=75.0,
    ),
    EventType(
        cb.SHUTDOWN,
        Family.CONVERSATION,
        _shutdown,
        _shutdown_severity,
        stage=SHUTDOWN,
        notify=Notify.CALL,
        call_offset=170.0,
    ),
    EventType(
        cb.TRANSCRIPTION_READY,
        Family.CONVERSATION,
        _transcript,
        Severity.SUCCESS,
        stage=TRANSCRIPT,
        notify=Notify.CALL,
        call_offset=170.001,
    ),
    EventType(
        cb.RECORDING_READY,
        Family.CONVERSATION,
        _recording,
        Severity.SUCCESS,
        stage=RECORDING,
        call_offset=211.0,
    ),
    EventType(
        cb.PERCEPTION_ANALYSIS,
        Family.CONVERSATION,
        _perception,
        Severity.SUCCESS,
        stage=PERCEPTION,
        call_offset=350.0,
    ),
    EventType(
        cb.POST_CALL_ACTION,
        Family.CONVERSATION,
        _post_call_action,
        _post_call_action_severity,
        stage=POST_CALL_ACTIONS,
        call_offset=474.0,
    ),
    # The rest: alternatives and failures a single demo call does not produce.
    EventType(
        "conversation.guardrail.triggered",
        Family.GUARDRAIL,
        _guardrail,
        Severity.WARNING,
    ),
    EventType(
        cb.RECORDING_COPY_FAILED,
        Family.CONVERSATION,
        _recording_copy_failed,
        Severity.ERROR,
        stage=RECORDING,
    ),
    EventType(
        cb.PERCEPTION_UNAVAILABLE,
        Family.CONVERSATION,
        _perception_unavailable,
        Severity.WARNING,
        stage=PERCEPTION,
    ),
    EventType(
        cb.CANVAS_INTERACTION,
        Family.CONVERSATION,
        _canvas,
        _canvas_severity,
    ),
    EventType(
        "replica.ready", Family.REPLICA, _replica_training, _job_severity, notify=Notify.OUTCOME
    ),
    EventType(
        "replica.error", Family.REPLICA, _replica_training, _job_severity, notify=Notify.OUTCOME
    ),
    EventType("video.ready", Family.VIDEO, _video_generation, _job_severity, notify=Notify.OUTCOME),
    EventType("video.error", Family.VIDEO, _video_generation, _job_severity, notify=Notify.OUTCOME),
)

REGISTRY: Mapping[str, EventType] = {entry.name: entry for entry in _REGISTERED}
"""Every known event type by name, in the order ``trigger --list`` shows them."""

FALLBACKS: Mapping[Family, EventType] = {
    Family.CONVERSATION: EventType(
        "conversation", Family.CONVERSATION, _other_conversation, Severity.INFO
    ),
    Family.OBJECTIVE: EventType("objective", Family.OBJECTIVE, _objective, _objective_severity),
    Family.GUARDRAIL: EventType("guardrail", Family.GUARDRAIL, _guardrail, Severity.WARNING),
    Family.REPLICA: EventType(
        "replica", Family.REPLICA, _replica_training, _job_severity, notify=Notify.OUTCOME
    ),
    Family.VIDEO: EventType(
        "video", Family.VIDEO, _video_generation, _job_severity, notify=Notify.OUTCOME
    ),
    Family.UNKNOWN: EventType("unknown", Family.UNKNOWN, _no_summary, Severity.WARNING),
    Family.MALFORMED: EventType("malformed", Family.MALFORMED, _no_summary, Severity.ERROR),
}
"""What an unregistered type of each family gets: the family's summary and rules."""


def conversation_type(event_type: str) -> EventType:
    """The entry for a body carrying ``event_type``: registered, else by its name.

    Guardrail types are undocumented (they only contain ``guardrail``) and
    objectives have in-call states (``.activated``, ``.pending``) no sample
    shows, so unregistered names fall back by substring, as the callback notes say.
    """
    entry = REGISTRY.get(event_type)
    if entry is not None and entry.family in ENVELOPE_FAMILIES:
        return entry
    lowered = event_type.lower()
    if "guardrail" in lowered:
        return FALLBACKS[Family.GUARDRAIL]
    if "objective" in lowered:
        return FALLBACKS[Family.OBJECTIVE]
    return FALLBACKS[Family.CONVERSATION]


def lookup(family: Family, event_type: str) -> EventType:
    """The entry for a classified event: registered under its name and family, else the fallback."""
    entry = REGISTRY.get(event_type)
    if entry is not None and entry.family is family:
        return entry
    return FALLBACKS[family]


def stage_types(stage: LifecycleStage) -> frozenset[str]:
    """The registered types a lifecycle stage is made of."""
    return _STAGE_TYPES[stage.name]


_STAGE_TYPES: dict[str, frozenset[str]] = {
    stage.name: frozenset(entry.name for entry in _REGISTERED if entry.stage == stage)
    for stage in STAGES
}
PLACED_TYPES = frozenset(entry.name for entry in _REGISTERED if entry.stage is not None)
"""Types some lifecycle stage shows; other conversation events are listed as "other"."""

RESULTS: tuple[LifecycleStage | Family, ...] = (
    RECORDING,
    PERCEPTION,
    Family.OBJECTIVE,
    Family.GUARDRAIL,
    POST_CALL_ACTIONS,
)
"""What a call produced, in the order the transcripts pane lists it under the call's header.

A stage stands for its registered types (a stage that counts its events lists each of
them, the others the first of each type); a family for every event of it, registered or
not (objectives and guardrails have no stage, and their states are open-ended). A type
registered with one of these stages or families is listed without touching the pane."""


# ----------------------------------------------------------------- notifications


class Announced(Protocol):
    """What a toast needs of an event (an :class:`~tavus_monitor.events.EventRow` has it)."""

    @property
    def family(self) -> Family: ...
    @property
    def event_type(self) -> str: ...
    @property
    def severity(self) -> Severity: ...
    @property
    def summary(self) -> str: ...
    @property
    def conversation_id(self) -> str | None: ...
    @property
    def duplicate_of(self) -> int | None: ...


def toast(event: Announced) -> tuple[str, str] | None:
    """The toast (text, Textual severity) an event deserves, or None.

    The text is payload text: the caller must keep it from being parsed as
    markup and strip what must not reach a terminal.
    """
    if event.duplicate_of is not None:
        return None
    notify = lookup(event.family, event.event_type).notify
    severity = event.severity
    if notify is Notify.CALL:
        level = "information" if severity in (Severity.INFO, Severity.SUCCESS) else "warning"
        return f"{event.conversation_id}: {event.summary}", level
    if notify is Notify.OUTCOME and severity is Severity.SUCCESS:
        return event.summary, "information"
    if severity is Severity.ERROR:
        return event.summary, "error"
    return None
