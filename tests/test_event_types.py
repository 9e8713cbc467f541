"""The event-type registry: one entry per Tavus type, one sample per entry, and the rules it feeds.

Adding a type is one entry in ``tavus_monitor/event_types.py`` plus one
``samples/<name>.json``; these tests fail when either half is missing, and pin
what the registry decides (family, toasts, lifecycle) on real classified bodies.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from tavus_monitor import event_types, samples
from tavus_monitor.conversation import build_conversation
from tavus_monitor.event_types import (
    ENVELOPE_FAMILIES,
    FALLBACKS,
    REGISTRY,
    STAGES,
    Family,
    Severity,
    toast,
)
from tavus_monitor.events import Event, classify

SAMPLES = Path(str(resources.files(samples)))

# The family each shipped sample has always been shown as (moved from test_server's
# table, which now reads the registry): a registry edit cannot silently change these.
PINNED_FAMILIES = {
    "application.perception_analysis": Family.CONVERSATION,
    "application.perception_unavailable": Family.CONVERSATION,
    "application.post_call_action_executed": Family.CONVERSATION,
    "application.recording_copy_failed": Family.CONVERSATION,
    "application.recording_ready": Family.CONVERSATION,
    "application.transcription_ready": Family.CONVERSATION,
    "canvas.interaction": Family.CONVERSATION,
    "conversation.guardrail.triggered": Family.GUARDRAIL,
    "conversation.objective.completed": Family.OBJECTIVE,
    "replica.error": Family.REPLICA,
    "replica.ready": Family.REPLICA,
    "system.pal_joined": Family.CONVERSATION,
    "system.replica_joined": Family.CONVERSATION,
    "system.shutdown": Family.CONVERSATION,
    "video.error": Family.VIDEO,
    "video.ready": Family.VIDEO,
}


def event_of(body: bytes, *, event_id: int = 1, duplicate_of: int | None = None) -> Event:
    """A stored-looking Event for ``body``, classified for real."""
    return Event.classified(
        classify(body), event_id=event_id, received_at=1_000.0, body=body, duplicate_of=duplicate_of
    )


def sample(name: str) -> bytes:
    return (SAMPLES / f"{name}.json").read_bytes()


def envelope(event_type: str, properties: dict[str, Any] | None = None) -> bytes:
    return json.dumps(
        {
            "conversation_id": "c123456",
            "event_type": event_type,
            "message_type": "application",
            "timestamp": "2025-07-11T06:45:47.472000Z",
            "properties": properties or {},
        }
    ).encode()


# ------------------------------------------------------------- entries and samples


def test_every_registered_type_has_a_sample_and_every_sample_an_entry() -> None:
    shipped = {path.stem for path in SAMPLES.glob("*.json")}
    assert shipped - set(REGISTRY) == set(), "samples without a registry entry"
    assert set(REGISTRY) - shipped == set(), "registry entries without a sample"


def test_trigger_sends_exactly_the_registered_types() -> None:
    assert sorted(samples.ALL_SAMPLES) == sorted(REGISTRY)
    assert len(samples.ALL_SAMPLES) == len(set(samples.ALL_SAMPLES))


def test_the_demo_call_is_in_time_order_and_reaches_every_required_stage() -> None:
    offsets = [offset for _, offset in samples.CONVERSATION_SEQUENCE]
    assert offsets == sorted(offsets)
    assert offsets[0] == 0.0, "the demo call starts with the join"
    in_call = {REGISTRY[name].stage for name, _ in samples.CONVERSATION_SEQUENCE}
    assert {stage for stage in STAGES if stage.required} <= in_call


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_each_sample_classifies_as_its_entry(name: str) -> None:
    entry = REGISTRY[name]
    result = classify(sample(name))

    assert result.event_type == name
    assert result.family is entry.family
    assert result.family is PINNED_FAMILIES.get(name, entry.family)
    assert result.error is None


def test_pinned_families_are_all_still_registered() -> None:
    assert set(PINNED_FAMILIES) <= set(REGISTRY)


@pytest.mark.parametrize(
    "entry",
    [e for e in REGISTRY.values() if e.family in ENVELOPE_FAMILIES],
    ids=lambda e: e.name,
)
def test_registered_conversation_types_agree_with_the_naming_rule(
    entry: event_types.EventType,
) -> None:
    """The callback notes tell guardrails and objectives apart by name; the registry may not
    contradict them, or the same type would change family the day it is registered."""
    lowered = entry.name.lower()
    by_name = (
        Family.GUARDRAIL
        if "guardrail" in lowered
        else Family.OBJECTIVE
        if "objective" in lowered
        else Family.CONVERSATION
    )
    assert entry.family is by_name


def test_every_stage_is_made_of_registered_types() -> None:
    for stage in STAGES:
        assert event_types.stage_types(stage), f"stage {stage.name!r} has no type"
    assert len({stage.name for stage in STAGES}) == len(STAGES)


def result_types_of(section: event_types.LifecycleStage | Family) -> list[str]:
    """The registered types a result section stands for, in registry order."""
    if isinstance(section, Family):
        return [name for name, entry in REGISTRY.items() if entry.family is section]
    return [name for name in REGISTRY if name in event_types.stage_types(section)]


def test_the_transcripts_results_are_the_registrys_result_types_in_its_order() -> None:
    """The transcripts pane lists ``view.results``: what the registry says, not a hand list."""
    conversation_types = [name for name, e in REGISTRY.items() if e.family in ENVELOPE_FAMILIES]
    bodies = samples.render_many(conversation_types, conversation_id="cresults0001")
    events = [event_of(rendered.body, event_id=n) for n, rendered in enumerate(bodies, 1)]
    view = build_conversation("cresults0001", events)
    shown = [event.event_type for event in view.results]
    assert shown == [name for section in event_types.RESULTS for name in result_types_of(section)]
    # What the pane has always listed, in the order it has always listed it.
    assert shown == [
        "application.recording_ready",
        "application.recording_copy_failed",
        "application.perception_analysis",
        "application.perception_unavailable",
        "conversation.objective.completed",
        "conversation.guardrail.triggered",
        "application.post_call_action_executed",
    ]
    # The call itself is the header and the turns, not a result.
    for stage in (event_types.JOINED, event_types.SHUTDOWN, event_types.TRANSCRIPT):
        assert not event_types.stage_types(stage) & set(shown)


def test_results_list_a_stage_that_counts_each_and_the_others_once() -> None:
    bodies = samples.render_many(
        [
            "application.recording_ready",
            "application.post_call_action_executed",
            "application.post_call_action_executed",
            "conversation.objective.completed",
            "conversation.objective.completed",
        ],
        conversation_id="cresults0002",
    )
    events = [event_of(bodies[0].body, event_id=1)]
    events.append(event_of(bodies[0].body, event_id=2, duplicate_of=1))  # redelivered
    events += [event_of(rendered.body, event_id=n) for n, rendered in enumerate(bodies[1:], 3)]
    view = build_conversation("cresults0002", events)
    assert [event.id for event in view.results] == [1, 5, 6, 3, 4]
    assert view.results[0] is view.recording


# ------------------------------------------------------------------ fallbacks


def test_a_job_shaped_name_in_a_conversation_body_stays_a_conversation() -> None:
    """``replica.ready`` is registered as a replica job, but a body with an event_type is
    always a conversation callback: the registry must not hand it the job summary."""
    result = classify(envelope("replica.ready", {"replica_id": "r1"}))

    assert result.family is Family.CONVERSATION
    assert result.summary == "replica.ready (replica_id)"
    assert result.severity is Severity.INFO


@pytest.mark.parametrize(
    ("event_type", "family", "severity", "summary"),
    [
        (
            "conversation.objective.pending",
            Family.OBJECTIVE,
            Severity.INFO,
            "objective (unnamed) pending",
        ),
        (
            "conversation.guardrail.hit",
            Family.GUARDRAIL,
            Severity.WARNING,
            "guardrail (unnamed) triggered",
        ),
        (
            "application.something_new",
            Family.CONVERSATION,
            Severity.INFO,
            "application.something_new",
        ),
    ],
)
def test_unregistered_types_get_their_familys_fallback(
    event_type: str, family: Family, severity: Severity, summary: str
) -> None:
    result = classify(envelope(event_type))

    assert (result.family, result.severity, result.summary) == (family, severity, summary)
    assert event_types.lookup(family, event_type) is FALLBACKS[family]


def test_every_family_has_a_fallback() -> None:
    assert set(FALLBACKS) == set(Family)
    assert all(entry.family is family for family, entry in FALLBACKS.items())


# ---------------------------------------------------------------------- toasts


def test_a_shutdown_and_its_transcript_are_announced_with_their_conversation() -> None:
    shutdown = event_of(sample("system.shutdown"))
    transcript = event_of(sample("application.transcription_ready"))

    assert toast(shutdown) == (f"{shutdown.conversation_id}: {shutdown.summary}", "information")
    assert toast(transcript) == (
        f"{transcript.conversation_id}: {transcript.summary}",
        "information",
    )


def test_a_shutdown_that_is_not_normal_is_a_warning_even_when_it_is_an_error() -> None:
    body = envelope(
        "system.shutdown", {"shutdown_reason": "exception_encountered_during_conversation_startup"}
    )
    event = event_of(body)

    assert event.severity is Severity.ERROR
    assert toast(event) == (f"c123456: {event.summary}", "warning")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("replica.ready", "information"),
        ("replica.error", "error"),
        ("video.ready", "information"),
        ("video.error", "error"),
        ("application.recording_copy_failed", "error"),
        ("conversation.objective.completed", None),
        ("application.recording_ready", None),
        ("system.replica_joined", None),
    ],
)
def test_toasts_follow_each_types_notify_rule(name: str, expected: str | None) -> None:
    event = event_of(sample(name))
    announced = toast(event)

    if expected is None:
        assert announced is None
    else:
        assert announced == (event.summary, expected)


def test_an_unregistered_job_status_is_announced_when_it_finishes_and_not_before() -> None:
    completed = event_of(json.dumps({"replica_id": "r1", "status": "completed"}).encode())
    started = event_of(json.dumps({"replica_id": "r1", "status": "started"}).encode())

    assert toast(completed) == ("replica r1 training completed", "information")
    assert toast(started) is None


def test_duplicates_are_never_announced() -> None:
    assert toast(event_of(sample("replica.error"), event_id=2, duplicate_of=1)) is None
