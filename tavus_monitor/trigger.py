"""``tavus-monitor trigger``: send sample callbacks to a monitor or any URL.

Useful twice: to see the monitor work before wiring Tavus, and to test your
own callback handler with realistic bodies (``--url``).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from . import samples
from .sanitize import printable


@dataclass(frozen=True, slots=True)
class Answer:
    name: str
    status: int | None
    """HTTP status, or None when no answer came (connection refused, timeout)."""
    body: str
    milliseconds: float

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class TargetUnreachable(Exception):
    """Nothing answered at the target URL."""


def post(url: str, body: bytes, timeout: float) -> tuple[int, str]:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "tavus-monitor-trigger"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(2000).decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(2000).decode("utf-8", errors="replace")


def send(
    names: list[str],
    url: str,
    *,
    conversation_id: str | None = None,
    timeout: float = 10.0,
    report: Callable[[Answer], None] = lambda answer: None,
) -> list[Answer]:
    """POST each named sample to ``url`` in order, reporting each answer as it comes."""
    answers: list[Answer] = []
    for sample in samples.render_many(names, conversation_id=conversation_id, webhook_url=url):
        started = time.perf_counter()
        try:
            status, text = post(url, sample.body, timeout)
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, ConnectionRefusedError) and not answers:
                raise TargetUnreachable(url) from exc
            status, text = None, f"no answer: {reason}"
        except TimeoutError:
            status, text = None, f"no answer within {timeout:g} s"
        answer = Answer(sample.name, status, text, (time.perf_counter() - started) * 1000)
        answers.append(answer)
        report(answer)
    return answers


def format_answer(answer: Answer) -> str:
    status = str(answer.status) if answer.status is not None else "---"
    body = printable(answer.body.strip())
    if len(body) > 80:
        body = body[:79] + "…"
    return f"→ {answer.name:<40} {status}  {body}  ({answer.milliseconds:.0f} ms)"
