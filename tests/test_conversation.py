"""The conversation view model over real stored events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tavus_monitor import samples
from tavus_monitor.callbacks import ShutdownKind
from tavus_monitor.conversation import (
    TRANSCRIPT_GRACE_SECONDS,
    Stage,
    StageState,
    build_conversation,
)
from tavus_monitor.events import Event
from tavus_monitor.store import Delivery, Store

CONVERSATION = "c0ffee000001"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "events.db") as opened:
        yield opened


def deliver(store: Store, body: bytes, at: float = 1_000.0) -> Event:
    return store.submit(Delivery(body=body, received_at=at)).result(timeout=10)


def deliver_samples(store: Store, names: list[str], at: float = 1_000.0) -> list[Event]:
    rendered = samples.render_many(names, conversation_id=CONVERSATION)
    return [deliver(store, sample.body, at) for sample in rendered]


def whole_call() -> list[str]:
    return [name for name, _ in samples.CONVERSATION_SEQUENCE]


def states(view_stages: list[Stage]) -> dict[str, StageState]:
    return {stage.name: stage.state for stage in view_stages}


def test_a_whole_call_reads_as_its_lifecycle(store: Store) -> None:
    deliver_samples(store, whole_call())
    view = build_conversation(CONVERSATION, store.conversation(CONVERSATION))

    assert [e.event_type for e in view.events][:2] == ["system.replica_joined", "system.pal_joined"]
    assert view.joined is not None
    assert view.joined.event_type == "system.replica_joined"
    assert view.shutdown_reason is not None
    assert view.shutdown_reason.words == "participant left (timeout)"
    assert view.shutdown_reason.kind is ShutdownKind.NORMAL
    assert view.replica_id == "r79e1c033f"
    # The sample call lasts 170 s from join to shutdown (payload timestamps).
    assert view.call_seconds == pytest.approx(170.0, abs=0.01)
    assert view.analysis is not None
    assert (view.analysis.user_turns, view.analysis.assistant_turns) == (3, 3)
    assert view.analysis.total_turns == 6
    assert view.analysis.tool_turns == 1
    assert view.analysis.talk_seconds == pytest.approx({"user": 5.4, "assistant": 9.9})
    assert view.recording_info is not None
    assert view.recording_info.location is not None
    assert view.recording_info.location.startswith("s3://acme-tavus-recordings/")
    assert view.perception is not None
    assert len(view.post_call_actions) == 1
    assert len(view.objectives) == 1

    stages = states(view.lifecycle(now=1_000.0))
    assert stages == {
        "joined": StageState.DUPLICATED,  # pal_joined is the replica_joined twin
        "shutdown": StageState.RECEIVED,
        "transcript": StageState.RECEIVED,
        "recording": StageState.RECEIVED,
        "perception": StageState.RECEIVED,
        "post-call actions": StageState.RECEIVED,
    }


def test_a_call_in_progress_waits_without_alarm(store: Store) -> None:
    deliver_samples(store, ["system.replica_joined"])
    view = build_conversation(CONVERSATION, store.conversation(CONVERSATION))

    assert not view.is_over
    assert view.call_seconds is None
    stages = states(view.lifecycle(now=10_000.0))
    assert stages["shutdown"] is StageState.WAITING
    assert stages["transcript"] is StageState.WAITING
    assert stages["recording"] is StageState.WAITING


def test_a_missing_transcript_is_flagged_overdue_after_the_grace_period(store: Store) -> None:
    deliver_samples(store, ["system.replica_joined", "system.shutdown"], at=1_000.0)
    view = build_conversation(CONVERSATION, store.conversation(CONVERSATION))

    soon = {s.name: s for s in view.lifecycle(now=1_000.0 + 30)}
    assert soon["transcript"].state is StageState.WAITING

    later = {s.name: s for s in view.lifecycle(now=1_000.0 + TRANSCRIPT_GRACE_SECONDS + 60)}
    assert later["transcript"].state is StageState.OVERDUE
    assert "3 min after shutdown" in later["transcript"].note
    # Recording and perception are opt-in: their absence after the call is no alarm.
    assert later["recording"].state is StageState.NOT_RECEIVED
    assert later["perception"].state is StageState.NOT_RECEIVED


def test_a_redelivered_transcript_is_shown_once_and_marked(store: Store) -> None:
    first = deliver_samples(store, ["application.transcription_ready"])[0]
    again = deliver(store, first.body)
    view = build_conversation(CONVERSATION, store.conversation(CONVERSATION))

    assert again.duplicate_of == first.id
    assert view.transcript is not None
    assert view.transcript.id == first.id
    assert view.duplicates == (again,)
    stage = {s.name: s for s in view.lifecycle(now=0)}["transcript"]
    assert stage.state is StageState.DUPLICATED
    assert stage.note == "1 duplicate"


def test_events_arriving_out_of_order_still_place_correctly(store: Store) -> None:
    names = list(reversed(whole_call()))
    deliver_samples(store, names)
    view = build_conversation(CONVERSATION, store.conversation(CONVERSATION))

    assert view.shutdown is not None
    assert view.transcript is not None
    assert view.joined is not None
    # pal_joined arrived first this time, so it is the original and replica_joined the twin.
    assert view.joined.event_type == "system.pal_joined"
    assert view.call_seconds == pytest.approx(170.0, abs=0.01)


def test_unknown_types_of_the_conversation_are_kept_aside(store: Store) -> None:
    body = json.dumps(
        {
            "conversation_id": CONVERSATION,
            "event_type": "application.something_new",
            "message_type": "application",
            "properties": {"x": 1},
            "timestamp": "2025-07-11T06:45:47Z",
        }
    ).encode()
    event = deliver(store, body)
    view = build_conversation(CONVERSATION, store.conversation(CONVERSATION))

    assert view.other == (event,)
    assert view.analysis is None
