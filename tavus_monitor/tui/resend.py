"""Replay and edit-and-send from the dashboard (``R`` / ``E`` on a row or in the inspector).

A handler is best debugged with the delivery that broke it: ``R`` sends a stored event
to the handler again, its own body bytes with its end-to-end headers, marked as a replay
(``sending.end_to_end_headers(…, replay=True)``); ``E`` sends an edited copy of its body.
Both go to ``--forward-to``, or, without one, to a URL asked once and remembered until
the dashboard quits. Each attempt is kept with the event (kinds ``replay`` and
``edited``, the edited bytes with it) and shown on its row like forwarding's; a toast
says the answer in one sentence.

The edit happens in ``$EDITOR`` when one is set and the dashboard has a real terminal to
lend it (``App.suspend``), else in :class:`~.screens.resend.EditBodyScreen`. The monitor's
server shares the app's event loop, so the editor runs as a subprocess awaited with the
loop free (callbacks keep being answered) and the screen not drawn meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import sys
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
from rich.text import Text
from textual.app import App, SuspendNotSupported

from ..attempts import Attempt
from ..events import Event
from ..sanitize import printable
from ..sending import end_to_end_headers, send
from ..settings import Settings
from ..store import Store
from .handler_cells import Cell
from .screens.resend import EditBodyScreen, TargetScreen, json_problem
from .text import safe

_UNSAFE_IN_EDITOR = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
"""Characters that would act on the terminal rather than show (see ``sanitize``): the
editor shows them as JSON escapes (``\\u001b``), which inside a JSON string mean the same."""


def editable_text(event: Event) -> str:
    """The body to edit: pretty JSON when it parses, else the text as received; either
    way terminal-active characters written as ``\\uXXXX`` escapes."""
    text = event.body.decode("utf-8", errors="replace")
    if event.payload is not None:
        with contextlib.suppress(RecursionError, ValueError):
            text = json.dumps(event.payload, indent=2, ensure_ascii=False)
    return _UNSAFE_IN_EDITOR.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def result_sentence(event_id: int, kind: str, attempt: Attempt) -> str:
    """The toast: ``Replayed #42: your handler answered 200 in 12 ms.`` (made printable)."""
    what = "Replayed" if kind == "replay" else "Sent the edited copy of"
    if attempt.status is None:
        return printable(f"{what} #{event_id}: no answer ({attempt.error or attempt.failure}).")
    return printable(
        f"{what} #{event_id}: your handler answered {attempt.status} in "
        f"{attempt.latency_ms:.0f} ms."
    )


Then = Callable[[bytes | None], None]
"""What to do with an edited body (None: the edit was cancelled)."""


class Resender:
    """Sends events again for the app; ``show`` puts each answer on the event's row.

    The questions (the URL, the editor) are screens pushed with a callback, not awaited in
    a worker: a worker waiting on the user would count as one of the panes' loads, which
    a reload from the store waits for. Only the sending itself runs in a worker.
    """

    def __init__(
        self,
        app: App[Any],
        settings: Settings,
        store: Callable[[], Store | None],
        show: Callable[[int, Cell], None],
    ) -> None:
        self.app = app
        self.settings = settings
        self._store = store
        self._show = show
        self.target = settings.forward_to
        """Where replays go: ``--forward-to``, else the URL asked for (this session)."""

    def start(self, event_id: int, *, edit: bool) -> None:
        """Replay ``event_id`` (or, with ``edit``, send an edited copy of it)."""
        self._run(self._begin(event_id, edit=edit))

    def _run(self, work: Coroutine[Any, Any, object]) -> None:
        self.app.run_worker(work, name="resend", group="resend", exit_on_error=False)

    def _say(self, sentence: str) -> None:
        self.app.notify(sentence, severity="warning", markup=False)

    async def _begin(self, event_id: int, *, edit: bool) -> None:
        store = self._store()
        if store is None:
            self._say("Nothing was sent: the server is not running, so no answer could be kept.")
            return
        event = await asyncio.to_thread(store.get, event_id)
        if event is None:
            self._say(f"Event #{event_id} is not in the store.")
            return
        if self.target is not None:
            self._targeted(event, self.target, edit=edit)
            return

        def chosen(target: str | None) -> None:
            if target is None:
                self._say("Nothing was sent.")
                return
            self.target = target
            self._targeted(event, target, edit=edit)

        self.app.push_screen(TargetScreen(), chosen)

    def _targeted(self, event: Event, target: str, *, edit: bool) -> None:
        if not edit:
            self._run(self.deliver(event, target))
            return

        def edited(body: bytes | None) -> None:
            if body is None:
                self._say("Nothing was sent: the edit was cancelled.")
            else:
                self._run(self.deliver(event, target, body))

        self._edit(event, edited)

    async def deliver(self, event: Event, target: str, body: bytes | None = None) -> Attempt:
        """POST the event (or ``body``, its edited copy) to ``target``; keep and show the
        answer."""
        store = self._store()
        kind = "replay" if body is None else "edited"
        headers = end_to_end_headers(event.headers, event_id=event.id, replay=True)
        async with httpx.AsyncClient() as client:
            attempt = await send(
                client,
                target,
                event.body if body is None else body,
                headers,
                timeout=self.settings.forward_timeout,
            )
        if store is not None:
            await store.record_attempt(event.id, kind, attempt, request_body=body)
        self._show(event.id, Cell(attempt, kind))
        self.app.notify(
            result_sentence(event.id, kind, attempt),
            severity="information" if attempt.ok else "error",
            markup=False,
        )
        return attempt

    # ------------------------------------------------------------ editing

    def _edit(self, event: Event, then: Then) -> None:
        """Ask for the edited body (see the module notes); ``then`` gets it."""
        text = editable_text(event)
        title = Text.assemble(
            (f"Edit #{event.id} ", "bold"),
            safe(event.event_type, "bold"),
            ("  ctrl+s sends the copy to your handler, esc cancels", "dim"),
        )
        editor = os.environ.get("EDITOR", "").strip()
        if editor and self._has_terminal():
            self._run(self._edit_outside(editor, text, title, then))
        else:
            self.app.push_screen(EditBodyScreen(text, title), then)

    def _has_terminal(self) -> bool:
        return not self.app.is_headless and sys.__stdin__ is not None and sys.__stdin__.isatty()

    async def _edit_outside(self, editor: str, text: str, title: Text, then: Then) -> None:
        typed = await self._external(editor, text)
        if typed is None:  # it could not run here: the editor of the dashboard instead
            self.app.push_screen(EditBodyScreen(text, title), then)
        elif not typed.strip():
            then(None)  # emptied, as git takes an empty message: cancelled
        elif json_problem(typed) is None:
            then(typed.encode("utf-8"))
        else:  # malformed: warned in the dashboard's editor, where ctrl+s again sends it
            self.app.push_screen(EditBodyScreen(typed, title, warned=True), then)

    async def _external(self, editor: str, text: str) -> str | None:
        """``text`` edited in ``$EDITOR`` (None: it could not run here)."""
        with tempfile.TemporaryDirectory(prefix="tavus-monitor-edit-") as folder:
            path = Path(folder) / "body.json"
            path.write_text(text, encoding="utf-8")
            try:
                with self.app.batch_update(), self.app.suspend():
                    process = await asyncio.create_subprocess_exec(*shlex.split(editor), str(path))
                    await process.wait()
            except (SuspendNotSupported, OSError, ValueError):
                return None
            return path.read_text(encoding="utf-8", errors="replace")
