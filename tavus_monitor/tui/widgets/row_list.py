"""A list of stored events that renders only what is visible.

History can hold hundreds of thousands of events, so this is a Line-API
``ScrollView``: it keeps a window of bodiless rows (newest first), paints just
the lines on screen, and pages older rows from the store when the user
scrolls near the end of what is loaded. New events are inserted at the top.

Under the rows, a detail strip of a few lines shows the selected row's whole text
(wrapped), so nothing in the list is only ever seen cut short.

Follow mode: while the cursor is on the newest row, new rows keep it there.
Once the user moves away, new rows no longer move the view; the border says
how many arrived, and ``f`` (or Home) follows again.

The dashboard's system events and events panes are each one of these
(a :class:`~tavus_monitor.tui.panes.Pane`, with its own base query).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from rich.console import Console
from rich.style import Style
from rich.text import Text
from textual import events, work
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ...events import EventRow
from ...store import EventQuery, StoreReader
from ..filtering import Filter
from ..handler_cells import Cell, HandlerCells, cell_sentence, cell_text
from ..keys import Scope, bindings
from ..panes import Batch, InspectEvent, ResendEvent
from ..reading import read_store
from ..text import safe, text_strip

RowFormatter = Callable[[EventRow, int], Text]
"""Turns a row into one line of Text for the given width."""
RowDetail = Callable[[EventRow], Text]
"""Turns a row into its whole text, for the detail strip (wrapped to the width)."""

PAGE_SIZE = 200
MAX_ROWS = 5_000
"""Rows held in memory; older ones are dropped and paged back in on demand."""
DETAIL_MAX_LINES = 4
"""The detail strip's height in a tall pane (see ``RowList.detail_height``)."""
SIZE_DELAY = 1.0
"""Seconds a longer list may wait to lengthen the scrollbar while following (see _changed)."""


def detail_lines(height: int) -> int:
    """How many of a pane's ``height`` lines its detail strip takes: 2, more in a tall
    pane (up to :data:`DETAIL_MAX_LINES`), fewer in one too short for them."""
    if height <= 2:
        return 0
    if height == 3:
        return 1
    return min(DETAIL_MAX_LINES, max(2, height // 6))


def fit_lines(text: Text, console: Console, width: int, height: int) -> list[Text]:
    """``text`` wrapped to ``width``, at most ``height`` lines; "…" ends it when cut."""
    text = text.copy()
    text.no_wrap = False
    text.overflow = "fold"
    lines = list(text.wrap(console, max(1, width)))
    if len(lines) > height:
        lines = lines[:height]
        if lines:
            last = lines[-1]
            last.append("…")
            last.truncate(max(1, width), overflow="ellipsis")
    return lines


class RowList(ScrollView, can_focus=True):
    """A virtual, store-backed list of events, newest first."""

    COMPONENT_CLASSES = {"row-list--cursor", "row-list--dim", "row-list--detail"}

    DEFAULT_CSS = """
    RowList > .row-list--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
    }
    RowList:blur > .row-list--cursor { background: $block-cursor-blurred-background; }
    RowList > .row-list--dim { color: $text-muted; }
    RowList > .row-list--detail { background: $boost; }
    """

    BINDINGS = bindings(Scope.LISTS)
    """Generated from the key table (``keys.py``), like the help and the README."""

    cursor: reactive[int] = reactive(0, always_update=True)

    class Highlighted(Message):
        def __init__(self, row_list: RowList, row: EventRow) -> None:
            super().__init__()
            self.row_list = row_list
            self.row = row

    def __init__(
        self,
        formatter: RowFormatter,
        *,
        base_query: EventQuery | None = None,
        empty_text: str = "Nothing yet.",
        detail: RowDetail | None = None,
        cells: HandlerCells | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.formatter = formatter
        self.detail = detail
        """The selected row's whole text under the list; None: no detail strip."""
        self.cells = cells
        """What the handler answered per row, shown at each row's end (see handler_cells);
        None: this list shows no such cell."""
        self.base_query = replace(base_query or EventQuery(), limit=PAGE_SIZE)
        self.query_filter = self.base_query
        self.empty_text = empty_text
        self.rows: list[EventRow] = []
        self.store: StoreReader | None = None
        self.exhausted = True
        self.following = True
        self.unseen = 0
        """Rows that arrived while follow mode was paused."""
        self.filter_label = ""
        """What the border says about the filter (user text, shown as plain text)."""
        self.filter_source = ""
        """The filter as typed, while one holds (the empty list says it matched nothing)."""
        self.match_count: int | None = None
        """How many stored events the filter matches (None: no filter, or not counted yet)."""
        self._loading_older = False
        self._generation = 0
        self._strips: LRUCache[tuple[int, int, bool, bool], Strip] = LRUCache(1024)
        self._detail_strips: tuple[tuple[int, int, int], list[Strip]] | None = None
        self._pending_size: Size | None = None
        self._subtitle = ""

    # ------------------------------------------------------------ data

    def attach(self, store: StoreReader) -> None:
        """Start showing what ``store`` holds (again, when its file was made anew)."""
        self.store = store
        self._strips.clear()  # keyed by id, and a new file's ids start again
        if self.cells is not None:
            self.cells.clear()
        self._detail_strips = None
        self.reload()

    def take(self, batch: Batch) -> None:
        """Add the batch's rows that are newer than the newest shown.

        After a reload from the store the bus may still hold events the reload read.
        """
        newest = self.rows[0].id if self.rows else 0
        self.add([row for row in batch.rows if row.id > newest])

    def apply_filter(self, parsed: Filter) -> None:
        """The filter narrows the base query (the system pane stays joins and shutdowns)."""
        self.filter_source = "" if parsed.is_empty else parsed.source
        self.set_filter(
            None if parsed.is_empty else parsed.apply(self.base_query),
            label=f"filter: {parsed.source}",
        )

    def set_filter(self, query: EventQuery | None, label: str = "") -> None:
        """Narrow the list (None: back to the base query) and reload from the store.

        ``label`` is shown in the border beside the follow state while the filter holds.
        """
        self.query_filter = replace(query or self.base_query, limit=PAGE_SIZE)
        self.filter_label = label if query is not None else ""
        if query is None:
            self.filter_source = ""
        self.match_count = None
        self._update_subtitle()
        self.reload()

    def reload(self) -> None:
        self._generation += 1
        self._load_first(self._generation)

    @work(group="row-list-load", exclusive=True)
    async def _load_first(self, generation: int) -> None:
        if self.store is None:
            return
        rows = await read_store(self.store.rows, self.query_filter)
        if rows is None or generation != self._generation:
            return
        count: int | None = None
        if self.filter_label:
            # One count of the whole history (a page holds it all when it is short);
            # events that arrive later add to it (see ``add``).
            count = len(rows) if len(rows) < PAGE_SIZE else None
            if count is None:
                count = await read_store(self.store.count, self.query_filter)
                if count is None or generation != self._generation:
                    return
        if not await self._load_cells(rows, generation):
            return
        self.match_count = count
        self.rows = rows
        self.exhausted = len(rows) < PAGE_SIZE
        self.cursor = 0
        self.following = True
        self.unseen = 0
        self._changed()
        self.scroll_to(y=0, animate=False)

    @work(group="row-list-older")
    async def _load_older(self, generation: int) -> None:
        if self.store is None or not self.rows:
            self._loading_older = False
            return
        query = replace(self.query_filter, before_id=self.rows[-1].id)
        older = await read_store(self.store.rows, query)
        if older is not None and not await self._load_cells(older, generation):
            older = None
        self._loading_older = False
        if older is None or generation != self._generation:
            return
        self.rows.extend(older)
        self.exhausted = len(older) < PAGE_SIZE
        self._changed()

    async def _load_cells(self, rows: Sequence[EventRow], generation: int) -> bool:
        """The handler's answers for a page of rows: one query (False: the load is stale)."""
        if self.cells is None or self.store is None or not rows:
            return True
        found = await read_store(self.store.latest_attempts, [row.id for row in rows])
        if found is None or generation != self._generation:
            return False
        for event_id in self.cells.load(found):
            self._forget_strips(event_id)
        return True

    def show_cell(self, event_id: int, cell: Cell) -> None:
        """A new attempt of ``event_id`` (forwarded, replayed): redraw just its row."""
        if self.cells is None:
            return
        self.cells.show(event_id, cell)
        self._forget_strips(event_id)
        highlighted = self.highlighted
        if highlighted is not None and highlighted.id == event_id:
            self._detail_strips = None
        self.refresh()

    def _forget_strips(self, event_id: int) -> None:
        cached = list(self._strips.keys())  # an LRUCache: not iterable itself
        for key in cached:
            if key[0] == event_id:
                self._strips.discard(key)

    def add(self, rows: Sequence[EventRow]) -> None:
        """Insert newly stored rows (oldest first) that match the current filter."""
        fresh = [row for row in rows if self.query_filter.matches(row)]
        if not fresh:
            return
        newest_first = list(reversed(fresh))
        if self.match_count is not None:
            self.match_count += len(fresh)
        self.rows[:0] = newest_first
        added = len(newest_first)
        if len(self.rows) > MAX_ROWS:
            del self.rows[MAX_ROWS:]
            self.exhausted = False
            if self.cells is not None and len(self.cells) > MAX_ROWS:
                self.cells.keep_only(row.id for row in self.rows)
        if self.following:
            self.cursor = 0
        else:
            # Keep what the user is reading where it is.
            self.unseen += added
            self.cursor = min(self.cursor + added, len(self.rows) - 1)
            self.scroll_to(y=self.scroll_offset.y + added, animate=False)
        self._changed()

    def replace_row(self, row: EventRow) -> None:
        for index, existing in enumerate(self.rows):
            if existing.id == row.id:
                self.rows[index] = row
                self._strips.clear()  # strips are keyed by id, and this one changed
                self._detail_strips = None
                self._changed()
                return

    @property
    def highlighted(self) -> EventRow | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def _changed(self) -> None:
        # Cached strips are keyed by (id, width, selected, focus), so they stay valid
        # when rows are added or the cursor moves; re-rendering them on every batch
        # was most of the list's cost under a stream of callbacks.
        extra = 0 if self.exhausted else 1
        # The detail strip covers the last lines of the view: the list is that much
        # longer, so that its last row can still scroll above the strip.
        rows = max(1, len(self.rows) + extra) + self.detail_height
        size = Size(self.scrollable_content_region.width, rows)
        if self._size_may_wait(size):
            if self._pending_size is None:
                self.set_timer(SIZE_DELAY, self._flush_size)
            self._pending_size = size
        else:
            self._pending_size = None
            self.virtual_size = size
        self._update_subtitle()
        self.refresh()

    def _size_may_wait(self, size: Size) -> bool:
        """Whether a new virtual size can wait for the next :data:`SIZE_DELAY` tick.

        A virtual size is a layout property: setting it reflows the whole screen.
        While the list follows the newest row at the top, a longer list only
        lengthens the scrollbar's track below what is shown, so under a stream of
        callbacks the track grows once a second instead of once per batch (the
        reflow was about a third of the dashboard's work per frame, measured with
        ``bench/tui.py``). Anything that moves the view applies it first, and so
        does the growth that makes the list overflow its pane: that one adds the
        scrollbar, which narrows every row (so a screen was drawn one way or the
        other depending on when the second's tick fell).
        """
        current = self.virtual_size
        return (
            self.following
            and self.scroll_offset.y == 0
            and size.width == current.width
            and size.height >= current.height
            and current.height > self.scrollable_content_region.height
        )

    def _flush_size(self) -> None:
        if self._pending_size is not None:
            self.virtual_size, self._pending_size = self._pending_size, None

    def _update_subtitle(self) -> None:
        if self.following or not self.unseen:
            follow = "" if self.following else "paused · f follows"
        else:
            follow = f"paused · {self.unseen} new · f follows"
        count = ""
        if self.filter_label and self.match_count is not None:
            count = f"{self.match_count} match" + ("" if self.match_count == 1 else "es")
        subtitle = " · ".join(part for part in (self.filter_label, count, follow) if part)
        if subtitle != self._subtitle or self.border_subtitle is None:
            self._subtitle = subtitle
            # Text, not a str: a str here would be parsed as markup (the filter is typed text).
            self.border_subtitle = Text(subtitle)

    # ------------------------------------------------------- rendering

    @property
    def detail_height(self) -> int:
        """Lines under the list for the selected row's whole text (see :func:`detail_lines`)."""
        return 0 if self.detail is None else detail_lines(self.scrollable_content_region.height)

    @property
    def list_height(self) -> int:
        """Lines of the view that show rows (the rest is the detail strip)."""
        return max(1, self.scrollable_content_region.height - self.detail_height)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        list_height = self.list_height
        if y >= list_height:
            return self._render_detail(y - list_height, width)
        index = self.scroll_offset.y + y
        if index < len(self.rows):
            row = self.rows[index]
            selected = index == self.cursor
            key = (row.id, width, selected, self.has_focus)
            strip = self._strips.get(key)
            if strip is None:
                strip = self._render_row(row, width, selected)
                self._strips[key] = strip
            return strip
        dim = self.get_component_rich_style("row-list--dim")
        if not self.rows and index == 0:
            return self._text_strip(self._empty_line(), width, dim)
        if index == len(self.rows) and not self.exhausted:
            self._request_older()
            return self._text_strip(Text("loading older events…"), width, dim)
        return Strip.blank(width, self.rich_style)

    def _empty_line(self) -> Text:
        """What an empty list says: its empty text, or that the filter matched nothing."""
        if self.filter_source:
            # The filter as typed, inert (never markup, never a control character).
            return Text("No match for ").append_text(safe(self.filter_source))
        return Text(self.empty_text)

    def _render_detail(self, line: int, width: int) -> Strip:
        """One line of the detail strip: the selected row's whole text, wrapped."""
        row = self.highlighted
        height = self.detail_height
        style = self.rich_style + self.get_component_rich_style("row-list--detail")
        if row is None or self.detail is None or line >= height:
            return Strip.blank(width, self.rich_style)
        key = (row.id, width, height)
        if self._detail_strips is None or self._detail_strips[0] != key:
            self._detail_strips = (key, self._detail_lines(row, width, height, style))
        strips = self._detail_strips[1]
        return strips[line] if line < len(strips) else Strip.blank(width, style)

    def _detail_lines(self, row: EventRow, width: int, height: int, style: Style) -> list[Strip]:
        assert self.detail is not None
        text = self.detail(row)
        cell = self.cells.cell(row.id) if self.cells is not None else None
        if cell is not None:
            text = Text.assemble(text, " · ", cell_sentence(cell))
        lines = fit_lines(text, self.app.console, max(1, width - 1), height)
        return [self._text_strip(Text(" ").append_text(line), width, style) for line in lines]

    def _render_row(self, row: EventRow, width: int, selected: bool) -> Strip:
        cell = self.cells.cell(row.id) if self.cells is not None else None
        if cell is None:
            text = self.formatter(row, width)
            text.truncate(width, overflow="ellipsis")
        else:
            # The handler's answer at the row's end; the row's own text gives way to it.
            end = cell_text(cell, width)
            room = max(1, width - end.cell_len - 1)
            text = self.formatter(row, room)
            text.truncate(room, overflow="ellipsis", pad=True)
            text.append(" ")
            text.append_text(end)
        base = self.rich_style
        if selected:
            base = base + self.get_component_rich_style("row-list--cursor")
        return self._text_strip(text, width, base, apply_base=selected)

    def _text_strip(self, text: Text, width: int, style: Style, apply_base: bool = True) -> Strip:
        return text_strip(text, self.app.console, width, style, under=apply_base)

    def _request_older(self) -> None:
        if self._loading_older or self.exhausted:
            return
        self._loading_older = True
        self._load_older(self._generation)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()
        self._detail_strips = None

    def on_resize(self, event: events.Resize) -> None:
        self._changed()

    # ------------------------------------------------------ navigation

    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh()
        row = self.highlighted
        if row is not None and old != new:
            self.post_message(self.Highlighted(self, row))

    def _move_to(self, index: int) -> None:
        if not self.rows:
            return
        self._flush_size()
        self.cursor = max(0, min(index, len(self.rows) - 1))
        height = self.list_height
        top = self.scroll_offset.y
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False)
        self._set_following(self.cursor == 0)
        if self.cursor >= len(self.rows) - 5:
            self._request_older()

    def _set_following(self, following: bool) -> None:
        if following:
            self.unseen = 0
        self.following = following
        self._update_subtitle()

    def action_cursor(self, delta: int) -> None:
        self._move_to(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self._move_to(self.cursor + direction * max(1, self.list_height - 1))

    def action_follow(self) -> None:
        self._flush_size()
        self.cursor = 0
        self.scroll_to(y=0, animate=False)
        self._set_following(True)

    def action_oldest(self) -> None:
        self._move_to(len(self.rows) - 1)

    def action_open(self) -> None:
        row = self.highlighted
        if row is not None:
            self.post_message(InspectEvent(row.id))

    def action_resend(self, edit: bool) -> None:
        """Send the selected event to the handler again (``edit``: an edited copy)."""
        row = self.highlighted
        if row is not None:
            self.post_message(ResendEvent(row.id, edit=edit))

    def on_click(self, event: events.Click) -> None:
        if event.y >= self.list_height:
            return  # the detail strip
        index = self.scroll_offset.y + event.y
        if 0 <= index < len(self.rows):
            self._move_to(index)
            if event.chain >= 2:
                self.action_open()

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new > 0:
            self._flush_size()
        if new > 0 and self.following and self.cursor == 0:
            # Scrolled away with the wheel: stop following, say so.
            self._set_following(False)
        bottom = new + self.list_height
        if bottom >= len(self.rows) - 5:
            self._request_older()
