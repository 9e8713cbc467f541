"""The create form (``n`` on the Conversations screen): a conversation that calls back here.

What Tavus's own tools cannot do is fill in ``callback_url``; the form shows the monitor's
public callback URL and sends it, so the call's callbacks land in this dashboard. The
creation runs in a worker (the form stays usable); Tavus's answer, ``conversation_url``
above all, is shown in the form with ``y`` to copy it, and a refusal is one sentence in a
toast with the fields kept as typed, to fix and send again.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Static

from ..keys import Scope, bindings
from ..panes import CopyText
from ..tavus_calls import CallFailed, Made, NewConversation, TavusCalls
from ..text import safe


class NewConversationScreen(ModalScreen[Made | None]):
    """Replica, persona, name, test mode and maximum duration; the callback URL is given."""

    BINDINGS = bindings(Scope.NEW_CONVERSATION)

    def __init__(
        self, calls: TavusCalls, callback_url: str, made: Callable[[Made], None] | None = None
    ) -> None:
        super().__init__()
        self.calls = calls
        self.callback_url = callback_url
        self._made_callback = made
        self.made: Made | None = None
        """The conversation created, once Tavus answered."""
        self.creating = False

    def compose(self) -> ComposeResult:
        with Vertical(id="new-conversation-box"):
            yield Static(Text("New conversation", style="bold"))
            # Compact fields (one line each): the whole form fits 80×24.
            yield Input(placeholder="replica_id (a face id, r…)", id="new-replica", compact=True)
            yield Input(placeholder="persona_id (a PAL id, p…)", id="new-persona", compact=True)
            yield Input(placeholder="conversation_name (optional)", id="new-name", compact=True)
            yield Input(
                placeholder="max call duration in seconds (optional)",
                type="integer",
                id="new-max-duration",
                compact=True,
            )
            yield Checkbox(
                "Test mode: created ended, the replica never joins, nothing is billed",
                id="new-test-mode",
                compact=True,
            )
            callbacks = Text("callbacks go to ", style="dim")
            callbacks.append_text(safe(self.callback_url, "cyan"))
            yield Static(callbacks, id="new-callback-url")
            yield Static("", id="new-result")
            yield Static(
                Text("enter creates it  ·  tab moves  ·  esc closes", style="dim"),
                id="new-hint",
            )

    def on_mount(self) -> None:
        self.query_one("#new-replica", Input).focus()

    def form(self) -> NewConversation:
        """What the fields say."""

        def value(field: str) -> str:
            return self.query_one(f"#{field}", Input).value.strip()

        duration = value("new-max-duration")
        return NewConversation(
            replica_id=value("new-replica"),
            persona_id=value("new-persona"),
            name=value("new-name"),
            test_mode=self.query_one("#new-test-mode", Checkbox).value,
            max_call_duration=int(duration) if duration.lstrip("-").isdigit() else None,
        )

    @on(Input.Submitted)
    def _submitted(self, message: Input.Submitted) -> None:
        message.stop()
        if self.creating or self.made is not None:
            return
        form = self.form()
        if form.max_call_duration is not None and form.max_call_duration <= 0:
            self.notify(
                "The maximum call duration is a number of seconds above 0.",
                severity="warning",
                markup=False,
            )
            return
        self.creating = True
        self.query_one("#new-result", Static).update(Text("Creating…", style="dim"))
        self._create(form)

    @work(group="tavus", exit_on_error=False)
    async def _create(self, form: NewConversation) -> None:
        """Ask Tavus (in a worker: the form stays responsive); show what it answered."""
        result = self.query_one("#new-result", Static)
        try:
            made = await self.calls.create(form)
        except CallFailed as failed:
            result.update("")
            self.notify(
                str(failed), title="Not created", severity="error", timeout=15, markup=False
            )
            return
        finally:
            self.creating = False
        self.made = made
        for field in self.query(Input):
            field.disabled = True
        self.query_one("#new-test-mode", Checkbox).disabled = True
        text = Text("Created ", style="green")
        text.append_text(safe(made.conversation_id, "bold cyan"))
        if made.status:
            text.append(" · ", style="dim")
            text.append_text(safe(made.status))
        text.append("\njoin it at ", style="dim")
        text.append_text(safe(made.conversation_url or "(Tavus gave no conversation_url)", "bold"))
        result.update(text)
        self.query_one("#new-hint", Static).update(
            Text("y copies the conversation_url  ·  esc closes", style="dim")
        )
        self.set_focus(None)  # off the disabled fields, so y is a key, not a letter
        self.refresh_bindings()
        if self._made_callback is not None:
            self._made_callback(made)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """``y`` shows (and copies) only once there is a URL to copy."""
        if action == "copy_url":
            return self.made is not None and self.made.conversation_url is not None
        return True

    def action_copy_url(self) -> None:
        if self.made is not None and self.made.conversation_url:
            self.post_message(CopyText(self.made.conversation_url, "the conversation_url"))

    def action_close(self) -> None:
        self.dismiss(self.made)
