"""Transcripts pane: pick a conversation on the left, read it on the right.

The transcript's find field (``/`` in the transcript) is the pane's, docked at its
bottom: it shows the matches as "k of N" while the transcript has the keys
(``n`` / ``N``), and Esc in it or in the transcript closes it.
"""

from __future__ import annotations

from textual import events, on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Input

from ...conversation import build_conversation
from ...store import ConversationRow, StoreReader
from ..filtering import Filter
from ..panes import Batch
from ..reading import read_store
from .conversation_picker import ConversationPicker
from .transcript_view import TranscriptView

MAX_CONVERSATIONS = 300
LIST_REFRESH_INTERVAL = 1.0
"""Seconds between refreshes of the list and the open transcript while callbacks arrive:
each is a store query, so a burst refreshes them once, not once per callback."""


class TranscriptPane(Horizontal):
    """A :class:`~tavus_monitor.tui.panes.Pane`: the list of conversations and the open one.

    Batches only note which conversations changed; the list and the open transcript
    are read again from the store once per :data:`LIST_REFRESH_INTERVAL`.
    """

    ALLOW_MAXIMIZE = True
    """``m`` maximises the whole pane, list and transcript, not the part with focus."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.store: StoreReader | None = None
        self.conversations: list[ConversationRow] = []
        self.text_filter = ""
        self.selected: str | None = None
        self._touched: set[str] = set()
        """Conversations that received events since the last refresh."""

    def compose(self) -> ComposeResult:
        yield ConversationPicker(id="conversation-picker")
        yield TranscriptView(id="transcript-view")
        yield Input(placeholder="find words in this transcript (Esc closes)", id="transcript-find")

    def on_mount(self) -> None:
        self.query_one("#transcript-find", Input).display = False
        self.set_interval(LIST_REFRESH_INTERVAL, self._refresh_touched)

    # ------------------------------------------------------------ find

    @on(TranscriptView.FindRequested)
    def _open_find(self) -> None:
        field = self.query_one("#transcript-find", Input)
        field.display = True
        field.focus()

    @on(Input.Changed, "#transcript-find")
    def _find_changed(self, message: Input.Changed) -> None:
        message.stop()
        view = self.query_one(TranscriptView)
        if message.value != view.find_words:
            view.find(message.value)

    @on(Input.Submitted, "#transcript-find")
    def _find_submitted(self, message: Input.Submitted) -> None:
        """Enter: back to the transcript, the matches kept (n / N move between them)."""
        message.stop()
        self.query_one(TranscriptView).focus()

    @on(TranscriptView.FindChanged)
    def _find_moved(self, message: TranscriptView.FindChanged) -> None:
        field = self.query_one("#transcript-find", Input)
        if not message.words:
            field.display = False
            field.border_subtitle = None
            return
        if field.value != message.words:
            field.value = message.words
        field.display = True
        field.border_subtitle = (
            f"{message.current} of {message.total}" if message.total else "no match"
        )

    def on_key(self, event: events.Key) -> None:
        """Esc in the find field closes the find (the dashboard's Esc would not reach it)."""
        field = self.query_one("#transcript-find", Input)
        if event.key == "escape" and field.has_focus:
            event.stop()
            event.prevent_default()
            view = self.query_one(TranscriptView)
            view.find("")
            view.focus()

    async def open_at(self, conversation_id: str, turn: int, words: str) -> None:
        """Read ``conversation_id`` with turn ``turn`` in view and ``words`` found in it."""
        await self.select(conversation_id)
        view = self.query_one(TranscriptView)
        view.go_to_turn(turn, words)
        view.focus()

    def attach(self, store: StoreReader) -> None:
        """Read the list (and the open conversation, when one is open) from ``store``."""
        self.store = store
        self._reload_in_background(self.selected)

    @work(group="transcript-list", exclusive=True)
    async def _reload_in_background(self, reopen: str | None) -> None:
        await self.reload_list()
        if reopen is not None and self.selected == reopen:
            await self.select(reopen)

    def take(self, batch: Batch) -> None:
        self._touched |= batch.conversations

    def apply_filter(self, parsed: Filter) -> None:
        """The list is filtered by conversation id: ``conv:`` if given, else the words."""
        self.set_filter(parsed.conversation_id or parsed.text)

    async def reload_list(self) -> None:
        if self.store is None:
            return
        conversations = await read_store(self.store.conversations, MAX_CONVERSATIONS)
        if conversations is None:
            return
        self.conversations = conversations
        self._fill_picker()
        if self.selected is None and self.conversations:
            await self.select(self.conversations[0].conversation_id)

    def _fill_picker(self) -> None:
        needle = self.text_filter.lower()
        self.query_one(ConversationPicker).show(
            [row for row in self.conversations if needle in row.conversation_id.lower()],
            self.selected,
        )

    def set_filter(self, text: str) -> None:
        self.text_filter = text
        self._fill_picker()

    def _refresh_touched(self) -> None:
        """New events arrived for these conversations: refresh the list and the open one."""
        if self._touched:
            touched, self._touched = self._touched, set()
            self._refresh(touched)

    @work(group="transcript-refresh")
    async def _refresh(self, conversation_ids: set[str]) -> None:
        await self.reload_list()
        if self.selected in conversation_ids:
            await self.select(self.selected)

    async def select(self, conversation_id: str) -> None:
        if self.store is None:
            return
        self.selected = conversation_id
        self.query_one(ConversationPicker).mark(conversation_id)
        events = await read_store(self.store.conversation, conversation_id)
        if events is None or self.selected != conversation_id:
            return
        self.query_one(TranscriptView).show(build_conversation(conversation_id, events))

    async def on_conversation_picker_highlighted(
        self, message: ConversationPicker.Highlighted
    ) -> None:
        if message.conversation_id != self.selected:
            await self.select(message.conversation_id)
