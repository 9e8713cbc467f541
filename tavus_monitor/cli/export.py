"""``tavus-monitor export``: every matching stored delivery, oldest first, as JSON lines, raw
body files (test fixtures) or an HTTP Archive.

Like ``history`` it reads two settings, ``--db`` and ``--data-dir``, and only reads the store
(:class:`~tavus_monitor.store.ReadOnlyStore`). It has no row limit: the store is read a page at a
time and each event written before the next page is read, so memory does not grow with the store.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path
from typing import IO, Any

import click

from . import options
from .exits import EXIT_OK, EXIT_USAGE

NAME = "tavus-monitor export"


@click.command(
    help="Export stored events, oldest first: JSON lines (as `history --format jsonl`), one "
    "raw body file per delivery (--out DIR, byte for byte), or an HTTP Archive (HAR 1.2).",
    short_help="export stored events (jsonl, raw bodies, HAR)",
)
@click.option("--family", help="only this family (conversation, replica, video, ...)")
@click.option("--type", "event_type", help="only this event type, e.g. system.shutdown")
@click.option("--conversation", help="only this conversation id")
@click.option("--search", metavar="WORDS", help="only events holding every one of WORDS")
@click.option("--since", metavar="WHEN", help="only events received since: 30m, 2h, 7d or a date")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "raw", "har"]),
    default="jsonl",
    show_default=True,
    help="JSON lines, raw body files, or an HTTP Archive",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="the file to write (jsonl, har; default stdout) or the directory (raw; made if missing)",
)
@options.use("db", "data_dir")
@click.pass_context
def export(
    ctx: click.Context,
    /,
    family: str | None,
    event_type: str | None,
    conversation: str | None,
    search: str | None,
    since: str | None,
    fmt: str,
    out: Path | None,
    db: Path | None,
    **_: Any,
) -> int:
    from ..export import ExportError, exported, parse_since
    from ..store import EventQuery, ReadOnlyStore, StoreError
    from ..storewalk import walk

    if fmt == "raw" and out is None:
        print(f"{NAME}: --format raw writes one file per event: pass --out DIR.", file=sys.stderr)
        return EXIT_USAGE
    try:
        since_at = parse_since(since) if since is not None else None
    except ExportError as exc:
        print(f"{NAME}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    data_dir: Path = options.shared(ctx, "data_dir")
    path = db if db is not None else data_dir / "events.db"
    try:
        missing = not path.exists()
    except OSError:  # e.g. a directory on the way that this user may not enter
        missing = False  # ReadOnlyStore says what is wrong
    if missing:
        print(f"No events stored yet at {path}.", file=sys.stderr)
        return EXIT_OK
    query = EventQuery(family=family, event_type=event_type, conversation_id=conversation)
    where = "stdout" if out is None else str(out)
    try:
        with ReadOnlyStore(path) as store:
            if store.is_empty:
                print(f"No events stored yet at {path}.", file=sys.stderr)
                return EXIT_OK
            events = walk(store, query, since=since_at, words=search)
            if fmt == "raw":
                count = exported(events, fmt, None, out)
            elif out is None:
                count = exported(events, fmt, sys.stdout, None)
                sys.stdout.flush()
            else:
                with _open_output(out) as sink:
                    count = exported(events, fmt, sink, None)
    except StoreError as exc:
        print(f"{NAME}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except sqlite3.Error as exc:  # damage found while reading, past the file's header
        print(
            f"{NAME}: cannot read the event store {path} ({exc}); "
            "it may be damaged: pass --db with another file.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except BrokenPipeError:  # the reader stopped early (``| head``): what it took was written
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return EXIT_OK
    except OSError as exc:
        print(f"{NAME}: cannot write {where} ({exc.strerror or exc}).", file=sys.stderr)
        return EXIT_USAGE
    print(f"Exported {count:,} event{'' if count == 1 else 's'} to {where}.", file=sys.stderr)
    return EXIT_OK


def _open_output(out: Path) -> IO[str]:
    return out.open("w", encoding="utf-8", newline="\n")
