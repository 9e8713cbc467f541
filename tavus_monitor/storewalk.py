"""Every stored event a query matches, oldest first, read a page at a time.

The store's own queries answer a screen's worth (``page``: the newest N;
``after``: the next N, unfiltered). ``export`` needs all of them, in arrival
order, filtered, and must not hold a million bodies to write them: this walks
the ``events`` table by id in pages of :data:`PAGE` and yields each event, so
memory stays at one page whatever the store holds.

It reads through :class:`~tavus_monitor.store.StoreReader`'s connection with
the store's own column list, row decoding and WHERE clause (so a filter means
here what it means to ``history``), from a module of its own: the store module
is another job's to change. Word search goes through the same full-text index
as ``history --search``, walked by rowid upwards (a rowid is ``event_id <<
TURN_BITS | turn``, so rowid order is id order).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from .events import Event
from .search import match_expression, split_rowid
from .store import (  # the store's private helpers: one meaning for a column list and a filter
    _EVENT_COLUMNS,
    EventQuery,
    StoreReader,
    _event_from_row,
    _where,
)
from .storefile import SEARCH_TABLE

PAGE = 500
"""Events read per query: large enough that SQLite's per-query cost vanishes, small
enough that a page of long transcripts is a few megabytes."""


def walk(
    store: StoreReader,
    query: EventQuery | None = None,
    *,
    since: float | None = None,
    words: str | None = None,
    page: int = PAGE,
) -> Iterator[Event]:
    """Every event matching ``query`` (its family, type, conversation filters; its limit
    and paging are ignored), received at or after ``since`` (epoch seconds) and, with
    ``words``, holding every one of them, oldest first."""
    query = query if query is not None else EventQuery()
    if words is not None:
        yield from _walk_words(store, query, since, words, page)
        return
    last = 0
    while True:
        rows = _read_page(store, dataclasses.replace(query, after_id=last), since, page)
        for row in rows:
            yield _event_from_row(row)
        if len(rows) < page:
            return
        last = int(rows[-1][0])


def _read_page(
    store: StoreReader, query: EventQuery, since: float | None, limit: int
) -> list[tuple[Any, ...]]:
    conditions, params = _conditions(query, since)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return store._read(
        f"SELECT {_EVENT_COLUMNS} FROM events{where} ORDER BY id LIMIT ?", [*params, limit]
    )


def _conditions(query: EventQuery, since: float | None) -> tuple[list[str], list[Any]]:
    """SQL conditions for ``query``'s filters (as the store writes them) and ``since``."""
    where, params = _where(dataclasses.replace(query, before_id=None, search=None))
    conditions = [where.removeprefix(" WHERE ")] if where else []
    if since is not None:
        conditions.append("received_at >= ?")
        params.append(since)
    return conditions, params


def _walk_words(
    store: StoreReader, query: EventQuery, since: float | None, words: str, page: int
) -> Iterator[Event]:
    expression = match_expression(words, prefix_last=False)
    if expression is None:
        return
    store._check_searchable()  # SearchUnavailable (one sentence) on a store without the index
    after_rowid = -1
    last_event = 0
    while True:
        rowids = [
            int(row[0])
            for row in store._read(
                f"SELECT rowid FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} MATCH ? AND rowid > ? "
                "ORDER BY rowid LIMIT ?",
                (expression, after_rowid, page),
            )
        ]
        # An event's turns are consecutive rowids: one cut by the page's end is already sent.
        found = {split_rowid(value)[0] for value in rowids}
        ids = sorted(event_id for event_id in found if event_id > last_event)
        if ids:
            conditions, params = _conditions(dataclasses.replace(query, after_id=None), since)
            conditions.insert(0, f"id IN ({', '.join('?' * len(ids))})")
            rows = store._read(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE {' AND '.join(conditions)} ORDER BY id",
                [*ids, *params],
            )
            for row in rows:
                yield _event_from_row(row)
            last_event = ids[-1]
        if len(rowids) < page:
            return
        after_rowid = rowids[-1]
