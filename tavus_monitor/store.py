"""The SQLite event store: every delivery, byte-exact, committed before it is acknowledged.

One writer, a child process, owns the only write connection and commits in
groups: it takes every job that is waiting, writes them in one transaction,
commits, and only then is each job's future resolved. The server answers 200
after that future resolves, so "acknowledged" means "in the WAL", which
survives ``kill -9``. The monitor and the tests write the same way: through
:meth:`Store._queue` to :class:`~tavus_monitor.writerprocess.ProcessWriter`
(why a process, measured against a thread, is told there). The event loop
never waits on SQLite; readers use their own connection and WAL lets them run
beside the writer. ``--ephemeral`` is a store like any other, in a private
temporary directory that closing it deletes (:meth:`Store.temporary`).

Storage renders no output. A store given :class:`EventLines` (headless mode
gives it the JSON lines of :mod:`tavus_monitor.jsonlines`) writes each
committed event's line, rendered by the writer process, from each batch's
reply: this is the one place that knows how far the stream got, so when a
writer process dies after committing a batch it never answered, those events
are read back, rendered here and written too (they were committed; their
senders get 503 and the redelivery is marked a duplicate).

If the file is deleted or replaced under the running monitor, the writer
notices at its next batch and :meth:`Store.check_file` within
:data:`FILE_CHECK_INTERVAL` when idle; either makes the file again and says so
through :meth:`Store.on_notice` (see :mod:`tavus_monitor.storefile`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import json
import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar, overload

from .attempts import Attempt, StoredAttempt
from .callbacks import SHUTDOWN
from .events import (
    Classification,
    Delivery,
    Event,
    EventRow,
    Rejection,
    StoreError,
    StoreFileLost,
    row_fields,
)
from .jsonbody import parse_json
from .private import private_temporary_dir
from .search import TURN_BITS, index_rows, match_expression, snippet, split_rowid, terms
from .storefile import (
    RECORDS_SCHEMA,
    SCHEMA_VERSION,
    SEARCH_SCHEMA,
    SEARCH_TABLE,
    UNINDEXED,
    FileIdentity,
    connect,
    has_search_index,
    lost_file_notice,
    open_for_writing,
)
from .writer import EventJob, Job, RecordJob, RejectionJob, Render, Written
from .writerprocess import ProcessWriter, WriterGone

__all__ = [
    "SCHEMA_VERSION",
    "ConversationRow",
    "Counts",
    "Delivery",
    "EventLines",
    "EventQuery",
    "ReadOnlyStore",
    "Rejection",
    "SearchHit",
    "SearchUnavailable",
    "Store",
    "StoreError",
    "StoreFileLost",
    "StoreReader",
]

log = logging.getLogger(__name__)

EARLY_SEND = 4
"""Jobs after which a loop iteration's batch goes to the writer process at once.

The child then starts classifying and committing them while this process
parses the rest of the iteration's requests (which it takes in its next
transaction), instead of idling until the whole iteration is done. Fewer
means more commits; more means less overlap. 4 measured best with
``bench/ingest.py`` (32 connections): about 10 % more requests/s than one
batch per iteration.
"""

FILE_CHECK_INTERVAL = 2.0
"""Seconds between checks, while idle, that the store file is still there."""


_ROW_COLUMNS = (  # EventRow's fields, in their order (see events.row_fields)
    "id, received_at, family, event_type, conversation_id, subject_id, summary, "
    "duplicate_of, error, length(body), occurred_at, severity"
)
_EVENT_COLUMNS = _ROW_COLUMNS + ", body, headers, remote_addr, path, body_sha256"
_NO_FTS5 = (
    "search is unavailable: the SQLite this Python uses has no full-text search (FTS5); "
    "run tavus-monitor with a Python whose sqlite3 has it."
)


@dataclass(frozen=True, slots=True)
class Created:
    """A Tavus resource created through the monitor, with its callback URL."""

    kind: str
    """``conversation``, ``replica`` or ``video``."""
    resource_id: str
    created_at: float
    name: str | None
    callback_url: str | None
    response: dict[str, Any]
    """What Tavus answered the create request with."""
    ended_at: float | None = None
    """When it was ended through the monitor (conversations), if it was."""


_ATTEMPT_COLUMNS = (
    "id, event_id, kind, target, started_at, latency_ms, status, error, failure, "
    "request_headers, request_body, response_headers, response_body"
)


def _attempt_from_row(row: tuple[Any, ...]) -> StoredAttempt:
    (
        attempt_id,
        event_id,
        kind,
        target,
        started_at,
        latency_ms,
        status,
        error,
        failure,
        request_headers,
        request_body,
        response_headers,
        response_body,
    ) = row
    attempt = Attempt(
        target=target,
        started_at=started_at,
        latency_ms=latency_ms,
        status=status,
        error=error,
        request_headers=_header_pairs(request_headers),
        response_headers=_header_pairs(response_headers),
        response_body=bytes(response_body),
        failure=failure,
    )
    return StoredAttempt(
        attempt_id,
        event_id,
        kind,
        attempt,
        bytes(request_body) if request_body is not None else None,
    )


def _header_pairs(text: str) -> tuple[tuple[str, str], ...]:
    return tuple((str(name), str(value)) for name, value in json.loads(text))


@dataclass(frozen=True, slots=True)
class Counts:
    events: int
    rejected: int
    by_family: dict[str, int]


@dataclass(frozen=True, slots=True)
class EventQuery:
    """A page of events, newest first. ``before_id`` pages to older ones."""

    family: str | None = None
    event_type: str | None = None
    conversation_id: str | None = None
    search: str | None = None
    before_id: int | None = None
    after_id: int | None = None
    limit: int = 100
    families: tuple[str, ...] | None = None
    """Any of these families (with ``family``, both must hold)."""
    event_types: tuple[str, ...] | None = None
    """Any of these event types."""
    type_word: str | None = None
    """The event type, or one of its words, starts with this (see :func:`type_has_word`)."""
    without_types: tuple[str, ...] = ()
    """None of these type words (as ``type_word``)."""
    without_words: tuple[str, ...] = ()
    """Neither the summary nor the body holds any of these (as ``search``)."""
    without_conversations: tuple[str, ...] = ()
    """None of these conversations."""

    def matches(self, row: EventRow | Event) -> bool:
        """Whether an event (e.g. one just received) belongs in this query's result.

        ``search`` and ``without_words`` are checked against the summary only here;
        the store also searches bodies.
        """
        summary = row.summary.lower()
        return (
            (self.family is None or row.family == self.family)
            and (self.families is None or row.family in self.families)
            and (self.event_type is None or row.event_type == self.event_type)
            and (self.event_types is None or row.event_type in self.event_types)
            and (self.conversation_id is None or row.conversation_id == self.conversation_id)
            and (not self.search or self.search.lower() in summary)
            and (self.type_word is None or type_has_word(row.event_type, self.type_word))
            and not any(type_has_word(row.event_type, word) for word in self.without_types)
            and not any(word.lower() in summary for word in self.without_words)
            and row.conversation_id not in self.without_conversations
        )


def type_has_word(event_type: str, word: str) -> bool:
    """Whether ``event_type`` or one of its words (after a ``.`` or ``_``) starts with
    ``word``, ignoring case: ``shutdown`` and ``system.shut`` match ``system.shutdown``,
    ``join`` matches ``system.pal_joined`` and ``system.replica_joined``."""
    event_type, word = event_type.lower(), word.lower()
    return event_type.startswith(word) or f".{word}" in event_type or f"_{word}" in event_type


def _type_word_sql(word: str) -> tuple[str, list[str]]:
    """:func:`type_has_word` in SQL (LIKE ignores ASCII case, as ``lower`` does there)."""
    escaped = _escape_like(word)
    like = "event_type LIKE ? ESCAPE '\\'"
    return f"({like} OR {like} OR {like})", [f"{escaped}%", f"%.{escaped}%", f"%\\_{escaped}%"]


@dataclass(frozen=True, slots=True)
class ConversationRow:
    """One conversation in a list: its id, how many events, first and last arrival."""

    conversation_id: str
    events: int
    first_id: int
    last_id: int
    first_received_at: float
    last_received_at: float


@dataclass(frozen=True, slots=True)
class ConversationEvents:
    """A conversation and its events (see :meth:`StoreReader.conversations_with_events`)."""

    conversation: ConversationRow
    events: tuple[EventRow | Event, ...]
    """Oldest first; rows, except the types asked for whole."""


@dataclass(slots=True)
class _Job:
    job: Job
    future: concurrent.futures.Future[Any] | asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop | None = None
    """The loop owning ``future`` when it is an asyncio future."""


class SearchUnavailable(StoreError):
    """The store cannot be searched; the text is one sentence for the user."""


@dataclass(frozen=True, slots=True)
class SearchHit:
    """Where words were found: an event, and the turn of its transcript (0: elsewhere)."""

    event: EventRow
    turn: int
    """The turn's number in the transcript, from 1 (as the transcript view lists them);
    0 when the words are in the event's other text (summary, payload)."""
    role: str | None
    snippet: tuple[tuple[str, bool], ...]
    """The text around the first match, as ``(part, is_match)``: payload text, not yet
    made inert (see :func:`tavus_monitor.search.snippet`)."""


CommitListener = Callable[[list[Event], list[Rejection]], None]


def _settle(
    pairs: list[tuple[asyncio.Future[Any], object]],
    listeners: Sequence[CommitListener] = (),
    events: list[Event] | None = None,
    rejections: list[Rejection] | None = None,
) -> None:
    """On the loop: resolve the futures of one batch, then tell its commit listeners.

    Futures first: their request handlers are queued on the loop before any
    consumer a listener wakes (the dashboard), so every answer of the batch is
    written before the screen does any work for it. The listeners still run in
    this same callback, before any of those handlers, so whoever watches the bus
    holds an event before its sender can read the answer. Cancelled futures are
    skipped.
    """
    for future, outcome in pairs:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
    for listener in listeners:
        try:
            listener(events or [], rejections or [])
        except Exception:
            log.exception("a commit listener failed")


NoticeListener = Callable[[str], None]


class StoreReader:
    """The store's queries, on one read connection (WAL lets reads run beside the writer).

    :class:`Store` (the monitor's, which also writes) and :class:`ReadOnlyStore`
    (what read-only commands open) both answer them.
    """

    path: Path | None
    _reader_db: sqlite3.Connection
    _reader_lock: threading.Lock
    _closed: bool

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._reader_lock:
            if self._closed:
                raise StoreError("the store is closed")
            return self._reader_db.execute(sql, tuple(params)).fetchall()

    def get(self, event_id: int) -> Event | None:
        rows = self._read(f"SELECT {_EVENT_COLUMNS} FROM events WHERE id = ?", (event_id,))
        return _event_from_row(rows[0]) if rows else None

    def page(self, query: EventQuery = EventQuery()) -> list[Event]:
        """Events matching ``query``, newest first, at most ``query.limit``."""
        where, params = _where(query)
        sql = f"SELECT {_EVENT_COLUMNS} FROM events{where} ORDER BY id DESC LIMIT ?"
        return [_event_from_row(row) for row in self._read(sql, [*params, max(0, query.limit)])]

    def rows(self, query: EventQuery = EventQuery()) -> list[EventRow]:
        """Like :meth:`page` without the bodies, for lists over long histories."""
        where, params = _where(query)
        sql = f"SELECT {_ROW_COLUMNS} FROM events{where} ORDER BY id DESC LIMIT ?"
        return [_row_from_row(row) for row in self._read(sql, [*params, max(0, query.limit)])]

    def count(self, query: EventQuery = EventQuery()) -> int:
        where, params = _where(query)
        return int(self._read(f"SELECT count(*) FROM events{where}", params)[0][0])

    def conversations(
        self, limit: int = 200, before_id: int | None = None
    ) -> list[ConversationRow]:
        """Conversations, the most recently active first (``before_id``: by last event id)."""
        having = "" if before_id is None else " HAVING max(id) < ?"
        params: list[Any] = [] if before_id is None else [before_id]
        rows = self._read(
            "SELECT conversation_id, count(*), min(id), max(id), min(received_at), "
            "max(received_at) FROM events WHERE conversation_id IS NOT NULL "
            f"GROUP BY conversation_id{having} ORDER BY max(id) DESC LIMIT ?",
            [*params, limit],
        )
        return [ConversationRow(*row) for row in rows]

    def conversations_with_events(
        self,
        limit: int = 200,
        *,
        events_each: int = 1000,
        bodies_of: Iterable[str] = (),
        before_id: int | None = None,
        matching: Sequence[str] = (),
    ) -> list[ConversationEvents]:
        """The ``limit`` most recently active conversations with their events, in one query.

        What a list of conversations shows (each one's lifecycle) used to cost two
        queries per conversation. Events come as rows, without bodies (a transcript
        can be megabytes), except those whose type is in ``bodies_of``: the few
        whose payload the list reads (a shutdown's reason) come whole. At most the
        newest ``events_each`` of a conversation are read, so one flooded id cannot
        make the list read everything.

        Paging: ``before_id`` keeps the conversations whose last event id is below
        it (pass the smallest ``last_id`` of the previous page). ``matching`` keeps
        the conversations whose id, or whose shutdown's summary (its reason in
        words and verbatim), holds one of these texts, ignoring case.
        """
        types = tuple(bodies_of)
        marks = ", ".join("?" * len(types)) or "NULL"
        texts = [text.lower() for text in matching if text]
        where = ""
        if texts:
            where = (
                " AND ("
                + " OR ".join(["instr(lower(conversation_id), ?) > 0"] * len(texts))
                + " OR conversation_id IN (SELECT conversation_id FROM events"
                " WHERE event_type = ? AND ("
                + " OR ".join(["instr(lower(summary), ?) > 0"] * len(texts))
                + ")))"
            )
        having = "" if before_id is None else " HAVING max(id) < ?"
        rows = self._read(
            "WITH recent AS ("
            " SELECT conversation_id AS cid, count(*) AS n, min(id) AS first_id,"
            " max(id) AS last_id, min(received_at) AS first_at, max(received_at) AS last_at"
            f" FROM events WHERE conversation_id IS NOT NULL{where}"
            f" GROUP BY conversation_id{having} ORDER BY max(id) DESC LIMIT ?"
            "), picked AS ("
            " SELECT recent.*, events.id AS event_id,"
            " row_number() OVER (PARTITION BY cid ORDER BY events.id DESC) AS newest"
            " FROM recent JOIN events ON events.conversation_id = cid"
            ")"
            f" SELECT cid, n, first_id, last_id, first_at, last_at, {_ROW_COLUMNS},"
            f" event_type IN ({marks}),"
            f" CASE WHEN event_type IN ({marks}) THEN body END,"
            " headers, remote_addr, path, body_sha256"
            " FROM picked JOIN events ON events.id = event_id"
            " WHERE newest <= ? ORDER BY last_id DESC, events.id",
            [
                *texts,
                *([SHUTDOWN] if texts else []),
                *texts,
                *([] if before_id is None else [before_id]),
                limit,
                *types,
                *types,
                events_each,
            ],
        )
        grouped: dict[str, tuple[ConversationRow, list[EventRow | Event]]] = {}
        for row in rows:
            conversation = ConversationRow(*row[:6])
            _, events = grouped.setdefault(conversation.conversation_id, (conversation, []))
            fields, whole, rest = row[6:18], row[18], row[19:]
            events.append(_event_from_row(fields + rest) if whole else _row_from_row(fields))
        return [
            ConversationEvents(conversation, tuple(events))
            for conversation, events in grouped.values()
        ]

    def jobs(self, limit: int = 500) -> list[Event]:
        """The latest callback of each replica training and video generation, newest first.

        Whole events, in one query: a job's name, progress and links are in its payload.
        """
        rows = self._read(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE id IN ("
            "SELECT max(id) FROM events WHERE family IN ('replica', 'video') "
            "GROUP BY family, subject_id) ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [_event_from_row(row) for row in rows]

    def after(self, event_id: int, limit: int = 1000) -> list[Event]:
        """Events newer than ``event_id``, oldest first (for catching up)."""
        rows = self._read(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (event_id, limit),
        )
        return [_event_from_row(row) for row in rows]

    def conversation(self, conversation_id: str) -> list[Event]:
        """Every event of one conversation, in arrival order."""
        rows = self._read(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE conversation_id = ? ORDER BY id",
            (conversation_id,),
        )
        return [_event_from_row(row) for row in rows]

    def counts(self) -> Counts:
        by_family = dict(self._read("SELECT family, count(*) FROM events GROUP BY family"))
        rejected = self._read("SELECT count(*) FROM rejected")[0][0]
        return Counts(sum(by_family.values()), rejected, by_family)

    def search(
        self,
        words: str,
        limit: int = 100,
        query: EventQuery = EventQuery(),
        *,
        prefix_last: bool = False,
        before_rowid: int | None = None,
    ) -> list[SearchHit]:
        """Turns and events whose text holds every one of ``words``, newest first.

        Through the FTS5 index (:mod:`tavus_monitor.search`); ``query``'s filters
        (family, type, conversation) narrow it, its ``search`` and paging are not
        used. ``prefix_last``: the last word also matches as the start of a word
        (search as you type). Raises :class:`SearchUnavailable` when the store
        has no index (an older store opened read-only, or SQLite without FTS5).
        """
        hits = self._search_rowids(words, limit, query, prefix_last, before_rowid)
        if not hits:
            return []
        event_ids = sorted({split_rowid(value)[0] for value in hits})
        marks = ", ".join("?" * len(event_ids))
        rows = self._read(
            f"SELECT {_ROW_COLUMNS}, body FROM events WHERE id IN ({marks})", event_ids
        )
        wanted = terms(words)
        if prefix_last and wanted:
            wanted[-1] = (wanted[-1][0], True)
        texts: dict[int, tuple[EventRow, dict[int, tuple[str, str | None]]]] = {}
        for row in rows:
            event = _row_from_row(row[:12])
            body = bytes(row[12])
            payload = parse_json(body).value
            turns = {
                item.turn: (item.text, item.role)
                for item in index_rows(payload, event.summary, body=body)
            }
            texts[event.id] = (event, turns)
        found = []
        for value in hits:
            event_id, turn = split_rowid(value)
            if event_id not in texts:
                continue
            event, turns = texts[event_id]
            text, role = turns.get(turn, ("", None))
            found.append(SearchHit(event, turn, role, tuple(snippet(text, wanted))))
        return found

    def unindexed(self) -> int:
        """Stored events search cannot find yet: the writer indexes them while it is idle
        (see :meth:`~tavus_monitor.writer.SQLiteWriter.index_pending`), so after a burst
        this falls to 0 within moments. Raises :class:`SearchUnavailable` as ``search``."""
        self._check_searchable()
        return int(self._read(f"SELECT count(*) FROM events WHERE {UNINDEXED}")[0][0])

    def search_events(self, words: str, query: EventQuery = EventQuery()) -> list[Event]:
        """Whole events holding every one of ``words``, newest first, ``query.limit`` at most.

        Like :meth:`search`, one entry per event however many of its turns match
        (``history --search``).
        """
        ids: list[int] = []
        before: int | None = None
        page = max(100, query.limit * 4)
        while len(ids) < query.limit:
            rowids = self._search_rowids(words, page, query, False, before)
            for value in rowids:
                event_id = split_rowid(value)[0]
                if not ids or ids[-1] != event_id:
                    ids.append(event_id)
            if len(rowids) < page:
                break
            before = rowids[-1]
        ids = ids[: max(0, query.limit)]
        if not ids:
            return []
        marks = ", ".join("?" * len(ids))
        rows = self._read(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE id IN ({marks}) ORDER BY id DESC", ids
        )
        return [_event_from_row(row) for row in rows]

    def _search_rowids(
        self,
        words: str,
        limit: int,
        query: EventQuery,
        prefix_last: bool,
        before_rowid: int | None,
    ) -> list[int]:
        expression = match_expression(words, prefix_last=prefix_last)
        if expression is None:
            return []
        self._check_searchable()
        where, params = _where(
            EventQuery(
                family=query.family,
                event_type=query.event_type,
                conversation_id=query.conversation_id,
                families=query.families,
                event_types=query.event_types,
            )
        )
        join = f" JOIN events ON events.id = s.rowid >> {TURN_BITS}" if where else ""
        conditions = [f"{SEARCH_TABLE} MATCH ?"]
        values: list[Any] = [expression]
        if before_rowid is not None:
            conditions.append("s.rowid < ?")
            values.append(before_rowid)
        if where:
            conditions.append(where.removeprefix(" WHERE "))
            values.extend(params)
        sql = (
            f"SELECT s.rowid FROM {SEARCH_TABLE} AS s{join} WHERE {' AND '.join(conditions)} "
            "ORDER BY s.rowid DESC LIMIT ?"
        )
        try:
            return [row[0] for row in self._read(sql, [*values, max(0, limit)])]
        except sqlite3.OperationalError as exc:
            if "fts5" in str(exc):  # the index exists, but this SQLite cannot read it
                raise SearchUnavailable(_NO_FTS5) from exc
            raise

    def _check_searchable(self) -> None:
        with self._reader_lock:
            if self._closed:
                raise StoreError("the store is closed")
            if has_search_index(self._reader_db):
                return
            version = self._reader_db.execute("PRAGMA user_version").fetchone()[0]
        if version < SEARCH_SCHEMA:
            raise SearchUnavailable(
                f"{self.path} has no search index yet: search needs tavus-monitor "
                "(this version) to have run once on this store (it builds the index)."
            )
        raise SearchUnavailable(_NO_FTS5)

    # ------------------------------------------- the monitor's own records

    def _has_records(self) -> bool:
        """Whether the file has the records' tables (a file an older monitor wrote has not,
        until a monitor opens it for writing; read-only commands then show none)."""
        return getattr(self, "schema_version", SCHEMA_VERSION) >= RECORDS_SCHEMA

    def attempts(self, event_id: int) -> list[StoredAttempt]:
        """Every attempt to send ``event_id`` to a handler, oldest first."""
        if not self._has_records():
            return []
        rows = self._read(
            f"SELECT {_ATTEMPT_COLUMNS} FROM attempts WHERE event_id = ? ORDER BY id",
            (event_id,),
        )
        return [_attempt_from_row(row) for row in rows]

    def latest_attempts(self, event_ids: Iterable[int]) -> dict[int, StoredAttempt]:
        """The newest attempt of each of ``event_ids`` that has one (for a pane's rows)."""
        ids = sorted(set(event_ids))
        if not ids or not self._has_records():
            return {}
        found: dict[int, StoredAttempt] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._read(
                f"SELECT {_ATTEMPT_COLUMNS} FROM attempts WHERE id IN (SELECT max(id) "
                f"FROM attempts WHERE event_id IN ({marks}) GROUP BY event_id)",
                chunk,
            )
            found.update((row[1], _attempt_from_row(row)) for row in rows)
        return found

    def forwarded_through(self, target: str) -> int | None:
        """The newest event forwarding to ``target`` is done with (None: it never ran)."""
        if not self._has_records():
            return None
        rows = self._read("SELECT event_id FROM forward_cursor WHERE target = ?", (target,))
        return int(rows[0][0]) if rows else None

    def created(self, kind: str | None = None, limit: int = 500) -> list[Created]:
        """Resources created through the monitor, newest first."""
        if not self._has_records():
            return []
        sql = (
            "SELECT kind, resource_id, created_at, name, callback_url, response, ended_at "
            "FROM created"
        )
        params: list[Any] = []
        if kind is not None:
            sql += " WHERE kind = ?"
            params.append(kind)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return [
            Created(kind, rid, at, name, url, json.loads(response), ended)
            for kind, rid, at, name, url, response, ended in self._read(sql, params)
        ]

    def rejections(self, limit: int = 100, before_id: int | None = None) -> list[Rejection]:
        """Refused requests, newest first."""
        sql = (
            "SELECT id, received_at, method, path, remote_addr, size, status, reason FROM rejected"
        )
        params: list[Any] = []
        if before_id is not None:
            sql += " WHERE id < ?"
            params.append(before_id)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return [Rejection(*row) for row in self._read(sql, params)]


@dataclass(frozen=True, slots=True)
class EventLines:
    """Where a store writes each committed event as one line, and how one is rendered.

    The store only writes what it is given; the format is its caller's (headless
    mode gives :func:`tavus_monitor.jsonlines.event_line`). ``render`` runs in
    the writer process, on the second core, which imports it by name, so it must
    be a module-level function of this package (checked when the store opens).
    This process renders only the events a writer process committed but died
    before answering.
    """

    sink: TextIO
    render: Render


_T = TypeVar("_T")
_Future = asyncio.Future[_T] | concurrent.futures.Future[_T]


class Store(StoreReader):
    """The event store over one SQLite file, written by its writer process.

    Every job (a delivery, a refused request) takes one path, :meth:`_queue`:
    into the batch of the event loop that drives the writer process
    (:class:`~tavus_monitor.writerprocess.ProcessWriter`), which sends each
    loop iteration's batch to the child and settles the jobs' futures when it
    answers. That loop is the first one a job is queued from with
    :meth:`append` or :meth:`reject` (the server's, in the monitor). A store
    first written with :meth:`submit`, by code that runs no event loop (a tool,
    a test), has its writer run a loop of its own on a thread to drive it.
    """

    path: Path

    def __init__(
        self,
        path: Path,
        *,
        synchronous: str = "NORMAL",
        lines: EventLines | None = None,
    ) -> None:
        """Open (creating or migrating) the store file and start its writer process.

        With ``lines``, each committed event's line is written to ``lines.sink``,
        in id order and before the delivery is acknowledged.
        """
        self.path = path
        # Opened here first, so a file that cannot be a store (a newer schema, no
        # permission) is refused at once with a sentence, before any child starts.
        connection, identity = open_for_writing(path, synchronous=synchronous)
        connection.close()
        self._identity: FileIdentity | None = identity
        """The file this process last saw at ``path`` (made again if it goes)."""
        self._synchronous = synchronous
        self._reader_db = connect(path)
        self._reader_lock = threading.Lock()
        self._closed = False
        self._lines = lines
        self._streamed_through = self._newest_id()
        """The newest event id whose line was written to ``lines``."""
        self._notice_listeners: list[NoticeListener] = []
        self._commit_listeners: list[CommitListener] = []
        self._loop_listeners: dict[asyncio.AbstractEventLoop, list[CommitListener]] = {}
        self._outbox: list[_Job] = []
        """Jobs queued on the driving loop in this iteration, not yet given to the writer."""
        self._temporary: Path | None = None
        """The directory :meth:`close` deletes (:meth:`temporary`)."""
        try:
            self._writer = ProcessWriter(
                path, synchronous=synchronous, render=lines.render if lines else None
            )
        except BaseException:
            self._reader_db.close()
            raise

    @classmethod
    def temporary(cls, *, synchronous: str = "NORMAL", lines: EventLines | None = None) -> Store:
        """A store in a new private (0700) temporary directory, which :meth:`close` deletes.

        What ``--ephemeral`` keeps events in: written and read like any store,
        gone when the monitor stops (a monitor killed with ``kill -9`` leaves the
        directory behind in the system's temporary directory).
        """
        directory = private_temporary_dir()
        try:
            store = cls(directory / "events.db", synchronous=synchronous, lines=lines)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        store._temporary = directory
        return store

    # ------------------------------------------------------------ lifecycle

    def _newest_id(self) -> int:
        row = self._reader_db.execute("SELECT max(id) FROM events").fetchone()
        return int(row[0] or 0)

    def on_notice(self, listener: NoticeListener) -> None:
        """Call ``listener`` with a sentence when something happened to the store file
        that the user must know (it was deleted or replaced and made again)."""
        self._notice_listeners.append(listener)

    def _notice(self, text: str) -> None:
        for listener in self._notice_listeners:
            try:
                listener(text)
            except Exception:
                log.exception("a notice listener failed")

    def check_file(self) -> bool:
        """Whether ``path`` still names the file opened; if not, make it again and say so.

        The writer checks before and after every batch; this is for the idle
        times between, so the user hears of it within seconds. Any thread.
        """
        if self._closed:
            return True
        if FileIdentity.of(self.path) == self._identity:
            return True
        try:
            connection, identity = open_for_writing(self.path, synchronous=self._synchronous)
        except (OSError, sqlite3.Error, StoreError) as exc:
            if self._identity is not None:  # say it once, not once per check
                self._identity = None
                self._notice(lost_file_notice(self.path, error=exc))
            return False
        connection.close()
        self._identity = identity
        self._reopen_reader()
        self._notice(lost_file_notice(self.path))
        return False

    def _reopen_reader(self) -> None:
        with self._reader_lock:
            if self._closed:
                return
            self._reader_db.close()
            self._reader_db = connect(self.path)

    @property
    def writer_pid(self) -> int | None:
        """The writer process's id (None between a child's death and the next batch)."""
        return self._writer.pid

    def on_commit(
        self, listener: CommitListener, *, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        """Call ``listener`` after each commit, in id order.

        On the loop that drives the writer process (see the class notes), or
        with ``loop`` on that event loop, in the same callback that answers the
        loop's waiting deliveries (one wake-up per batch).
        """
        if loop is None:
            self._commit_listeners.append(listener)
        else:
            self._loop_listeners.setdefault(loop, []).append(listener)

    def close(self) -> None:
        """Finish every queued write, stop the writer process, then close. Safe to call twice.

        A :meth:`temporary` store's directory is deleted, file and all.
        """
        if self._closed:
            return
        self._closed = True
        loop = self._writer.loop
        if loop is not None and asyncio._get_running_loop() is not loop:
            with contextlib.suppress(RuntimeError):  # the outbox belongs to the loop's thread
                loop.call_soon_threadsafe(self._flush_outbox)
        else:
            self._flush_outbox()
        self._writer.close()
        with self._reader_lock:
            self._reader_db.close()
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --------------------------------------------------------------- writes

    def submit(
        self, delivery: Delivery, classification: Classification | None = None
    ) -> concurrent.futures.Future[Event]:
        """Queue a delivery from any thread; the future resolves to its Event once committed.

        For code that runs no event loop (tools, tests). Without
        ``classification`` the writer classifies the body. On the loop that
        drives the store, await :meth:`append` instead: waiting there on this
        future would stop the loop that has to answer it.
        """
        future: concurrent.futures.Future[Event] = concurrent.futures.Future()
        self._queue(EventJob(delivery, classification), future)
        return future

    async def append(
        self, delivery: Delivery, classification: Classification | None = None
    ) -> Event:
        """Store a delivery and return its Event once it is committed.

        Without ``classification`` the writer classifies the body, in its own process.
        """
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._queue(EventJob(delivery, classification), future)
        return await future

    async def reject(
        self,
        *,
        method: str,
        path: str,
        remote_addr: str | None,
        size: int | None,
        status: int,
        reason: str,
    ) -> Rejection:
        """Keep a line about a refused request (its body is not kept)."""
        job = RejectionJob(time.time(), method, path, remote_addr, size, status, reason)
        future: asyncio.Future[Rejection] = asyncio.get_running_loop().create_future()
        self._queue(job, future)
        return await future

    async def record_attempt(
        self,
        event_id: int,
        kind: str,
        attempt: Attempt,
        *,
        request_body: bytes | None = None,
        forwarded: bool = False,
    ) -> int:
        """Keep an attempt to send ``event_id`` to a handler; returns its id.

        ``forwarded``: forwarding is done with the event (answered, or given up
        on), so after a restart it resumes past it (:meth:`forwarded_through`),
        in the same transaction as the attempt.
        """
        values = (
            event_id,
            kind,
            attempt.target,
            attempt.started_at,
            attempt.latency_ms,
            attempt.status,
            attempt.error,
            attempt.failure,
            json.dumps(attempt.request_headers),
            request_body,
            json.dumps(attempt.response_headers),
            attempt.response_body,
        )
        return await self._record("forwarded" if forwarded else "attempt", values)

    async def start_forwarding(self, target: str, event_id: int) -> int:
        """Keep ``event_id`` as where forwarding to ``target`` starts, unless it has a cursor
        already (then nothing changes); returns the cursor now kept (:meth:`forwarded_through`).

        Kept in the store so that a first run whose handler never answered resumes after a
        restart where it began, rather than at the newest event then.
        """
        await self._record("forward_start", (target, event_id))
        found = self.forwarded_through(target)
        return event_id if found is None else found

    async def record_created(
        self,
        kind: str,
        resource_id: str,
        *,
        name: str | None,
        callback_url: str | None,
        response: Mapping[str, Any],
    ) -> None:
        """Remember a resource created through Tavus's API (again: its answer is updated)."""
        values = (time.time(), kind, resource_id, name, callback_url, json.dumps(response))
        await self._record("created", values)

    async def record_ended(self, kind: str, resource_id: str) -> bool:
        """Note that a created resource was ended; False if it was not created here."""
        return bool(await self._record("ended", (time.time(), kind, resource_id)))

    async def _record(self, record: str, values: tuple[Any, ...]) -> int:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue(RecordJob(record, values), future)
        return await future

    @overload
    def _queue(self, job: EventJob, future: _Future[Event]) -> None: ...
    @overload
    def _queue(self, job: RecordJob, future: _Future[int]) -> None: ...
    @overload
    def _queue(self, job: RejectionJob, future: _Future[Rejection]) -> None: ...
    def _queue(self, job: Job, future: _Future[Any]) -> None:
        """Hand ``job`` to the writer; ``future`` gets its outcome. The one way a job gets there.

        On the loop that drives the writer process the job joins this
        iteration's batch at once; from any other thread or loop it is handed
        to that loop first. An asyncio ``future`` is settled on its own loop.
        """
        if self._closed:
            raise StoreError("the store is closed")
        loop = future.get_loop() if isinstance(future, asyncio.Future) else None
        queued = _Job(job, future, loop)
        driver = self._writer.loop or self._writer.driving_loop(loop)
        if asyncio._get_running_loop() is driver:
            self._batch(queued)
            return
        try:
            driver.call_soon_threadsafe(self._batch, queued)
        except RuntimeError:
            raise StoreError("the event loop that drove the store's writer is closed") from None

    def _batch(self, queued: _Job) -> None:
        """On the driving loop: add a job to this iteration's batch."""
        if not self._outbox:
            # Hand the jobs of this loop iteration to the writer together, after
            # every ready handler has run: one wake-up and one full batch, instead
            # of a wake-up (and a GIL hand-off) per request.
            asyncio.get_running_loop().call_soon(self._flush_outbox)
        self._outbox.append(queued)
        if len(self._outbox) >= EARLY_SEND:
            self._flush_outbox()  # the next job schedules the iteration's last flush

    def _flush_outbox(self) -> None:
        jobs, self._outbox = self._outbox, []
        if not jobs:
            return
        try:
            done = functools.partial(self._finish, jobs)
            self._writer.send([queued.job for queued in jobs], done)
        except StoreError as exc:  # the writer is closing
            self._resolve(jobs, [exc] * len(jobs))
        except Exception:  # no writer process could be started (out of processes, files)
            log.exception("the store writer process could not take %d deliveries", len(jobs))
            self._resolve(jobs, [StoreError("the delivery could not be stored")] * len(jobs))

    def _resolve(
        self,
        batch: Sequence[_Job],
        outcomes: Sequence[object],
        events: list[Event] | None = None,
        rejections: list[Rejection] | None = None,
    ) -> None:
        """Settle each job's future and run loop listeners: one callback per loop and batch."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], object]]] = {}
        if events or rejections:
            by_loop = {loop: [] for loop in self._loop_listeners}
        for job, outcome in zip(batch, outcomes, strict=True):
            if job.loop is None:
                assert isinstance(job.future, concurrent.futures.Future)
                if isinstance(outcome, BaseException):
                    job.future.set_exception(outcome)
                else:
                    job.future.set_result(outcome)
            else:
                assert isinstance(job.future, asyncio.Future)
                by_loop.setdefault(job.loop, []).append((job.future, outcome))
        for loop, pairs in by_loop.items():
            listeners = self._loop_listeners.get(loop, ()) if events or rejections else ()
            if loop is asyncio._get_running_loop():
                _settle(pairs, listeners, events, rejections)
                continue
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting
                loop.call_soon_threadsafe(_settle, pairs, listeners, events, rejections)

    def _finish(self, batch: list[_Job], written: Written | WriterGone) -> None:
        """A batch came back from the writer: write its lines, tell listeners, answer."""
        if isinstance(written, WriterGone):
            log.error("%s; %d deliveries not stored (answered 503)", written, len(batch))
            self._stream_unanswered()
            self._resolve(batch, [StoreError("the delivery could not be stored")] * len(batch))
            return
        results, lines, notices = written
        events = [result for result in results if isinstance(result, Event)]
        if notices:
            self._file_notices(notices, events)
        if lines:
            self._emit(lines)
        if events:
            self._streamed_through = events[-1].id
        rejections = [result for result in results if isinstance(result, Rejection)]
        for listener in self._commit_listeners:
            try:
                listener(events, rejections)
            except Exception:
                log.exception("a commit listener failed")
        self._resolve(batch, results, events, rejections)

    def _file_notices(self, notices: Sequence[tuple[str, int]], events: list[Event]) -> None:
        """The writer found the file gone and made it again: read the new one, tell the user.

        A notice this process already gave (:meth:`check_file` got there first)
        is not repeated, unless it cost deliveries.
        """
        current = FileIdentity.of(self.path)
        known = current is not None and current == self._identity
        self._identity = current
        if not known:
            self._reopen_reader()
        # Ids start again in a new file: the stream goes on from this batch.
        self._streamed_through = events[0].id - 1 if events else self._newest_id()
        for text, lost in notices:
            if lost or not known:
                self._notice(text)

    def _stream_unanswered(self) -> None:
        """Write the lines of events a dead writer process committed but never answered.

        Their senders get 503 (and Tavus sends them again, stored as duplicates),
        but they are in the store, so they belong in the stream. They are
        rendered here, with the renderer the writer process was given.
        """
        if self._lines is None:
            return
        render = self._lines.render
        try:
            while missing := self.after(self._streamed_through, limit=500):
                self._emit("".join(render(event) + "\n" for event in missing))
                self._streamed_through = missing[-1].id
        except (StoreError, sqlite3.Error):
            log.exception("could not read back the events a stopped writer committed")

    def _emit(self, lines: str) -> None:
        """Write committed events' lines; a closed reader (``| head``) stops them."""
        if self._lines is None:
            return
        try:
            self._lines.sink.write(lines)
            self._lines.sink.flush()
        except (OSError, ValueError) as exc:
            log.warning("event lines output closed (%s); events are still stored", exc)
            self._lines = None


class ReadOnlyStore(StoreReader):
    """The store opened only to be read, for commands that show it (``history``).

    :class:`Store` creates and migrates the file, switches it to WAL and starts
    a writer; none of that may happen to a file a user only asked to look at,
    which may be on a read-only mount, another user's, or a newer
    tavus-monitor's. This opens it ``mode=ro`` (no writer, no migration, no
    change of journal mode) and answers :class:`Store`'s queries. Anything
    wrong with the file is a :class:`StoreError` whose text is one sentence for
    the user.
    """

    OLDEST_READABLE_SCHEMA = 1
    """The oldest schema whose files the queries read. Migrations 2 and 3 changed
    indexes only, and 4 added the search index, which only :meth:`search` reads
    (on an older file it says, in one sentence, that the monitor must run on it
    once); one that changes what the queries select must raise this."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._closed = False
        self._reader_lock = threading.Lock()
        try:
            if not path.exists():
                raise StoreError(f"there is no event store at {path}; check the --db path.")
            if not path.is_file():
                raise StoreError(
                    f"{path} is not a file; pass --db with the store file (events.db)."
                )
            with path.open("rb"):  # SQLite would only say "unable to open database file"
                pass
        except OSError as exc:
            raise StoreError(
                f"cannot read the event store {path} ({exc.strerror or exc}); "
                "check its permissions, or pass --db with another file."
            ) from exc
        try:
            self._reader_db, self.schema_version = self._open(path)
        except sqlite3.Error as exc:
            raise StoreError(self._unreadable(path, exc)) from exc
        if self.schema_version > SCHEMA_VERSION:
            self.close()
            raise StoreError(
                f"{path} was written by a newer tavus-monitor (schema {self.schema_version}, "
                f"this one knows {SCHEMA_VERSION}); upgrade tavus-monitor."
            )
        if self.schema_version == 0 and self._read("SELECT count(*) FROM sqlite_master")[0][0]:
            self.close()
            raise StoreError(
                f"{path} is an SQLite file but not a tavus-monitor event store; "
                "pass --db with the store file (events.db)."
            )
        if 0 < self.schema_version < self.OLDEST_READABLE_SCHEMA:
            self.close()
            raise StoreError(
                f"{path} was written by an older tavus-monitor (schema {self.schema_version}); "
                "start tavus-monitor on it once (with --db) to upgrade it, then read it."
            )

    @property
    def is_empty(self) -> bool:
        """Whether the file holds no store at all yet (an empty file: nothing to show)."""
        return self.schema_version == 0

    @classmethod
    def _open(cls, path: Path) -> tuple[sqlite3.Connection, int]:
        """A read-only connection to ``path`` and the file's schema version.

        A file in WAL mode is read through its ``-shm`` index, which SQLite makes
        when it is missing (the monitor removes it on a clean stop); in a
        directory this user cannot write, it cannot, and the file is opened
        ``immutable`` instead. That is safe only then: with no ``-shm``, no
        monitor has the file open. A ``-wal`` file with content but no index is
        the one such case that reading would get wrong (immutable ignores the
        WAL), so it is refused.
        """
        uri = path.absolute().as_uri() + "?mode=ro"
        try:
            return cls._connect_and_check(uri)
        except sqlite3.Error as exc:
            cannot_make_index = exc.sqlite_errorname.startswith(
                ("SQLITE_READONLY", "SQLITE_CANTOPEN")
            )
            if not cannot_make_index or path.with_name(path.name + "-shm").exists():
                raise
            first = exc
        wal = path.with_name(path.name + "-wal")
        with contextlib.suppress(OSError):
            if wal.stat().st_size > 0:
                raise StoreError(
                    f"{path} cannot be read here: {wal.name} holds events, and this directory "
                    "does not let the index SQLite needs to read them be made; copy "
                    f"{path.name}* to a writable directory and pass --db with the copy."
                )
        try:
            return cls._connect_and_check(uri + "&immutable=1")
        except sqlite3.Error:
            raise first from None

    @staticmethod
    def _connect_and_check(uri: str) -> tuple[sqlite3.Connection, int]:
        """Open ``uri`` and read its schema version (which is when SQLite opens the file)."""
        connection = connect(uri, uri=True)
        try:
            return connection, int(connection.execute("PRAGMA user_version").fetchone()[0])
        except BaseException:
            connection.close()
            raise

    @staticmethod
    def _unreadable(path: Path, exc: sqlite3.Error) -> str:
        if exc.sqlite_errorname.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
            return (
                f"{path} is not a tavus-monitor event store, or it is damaged ({exc}); "
                "pass --db with the store file (events.db)."
            )
        return (
            f"cannot read the event store {path} ({exc}); "
            "check its permissions, or pass --db with another file."
        )

    def __enter__(self) -> ReadOnlyStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection. Safe to call twice."""
        with self._reader_lock:
            if self._closed:
                return
            self._closed = True
            self._reader_db.close()


def _row_from_row(row: tuple[Any, ...]) -> EventRow:
    return EventRow(**row_fields(row))


def _event_from_row(row: tuple[Any, ...]) -> Event:
    body, headers, remote_addr, path, digest = row[12:]
    return Event(
        **row_fields(row),
        body=bytes(body),
        headers=tuple((str(k), str(v)) for k, v in json.loads(headers)),
        remote_addr=remote_addr,
        path=path,
        sha256=bytes(digest),
    )


def _where(query: EventQuery) -> tuple[str, list[Any]]:
    """The WHERE clause (with its leading space, or empty) and parameters for ``query``."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("family", query.family),
        ("event_type", query.event_type),
        ("conversation_id", query.conversation_id),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    for column, values in (("family", query.families), ("event_type", query.event_types)):
        if values is not None:
            where.append(f"{column} IN ({', '.join('?' * len(values)) or 'NULL'})")
            params.extend(values)
    if query.before_id is not None:
        where.append("id < ?")
        params.append(query.before_id)
    if query.after_id is not None:
        where.append("id > ?")
        params.append(query.after_id)
    text = "(summary LIKE ? ESCAPE '\\' OR CAST(body AS TEXT) LIKE ? ESCAPE '\\')"
    if query.search:
        pattern = "%" + _escape_like(query.search) + "%"
        where.append(text)
        params.extend((pattern, pattern))
    for word in query.without_words:
        pattern = "%" + _escape_like(word) + "%"
        where.append(f"NOT {text}")
        params.extend((pattern, pattern))
    if query.type_word is not None:
        clause, patterns = _type_word_sql(query.type_word)
        where.append(clause)
        params.extend(patterns)
    for word in query.without_types:
        clause, patterns = _type_word_sql(word)
        where.append(f"NOT {clause}")
        params.extend(patterns)
    if query.without_conversations:
        marks = ", ".join("?" * len(query.without_conversations))
        where.append(f"(conversation_id IS NULL OR conversation_id NOT IN ({marks}))")
        params.extend(query.without_conversations)
    return (" WHERE " + " AND ".join(where) if where else ""), params


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
