"""``tavus-monitor history``: what is stored, as a table or JSON lines."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime

from .events import SOURCE_API, Event
from .jsonlines import attempt_record, event_line
from .sanitize import printable
from .store import Rejection, SearchHit, StoreReader


def _output_width() -> int:
    """The terminal's width, or no limit when the output is not a terminal."""
    if sys.stdout.isatty():
        return shutil.get_terminal_size((120, 24)).columns
    return 1_000_000


def _local_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def _fit(text: str, width: int) -> str:
    text = printable(text)
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def event_table(events: Iterable[Event], width: int | None = None) -> list[str]:
    """Aligned rows, one per event; the summary takes what width is left."""
    width = width or _output_width()
    rows = [
        (
            str(event.id),
            _local_time(event.received_at),
            str(event.family),
            event.event_type,
            event.conversation_id or event.subject_id or "",
            (f"[dup of #{event.duplicate_of}] " if event.duplicate_of else "")
            + ("[api] " if event.source == SOURCE_API else "")
            + event.summary,
        )
        for event in events
    ]
    header = ("ID", "RECEIVED", "FAMILY", "TYPE", "SUBJECT", "SUMMARY")
    return _table(header, rows, width, caps=(8, 19, 12, 40, 24))


def search_table(hits: Iterable[SearchHit], width: int | None = None) -> list[str]:
    """One row per match, newest first: the event, its turn, and the words in context."""
    width = width or _output_width()
    rows = [
        (
            str(hit.event.id),
            _local_time(hit.event.received_at),
            hit.event.event_type,
            hit.event.conversation_id or hit.event.subject_id or "",
            f"{hit.turn} {hit.role or ''}".rstrip() if hit.turn else "",
            "".join(part for part, _ in hit.snippet),
        )
        for hit in hits
    ]
    header = ("ID", "RECEIVED", "TYPE", "SUBJECT", "TURN", "MATCH")
    return _table(header, rows, width, caps=(8, 19, 40, 24, 14))


def rejection_table(rejections: Iterable[Rejection], width: int | None = None) -> list[str]:
    width = width or _output_width()
    rows = [
        (
            str(r.id),
            _local_time(r.received_at),
            str(r.status),
            r.method,
            r.path,
            r.remote_addr or "",
            "" if r.size is None else str(r.size),
            r.reason,
        )
        for r in rejections
    ]
    header = ("ID", "RECEIVED", "STATUS", "METHOD", "PATH", "FROM", "BYTES", "REASON")
    return _table(header, rows, width, caps=(8, 19, 6, 7, 40, 39, 10))


def _table(
    header: tuple[str, ...],
    rows: Sequence[tuple[str, ...]],
    width: int,
    caps: tuple[int, ...],
) -> list[str]:
    widths = [
        min(cap, max(len(header[i]), *(len(printable(row[i])) for row in rows), 0))
        for i, cap in enumerate(caps)
    ]
    used = sum(widths) + 2 * len(widths)
    last = max(20, width - used)
    lines = []
    for row in (header, *rows):
        cells = [_fit(cell, w).ljust(w) for cell, w in zip(row, widths, strict=False)]
        cells.append(_fit(row[-1], last))
        lines.append("  ".join(cells).rstrip())
    return lines


def event_lines(events: Iterable[Event], store: StoreReader | None = None) -> list[str]:
    """JSON lines; with ``store``, an event that was sent to a handler (forwarded, replayed,
    edited) also lists those ``attempts``, oldest first. One never sent has no such key, so
    its line is the one headless mode printed."""
    lines = []
    for event in events:
        tries = store.attempts(event.id) if store is not None else []
        extra = {"attempts": [attempt_record(stored) for stored in tries]} if tries else None
        lines.append(event_line(event, extra))
    return lines
