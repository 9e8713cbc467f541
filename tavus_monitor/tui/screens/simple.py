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
from ...conversation import (
    ROWS_PER_CONVERSATION,
    WHOLE_TYPES,
    ConversationView,
    Stage,
    StageState,
    build_conversation,
    shown_lifecycle,
)
from ...events import RECOVERED_PREFIX
from ...recover import incomplete_from_stages
from ...sanitize import printable
from ...store import ConversationRow, Created, StoreReader
from ..formatters import short_type
from ..keys import Scope, bindings, help_sections
from ..tavus_calls import CallFailed, Made, TavusCalls
from ..text import ago, counted, day_and_clock, duration, safe, short_id
from .confirm import ConfirmScreen
from .new_conversation import NewConversationScreen

CREATED_SHOWN = 200
"""Conversations created through the monitor the list looks at (newest first) for those no
callback has reached yet."""
RELOAD_AFTER = 0.25
"""Seconds the list waits after a batch of callbacks before it reads them (a burst: once)."""
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


@dataclass(frozen=True, slots=True)
class ConversationLine:
    """One row of the Conversations list and the full text of its detail strip."""

    conversation_id: str
    last_id: int
    cells: tuple[Text, ...]
    detail: Text
    incomplete: str | None = None
    """Why it looks incomplete (:func:`~tavus_monitor.recover.incomplete_from_stages`), for
    ``r``; None when it looks complete."""
    waiting: bool = False
    """Created through the monitor and no callback yet: no store row (no ``last_id``)."""
    over: bool = False
    """Its shutdown is here: nothing to end."""


class ConversationsScreen(Screen[str | None]):
    """Every conversation with its lifecycle; Enter reads it in Transcripts.

    Paged: one store query per page of ``page_size``, the next page loading when the
    cursor reaches the last row; the first page takes a second, small query for the
    conversations created through the monitor that no callback reached yet (listed on top,
    "created · waiting for the replica to join"). The input filters by conversation id or
    ended reason (again one query). The cursor row's full text is in the strip under the
    table. Callbacks that arrive while it is open reload the rows shown (the app passes
    them on, :meth:`events_stored`).

    With ``calls`` (the dashboard's monitor runs), ``n`` creates a conversation, ``e`` ends
    the one under the cursor and ``r`` recovers what never arrived of it, each in a worker.
    """

    BINDINGS = bindings(Scope.CONVERSATIONS)
    DEFAULT_CSS = """
    #conversations-filter { border: round $accent; height: 3; }
    #conversations-detail { height: 4; padding: 0 1; background: $panel; }
    #conversations-legend { height: 1; padding: 0 1; }
    """

    def __init__(
        self,
        store: StoreReader,
        page_size: int = 200,
        calls: TavusCalls | None = None,
        initial_filter: str = "",
    ) -> None:
        super().__init__()
        self.initial_filter = initial_filter
        self.store = store
        self.page_size = page_size
        self.calls = calls
        self._reload_due = False
        self.lines: dict[str, ConversationLine] = {}
        self.more = False
        """Whether the last page came full (so older conversations may follow)."""
        self.loading = False

    def compose(self) -> ComposeResult:
        yield Static(Text("Conversations", style="bold"), classes="title")
        yield Input(
            self.initial_filter,
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
    async def _load_page(
        self, reset: bool = False, select: str | None = None, keep: bool = False
    ) -> None:
        """Read one page (the first, or the one after the rows shown) and show it.

        ``keep``: read again as many rows as are shown (the list stays as long, the cursor
        on its conversation); ``select``: put the cursor on that conversation.
        """
        self.loading = True
        text = self.filter_text
        stored = [line.last_id for line in self.lines.values() if not line.waiting]
        before = None if reset or not stored else min(stored)
        limit = max(self.page_size, len(stored)) if keep else self.page_size
        try:
            page, full = await asyncio.to_thread(self._load, text, before, limit)
        finally:
            self.loading = False
        table: DataTable[Text] = self.query_one("#conversations-table", DataTable)
        if select is None and reset and table.row_count:
            select = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if reset:
            table.clear()
            self.lines.clear()
        for line in page:
            if line.conversation_id in self.lines:  # it moved up between two pages
                continue
            self.lines[line.conversation_id] = line
            table.add_row(*line.cells, key=line.conversation_id)
        self.more = full
        if select is not None and select in self.lines:
            table.move_cursor(row=table.get_row_index(select))
        self._show_title()
        self._show_detail()

    def _load(
        self, text: str, before_id: int | None, limit: int
    ) -> tuple[list[ConversationLine], bool]:
        """One page from one store query (not two per conversation, as it once was), and on
        the first page the created ones no callback reached (one more, small query); and
        whether the page came full."""
        now = time.time()
        matching = [text, *cb.reason_codes_with(text)] if text else []
        items = self.store.conversations_with_events(
            limit,
            events_each=ROWS_PER_CONVERSATION,
            bodies_of=WHOLE_TYPES,
            before_id=before_id,
            matching=matching,
        )
        lines = [
            _line(
                item.conversation,
                build_conversation(item.conversation.conversation_id, item.events),
                now,
            )
            for item in items
        ]
        full = len(items) == limit
        if before_id is None:
            # A created one with callbacks is on this page unless the page is full and it
            # was created before the page's oldest callback: only those can be "waiting".
            shown = {line.conversation_id for line in lines}
            oldest = min((i.conversation.last_received_at for i in items), default=0.0)
            waiting = [
                _waiting_line(created, now)
                for created in self.store.created("conversation", CREATED_SHOWN)
                if created.resource_id not in shown
                and (not full or created.created_at >= oldest)
                and (not text or text.lower() in created.resource_id.lower())
            ]
            lines = waiting + lines
        return lines, full

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

    def events_stored(self, conversation_ids: set[str]) -> None:
        """Callbacks were stored (the app says so): read the rows again, once per burst."""
        if not conversation_ids or self._reload_due:
            return
        self._reload_due = True
        self.set_timer(RELOAD_AFTER, self._reload)

    def _reload(self) -> None:
        self._reload_due = False
        self._load_page(reset=True, keep=True)

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

    # ------------------------------------------------------ calling Tavus

    def _selected(self) -> ConversationLine | None:
        table: DataTable[Text] = self.query_one("#conversations-table", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.lines.get(key or "")

    def _ready_calls(self) -> TavusCalls | None:
        """The calls, or None after saying in one sentence why there are none."""
        calls = self.calls
        sentence = (
            "The server is not running here (its error is in the header), so nothing sent to "
            "Tavus could call back; fix it and start the dashboard again."
            if calls is None
            else calls.missing_key()
        )
        if sentence is not None:
            self.notify(sentence, title="Tavus API", severity="warning", timeout=15, markup=False)
            return None
        return calls

    def _say(self, sentence: str, *, error: bool = False, title: str = "") -> None:
        self.notify(
            printable(sentence),
            title=title,
            severity="error" if error else "information",
            timeout=15 if error else 8,
            markup=False,
        )

    def action_new_conversation(self) -> None:
        """The create form, callback URL filled in; refused at once when Tavus could not
        reach the URL (it is the conversation's for good)."""
        calls = self._ready_calls()
        if calls is None:
            return
        try:
            url = calls.callback_url()
        except CallFailed as failed:
            self._say(str(failed), error=True, title="Not created")
            return
        self.app.push_screen(NewConversationScreen(calls, url, self._made))

    def _made(self, made: Made) -> None:
        self._load_page(reset=True, select=made.conversation_id, keep=True)

    def action_end_call(self) -> None:
        line = self._selected()
        if line is None:
            return
        if line.over:
            self._say(f"{line.conversation_id} has already ended: its shutdown is here.")
            return
        calls = self._ready_calls()
        if calls is None:
            return
        question = Text("End conversation ")
        question.append_text(safe(line.conversation_id, "bold cyan"))
        question.append(
            "? Tavus ends the call for everyone in it and sends its shutdown "
            "(end_conversation_endpoint_hit)."
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self._end(calls, line.conversation_id)

        self.app.push_screen(ConfirmScreen(question), answered)

    @work(group="tavus-end", exit_on_error=False)
    async def _end(self, calls: TavusCalls, conversation_id: str) -> None:
        try:
            sentence = await calls.end(conversation_id)
        except CallFailed as failed:
            self._say(str(failed), error=True, title="Not ended")
            return
        self._say(sentence, title="Ended")
        self._load_page(reset=True, keep=True)

    def action_recover(self) -> None:
        line = self._selected()
        if line is None:
            return
        if line.incomplete is None:
            self._say(
                f"{line.conversation_id} looks complete (its shutdown is here and no "
                "transcript is overdue): nothing to recover."
            )
            return
        calls = self._ready_calls()
        if calls is not None:
            self._say(f"Asking Tavus what happened in {line.conversation_id} ({line.incomplete})…")
            self._recover(calls, line.conversation_id)

    @work(group="tavus-recover", exit_on_error=False)
    async def _recover(self, calls: TavusCalls, conversation_id: str) -> None:
        try:
            outcome = await calls.recover(conversation_id)
        except CallFailed as failed:
            self._say(str(failed), error=True, title="Not recovered")
            return
        self._say(outcome.line, title="Recovered" if outcome.recovered else "Nothing to recover")
        self._load_page(reset=True, keep=True)

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
    recovered = [e for e in view.events if e.summary.startswith(RECOVERED_PREFIX)]
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
        f"  ·  {counted(row.events, 'event')}  ·  last {day_and_clock(row.last_received_at)}"
        f"  ·  call {call}\nended: ",
        style="dim",
    )
    detail.append_text(ended_words)
    if recovered:
        shown = ", ".join(dict.fromkeys(short_type(event.event_type) for event in recovered))
        detail.append(f"  ·  ↺ recovered from Tavus's log: {shown}", style="magenta")
        ended = Text("↺ ", style="magenta").append_text(ended)
    detail.append("\n")
    detail.append_text(timeline(stages))
    cells = (
        safe(short_id(row.conversation_id, 16), "cyan"),
        Text(ago(row.last_received_at, now), style="dim"),
        Text(call),
        ended,
        compact_timeline(stages),
    )
    return ConversationLine(
        row.conversation_id,
        row.last_id,
        cells,
        detail,
        incomplete=incomplete_from_stages(stages),
        over=view.is_over,
    )


WAITING = "created · waiting for the replica to join"
"""A conversation created through the monitor that no callback reached yet."""


def _waiting_line(created: Created, now: float) -> ConversationLine:
    """A created conversation with no callback yet: what it waits for, and where its
    callbacks go (a URL other than this monitor's is why nothing may ever arrive)."""
    if created.ended_at is not None:
        state, style = "ended here · waiting for the shutdown", "yellow"
    elif created.response.get("status") == "ended":
        state, style = "created in test mode · ended, no callbacks", "dim"
    else:
        state, style = WAITING, "yellow"
    detail = Text()
    detail.append_text(safe(created.resource_id, "bold cyan"))
    if created.name:
        detail.append("  ")
        detail.append_text(safe(created.name))
    detail.append(f"  ·  created here {day_and_clock(created.created_at)}  ·  callbacks to ")
    detail.append_text(safe(created.callback_url or "none"))
    detail.append("\n")
    detail.append(state, style=style)
    detail.append("\nnothing arrived yet: r asks Tavus what happened", style="dim")
    cells = (
        safe(short_id(created.resource_id, 16), "cyan"),
        Text(ago(created.created_at, now), style="dim"),
        Text("—"),
        Text("created", style="dim"),
        Text(state, style=style),
    )
    return ConversationLine(
        created.resource_id,
        0,
        cells,
        detail,
        incomplete="created here, nothing arrived",
        waiting=True,
        over=created.response.get("status") == "ended",
    )


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
