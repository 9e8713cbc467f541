"""One-line renderings of stored events for the lists.

All payload-derived text goes through :func:`safe`; styles come from the
event's family and severity, decided once by the event model.
"""

from __future__ import annotations

from rich.text import Text

from .. import event_types
from ..events import EventRow, Family
from .text import FAMILY_STYLES, SEVERITY_STYLES, clock, safe, short_id

MARK_DUPLICATE = "↻"
MARK_MALFORMED = "✗"
JOIN_TYPES = event_types.stage_types(event_types.JOINED)
"""What the system pane shows as a join (the registry's joined stage); the rest are shutdowns."""


def _marker(row: EventRow) -> Text:
    if row.family is Family.MALFORMED:
        return Text(MARK_MALFORMED + " ", style="bold red")
    if row.duplicate_of is not None:
        return Text(MARK_DUPLICATE + " ", style="dim")
    return Text("  ")


FAMILY_ABBREVIATIONS: dict[Family, str] = {
    Family.CONVERSATION: "conv",
    Family.OBJECTIVE: "obj",
    Family.GUARDRAIL: "guard",
    Family.REPLICA: "replica",
    Family.VIDEO: "video",
    Family.UNKNOWN: "unknown",
    Family.MALFORMED: "bad",
}
_TYPE_PREFIXES = ("application.", "system.", "conversation.")
WITH_TYPE = 80
"""From this width on, the events list shows the event type column..."""
WITH_SUBJECT = 110
"""...and from this one, the subject (conversation, replica or video id)."""


def short_type(event_type: str) -> str:
    """``application.transcription_ready`` → ``transcription_ready``; the family says the rest."""
    for prefix in _TYPE_PREFIXES:
        if event_type.startswith(prefix):
            return event_type[len(prefix) :]
    return event_type


def event_line(row: EventRow, width: int) -> Text:
    """Events pane: time, marker, family, type, (subject,) summary."""
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(clock(row.received_at) + " ", style="dim")
    line.append_text(_marker(row))
    line.append(f"{FAMILY_ABBREVIATIONS[row.family]:<8}", style=FAMILY_STYLES[row.family])
    if width >= WITH_TYPE:
        line.append_text(safe(f"{short_type(row.event_type)[:26]:<26} "))
    if width >= WITH_SUBJECT:
        line.append_text(safe(f"{short_id(row.subject_id or row.conversation_id):<14} ", "dim"))
    summary = row.summary
    if row.duplicate_of is not None:
        summary = f"duplicate of #{row.duplicate_of}: {summary}"
    line.append_text(safe(summary, SEVERITY_STYLES[row.severity]))
    return line


def system_line(row: EventRow, width: int) -> Text:
    """System pane: joins and shutdowns, the reason in plain words coloured by kind."""
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(clock(row.received_at) + " ", style="dim")
    line.append_text(_marker(row))
    line.append_text(safe(f"{short_id(row.conversation_id):<14} ", "cyan"))
    if row.event_type in JOIN_TYPES:
        line.append("joined   ", style="green")
        summary = row.summary.replace(" joined", "", 1)
        if row.duplicate_of is not None:
            summary += f" (same join as #{row.duplicate_of})"
        line.append_text(safe(summary, "dim" if row.duplicate_of else ""))
    else:
        line.append("shutdown ", style=SEVERITY_STYLES[row.severity] or "bold")
        line.append_text(
            safe(row.summary.removeprefix("shutdown: "), SEVERITY_STYLES[row.severity])
        )
    return line
