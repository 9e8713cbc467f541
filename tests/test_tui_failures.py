"""When something fails inside the dashboard, the user hears of it and Tavus does not.

A pane whose store query fails, a batch of bus messages that cannot be shown, a
burst that overflows the panes' bus queue: each is told on screen and in the log
file, the server keeps answering 200, and the panes end up showing what is stored.
The failures are real where a real one can be made (a closed SQLite connection,
a bus queue that really overflows); only the one failure nothing real produces
(a bug while a batch is shown) is made by a patched method.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from conftest import wait_ready
from test_tui import SIZE, conversation_bodies
from textual.pilot import Pilot

from tavus_monitor.events import EventRow
from tavus_monitor.logs import configure_logging
from tavus_monitor.samples import new_conversation_id
from tavus_monitor.settings import Settings
from tavus_monitor.store import EventQuery, Store
from tavus_monitor.tui.app import SYSTEM_TYPES, MonitorApp
from tavus_monitor.tui.widgets.row_list import RowList

DEADLINE = 15.0
"""Seconds any awaited condition may take (well under a second when idle)."""


@pytest.fixture
def log_file(settings: Settings) -> Iterator[Path]:
    """Logging as ``tavus-monitor`` sets it up: to the log file, nothing to the terminal."""
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    path = configure_logging(settings.data_dir)
    try:
        yield path
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in saved:
            root.addHandler(handler)
        root.setLevel(level)


@contextlib.asynccontextmanager
async def dashboard(app: MonitorApp) -> AsyncIterator[tuple[Pilot[int], httpx.AsyncClient]]:
    app.animation_level = "none"
    async with app.run_test(size=SIZE) as pilot, httpx.AsyncClient(timeout=10) as http:
        await wait_ready(app)
        try:
            yield pilot, http
        finally:
            await app.monitor.stop()


async def wait_for(pilot: Pilot[int], condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


def notifications(app: MonitorApp, title: str) -> list[str]:
    return [n.message for n in app._notifications if n.title == title]


async def post(http: httpx.AsyncClient, app: MonitorApp, body: bytes) -> int:
    answer = await http.post(app.monitor.local_url, content=body)
    return answer.status_code


def stored_ids(store: Store, query: EventQuery) -> list[int]:
    return [row.id for row in store.rows(query)]


def shown_ids(rows: Sequence[EventRow]) -> list[int]:
    return [row.id for row in rows]


async def test_a_failing_pane_query_is_told_and_logged_and_the_server_keeps_answering(
    settings: Settings, log_file: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    app = MonitorApp(settings)
    async with dashboard(app) as (pilot, http):
        assert await post(http, app, conversation_bodies(new_conversation_id())[0]) == 200
        store = app.monitor.store
        assert store is not None
        # A real SQLite failure: the store's read connection is gone (not the "store
        # closed" StoreError of quitting), so every pane query raises ProgrammingError.
        with store._reader_lock:
            store._reader_db.close()
        await pilot.press("slash", "x")  # filtering reloads the events pane from the store
        title = "Something went wrong in the dashboard"
        await wait_for(pilot, lambda: bool(notifications(app, title)), "the failure notice")
        assert "Loading a pane failed (ProgrammingError" in notifications(app, title)[0]
        assert app.is_running
        # Tavus still gets its answers, and the callback is stored.
        assert await post(http, app, conversation_bodies(new_conversation_id())[0]) == 200
        assert app.monitor.stats.events_total == 2
    logged = await asyncio.to_thread(log_file.read_text)
    assert "ERROR tavus_monitor.tui.app: Loading a pane failed" in logged
    assert "sqlite3.ProgrammingError" in logged
    assert "ProgrammingError" not in capfd.readouterr().err


async def test_a_burst_that_overflows_the_panes_queue_still_shows_every_stored_event(
    settings: Settings, log_file: Path
) -> None:
    app = MonitorApp(settings)
    app.BUS_QUEUE_SIZE = 4  # a queue that a burst of a hundred callbacks overflows
    async with dashboard(app) as (pilot, http):
        bodies = [body for _ in range(15) for body in conversation_bodies(new_conversation_id())]
        answers = await asyncio.gather(*(post(http, app, body) for body in bodies))
        assert answers == [200] * len(bodies)
        title = "Panes reloaded"
        await wait_for(pilot, lambda: bool(notifications(app, title)), "the reload notice")
        assert "nothing was lost" in notifications(app, title)[0]
        store = app.monitor.store
        assert store is not None
        async with asyncio.timeout(DEADLINE):
            await app.wait_until_shown(app.monitor.stats.events_total)
        events = app.query_one("#events", RowList)
        system = app.query_one("#system", RowList)
        everything = stored_ids(store, EventQuery(limit=1000))
        assert len(everything) == len(bodies)
        await wait_for(pilot, lambda: shown_ids(events.rows) == everything, "every event shown")
        joins_and_shutdowns = stored_ids(store, EventQuery(event_types=SYSTEM_TYPES, limit=1000))
        assert shown_ids(system.rows) == joins_and_shutdowns
    assert "fell behind a burst of callbacks" in await asyncio.to_thread(log_file.read_text)


async def test_a_batch_that_fails_to_show_is_told_and_the_panes_go_on_updating(
    settings: Settings, log_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing real makes showing a batch raise (it is our own code): a patched method does.
    add = RowList.add
    failures = [RuntimeError("a bug while showing rows")]

    def add_failing_once(self: RowList, rows: Sequence[EventRow]) -> None:
        if failures:
            raise failures.pop()
        add(self, rows)

    monkeypatch.setattr(RowList, "add", add_failing_once)
    app = MonitorApp(settings)
    async with dashboard(app) as (pilot, http):
        assert await post(http, app, conversation_bodies(new_conversation_id())[0]) == 200
        title = "Something went wrong in the dashboard"
        await wait_for(pilot, lambda: bool(notifications(app, title)), "the failure notice")
        assert "Updating the panes failed (RuntimeError" in notifications(app, title)[0]
        events = app.query_one("#events", RowList)
        # The event whose batch failed comes back from the store...
        await wait_for(pilot, lambda: len(events.rows) == 1, "the failed batch's event")
        # ...and later callbacks keep arriving on the panes.
        assert await post(http, app, conversation_bodies(new_conversation_id())[0]) == 200
        await wait_for(pilot, lambda: len(events.rows) == 2, "the next callback on the panes")
        assert app.is_running
    logged = await asyncio.to_thread(log_file.read_text)
    assert "ERROR tavus_monitor.tui.app: Updating the panes failed" in logged
