"""The two small screens of replay and edit-and-send (``R`` / ``E``; see ``tui/resend.py``).

:class:`TargetScreen` asks once for the handler's URL when the monitor was started
without ``--forward-to``. :class:`EditBodyScreen` is the editor used when ``$EDITOR``
cannot be (no terminal, or none set): the body as pretty JSON, ``ctrl+s`` sends it, and
JSON that does not parse is sent as typed only after a one-sentence warning (a malformed
body is a fine thing to test a handler with, but rarely the one meant).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Static, TextArea

from ..keys import Scope, bindings


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a handler's URL (one sentence), or None when it can."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Give a whole URL, e.g. http://localhost:3000/tavus/webhook."
    return None


def json_problem(text: str) -> str | None:
    """Where ``text`` stops being JSON (``line 3, column 7: Expecting ','``), or None."""
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        return f"line {error.lineno}, column {error.colno}: {error.msg}"
    except (RecursionError, ValueError) as error:
        return str(error)
    return None


class TargetScreen(ModalScreen[str | None]):
    """Asks for the URL replays go to, when ``--forward-to`` gave none."""

    BINDINGS = bindings(Scope.TARGET)
    DEFAULT_CSS = """
    TargetScreen { align: center middle; }
    #target-box {
        width: 80;
        max-width: 100%;
        height: auto;
        border: round $accent;
        padding: 0 1;
        background: $surface;
    }
    #target-box Static { width: 1fr; }
    #target-error { color: $error; }
    """

    def compose(self) -> ComposeResult:
        with Vertical(id="target-box"):
            yield Static(Text("Send to which handler?", style="bold"))
            yield Static(
                Text(
                    "No --forward-to was given. Replays and edited copies go to this URL "
                    "until the dashboard quits."
                )
            )
            yield Input(placeholder="http://localhost:3000/tavus/webhook", id="target-input")
            yield Static(id="target-error")

    @on(Input.Submitted, "#target-input")
    def _submitted(self, message: Input.Submitted) -> None:
        problem = url_problem(message.value)
        if problem is not None:
            self.query_one("#target-error", Static).update(Text(problem))
            return
        self.dismiss(message.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


class EditBodyScreen(Screen[bytes | None]):
    """The body in an editor; ``ctrl+s`` sends it (see the module notes), ``esc`` cancels."""

    BINDINGS = bindings(Scope.EDITOR)
    DEFAULT_CSS = """
    EditBodyScreen #edit-title { height: auto; padding: 0 1; background: $panel; }
    EditBodyScreen #edit-area { height: 1fr; }
    EditBodyScreen #edit-warning {
        height: auto;
        padding: 0 1;
        background: $warning-muted;
        color: $text;
    }
    """

    def __init__(self, text: str, title: Text, *, warned: bool = False) -> None:
        super().__init__()
        self.text = text
        self.title_text = title
        self._warned_text: str | None = None
        """The text a warning was shown for: ``ctrl+s`` on it again sends it as typed."""
        self._warn_at_once = warned

    def compose(self) -> ComposeResult:
        yield Static(self.title_text, id="edit-title")
        # tab_behavior="focus": in "indent" mode the editor takes esc for itself.
        yield TextArea.code_editor(
            self.text, language="json", id="edit-area", soft_wrap=True, tab_behavior="focus"
        )
        yield Static(id="edit-warning")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#edit-warning", Static).display = False
        self.query_one("#edit-area", TextArea).focus()
        if self._warn_at_once:
            self._warn(self.text)

    @property
    def edited(self) -> str:
        return self.query_one("#edit-area", TextArea).text

    def _warn(self, text: str) -> bool:
        """Show why ``text`` is not JSON; False when it is."""
        problem = json_problem(text)
        if problem is None:
            return False
        self._warned_text = text
        warning = self.query_one("#edit-warning", Static)
        warning.update(
            Text(
                f"This is not valid JSON ({problem}): ctrl+s again sends it as typed, esc cancels."
            )
        )
        warning.display = True
        return True

    def action_send(self) -> None:
        text = self.edited
        if text != self._warned_text and self._warn(text):
            return
        self.dismiss(text.encode("utf-8"))

    def action_cancel(self) -> None:
        self.dismiss(None)
