"""The Transcripts pane's list of conversations: two lines each, only the visible ones drawn.

This was an ``OptionList``, refilled from the store once a second while callbacks
arrive. An ``OptionList`` lays out every option to know its height, so each refill
rendered all of them: with a few hundred conversations that was a 65-85 ms frame
once a second, on the event loop the server answers Tavus from, and the slowest
answers of a burst (``python bench/tui.py --only burst``). Here each conversation
is exactly two lines, so the list knows its height without rendering anything,
draws only the lines on screen, and keeps the lines it drew for rows that did not
change.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.style import Style
from rich.text import Text
from textual import events
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ...store import ConversationRow
from ..keys import Scope, bindings
from ..text import day_and_clock, safe, short_id, text_strip

LINES_PER_ROW = 2


class ConversationPicker(ScrollView, can_focus=True):
    """Recent conversations, most recently active first; the cursor opens one."""

    COMPONENT_CLASSES = {"conversation-picker--cursor"}
    DEFAULT_CSS = """
    ConversationPicker > .conversation-picker--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
    }
    ConversationPicker:blur > .conversation-picker--cursor {
        background: $block-cursor-blurred-background;
    }
    """
    BINDINGS = bindings(Scope.PICKER)

    class Highlighted(Message):
        """The user moved the cursor to a conversation."""

        def __init__(self, conversation_id: str) -> None:
            super().__init__()
            self.conversation_id = conversation_id

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[ConversationRow] = []
        self.cursor: int | None = None
        self._strips: LRUCache[tuple[ConversationRow, int, int, bool, bool], Strip] = LRUCache(512)

    def show(self, rows: Sequence[ConversationRow], selected: str | None) -> None:
        """List ``rows``, the cursor on ``selected`` (no cursor when it is not listed)."""
        self.rows = list(rows)
        ids = [row.conversation_id for row in self.rows]
        self.cursor = ids.index(selected) if selected in ids else None
        size = Size(self.scrollable_content_region.width, len(self.rows) * LINES_PER_ROW)
        if size != self.virtual_size:
            self._resize(size)
        self.refresh()

    def _resize(self, size: Size) -> None:
        """Take a new virtual size, reflowing the screen only when the scrollbar comes or goes.

        ``virtual_size`` is a layout property: setting it reflows the whole screen,
        which made the once-a-second refresh of this list an 18 ms frame (``bench/tui.py``,
        100 callbacks/s). While the list stays longer (or shorter) than the pane, only
        the scroll range changes: that is set without a reflow, and the scrollbar's
        thumb catches up at the next one.
        """
        height = self.scrollable_content_region.height
        scrolls_now = self.virtual_size.height > height
        if self.virtual_size.width == size.width and scrolls_now == (size.height > height):
            self.set_reactive(ConversationPicker.virtual_size, size)
        else:
            self.virtual_size = size

    def mark(self, selected: str | None) -> None:
        """Put the cursor on ``selected`` (opened some other way) without reopening it."""
        ids = [row.conversation_id for row in self.rows]
        cursor = ids.index(selected) if selected in ids else None
        if cursor != self.cursor:
            self.cursor = cursor
            self.refresh()

    @property
    def highlighted_id(self) -> str | None:
        return self.rows[self.cursor].conversation_id if self.cursor is not None else None

    # ------------------------------------------------------- rendering

    def render_line(self, y: int) -> Strip:
        line = self.scroll_offset.y + y
        index, part = divmod(line, LINES_PER_ROW)
        width = self.scrollable_content_region.width
        if index >= len(self.rows):
            return Strip.blank(width, self.rich_style)
        row = self.rows[index]
        selected = index == self.cursor
        key = (row, part, width, selected, self.has_focus)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._render_part(row, part, width, selected)
            self._strips[key] = strip
        return strip

    def _render_part(self, row: ConversationRow, part: int, width: int, selected: bool) -> Strip:
        if part == 0:
            text = safe(short_id(row.conversation_id, 14), "cyan")
        else:
            when, count = day_and_clock(row.last_received_at), f" · {row.events} ev"
            if len(when) + len(count) > width and when[4:5] == "-":
                when = when[5:]  # "2025-07-11 06:53" → "07-11 06:53": the count stays in view
            text = Text(when + count, style="dim")
        text.truncate(width, overflow="ellipsis")
        style: Style = self.rich_style
        if selected:
            style = style + self.get_component_rich_style("conversation-picker--cursor")
        return text_strip(text, self.app.console, width, style)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    # ------------------------------------------------------ navigation

    def _move_to(self, index: int) -> None:
        if not self.rows:
            return
        index = max(0, min(index, len(self.rows) - 1))
        self.cursor = index
        top, height = self.scroll_offset.y, self.scrollable_content_region.height
        first, last = index * LINES_PER_ROW, index * LINES_PER_ROW + LINES_PER_ROW - 1
        if first < top:
            self.scroll_to(y=first, animate=False)
        elif last >= top + height:
            self.scroll_to(y=last - height + 1, animate=False)
        self.refresh()
        self.post_message(self.Highlighted(self.rows[index].conversation_id))

    def action_cursor(self, delta: int) -> None:
        self._move_to((self.cursor if self.cursor is not None else -1) + delta)

    def action_page(self, direction: int) -> None:
        rows = max(1, self.scrollable_content_region.height // LINES_PER_ROW - 1)
        self._move_to((self.cursor or 0) + direction * rows)

    def action_first(self) -> None:
        self._move_to(0)

    def action_last(self) -> None:
        self._move_to(len(self.rows) - 1)

    def on_click(self, event: events.Click) -> None:
        index = (self.scroll_offset.y + event.y) // LINES_PER_ROW
        if 0 <= index < len(self.rows):
            self._move_to(index)
