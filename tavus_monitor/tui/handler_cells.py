"""What the developer's handler answered, per event: the cell at the end of an Events row.

Forwarding (``--forward-to``) and the dashboard's replay and edit-and-send each make
attempts (:class:`~tavus_monitor.attempts.Attempt`); the newest one of an event is shown
on its row as the same words everywhere (``→ 200 12ms``, ``→ refused``), coloured by
what it means: green answered 2xx, red anything else, yellow while forwarding will try
again (``→ 500 …``) or has not reached the event yet (``→ …``).

:class:`HandlerCells` holds them for a list: live from the bus's ``Forwarded`` messages
and the dashboard's own sends, and read back from the store a page at a time
(``store.latest_attempts``) when rows load. Events with no attempt, in a monitor that is
not forwarding, get no cell, so such a list looks as it did before forwarding existed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rich.text import Text

from ..attempts import Attempt, StoredAttempt
from .text import safe

WITH_LATENCY = 60
"""From this list width on, the cell says how long the handler took (``→ 200 12ms``);
narrower lists drop the latency first, so the summary keeps its room."""
PENDING = "→ …"
"""An event forwarding has not reached yet (the handler is busy or down)."""


@dataclass(frozen=True, slots=True)
class Cell:
    """The newest attempt of one event, and whether forwarding will try it again."""

    attempt: Attempt | None
    """None: forwarding has not reached the event yet (:data:`PENDING`)."""
    kind: str = "forward"
    """``forward``, ``replay`` or ``edited`` (see ``StoredAttempt.kind``)."""
    retrying: bool = False
    """Forwarding failed this time and will send the event again."""

    @classmethod
    def stored(cls, stored: StoredAttempt, *, retrying: bool = False) -> Cell:
        return cls(stored.attempt, stored.kind, retrying)


WAITING = Cell(None)
"""The cell of an event forwarding has not reached yet."""


def cell_words(cell: Cell, width: int) -> tuple[str, str]:
    """The cell's words and style for a list ``width`` cells wide."""
    attempt = cell.attempt
    if attempt is None:
        return PENDING, "yellow"
    words = attempt.describe()
    if attempt.status is not None and (width < WITH_LATENCY or not attempt.ok):
        words = f"→ {attempt.status}"  # a failure's latency says little; a narrow row needs room
    if cell.retrying:
        return f"{words} …", "yellow"
    return words, "green" if attempt.ok else "red"


def cell_text(cell: Cell, width: int) -> Text:
    """:func:`cell_words` as Text (the words are ours: a status and a word, never payload)."""
    words, style = cell_words(cell, width)
    return Text(words, style=style)


def cell_sentence(cell: Cell) -> Text:
    """The cell in full for the detail strip: who sent it, the answer, and why it failed."""
    attempt = cell.attempt
    if attempt is None:
        return Text(f"forward: waiting for its turn ({PENDING})", style="yellow")
    words, style = cell_words(cell, WITH_LATENCY)
    text = Text(f"{cell.kind}: ", style="dim")
    text.append(attempt.describe() if attempt.status is not None else words, style=style)
    if attempt.error:
        text.append(": ")
        text.append_text(safe(attempt.error, style))
    if cell.retrying:
        text.append(" (tried again soon)", style="yellow")
    return text


class HandlerCells:
    """The cells of a list's events, by event id (see the module notes).

    ``queued_after`` answers where forwarding got to (the forwarder's cursor: the newest
    event it is done with), or None when the monitor is not forwarding. Events after it
    are on their way: with no attempt yet they show :data:`PENDING`, and a failed
    forwarding attempt will be tried again. Set by the app once the monitor runs.
    """

    def __init__(self) -> None:
        self._cells: dict[int, Cell] = {}
        self.queued_after: Callable[[], int | None] = lambda: None

    def __len__(self) -> int:
        return len(self._cells)

    def clear(self) -> None:
        self._cells.clear()

    def cell(self, event_id: int) -> Cell | None:
        """The event's cell (:data:`WAITING` when forwarding has not reached it); None: none."""
        found = self._cells.get(event_id)
        queued_after = self.queued_after()
        waiting = queued_after is not None and event_id > queued_after
        if found is None:
            return WAITING if waiting else None
        attempt = found.attempt
        if waiting and found.kind == "forward" and attempt is not None and not attempt.ok:
            return Cell(attempt, found.kind, retrying=True)  # read back: forwarding goes on
        return found

    def show(self, event_id: int, cell: Cell) -> None:
        """A new attempt of ``event_id`` (newer than what is held: attempts come in order)."""
        self._cells[event_id] = cell

    def load(self, found: dict[int, StoredAttempt]) -> list[int]:
        """Attempts read from the store; a newer one already shown live is kept. Returns
        the ids whose cell changed."""
        changed = []
        for event_id, stored in found.items():
            held = self._cells.get(event_id)
            newer = held is None or held.attempt is None
            if held is not None and held.attempt is not None:
                newer = held.attempt.started_at <= stored.attempt.started_at
            if newer:
                if held is None or held.attempt != stored.attempt:
                    changed.append(event_id)
                self._cells[event_id] = Cell.stored(stored)
        return changed

    def keep_only(self, event_ids: Iterable[int]) -> None:
        """Forget the cells of events no longer loaded (the list pages them back in)."""
        kept = set(event_ids)
        self._cells = {key: cell for key, cell in self._cells.items() if key in kept}
