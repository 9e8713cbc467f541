"""A conversation read as a conversation: analysis, results, then the turns.

Transcripts of long calls run to megabytes, so this is a Line-API view: the
text is wrapped once per width into plain lines, and only visible lines are
turned into strips. The system prompt (usually the first, longest turn) is
collapsed to a line until the user expands it.

``/`` finds words in what is shown: the matches are found once per layout (a
word per wrapped line, as :func:`tavus_monitor.search.find_spans` matches them:
whole words, or their starts while typing) and only the visible lines are
highlighted as they are drawn, so finding in a long call costs one pass over its
lines, not a redraw of all of them.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ... import callbacks as cb
from ...conversation import ConversationView
from ...sanitize import printable
from ...search import find_spans, terms
from ..keys import Scope, bindings
from ..panes import InspectEvent
from ..text import SEVERITY_STYLES, clock, counted, duration, safe, text_strip

MATCH_STYLE = "black on yellow"
CURRENT_MATCH_STYLE = "bold black on dark_orange"

ROLE_STYLES = {
    "system": "dim italic",
    "user": "bold cyan",
    "assistant": "bold green",
    "tool": "bold magenta",
}


@dataclass(frozen=True, slots=True)
class _Line:
    text: str
    style: str = ""
    indent: int = 0


class TranscriptView(ScrollView, can_focus=True):
    """The selected conversation's transcript and post-call results."""

    # Lines are wrapped to the width once; a scrollbar appearing later would cut
    # their ends off, so its column is always kept.
    DEFAULT_CSS = """
    TranscriptView { scrollbar-gutter: stable; }
    """

    BINDINGS = bindings(Scope.TRANSCRIPTS)
    """Generated from the key table (``keys.py``), like the help and the README."""

    class FindRequested(Message):
        """``/``: the pane opens its find field."""

    class FindChanged(Message):
        """The find's matches or its current match changed (the pane shows k of N)."""

        def __init__(self, current: int, total: int, words: str) -> None:
            super().__init__()
            self.current = current
            """From 1; 0 when there is no match."""
            self.total = total
            self.words = words

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view: ConversationView | None = None
        self.system_expanded = False
        self._lines: list[_Line] = []
        self._width = 0
        self._strips: LRUCache[tuple[int, int], Strip] = LRUCache(512)
        self.find_words = ""
        self.matches: list[tuple[int, int, int]] = []
        """The find's matches: ``(line, start, end)`` in the shown lines, in order."""
        self.current_match = 0
        self._matches_by_line: dict[int, list[int]] = {}
        self._turn_starts: dict[int, int] = {}
        """The line each turn (numbered from 1, as the search index numbers them) starts at."""

    def show(self, view: ConversationView | None) -> None:
        same = self.view is not None and view is not None
        same = same and self.view.conversation_id == view.conversation_id  # type: ignore[union-attr]
        self.view = view
        if not same:
            self.system_expanded = False
            self.refresh_bindings()
            self.current_match = 0
        self._rebuild()
        if not same:
            self.scroll_to(y=0, animate=False)

    def _rebuild(self) -> None:
        width = max(20, self.scrollable_content_region.width or 80)
        self._width = width
        self._turn_starts = {}
        self._lines = self._layout(width)
        self._strips.clear()
        self.virtual_size = Size(width, len(self._lines))
        self._find_matches()
        self.refresh()

    def _layout(self, width: int) -> list[_Line]:
        view = self.view
        if view is None:
            return [_Line("Pick a conversation on the left to read it.", "dim")]
        lines: list[_Line] = []
        add = lines.append
        ended = ""
        if view.shutdown_reason is not None:
            ended = f" · ended: {view.shutdown_reason.words}"
        elif not view.is_over:
            ended = " · in progress (no shutdown yet)"
        call = f" · call {duration(view.call_seconds)}" if view.call_seconds is not None else ""
        for part in textwrap.wrap(f"{view.conversation_id}{call}{ended}", width):
            add(_Line(part, "bold"))
        if view.analysis is not None:
            analysis = view.analysis
            text = (
                f"turns: {analysis.user_turns} user · {analysis.assistant_turns} assistant · "
                f"{analysis.total_turns} total"
            )
            if analysis.tool_turns:
                text += f" · {analysis.tool_turns} tool"
            if analysis.talk_seconds:
                talk = " · ".join(
                    f"{role} {duration(seconds)}" for role, seconds in analysis.talk_seconds.items()
                )
                text += f"   talk time: {talk}"
            for part in textwrap.wrap(text, width, subsequent_indent="  "):
                add(_Line(part))
        for line in self._results(view):
            for part in textwrap.wrap(line.text, width, subsequent_indent="  ") or [""]:
                add(_Line(part, line.style))
        add(_Line("─" * width, "dim"))
        if view.transcript is None:
            add(_Line("No transcript yet: it arrives right after the shutdown.", "dim italic"))
            return lines
        for number, turn in enumerate(view.turns, start=1):
            self._turn_starts[number] = len(lines)
            lines.extend(self._turn_lines(turn, width))
        return lines

    def _results(self, view: ConversationView) -> list[_Line]:
        """One line per result, as the registry orders them (``event_types.RESULTS``):
        its summary in its severity's colour, and the recording with its length."""
        lines: list[_Line] = []
        for event in view.results:
            if event is view.recording and view.recording_info is not None:
                rec = view.recording_info
                length = f" ({duration(rec.duration)})" if rec.duration is not None else ""
                text = f"recording: {rec.location or '(no location)'}{length}"
                lines.append(_Line(text, "green"))
            else:
                lines.append(_Line(event.summary, SEVERITY_STYLES[event.severity]))
        return lines

    def _turn_lines(self, turn: cb.Turn, width: int) -> list[_Line]:
        role = turn.role
        marker = "⚙ " if role == "tool" else "▍"
        timing = []
        if turn.seconds_from_start is not None:
            timing.append(f"+{duration(turn.seconds_from_start)}")
        elif turn.at is not None:
            timing.append(clock(turn.at))
        if turn.duration is not None:
            timing.append(f"{turn.duration:.1f}s")
        heading = f"{marker}{role}" + (f"  {' · '.join(timing)}" if timing else "")
        content = printable(turn.content, keep_newlines=True)
        if role == "system" and not self.system_expanded:
            first = content.strip().splitlines()[0] if content.strip() else ""
            more = content.count("\n") + 1
            collapsed = (
                f"{heading}  (collapsed: {counted(len(content), 'char')}, "
                f"{counted(more, 'line')}; e expands)"
            )
            return [
                *(
                    _Line(part, ROLE_STYLES["system"])
                    for part in textwrap.wrap(collapsed, width, subsequent_indent="  ")
                ),
                _Line(textwrap.shorten(first, max(10, width - 4), placeholder=" …"), "dim", 2),
            ]
        lines = [_Line(heading, ROLE_STYLES.get(role, "bold"))]
        for paragraph in content.split("\n"):
            wrapped = textwrap.wrap(
                paragraph, max(10, width - 2), break_long_words=True, replace_whitespace=False
            )
            lines.extend(_Line(part, "", 2) for part in wrapped or [""])
        lines.append(_Line(""))
        return lines

    # ------------------------------------------------------------ render

    def render_line(self, y: int) -> Strip:
        index = self.scroll_offset.y + y
        width = self.scrollable_content_region.width
        if index >= len(self._lines):
            return Strip.blank(width, self.rich_style)
        key = (index, width)
        strip = self._strips.get(key)
        if strip is None:
            line = self._lines[index]
            shown = " " * line.indent + printable(line.text)
            text = Text(shown, style=line.style, no_wrap=True)
            for number in self._matches_by_line.get(index, ()):
                _, start, end = self.matches[number]
                current = number == self.current_match
                style = CURRENT_MATCH_STYLE if current else MATCH_STYLE
                text.stylize(style, line.indent + start, line.indent + end)
            strip = text_strip(text, self.app.console, width, self.rich_style)
            self._strips[key] = strip
        return strip

    def on_resize(self, event: events.Resize) -> None:
        if self.scrollable_content_region.width != self._width:
            self._rebuild()
        if self.matches:  # the find field opening shortens the view: keep the match in it
            self.call_after_refresh(self._go_to_match)

    def action_expand_system(self) -> None:
        self._expand_system(True)

    def action_collapse_system(self) -> None:
        self._expand_system(False)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """``e`` expands or collapses: the footer shows which it does now."""
        if action == "expand_system":
            return not self.system_expanded
        if action == "collapse_system":
            return self.system_expanded
        return True

    def _expand_system(self, expanded: bool) -> None:
        self.system_expanded = expanded
        self.refresh_bindings()
        self._rebuild()

    def action_open(self) -> None:
        if self.view is not None and self.view.transcript is not None:
            self.post_message(InspectEvent(self.view.transcript.id))

    # ------------------------------------------------------------ find

    def action_find(self) -> None:
        self.post_message(self.FindRequested())

    def find(self, words: str) -> None:
        """Highlight ``words`` (the last one also as the start of a word, as it is typed)."""
        self.find_words = words
        self.current_match = 0
        self._find_matches()
        self._strips.clear()
        self.refresh()
        self._go_to_match()

    def _find_matches(self) -> None:
        wanted = terms(self.find_words)
        if wanted:
            wanted[-1] = (wanted[-1][0], True)
        matches = [
            (index, start, end)
            for index, line in enumerate(self._lines)
            for start, end in find_spans(printable(line.text), wanted)
        ]
        self.matches = matches
        self._matches_by_line = {}
        for number, (index, _, _) in enumerate(matches):
            self._matches_by_line.setdefault(index, []).append(number)
        self.current_match = min(self.current_match, max(0, len(matches) - 1))
        self._tell_find()

    def _tell_find(self) -> None:
        total = len(self.matches)
        self.post_message(
            self.FindChanged(self.current_match + 1 if total else 0, total, self.find_words)
        )

    def action_find_next(self, step: int) -> None:
        if not self.matches:
            if self.find_words:
                self.notify("No match in this transcript.", markup=False)
            return
        self.current_match = (self.current_match + step) % len(self.matches)
        self._strips.clear()
        self.refresh()
        self._go_to_match()
        self._tell_find()

    def _go_to_match(self) -> None:
        """Scroll the current match into view (a third of the way down)."""
        if not self.matches:
            return
        line = self.matches[self.current_match][0]
        height = self.scrollable_content_region.height or 10
        top = self.scroll_offset.y
        if not top <= line < top + height:
            self.scroll_to(y=max(0, line - height // 3), animate=False)

    async def action_clear_find(self) -> None:
        """Esc: close the find (the pane hides its field); without one, the dashboard's esc."""
        if self.find_words:
            self.find("")
            return
        await self.run_action("app.escape")

    def go_to_turn(self, turn: int, words: str) -> None:
        """Show turn ``turn`` (from 1) with ``words`` found: the search screen's Enter."""
        view = self.view
        if (
            view is not None
            and 0 < turn <= len(view.turns)
            and view.turns[turn - 1].role == "system"
            and not self.system_expanded
        ):
            self._expand_system(True)
        self.find_words = words
        self.current_match = 0
        self._find_matches()
        start = self._turn_starts.get(turn)
        if start is not None:
            after = [n for n, (line, _, _) in enumerate(self.matches) if line >= start]
            line = start
            if after:
                self.current_match = after[0]
                line = self.matches[after[0]][0]
            # The turn's heading, unless its match is further down than that shows.
            height = self.scrollable_content_region.height or 10
            target = start if line - start < height - 2 else line - height // 3
            self.scroll_to(y=target, animate=False)
        self._strips.clear()
        self.refresh()
        if start is None:
            self._go_to_match()
        self._tell_find()

    def action_page_up(self) -> None:
        self.scroll_page_up(animate=False)

    def action_page_down(self) -> None:
        self.scroll_page_down(animate=False)

    def summary_text(self) -> Text:
        """For tests and the palette: the visible text as one Text."""
        return safe("\n".join(line.text for line in self._lines), keep_newlines=True)
