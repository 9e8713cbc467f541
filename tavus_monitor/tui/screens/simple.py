"""Small screens: help, rejected requests, conversations, log."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Static

from ... import event_types
from ...conversation import Stage, StageState, build_conversation
from ...store import StoreReader
from ..keys import Scope, bindings, help_sections
from ..text import ago, day_and_clock, duration, safe, short_id

ROWS_PER_CONVERSATION = 1_000
"""The newest events of each conversation the lifecycle is read from."""
WHOLE_TYPES = event_types.stage_types(event_types.SHUTDOWN)
"""Events the list reads a payload of (the shutdown's reason); the others come as rows."""


class HelpScreen(ModalScreen[None]):
    """Every key, generated from the key table (``keys.py``): it cannot drift from the bindings."""

    BINDINGS = bindings(Scope.HELP)

    def compose(self) -> ComposeResult:
        text = Text()
        for heading, lines in help_sections():
            text.append(f"\n{heading}\n", style="bold underline")
            for keys, description in lines:
                text.append(f"  {keys:<24}", style="bold cyan")
                text.append(description + "\n")
        with VerticalScroll(id="help-body"):
            yield Static(Text("tavus-monitor keys", style="bold"))
            yield Static(text)


class RejectedScreen(Screen[None]):
    """Requests that were refused: the answer to "why did nothing arrive?"."""

    BINDINGS = bindings(Scope.REJECTED_AND_LOG)

    def __init__(self, store: StoreReader) -> None:
        super().__init__()
        self.store = store

    def compose(self) -> ComposeResult:
        yield Static(Text("Rejected requests (newest first)", style="bold"), classes="title")
        yield DataTable(id="rejected-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    async def on_mount(self) -> None:
        table: DataTable[Text] = self.query_one("#rejected-table", DataTable)
        for column in ("time", "status", "method", "path", "from", "bytes", "reason"):
            table.add_column(column, key=column)
        rejections = await asyncio.to_thread(self.store.rejections, 1000)
        for r in rejections:
            table.add_row(
                Text(day_and_clock(r.received_at), style="dim"),
                Text(str(r.status), style="yellow"),
                safe(r.method),
                safe(r.path),
                safe(r.remote_addr or "?"),
                Text("" if r.size is None else f"{r.size:,}"),
                safe(r.reason),
            )
        if not rejections:
            self.query_one(".title", Static).update(
                Text("No rejected requests: every request so far reached the webhook.", "dim")
            )


STAGE_GLYPHS = {
    StageState.RECEIVED: ("✓", "green"),
    StageState.DUPLICATED: ("✓²", "yellow"),
    StageState.WAITING: ("…", "dim"),
    StageState.OVERDUE: ("!", "bold red"),
    StageState.NOT_RECEIVED: ("–", "dim"),
}


def timeline(stages: list[Stage]) -> Text:
    """``✓ joined → ✓ shutdown → ! transcript → – recording …``"""
    text = Text()
    for index, stage in enumerate(stages):
        if index:
            text.append(" → ", style="dim")
        glyph, style = STAGE_GLYPHS[stage.state]
        text.append(f"{glyph} {stage.name}", style=style)
        if stage.note and stage.state in (StageState.OVERDUE, StageState.DUPLICATED):
            text.append(f" ({stage.note})", style=style)
    return text


class ConversationsScreen(Screen[str | None]):
    """Every recent conversation with its lifecycle; Enter reads it in Transcripts."""

    BINDINGS = bindings(Scope.CONVERSATIONS)

    def __init__(self, store: StoreReader, limit: int = 300) -> None:
        super().__init__()
        self.store = store
        self.limit = limit

    def compose(self) -> ComposeResult:
        yield Static(
            Text(
                "Conversations: lifecycle of each call (✓ received, ! overdue, ✓² duplicated)",
                style="bold",
            ),
            classes="title",
        )
        yield DataTable(id="conversations-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    async def on_mount(self) -> None:
        table: DataTable[Text] = self.query_one("#conversations-table", DataTable)
        table.add_column("conversation", key="conversation", width=16)
        table.add_column("last", key="last", width=9)
        table.add_column("call", key="call", width=8)
        table.add_column("ended", key="ended", width=26)
        table.add_column("lifecycle", key="lifecycle")
        rows = await asyncio.to_thread(self._load)
        for conversation_id, cells in rows:
            table.add_row(*cells, key=conversation_id)
        if not rows:
            self.query_one(".title", Static).update(Text("No conversations yet.", style="dim"))

    def _load(self) -> list[tuple[str, list[Text]]]:
        """Every row from one store query (not two per conversation, as it once was)."""
        now = time.time()
        result = []
        for item in self.store.conversations_with_events(
            self.limit, events_each=ROWS_PER_CONVERSATION, bodies_of=WHOLE_TYPES
        ):
            row = item.conversation
            # The shutdown comes whole, so the view reads its reason from the payload.
            view = build_conversation(row.conversation_id, item.events)
            reason = view.shutdown_reason
            result.append(
                (
                    row.conversation_id,
                    [
                        safe(short_id(row.conversation_id, 16), "cyan"),
                        Text(ago(row.last_received_at, now), style="dim"),
                        Text(duration(view.call_seconds) if view.call_seconds else "—"),
                        safe(
                            reason.words if reason else ("in progress" if not view.is_over else "?")
                        ),
                        timeline(view.lifecycle(now)),
                    ],
                )
            )
        return result

    def action_dismiss_none(self) -> None:
        self.dismiss(None)

    def action_choose(self) -> None:
        table: DataTable[Text] = self.query_one("#conversations-table", DataTable)
        if table.row_count:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            self.dismiss(key)

    @on(DataTable.RowSelected, "#conversations-table")
    def _row_selected(self, message: DataTable.RowSelected) -> None:
        """The table takes Enter (and double clicks) itself and says which row."""
        self.dismiss(message.row_key.value)


class LogScreen(Screen[None]):
    """The tail of the log file: what uvicorn, pyngrok and the monitor said."""

    BINDINGS = bindings(Scope.REJECTED_AND_LOG)

    def __init__(self, log_file: Path | None) -> None:
        super().__init__()
        self.log_file = log_file

    def compose(self) -> ComposeResult:
        yield Static(Text(f"Log: {self.log_file or 'not written'}", style="bold"))
        with VerticalScroll():
            yield Static(id="log-body")
        yield Footer()

    async def on_mount(self) -> None:
        lines = await asyncio.to_thread(self._tail)
        self.query_one("#log-body", Static).update(safe("".join(lines), keep_newlines=True))
        self.query_one(VerticalScroll).scroll_end(animate=False)

    def _tail(self, count: int = 500) -> list[str]:
        if self.log_file is None or not self.log_file.exists():
            return ["(nothing logged yet)"]
        with self.log_file.open(encoding="utf-8", errors="replace") as handle:
            return list(deque(handle, maxlen=count))
