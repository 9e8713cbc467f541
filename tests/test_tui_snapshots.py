"""Snapshots of the dashboard (pytest-textual-snapshot): what a user sees, pixel for pixel.

Deterministic by construction: a fixed token and port, history stored before
the start with fixed arrival times (so no toasts), UTC, and a frozen clock for
the "last callback … ago" text. The monitor is stopped before the screenshot
is taken, so the server never outlives the app.

Regenerate after an intended change of the layout with
``pytest tests/test_tui_snapshots.py --snapshot-update`` and look at the SVGs.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import TEST_TOKEN, wait_ready
from textual.pilot import Pilot
from textual.worker import WorkerCancelled

from tavus_monitor import samples
from tavus_monitor.settings import Settings
from tavus_monitor.store import Delivery, Store
from tavus_monitor.tui.app import MonitorApp
from tavus_monitor.tui.screens.inspector import InspectorScreen
from tavus_monitor.tui.widgets import url_bar
from tavus_monitor.tui.widgets.jobs_pane import JobsPane
from tavus_monitor.tui.widgets.row_list import RowList
from tavus_monitor.tui.widgets.transcript_view import TranscriptView

SnapCompare = Callable[..., bool]
PORT = 58231
SIZE = (120, 35)
JOINED_AT = datetime(2025, 7, 11, 6, 45, 47, tzinfo=UTC).timestamp()
NOW = JOINED_AT + 600
"""The frozen "now": ten minutes after the call started."""
CONVERSATION_ID = "c7f3a91b2d04"


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """UTC wall clock, and a URL bar that believes it is always ``NOW``."""
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    monkeypatch.setattr(url_bar, "time", SimpleNamespace(time=lambda: NOW))
    try:
        yield
    finally:
        if previous is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = previous
        time.tzset()


@pytest.fixture
def fixed_settings(tmp_path: Path, frozen: None) -> Settings:
    return Settings(
        port=PORT,
        port_explicit=True,
        token=TEST_TOKEN,
        data_dir=tmp_path / "data",
        no_tunnel=True,
    )


def call_history() -> list[tuple[float, bytes]]:
    """One whole call and two jobs, as (arrival time, body)."""
    history: list[tuple[float, bytes]] = []
    for name, offset in samples.CONVERSATION_SEQUENCE:
        data: dict[str, Any] = samples.load(name)
        data["conversation_id"] = CONVERSATION_ID
        history.append((JOINED_AT + offset + 0.3, json.dumps(data, indent=2).encode()))
    for index, name in enumerate(("video.ready", "replica.error")):
        history.append((JOINED_AT + 480 + index, json.dumps(samples.load(name)).encode()))
    return history


DAY_START = datetime(2025, 7, 11, 9, 0, tzinfo=UTC).timestamp()
DAY_REASONS: tuple[str, ...] = (
    "participant_left_timeout reached",
    "participant_absent_timeout reached",
    "max_call_duration reached",
    "end_conversation_endpoint_hit",
    "exception_encountered_during_conversation_startup",
    "internal error occurred at step llm_inference",
    "bot_could_not_join_meeting_it_was_probably_ended",
    "daily_room_has_been_deleted",
    "participant_left_timeout",
    "replica_restarted_mid_call",
)
"""A day's shutdowns: every documented reason (with and without `` reached``) and one
that is not documented, which must show verbatim."""
DAY_NOW = DAY_START + 8 * 3600 + 900
"""The frozen "now" of the day: a few minutes after its last callback."""


def day_conversation(index: int) -> str:
    return f"c{index:x}{'e5a0b7d31f04a9'[: 11 - len(f'{index:x}')]}"


def day_history() -> list[tuple[float, bytes]]:
    """A realistic working day: ten calls ending every way Tavus documents (and one way
    it does not), a duplicate delivery, the last call complete with its transcript and
    results, and replica trainings and video renders that succeed and fail."""
    history: list[tuple[float, bytes]] = []

    def add(at: float, data: dict[str, Any]) -> None:
        history.append((at, json.dumps(data, indent=2).encode()))

    def conversation(name: str, conversation_id: str, **properties: Any) -> dict[str, Any]:
        data: dict[str, Any] = samples.load(name)
        data["conversation_id"] = conversation_id
        data["properties"] = {**data.get("properties", {}), **properties}
        return data

    for index, reason in enumerate(DAY_REASONS):
        start = DAY_START + index * 45 * 60
        conversation_id = day_conversation(index + 1)
        if reason != "participant_absent_timeout reached":
            add(start, conversation("system.replica_joined", conversation_id))
            if index % 2 == 0:  # newer accounts get the pal_joined twin too
                add(start + 0.001, conversation("system.pal_joined", conversation_id))
        shutdown = conversation("system.shutdown", conversation_id, shutdown_reason=reason)
        add(start + 170 + index * 7, shutdown)
        if index == 3:  # delivered twice
            add(start + 171 + index * 7, shutdown)
        if reason.startswith(("participant_left", "max_call", "end_conversation")):
            transcript = conversation("application.transcription_ready", conversation_id)
            add(start + 170.5 + index * 7, transcript)
    jobs_at = DAY_START + 4 * 3600
    ready = samples.load("video.ready")
    add(jobs_at, ready)
    failed = samples.load("video.error")
    failed["error_details"] = "Audio file could not be decoded: unsupported codec (opus in .mov)"
    add(jobs_at + 600, failed)
    default_name = samples.load("video.ready")
    default_name["video_id"] = "v7f3e91c2a"
    default_name["video_name"] = "replica_id: r79e1c033f - July 11, 2025 - video: 0"
    add(jobs_at + 1200, default_name)
    add(jobs_at + 1800, samples.load("replica.error"))
    add(jobs_at + 2400, samples.load("replica.ready"))
    last = day_conversation(len(DAY_REASONS) + 1)
    end = DAY_NOW - 900
    for name, offset in samples.CONVERSATION_SEQUENCE:
        add(end - 474 + offset, conversation(name, last))
    return sorted(history, key=lambda item: item[0])


def store_history(settings: Settings, history: list[tuple[float, bytes]]) -> None:
    assert settings.db_path is not None
    with Store(settings.db_path) as store:
        futures = [
            store.submit(
                Delivery(
                    body=body,
                    headers=(("content-type", "application/json"), ("user-agent", "Tavus")),
                    received_at=received_at,
                    remote_addr="203.0.113.7",
                    path=f"/webhook/{TEST_TOKEN}",
                )
            )
            for received_at, body in history
        ]
        for future in futures:
            future.result()


async def settle(pilot: Pilot[Any]) -> None:
    """Wait for the panes' store queries (their workers), then for an idle screen."""
    app = pilot.app
    for _ in range(5):
        await pilot.pause()
        pending = [w for w in app.workers if w.group != "server" and not w.is_finished]
        if not pending:
            break
        for worker in pending:
            with contextlib.suppress(WorkerCancelled):
                await worker.wait()
    await pilot.pause()


def prepared(
    then: Callable[[Pilot[Any]], Awaitable[None]] | None = None,
) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """``run_before``: wait until the history is on every pane, act, stop the server."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, MonitorApp)
        await wait_ready(app)
        assert app.monitor.port == PORT, "the snapshot port is busy"
        await settle(pilot)
        if then is not None:
            await then(pilot)
            await settle(pilot)
        await app.monitor.stop()
        await settle(pilot)

    return run_before


def test_main_screen_with_a_call(snap_compare: SnapCompare, fixed_settings: Settings) -> None:
    store_history(fixed_settings, call_history())
    app = MonitorApp(fixed_settings)

    async def loaded(pilot: Pilot[Any]) -> None:
        assert len(app.query_one("#events", RowList).rows) == len(call_history())
        view = app.query_one(TranscriptView).view
        assert view is not None
        assert view.conversation_id == CONVERSATION_ID

    assert snap_compare(app, terminal_size=SIZE, run_before=prepared(loaded))


def test_inspector_on_the_transcript(snap_compare: SnapCompare, fixed_settings: Settings) -> None:
    store_history(fixed_settings, call_history())
    app = MonitorApp(fixed_settings)

    async def open_transcript(pilot: Pilot[Any]) -> None:
        events = app.query_one("#events", RowList)
        # Newest first: two jobs, then the call from its last callback backwards.
        transcript = [row.event_type for row in events.rows].index(
            "application.transcription_ready"
        )
        await pilot.press(*["down"] * transcript, "enter")
        await settle(pilot)
        assert isinstance(app.screen, InspectorScreen)
        assert app.screen.event is not None
        assert app.screen.event.event_type == "application.transcription_ready"

    assert snap_compare(app, terminal_size=SIZE, run_before=prepared(open_transcript))


DAY_SIZES = [(80, 24), (100, 30), (120, 35), (160, 48), (220, 60)]


@pytest.mark.parametrize("size", DAY_SIZES, ids=[f"{w}x{h}" for w, h in DAY_SIZES])
def test_a_day_of_traffic(
    snap_compare: SnapCompare,
    fixed_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    size: tuple[int, int],
) -> None:
    """What a day looks like at each size: the system pane says how each call ended,
    the jobs pane each job's status, and each list's detail strip its selected row."""
    monkeypatch.setattr(url_bar, "time", SimpleNamespace(time=lambda: DAY_NOW))
    history = day_history()
    store_history(fixed_settings, history)
    app = MonitorApp(fixed_settings)

    async def loaded(pilot: Pilot[Any]) -> None:
        assert len(app.query_one("#events", RowList).rows) == len(history)
        assert len(app.query_one("#jobs", JobsPane).table.jobs) == 5

    assert snap_compare(app, terminal_size=size, run_before=prepared(loaded))


def test_empty_first_start(snap_compare: SnapCompare, fixed_settings: Settings) -> None:
    app = MonitorApp(fixed_settings)

    async def empty(pilot: Pilot[Any]) -> None:
        assert app.query_one("#events", RowList).rows == []

    assert snap_compare(app, terminal_size=SIZE, run_before=prepared(empty))
