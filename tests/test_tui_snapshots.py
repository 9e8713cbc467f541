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


def test_empty_first_start(snap_compare: SnapCompare, fixed_settings: Settings) -> None:
    app = MonitorApp(fixed_settings)

    async def empty(pilot: Pilot[Any]) -> None:
        assert app.query_one("#events", RowList).rows == []

    assert snap_compare(app, terminal_size=SIZE, run_before=prepared(empty))
