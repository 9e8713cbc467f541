"""A small screen that takes an ngrok authtoken (masked) for the running monitor.

An authtoken set in another shell never reaches a running process, so the dashboard takes
one here (``a``), uses it at once and, if asked, saves it to ngrok's config file. The
token is a secret: the input is masked, and the choice's ``repr`` leaves it out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Static

from ..keys import Scope, bindings
from ..tunnel_header import AUTHTOKEN_PAGE


@dataclass(frozen=True, slots=True)
class AuthtokenChoice:
    token: str = field(repr=False)
    save: bool


class AuthtokenScreen(ModalScreen[AuthtokenChoice | None]):
    """A masked input for the token and a box to save it for later runs."""

    BINDINGS = bindings(Scope.AUTHTOKEN)
    DEFAULT_CSS = """
    AuthtokenScreen { align: center middle; }
    #authtoken-box {
        width: 80;
        max-width: 100%;
        height: auto;
        border: round $accent;
        padding: 0 1;
        background: $surface;
    }
    #authtoken-box Static { width: 1fr; }
    #authtoken-error { color: $error; }
    """

    def compose(self) -> ComposeResult:
        with Vertical(id="authtoken-box"):
            yield Static(Text("ngrok authtoken", style="bold"))
            yield Static(
                Text(
                    f"Paste the authtoken from {AUTHTOKEN_PAGE}. The tunnel is retried with "
                    "it at once; it is never shown or logged."
                )
            )
            yield Input(password=True, placeholder="authtoken", id="authtoken-input")
            yield Checkbox(
                "Also save it to ngrok's config file, so later runs use it",
                id="authtoken-save",
            )
            yield Static("", id="authtoken-error")
            yield Static(Text("enter uses it  ·  esc cancels", style="dim"))

    def on_mount(self) -> None:
        self.query_one("#authtoken-input", Input).focus()

    @on(Input.Submitted, "#authtoken-input")
    def _submitted(self, message: Input.Submitted) -> None:
        message.stop()
        token = message.value.strip()
        if not token or any(character.isspace() for character in token):
            self.query_one("#authtoken-error", Static).update(
                "An authtoken is one word with no spaces: paste it again."
            )
            return
        save = self.query_one("#authtoken-save", Checkbox).value
        self.dismiss(AuthtokenChoice(token, save))

    def action_cancel(self) -> None:
        self.dismiss(None)
