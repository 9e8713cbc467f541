"""The dashboard's panes, declared once, in the order the grid places them.

Adding a pane is a widget that answers :class:`~tavus_monitor.tui.panes.Pane`, one
:class:`~tavus_monitor.tui.panes.PaneSpec` here, and its place in ``app.tcss``'s grid;
the app composes, attaches, feeds and filters whatever this list holds.
"""

from __future__ import annotations

from .. import event_types
from ..store import EventQuery
from .formatters import event_line, row_detail, system_line
from .handler_cells import HandlerCells
from .panes import PaneSpec
from .widgets.jobs_pane import JobsPane
from .widgets.row_list import RowList
from .widgets.transcript_pane import TranscriptPane

SYSTEM_STAGES = (event_types.JOINED, event_types.SHUTDOWN)
"""The lifecycle stages the system events pane shows."""
SYSTEM_TYPES = tuple(
    sorted(name for stage in SYSTEM_STAGES for name in event_types.stage_types(stage))
)
"""Their registered event types (the registry says which types make a join or a shutdown)."""


def _system_events() -> RowList:
    return RowList(
        system_line,
        base_query=EventQuery(event_types=SYSTEM_TYPES),
        empty_text="No joins or shutdowns yet.",
        detail=row_detail,
    )


def _events() -> RowList:
    return RowList(
        event_line,
        empty_text="Waiting for callbacks… (tavus-monitor trigger sends samples)",
        detail=row_detail,
        cells=HandlerCells(),
    )


PANES: tuple[PaneSpec, ...] = (
    PaneSpec("system", "System events", _system_events),
    PaneSpec("transcripts", "Transcripts", TranscriptPane),
    PaneSpec("jobs", "Replica & video jobs", JobsPane),
    PaneSpec("events", "Events", _events),
)
"""Left to right, top to bottom (``#panes`` in ``app.tcss`` is a 2×2 grid)."""

MAIN_PANE = "events"
"""The pane that has focus at start, and that ``m`` and ``/`` act on when no pane has focus."""
