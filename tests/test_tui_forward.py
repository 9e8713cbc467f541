"""The dashboard and the developer's handler: the answer on each Events row, the inspector's
Handler tab, and replay / edit-and-send (``R`` / ``E``).

A real dashboard (real server, real store) forwards to a real handler on loopback
(``tests/handler.py``), which answers as each test says; the tests post callbacks as Tavus
does and look at what the user sees: the row's end, the tab, the handler's requests.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from conftest import wait_ready
from handler import Answer, Handler, Received, running_handler
from test_forward import QUICK
from test_tui import (
    Dashboard,
    assert_inert,
    conversation_event,
    settle,
    wait_for,
    widget_lines,
)
from textual.widgets import Static, TextArea

from tavus_monitor.sending import EVENT_ID_HEADER, REPLAY_HEADER
from tavus_monitor.settings import Settings
from tavus_monitor.tui.app import MonitorApp
from tavus_monitor.tui.screens.inspector import InspectorScreen
from tavus_monitor.tui.screens.resend import EditBodyScreen, TargetScreen

SHUTDOWN = "system.shutdown"
HOSTILE = b"oops \x1b]52;c;aGk=\x07 \x1b[2J \xe2\x80\xae reversed \xc2\x9b end"
"""A handler's answer that tries to set the clipboard, clear the screen and reverse text."""


@contextlib.asynccontextmanager
async def dashboard(
    settings: Settings,
    handler: Handler | None,
    *,
    size: tuple[int, int] = (120, 35),
    **changes: object,
) -> AsyncIterator[Dashboard]:
    """The dashboard forwarding to ``handler`` (None: not forwarding), retries shortened."""
    if handler is not None:
        changes.setdefault("forward_to", handler.url)
    app = MonitorApp(dataclasses.replace(settings, **changes))  # type: ignore[arg-type]
    app.monitor.forward_backoff = QUICK
    app.animation_level = "none"
    async with (
        app.run_test(size=size, notifications=True) as pilot,
        httpx.AsyncClient(timeout=10) as http,
    ):
        await wait_ready(app)
        await settle(pilot)
        try:
            yield Dashboard(app, pilot, http)
        finally:
            await app.monitor.stop()


def shutdown(conversation_id: str = "cfwd00000001") -> bytes:
    return conversation_event(SHUTDOWN, conversation_id, shutdown_reason="end_call_api")


def row_end(dash: Dashboard, index: int = 0) -> tuple[str, str]:
    """The Events row as drawn, and the colour of its handler cell (the text after ``→``)."""
    events = dash.pane("events")
    strip = events.render_line(index)
    text = "".join(segment.text for segment in strip)
    colour = ""
    for segment in strip:
        if "→" in segment.text and segment.style is not None and segment.style.color:
            colour = segment.style.color.name
    return text, colour


async def until_row_says(dash: Dashboard, pattern: str, index: int = 0) -> tuple[str, str]:
    """Wait until the Events row at ``index`` matches ``pattern`` (a regex); row and colour."""
    await wait_for(
        dash.pilot, lambda: re.search(pattern, row_end(dash, index)[0]) is not None, pattern
    )
    return row_end(dash, index)


def toasts(dash: Dashboard) -> list[str]:
    return [str(notification.message) for notification in dash.app._notifications]


async def open_handler_tab(dash: Dashboard) -> InspectorScreen:
    dash.pane("events").focus()
    await dash.press("enter")
    screen = dash.app.screen
    assert isinstance(screen, InspectorScreen)
    await dash.press("6")
    assert screen.active_tab == "handler"
    return screen


def attempt_text(screen: InspectorScreen) -> str:
    body = screen.query_one("#attempt-body", Static)
    return str(body.render())


# ------------------------------------------------------------------- the row


async def test_the_events_row_ends_with_the_handlers_answer(settings: Settings) -> None:
    async with running_handler() as handler, dashboard(settings, handler) as dash:
        await dash.post(shutdown())
        await handler.until(1)
        text, colour = await until_row_says(dash, r"→ 200 \d+ms\s*$")
        assert "shutdown" in text
        assert colour == "green"
        # Read back from the store when the pane reloads (a filter): the same cell.
        dash.pane("events").set_filter(None)
        await settle(dash.pilot)
        text, colour = row_end(dash)
        assert re.search(r"→ 200 \d+ms\s*$", text)
        assert colour == "green"
        # The detail strip says it in words.
        strip = " ".join(widget_lines(dash.pane("events"))[dash.pane("events").list_height :])
        assert "forward: → 200" in strip


async def test_a_handler_answering_500_is_red(settings: Settings) -> None:
    async with (
        running_handler() as handler,
        dashboard(settings, handler, forward_retries=0) as dash,
    ):
        handler.status = 500
        await dash.post(shutdown())
        await handler.until(1)
        text, colour = await until_row_says(dash, r"→ 500\s*$")
        assert colour == "red"
        assert "ms" not in text.split("→")[-1]  # a failure's latency is left out


async def test_while_the_handler_is_down_rows_wait_in_yellow(settings: Settings) -> None:
    async with running_handler() as handler, dashboard(settings, handler) as dash:
        await handler.stop()
        await dash.post(shutdown("cfwd00000001"))
        _text, colour = await until_row_says(dash, r"→ refused …\s*$")
        assert colour == "yellow"
        await dash.post(shutdown("cfwd00000002"))  # behind it: not sent yet
        _text, colour = await until_row_says(dash, r"→ …\s*$")
        assert colour == "yellow"
        assert "refused" in row_end(dash, 1)[0]
        await handler.start()
        await handler.until(2)
        for index in (0, 1):
            _, colour = await until_row_says(dash, r"→ 200 \d+ms\s*$", index)
            assert colour == "green"


async def test_without_forwarding_rows_have_no_cell(settings: Settings) -> None:
    async with dashboard(settings, None) as dash:
        await dash.post(shutdown())
        text, _ = row_end(dash)
        assert "→" not in text
        assert "shutdown" in text


@pytest.mark.parametrize(("size", "latency"), [((80, 24), False), ((120, 35), True)])
async def test_the_row_keeps_its_type_and_answer_at_each_width(
    settings: Settings, size: tuple[int, int], latency: bool
) -> None:
    async with (
        running_handler() as handler,
        dashboard(settings, handler, size=size) as dash,
    ):
        await dash.post(shutdown())
        await handler.until(1)
        text, colour = await until_row_says(dash, r"→ 200")
        assert colour == "green"
        assert re.search(r"conv\s+shutdown", text), text  # what happened, still readable
        assert (re.search(r"→ 200 \d+ms", text) is not None) is latency
        screen = dash.text()
        assert "→ 200" in screen
        assert "conv    shutdown" in screen


# ---------------------------------------------------------- the Handler tab


async def test_the_handler_tab_shows_the_response_inert(settings: Settings) -> None:
    async with running_handler() as handler, dashboard(settings, handler) as dash:
        handler.answer = lambda _: Answer(502, HOSTILE, headers={"content-type": "text/plain"})
        await dash.post(shutdown())
        await handler.until(1)
        await until_row_says(dash, r"→ 502")
        screen = await open_handler_tab(dash)
        await settle(dash.pilot)
        shown = attempt_text(screen)
        assert "Response 502" in shown
        assert "oops ␛]52;c;aGk=␇ ␛[2J <U+202E> reversed <U+009B> end" in shown
        assert f"{EVENT_ID_HEADER}: " in shown  # the request's headers
        assert "forwarded" in dash.text()
        assert_inert(dash.text())


async def test_a_json_answer_is_pretty_and_the_empty_tab_says_how(settings: Settings) -> None:
    async with running_handler() as handler, dashboard(settings, None) as dash:
        await dash.post(shutdown())
        screen = await open_handler_tab(dash)
        await settle(dash.pilot)
        assert "--forward-to URL" in dash.text()
        assert "press R to replay" in dash.text()
        await dash.press("escape")
        handler.answer = lambda _: Answer(200, b'{"saved":true,"id":7}')
        dash.app.resender.target = handler.url
        screen = await open_handler_tab(dash)
        await dash.press("R")
        await handler.until(1)
        await wait_for(dash.pilot, lambda: "Response 200" in attempt_text(screen), "the answer")
        assert '{\n  "saved": true,\n  "id": 7\n}' in attempt_text(screen)


# ------------------------------------------------------------------ replay


async def test_r_replays_the_same_bytes_and_the_row_shows_the_replay(settings: Settings) -> None:
    def answer(received: Received) -> Answer:
        return Answer(202 if received.header(REPLAY_HEADER) else 200)

    async with running_handler() as handler, dashboard(settings, handler) as dash:
        handler.answer = answer
        body = shutdown()
        await dash.post(body)
        [forwarded] = await handler.until(1)
        await until_row_says(dash, r"→ 200")
        dash.pane("events").focus()
        await dash.press("R")
        replayed = (await handler.until(2))[1]
        assert replayed.body == body == forwarded.body
        assert replayed.header(REPLAY_HEADER) == "1"
        assert forwarded.header(REPLAY_HEADER) is None
        assert replayed.header(EVENT_ID_HEADER) == forwarded.header(EVENT_ID_HEADER)
        assert replayed.header("content-type") == forwarded.header("content-type")
        _, colour = await until_row_says(dash, r"→ 202")
        assert colour == "green"
        await wait_for(dash.pilot, lambda: any("Replayed #" in t for t in toasts(dash)), "toast")
        assert any("answered 202" in t for t in toasts(dash))
        store = dash.app.monitor.store
        assert store is not None
        event_id = int(forwarded.header(EVENT_ID_HEADER) or 0)
        assert [a.kind for a in store.attempts(event_id)] == ["forward", "replay"]


async def test_without_forward_to_r_asks_for_the_url_once(settings: Settings) -> None:
    async with running_handler() as handler, dashboard(settings, None) as dash:
        await dash.post(shutdown())
        dash.pane("events").focus()
        await dash.press("R")
        assert isinstance(dash.app.screen, TargetScreen)
        await dash.pilot.press(*"localhost")  # not a URL: said so, still asked
        await dash.press("enter")
        assert isinstance(dash.app.screen, TargetScreen)
        assert "Give a whole URL" in dash.text()
        dash.app.screen.query_one("#target-input").value = handler.url  # type: ignore[attr-defined]
        await dash.press("enter")
        await handler.until(1)
        await until_row_says(dash, r"→ 200")
        await dash.press("R")  # remembered: no question this time
        await handler.until(2)
        assert not isinstance(dash.app.screen, TargetScreen)


# -------------------------------------------------------------- edit and send


async def edit_to(dash: Dashboard, text: str) -> EditBodyScreen:
    screen = dash.app.screen
    assert isinstance(screen, EditBodyScreen)
    screen.query_one(TextArea).load_text(text)
    await settle(dash.pilot)
    return screen


async def test_e_sends_the_edited_copy(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDITOR", raising=False)
    async with running_handler() as handler, dashboard(settings, handler) as dash:
        await dash.post(shutdown())
        await handler.until(1)
        await until_row_says(dash, r"→ 200")
        dash.pane("events").focus()
        await dash.press("E")
        screen = dash.app.screen
        assert isinstance(screen, EditBodyScreen)
        shown = json.loads(screen.query_one(TextArea).text)  # the body, pretty
        assert shown["properties"]["shutdown_reason"] == "end_call_api"
        shown["properties"]["shutdown_reason"] = "max_call_duration reached"
        edited = json.dumps(shown, indent=1).encode()
        await edit_to(dash, edited.decode())
        handler.status = 418
        await dash.press("ctrl+s")
        got = (await handler.until(2))[1]
        assert got.body == edited
        assert got.header(REPLAY_HEADER) == "1"
        _, colour = await until_row_says(dash, r"→ 418")
        assert colour == "red"
        store = dash.app.monitor.store
        assert store is not None
        [_, kept] = store.attempts(int(got.header(EVENT_ID_HEADER) or 0))
        assert kept.kind == "edited"
        assert kept.request_body == edited
        # The inspector shows what was sent: the edited body.
        screen_ = await open_handler_tab(dash)
        await wait_for(dash.pilot, lambda: "as edited" in attempt_text(screen_), "the edit")
        assert "max_call_duration reached" in attempt_text(screen_)


async def test_malformed_json_is_sent_as_typed_after_a_warning(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EDITOR", raising=False)
    async with running_handler() as handler, dashboard(settings, handler) as dash:
        await dash.post(shutdown())
        await handler.until(1)
        dash.pane("events").focus()
        await dash.press("E")
        await edit_to(dash, '{"event_type": "system.shutdown",')
        await dash.press("ctrl+s")
        assert isinstance(dash.app.screen, EditBodyScreen)  # warned, not sent
        warning = str(dash.app.screen.query_one("#edit-warning", Static).render())
        assert warning.startswith("This is not valid JSON (line 1, column ")
        assert warning.endswith("ctrl+s again sends it as typed, esc cancels.")
        assert "This is not valid JSON" in dash.text()
        assert len(handler.received) == 1
        await dash.press("ctrl+s")
        got = (await handler.until(2))[1]
        assert got.body == b'{"event_type": "system.shutdown",'
        assert not isinstance(dash.app.screen, EditBodyScreen)


async def test_esc_in_the_editor_sends_nothing(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EDITOR", raising=False)
    async with running_handler() as handler, dashboard(settings, handler) as dash:
        await dash.post(shutdown())
        await handler.until(1)
        dash.pane("events").focus()
        await dash.press("E")
        assert isinstance(dash.app.screen, EditBodyScreen)
        await dash.press("escape")
        assert not isinstance(dash.app.screen, EditBodyScreen)
        await wait_for(dash.pilot, lambda: any("cancelled" in t for t in toasts(dash)), "toast")
        assert len(handler.received) == 1
