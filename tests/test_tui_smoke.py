"""A first drive of the real dashboard with the real server."""

from __future__ import annotations

import httpx
from conftest import wait_ready

from tavus_monitor import samples
from tavus_monitor.settings import Settings
from tavus_monitor.tui.app import MonitorApp
from tavus_monitor.tui.widgets.row_list import RowList
from tavus_monitor.tui.widgets.url_bar import UrlBar


async def test_callbacks_appear_in_the_panes(settings: Settings) -> None:
    app = MonitorApp(settings)
    async with app.run_test(size=(120, 35)) as pilot:
        await wait_ready(app)
        assert app.query_one(UrlBar).state.callback_url == app.monitor.local_url
        names = [name for name, _ in samples.CONVERSATION_SEQUENCE]
        async with httpx.AsyncClient() as client:
            for sample in samples.render_many(names, conversation_id="cpilot0001"):
                answer = await client.post(app.monitor.local_url, content=sample.body)
                assert answer.status_code == 200
        await app.wait_until_shown(len(names))
        await pilot.pause()
        events = app.query_one("#events", RowList)
        system = app.query_one("#system", RowList)
        assert [row.event_type for row in events.rows][-1] == "system.replica_joined"
        assert len(events.rows) == len(names)
        assert {row.event_type for row in system.rows} == {
            "system.replica_joined",
            "system.pal_joined",
            "system.shutdown",
        }
        await pilot.press("enter")
        await pilot.pause()
        assert type(app.screen).__name__ == "InspectorScreen"
        await pilot.press("escape")
        await pilot.press("q")
    assert app.return_value == 0
