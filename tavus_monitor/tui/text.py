"""Building display text from untrusted payload strings, safely.

Every string that came in a callback goes through :func:`safe`: control and
bidi characters become visible symbols (see :mod:`tavus_monitor.sanitize`)
and the result is a Rich ``Text`` object, which Textual never parses as
markup. Nothing in the TUI builds a markup string from payload text.
"""

from __future__ import annotations

import time
from datetime import datetime

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip

from ..events import Family, Severity
from ..sanitize import printable

FAMILY_STYLES: dict[Family, str] = {
    Family.CONVERSATION: "cyan",
    Family.OBJECTIVE: "green",
    Family.GUARDRAIL: "magenta",
    Family.REPLICA: "blue",
    Family.VIDEO: "yellow",
    Family.UNKNOWN: "bright_black",
    Family.MALFORMED: "bold red",
}

SEVERITY_STYLES: dict[Severity, str] = {
    Severity.INFO: "",
    Severity.SUCCESS: "green",
    Severity.WARNING: "yellow",
    Severity.ERROR: "bold red",
}


def safe(text: str | None, style: str = "", *, keep_newlines: bool = False) -> Text:
    """Untrusted ``text`` as inert, styled Text."""
    return Text(printable(text or "", keep_newlines=keep_newlines), style=style)


def clock(epoch: float) -> str:
    """Local wall-clock time, e.g. ``14:03:27``."""
    return datetime.fromtimestamp(epoch).strftime("%H:%M:%S")


def date_and_clock(epoch: float) -> str:
    """Local date and time to the second, e.g. ``2025-07-11 14:03:27``."""
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def day_and_clock(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch)
    if moment.date() == datetime.now().date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M")


def ago(epoch: float | None, now: float | None = None) -> str:
    """``12s ago``, ``4m ago``, ``3h ago``, ``2d ago``; ``never`` for None."""
    if epoch is None:
        return "never"
    seconds = max(0, int((now if now is not None else time.time()) - epoch))
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def duration(seconds: float | None) -> str:
    """``2m 50s``, ``1h 02m``, ``4.2s``."""
    if seconds is None:
        return "?"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def short_id(value: str | None, width: int = 14) -> str:
    if not value:
        return "—"
    return value if len(value) <= width else value[: width - 1] + "…"


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``1 key``, ``3 keys``, ``1,204 events``: the noun agrees with the number."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def text_strip(
    text: Text, console: Console, width: int, style: Style, *, under: bool = True
) -> Strip:
    """One line of ``text`` as a strip exactly ``width`` cells wide on ``style``.

    ``under``: ``style`` (a widget's colours, a cursor's highlight) also goes under
    each styled span of the text; else only the padding takes it. The lists'
    line renderers (rows, conversations, transcript lines) share it.
    """
    segments = [
        Segment(segment.text, style + segment.style if segment.style else style)
        if under
        else segment
        for segment in text.render(console, end="")
    ]
    return Strip(segments).crop_extend(0, width, style).simplify()


def header_text(text: str) -> str:
    """A header name or value as sent: UTF-8 bytes read as UTF-8.

    The server decodes header bytes as Latin-1 (every byte is a character, so
    nothing is lost); bytes that are valid UTF-8 read better as what they spell
    than as ``Ã©``. Anything else stays Latin-1. Either way the caller still
    makes the result :func:`printable`.
    """
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return text
