"""Finding words in the dashboard (issue 11, item 5): ``ctrl+f`` over every transcript and
payload stored, and ``/`` inside one transcript.

The real app (``app.run_test``), its real server and store; callbacks are posted over HTTP.
"""

from __future__ import annotations

import json
import time

from conftest import wait_indexed_async
from test_tui import (
    Dashboard,
    assert_inert,
    conversation_bodies,
    running,
    sample,
    screen_lines,
    settle,
    wait_for,
    widget_lines,
)
from textual.widgets import DataTable, Input

from tavus_monitor.settings import Settings
from tavus_monitor.tui.app import MonitorApp
from tavus_monitor.tui.screens.inspector import InspectorScreen
from tavus_monitor.tui.screens.search import SearchScreen
from tavus_monitor.tui.widgets.transcript_pane import TranscriptPane
from tavus_monitor.tui.widgets.transcript_view import CURRENT_MATCH_STYLE, MATCH_STYLE

HOSTILE = "Pastel \x1b[2J\x1b]52;c;SGVsbG8=\x07 [@click=app.quit]quit[/] \u202eevil"


def transcript(conversation_id: str, *turns: tuple[str, str]) -> bytes:
    data = sample("application.transcription_ready", conversation_id=conversation_id)
    data["properties"]["transcript"] = [{"role": r, "content": c} for r, c in turns]
    return json.dumps(data).encode()


async def post_searchable(dash: Dashboard, *bodies: bytes) -> None:
    """Post, then wait until search finds what was stored (the writer indexes just after)."""
    await dash.post(*bodies)
    assert dash.app.monitor.store is not None
    await wait_indexed_async(dash.app.monitor.store)


async def wait_for_hits(dash: Dashboard, screen: SearchScreen, words: str) -> None:
    """The screen looks the words up after a pause in typing: wait until it has."""
    deadline = time.monotonic() + 10
    while screen.hits_for != words or not screen.hits:
        assert time.monotonic() < deadline, f"no matches for {words!r}"
        await dash.pilot.pause(0.05)
    await settle(dash.pilot)


def shown_styles(dash: Dashboard, style: str) -> list[str]:
    """The text the transcript view draws in ``style`` (its visible lines)."""
    view = dash.transcript
    wanted = dash.app.console.get_style(style)
    found = []
    for y in range(view.scrollable_content_region.height):
        for segment in view.render_line(y):
            if segment.style is not None and segment.style.bgcolor == wanted.bgcolor:
                found.append(segment.text)
    return found


async def test_ctrl_f_finds_a_turn_and_enter_opens_its_conversation_there(
    settings: Settings,
) -> None:
    filler = [("user", f"line {n} about nothing much") for n in range(40)]
    async with running(settings) as dash:
        await post_searchable(
            dash,
            *conversation_bodies("csearch00001"),
            transcript("csearch00002", ("system", "be brief"), *filler, ("user", "Sintra trip")),
            *conversation_bodies("csearch00003"),
        )
        app: MonitorApp = dash.app
        await dash.press("ctrl+f")
        screen = app.screen
        assert isinstance(screen, SearchScreen)
        await dash.pilot.press(*"sint")  # the last word is a prefix while typing
        await wait_for_hits(dash, screen, "sint")
        assert [(h.event.conversation_id, h.turn) for h in screen.hits] == [("csearch00002", 42)]
        [row] = [screen.query_one("#search-results", DataTable).get_row_at(0)]
        assert "turn 42 · user" in row[2].plain
        assert "Sintra trip" in row[3].plain
        await dash.press("enter")
        assert app.screen is app.screen_stack[0]
        pane = app.query_one(TranscriptPane)
        assert pane.selected == "csearch00002"
        view = dash.transcript
        assert view.has_focus
        assert view.find_words == "sint"
        assert len(view.matches) == 1
        shown = "\n".join(widget_lines(view))
        assert "Sintra trip" in shown  # scrolled to the turn, 40 turns down
        assert shown_styles(dash, CURRENT_MATCH_STYLE) == ["Sintra"]  # the word, whole
        assert pane.query_one("#transcript-find", Input).border_subtitle == "1 of 1"
        # The search screen opens again with the same words.
        await dash.press("ctrl+f")
        again = app.screen
        assert isinstance(again, SearchScreen)
        assert again.query_one("#search-words", Input).value == "sint"
        await dash.press("escape")
        assert app.screen is app.screen_stack[0]


async def test_a_match_outside_a_transcript_opens_the_inspector(settings: Settings) -> None:
    async with running(settings) as dash:
        await post_searchable(dash, *conversation_bodies("csearch00010"))
        await dash.press("ctrl+f")
        screen = dash.app.screen
        assert isinstance(screen, SearchScreen)
        await dash.pilot.press(*"participant", "space", *"left")
        await wait_for_hits(dash, screen, "participant left")
        first = screen.hits[0]
        assert first.turn == 0
        await dash.press("down")
        table = screen.query_one("#search-results", DataTable)
        assert table.has_focus
        await dash.press("enter")
        inspector = dash.app.screen
        assert isinstance(inspector, InspectorScreen)
        assert inspector.event_id == first.event.id


async def test_search_snippets_of_hostile_payloads_stay_inert(settings: Settings) -> None:
    async with running(settings) as dash:
        await post_searchable(dash, transcript("csearch00020", ("user", HOSTILE)))
        await dash.press("ctrl+f")
        screen = dash.app.screen
        assert isinstance(screen, SearchScreen)
        await dash.pilot.press(*"pastel")
        await wait_for_hits(dash, screen, "pastel")
        lines = screen_lines(dash.app)
        for line in lines:
            assert_inert(line)
        text = "\n".join(lines)
        assert "␛[2J␛]52;c;SGVsbG8=␇ [@click=app.quit]quit[/]" in text
        assert "<U+202E>evil" in text
        assert dash.app.is_running  # the [@click] text was not markup


async def test_slash_in_a_transcript_finds_highlights_and_moves(settings: Settings) -> None:
    turns = [("user", "Is the tram busy?"), ("assistant", "The TRAM is busy; take tram 28.")]
    async with running(settings) as dash:
        await post_searchable(dash, transcript("cfind0000001", *turns))
        app = dash.app
        pane = app.query_one(TranscriptPane)
        # The pane refreshes what changed once a second: let that happen first, so it
        # cannot reopen the conversation under the keys pressed below.
        await wait_for(dash.pilot, lambda: not pane._touched, "the pane's refresh")
        await pane.select("cfind0000001")
        view = dash.transcript
        view.focus()
        await settle(dash.pilot)
        assert view.has_focus
        await dash.press("slash")
        field = pane.query_one("#transcript-find", Input)
        assert field.display
        assert field.has_focus
        await dash.press(*"tram")
        assert len(view.matches) == 3
        assert field.border_subtitle == "1 of 3"
        assert shown_styles(dash, CURRENT_MATCH_STYLE) == ["tram"]
        assert shown_styles(dash, MATCH_STYLE) == ["TRAM", "tram"]
        await dash.press("enter")  # back to the transcript, the matches kept
        assert view.has_focus
        await dash.press("n")
        assert view.current_match == 1
        assert field.border_subtitle == "2 of 3"
        assert shown_styles(dash, CURRENT_MATCH_STYLE) == ["TRAM"]
        await dash.press("n", "n")
        assert field.border_subtitle == "1 of 3"  # around again
        await dash.press("N")
        assert field.border_subtitle == "3 of 3"
        assert shown_styles(dash, CURRENT_MATCH_STYLE) == ["tram"]
        await dash.press("escape")
        assert view.matches == []
        assert not field.display
        assert shown_styles(dash, MATCH_STYLE) == []
        # Esc in the field closes the find too; a miss says so.
        await dash.press("slash", *"castle")
        assert field.border_subtitle == "no match"
        await dash.press("escape")
        assert not field.display
        assert view.has_focus
        assert view.find_words == ""
