"""A pane is a widget answering the ``Pane`` protocol plus one declaration; the app does the rest.

The app used to name each pane in six places; these tests add a pane the way a
developer would (a small widget, one ``PaneSpec``) to the real dashboard, and check
that the app attaches it to the store, hands it every batch, filters and maximises it,
without a line of the app changed.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from conftest import wait_ready
from test_tui import SIZE, conversation_bodies, settle
from textual.widgets import Input, Static

from tavus_monitor.settings import Settings
from tavus_monitor.store import StoreReader
from tavus_monitor.tui import app as app_module
from tavus_monitor.tui.app import MonitorApp
from tavus_monitor.tui.filtering import Filter
from tavus_monitor.tui.panes import Batch, Pane, PaneSpec


class Tally(Static, can_focus=True):
    """The smallest pane: counts what it is given."""

    def __init__(self) -> None:
        super().__init__("nothing yet")
        self.store: StoreReader | None = None
        self.ids: list[int] = []
        self.conversations: set[str] = set()
        self.filter: Filter | None = None

    def attach(self, store: StoreReader) -> None:
        self.store = store

    def take(self, batch: Batch) -> None:
        self.ids.extend(row.id for row in batch.rows)
        self.conversations |= batch.conversations
        self.update(f"{len(self.ids)} events")

    def apply_filter(self, parsed: Filter) -> None:
        self.filter = parsed


class WithTally(MonitorApp):
    # A relative CSS_PATH is read beside the module of the class that sets it.
    CSS_PATH = str(Path(app_module.__file__).with_name("app.tcss"))
    PANES = (*MonitorApp.PANES, PaneSpec("tally", "Tally", Tally))


def test_the_dashboards_panes_answer_the_protocol_and_a_plain_widget_is_refused() -> None:
    for spec in MonitorApp.PANES:
        assert isinstance(spec.build(), Pane)
    with pytest.raises(TypeError, match="'plain' pane \\(Static\\) is not a Pane"):
        PaneSpec("plain", "Plain", Static).build()


async def test_a_pane_declared_once_is_attached_fed_filtered_and_maximised(
    settings: Settings,
) -> None:
    app = WithTally(settings)
    app.animation_level = "none"
    async with app.run_test(size=SIZE) as pilot, httpx.AsyncClient(timeout=10) as http:
        await wait_ready(app)
        await settle(pilot)
        try:
            tally = app.query_one("#tally", Tally)
            assert tally.store is app.store
            assert tally.border_title == "Tally"
            assert tally.has_class("pane")
            for body in conversation_bodies("ctally000001"):
                answer = await http.post(app.monitor.local_url, content=body)
                assert answer.status_code == 200
            total = app.monitor.stats.events_total
            await app.wait_until_shown(total)
            assert tally.ids == list(range(1, total + 1))
            assert tally.conversations == {"ctally000001"}
            tally.focus()
            await pilot.press("slash", *"conv:ctally0")
            assert app.query_one("#filter", Input).border_title == "filter Tally"
            assert tally.filter is not None
            assert tally.filter.conversation_id == "ctally0"
            await pilot.press("enter", "m")
            assert app.screen.maximized is tally
        finally:
            await app.monitor.stop()
