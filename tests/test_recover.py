"""Recovering callbacks that never arrived, and saying which a URL change strands.

Real parts: a real store on a temporary file (its writer process included), the stand-in
Tavus API on loopback (``standin_tavus.py``) that can withhold callbacks while its verbose GET
still lists them, a real monitor for the hand-over, and the command line as users run it.
The callback / verbose pairs below have the shapes the docs give (tavus-api.md §6): the
callback with microsecond timestamps, ``shutdown_reason`` and ``replica_id``; its verbose twin
with whole seconds, ``reason`` and joins without properties.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from standin_tavus import Behaviour, StandinTavus, running_standin

from tavus_monitor import samples
from tavus_monitor.cli import EXIT_FAILED, EXIT_OK, main
from tavus_monitor.events import SOURCE_API, SOURCE_CALLBACK, Delivery, Event, classify
from tavus_monitor.jsonlines import event_line
from tavus_monitor.monitor import Monitor
from tavus_monitor.recover import (
    api_path,
    candidates,
    match_key,
    plan,
    recover_into,
    stored_key,
)
from tavus_monitor.store import Store
from tavus_monitor.stranded import stranded, url_changed_sentence
from tavus_monitor.tavus_api import TavusApi
from tavus_monitor.tunnel import TunnelState, TunnelStatus

CID = "c7f3a91b2d04"
REPLICA = "r79e1c033f"
CLI_DEADLINE = 60.0


def callback(event_type: str, timestamp: str, **properties: Any) -> bytes:
    """A callback body as Tavus POSTs it."""
    return json.dumps(
        {
            "properties": {"replica_id": REPLICA, **properties},
            "conversation_id": CID,
            "webhook_url": "https://example.ngrok-free.app/webhook/secret-token",
            "event_type": event_type,
            "message_type": event_type.split(".", 1)[0],
            "timestamp": timestamp,
        }
    ).encode()


def verbose(event_type: str, timestamp: str, **properties: Any) -> dict[str, Any]:
    """The same event as ``GET …?verbose=true`` lists it."""
    item: dict[str, Any] = {"event_type": event_type, "timestamp": timestamp}
    if properties:
        item["properties"] = properties
    return item


def answer(*events: dict[str, Any], status: str = "ended") -> dict[str, Any]:
    return {"conversation_id": CID, "status": status, "replica_id": REPLICA, "events": list(events)}


def event_of(body: bytes, event_id: int = 1) -> Event:
    return Event.classified(classify(body), event_id=event_id, received_at=1_000.0, body=body)


TRANSCRIPT = [
    {"role": "assistant", "content": "Hi, welcome.", "timestamp": 1752216350.1},
    {"role": "user", "content": "Just testing.", "timestamp": 1752216377.9},
]

# (callback, its verbose twin): one event in the two shapes Tavus gives it.
TWINS: dict[str, tuple[bytes, dict[str, Any]]] = {
    "join": (
        callback("system.replica_joined", "2025-07-11T06:45:47.472000Z"),
        verbose("system.replica_joined", "2025-07-11T06:45:47Z"),
    ),
    "pal join is the same join": (
        callback("system.replica_joined", "2025-07-11T06:45:47.472000Z"),
        verbose("system.pal_joined", "2025-07-11T06:45:47Z"),
    ),
    "shutdown": (
        callback(
            "system.shutdown",
            "2025-07-11T06:48:37.564961Z",
            shutdown_reason="participant_left_timeout reached",
        ),
        verbose("system.shutdown", "2025-07-11T06:48:38Z", reason="participant_left_timeout"),
    ),
    "transcript": (
        callback(
            "application.transcription_ready", "2025-07-11T06:48:37.566Z", transcript=TRANSCRIPT
        ),
        verbose("application.transcription_ready", "2025-07-11T06:48:37Z", transcript=TRANSCRIPT),
    ),
    "perception": (
        callback("application.perception_analysis", "2025-07-11T06:51:40.1Z", analysis="**Calm.**"),
        verbose("application.perception_analysis", "2025-07-11T06:51:40Z", analysis="**Calm.**"),
    ),
    "post-call action": (
        callback(
            "application.post_call_action_executed",
            "2025-07-11T06:53:00.9Z",
            tool_name="crm_sync",
            status="success",
            request={"body": '{"a": 1}'},
        ),
        verbose(
            "application.post_call_action_executed",
            "2025-07-11T06:53:01Z",
            tool_name="crm_sync",
            status="success",
            request={"body": {"a": 1}},
        ),
    ),
    "canvas interaction": (
        callback(
            "canvas.interaction",
            "2026-06-09T21:14:03.498Z",
            interaction_id="ci_call_8f2d41_submit_5e0b7c2a",
            type="submit",
        ),
        verbose(
            "canvas.interaction",
            "2026-06-09T21:14:03Z",
            interaction_id="ci_call_8f2d41_submit_5e0b7c2a",
            type="submit",
        ),
    ),
    "a type nobody registered, its time cut to the second": (
        callback("application.something_new", "2025-07-11T06:49:10.999Z", note="hello"),
        verbose("application.something_new", "2025-07-11T06:49:10Z", note="hello"),
    ),
    "a type nobody registered, its time rounded up": (
        callback("application.something_new", "2025-07-11T06:49:10.6Z", note="hello"),
        verbose("application.something_new", "2025-07-11T06:49:11Z", note="hello"),
    ),
}


# ------------------------------------------------------------------ the matching key


@pytest.mark.parametrize("name", list(TWINS))
def test_a_callback_and_its_verbose_twin_are_one_event(name: str) -> None:
    received, listed = TWINS[name]

    planned = plan(CID, answer(listed), [event_of(received)], now=2_000.0)

    assert planned.missing == ()
    assert planned.already == 1


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (  # two post-call actions: each tool runs once
            callback(
                "application.post_call_action_executed", "2025-07-11T06:53:00Z", tool_name="a"
            ),
            verbose("application.post_call_action_executed", "2025-07-11T06:53:00Z", tool_name="b"),
        ),
        (  # two canvas answers in the same second
            callback("canvas.interaction", "2026-06-09T21:14:03.1Z", interaction_id="ci_1"),
            verbose("canvas.interaction", "2026-06-09T21:14:03Z", interaction_id="ci_2"),
        ),
        (  # the same words said twice, a minute apart
            callback("application.something_new", "2025-07-11T06:49:10Z", note="yes"),
            verbose("application.something_new", "2025-07-11T06:50:10Z", note="yes"),
        ),
        (  # two different things in the same second
            callback("application.something_new", "2025-07-11T06:49:10Z", note="yes"),
            verbose("application.something_new", "2025-07-11T06:49:10Z", note="no"),
        ),
    ],
    ids=["tools", "canvas", "same words later", "other words"],
)
def test_two_distinct_repeatable_events_are_two(first: bytes, second: dict[str, Any]) -> None:
    planned = plan(CID, answer(second), [event_of(first)], now=2_000.0)

    assert [missing.event_type for missing in planned.missing] == [second["event_type"]]
    assert planned.already == 0


def test_the_key_of_a_stored_callback_is_the_key_of_its_recovered_twin() -> None:
    """What makes "twice adds nothing": a recovered event is matched like a received one."""
    received, listed = TWINS["shutdown"]
    recovered = plan(CID, answer(listed), [], now=2_000.0).missing[0]
    stored = event_of(recovered.delivery.body)

    assert stored_key(stored) == stored_key(event_of(received))
    assert stored_key(stored) == match_key("system.shutdown", {}, None)


def test_the_api_shape_is_turned_into_the_callbacks() -> None:
    listed = verbose("system.shutdown", "2025-07-11T06:48:38Z", reason="participant_left_timeout")
    missing = plan(CID, answer(listed), [], now=2_000.0).missing[0]
    body = json.loads(missing.delivery.body)

    assert body == {
        "properties": {"shutdown_reason": "participant_left_timeout", "replica_id": REPLICA},
        "conversation_id": CID,
        "event_type": "system.shutdown",
        "message_type": "system",
        "timestamp": "2025-07-11T06:48:38Z",
    }
    assert missing.delivery.path == f"api:GET /v2/conversations/{CID}?verbose=true"
    assert missing.classification.summary == (
        "recovered · shutdown: participant left (timeout) (participant_left_timeout)"
    )


# ------------------------------------------------------------- storing what is missing


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "events.db") as opened:
        yield opened


def keep(store: Store, body: bytes, received_at: float = 1_752_216_400.0) -> Event:
    return store.submit(Delivery(body=body, received_at=received_at)).result(timeout=30)


async def test_only_the_missing_events_are_stored_marked_recovered_and_twice_adds_nothing(
    store: Store,
) -> None:
    joined, joined_twin = TWINS["join"]
    shutdown, shutdown_twin = TWINS["shutdown"]
    transcript, transcript_twin = TWINS["transcript"]
    keep(store, joined)
    conversation = answer(
        verbose("system.pal_joined", "2025-07-11T06:45:47Z"),
        joined_twin,
        transcript_twin,  # the API may list the transcript before the shutdown
        shutdown_twin,
    )

    first = await recover_into(store, CID, conversation, now=time.time())
    again = await recover_into(store, CID, conversation, now=time.time())

    assert first.line == (
        f"{CID}: 2 recovered (application.transcription_ready, system.shutdown), 2 already here"
    )
    assert again.recovered == ()
    assert again.line == f"{CID}: 0 recovered, 4 already here"
    events = store.conversation(CID)
    assert [(e.event_type, e.source) for e in events] == [
        ("system.replica_joined", SOURCE_CALLBACK),
        ("application.transcription_ready", SOURCE_API),
        ("system.shutdown", SOURCE_API),
    ]
    recovered = events[1:]
    assert all(e.summary.startswith("recovered · ") for e in recovered)
    assert all(e.path == api_path(CID) for e in recovered)
    # Shown like the callback it stands for: the same summary after the mark.
    for event, received in zip(recovered, (transcript, shutdown), strict=True):
        assert event.summary.removeprefix("recovered · ") == classify(received).summary.replace(
            "participant_left_timeout reached", "participant_left_timeout"
        )
    lines = [json.loads(event_line(event)) for event in events]
    assert [line["source"] for line in lines] == ["callback", "api", "api"]


async def test_the_history_table_marks_recovered_events(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    _, shutdown_twin = TWINS["shutdown"]
    keep(store, TWINS["join"][0])
    await recover_into(store, CID, answer(shutdown_twin), now=time.time())

    code = await asyncio.to_thread(main, ["history", "--db", str(store.path)])

    table = capsys.readouterr().out.splitlines()
    assert code == EXIT_OK
    assert "[api] recovered · shutdown: participant left (timeout)" in table[1]
    assert "[api]" not in table[2]
    assert "recovered" not in table[2]


# --------------------------------------------------------------- what looks incomplete


async def test_the_scan_picks_the_conversations_that_look_incomplete(store: Store) -> None:
    now = time.time()
    hour_ago = now - 3600

    def call(conversation_id: str, names: list[str], at: float, **shutdown: Any) -> None:
        for rendered in samples.render_many(names, conversation_id=conversation_id):
            body = rendered.body
            if shutdown and rendered.name == "system.shutdown":
                data = json.loads(body)
                data["properties"].update(shutdown)
                body = json.dumps(data).encode()
            keep(store, body, received_at=at)

    whole = ["system.replica_joined", "system.shutdown", "application.transcription_ready"]
    call("c_complete", whole, hour_ago)
    call("c_in_call", ["system.replica_joined"], hour_ago)
    call("c_no_transcript", ["system.replica_joined", "system.shutdown"], hour_ago)
    call("c_just_ended", ["system.replica_joined", "system.shutdown"], now - 5)
    call(
        "c_nobody_came",
        ["system.shutdown"],
        hour_ago,
        shutdown_reason="participant_absent_timeout reached",
    )
    call("c_last_week", ["system.replica_joined"], now - 7 * 86400)
    for conversation_id in ("c_created_silent", "c_complete"):
        await store.record_created(
            "conversation",
            conversation_id,
            name=None,
            callback_url="https://x/webhook/t",
            response={},
        )

    everything = {c.conversation_id: c.why for c in candidates(store, now=now)}
    recent = {c.conversation_id for c in candidates(store, now=now, cutoff=now - 86400)}

    assert everything == {
        "c_in_call": "no shutdown",
        "c_no_transcript": "no transcript 60 min after shutdown",
        "c_last_week": "no shutdown",
        "c_created_silent": "created here, nothing arrived",
    }
    assert recent == {"c_in_call", "c_no_transcript", "c_created_silent"}


# ------------------------------------------------ end to end, callbacks withheld by Tavus


@pytest.fixture
def tavus_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key or base URL in the developer's environment must never reach a test."""
    monkeypatch.delenv("TAVUS_API_KEY", raising=False)
    monkeypatch.setenv("TAVUS_PUBLIC_API_BASE_URL", "http://127.0.0.1:9/v2")


async def ended_silently(standin: StandinTavus, callback_url: str) -> str:
    """A conversation created and ended at the stand-in whose callbacks it withheld."""
    async with TavusApi(standin.api_key, standin.tavus_base_url) as api:
        made = await api.create_conversation(
            replica_id=REPLICA, conversation_name="demo", callback_url=callback_url
        )
        conversation_id: str = made["conversation_id"]
        await standin.until(
            lambda s: len(s.conversations[conversation_id].events) == 2, what="the joins"
        )
        await api.end_conversation(conversation_id)
        await standin.until(
            lambda s: len(s.conversations[conversation_id].events) == 4, what="the end"
        )
    assert standin.deliveries == []
    return conversation_id


async def run_main(standin: StandinTavus, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    for name, value in standin.env().items():
        monkeypatch.setenv(name, value)
    return await asyncio.wait_for(asyncio.to_thread(main, list(args)), CLI_DEADLINE)


async def test_recover_stores_the_withheld_shutdown_and_transcript(
    tmp_path: Path,
    tavus_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No monitor runs: ``recover`` opens the store itself."""
    async with running_standin(Behaviour(withhold=True)) as standin:
        conversation_id = await ended_silently(standin, "https://old.example/webhook/t")

        code = await run_main(standin, monkeypatch, "recover", conversation_id)
        again = await run_main(standin, monkeypatch, "recover", conversation_id)

    out = capsys.readouterr().out.splitlines()
    assert (code, again) == (EXIT_OK, EXIT_OK)
    # Tavus lists both joins; they are one join, stored once.
    assert out[0] == (
        f"{conversation_id}: 3 recovered (system.pal_joined, system.shutdown, "
        "application.transcription_ready), 0 already here"
    )
    assert out[1].startswith("3 recovered in 1 conversation(s), 0 already here (recordings")
    assert out[2] == f"{conversation_id}: 0 recovered, 4 already here"
    with Store(tmp_path / "data" / "events.db") as reopened:
        events = reopened.conversation(conversation_id)
    assert [(e.event_type, e.source) for e in events] == [
        ("system.pal_joined", "api"),
        ("system.shutdown", "api"),
        ("application.transcription_ready", "api"),
    ]
    assert events[1].summary == "recovered · shutdown: ended through the API (/end) " + (
        "(end_conversation_endpoint_hit)"
    )
    assert events[2].summary.startswith("recovered · transcript: 2 turns (1 user, 1 assistant)")


async def test_a_fetch_that_fails_is_one_sentence_and_exit_1(
    tmp_path: Path,
    tavus_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with running_standin(Behaviour(withhold=True)) as standin:
        known = await ended_silently(standin, "https://old.example/webhook/t")
        code = await run_main(standin, monkeypatch, "recover", "cnosuchcall", known)

    out = capsys.readouterr().out.splitlines()
    assert code == EXIT_FAILED
    assert out[0] == (
        "cnosuchcall: failed: Tavus does not know conversation cnosuchcall "
        "(400: Invalid conversation_id); check the id."
    )
    assert out[1].startswith(f"{known}: 3 recovered")
    assert out[2].startswith("3 recovered in 2 conversation(s), 0 already here, 1 failed")


@pytest.fixture
def running(monitor: Monitor) -> Monitor:
    return monitor


async def test_with_a_monitor_running_the_scan_finds_it_and_the_monitor_stores_it(
    running: Monitor,
    tavus_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The one writer: ``recover`` hands the events to the running monitor, which shows them."""
    store = running.store
    assert store is not None
    async with running_standin(Behaviour(withhold=True)) as standin:
        conversation_id = await ended_silently(standin, running.callback_url)
        await store.record_created(
            "conversation",
            conversation_id,
            name="demo",
            callback_url=running.callback_url,
            response={"status": "active"},
        )
        assert store.conversation(conversation_id) == []

        code = await run_main(standin, monkeypatch, "recover", "--since", "1h")

    captured = capsys.readouterr()
    assert code == EXIT_OK
    assert f"{conversation_id}: created here, nothing arrived" in captured.err
    assert f"{conversation_id}: 3 recovered (system.pal_joined" in captured.out
    events = store.conversation(conversation_id)
    assert [e.event_type for e in events] == [
        "system.pal_joined",
        "system.shutdown",
        "application.transcription_ready",
    ]
    assert {e.source for e in events} == {"api"}


# ----------------------------------------------------------------- the URL changed


async def test_the_url_change_sentence_names_exactly_the_still_active_created_ones(
    store: Store,
) -> None:
    old, new = "https://old.ngrok-free.app", "https://new.ngrok-free.app"

    async def created(cid: str, base: str, name: str | None = None, **response: Any) -> None:
        await store.record_created(
            "conversation", cid, name=name, callback_url=f"{base}/webhook/tok", response=response
        )

    await created("c123", old, "demo", status="active")
    await created("c456", old, status="active")
    await created("c_shut", old, status="active")
    shutdown = samples.render_many(["system.shutdown"], conversation_id="c_shut")[0].body
    await store.append(Delivery(body=shutdown))
    await created("c_ended_here", old, status="active")
    await store.record_ended("conversation", "c_ended_here")
    await created("c_test_mode", old, status="ended")
    await created("c_new", new, status="active")

    left = stranded(store, old, new)

    assert [c.resource_id for c in left] == ["c456", "c123"]  # newest first
    assert url_changed_sentence(left[::-1]) == (
        "The public URL changed: 2 conversations created with the old one are still active "
        "(c123 demo, c456): their callbacks will not arrive here; run `tavus-monitor recover` "
        "after they end."
    )
    assert url_changed_sentence(left[1:]) == (
        "The public URL changed: 1 conversation created with the old one is still active "
        "(c123 demo): its callbacks will not arrive here; run `tavus-monitor recover` "
        "after it ends."
    )
    assert url_changed_sentence([]) is None


async def test_the_monitor_says_it_when_the_tunnel_comes_back_elsewhere(monitor: Monitor) -> None:
    store = monitor.store
    assert store is not None
    await store.record_created(
        "conversation",
        "c123",
        name="demo",
        callback_url="https://old.ngrok-free.app/webhook/tok",
        response={"status": "active"},
    )

    monitor._tunnel_changed(
        TunnelStatus(
            TunnelState.UP,
            public_url="https://new.ngrok-free.app",
            previous_url="https://old.ngrok-free.app",
        )
    )

    said = monitor.bus.last["tunnel-url-stranded"].text
    assert said == (
        "The public URL changed: 1 conversation created with the old one is still active "
        "(c123 demo): its callbacks will not arrive here; run `tavus-monitor recover` "
        "after it ends."
    )
