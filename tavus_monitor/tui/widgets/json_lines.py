"""Pretty JSON too long for a TextArea: a read-only view that paints only what is on screen.

``TextArea.load_text`` wraps, measures and (with tree-sitter) highlights the
whole document up front: seconds for a multi-megabyte transcript. This Line-API
view holds the lines and highlights just the visible ones, so its cost is the
split, whatever the size. Wrapped (``wrap``), it maps each screen row to a piece
of a line: one pass over the lines, repeated when the width changes.
"""

from __future__ import annotations

from rich.cells import cell_len, chop_cells
from rich.highlighter import JSONHighlighter
from rich.style import Style
from rich.text import Text
from textual import events
from textual.cache import LRUCache
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..keys import Scope, bindings

_HIGHLIGHT = JSONHighlighter()


class JsonLines(ScrollView, can_focus=True):
    COMPONENT_CLASSES = {"json-lines--match"}

    DEFAULT_CSS = """
    JsonLines > .json-lines--match { background: $warning 60%; }
    """

    BINDINGS = bindings(Scope.LONG_JSON)
    """Generated from the key table (``keys.py``), like the help and the README."""

    wrap: reactive[bool] = reactive(False, init=False)
    """Long lines continue on the next rows instead of running off to the right."""

    def __init__(self, lines: list[str], *, wrap: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.set_reactive(JsonLines.wrap, wrap)
        self.lines = lines
        self.match: tuple[int, int, int] | None = None
        self._texts: LRUCache[int, Text] = LRUCache(1024)
        self._rows: list[tuple[int, int]] = []
        """Wrapped: each screen row's line and the character it starts at."""
        self._first_row: list[int] = []
        """Wrapped: each line's first screen row."""
        self._wrapped_at = 0

    def on_mount(self) -> None:
        self._lay_out()

    def watch_wrap(self) -> None:
        self._lay_out()

    def on_resize(self, event: events.Resize) -> None:
        if self.wrap and self.scrollable_content_region.width != self._wrapped_at:
            self._lay_out()

    def _lay_out(self) -> None:
        if not self.wrap:
            self._rows, self._first_row, self._wrapped_at = [], [], 0
            width = max(map(len, self.lines), default=0)
            self.virtual_size = Size(width, len(self.lines))
        else:
            width = max(8, self.scrollable_content_region.width)
            rows: list[tuple[int, int]] = []
            first_row: list[int] = []
            for index, line in enumerate(self.lines):
                first_row.append(len(rows))
                if len(line) <= width and line.isascii():
                    rows.append((index, 0))
                elif line.isascii():
                    rows.extend((index, start) for start in range(0, len(line), width))
                else:
                    start = 0
                    for piece in chop_cells(line, width) or [""]:
                        rows.append((index, start))
                        start += len(piece)
            self._rows, self._first_row, self._wrapped_at = rows, first_row, width
            self.virtual_size = Size(width, len(rows))
            self.scroll_to(x=0, animate=False)
        self.refresh()

    def _screen_row(self, row: int, column: int) -> int:
        """The screen row showing ``column`` of line ``row``."""
        if not self.wrap:
            return row
        screen_row = self._first_row[row]
        following = screen_row + 1
        while following < len(self._rows) and self._rows[following][0] == row:
            if self._rows[following][1] > column:
                break
            screen_row = following
            following += 1
        return screen_row

    def show_match(self, row: int, column: int, length: int) -> None:
        """Highlight one search match, scroll it to the middle, sideways only if it is cut."""
        self.match = (row, column, length)
        self._texts.clear()
        view = self.scrollable_content_region
        y = max(0, self._screen_row(row, column) - view.height // 2)
        x = self.scroll_x
        if not self.wrap:
            start = cell_len(self.lines[row][:column])
            end = start + cell_len(self.lines[row][column : column + length])
            if start < x or end > x + view.width:
                x = max(0, min(start, end - view.width + 1))
        self.scroll_to(x=x, y=y, animate=False)
        self.refresh()

    def _text(self, index: int) -> Text:
        text = self._texts.get(index)
        if text is None:
            text = Text(self.lines[index], no_wrap=True, end="")
            _HIGHLIGHT.highlight(text)
            if self.match is not None and self.match[0] == index:
                _, column, length = self.match
                style = self.get_component_rich_style("json-lines--match")
                text.stylize(style, column, column + length)
            self._texts[index] = text
        return text

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        row = scroll_y + y
        width = self.scrollable_content_region.width
        base: Style = self.rich_style
        if row >= (len(self._rows) if self.wrap else len(self.lines)):
            return Strip.blank(width, base)
        if self.wrap:
            index, start = self._rows[row]
            following = self._rows[row + 1] if row + 1 < len(self._rows) else None
            end = following[1] if following is not None and following[0] == index else None
            text = self._text(index)[start:end]
        else:
            text = self._text(row)
        strip = Strip(text.render(self.app.console), text.cell_len)
        return strip.crop_extend(scroll_x, scroll_x + width, base).apply_style(base)
