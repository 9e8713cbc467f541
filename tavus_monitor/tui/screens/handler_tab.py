"""The inspector's Handler tab: what was sent to the developer's handler, and what it said.

One row per attempt (forwarded, replayed, edited), newest first; under the list, the
selected attempt whole: the request (its headers, and the body when it was not the
event's own: an edited copy) and the handler's response as it was kept (status, headers,
body; JSON pretty-printed when it parses). Everything from the handler or the payload is
untrusted text: it goes through ``safe`` and is never parsed as markup.
"""

from __future__ import annotations

import contextlib
import json

from rich.text import Text

from ...attempts import RESPONSE_KEPT, StoredAttempt
from ...events import Headers
from ..handler_cells import Cell, cell_words
from ..text import date_and_clock, header_text, safe

EMPTY = Text.assemble(
    "Nothing was sent to a handler yet. Start the monitor with ",
    ("--forward-to URL", "bold"),
    " to forward every delivery as it arrives, or press ",
    ("R", "bold"),
    " to replay this one (",
    ("E", "bold"),
    " sends an edited copy).",
)
"""The tab's empty state: how to forward, or replay."""
KINDS = {"forward": "forwarded", "replay": "replayed", "edited": "edited copy"}


def attempt_row(stored: StoredAttempt) -> tuple[Text, ...]:
    """The list's cells: kind, when, the answer (coloured like the Events row), target, why."""
    attempt = stored.attempt
    words, style = cell_words(Cell(attempt, stored.kind), width=1_000)
    return (
        Text(KINDS.get(stored.kind, stored.kind)),
        Text(date_and_clock(attempt.started_at), style="dim"),
        Text(words.removeprefix("→ "), style=style),
        safe(attempt.target),
        safe(attempt.error or "", "red"),
    )


def body_text(body: bytes) -> Text:
    """A body to read: pretty JSON when it parses, else the text (inert either way)."""
    text = body.decode("utf-8", errors="replace")
    with contextlib.suppress(RecursionError, ValueError):
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    return safe(text, keep_newlines=True) if text else Text("(empty)", style="dim")


def _headers(text: Text, headers: Headers) -> None:
    for name, value in headers:
        text.append("  ")
        text.append_text(safe(header_text(name), "bold"))
        text.append(": ")
        text.append_text(safe(header_text(value)))
        text.append("\n")


def attempt_detail(stored: StoredAttempt) -> Text:
    """The selected attempt whole: the request sent, then the response kept."""
    attempt = stored.attempt
    text = Text()
    text.append("Request ", style="bold")
    text.append(f"({KINDS.get(stored.kind, stored.kind)}) POST ", style="dim")
    text.append_text(safe(attempt.target))
    text.append(f"  {date_and_clock(attempt.started_at)}\n", style="dim")
    _headers(text, attempt.request_headers)
    if stored.request_body is None:
        text.append("  body: the event's own, byte for byte (Raw tab)\n", style="dim")
    else:
        text.append("  body, as edited:\n", style="dim")
        text.append_text(body_text(stored.request_body))
        text.append("\n")
    text.append("\nResponse ", style="bold")
    if attempt.status is None:
        text.append(f"none after {attempt.latency_ms:.0f} ms: ", style="red")
        text.append_text(safe(attempt.error or attempt.failure or "no answer", "red"))
        text.append("\n")
        return text
    text.append(str(attempt.status), style="green" if attempt.ok else "bold red")
    text.append(f" in {attempt.latency_ms:.0f} ms\n", style="dim")
    _headers(text, attempt.response_headers)
    text.append("\n")
    text.append_text(body_text(attempt.response_body))
    if len(attempt.response_body) >= RESPONSE_KEPT:
        text.append(f"\n… (only the first {RESPONSE_KEPT // 1024} KB are kept)", style="dim")
    return text
