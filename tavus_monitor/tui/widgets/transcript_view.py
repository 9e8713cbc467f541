"""A conversation read as a conversation: analysis, results, then the turns.

Transcripts of long calls run to megabytes, so this is a Line-API view: the
text is wrapped once per width into plain lines, and only visible lines are
turned into strips. The system prompt (usually the first, longest turn) is
collapsed to a line until the user expands it.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from rich.segment import Segment
from rich.text import Text
from textual import events
from textual.cache import LRUCache
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ... import callbacks as cb
from ...conversation import ConversationView
from ...sanitize import printable
from ..keys import Scope, bindings
from ..panes import InspectEvent
from ..text import SEVERITY_STYLES, clock, duration, safe

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

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view: ConversationView | None = None
        self.system_expanded = False
        self._lines: list[_Line] = []
        self._width = 0
        self._strips: LRUCache[tuple[int, int], Strip] = LRUCache(512)

    def show(self, view: ConversationView | None) -> None:
        same = self.view is not None and view is not None
        same = same and self.view.conversation_id == view.conversation_id  # type: ignore[union-attr]
        self.view = view
        if not same:
            self.system_expanded = False
        self._rebuild()
        if not same:
            self.scroll_to(y=0, animate=False)

    def _rebuild(self) -> None:
        width = max(20, self.scrollable_content_region.width or 80)
        self._width = width
        self._lines = self._layout(width)
        self._strips.clear()
        self.virtual_size = Size(width, len(self._lines))
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
        for turn in view.turns:
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
            collapsed = f"{heading}  (collapsed: {len(content):,} chars, {more} lines; e expands)"
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
            segments = [
                Segment(s.text, self.rich_style + s.style if s.style else self.rich_style)
                for s in text.render(self.app.console, end="")
            ]
            strip = Strip(segments).crop_extend(0, width, self.rich_style).simplify()
            self._strips[key] = strip
        return strip

    def on_resize(self, event: events.Resize) -> None:
        if self.scrollable_content_region.width != self._width:
            self._rebuild()

    def action_toggle_system(self) -> None:
        self.system_expanded = not self.system_expanded
        self._rebuild()

    def action_open(self) -> None:
        if self.view is not None and self.view.transcript is not None:
            self.post_message(InspectEvent(self.view.transcript.id))

    def action_page_up(self) -> None:
        self.scroll_page_up(animate=False)

    def action_page_down(self) -> None:
        self.scroll_page_down(animate=False)

    def summary_text(self) -> Text:
        """For tests and the palette: the visible text as one Text."""
        return safe("\n".join(line.text for line in self._lines), keep_newlines=True)
