"""A yes-or-no question before something that cannot be taken back (ending a call)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from ..keys import Scope, bindings


class ConfirmScreen(ModalScreen[bool]):
    """``question`` (plain text, never markup), ``y`` or ``n``; dismissed with the answer."""

    BINDINGS = bindings(Scope.CONFIRM)

    def __init__(self, question: Text) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(self.question)
            yield Static(Text("y does it  ·  n or esc leaves it", style="dim"))

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
