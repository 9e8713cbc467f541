"""What ``tavus-monitor check`` says about each case: a verdict, a table row, a JSON object.

Apart from the sending (in the command) so the words are one function of a case and its
:class:`~tavus_monitor.attempts.Attempt`, the same in the table a developer reads and the
JSON a CI job parses.

The handler's answer is untrusted text: the table shows at most a one-line snippet of a
failing answer, with every terminal-active character made visible
(:func:`~tavus_monitor.sanitize.printable`), and nothing is ever parsed as markup. The table
fits 80 columns, so it reads the same in a CI log as in a terminal.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .attempts import Attempt
from .check import Case
from .sanitize import printable

WIDTH = 80
NAME_WIDTH = 26
STATUS_WIDTH = 11
LATENCY_WIDTH = 8
SNIPPET_CHARS = 500
"""Characters of a failing answer kept in the JSON (the table shows what fits a line)."""


@dataclass(frozen=True, slots=True)
class Result:
    """One case as the handler answered it, judged against the deadline."""

    case: Case
    attempt: Attempt
    deadline: float
    """Seconds the handler had to answer with a 2xx."""

    @property
    def passed(self) -> bool:
        """A 2xx within the deadline: what counts as delivered."""
        return self.attempt.ok and self.attempt.latency_ms <= self.deadline * 1000

    @property
    def verdict(self) -> str:
        attempt = self.attempt
        if self.passed:
            return "pass"
        if attempt.status is None:
            if attempt.failure == "timeout":
                return f"FAIL: no answer within {self.deadline:g} s"
            return f"FAIL: {attempt.failure or 'error'}"
        if not attempt.ok:
            return f"FAIL: answered {attempt.status}"
        return f"FAIL: {attempt.status} after {self.deadline:g} s"

    @property
    def snippet(self) -> str:
        """The start of the handler's answer as text (still untrusted: not for a terminal)."""
        text = self.attempt.response_body[: SNIPPET_CHARS * 4].decode("utf-8", errors="replace")
        return text[:SNIPPET_CHARS]


def latency(attempt: Attempt) -> str:
    milliseconds = attempt.latency_ms
    return f"{milliseconds:.0f} ms" if milliseconds < 1000 else f"{milliseconds / 1000:.2f} s"


def header() -> str:
    return _row("case", "status", "latency", "verdict")


def row(result: Result) -> list[str]:
    """The result's line, and for a failure the lines saying why the case exists and what
    the handler answered (or why there was no answer)."""
    attempt = result.attempt
    status = str(attempt.status) if attempt.status is not None else attempt.failure or "error"
    lines = [_row(result.case.name, status, latency(attempt), result.verdict)]
    if result.passed:
        return lines
    lines += _indented("why: ", result.case.why)
    if attempt.status is None:
        lines += _indented("error: ", attempt.error or "no answer")
    elif result.snippet.strip():
        said = printable(" ".join(result.snippet.split()))
        limit = WIDTH - len("    answer: ")
        if len(said) > limit:
            said = said[: limit - 1] + "…"
        lines.append(f"    answer: {said}")
    return lines


def total(results: Sequence[Result], deadline: float) -> str:
    failed = sum(not result.passed for result in results)
    return (
        f"{len(results) - failed} of {len(results)} passed, {failed} failed "
        f"(a pass is a 2xx within {deadline:g} s)."
    )


def as_json(url: str, deadline: float, results: Sequence[Result], error: str | None) -> str:
    """Every result as one JSON object (strict, ASCII-only, so any tool can read it)."""
    failed = sum(not result.passed for result in results)
    document: dict[str, Any] = {
        "url": url,
        "deadline_s": deadline,
        "total": len(results),
        "passed": len(results) - failed,
        "failed": failed,
        "error": error,
        "cases": [
            {
                "name": result.case.name,
                "why": result.case.why,
                "conversation_id": result.case.conversation_id,
                "bytes": len(result.case.body),
                "status": result.attempt.status,
                "latency_ms": round(result.attempt.latency_ms, 1),
                "passed": result.passed,
                "verdict": result.verdict,
                "error": result.attempt.error,
                "response": None if result.passed else result.snippet,
            }
            for result in results
        ],
    }
    return json.dumps(document, ensure_ascii=True, allow_nan=False)


def _row(name: str, status: str, took: str, verdict: str) -> str:
    line = (
        f"{_fit(name, NAME_WIDTH):<{NAME_WIDTH}}  {_fit(status, STATUS_WIDTH):<{STATUS_WIDTH}}  "
        f"{took:>{LATENCY_WIDTH}}  {verdict}"
    )
    return _fit(line, WIDTH).rstrip()


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _indented(label: str, text: str) -> list[str]:
    return textwrap.wrap(
        printable(text),
        WIDTH,
        initial_indent="    " + label,
        subsequent_indent=" " * (4 + len(label)),
    )
