"""The top of the screen: the callback URL, large, and the monitor's state."""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from ..text import ago


@dataclass(slots=True)
class MonitorState:
    """What the bar shows; the app updates it and calls :meth:`UrlBar.show`."""

    callback_url: str | None = None
    local_url: str | None = None
    server: str = "starting…"
    server_ok: bool = True
    tunnel: str = "…"
    tunnel_style: str = ""
    """Colour of the tunnel state: green when up, yellow while it is not, red on failure."""
    events: int = 0
    rejected: int = 0
    last_event_at: float | None = None


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

    def compose(self) -> ComposeResult:
        yield Static(id="callback-url")
        yield Static(id="local-url")
        yield Static(id="tunnel-status")
        yield Static(id="monitor-status")

    def on_mount(self) -> None:
        self.show()
        self.set_interval(1.0, self._tick)

    def _tick(self) -> None:
        # One line, never wrapped (no_wrap): its height cannot change, so no layout pass.
        # Under a burst this runs once per batch, and a layout pass is a reflow of the
        # whole screen (about a third of a frame's cost, measured with bench/tui.py).
        self._update("monitor-status", self._status_line(), layout=False)

    def _update(self, line_id: str, text: Text, *, layout: bool = True) -> None:
        shown = self._shown.get(line_id)
        if shown == text:
            return
        self._shown[line_id] = text
        self.query_one(f"#{line_id}", Static).update(text, layout=layout or shown is None)

    def show(self) -> None:
        url = Text()
        url.append("Callback URL  ", style="bold")
        if self.state.callback_url:
            url.append(self.state.callback_url, style="bold underline")
            url.append("   c copies it", style="dim")
        else:
            url.append("not available yet", style="dim italic")
        self._update("callback-url", url)
        local = self.query_one("#local-url", Static)
        shows_local = bool(self.state.local_url) and self.state.local_url != self.state.callback_url
        local.display = shows_local
        if shows_local:
            line = Text()
            line.append("Local URL     ", style="dim")
            line.append(self.state.local_url or "", style="dim")
            self._update("local-url", line)
        tunnel = Text()
        tunnel.append("Tunnel        ", style="dim")
        tunnel.append(self.state.tunnel, style=self.state.tunnel_style)
        self._update("tunnel-status", tunnel)
        self._tick()

    def _status_line(self) -> Text:
        state = self.state
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append("Server        ", style="dim")
        line.append(state.server, style="" if state.server_ok else "bold red")
        line.append("  ·  ", style="dim")
        line.append(f"{state.events:,} events", style="bold")
        line.append("  ·  ", style="dim")
        line.append(f"{state.rejected:,} rejected", style="yellow" if state.rejected else "dim")
        line.append("  ·  last ", style="dim")
        line.append(ago(state.last_event_at, time.time()))
        return line
