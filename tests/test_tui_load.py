"""The dashboard under load: bursts of callbacks and very large payloads."""

from __future__ import annotations

import json
import re
import time

import httpx
from conftest import wait_ready

from tavus_monitor import samples
from tavus_monitor.bus import EventStored
from tavus_monitor.events import Event, classify
from tavus_monitor.settings import Settings
from tavus_monitor.tui.app import MAX_TOASTS_PER_WINDOW, MonitorApp
from tavus_monitor.tui.screens.inspector import LONG_JSON_CHARS, InspectorScreen
from tavus_monitor.tui.widgets.json_lines import JsonLines
from tavus_monitor.tui.widgets.row_list import RowList

SUMMARY = re.compile(r"([\d,]+) callbacks: ")


def stored(event_id: int, name: str, conversation_id: str) -> Event:
    [sample] = samples.render_many([name], conversation_id=conversation_id)
    return Event.classified(
        classify(sample.body), event_id=event_id, received_at=time.time(), body=sample.body
    )


async def test_a_batch_of_notable_callbacks_is_one_toast_that_counts_them_by_type(
    settings: Settings,
) -> None:
    """A burst lands in the panes a batch per frame: one toast for it, not a stack."""
    app = MonitorApp(settings)
    async with app.run_test(size=(120, 35), notifications=True) as pilot:
        await wait_ready(app)
        batch = [
            stored(1, "system.shutdown", "cone"),
            stored(2, "application.transcription_ready", "cone"),
            stored(3, "system.shutdown", "ctwo"),
            stored(4, "system.replica_joined", "ctwo"),  # not notable: no toast
        ]
        for event in batch:  # all on the bus before the panes take the next batch
            app.monitor.bus.publish(EventStored(event))
        await app.wait_until_shown(4)
        deadline = time.monotonic() + 10
        while not app._notifications:  # the summary comes once the burst has paused
            assert time.monotonic() < deadline, "no toast"
            await pilot.pause(0.05)
        [toast] = app._notifications
        assert toast.message == "3 callbacks: 2 shutdown, 1 transcription_ready (see Events)"
        await pilot.press("q")


async def test_a_burst_of_shutdowns_shows_a_few_toasts_and_counts_the_rest(
    settings: Settings,
) -> None:
    app = MonitorApp(settings)
    async with app.run_test(size=(120, 35), notifications=True) as pilot:
        await wait_ready(app)
        async with httpx.AsyncClient() as client:
            for number in range(30):
                [shutdown] = samples.render_many(
                    ["system.shutdown"], conversation_id=f"cburst{number:04d}"
                )
                answer = await client.post(app.monitor.local_url, content=shutdown.body)
                assert answer.status_code == 200
        await app.wait_until_shown(30)
        deadline = time.monotonic() + 10
        while app._announcements.pending:  # the burst's summary, once it has paused
            assert time.monotonic() < deadline, "the burst was never summed up"
            await pilot.pause(0.05)
        await pilot.pause()
        shown = list(app._notifications)
        assert 1 <= len(shown) <= MAX_TOASTS_PER_WINDOW
        # A toast tells of one shutdown, or sums up the burst ("29 callbacks: 29 shutdown"):
        # with what the window held back, every shutdown is accounted for once.
        told = sum(
            int(m[1].replace(",", "")) if (m := SUMMARY.match(n.message)) else 1 for n in shown
        )
        assert told + app._toasts_held == 30
        assert len(shown) <= 3  # the first at once, the summary (and one after 5 s, if slow)
        assert len(app.query_one("#events", RowList).rows) == 30
        await pilot.press("q")


def big_transcript(turns: int) -> bytes:
    data = samples.load("application.transcription_ready")
    transcript = [
        {"role": "user" if n % 2 else "assistant", "content": f"turn {n}: " + "lorem ipsum " * 20}
        for n in range(turns)
    ]
    transcript[-1]["content"] = "the needle is here at the very end"
    data["properties"]["transcript"] = transcript
    return json.dumps(data).encode()


async def test_a_large_payload_opens_in_the_light_json_view_and_search_reaches_its_end(
    settings: Settings,
) -> None:
    body = big_transcript(2_000)
    assert len(body) > LONG_JSON_CHARS
    app = MonitorApp(settings)
    async with app.run_test(size=(120, 35)) as pilot:
        await wait_ready(app)
        async with httpx.AsyncClient() as client:
            assert (await client.post(app.monitor.local_url, content=body)).status_code == 200
        await app.wait_until_shown(1)
        await pilot.pause()
        app.open_inspector(1)
        await pilot.pause()
        assert isinstance(app.screen, InspectorScreen)
        await pilot.press("2")
        await pilot.pause()
        view = app.screen.query_one(JsonLines)
        assert len(view.lines) > 8_000
        await pilot.press("slash")
        await pilot.press(*"needle")
        await pilot.press("enter")
        await pilot.pause()
        assert view.match is not None
        row, column, length = view.match
        assert view.lines[row][column : column + length] == "needle"
        assert row > len(view.lines) - 20
        assert view.scroll_offset.y > 0
        await pilot.press("escape", "escape", "q")
