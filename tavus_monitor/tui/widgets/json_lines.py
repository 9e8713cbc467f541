"""Pretty JSON too long for a TextArea: a read-only view that paints only what is on screen.

``TextArea.load_text`` wraps, measures and (with tree-sitter) highlights the
whole document up front: seconds for a multi-megabyte transcript. This Line-API
view holds the lines and highlights just the visible ones, so its cost is the
split, whatever the size.
"""

from __future__ import annotations

from rich.highlighter import JSONHighlighter
from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.geometry import Size
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

    def __init__(self, lines: list[str], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines = lines
        self.match: tuple[int, int, int] | None = None
        self._texts: LRUCache[int, Text] = LRUCache(1024)

    def on_mount(self) -> None:
        width = max(map(len, self.lines), default=0)
        self.virtual_size = Size(width, len(self.lines))

    def show_match(self, row: int, column: int, length: int) -> None:
        """Highlight one search match and scroll it to the middle."""
        self.match = (row, column, length)
        self._texts.clear()
        self.scroll_to(y=max(0, row - self.scrollable_content_region.height // 2), animate=False)
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
        index = scroll_y + y
        width = self.scrollable_content_region.width
        base: Style = self.rich_style
        if index >= len(self.lines):
            return Strip.blank(width, base)
        text = self._text(index)
        strip = Strip(text.render(self.app.console), text.cell_len)
        return strip.crop_extend(scroll_x, scroll_x + width, base).apply_style(base)
