"""``tavus-monitor check URL``: send every documented callback shape and quirk to your handler.

A handler that passes ``trigger``'s one tidy conversation can still answer 500 to the
shutdown whose reason is in ``reason``, or time out on a long call's transcript; this sends
each such shape once (:mod:`tavus_monitor.check`), in order, and says which ones the handler
did not accept with a 2xx within ``--deadline``. Exit 1 when any failed, so CI can run it.

It reads no setting (``--data-dir`` and ``--config`` are taken, as by every command, and
unused): a server setting that cannot work does not stop it.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from .. import __version__
from . import options
from .exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from ..check import Case
    from ..checkreport import Result

DEFAULT_DEADLINE = 10.0
"""Seconds per answer. Tavus documents no timeout for callbacks; 10 s is a common webhook
sender's, and a handler should acknowledge long before it (store first, work later)."""

HEADERS = (
    ("content-type", "application/json"),
    ("user-agent", f"tavus-monitor-check/{__version__}"),
)
"""What each request carries. Tavus documents no delivery headers and no User-Agent, so only
the JSON content type is Tavus's; the User-Agent says honestly who is sending."""

STOP_AT_ONCE = frozenset({"refused", "unreachable"})
"""Failures of the first case that mean nothing is there: every other case would fail alike."""


@click.command(
    help="Send every documented Tavus callback and its known quirks to the handler at URL "
    "and report, per case, whether it answered 2xx within --deadline. Exits 1 if any failed.",
    short_help="test your own handler with every callback quirk",
)
@click.argument("url")
@click.option(
    "--deadline",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_DEADLINE,
    show_default=True,
    metavar="S",
    help="seconds a case has to be answered with a 2xx (Tavus documents no timeout)",
)
@click.option("--json", "as_json", is_flag=True, help="print the results as one JSON object")
@options.use(*options.SHARED)
def check(url: str, deadline: float, as_json: bool, **_: Any) -> int:
    from .. import checkreport
    from ..check import cases
    from ..sanitize import printable

    if not _is_http_url(url):
        print(
            f"tavus-monitor check: {printable(url)!r} is not an http:// or https:// URL; "
            "give your handler's full URL, e.g. http://localhost:3000/tavus/webhook.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    shown = 0

    def show(result: Result) -> None:
        """Each row as soon as it is known: a slow case is seen waiting, not the whole run."""
        nonlocal shown
        if not as_json:
            lines = ([checkreport.header()] if shown == 0 else []) + checkreport.row(result)
            print("\n".join(lines), flush=True)
        shown += 1

    results, stopped = asyncio.run(_send_all(cases(url), url, deadline, show))
    if stopped is not None:
        if as_json:
            print(checkreport.as_json(url, deadline, [], stopped))
        print(f"tavus-monitor check: {stopped}", file=sys.stderr)
        return EXIT_FAILED
    if as_json:
        print(checkreport.as_json(url, deadline, results, None))
    else:
        print(checkreport.total(results, deadline))
    return EXIT_OK if all(result.passed for result in results) else EXIT_FAILED


def _is_http_url(url: str) -> bool:
    """Whether ``url`` is one httpx can POST to (checked first: a bad URL is bad usage, not
    a failed case)."""
    import httpx

    try:
        where = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        return False
    return where.scheme in ("http", "https") and bool(where.host)


async def _send_all(
    cases: list[Case],
    url: str,
    deadline: float,
    show: Callable[[Result], None],
) -> tuple[list[Result], str | None]:
    """Send the cases one after another (Tavus's order matters for some of them); the
    results, or the sentence saying nothing is there when the first one could not connect."""
    import httpx

    from ..checkreport import Result
    from ..sending import send

    results: list[Result] = []
    async with httpx.AsyncClient() as client:
        for case in cases:
            attempt = await send(client, url, case.body, HEADERS, timeout=deadline)
            if not results and attempt.failure in STOP_AT_ONCE:
                return [], attempt.error
            result = Result(case, attempt, deadline)
            results.append(result)
            show(result)
    return results, None
