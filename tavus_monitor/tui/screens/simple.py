"""Small screens: help, rejected requests, conversations, log."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, Static

from ... import callbacks as cb
from ... import event_types
from ...conversation import ConversationView, Stage, StageState, build_conversation
from ...store import ConversationRow, StoreReader
from ..keys import Scope, bindings, help_sections
from ..text import ago, day_and_clock, duration, safe, short_id

ROWS_PER_CONVERSATION = 1_000
"""The newest events of each conversation the lifecycle is read from."""
WHOLE_TYPES = event_types.stage_types(event_types.SHUTDOWN)
"""Events the list reads a payload of (the shutdown's reason); the others come as rows."""
KEYS_WIDTH = 22
"""The help's key column; wider key lists take more, their description the rest."""


class HelpScreen(ModalScreen[None]):
    """Every key, generated from the key table (``keys.py``): it cannot drift from the bindings."""

    BINDINGS = bindings(Scope.HELP)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Static(Text("tavus-monitor keys", style="bold"))
            for heading, lines in help_sections():
                # A grid per section: a description too long for the box wraps under
                # itself, beside its keys, so nothing is cut however narrow the terminal.
                table = Table.grid(padding=(0, 2), pad_edge=False)
                table.add_column(style="bold cyan", no_wrap=True, min_width=KEYS_WIDTH)
                table.add_column(ratio=1, overflow="fold")
                for keys, description in lines:
                    table.add_row(keys, description)
                yield Static(Text(f"\n{heading}", style="bold underline"))
                yield Static(table, classes="help-keys")


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
STAGE_LETTERS = {
    event_types.JOINED.name: "J",
    event_types.SHUTDOWN.name: "S",
    event_types.TRANSCRIPT.name: "T",
    event_types.RECORDING.name: "R",
    event_types.PERCEPTION.name: "P",
    event_types.POST_CALL_ACTIONS.name: "A",
}
"""One letter per lifecycle stage, so a row's lifecycle fits a column (``J✓ S✓ T! R– P– A–``)."""
LEGEND_STAGE_WORDS = {event_types.POST_CALL_ACTIONS.name: "actions"}
"""Stage names the legend shortens, so it fits one line of 120 columns."""
STATE_WORDS = {
    StageState.RECEIVED: "got",
    StageState.DUPLICATED: "twice",
    StageState.WAITING: "waiting",
    StageState.OVERDUE: "late",
    StageState.NOT_RECEIVED: "none",
}
"""The legend's word for each state (the detail strip spells states out)."""
REASON_STYLES = {
    cb.ShutdownKind.NORMAL: "",
    cb.ShutdownKind.TIMEOUT: "yellow",
    cb.ShutdownKind.ERROR: "red",
    cb.ShutdownKind.UNKNOWN: "yellow",
}
NO_CALL_REASONS = frozenset({"participant_absent_timeout"})
"""A documented reason that is no error but says nobody ever joined the call."""


def timeline(stages: list[Stage]) -> Text:
    """``✓ joined → ✓ shutdown → ! transcript → – recording …``"""
    text = Text()
    for index, stage in enumerate(stages):
        if index:
            text.append(" → ", style="dim")
        glyph, style = STAGE_GLYPHS[stage.state]
        text.append(f"{glyph} {stage.name}", style=style)
        if stage.note and stage.state is not StageState.WAITING:
            text.append(f" ({stage.note})", style=style)
    return text


def compact_timeline(stages: list[Stage]) -> Text:
    """``J✓ S✓ T! R– P– A–``: each stage's letter and its state's glyph (see :func:`legend`)."""
    text = Text()
    for index, stage in enumerate(stages):
        if index:
            text.append(" ")
        glyph, style = STAGE_GLYPHS[stage.state]
        text.append(STAGE_LETTERS.get(stage.name, stage.name[:1].upper()), style="bold")
        text.append(glyph, style=style)
    return text


def legend() -> Text:
    """The one line that says what the letters and glyphs of :func:`compact_timeline` mean."""
    text = Text()
    for index, stage in enumerate(event_types.STAGES):
        text.append("  " if index else "")
        text.append(STAGE_LETTERS[stage.name], style="bold")
        text.append(f" {LEGEND_STAGE_WORDS.get(stage.name, stage.name)}", style="dim")
    text.append(" │", style="dim")
    for state, (glyph, style) in STAGE_GLYPHS.items():
        text.append("  " if state is not StageState.RECEIVED else " ")
        text.append(glyph, style=style)
        text.append(f" {STATE_WORDS[state]}", style="dim")
    return text


def transcript_expected(reason: cb.ShutdownReason | None) -> bool:
    """Whether a call that shut down for ``reason`` gets a transcript from Tavus.

    The rule: a transcript is expected unless the call never had anyone in it, that is
    unless the reason is ``participant_absent_timeout`` (the participant never joined)
    or an error one (the replica could not join, the conversation failed to start, an
    internal error). Unknown reasons and a shutdown without one keep the expectation.

    Why: the callback notes (tavus-callbacks.md) say ``transcription_ready`` comes
    about 1 ms after the shutdown: it is part of how a call ends, so when it is missing
    after a normal end something went wrong and the list flags it red. The notes and
    the API notes (tavus-api.md) also say a transcript is the turns of the call, and
    that what needs dialogue (post-call actions) does not run for a call without any;
    a call nobody joined, or that failed before the replica was in it, has no turns to
    send, so its missing transcript is no news and is shown as none rather than
    overdue. Nothing documents the opposite for these reasons; if Tavus does send one,
    it still shows as received.
    """
    if reason is None:
        return True
    return reason.code not in NO_CALL_REASONS and reason.kind is not cb.ShutdownKind.ERROR


def shown_lifecycle(view: ConversationView, now: float) -> list[Stage]:
    """The lifecycle as the list shows it: the join twin is one join, and no transcript
    is overdue for a call that gets none (:func:`transcript_expected`)."""
    stages = []
    for stage in view.lifecycle(now):
        if stage.name == event_types.JOINED.name and stage.state is StageState.DUPLICATED:
            stage = _one_join(stage)
        elif (
            stage.name == event_types.TRANSCRIPT.name
            and stage.state in (StageState.OVERDUE, StageState.WAITING)
            and view.is_over
            and not transcript_expected(view.shutdown_reason)
        ):
            stage = Stage(stage.name, StageState.NOT_RECEIVED, note="none sent for this end")
        stages.append(stage)
    return stages


def _one_join(stage: Stage) -> Stage:
    """``pal_joined`` and ``replica_joined`` name one moment: only a type seen twice repeats."""
    seen: set[str] = set()
    repeats = 0
    for event in stage.events:
        repeats += event.event_type in seen
        seen.add(event.event_type)
    if repeats:
        plural = "s" if repeats > 1 else ""
        return Stage(
            stage.name, StageState.DUPLICATED, stage.events, f"{repeats} duplicate{plural}"
        )
    return Stage(stage.name, StageState.RECEIVED, stage.events)


@dataclass(frozen=True, slots=True)
class ConversationLine:
    """One row of the Conversations list and the full text of its detail strip."""

    conversation_id: str
    last_id: int
    cells: tuple[Text, ...]
    detail: Text


class ConversationsScreen(Screen[str | None]):
    """Every conversation with its lifecycle; Enter reads it in Transcripts.

    Paged: one store query per page of ``page_size``, the next page loading when the
    cursor reaches the last row. The input filters by conversation id or ended reason
    (again one query). The cursor row's full text is in the strip under the table.
    """

    BINDINGS = bindings(Scope.CONVERSATIONS)
    DEFAULT_CSS = """
    #conversations-filter { border: round $accent; height: 3; }
    #conversations-detail { height: 4; padding: 0 1; background: $panel; }
    #conversations-legend { height: 1; padding: 0 1; }
    """

    def __init__(self, store: StoreReader, page_size: int = 200) -> None:
        super().__init__()
        self.store = store
        self.page_size = page_size
        self.lines: dict[str, ConversationLine] = {}
        self.more = False
        """Whether the last page came full (so older conversations may follow)."""
        self.loading = False

    def compose(self) -> ComposeResult:
        yield Static(Text("Conversations", style="bold"), classes="title")
        yield Input(
            placeholder="filter: conversation id or ended reason (/ here, ↓ to the list)",
            id="conversations-filter",
        )
        yield DataTable(id="conversations-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="conversations-detail")
        yield Static(id="conversations-legend")
        yield Footer()

    async def on_mount(self) -> None:
        table: DataTable[Text] = self.query_one("#conversations-table", DataTable)
        table.add_column("conversation", key="conversation", width=16)
        table.add_column("last", key="last", width=8)
        table.add_column("call", key="call", width=7)
        table.add_column("ended", key="ended", width=22)
        table.add_column("lifecycle", key="lifecycle")
        self.query_one("#conversations-legend", Static).update(legend())
        table.focus()
        self._load_page(reset=True)

    @property
    def filter_text(self) -> str:
        return self.query_one("#conversations-filter", Input).value.strip()

    @work(group="conversations", exclusive=True)
    async def _load_page(self, reset: bool = False) -> None:
        """Read one page (the first, or the one after the rows shown) and show it."""
        self.loading = True
        text = self.filter_text
        before = None if reset or not self.lines else min(x.last_id for x in self.lines.values())
        try:
            page = await asyncio.to_thread(self._load, text, before)
        finally:
            self.loading = False
        table: DataTable[Text] = self.query_one("#conversations-table", DataTable)
        if reset:
            table.clear()
            self.lines.clear()
        for line in page:
            if line.conversation_id in self.lines:  # it moved up between two pages
                continue
            self.lines[line.conversation_id] = line
            table.add_row(*line.cells, key=line.conversation_id)
        self.more = len(page) == self.page_size
        self._show_title()
        self._show_detail()

    def _load(self, text: str, before_id: int | None) -> list[ConversationLine]:
        """One page from one store query (not two per conversation, as it once was)."""
        now = time.time()
        matching = [text, *cb.reason_codes_with(text)] if text else []
        return [
            _line(
                item.conversation,
                build_conversation(item.conversation.conversation_id, item.events),
                now,
            )
            for item in self.store.conversations_with_events(
                self.page_size,
                events_each=ROWS_PER_CONVERSATION,
                bodies_of=WHOLE_TYPES,
                before_id=before_id,
                matching=matching,
            )
        ]

    def _show_title(self) -> None:
        count = len(self.lines)
        text = Text("Conversations", style="bold")
        if self.filter_text:
            text.append(f" matching “{self.filter_text}”", style="bold")
        if not count:
            text.append(": none match." if self.filter_text else ": none yet.", style="dim")
        else:
            text.append(f" · {count} shown", style="dim")
            text.append(
                " · more load when the cursor reaches the end" if self.more else " · all",
                style="dim",
            )
        self.query_one(".title", Static).update(text)

    def _show_detail(self) -> None:
        table: DataTable[Text] = self.query_one("#conversations-table", DataTable)
        detail = self.query_one("#conversations-detail", Static)
        if not table.row_count:
            detail.update("")
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        line = self.lines.get(key or "")
        detail.update(line.detail if line else "")

    @on(Input.Changed, "#conversations-filter")
    def _filter_changed(self) -> None:
        self._load_page(reset=True)

    @on(Input.Submitted, "#conversations-filter")
    def _filter_submitted(self) -> None:
        self.action_to_table()

    @on(DataTable.RowHighlighted, "#conversations-table")
    def _row_highlighted(self, message: DataTable.RowHighlighted) -> None:
        self._show_detail()
        if (
            self.more
            and not self.loading
            and message.cursor_row >= message.data_table.row_count - 1
        ):
            self._load_page()

    def action_focus_filter(self) -> None:
        self.query_one("#conversations-filter", Input).focus()

    def action_to_table(self) -> None:
        self.query_one("#conversations-table", DataTable).focus()

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


def _line(row: ConversationRow, view: ConversationView, now: float) -> ConversationLine:
    """A conversation's row (short words, compact lifecycle) and its detail (everything)."""
    reason = view.shutdown_reason
    stages = shown_lifecycle(view, now)
    if reason is not None:
        ended = safe(reason.short or reason.words, REASON_STYLES[reason.kind])
        said = reason.words if reason.words == reason.raw else f"{reason.words} ({reason.raw})"
        ended_words = safe(said, REASON_STYLES[reason.kind])
    else:
        ended = ended_words = Text("in progress" if not view.is_over else "no reason given")
    call = duration(view.call_seconds) if view.call_seconds else "—"
    detail = Text()
    detail.append_text(safe(row.conversation_id, "bold cyan"))
    detail.append(
        f"  ·  {row.events} events  ·  last {day_and_clock(row.last_received_at)}"
        f"  ·  call {call}\nended: ",
        style="dim",
    )
    detail.append_text(ended_words)
    detail.append("\n")
    detail.append_text(timeline(stages))
    cells = (
        safe(short_id(row.conversation_id, 16), "cyan"),
        Text(ago(row.last_received_at, now), style="dim"),
        Text(call),
        ended,
        compact_timeline(stages),
    )
    return ConversationLine(row.conversation_id, row.last_id, cells, detail)


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
