"""The search screen (``ctrl+f``): words in, every matching transcript turn and event out.

It asks the store's full-text index (:meth:`~tavus_monitor.store.StoreReader.search`,
see :mod:`tavus_monitor.search`) as the words are typed, after a pause of
:data:`TYPING_PAUSE` seconds, in a worker (200 matches with their snippets: a
query of 100 takes 5-6 ms at 100,000 events and 8-10 ms at 1,000,000,
``python bench/queries.py``). Each match is a row: when,
the conversation, the turn (or the event type) and the words in context. Snippets
are payload text: each part goes through :func:`~tavus_monitor.tui.text.safe`
into Rich ``Text``, never markup. Enter dismisses the screen with the match; the
app opens the conversation at that turn in Transcripts, or the event in the
inspector.
"""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Static

from ...store import SearchHit, SearchUnavailable, StoreReader
from ..keys import Scope, bindings
from ..reading import read_store
from ..text import counted, day_and_clock, safe, short_id

RESULT_LIMIT = 200
"""Matches listed (newest first); more words narrow them."""
TYPING_PAUSE = 0.15
"""Seconds of no typing before the words are looked up."""
MATCH_STYLE = "bold black on yellow"


def snippet_text(hit: SearchHit) -> Text:
    """The match in context, inert: every part made printable, matches highlighted."""
    text = Text(no_wrap=True, overflow="ellipsis")
    for part, is_match in hit.snippet:
        text.append_text(safe(part, MATCH_STYLE if is_match else ""))
    return text


def where_text(hit: SearchHit) -> Text:
    """``turn 4 · user`` for a transcript turn, else the event's type."""
    if hit.turn:
        return safe(f"turn {hit.turn} · {hit.role or '?'}", "cyan")
    return safe(hit.event.event_type, "dim")


class SearchScreen(Screen[SearchHit | None]):
    """Find words in every stored transcript turn and payload."""

    BINDINGS = bindings(Scope.SEARCH)

    def __init__(self, store: StoreReader, words: str = "") -> None:
        super().__init__()
        self.store = store
        self.words = words
        self.hits: list[SearchHit] = []
        self.hits_for: str | None = None
        """The words ``hits`` were found for (``words`` is what is typed, maybe newer)."""
        self._pending: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static(
            Text("Search every transcript turn and payload (words, prefix*)", style="bold"),
            classes="title",
        )
        yield Input(value=self.words, placeholder="words…", id="search-words")
        yield Static(Text("Type words to find.", style="dim"), id="search-status")
        yield DataTable(id="search-results", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table: DataTable[Text] = self.query_one("#search-results", DataTable)
        table.add_column("when", key="when", width=10)
        table.add_column("conversation", key="conversation", width=16)
        table.add_column("where", key="where", width=22)
        table.add_column("match", key="match")
        self.query_one("#search-words", Input).focus()
        if self.words:
            self._look_up(self.words)

    @on(Input.Changed, "#search-words")
    def _typed(self, message: Input.Changed) -> None:
        self.words = message.value
        if self._pending is not None:
            self._pending.stop()
        self._pending = self.set_timer(TYPING_PAUSE, lambda: self._look_up(self.words))

    @on(Input.Submitted, "#search-words")
    async def _submitted(self, message: Input.Submitted) -> None:
        """Enter in the words: look them up now, then open the first match."""
        if self._pending is not None:
            self._pending.stop()
        worker = self._look_up(message.value)
        await worker.wait()
        if self.hits:
            self.dismiss(self.hits[0])

    @work(exclusive=True, group="search")
    async def _look_up(self, words: str) -> None:
        status = self.query_one("#search-status", Static)
        hits = await read_store(self._search, words)
        if hits is None:  # the store closed: the app is quitting
            return
        if isinstance(hits, str):  # no index: one sentence says why
            status.update(safe(hits, "yellow"))
            self._show([], words)
            return
        if words != self.words:
            return  # typed on meanwhile; the newer words' lookup follows
        self._show(hits, words)
        if not words.strip():
            status.update(Text("Type words to find.", style="dim"))
        elif not hits:
            status.update(safe(f"Nothing holds {words.strip()!r}.", "dim"))
        else:
            shown = counted(len(hits), "match", "matches")
            if len(hits) >= RESULT_LIMIT:
                shown = shown.replace(" ", "+ ", 1)  # 500+ matches
            status.update(Text(f"{shown}, newest first; Enter opens one.", style="dim"))

    def _search(self, words: str) -> list[SearchHit] | str:
        """In a thread: the matches, or why the store cannot be searched."""
        try:
            return self.store.search(words, RESULT_LIMIT, prefix_last=True)
        except SearchUnavailable as exc:
            return str(exc)

    def _show(self, hits: list[SearchHit], words: str) -> None:
        self.hits = hits
        self.hits_for = words
        table: DataTable[Text] = self.query_one("#search-results", DataTable)
        table.clear()
        for index, hit in enumerate(hits):
            table.add_row(
                Text(day_and_clock(hit.event.received_at), style="dim"),
                safe(short_id(hit.event.conversation_id or hit.event.subject_id, 16), "cyan"),
                where_text(hit),
                snippet_text(hit),
                key=str(index),
            )

    def action_dismiss_none(self) -> None:
        self.dismiss(None)

    def action_to_results(self) -> None:
        table: DataTable[Text] = self.query_one("#search-results", DataTable)
        if table.row_count:
            table.focus()

    def action_choose(self) -> None:
        table: DataTable[Text] = self.query_one("#search-results", DataTable)
        if table.row_count:
            self.dismiss(self.hits[table.cursor_row])

    @on(DataTable.RowSelected, "#search-results")
    def _row_selected(self, message: DataTable.RowSelected) -> None:
        key = message.row_key.value
        if key is not None:
            self.dismiss(self.hits[int(key)])
