"""``tavus-monitor replay``: send stored deliveries again, byte for byte, to a handler.

It reads ``--db`` and ``--data-dir`` (the store, and the running monitor's forward target as
the default ``--to``) and only reads the store. Exit 1 when any send was not accepted (2xx), 2
for what it was asked that cannot be done (an unknown id, no target, bad ``--chaos``).
"""

from __future__ import annotations

import asyncio
import random
import re
import sqlite3
import sys
from pathlib import Path
from typing import Any

import click

from . import options
from .exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE

NAME = "tavus-monitor replay"


@click.command(
    help="Send stored deliveries again to a handler, byte for byte: the events ID..., or a "
    "whole call (--conversation) in the order Tavus sends one. --chaos reorders, duplicates, "
    "drops or delays them, reproducibly with --seed.",
    short_help="send stored deliveries again to your handler",
)
@click.argument("ids", nargs=-1, type=int, metavar="[ID]...")
@click.option("--conversation", metavar="CID", help="send this conversation's every event")
@click.option("--to", metavar="URL", help="where to send (default: the monitor's --forward-to)")
@click.option(
    "--chaos",
    metavar="LIST",
    help="disorder on purpose: any of reorder,duplicate,drop,delay=2s",
)
@click.option("--seed", type=int, help="the seed of --chaos, to repeat a run (default: a new one)")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="seconds per send")
@options.use("db", "data_dir")
@click.pass_context
def replay(
    ctx: click.Context,
    /,
    ids: tuple[int, ...],
    conversation: str | None,
    to: str | None,
    chaos: str | None,
    seed: int | None,
    timeout: float,
    db: Path | None,
    **_: Any,
) -> int:
    from ..replay import Chaos, ReplayError, call_order, describe, parse_chaos, plan, run
    from ..state import read_state
    from ..store import ReadOnlyStore, StoreError

    def refuse(sentence: str) -> int:
        print(f"{NAME}: {sentence}", file=sys.stderr)
        return EXIT_USAGE

    if bool(ids) == (conversation is not None):
        return refuse("give event ids or --conversation CID (one of the two).")
    try:
        disorder = parse_chaos(chaos) if chaos is not None else Chaos()
    except ReplayError as exc:
        return refuse(str(exc))
    if timeout <= 0:
        return refuse("--timeout must be a number of seconds more than 0.")
    data_dir: Path = options.shared(ctx, "data_dir")
    if to is None:
        state = read_state(data_dir)
        if state is None or state.forward_to is None:
            return refuse(
                "no target: pass --to URL (the running monitor forwards nowhere to default to)."
            )
        to = state.forward_to
    if not re.match(r"https?://[^/\s]+", to):
        return refuse(f"--to {to!r} is not an http(s) URL; give your handler's URL.")
    path = db if db is not None else data_dir / "events.db"
    try:
        with ReadOnlyStore(path) as store:
            if conversation is not None:
                events = call_order(store.conversation(conversation))
                if not events:
                    return refuse(
                        f"no stored event of conversation {conversation}; "
                        "`tavus-monitor history` lists what is stored."
                    )
            else:
                found = {event_id: store.get(event_id) for event_id in dict.fromkeys(ids)}
                unknown = [str(event_id) for event_id, event in found.items() if event is None]
                if unknown:
                    return refuse(
                        f"no stored event with id {', '.join(unknown)}; "
                        "`tavus-monitor history` lists what is stored."
                    )
                events = [event for event_id in ids if (event := found[event_id]) is not None]
    except StoreError as exc:
        return refuse(str(exc))
    except sqlite3.Error as exc:
        return refuse(f"cannot read the event store {path} ({exc}); pass --db with another file.")
    if disorder.any and seed is None:
        seed = random.SystemRandom().randrange(1_000_000)
        print(f"Chaos seed {seed}: pass --seed {seed} to repeat this run.", file=sys.stderr)
    sends = plan(events, disorder, random.Random(seed))
    print(f"Replaying {len(events)} event(s) to {to}", file=sys.stderr)
    done = asyncio.run(
        run(sends, to, timeout=timeout, report=lambda sent: print(describe(sent), flush=True))
    )
    attempts = [sent.attempt for sent in done if sent.attempt is not None]
    failed = sum(not attempt.ok for attempt in attempts)
    dropped = len(done) - len(attempts)
    print(
        f"{len(attempts) - failed} accepted, {failed} failed"
        + (f", {dropped} dropped by chaos" if dropped else ""),
        file=sys.stderr,
    )
    return EXIT_FAILED if failed else EXIT_OK
