"""The dashboard under load: bursts of callbacks and very large payloads."""

from __future__ import annotations

import json

import httpx
from conftest import wait_ready

from tavus_monitor import samples
from tavus_monitor.settings import Settings
from tavus_monitor.tui.app import MAX_TOASTS_PER_WINDOW, MonitorApp
from tavus_monitor.tui.screens.inspector import LONG_JSON_CHARS, InspectorScreen
from tavus_monitor.tui.widgets.json_lines import JsonLines
from tavus_monitor.tui.widgets.row_list import RowList


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
        await pilot.pause()
        assert len(app._notifications) <= MAX_TOASTS_PER_WINDOW
        assert app._toasts_held == 30 - MAX_TOASTS_PER_WINDOW
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
