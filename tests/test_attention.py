"""What needs attention (issue 11, item 3): the header counts it, ``!`` lists it, Enter goes
to it. Real app, real store, real HTTP posts, as in ``test_tui.py``."""

from __future__ import annotations

import time

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

from tavus_monitor.attention import ConcernKind, find_concerns
from tavus_monitor.settings import Settings
from tavus_monitor.store import ReadOnlyStore
from tavus_monitor.tui.attention_watch import AT_LEAST, SOON, AttentionWatch
from tavus_monitor.tui.screens.attention import AttentionScreen
from tavus_monitor.tui.screens.inspector import InspectorScreen
from tavus_monitor.tui.widgets.transcript_pane import TranscriptPane
from tavus_monitor.tui.widgets.url_bar import UrlBar

LONG_AGO = 1_752_216_000.0
"""When the stored history happened: a transcript missing from it is long overdue."""


def day_of_trouble() -> list[bytes]:
    """A failed video, a good replica, a call that failed to start, a call whose transcript
    never came, a call nobody joined (which gets no transcript) and a complete call."""
    return [
        encode(sample("video.error", video_id="vbroken0001", video_name="launch teaser")),
        encode(sample("replica.ready", replica_id="rgood000001")),
        conversation_event(
            "system.shutdown",
            "cfailed00001",
            shutdown_reason="exception_encountered_during_conversation_startup",
        ),
        conversation_event("system.replica_joined", "cnotrans0001"),
        conversation_event(
            "system.shutdown", "cnotrans0001", shutdown_reason="participant_left_timeout"
        ),
        conversation_event(
            "system.shutdown", "cnobody00001", shutdown_reason="participant_absent_timeout"
        ),
        conversation_event("system.replica_joined", "cwhole000001"),
        conversation_event("system.shutdown", "cwhole000001", shutdown_reason="max_call_duration"),
        conversation_event("application.transcription_ready", "cwhole000001"),
    ]


def test_the_concerns_are_the_failures_and_the_overdue_transcript_only(
    settings: Settings,
) -> None:
    store_history(settings, day_of_trouble(), start=LONG_AGO)
    assert settings.db_path is not None
    with ReadOnlyStore(settings.db_path) as store:
        concerns = find_concerns(store, now=time.time(), local_only="the tunnel failed", rejected=2)
    kinds = [(concern.kind, concern.conversation_id) for concern in concerns]
    assert kinds[:2] == [(ConcernKind.TUNNEL, None), (ConcernKind.REJECTED, None)]
    assert sorted(kinds[2:], key=str) == sorted(
        [
            (ConcernKind.FAILED_JOB, None),
            (ConcernKind.ERROR_END, "cfailed00001"),
            (ConcernKind.OVERDUE, "cnotrans0001"),
        ],
        key=str,
    )
    texts = {concern.kind: concern.text for concern in concerns}
    assert "vbroken0001 “launch teaser” error" in texts[ConcernKind.FAILED_JOB]
    assert "cfailed00001 ended in error" in texts[ConcernKind.ERROR_END]
    assert texts[ConcernKind.OVERDUE].startswith("cnotrans0001: no transcript")
    assert texts[ConcernKind.REJECTED].startswith("2 requests refused")


def test_counting_waits_for_a_burst_to_ease_but_not_forever() -> None:
    watch = AttentionWatch()
    assert watch.due(100.0, rate=0.0)  # the first count
    watch.changed()
    assert not watch.due(100.0 + SOON / 2, rate=0.0)  # soon, not at once
    assert not watch.due(100.0 + SOON, rate=2_500.0)  # not while callbacks pour in
    assert watch.due(100.0 + SOON, rate=10.0)  # once they ease
    assert not watch.due(100.0 + SOON * 2, rate=0.0)  # nothing changed since
    assert watch.due(100.0 + SOON + AT_LEAST, rate=2_500.0)  # time alone makes overdue


async def until_counted(dash: Dashboard, count: int) -> UrlBar:
    bar = dash.app.query_one(UrlBar)
    await wait_for(dash.pilot, lambda: bar.state.attention == count, f"{count} concerns")
    return bar


async def test_the_header_counts_them_and_bang_goes_to_each(settings: Settings) -> None:
    store_history(settings, day_of_trouble(), start=LONG_AGO)
    async with running(settings) as dash:
        app = dash.app
        bar = await until_counted(dash, 3)
        await settle(dash.pilot)
        assert "3 need attention (! lists)" in dash.text()
        assert bar.state.attention_urgent  # a failed job and a failed call are red

        await dash.press("exclamation_mark")
        screen = app.screen
        assert isinstance(screen, AttentionScreen)
        listed = {concern.kind: index for index, concern in enumerate(screen.concerns)}
        text = dash.text()
        assert "job failed" in text
        assert "no transcript" in text
        assert "call failed" in text

        # Enter on the failed video opens its callback in the inspector.
        table = screen.query_one("#attention-table", DataTable)
        table.move_cursor(row=listed[ConcernKind.FAILED_JOB])
        await dash.press("enter")
        await wait_for(dash.pilot, lambda: isinstance(app.screen, InspectorScreen), "inspector")
        inspector = app.screen
        assert isinstance(inspector, InspectorScreen)
        assert inspector.event_id == screen.concerns[listed[ConcernKind.FAILED_JOB]].event_id
        await dash.press("escape")

        # Enter on the overdue transcript opens that conversation in Transcripts.
        await dash.press("exclamation_mark")
        screen = app.screen
        assert isinstance(screen, AttentionScreen)
        table = screen.query_one("#attention-table", DataTable)
        table.move_cursor(row=listed[ConcernKind.OVERDUE])
        await dash.press("enter")
        pane = app.query_one(TranscriptPane)
        await wait_for(dash.pilot, lambda: pane.selected == "cnotrans0001", "the conversation open")

        # A new failure arriving live is counted within seconds.
        await dash.post(encode(sample("video.error", video_id="vbroken0002")))
        await until_counted(dash, 4)
