"""``tavus-monitor history``: print what is stored, as a table or JSON lines.

It reads two settings, ``--db`` and ``--data-dir`` (where the store is), so a server setting that
cannot work does not stop it. The store is only read: ``history`` works on a read-only file or
mount, and never migrates, changes or creates anything (see ReadOnlyStore).
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any

import click

from . import options
from .exits import EXIT_OK, EXIT_USAGE


@click.command(help="Show stored events, newest first.", short_help="show stored events")
@click.option("--family", help="only this family (conversation, replica, video, ...)")
@click.option("--type", "event_type", help="only this event type, e.g. system.shutdown")
@click.option("--conversation", help="only this conversation id")
@click.option(
    "--search",
    metavar="WORDS",
    help="only events holding every one of WORDS (a transcript's turns, payload text)",
)
@click.option("--limit", type=int, default=50, show_default=True, help="at most this many")
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "jsonl"]),
    default="table",
    show_default=True,
    help="an aligned table, or one JSON object per line",
)
@click.option("--rejected", is_flag=True, help="show refused requests instead of events")
@options.use("db", "data_dir")
@click.pass_context
def history(
    ctx: click.Context,
    /,
    family: str | None,
    event_type: str | None,
    conversation: str | None,
    search: str | None,
    limit: int,
    output: str,
    rejected: bool,
    db: Path | None,
    **_: Any,
) -> int:
    from ..history import event_lines, event_table, rejection_table, search_table
    from ..store import EventQuery, ReadOnlyStore, StoreError

    data_dir: Path = options.shared(ctx, "data_dir")
    path = db if db is not None else data_dir / "events.db"
    try:
        missing = not path.exists()
    except OSError:  # e.g. a directory on the way that this user may not enter
        missing = False  # ReadOnlyStore says what is wrong
    if missing:
        print(f"No events stored yet at {path}.", file=sys.stderr)
        return EXIT_OK
    try:
        with ReadOnlyStore(path) as store:
            if store.is_empty:
                print(f"No events stored yet at {path}.", file=sys.stderr)
                return EXIT_OK
            if rejected:
                lines = rejection_table(store.rejections(limit))
            elif search is not None and output == "table":
                query = EventQuery(
                    family=family, event_type=event_type, conversation_id=conversation
                )
                lines = search_table(store.search(search, limit, query))
            elif search is not None:
                query = EventQuery(
                    family=family, event_type=event_type, conversation_id=conversation, limit=limit
                )
                lines = event_lines(store.search_events(search, query), store)
            else:
                events = store.page(
                    EventQuery(
                        family=family,
                        event_type=event_type,
                        conversation_id=conversation,
                        limit=limit,
                    )
                )
                lines = event_lines(events, store) if output == "jsonl" else event_table(events)
    except StoreError as exc:
        print(f"tavus-monitor history: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except sqlite3.Error as exc:  # damage found while reading, past the file's header
        print(
            f"tavus-monitor history: cannot read the event store {path} ({exc}); "
            "it may be damaged: pass --db with another file.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    for line in lines:
        print(line)
    return EXIT_OK
