"""``tavus-monitor trigger``: send sample callbacks to the running monitor or any URL.

It reads one setting, ``--data-dir`` (to find the running monitor's URL), so a server setting
that cannot work does not stop it.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import Any

import click

from .. import samples
from . import options
from .exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE


@click.command(
    help="Send realistic sample callbacks. With no EVENT, sends one whole conversation in "
    "order; --all sends every sample of every family.",
    short_help="send sample callbacks to the running monitor (or any URL)",
)
@click.argument("events", nargs=-1, metavar="[EVENT]...")
@click.option("--all", "send_all", is_flag=True, help="send every sample")
@click.option("--list", "list_names", is_flag=True, help="list the sample names and exit")
@click.option("--url", help="where to send (default: the running monitor's local URL)")
@click.option("--conversation-id", help="conversation id to use (default: a new one)")
@click.option("--timeout", type=float, default=10.0, help="seconds to wait per answer")
@options.use("data_dir")
@click.pass_context
def trigger(
    ctx: click.Context,
    /,
    events: tuple[str, ...],
    send_all: bool,
    list_names: bool,
    url: str | None,
    conversation_id: str | None,
    timeout: float,
    **_: Any,
) -> int:
    from ..state import read_state
    from ..trigger import TargetUnreachable, format_answer, send

    if list_names:
        for name in samples.ALL_SAMPLES:
            print(name)
        return EXIT_OK
    unknown = [name for name in events if name not in samples.ALL_SAMPLES]
    if unknown:
        guesses = [guess for name in unknown for guess in did_you_mean(name)]
        hint = f"did you mean {' or '.join(dict.fromkeys(guesses))}? " if guesses else ""
        print(
            f"tavus-monitor trigger: unknown sample(s) {', '.join(unknown)}; "
            f"{hint}`tavus-monitor trigger --list` shows the names.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if send_all:
        names = list(samples.ALL_SAMPLES)
    elif events:
        names = list(events)
    else:
        names = [name for name, _ in samples.CONVERSATION_SEQUENCE]
    if url is None:
        data_dir: Path = options.shared(ctx, "data_dir")
        state = read_state(data_dir)
        if state is None:
            print(
                "tavus-monitor trigger: no running monitor found; start `tavus-monitor` "
                "(or pass --url to send somewhere else).",
                file=sys.stderr,
            )
            return EXIT_FAILED
        url = state.local_url
    print(f"Sending {len(names)} sample(s) to {url}", file=sys.stderr)
    try:
        answers = send(
            names,
            url,
            conversation_id=conversation_id,
            timeout=timeout,
            report=lambda answer: print(format_answer(answer), flush=True),
        )
    except TargetUnreachable:
        print(
            f"tavus-monitor trigger: nothing is listening at {url}; "
            "start `tavus-monitor` or check --url.",
            file=sys.stderr,
        )
        return EXIT_FAILED
    failed = sum(not answer.ok for answer in answers)
    print(f"{len(answers) - failed} accepted, {failed} failed", file=sys.stderr)
    return EXIT_OK if failed == 0 else EXIT_FAILED


def did_you_mean(name: str) -> list[str]:
    """The sample names ``name`` most likely meant: those it ends (``shutdown`` for
    ``system.shutdown``), else those it is part of, else the closest spelling."""
    wanted = name.lower()
    names = list(samples.ALL_SAMPLES)
    for guesses in (
        [known for known in names if known.endswith("." + wanted)],
        [known for known in names if wanted in known] if len(wanted) >= 4 else [],
    ):
        if 0 < len(guesses) <= 3:
            return guesses
    return difflib.get_close_matches(wanted, names, n=1, cutoff=0.6)
