"""The ``!`` list: what needs attention, each with where Enter takes you to see it."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ...attention import Concern, ConcernKind
from ..keys import Scope, bindings
from ..text import ago, safe

KIND_STYLES = {
    ConcernKind.TUNNEL: "bold red",
    ConcernKind.REJECTED: "yellow",
    ConcernKind.FAILED_JOB: "red",
    ConcernKind.ERROR_END: "red",
    ConcernKind.OVERDUE: "yellow",
    ConcernKind.HANDLER: "red",
    ConcernKind.STRANDED: "yellow",
}
GOES_TO = {
    ConcernKind.TUNNEL: "retries the tunnel",
    ConcernKind.REJECTED: "lists the refused requests",
    ConcernKind.FAILED_JOB: "opens the failed callback",
    ConcernKind.ERROR_END: "opens the shutdown",
    ConcernKind.OVERDUE: "opens the conversation",
    ConcernKind.HANDLER: "lists the events",
    ConcernKind.STRANDED: "opens it in Conversations (r recovers it once it ended)",
}
"""What Enter does on a row of each kind (the app does it; the detail strip says it)."""


class AttentionScreen(Screen[Concern | None]):
    """Every concern (:func:`~tavus_monitor.attention.find_concerns`); Enter goes to it."""

    BINDINGS = bindings(Scope.ATTENTION)

    def __init__(self, concerns: list[Concern]) -> None:
        super().__init__()
        self.concerns = concerns

    def compose(self) -> ComposeResult:
        count = len(self.concerns)
        title = Text("Needs attention", style="bold")
        if count:
            title.append(f" · {count}", style="bold")
            title.append(" · enter goes to the selected one", style="dim")
        else:
            title.append(": nothing. Failed jobs, calls that failed, overdue transcripts, ")
            title.append("a tunnel that is down and refused requests show up here.")
        yield Static(title, classes="title")
        yield DataTable(id="attention-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="attention-detail")
        yield Footer()

    def on_mount(self) -> None:
        table: DataTable[Text] = self.query_one("#attention-table", DataTable)
        table.add_column("what", key="kind")
        table.add_column("when", key="when")
        table.add_column("details", key="text")
        now = time.time()
        for number, concern in enumerate(self.concerns):
            table.add_row(
                Text(str(concern.kind), style=KIND_STYLES[concern.kind]),
                Text(ago(concern.at, now) if concern.at else "now", style="dim"),
                safe(concern.text),
                key=str(number),
            )
        table.focus()
        self._show_detail()

    def on_data_table_row_highlighted(self, message: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def on_data_table_row_selected(self, message: DataTable.RowSelected) -> None:
        self.action_choose()

    def _selected(self) -> Concern | None:
        table: DataTable[Text] = self.query_one("#attention-table", DataTable)
        if not self.concerns or table.cursor_row < 0:
            return None
        return self.concerns[min(table.cursor_row, len(self.concerns) - 1)]

    def _show_detail(self) -> None:
        concern = self._selected()
        detail = self.query_one("#attention-detail", Static)
        if concern is None:
            detail.update("")
            return
        text = safe(concern.text)
        text.append(f"\nenter {GOES_TO[concern.kind]}", style="dim")
        detail.update(text)

    def action_choose(self) -> None:
        concern = self._selected()
        if concern is not None:
            self.dismiss(concern)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
