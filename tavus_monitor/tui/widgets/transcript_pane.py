"""Transcripts pane: pick a conversation on the left, read it on the right."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ...conversation import build_conversation
from ...store import ConversationRow, StoreReader
from ..reading import read_store
from ..text import day_and_clock, safe, short_id
from .transcript_view import TranscriptView

MAX_CONVERSATIONS = 300


class ConversationPicker(OptionList):
    """Recent conversations, most recently active first."""


class TranscriptPane(Horizontal):
    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.store: StoreReader | None = None
        self.conversations: list[ConversationRow] = []
        self.text_filter = ""
        self.selected: str | None = None

    def compose(self) -> ComposeResult:
        yield ConversationPicker(id="conversation-picker")
        yield TranscriptView(id="transcript-view")

    def attach(self, store: StoreReader) -> None:
        self.store = store
        self._reload_in_background()

    @work(group="transcript-list", exclusive=True)
    async def _reload_in_background(self) -> None:
        await self.reload_list()

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
        picker = self.query_one(ConversationPicker)
        picker.clear_options()
        needle = self.text_filter.lower()
        options = [
            Option(self._label(row), id=row.conversation_id)
            for row in self.conversations
            if needle in row.conversation_id.lower()
        ]
        picker.add_options(options)
        if self.selected is not None:
            try:
                picker.highlighted = picker.get_option_index(self.selected)
            except Exception:  # OptionDoesNotExist: filtered out
                picker.highlighted = None

    @staticmethod
    def _label(row: ConversationRow) -> Text:
        label = safe(short_id(row.conversation_id, 14), "cyan")
        label.append(f"\n{day_and_clock(row.last_received_at)} · {row.events} ev", style="dim")
        return label

    def set_filter(self, text: str) -> None:
        self.text_filter = text
        self._fill_picker()

    def conversation_touched(self, conversation_ids: set[str]) -> None:
        """New events arrived for these conversations: refresh the list and the open one."""
        self._refresh(conversation_ids)

    @work(group="transcript-refresh")
    async def _refresh(self, conversation_ids: set[str]) -> None:
        await self.reload_list()
        if self.selected in conversation_ids:
            await self.select(self.selected)

    async def select(self, conversation_id: str) -> None:
        if self.store is None:
            return
        self.selected = conversation_id
        events = await read_store(self.store.conversation, conversation_id)
        if events is None or self.selected != conversation_id:
            return
        self.query_one(TranscriptView).show(build_conversation(conversation_id, events))

    async def on_option_list_option_highlighted(
        self, message: OptionList.OptionHighlighted
    ) -> None:
        if message.option.id is not None and message.option.id != self.selected:
            await self.select(message.option.id)
