"""The top of the screen: the callback URL, honest about whether Tavus can reach it.

The URL is never wrapped inside itself: it gets a row of its own when the label does not
fit beside it, and when even that is too narrow it is split only before ``/webhook``
(else after its last ``/``), so the token stays whole on one row and can be selected with
the mouse. When the URL is the local one (no tunnel, or it failed) the bar says that
Tavus cannot reach it, and the tunnel's advice stays on screen until the tunnel works.
Below :data:`COMPACT_BELOW` rows the bar drops its border and the local URL's row, so an
80x24 terminal keeps room for the panes.
"""

from __future__ import annotations

import textwrap
import time
from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from ..text import ago, counted

COMPACT_BELOW = 30
"""Screen heights below this get the compact bar (no border, no local URL row)."""
LABEL_WIDTH = 16
"""Columns of a row's label ("Local URL only" and two spaces)."""
KEEP = "\u00a0"
"""Joins words that must stay on one row (a key and what it does: ``a`` ``pastes``)."""
COPY_HINT = "c copies it"


@dataclass(slots=True)
class MonitorState:
    """What the bar shows; the app updates it and calls :meth:`UrlBar.show`."""

    callback_url: str | None = None
    local_url: str | None = None
    local_only: str | None = None
    """Why Tavus cannot reach the callback URL (it is the local one), in a few words
    ("the tunnel failed"); None while the URL is public."""
    server: str = "starting…"
    server_ok: bool = True
    tunnel: str = "…"
    """The tunnel's state (public URL) or, while the URL is local only, what went wrong."""
    tunnel_style: str = ""
    """Colour of the tunnel state: green when up, yellow while it is not, red on failure."""
    advice: str | None = None
    """What to do about the tunnel; shown until the tunnel works. Words joined by
    :data:`KEEP` stay on one row."""
    events: int = 0
    rejected: int = 0
    last_event_at: float | None = None
    attention: int = 0
    """How many things need attention (``!`` lists them)."""
    attention_urgent: bool = False
    """Whether one of them is urgent (red) rather than worth a look (yellow)."""


def keep_together(text: str) -> str:
    """``text`` as words that stay on one row (a key hint such as ``t retries``)."""
    return text.replace(" ", KEEP)


def url_rows(label: str, url: str, width: int) -> list[list[tuple[str, str]]]:
    """The URL's rows, each a list of ``(text, kind)`` with kind ``label``, ``url`` or ``hint``.

    The label sits beside the URL when both fit (with the copy hint when that fits too);
    otherwise the label (and hint) has a row of its own and the URL starts at column 0,
    split before ``/webhook`` (else after its last ``/``) only when it is wider than the
    bar: never inside the token.
    """
    head = f"{label:<{LABEL_WIDTH}}"
    if len(head) + len(url) + 3 + len(COPY_HINT) <= width:
        return [[(head, "label"), (url, "url"), (f"   {COPY_HINT}", "hint")]]
    if len(head) + len(url) <= width:
        return [[(head, "label"), (url, "url")]]
    rows = [[(label, "label"), (f" ({COPY_HINT})", "hint")]]
    if len(url) <= width:
        return [*rows, [(url, "url")]]
    split = url.find("/webhook")
    if split <= 0 or split > width or len(url) - split > width:
        split = url.rfind("/") + 1
    return [*rows, [(url[:split], "url")], [(url[split:], "url")]]


def wrapped(text: str, width: int, indent: str = "") -> str:
    """``text`` wrapped at spaces only (never inside a URL or a key hint), rows joined."""
    rows = textwrap.wrap(
        text,
        width=max(width, 10),
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return "\n".join(rows).replace(KEEP, " ")


class UrlBar(Vertical):
    """Callback URL with the copy key, the local URL, the tunnel, then server and counts."""

    DEFAULT_CSS = """
    UrlBar { height: auto; }
    """

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state = MonitorState()
        self._shown: dict[str, Text] = {}
        """What each line shows now: a line is updated only when its text changes."""
        self._laid_out_for: tuple[int, bool] | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="callback-url")
        yield Static(id="local-url")
        yield Static(id="tunnel-status")
        yield Static(id="monitor-status")

    def on_mount(self) -> None:
        self.show()
        self.set_interval(1.0, self._tick)

    def on_resize(self, event: events.Resize) -> None:
        self.show()

    @property
    def compact(self) -> bool:
        return self.app.size.height < COMPACT_BELOW

    def _width(self) -> int:
        """Columns the rows may use (the content width; before layout, the screen's)."""
        width = self.content_size.width
        if width <= 0:
            width = self.app.size.width - (2 if self.compact else 4)
        return max(width, 20)

    def _tick(self) -> None:
        # One line, never wrapped (no_wrap): its height cannot change, so no layout pass.
        # Under a burst this runs once per batch, and a layout pass is a reflow of the
        # whole screen (about a third of a frame's cost, measured with bench/tui.py).
        if self._laid_out_for != (self._width(), self.compact):
            self.show()  # the screen's height crossed COMPACT_BELOW (no resize reaches us)
            return
        self._update("monitor-status", self._status_line(), layout=False)

    def _update(self, line_id: str, text: Text, *, layout: bool = True) -> None:
        shown = self._shown.get(line_id)
        if shown == text:
            return
        self._shown[line_id] = text
        self.query_one(f"#{line_id}", Static).update(text, layout=layout or shown is None)

    def show(self) -> None:
        state = self.state
        compact = self.compact
        if compact != self.has_class("-compact"):
            self.set_class(compact, "-compact")
            self.call_after_refresh(self.show)  # again, at the width the new border leaves
        width = self._width()
        self._laid_out_for = (width, compact)
        local_only = state.local_only is not None
        label = "Local URL only" if local_only else "Callback URL"
        styles = {
            "label": "bold red" if local_only else "bold",
            "url": "bold underline",
            "hint": "dim",
        }
        url = Text()
        if state.callback_url:
            for number, row in enumerate(url_rows(label, state.callback_url, width)):
                if number:
                    url.append("\n")
                for text, kind in row:
                    url.append(text, style=styles[kind])
        else:
            url.append(f"{label:<{LABEL_WIDTH}}", style="bold")
            url.append("not available yet", style="dim italic")
        self._update("callback-url", url)

        local = self.query_one("#local-url", Static)
        shows_local = (
            not compact
            and not local_only
            and bool(state.local_url)
            and state.local_url != state.callback_url
        )
        local.display = shows_local
        if shows_local:
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(f"{'Local URL':<{LABEL_WIDTH}}", style="dim")
            line.append(state.local_url or "", style="dim")
            self._update("local-url", line)

        # The tunnel's state, then what to do about it: one paragraph, so no row is
        # left half empty, with the advice until the tunnel works.
        if local_only:
            sentence = f"Tavus cannot reach it: {state.local_only}."
            if state.tunnel:
                sentence += f" {state.tunnel}"
            indent = ""
        else:
            sentence = f"{'Tunnel':<{LABEL_WIDTH}}{state.tunnel}"
            indent = " " * LABEL_WIDTH
        paragraph = f"{sentence} {state.advice}" if state.advice else sentence
        tunnel = Text(wrapped(paragraph, width, indent))
        start = 0 if local_only else LABEL_WIDTH
        if not local_only:
            tunnel.stylize("dim", 0, LABEL_WIDTH)
        tunnel.stylize(state.tunnel_style or ("yellow" if local_only else ""), start, len(sentence))
        if state.advice:
            tunnel.stylize("bold", len(sentence) + 1, len(tunnel))
        self._update("tunnel-status", tunnel)
        # One unwrapped line: no layout pass (see _tick), though show() runs once per batch.
        self._update("monitor-status", self._status_line(), layout=False)

    def _status_line(self) -> Text:
        state = self.state
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"{'Server':<{LABEL_WIDTH}}", style="dim")
        line.append(state.server, style="" if state.server_ok else "bold red")
        line.append("  ·  ", style="dim")
        if state.attention:
            style = "bold red" if state.attention_urgent else "bold yellow"
            line.append(f"{state.attention:,} need attention", style=style)
            line.append(" (! lists)", style="dim")
            line.append("  ·  ", style="dim")
        line.append(counted(state.events, "event"), style="bold")
        line.append("  ·  ", style="dim")
        line.append(f"{state.rejected:,} rejected", style="yellow" if state.rejected else "dim")
        line.append("  ·  last ", style="dim")
        line.append(ago(state.last_event_at, time.time()))
        return line
