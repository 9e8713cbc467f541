"""The conversation view model: one call's events, read as its lifecycle.

A call produces callbacks over several minutes, possibly duplicated and out of
order: joined → shutdown → transcript (at once) → recording → perception
(≈3 min) → post-call actions (≈2–3 min). This module gathers a
conversation's events and says, for each stage, what arrived, what is
duplicated and what is overdue, plus the transcript analysis the Tavus sample
server prints. Pure: it reads Events, never the store or the clock (``now`` is
passed in).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from . import callbacks as cb
from . import event_types
from .event_types import TRANSCRIPT_GRACE_SECONDS as TRANSCRIPT_GRACE_SECONDS
from .event_types import LifecycleStage
from .events import Event, EventRow, Family

EventLike = Event | EventRow
"""Lifecycle needs only the row; transcript and results need the full Event."""


class StageState(StrEnum):
    RECEIVED = "received"
    DUPLICATED = "duplicated"
    """Received more than once (shown once, the repeats marked)."""
    WAITING = "waiting"
    """Not yet, and not yet expected."""
    OVERDUE = "overdue"
    """Expected by now and still missing."""
    NOT_RECEIVED = "not received"
    """Optional stage that may never come (recording and perception are opt-in)."""


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    state: StageState
    events: tuple[EventLike, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class ConversationView:
    conversation_id: str
    events: tuple[EventLike, ...]
    """Every event of the conversation, in arrival (id) order."""
    joined: EventLike | None = None
    shutdown: EventLike | None = None
    shutdown_reason: cb.ShutdownReason | None = None
    transcript: EventLike | None = None
    turns: tuple[cb.Turn, ...] = ()
    analysis: cb.TranscriptAnalysis | None = None
    recording: EventLike | None = None
    recording_info: cb.Recording | None = None
    recording_failed: EventLike | None = None
    perception: EventLike | None = None
    """``perception_analysis`` or ``perception_unavailable``."""
    post_call_actions: tuple[EventLike, ...] = ()
    objectives: tuple[EventLike, ...] = ()
    guardrails: tuple[EventLike, ...] = ()
    duplicates: tuple[EventLike, ...] = ()
    other: tuple[EventLike, ...] = ()
    """Events of types this view does not place in the lifecycle."""
    results: tuple[EventLike, ...] = ()
    """What the call produced (recording, perception, objectives, …), in the order of
    :data:`~tavus_monitor.event_types.RESULTS`."""
    replica_id: str | None = None
    _by_type: dict[str, tuple[EventLike, ...]] = field(default_factory=dict, repr=False)

    @property
    def started_at(self) -> float | None:
        """When the replica joined (payload time, else arrival time)."""
        return _when(self.joined)

    @property
    def ended_at(self) -> float | None:
        return _when(self.shutdown)

    @property
    def call_seconds(self) -> float | None:
        """How long the call lasted, join to shutdown, when both are known."""
        if self.started_at is None or self.ended_at is None:
            return None
        return max(0.0, self.ended_at - self.started_at)

    @property
    def is_over(self) -> bool:
        return self.shutdown is not None

    def lifecycle(self, now: float) -> list[Stage]:
        """Each stage of the call (:data:`~tavus_monitor.event_types.STAGES`) as of ``now``.

        ``now`` is epoch seconds; which types make up a stage is the registry's say.
        """
        return [self._stage(stage, now) for stage in event_types.STAGES]

    def _stage(self, stage: LifecycleStage, now: float) -> Stage:
        name = stage.name
        types = event_types.stage_types(stage)
        events = tuple(e for t in sorted(types) for e in self._by_type.get(t, ()))
        events = tuple(sorted(events, key=lambda event: event.id))
        if not events:
            if stage.overdue_after_shutdown is not None and self.shutdown is not None:
                waited = now - self.shutdown.received_at
                if waited > stage.overdue_after_shutdown:
                    return Stage(
                        name,
                        StageState.OVERDUE,
                        note=f"no {name} {_span(waited)} after shutdown",
                    )
            if stage.required or not self.is_over:
                return Stage(name, StageState.WAITING)
            return Stage(name, StageState.NOT_RECEIVED)
        repeats = [event for event in events if event.duplicate_of is not None]
        if repeats:
            return Stage(
                name,
                StageState.DUPLICATED,
                events,
                note=f"{len(repeats)} duplicate{'s' if len(repeats) > 1 else ''}",
            )
        if stage.count_unit is not None:
            return Stage(
                name, StageState.RECEIVED, events, note=f"{len(events)} {stage.count_unit}"
            )
        return Stage(name, StageState.RECEIVED, events)


def _span(seconds: float) -> str:
    """``3 min``, ``5 h``, ``501 days``: a wait in the unit it is best read in."""
    minutes = seconds / 60
    if minutes < 120:
        return f"{minutes:.0f} min"
    if minutes < 48 * 60:
        return f"{minutes / 60:.0f} h"
    return f"{minutes / 1440:,.0f} days"


def _when(event: EventLike | None) -> float | None:
    if event is None:
        return None
    return event.occurred_at if event.occurred_at is not None else event.received_at


def build_conversation(conversation_id: str, events: Sequence[EventLike]) -> ConversationView:
    """Gather ``events`` (any order) of one conversation into its view."""
    ordered = tuple(sorted((e for e in events if e.conversation_id == conversation_id), key=_id))
    by_type: dict[str, list[EventLike]] = {}
    for event in ordered:
        by_type.setdefault(event.event_type, []).append(event)

    def first(*types: str) -> EventLike | None:
        """The first original (non-duplicate) event of these types."""
        candidates = [e for t in types for e in by_type.get(t, []) if e.duplicate_of is None]
        candidates = candidates or [e for t in types for e in by_type.get(t, [])]
        return min(candidates, key=_id) if candidates else None

    def stage(stage: LifecycleStage) -> list[EventLike]:
        """Every event of the stage's types, in id order."""
        return sorted(
            (e for t in event_types.stage_types(stage) for e in by_type.get(t, [])), key=_id
        )

    def results() -> list[EventLike]:
        """The events of each of the registry's result stages and families, in its order."""
        shown: list[EventLike] = []
        for section in event_types.RESULTS:
            if isinstance(section, Family):
                shown.extend(e for e in ordered if e.family is section)
            elif section.count_unit is not None:
                shown.extend(stage(section))
            else:
                types = event_types.stage_types(section)
                firsts = (first(name) for name in event_types.REGISTRY if name in types)
                shown.extend(event for event in firsts if event is not None)
        return shown

    joined = first(*event_types.stage_types(event_types.JOINED))
    shutdown = first(cb.SHUTDOWN)
    transcript = first(cb.TRANSCRIPTION_READY)
    recording = first(cb.RECORDING_READY)
    turns = tuple(cb.transcript_turns(_properties(transcript))) if transcript else ()
    return ConversationView(
        conversation_id=conversation_id,
        events=ordered,
        joined=joined,
        shutdown=shutdown,
        shutdown_reason=cb.shutdown_reason(_properties(shutdown)) if shutdown else None,
        transcript=transcript,
        turns=turns,
        analysis=cb.analyse_transcript(list(turns)) if transcript else None,
        recording=recording,
        recording_info=cb.recording(_properties(recording)) if recording else None,
        recording_failed=first(cb.RECORDING_COPY_FAILED),
        perception=first(*event_types.stage_types(event_types.PERCEPTION)),
        post_call_actions=tuple(stage(event_types.POST_CALL_ACTIONS)),
        objectives=tuple(e for e in ordered if e.family is Family.OBJECTIVE),
        guardrails=tuple(e for e in ordered if e.family is Family.GUARDRAIL),
        duplicates=tuple(e for e in ordered if e.duplicate_of is not None),
        other=tuple(
            e
            for e in ordered
            if e.family is Family.CONVERSATION and e.event_type not in event_types.PLACED_TYPES
        ),
        results=tuple(results()),
        replica_id=_replica_id(ordered),
        _by_type={key: tuple(value) for key, value in by_type.items()},
    )


def _id(event: EventLike) -> int:
    return event.id


def _properties(event: EventLike | None) -> dict[str, object]:
    payload = getattr(event, "payload", None)  # rows carry no body
    if not isinstance(payload, dict):
        return {}
    return cb.as_dict(payload.get("properties"))


def _replica_id(events: Sequence[EventLike]) -> str | None:
    for event in events:
        props = _properties(event)
        replica = cb.as_text(props.get("replica_id")) or cb.as_text(props.get("face_id"))
        if replica:
            return replica
    return None


ROWS_PER_CONVERSATION = 1_000
"""The newest events of each conversation a lifecycle is read from (lists, attention)."""
WHOLE_TYPES = event_types.stage_types(event_types.SHUTDOWN)
"""Events a list of conversations reads a payload of (the shutdown's reason); the others
come as rows."""

NO_CALL_REASONS = frozenset({"participant_absent_timeout"})
"""A documented reason that is no error but says nobody ever joined the call."""


def transcript_expected(reason: cb.ShutdownReason | None) -> bool:
    """Whether a call that shut down for ``reason`` gets a transcript from Tavus.

    The rule: a transcript is expected unless the call never had anyone in it, that is
    unless the reason is ``participant_absent_timeout`` (the participant never joined)
    or an error one (the replica could not join, the conversation failed to start, an
    internal error). Unknown reasons and a shutdown without one keep the expectation.

    Why: the callback notes (tavus-callbacks.md) say ``transcription_ready`` comes
    about 1 ms after the shutdown: it is part of how a call ends, so when it is missing
    after a normal end something went wrong and the list flags it red. The notes and
    the API notes (tavus-api.md) also say a transcript is the turns of the call, and
    that what needs dialogue (post-call actions) does not run for a call without any;
    a call nobody joined, or that failed before the replica was in it, has no turns to
    send, so its missing transcript is no news and is shown as none rather than
    overdue. Nothing documents the opposite for these reasons; if Tavus does send one,
    it still shows as received.
    """
    if reason is None:
        return True
    return reason.code not in NO_CALL_REASONS and reason.kind is not cb.ShutdownKind.ERROR


def shown_lifecycle(view: ConversationView, now: float) -> list[Stage]:
    """The lifecycle as the lists and the attention count judge it: the join twin is one
    join, and no transcript is overdue for a call that gets none (:func:`transcript_expected`)."""
    stages = []
    for stage in view.lifecycle(now):
        if stage.name == event_types.JOINED.name and stage.state is StageState.DUPLICATED:
            stage = _one_join(stage)
        elif (
            stage.name == event_types.TRANSCRIPT.name
            and stage.state in (StageState.OVERDUE, StageState.WAITING)
            and view.is_over
            and not transcript_expected(view.shutdown_reason)
        ):
            stage = Stage(stage.name, StageState.NOT_RECEIVED, note="none sent for this end")
        stages.append(stage)
    return stages


def _one_join(stage: Stage) -> Stage:
    """``pal_joined`` and ``replica_joined`` name one moment: only a type seen twice repeats."""
    seen: set[str] = set()
    repeats = 0
    for event in stage.events:
        repeats += event.event_type in seen
        seen.add(event.event_type)
    if repeats:
        plural = "s" if repeats > 1 else ""
        return Stage(
            stage.name, StageState.DUPLICATED, stage.events, f"{repeats} duplicate{plural}"
        )
    return Stage(stage.name, StageState.RECEIVED, stage.events)
