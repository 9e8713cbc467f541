"""The dashboard reads a list with one store query, however many items it holds.

The Conversations screen used to run two queries per conversation (its rows, then its
shutdown's body) and the jobs pane one per job (each job's body): with a few hundred
of them, hundreds of queries behind one key press. These tests count the statements
the store's read connection really runs (``sqlite3.Connection.set_trace_callback``)
while the real app, on a real store holding a few hundred items, loads them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from test_tui import (
    Dashboard,
    conversation_event,
    encode,
    running,
    sample,
    settle,
    store_history,
    wait_for,
)
from textual.widgets import DataTable

from tavus_monitor.settings import Settings
from tavus_monitor.store import StoreReader
from tavus_monitor.tui.layout import PANES
from tavus_monitor.tui.screens.simple import ConversationsScreen

CONVERSATIONS = 150
"""Each with a join and a shutdown, and a video job beside each: 450 stored events."""


def history() -> list[bytes]:
    bodies = []
    for number in range(CONVERSATIONS):
        conversation_id = f"cquery{number:06d}"
        bodies.append(conversation_event("system.replica_joined", conversation_id))
        bodies.append(conversation_event("system.shutdown", conversation_id))
        bodies.append(encode(sample("video.ready", video_id=f"v{number:09d}")))
    return bodies


@contextlib.contextmanager
def statements(store: StoreReader) -> Iterator[list[str]]:
    """Every SQL statement the store's read connection runs inside the block."""
    seen: list[str] = []
    connection = store._reader_db
    connection.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        connection.set_trace_callback(None)


def store_of(dash: Dashboard) -> StoreReader:
    store = dash.app.store
    assert store is not None
    return store


async def test_the_conversations_screen_is_one_query(settings: Settings) -> None:
    store_history(settings, history(), start=1_752_216_000.0)
    async with running(settings) as dash:
        with statements(store_of(dash)) as seen:
            await dash.press("v")
            screen = dash.app.screen
            assert isinstance(screen, ConversationsScreen)
            table = screen.query_one(DataTable)
            await wait_for(dash.pilot, lambda: table.row_count == CONVERSATIONS, "the list")
        # One for the list, one small one for the conversations created here that no
        # callback reached yet (the first page lists them on top, waiting).
        assert len(seen) == 2, seen
        assert "FROM created" in seen[1]
        # What needed the second query per conversation (the reason is in the body) is there.
        assert table.get_row_at(0)[0].plain == f"cquery{CONVERSATIONS - 1:06d}"
        assert table.get_row_at(0)[3].plain == "left · timeout"
        assert table.get_row_at(0)[4].plain.startswith("J✓ S✓ T!")


async def test_the_jobs_pane_loads_with_one_query(settings: Settings) -> None:
    store_history(settings, history(), start=1_752_216_000.0)
    async with running(settings) as dash:
        jobs = dash.jobs
        assert jobs.row_count == CONVERSATIONS
        jobs.clear()
        jobs.jobs.clear()
        with statements(store_of(dash)) as seen:
            # What the app does at start and on every reload from the store.
            jobs.attach(store_of(dash))
            await settle(dash.pilot)
        assert len(seen) == 1, seen
        assert jobs.row_count == CONVERSATIONS
        # Every job's links were read from its body, which came with the one query.
        assert all("hosted" in job.links for job in jobs.jobs.values())


async def test_reloading_every_pane_costs_a_few_queries_not_one_per_item(
    settings: Settings,
) -> None:
    store_history(settings, history(), start=1_752_216_000.0)
    async with running(settings) as dash:
        with statements(store_of(dash)) as seen:
            dash.app._attach_store(store_of(dash))
            await settle(dash.pilot)
        # One list query per pane, the transcripts pane reads its open conversation, and
        # the Events pane reads its page's handler answers (one query for the page).
        assert len(seen) <= len(PANES) + 2, seen
        assert sum("FROM attempts" in statement for statement in seen) == 1, seen
