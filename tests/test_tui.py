"""The dashboard driven like a user drives it: real server, real store, real HTTP.

Every test starts :class:`MonitorApp` with the ``settings`` fixture (a free
loopback port, a fresh SQLite file), posts callbacks with httpx and asserts
what the panes, screens and clipboard then hold. Waiting is always for a
condition: the server listening (``app.ready``), an event on the panes
(``app.wait_until_shown``), or the panes' store queries (their workers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from conftest import TEST_TOKEN, wait_ready
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import DataTable, Input, TextArea
from textual.worker import WorkerCancelled

from tavus_monitor import samples
from tavus_monitor.events import Family
from tavus_monitor.settings import Settings
from tavus_monitor.store import Delivery, Store
from tavus_monitor.tui.app import MonitorApp
from tavus_monitor.tui.formatters import event_line, system_line
from tavus_monitor.tui.screens.inspector import InspectorScreen
from tavus_monitor.tui.screens.simple import ConversationsScreen, HelpScreen, RejectedScreen
from tavus_monitor.tui.widgets.conversation_picker import ConversationPicker
from tavus_monitor.tui.widgets.jobs_pane import JobsTable
from tavus_monitor.tui.widgets.json_tree import JsonTree
from tavus_monitor.tui.widgets.row_list import PAGE_SIZE, RowList
from tavus_monitor.tui.widgets.transcript_pane import TranscriptPane
from tavus_monitor.tui.widgets.transcript_view import TranscriptView
from tavus_monitor.tui.widgets.url_bar import UrlBar

SIZE = (120, 35)
CONVERSATION = [name for name, _ in samples.CONVERSATION_SEQUENCE]
FORBIDDEN = ("\x1b", "\x07", "\x9b", "\u202e", "\u202d", "\u2066")
"""Characters that must never reach the terminal from a payload."""

# ------------------------------------------------------------------ bodies


def conversation_bodies(conversation_id: str) -> list[bytes]:
    """One whole call, in the order Tavus delivers it."""
    return [s.body for s in samples.render_many(CONVERSATION, conversation_id=conversation_id)]


def sample(name: str, **changes: Any) -> dict[str, Any]:
    data = samples.load(name)
    data.update(changes)
    return data


def conversation_event(name: str, conversation_id: str, **properties: Any) -> bytes:
    data = sample(name, conversation_id=conversation_id)
    data["properties"] = {**data.get("properties", {}), **properties}
    return encode(data)


def encode(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


# ---------------------------------------------------------------- harness


def screen_lines(app: MonitorApp) -> list[str]:
    """Exactly the characters the active screen sends to the terminal, line by line."""
    strips = app.screen._compositor.render_strips()
    return ["".join(segment.text for segment in strip) for strip in strips]


def widget_lines(widget: Widget) -> list[str]:
    """The text of a line-API widget's visible lines (no border)."""
    height = widget.scrollable_content_region.height
    return ["".join(segment.text for segment in widget.render_line(y)) for y in range(height)]


def assert_inert(text: str) -> None:
    for char in FORBIDDEN:
        assert char not in text, f"{char!r} reached the terminal"


async def settle(pilot: Pilot[int]) -> None:
    """Wait until the panes' store queries (their workers) finish and the screen is idle."""
    app = pilot.app
    for _ in range(5):
        await pilot.pause()
        pending = [w for w in app.workers if w.group != "server" and not w.is_finished]
        if not pending:
            return
        for worker in pending:
            with contextlib.suppress(WorkerCancelled):
                await worker.wait()
    raise AssertionError(f"the panes kept loading: {pending}")


async def wait_for(pilot: Pilot[int], condition: Callable[[], bool], what: str) -> None:
    """For what a timer drives (the conversation list refreshes once a second)."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)
    await settle(pilot)


@dataclass
class Dashboard:
    app: MonitorApp
    pilot: Pilot[int]
    http: httpx.AsyncClient

    async def post(self, *bodies: bytes, headers: dict[bytes, bytes] | None = None) -> None:
        """Post callbacks to the webhook and wait until the panes show them."""
        for body in bodies:
            answer = await self.http.post(self.app.monitor.local_url, content=body, headers=headers)
            assert answer.status_code == 200, answer.text
        await self.app.wait_until_shown(self.app.monitor.stats.events_total)
        await settle(self.pilot)

    async def press(self, *keys: str) -> None:
        await self.pilot.press(*keys)
        await settle(self.pilot)

    def pane(self, name: str) -> RowList:
        return self.app.query_one(f"#{name}", RowList)

    @property
    def jobs(self) -> JobsTable:
        return self.app.query_one(JobsTable)

    @property
    def transcript(self) -> TranscriptView:
        return self.app.query_one(TranscriptView)

    def text(self) -> str:
        return "\n".join(screen_lines(self.app))


@contextlib.asynccontextmanager
async def running(settings: Settings, *, toasts: bool = False) -> AsyncIterator[Dashboard]:
    app = MonitorApp(settings)
    app.animation_level = "none"  # the tabs' underline would slide for 0.3 s per key press
    async with (
        app.run_test(size=SIZE, notifications=toasts) as pilot,
        httpx.AsyncClient(timeout=10) as http,
    ):
        await wait_ready(app)
        await settle(pilot)
        try:
            yield Dashboard(app, pilot, http)
        finally:
            await app.monitor.stop()


@pytest.fixture
async def dash(settings: Settings) -> AsyncIterator[Dashboard]:
    async with running(settings) as dashboard:
        yield dashboard


def store_history(settings: Settings, bodies: Iterable[bytes], start: float) -> int:
    """Store ``bodies`` as earlier runs would have, one second apart; return how many."""
    assert settings.db_path is not None
    with Store(settings.db_path) as store:
        futures = [
            store.submit(
                Delivery(
                    body=body,
                    headers=(("content-type", "application/json"),),
                    received_at=start + index,
                    remote_addr="127.0.0.1",
                    path=f"/webhook/{TEST_TOKEN}",
                )
            )
            for index, body in enumerate(bodies)
        ]
        return len([future.result() for future in futures])


# --------------------------------------------------------------- URL bar


async def test_url_bar_shows_the_callback_url_and_c_copies_it(dash: Dashboard) -> None:
    app = dash.app
    url = app.monitor.callback_url
    assert url.endswith(f"/webhook/{TEST_TOKEN}")
    assert app.query_one(UrlBar).state.callback_url == url
    assert url in dash.text()
    assert f"listening on 127.0.0.1:{app.monitor.port}" in dash.text()
    assert app.clipboard != url
    await dash.press("c")
    assert app.clipboard == url


# ------------------------------------------------------------------ panes


async def test_system_pane_shows_joins_and_shutdowns_with_the_reason_in_words(
    dash: Dashboard,
) -> None:
    await dash.post(*conversation_bodies("csystem00001"))
    await dash.post(
        conversation_event("system.replica_joined", "csystem00002"),
        conversation_event(
            "system.shutdown", "csystem00002", shutdown_reason="max_call_duration reached"
        ),
    )
    system = dash.pane("system")
    assert [row.event_type for row in system.rows] == [
        "system.shutdown",
        "system.replica_joined",
        "system.shutdown",
        "system.pal_joined",
        "system.replica_joined",
    ]
    width = system.scrollable_content_region.width
    lines = [system_line(row, width).plain for row in system.rows]
    assert lines[0].startswith("ended  max duration ")
    assert lines[2].startswith("ended  left · timeout ")
    assert [line.startswith("ended ") for line in lines] == [True, False, True, False, False]
    assert [line.startswith("joined ") for line in lines] == [False, True, False, True, True]
    # At 120 columns the short words lead; maximised, the pane adds the reason in full.
    system.focus()
    await dash.press("m")
    shown = "\n".join(widget_lines(system))
    assert "maximum call duration reached (max_call_duration reached)" in shown
    assert "participant left (timeout)" in shown
    assert shown.count("joined ") == 3
    for other in ("objective", "transcript", "recording", "perception", "post-call"):
        assert other not in shown


async def test_events_pane_lists_everything_newest_first_marking_duplicates_and_malformed(
    dash: Dashboard,
) -> None:
    bodies = conversation_bodies("cevents00001")
    await dash.post(*bodies)
    shutdown_id = CONVERSATION.index("system.shutdown") + 1
    await dash.post(bodies[CONVERSATION.index("system.shutdown")], b'{"event_type": "system.')
    events = dash.pane("events")
    assert [row.id for row in events.rows] == list(range(len(bodies) + 2, 0, -1))
    malformed, duplicate = events.rows[0], events.rows[1]
    assert malformed.family is Family.MALFORMED
    assert duplicate.duplicate_of == shutdown_id
    width = events.scrollable_content_region.width
    assert event_line(malformed, width).plain.split()[1] == "✗"
    duplicate_line = event_line(duplicate, width).plain
    assert "↻" in duplicate_line
    assert f"duplicate of #{shutdown_id}: shutdown: participant left (timeout)" in duplicate_line
    # What the pane draws, top to bottom: those lines, newest first, cut to fit.
    drawn = widget_lines(events)
    for row, shown in zip(events.rows, drawn, strict=False):
        line = event_line(row, width).plain
        if len(line) <= width:
            assert shown.rstrip() == line.rstrip()
        else:
            assert shown == line[: width - 1] + "…"
    assert "✗ bad" in drawn[0]
    assert "malformed:" in drawn[0]
    assert "↻ conv" in drawn[1]
    assert not "".join(drawn[len(events.rows) : events.list_height]).strip()
    # Under the rows, the detail strip: the selected (newest) row whole.
    assert "malformed: not JSON" in " ".join(drawn[events.list_height :])
    # The system pane marks the repeated shutdown too.
    system = dash.pane("system")
    assert system.rows[0].duplicate_of == shutdown_id
    assert "↻" in system_line(system.rows[0], width).plain.split()


async def test_jobs_pane_keeps_one_row_per_job_with_its_latest_status(dash: Dashboard) -> None:
    failed = sample("video.error")
    video_id = failed["video_id"]
    await dash.post(encode(failed), encode(sample("replica.ready")))
    jobs = dash.jobs
    assert jobs.row_count == 2
    assert jobs.get_row(f"video:{video_id}")[0].plain == "error"  # the status comes first
    await dash.post(encode(sample("video.ready", video_id=video_id)))
    assert jobs.row_count == 2
    row = jobs.get_row(f"video:{video_id}")
    assert row[0].plain == "ready"
    assert "hosted" in row[7].plain
    assert jobs.get_row_at(0)[0].plain == "ready"  # the job updated last is on top
    assert "r5a1d2c3e4f" in jobs.get_row_at(1)[5].plain


async def test_transcripts_pane_reads_the_conversation(dash: Dashboard) -> None:
    await dash.post(*conversation_bodies("ctranscript1"))
    view = dash.transcript
    await wait_for(
        dash.pilot,
        lambda: view.view is not None and view.view.transcript is not None,
        "the transcript to show",
    )
    assert view.view is not None
    assert view.view.conversation_id == "ctranscript1"
    text = view.summary_text().plain
    flat = " ".join(text.split())
    assert "ctranscript1" in text
    assert "ended: participant left (timeout)" in flat
    assert "3 user · 3 assistant" in flat
    assert "Hi there." in text
    assert "Enjoy the trip, bye!" in text
    assert "collapsed" in text
    assert "call the get_weather tool" not in flat
    assert len(text.split("\n")) > view.scrollable_content_region.height  # it scrolls
    assert_drawn_whole(view)
    view.focus()
    await dash.press("end")
    assert view.scroll_offset.y > 0
    assert_drawn_whole(view)
    await dash.press("home", "e")
    flat = " ".join(view.summary_text().plain.split())
    assert "call the get_weather tool" in flat
    assert "collapsed" not in flat
    await dash.press("pagedown")
    assert_drawn_whole(view)
    await dash.press("e")
    assert "collapsed" in view.summary_text().plain


async def test_the_conversation_list_opens_what_the_cursor_is_on(dash: Dashboard) -> None:
    await dash.post(*conversation_bodies("cpickolder01"), *conversation_bodies("cpicknewer02"))
    picker = dash.app.query_one(ConversationPicker)
    await wait_for(dash.pilot, lambda: len(picker.rows) == 2, "both conversations listed")
    assert [row.conversation_id for row in picker.rows] == ["cpicknewer02", "cpickolder01"]
    assert picker.highlighted_id == "cpicknewer02"  # the newest opens by itself
    lines = widget_lines(picker)
    assert lines[0].startswith("cpicknewer02")
    assert "· 8 ev" in lines[1]
    assert lines[2].startswith("cpickolder01")
    assert "· 8 ev" in lines[3]
    picker.focus()
    await dash.press("down")
    await wait_for(
        dash.pilot,
        lambda: (
            dash.transcript.view is not None
            and dash.transcript.view.conversation_id == "cpickolder01"
        ),
        "the older conversation to open",
    )
    assert picker.highlighted_id == "cpickolder01"
    await dash.press("home")
    await wait_for(
        dash.pilot,
        lambda: (
            dash.transcript.view is not None
            and dash.transcript.view.conversation_id == "cpicknewer02"
        ),
        "the newer conversation to open again",
    )


def assert_drawn_whole(view: TranscriptView) -> None:
    """Each visible line is drawn entire: nothing cut off by the pane or its scrollbar."""
    laid_out = view.summary_text().plain.split("\n")
    top = view.scroll_offset.y
    for y, drawn in enumerate(widget_lines(view)):
        expected = laid_out[top + y] if top + y < len(laid_out) else ""
        assert drawn.strip() == expected.strip()


# -------------------------------------------------------------- inspector


async def test_inspector_tabs_copy_tree_value_search_and_close(dash: Dashboard) -> None:
    bodies = conversation_bodies("cinspect0001")
    shutdown = bodies[CONVERSATION.index("system.shutdown")]
    await dash.post(shutdown)
    app = dash.app
    await dash.press("enter")
    inspector = app.screen
    assert isinstance(inspector, InspectorScreen)
    assert "participant left (timeout)" in dash.text()
    for key, tab in (
        ("2", "json"),
        ("3", "tree"),
        ("4", "headers"),
        ("5", "raw"),
        ("1", "summary"),
    ):
        await dash.press(key)
        assert inspector.active_tab == tab
    await dash.press("4")
    assert f"user-agent: python-httpx/{httpx.__version__}" in dash.text()
    await dash.press("y")
    assert app.clipboard == shutdown.decode()

    await dash.press("3")
    tree = inspector.query_one(JsonTree)
    assert app.focused is tree
    # The root, then its keys in payload order: properties, conversation_id, ...
    await dash.press("down", "down")
    assert tree.highlighted_value == "cinspect0001"
    await dash.press("v")
    assert app.clipboard == "cinspect0001"

    await dash.press("slash")
    assert inspector.active_tab == "json"
    await dash.press(*"participant_left", "enter")
    area = inspector.query_one("#json-text", TextArea)
    assert area.selected_text == "participant_left"
    assert inspector.query_one("#search", Input).border_subtitle == "1 of 1"
    await dash.press("escape")
    assert not inspector.query_one("#search", Input).display
    assert app.screen is inspector
    await dash.press("escape")
    assert not isinstance(app.screen, InspectorScreen)


async def test_inspector_opens_from_the_system_pane(dash: Dashboard) -> None:
    await dash.post(*conversation_bodies("csysinspect1"))
    system = dash.pane("system")
    system.focus()
    await dash.press("down")
    assert system.highlighted is not None
    chosen = system.highlighted
    await dash.press("enter")
    inspector = dash.app.screen
    assert isinstance(inspector, InspectorScreen)
    assert inspector.event_id == chosen.id
    assert inspector.event is not None
    assert inspector.event.event_type == "system.pal_joined"
    await dash.press("escape")
    assert dash.app.focused is system


# ------------------------------------------------- filter, maximise, follow


async def test_filter_narrows_the_events_pane_and_escape_clears_it(dash: Dashboard) -> None:
    await dash.post(*conversation_bodies("cfilter00001"), *conversation_bodies("cfilter00002"))
    events = dash.pane("events")
    assert len(events.rows) == 2 * len(CONVERSATION)
    await dash.press("slash")
    field = dash.app.query_one("#filter", Input)
    assert field.display
    assert dash.app.focused is field
    await dash.press(*"type:system.shutdown")
    assert [row.event_type for row in events.rows] == ["system.shutdown"] * 2
    assert events.border_subtitle == "filter: type:system.shutdown · 2 matches"
    assert "filter: type:system.shutdown" in dash.text()
    await dash.press("escape")
    assert not field.display
    assert len(events.rows) == 2 * len(CONVERSATION)
    assert events.border_subtitle == ""
    assert dash.app.focused is events


async def test_m_maximises_the_focused_pane_and_restores_it(dash: Dashboard) -> None:
    app = dash.app
    for name in ("events", "system"):
        pane = app.query_one(f"#{name}")
        pane.focus()
        width = pane.size.width
        await dash.press("m")
        assert app.screen.maximized is pane
        assert pane.size.width > width
        await dash.press("m")
        assert app.screen.maximized is None
        assert pane.size.width == width
    jobs = dash.jobs
    jobs.focus()
    await dash.press("m")
    assert app.screen.maximized is jobs.parent  # the table with its detail strip
    await dash.press("escape")
    assert app.screen.maximized is None


async def test_moving_the_cursor_pauses_following_and_f_resumes(dash: Dashboard) -> None:
    await dash.post(*conversation_bodies("cfollow00001"), *conversation_bodies("cfollow00003"))
    events = dash.pane("events")
    assert len(events.rows) > events.scrollable_content_region.height
    await dash.press("down", "down")
    reading = events.highlighted
    assert reading is not None
    assert events.cursor == 2
    assert events.border_subtitle == "paused · f follows"
    before = widget_lines(events)
    await dash.post(*conversation_bodies("cfollow00002")[:3])
    assert events.rows[0].conversation_id == "cfollow00002"
    assert events.highlighted == reading
    # The row being read stays where it was on the screen, with what was around it.
    assert widget_lines(events)[:3] == before[:3]
    assert events.border_subtitle == "paused · 3 new · f follows"
    assert "paused · 3 new · f follows" in dash.text()
    await dash.press("f")
    assert events.cursor == 0
    assert events.border_subtitle == ""
    assert events.scroll_offset.y == 0
    width = events.scrollable_content_region.width
    assert widget_lines(events)[0].startswith(event_line(events.rows[0], width).plain[:40])
    await dash.post(*conversation_bodies("cfollow00002")[3:4])
    assert events.cursor == 0
    assert events.highlighted is not None
    assert events.highlighted.event_type == "system.shutdown"


# ---------------------------------------------------------------- screens


async def test_conversations_screen_shows_lifecycles_and_enter_reads_one(
    dash: Dashboard,
) -> None:
    await dash.post(*conversation_bodies("clifecycle01"))
    await dash.post(*conversation_bodies("clifecycle02")[:2])
    await dash.press("v")
    screen = dash.app.screen
    assert isinstance(screen, ConversationsScreen)
    table = screen.query_one(DataTable)
    assert table.row_count == 2
    newest, finished = table.get_row_at(0), table.get_row_at(1)
    assert newest[0].plain == "clifecycle02"
    assert newest[3].plain == "in progress"
    assert newest[4].plain.startswith("J✓ S…")
    assert finished[3].plain == "left · timeout"
    assert finished[4].plain.startswith("J✓ S✓ T✓ R✓ P✓")
    assert "lifecycle" in dash.text()
    await dash.press("down", "enter")
    assert not isinstance(dash.app.screen, ConversationsScreen)
    pane = dash.app.query_one(TranscriptPane)
    assert pane.selected == "clifecycle01"
    assert dash.transcript.view is not None
    assert dash.transcript.view.conversation_id == "clifecycle01"
    assert dash.app.focused is dash.transcript


async def test_r_lists_rejected_requests(dash: Dashboard) -> None:
    wrong = dash.app.monitor.local_url.replace(TEST_TOKEN, "not-the-token-at-all")
    answer = await dash.http.post(wrong, content=b"{}")
    assert answer.status_code == 404
    await dash.press("r")
    screen = dash.app.screen
    assert isinstance(screen, RejectedScreen)
    table = screen.query_one(DataTable)
    assert table.row_count == 1
    row = table.get_row_at(0)
    assert row[1].plain == "404"
    assert row[6].plain == "wrong token"
    assert "not-the-token-at-all" not in row[3].plain  # tokens are redacted
    assert "wrong token" in dash.text()
    await dash.press("escape")
    assert not isinstance(dash.app.screen, RejectedScreen)


async def test_question_mark_opens_help(dash: Dashboard) -> None:
    await dash.press("question_mark")
    assert isinstance(dash.app.screen, HelpScreen)
    assert "copy the callback URL" in dash.text()
    await dash.press("escape")
    assert not isinstance(dash.app.screen, HelpScreen)


async def test_command_palette_offers_the_actions(dash: Dashboard) -> None:
    app = dash.app
    titles = {command.title for command in app.get_system_commands(app.screen)}
    assert {"Copy callback URL", "Conversations", "Rejected requests"} <= titles
    await dash.press("ctrl+p")
    await dash.press(*"Copy callback")
    await wait_for(dash.pilot, lambda: "Copy callback URL" in dash.text(), "the palette match")
    await dash.press("enter")
    assert app.clipboard == app.monitor.callback_url


# ------------------------------------------------------- history, paging


async def test_history_is_shown_on_start_newest_first(settings: Settings) -> None:
    bodies = [
        *conversation_bodies("chistory0001"),
        encode(sample("video.error")),
        *conversation_bodies("chistory0002")[:4],
    ]
    stored = store_history(settings, bodies, start=1_752_216_000.0)
    async with running(settings) as dash:
        events = dash.pane("events")
        assert [row.id for row in events.rows] == list(range(stored, 0, -1))
        assert events.rows[0].conversation_id == "chistory0002"
        assert [row.conversation_id for row in dash.pane("system").rows] == [
            "chistory0002",
            "chistory0002",
            "chistory0002",
            "chistory0001",
            "chistory0001",
            "chistory0001",
        ]
        assert dash.jobs.row_count == 1
        assert dash.app.query_one(UrlBar).state.events == stored
        assert f"{stored} events" in dash.text()
        assert dash.transcript.view is not None
        assert dash.transcript.view.conversation_id == "chistory0002"


async def test_the_events_list_pages_in_older_history_at_the_end(settings: Settings) -> None:
    total = 3 * PAGE_SIZE
    bodies = [encode(sample("replica.ready", replica_id=f"r{index:09d}")) for index in range(total)]
    store_history(settings, bodies, start=1_752_216_000.0)
    async with running(settings) as dash:
        events = dash.pane("events")
        assert len(events.rows) == PAGE_SIZE
        await dash.press("end")
        assert len(events.rows) > PAGE_SIZE
        for _ in range(5):
            await dash.press("end")
        assert [row.id for row in events.rows] == list(range(total, 0, -1))
        assert events.exhausted
        assert events.highlighted is not None
        assert events.highlighted.id == 1
        assert "r000000000" in "\n".join(widget_lines(events))
        await dash.press("home")
        assert events.cursor == 0
        assert "r000000599" in "\n".join(widget_lines(events))


# ----------------------------------------------------------- quit, ports


async def test_q_stops_the_server_and_exits_with_zero(settings: Settings) -> None:
    app = MonitorApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(app)
        base_url = app.monitor.base_url
        async with httpx.AsyncClient() as http:
            assert (await http.get(base_url + "/healthz")).status_code == 200
        await pilot.press("q")
        await pilot.pause()
    assert app.return_value == 0
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as http:
            await http.get(base_url + "/healthz")


async def test_a_busy_explicit_port_is_explained_and_the_app_keeps_running(
    settings: Settings,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = replace(settings, port=port, port_explicit=True)
        store_history(busy, [json.dumps({"replica_id": "r1", "status": "ready"}).encode()], 1.0)
        async with running(busy) as dash:
            bar = dash.app.query_one(UrlBar)
            assert not bar.state.server_ok
            sentence = f"Port {port} is already in use by another program"
            assert sentence in bar.state.server
            assert sentence in dash.text()
            assert "not available yet" in dash.text()
            assert dash.app.is_running
            # History stays browsable: what the other monitor stored is on the panes.
            assert [row.id for row in dash.app.query_one("#events", RowList).rows] == [1]
            await dash.press("question_mark")
            assert isinstance(dash.app.screen, HelpScreen)
            await dash.press("escape", "c")
            assert dash.app.is_running
            assert dash.app.clipboard == ""


# -------------------------------------------------------- hostile payloads

HOSTILE = (
    "\x1b]52;c;ZXZpbA==\x07 [@click=app.quit]quit[/] \u202eevil\x1b[2J [/bold] [link=x \x9b31m"
)
"""OSC 52 (set the clipboard), Textual action markup, a bidi override, clear-screen, bad markup."""


def assert_screen_inert(app: MonitorApp) -> None:
    for line in screen_lines(app):
        assert_inert(line)


async def test_hostile_payloads_render_as_inert_text(settings: Settings) -> None:
    transcript = sample("application.transcription_ready", conversation_id="chostile0001")
    transcript["properties"]["transcript"][1]["content"] = f"user says {HOSTILE}"
    bodies = [
        encode(sample("system.shutdown", conversation_id=f"c{HOSTILE}")),
        encode(sample("system.shutdown", event_type=f"custom.{HOSTILE}", **{HOSTILE: HOSTILE})),
        encode(sample("video.error", video_name=HOSTILE, status_details=HOSTILE)),
        b"\x1b[2J\x1b]52;c;ZXZpbA==\x07 {oops [@click=app.quit] \xe2\x80\xae [/bold] \xc2\x9b \xff",
        conversation_event("system.replica_joined", "chostile0001"),
        conversation_event("system.shutdown", "chostile0001", shutdown_reason=HOSTILE),
        encode(transcript),
    ]
    async with running(settings, toasts=True) as dash:
        app = dash.app
        # Header bytes are shown as UTF-8 when they are: a C1 CSI and a bidi override.
        await dash.post(
            *bodies, headers={b"x-hostile": b"\xc2\x9b2J [@click=app.quit] \xe2\x80\xae"}
        )
        refused = await dash.http.post(
            f"{app.monitor.base_url}/%1B%5B2J%E2%80%AE%9B[@click=app.quit]", content=b"{}"
        )
        assert refused.status_code == 404
        assert app.is_running
        events, system = dash.pane("events"), dash.pane("system")
        assert len(events.rows) == len(bodies)
        assert len(system.rows) == 3
        lines = [event_line(row, 200).plain for row in events.rows]
        lines += [system_line(row, 200).plain for row in system.rows]
        for text in lines:
            assert_inert(text)
        everything = "\n".join(lines)
        assert "[@click=app.quit]quit[/]" in everything
        assert "␛]52;c;ZXZpbA==␇" in everything
        assert "<U+202E>evil␛[2J [/bold] [link=x <U+009B>31m" in everything
        # What the panes and the whole screen draw, the toasts about them included.
        for line in widget_lines(events) + widget_lines(system):
            assert_inert(line)
        assert "[@click=app.quit]" in "\n".join(widget_lines(events))
        assert "c␛]52;c;ZXZpbA==" in dash.text()  # the toast for the first shutdown
        assert_screen_inert(app)

        view = dash.transcript
        await wait_for(
            dash.pilot,
            lambda: view.view is not None and view.view.transcript is not None,
            "the hostile transcript",
        )
        transcript_text = view.summary_text().plain
        flat = " ".join(transcript_text.split())
        assert "user says ␛]52;c;ZXZpbA==␇ [@click=app.quit]quit[/] <U+202E>evil" in flat
        assert_inert(transcript_text)
        for line in widget_lines(view):
            assert_inert(line)
        assert_screen_inert(app)

        # Each opens in the inspector; no tab lets anything active through.
        events.focus()
        for index in range(len(bodies) - 1):  # the join is not hostile
            events.cursor = index
            await dash.press("enter")
            assert isinstance(app.screen, InspectorScreen)
            assert_screen_inert(app)  # the summary tab
            for key in ("2", "3", "4", "5"):
                await dash.press(key)
                assert_screen_inert(app)
                if key == "4":
                    assert "x-hostile: <U+009B>2J [@click=app.quit] <U+202E>" in dash.text()
            await dash.press("escape")
            assert not isinstance(app.screen, InspectorScreen)
        for key, shown in (("v", "c␛]52;c;ZXZpbA"), ("r", "/␛[2J<U+202E>"), ("l", "Log")):
            await dash.press(key)
            assert shown in dash.text()
            assert_screen_inert(app)
            await dash.press("escape")
        assert app.is_running


async def test_a_hostile_filter_is_shown_as_typed(dash: Dashboard) -> None:
    await dash.post(encode(sample("video.error", video_name="[@click=app.quit]x[/]")))
    await dash.press("slash", *"[@click=app.quit]x[/]")
    events = dash.pane("events")
    assert len(events.rows) == 1
    assert "filter: [@click=app.quit]x[/]" in dash.text()
    await dash.press("escape")
    assert dash.app.is_running


async def test_a_deleted_store_file_is_said_loudly_and_the_panes_show_the_new_one(
    dash: Dashboard,
) -> None:
    """``rm events.db*`` under the dashboard: the header says so, the panes start again."""
    await dash.post(*conversation_bodies("cbeforerm001")[:2])
    store = dash.app.monitor.store
    assert store is not None
    assert store.path is not None
    for path in store.path.parent.glob(store.path.name + "*"):
        path.unlink()
    assert not await asyncio.to_thread(store.check_file)  # what the monitor does every 2 s
    await wait_for(dash.pilot, lambda: "deleted or replaced" in dash.text(), "the store error")
    after = conversation_bodies("cafterrm0001")[0]
    answer = await dash.http.post(dash.app.monitor.local_url, content=after)
    assert answer.status_code == 200
    await wait_for(
        dash.pilot,
        lambda: [row.conversation_id for row in dash.pane("events").rows] == ["cafterrm0001"],
        "the events pane to show only the new file's event",
    )
    drawn = "\n".join(widget_lines(dash.pane("system")))
    assert "cafterrm0001" in drawn  # drawn afresh, though its id is one an old row had
    assert "cbeforerm001" not in drawn
