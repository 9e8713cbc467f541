"""The Conversations screen (``v``) at 120×35: readable rows, a legend, a detail strip,
a filter and pages (issue 11, item 6).

Real app, real store, real HTTP posts, as in ``test_tui.py``; calls "from earlier runs"
(whose transcript would be overdue by now) are stored before the app starts.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from test_tui import (
    SIZE,
    Dashboard,
    conversation_bodies,
    conversation_event,
    running,
    screen_lines,
    settle,
    store_history,
    wait_for,
)
from test_tui_queries import statements, store_of
from textual.widgets import DataTable, Input, Static

from tavus_monitor import callbacks as cb
from tavus_monitor.conversation import transcript_expected
from tavus_monitor.settings import Settings
from tavus_monitor.tui.screens.simple import STAGE_LETTERS, ConversationsScreen, legend

LONG_AGO = 1_752_216_000.0
"""When the stored history happened: any transcript missing from it is long overdue."""


@pytest.fixture
async def dash(settings: Settings) -> AsyncIterator[Dashboard]:
    async with running(settings) as dashboard:
        yield dashboard


def ended_call(conversation_id: str, reason: str) -> list[bytes]:
    """A join and a shutdown for ``reason``, and nothing after."""
    return [
        conversation_event("system.replica_joined", conversation_id),
        conversation_event("system.shutdown", conversation_id, shutdown_reason=reason),
    ]


async def open_screen(dash: Dashboard) -> tuple[ConversationsScreen, DataTable[object]]:
    await dash.press("v")
    screen = dash.app.screen
    assert isinstance(screen, ConversationsScreen)
    return screen, screen.query_one("#conversations-table", DataTable)


def rows(table: DataTable[object]) -> dict[str, list[str]]:
    """Each row's cells as text, by conversation id."""
    return {
        str(key.value): [str(getattr(cell, "plain", cell)) for cell in table.get_row(key)]
        for key in table.rows
    }


def detail(screen: ConversationsScreen) -> str:
    return str(screen.query_one("#conversations-detail", Static).content)


async def test_lifecycle_is_compact_with_a_legend_and_the_detail_strip_says_it_all(
    dash: Dashboard,
) -> None:
    assert dash.app.size == SIZE
    await dash.post(*conversation_bodies("creadable000001"))
    screen, _ = await open_screen(dash)
    lines = screen_lines(dash.app)
    row = next(line for line in lines if "creadable000001" in line)
    # The whole row fits: id, reason in short words and every stage's symbol.
    assert "left · timeout" in row
    assert "J✓ S✓ T✓ R✓ P✓ A✓" in row
    # One legend line says what the letters and the symbols are.
    legend_lines = [line for line in lines if "J joined" in line]
    assert len(legend_lines) == 1
    for stage, letter in STAGE_LETTERS.items():
        assert f"{letter} {stage.split()[-1]}" in legend_lines[0]
    for word in ("✓ got", "✓² twice", "… waiting", "! late", "– none"):
        assert word in legend_lines[0]
    assert legend().plain.strip() in legend_lines[0]
    # The strip under the table has the cursor row's full text.
    strip = detail(screen)
    assert "creadable000001" in strip
    assert "participant left (timeout) (participant_left_timeout reached)" in strip
    assert "✓ joined → ✓ shutdown → ✓ transcript → ✓ recording" in strip
    for line in strip.splitlines():  # nothing of it is cut
        assert any(line in shown for shown in lines), line


async def test_the_pal_joined_twin_is_one_join_and_a_redelivery_still_repeats(
    dash: Dashboard,
) -> None:
    twin = conversation_bodies("ctwin00000001")[:2]  # replica_joined, then its pal_joined twin
    await dash.post(*twin)
    again = conversation_bodies("cagain0000001")[:2]
    await dash.post(*again, again[0])  # the replica_joined delivered twice
    screen, table = await open_screen(dash)
    shown = rows(table)
    assert shown["ctwin00000001"][4].startswith("J✓ S…")
    assert shown["cagain0000001"][4].startswith("J✓² S…")
    table.move_cursor(row=table.get_row_index("cagain0000001"))
    await settle(dash.pilot)
    assert "✓² joined (1 duplicate)" in detail(screen)


async def test_the_ended_reason_is_in_short_plain_words(settings: Settings) -> None:
    reasons = {
        "cshort0000001": ("participant_absent_timeout reached", "never joined"),
        "cshort0000002": ("max_call_duration reached", "max duration"),
        "cshort0000003": ("end_conversation_endpoint_hit", "ended via API"),
        "cshort0000004": ("internal error occurred at step llm", "internal error at llm"),
        "cshort0000005": ("something_new", "something_new"),
    }
    bodies = [body for cid, (raw, _) in reasons.items() for body in ended_call(cid, raw)]
    store_history(settings, bodies, start=LONG_AGO)
    async with running(settings) as dash:
        _, table = await open_screen(dash)
        shown = rows(table)
        for conversation_id, (_, words) in reasons.items():
            assert shown[conversation_id][3] == words


async def test_no_overdue_transcript_for_calls_tavus_sends_none_for(settings: Settings) -> None:
    calls = {
        "cnone00000001": "participant_absent_timeout reached",  # nobody joined
        "cnone00000002": "bot_could_not_join_meeting_it_was_probably_ended",
        "cnone00000003": "exception_encountered_during_conversation_startup",
        "cnone00000004": "internal error occurred at step llm",
        "cdue000000001": "participant_left_timeout reached",  # a call: its transcript is late
        "cdue000000002": "end_conversation_endpoint_hit",
    }
    bodies = [body for cid, raw in calls.items() for body in ended_call(cid, raw)]
    store_history(settings, bodies, start=LONG_AGO)
    async with running(settings) as dash:
        screen, table = await open_screen(dash)
        shown = rows(table)
        for conversation_id in calls:
            lifecycle = shown[conversation_id][4]
            if conversation_id.startswith("cnone"):
                assert lifecycle.startswith("J✓ S✓ T–"), conversation_id
            else:
                assert lifecycle.startswith("J✓ S✓ T!"), conversation_id
        table.move_cursor(row=table.get_row_index("cnone00000001"))
        await settle(dash.pilot)
        assert "– transcript (none sent for this end)" in detail(screen)
        table.move_cursor(row=table.get_row_index("cdue000000001"))
        await settle(dash.pilot)
        assert "! transcript (no transcript" in detail(screen)


def test_the_transcript_rule_follows_the_reason() -> None:
    def reason(raw: str) -> cb.ShutdownReason:
        parsed = cb.shutdown_reason({"shutdown_reason": raw})
        assert parsed is not None
        return parsed

    assert transcript_expected(None)
    assert transcript_expected(reason("participant_left_timeout reached"))
    assert transcript_expected(reason("max_call_duration"))
    assert transcript_expected(reason("something_undocumented"))
    assert not transcript_expected(reason("participant_absent_timeout"))
    assert transcript_expected(reason("daily_room_has_been_deleted"))
    assert not transcript_expected(reason("exception_encountered_during_conversation_startup"))


async def test_the_filter_keeps_conversations_by_id_or_reason(settings: Settings) -> None:
    bodies = [
        *ended_call("cfilter000001", "participant_absent_timeout reached"),
        *ended_call("cfilter000002", "participant_left_timeout reached"),
        *ended_call("cother0000003", "max_call_duration reached"),
    ]
    store_history(settings, bodies, start=time.time() - 10)
    async with running(settings) as dash:
        screen, table = await open_screen(dash)
        assert table.row_count == 3
        await dash.press("slash")
        field = screen.query_one("#conversations-filter", Input)
        assert dash.app.focused is field
        await dash.press(*"filter")
        await wait_for(dash.pilot, lambda: table.row_count == 2, "the id filter")
        assert set(rows(table)) == {"cfilter000001", "cfilter000002"}
        assert "matching “filter” · 2 shown" in "\n".join(screen_lines(dash.app))
        # By the reason as the list shows it (short words) and as Tavus wrote it.
        field.value = "never joined"
        await wait_for(dash.pilot, lambda: set(rows(table)) == {"cfilter000001"}, "short")
        field.value = "MAX_CALL"
        await wait_for(dash.pilot, lambda: set(rows(table)) == {"cother0000003"}, "raw")
        field.value = "nothing-like-this"
        await wait_for(dash.pilot, lambda: table.row_count == 0, "no match")
        assert "none match" in "\n".join(screen_lines(dash.app))
        field.value = ""
        await wait_for(dash.pilot, lambda: table.row_count == 3, "no filter")
        # Down goes back to the list, where q closes the screen (in the input it is a letter).
        await dash.press("down")
        assert dash.app.focused is screen.query_one("#conversations-table")
        await dash.press("q")
        assert not isinstance(dash.app.screen, ConversationsScreen)


async def test_pages_load_when_the_cursor_reaches_the_end_one_query_each(
    settings: Settings,
) -> None:
    bodies = [body for number in range(25) for body in ended_call(f"cpage{number:08d}", "max_call")]
    store_history(settings, bodies, start=time.time() - 100)
    async with running(settings) as dash:
        store = store_of(dash)
        screen = ConversationsScreen(store, page_size=10)
        with statements(store) as seen:
            await dash.app.push_screen(screen)
            await settle(dash.pilot)
            table = screen.query_one("#conversations-table", DataTable)
            await wait_for(dash.pilot, lambda: table.row_count == 10, "the first page")
        # The page, and (first page only) the conversations created here that no callback
        # reached yet (listed on top, waiting).
        assert len(seen) == 2, seen
        assert "FROM created" in seen[1]
        title = "\n".join(screen_lines(dash.app))
        assert "10 shown · more load when the cursor reaches the end" in title
        for page in (20, 25):

            def loaded(wanted: int = page) -> bool:
                return table.row_count == wanted

            with statements(store) as seen:
                table.move_cursor(row=table.row_count - 1)
                await wait_for(dash.pilot, loaded, f"{page} rows")
            assert len(seen) == 1, seen
        assert list(rows(table)) == [f"cpage{number:08d}" for number in reversed(range(25))]
        assert "25 shown · all" in "\n".join(screen_lines(dash.app))
        with statements(store) as seen:
            table.move_cursor(row=table.row_count - 1)
            await settle(dash.pilot)
        assert seen == []  # the last page was not full: nothing more to read


async def test_the_detail_strip_counts_one_event_in_the_singular(dash: Dashboard) -> None:
    await dash.post(conversation_event("system.replica_joined", "cjustjoined01"))
    screen, _ = await open_screen(dash)
    await settle(dash.pilot)
    strip = detail(screen)
    assert "cjustjoined01" in strip
    assert "  ·  1 event  ·  " in strip
