"""What the dashboard asks of a pane, and what it hands every pane once per frame.

The app used to wire each pane by id in six places (composing, attaching it to the
store, showing a batch, the filter's ``isinstance`` chain, finding the focused pane,
reloading), so a new pane meant editing all of them. Now a pane is a widget that
answers :class:`Pane`, declared by one :class:`PaneSpec` (``layout.PANES``); the app
composes what is declared, attaches each to the store, hands each the same
:class:`Batch` per frame and passes the parsed filter on, without knowing which pane
is which. What a pane asks of the app goes the other way as messages
(:class:`InspectEvent`, :class:`CopyText`), handled once for every pane.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from textual.message import Message
from textual.widget import Widget

from ..events import Event, EventRow
from ..jobs import Job, job_from_event
from ..store import StoreReader
from .filtering import Filter


@dataclass(frozen=True, slots=True)
class Batch:
    """The events one frame shows, prepared once for every pane (not once per pane)."""

    events: tuple[Event, ...]
    """Newly stored events, oldest first."""
    rows: tuple[EventRow, ...]
    """The same events as list rows (no bodies), in the same order."""
    jobs: tuple[Job, ...]
    """The replica trainings and video generations these events report on."""
    conversations: frozenset[str]
    """The conversations that received events."""

    @classmethod
    def of(cls, events: Sequence[Event]) -> Batch:
        return cls(
            events=tuple(events),
            rows=tuple(EventRow.of(event) for event in events),
            jobs=tuple(job for event in events if (job := job_from_event(event)) is not None),
            conversations=frozenset(
                event.conversation_id for event in events if event.conversation_id
            ),
        )


@runtime_checkable
class Pane(Protocol):
    """A dashboard pane. It is also a Textual widget (``PaneSpec.build`` checks both)."""

    def attach(self, store: StoreReader) -> None:
        """Show what ``store`` holds: at start, and again when the panes reload from it
        (a burst the bus dropped, a failed batch, a store file made anew). Loads run in
        the pane's own workers; the app waits for them before the next batch."""

    def take(self, batch: Batch) -> None:
        """Show one frame's new events. Right after a reload the batch may repeat events
        the reload already read: a pane must not show them twice."""

    def apply_filter(self, parsed: Filter) -> None:
        """Narrow to what ``parsed`` (the ``/`` field) says, each pane as it can; an
        empty filter shows everything again."""


class InspectEvent(Message):
    """A pane asks for the inspector on one stored event (Enter, double click)."""

    def __init__(self, event_id: int) -> None:
        super().__init__()
        self.event_id = event_id


class ResendEvent(Message):
    """A pane or the inspector asks for an event to be sent to the handler again (replay),
    or, with ``edit``, for an edited copy of its body to be sent."""

    def __init__(self, event_id: int, *, edit: bool = False) -> None:
        super().__init__()
        self.event_id = event_id
        self.edit = edit


class CopyText(Message):
    """A pane asks for ``text`` to be copied; ``what`` names it in the notification."""

    def __init__(self, text: str, what: str) -> None:
        super().__init__()
        self.text = text
        self.what = what


@dataclass(frozen=True, slots=True)
class PaneSpec:
    """One pane of the dashboard: everything the app needs to know to place it."""

    id: str
    """The widget id (the stylesheet and tests find the pane by it)."""
    title: str
    """The border title; the filter field names the pane it filters by it."""
    factory: Callable[[], Widget]
    """Makes the pane's widget, which must answer :class:`Pane`."""
    classes: str = "pane"
    """CSS classes: ``pane`` gives the border and the focus highlight (``app.tcss``)."""

    def build(self) -> Widget:
        widget = self.factory()
        if not isinstance(widget, Pane):
            raise TypeError(f"the {self.id!r} pane ({type(widget).__name__}) is not a Pane")
        widget.id = self.id
        widget.add_class(*self.classes.split())
        widget.border_title = self.title
        return widget
