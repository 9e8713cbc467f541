"""One-line renderings of stored events for the lists.

All payload-derived text goes through :func:`safe`; styles come from the
event's family and severity, decided once by the event model.
"""

from __future__ import annotations

from rich.text import Text

from .. import event_types
from ..events import EventRow, Family
from .text import FAMILY_STYLES, SEVERITY_STYLES, clock, date_and_clock, safe, short_id

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


SYSTEM_REASON_WIDTH = 14
"""The reason column holds the documented reasons' short words ("left · timeout")..."""
SYSTEM_WIDE_REASON_WIDTH = 22
"""...and in a wide pane (:data:`SYSTEM_WITH_RAW`) longer ones too, undocumented ones
("replica_restarted_mid_call") and "internal error at <step>" mostly."""
SYSTEM_WITH_TIME = 45
"""From this width on, the system pane shows each row's time after the conversation..."""
SYSTEM_WITH_RAW = 60
"""...and from this one, the reason in full words with the raw value Tavus sent."""


def _system_parts(row: EventRow) -> tuple[Text, Text, str]:
    """A system row's kind ("joined", "ended"), what (short reason, replica) and the rest."""
    if row.event_type in JOIN_TYPES:
        kind = Text("joined", style="green")
        replica = row.summary.removeprefix("replica ")
        replica, _, twin = replica.partition(" joined")
        what = safe(replica, "dim" if row.duplicate_of else "")
        rest = twin.strip()
        if row.duplicate_of is not None:
            what.append(" " + MARK_DUPLICATE, style="dim")
            rest = f"same join as #{row.duplicate_of} {rest}".strip()
        return kind, what, rest
    style = SEVERITY_STYLES[row.severity]
    kind = Text("ended", style=style or "bold")
    reason = event_types.shutdown_of_summary(row.summary)
    if reason is None:
        what = safe(row.summary.removeprefix(event_types.SHUTDOWN_PREFIX), style)
        rest = ""
    else:
        what = safe(reason.short, style)
        rest = f"{reason.words} ({reason.raw})" if reason.words != reason.raw else ""
    if row.duplicate_of is not None:
        what.append(" " + MARK_DUPLICATE, style="dim")
        rest = f"duplicate of #{row.duplicate_of} {rest}".strip()
    return kind, what, rest


def system_line(row: EventRow, width: int) -> Text:
    """System pane: the kind and the reason in short words first, coloured by kind.

    ``ended left · timeout  c7f3a91b2d04  06:48:37  participant left (timeout) (…)``:
    the short words say which reason at any width (two reasons never share a cut
    prefix); the conversation, the time and the reason in full follow as room allows,
    and the detail strip under the list shows the whole row.
    """
    kind, what, rest = _system_parts(row)
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append_text(kind)
    line.append(" " * (7 - len(kind)))
    line.append_text(what)
    wide = width >= SYSTEM_WITH_TIME
    column = SYSTEM_WIDE_REASON_WIDTH if width >= SYSTEM_WITH_RAW else SYSTEM_REASON_WIDTH
    line.append(" " * (max(0, column - what.cell_len) + (2 if wide else 1)))
    line.append_text(safe(short_id(row.conversation_id, 12 if wide else 14), "cyan"))
    if wide:
        line.append(" " * max(2, 14 - len(short_id(row.conversation_id, 12))))
        line.append(clock(row.received_at), style="dim")
    if width >= SYSTEM_WITH_RAW and rest:
        line.append("  ")
        line.append_text(safe(rest, "dim"))
    return line


def row_detail(row: EventRow) -> Text:
    """The whole of a row, for the detail strip under a list: what it says first, then
    what it is about, its type, id and time; nothing cut."""
    text = Text()
    if row.duplicate_of is not None:
        text.append(f"{MARK_DUPLICATE} duplicate of #{row.duplicate_of}: ", style="dim")
    text.append_text(safe(row.summary, SEVERITY_STYLES[row.severity]))
    if row.error and row.error not in row.summary:
        text.append(" · ")
        text.append_text(safe(row.error, "red"))
    subject = row.subject_id or row.conversation_id
    if subject:
        text.append(" · ")
        text.append_text(safe(subject, "cyan"))
    text.append(" · ")
    text.append_text(safe(row.event_type, FAMILY_STYLES[row.family]))
    text.append(f" · #{row.id} {date_and_clock(row.received_at)}", style="dim")
    return text
