"""The SQLite event store: every delivery, byte-exact, committed before it is acknowledged.

One writer thread owns the only write connection and commits in groups: it
takes every job that is waiting, writes them in one transaction, commits, and
only then resolves their futures. The server answers 200 after that future
resolves, so "acknowledged" means "in the WAL", which survives ``kill -9``.
The event loop never waits on SQLite; readers use their own connection and
WAL lets them run beside the writer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .events import (
    Classification,
    Event,
    EventRow,
    Family,
    Headers,
    Severity,
    body_digest,
    classify,
)

log = logging.getLogger(__name__)

GROUP_COMMIT_MAX = 512
"""Most jobs written in one transaction; enough to amortise a commit under a burst."""

JOIN_TYPES = ("system.replica_joined", "system.pal_joined")

MIGRATIONS: tuple[str, ...] = (
    # 1: events and rejected requests.
    """
    CREATE TABLE events (
        id              INTEGER PRIMARY KEY,
        received_at     REAL    NOT NULL,
        family          TEXT    NOT NULL,
        event_type      TEXT    NOT NULL,
        conversation_id TEXT,
        subject_id      TEXT,
        summary         TEXT    NOT NULL,
        duplicate_of    INTEGER REFERENCES events(id),
        error           TEXT,
        occurred_at     REAL,
        severity        TEXT    NOT NULL,
        body            BLOB    NOT NULL,
        body_sha256     BLOB    NOT NULL,
        headers         TEXT    NOT NULL,
        remote_addr     TEXT,
        path            TEXT    NOT NULL
    );
    CREATE INDEX events_family ON events (family, id);
    CREATE INDEX events_type ON events (event_type, id);
    CREATE INDEX events_conversation ON events (conversation_id, id)
        WHERE conversation_id IS NOT NULL;
    CREATE INDEX events_subject ON events (subject_id, id) WHERE subject_id IS NOT NULL;
    CREATE INDEX events_sha ON events (body_sha256);
    CREATE INDEX events_received ON events (received_at);
    CREATE TABLE rejected (
        id          INTEGER PRIMARY KEY,
        received_at REAL    NOT NULL,
        method      TEXT    NOT NULL,
        path        TEXT    NOT NULL,
        remote_addr TEXT,
        size        INTEGER,
        status      INTEGER NOT NULL,
        reason      TEXT    NOT NULL
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


_ROW_COLUMNS = (
    "id, received_at, family, event_type, conversation_id, subject_id, summary, "
    "duplicate_of, error, length(body), occurred_at, severity"
)
_EVENT_COLUMNS = _ROW_COLUMNS + ", body, headers, remote_addr, path, body_sha256"


class StoreError(Exception):
    """The store could not keep a delivery (disk full, file unreadable, ...)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """A request body as it arrived, with the request facts worth keeping."""

    body: bytes
    headers: Headers = ()
    received_at: float = 0.0
    remote_addr: str | None = None
    path: str = "/webhook"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A request that was refused (wrong token, wrong path, too large, ...)."""

    id: int
    received_at: float
    method: str
    path: str
    """The path with any token redacted."""
    remote_addr: str | None
    size: int | None
    status: int
    reason: str


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

    def matches(self, row: EventRow | Event) -> bool:
        """Whether an event (e.g. one just received) belongs in this query's result.

        ``search`` is checked against the summary only here; the store also
        searches bodies, so a live view re-queries when it filters by text.
        """
        return (
            (self.family is None or row.family == self.family)
            and (self.families is None or row.family in self.families)
            and (self.event_type is None or row.event_type == self.event_type)
            and (self.event_types is None or row.event_type in self.event_types)
            and (self.conversation_id is None or row.conversation_id == self.conversation_id)
            and (not self.search or self.search.lower() in row.summary.lower())
        )


@dataclass(frozen=True, slots=True)
class ConversationRow:
    """One conversation in a list: its id, how many events, first and last arrival."""

    conversation_id: str
    events: int
    first_id: int
    last_id: int
    first_received_at: float
    last_received_at: float


@dataclass(slots=True)
class _Job:
    kind: str  # "event" or "rejection"
    data: Any
    future: concurrent.futures.Future[Any] | asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop | None = None
    """The loop owning ``future`` when it is an asyncio future."""


CommitListener = Callable[[list[Event], list[Rejection]], None]


def _settle(
    pairs: list[tuple[asyncio.Future[Any], object]],
    listeners: Sequence[CommitListener] = (),
    events: list[Event] | None = None,
    rejections: list[Rejection] | None = None,
) -> None:
    """On the loop: tell its commit listeners, then resolve the futures of one batch.

    Listeners first, so whoever watches the bus sees an event no later than
    its sender sees the answer. Cancelled futures are skipped.
    """
    for listener in listeners:
        try:
            listener(events or [], rejections or [])
        except Exception:
            log.exception("a commit listener failed")
    for future, outcome in pairs:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _connect(target: str, *, uri: bool) -> sqlite3.Connection:
    connection = sqlite3.connect(
        target, uri=uri, isolation_level=None, check_same_thread=False, timeout=30.0
    )
    connection.execute("PRAGMA busy_timeout = 30000")
    return connection


class Store:
    """Event store over one SQLite file (or shared in-memory database)."""

    def __init__(self, path: Path | None, *, synchronous: str = "NORMAL") -> None:
        """Open (creating or migrating) the store. ``path=None`` keeps it in memory."""
        self.path = path
        if path is None:
            self._target = f"file:tavus-monitor-{uuid.uuid4().hex}?mode=memory&cache=shared"
            self._uri = True
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._target = str(path)
            self._uri = False
        self._writer_db = _connect(self._target, uri=self._uri)
        if path is not None:
            self._writer_db.execute("PRAGMA journal_mode = WAL")
        self._writer_db.execute(f"PRAGMA synchronous = {synchronous}")
        try:
            self._migrate()
        except BaseException:
            self._writer_db.close()
            raise
        self._reader_db = _connect(self._target, uri=self._uri)
        self._reader_lock = threading.Lock()
        # A shared-cache in-memory database has table locks that fail at once
        # (SQLITE_LOCKED, no busy timeout) when a read overlaps a write, so the
        # writer takes the reader lock around each transaction there.
        self._write_lock: contextlib.AbstractContextManager[Any] = (
            self._reader_lock if path is None else contextlib.nullcontext()
        )
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._outbox: list[_Job] = []
        """Jobs queued on the event loop in this iteration, not yet given to the writer."""
        self._commit_listeners: list[CommitListener] = []
        self._loop_listeners: dict[asyncio.AbstractEventLoop, list[CommitListener]] = {}
        self._closed = False
        self._writer = threading.Thread(target=self._write_loop, name="store-writer", daemon=True)
        self._writer.start()

    # ------------------------------------------------------------ lifecycle

    def _migrate(self) -> None:
        db = self._writer_db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self._target} was written by a newer tavus-monitor "
                f"(schema {version}, this one knows {SCHEMA_VERSION}); upgrade tavus-monitor."
            )
        for number in range(version, SCHEMA_VERSION):
            db.execute("BEGIN IMMEDIATE")
            try:
                for statement in _split_sql(MIGRATIONS[number]):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number + 1}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def on_commit(
        self, listener: CommitListener, *, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        """Call ``listener`` after each commit, in id order.

        From the writer thread, or with ``loop`` on that event loop, in the same
        callback that answers the loop's waiting deliveries (one wake-up per batch).
        """
        if loop is None:
            self._commit_listeners.append(listener)
        else:
            self._loop_listeners.setdefault(loop, []).append(listener)

    def close(self) -> None:
        """Finish every queued write, then close. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._flush_outbox()
        self._jobs.put(None)
        self._writer.join()
        self._writer_db.close()
        with self._reader_lock:
            self._reader_db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --------------------------------------------------------------- writes

    def submit(
        self, delivery: Delivery, classification: Classification | None = None
    ) -> concurrent.futures.Future[Event]:
        """Queue a delivery; the future resolves to its Event once committed."""
        if classification is None:
            classification = classify(delivery.body, delivery.headers)
        return self._submit("event", (delivery, classification))

    async def append(
        self, delivery: Delivery, classification: Classification | None = None
    ) -> Event:
        """Store a delivery and return its Event once it is committed."""
        if classification is None:
            classification = classify(delivery.body, delivery.headers)
        event: Event = await self._submit_async("event", (delivery, classification))
        return event

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
        data = (time.time(), method, path, remote_addr, size, status, reason)
        rejection: Rejection = await self._submit_async("rejection", data)
        return rejection

    def _submit(self, kind: str, data: Any) -> concurrent.futures.Future[Any]:
        if self._closed:
            raise StoreError("the store is closed")
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._jobs.put(_Job(kind, data, future))
        return future

    def _submit_async(self, kind: str, data: Any) -> asyncio.Future[Any]:
        """Queue a job from the event loop; the future is settled on the loop."""
        if self._closed:
            raise StoreError("the store is closed")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._outbox:
            # Hand the jobs of this loop iteration to the writer together, after
            # every ready handler has run: one wake-up and one full batch, instead
            # of a wake-up (and a GIL hand-off) per request.
            loop.call_soon(self._flush_outbox)
        self._outbox.append(_Job(kind, data, future, loop))
        return future

    def _flush_outbox(self) -> None:
        jobs, self._outbox = self._outbox, []
        for job in jobs:
            self._jobs.put(job)

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
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting
                loop.call_soon_threadsafe(_settle, pairs, listeners, events, rejections)

    def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            first = self._jobs.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < GROUP_COMMIT_MAX:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                batch.append(job)
            self._write_batch(batch)

    def _write_batch(self, batch: list[_Job]) -> None:
        try:
            results = self._write_in_transaction(batch)
        except sqlite3.Error:
            if len(batch) == 1:
                log.exception("could not store a delivery")
                self._resolve(batch, [StoreError("the delivery could not be stored")])
                return
            # One bad job must not fail its neighbours: write each on its own.
            for job in batch:
                self._write_batch([job])
            return
        events = [result for result in results if isinstance(result, Event)]
        rejections = [result for result in results if isinstance(result, Rejection)]
        for listener in self._commit_listeners:
            try:
                listener(events, rejections)
            except Exception:
                log.exception("a commit listener failed")
        self._resolve(batch, results, events, rejections)

    def _write_in_transaction(self, batch: Sequence[_Job]) -> list[Event | Rejection]:
        db = self._writer_db
        with self._write_lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                results: list[Event | Rejection] = []
                for job in batch:
                    if job.kind == "event":
                        results.append(self._insert_event(*job.data))
                    else:
                        results.append(self._insert_rejection(job.data))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return results

    def _insert_event(self, delivery: Delivery, c: Classification) -> Event:
        db = self._writer_db
        digest = body_digest(delivery.body)
        twin: int | None = None
        if c.is_join and c.conversation_id is not None:
            row = db.execute(
                "SELECT id FROM events WHERE conversation_id = ? AND event_type IN (?, ?) "
                "ORDER BY id LIMIT 1",
                (c.conversation_id, *JOIN_TYPES),
            ).fetchone()
            twin = row[0] if row is not None else None
        received_at = delivery.received_at or time.time()
        # One statement per event: the redelivery lookup runs inside the INSERT.
        event_id, duplicate_of = db.execute(
            "INSERT INTO events (received_at, family, event_type, conversation_id, subject_id, "
            "summary, duplicate_of, error, occurred_at, severity, body, body_sha256, headers, "
            "remote_addr, path) VALUES (?1, ?2, ?3, ?4, ?5, ?6, coalesce("
            "(SELECT id FROM events WHERE body_sha256 = ?12 ORDER BY id LIMIT 1), ?16), "
            "?7, ?8, ?9, ?10, ?12, ?13, ?14, ?15) RETURNING id, duplicate_of",
            (
                received_at,
                str(c.family),
                c.event_type,
                c.conversation_id,
                c.subject_id,
                c.summary,
                c.error,
                c.occurred_at,
                str(c.severity),
                delivery.body,
                None,
                digest,
                orjson.dumps(delivery.headers).decode(),
                delivery.remote_addr,
                delivery.path,
                twin,
            ),
        ).fetchone()
        event = Event(
            id=event_id,
            received_at=received_at,
            family=c.family,
            event_type=c.event_type,
            conversation_id=c.conversation_id,
            subject_id=c.subject_id,
            summary=c.summary,
            duplicate_of=duplicate_of,
            error=c.error,
            size=len(delivery.body),
            occurred_at=c.occurred_at,
            severity=c.severity,
            body=delivery.body,
            headers=delivery.headers,
            remote_addr=delivery.remote_addr,
            path=delivery.path,
            sha256=digest,
        )
        if c.parsed is not None:
            # Event.parsed is a cached_property: seed it so the body is parsed once.
            event.__dict__["parsed"] = c.parsed
        return event

    def _insert_rejection(self, data: tuple[Any, ...]) -> Rejection:
        cursor = self._writer_db.execute(
            "INSERT INTO rejected (received_at, method, path, remote_addr, size, status, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            data,
        )
        assert cursor.lastrowid is not None
        return Rejection(cursor.lastrowid, *data)

    # ---------------------------------------------------------------- reads

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

    def jobs(self, limit: int = 500) -> list[EventRow]:
        """The latest callback of each replica training and video generation, newest first."""
        rows = self._read(
            f"SELECT {_ROW_COLUMNS} FROM events WHERE id IN ("
            "SELECT max(id) FROM events WHERE family IN ('replica', 'video') "
            "GROUP BY family, subject_id) ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [_row_from_row(row) for row in rows]

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


def _row_fields(row: tuple[Any, ...]) -> dict[str, Any]:
    """The EventRow fields from the first columns of a row (see ``_ROW_COLUMNS``)."""
    (
        event_id,
        received_at,
        family,
        event_type,
        conversation_id,
        subject_id,
        summary,
        duplicate_of,
        error,
        size,
        occurred_at,
        severity,
    ) = row[:12]
    return {
        "id": event_id,
        "received_at": received_at,
        "family": Family(family),
        "event_type": event_type,
        "conversation_id": conversation_id,
        "subject_id": subject_id,
        "summary": summary,
        "duplicate_of": duplicate_of,
        "error": error,
        "size": size,
        "occurred_at": occurred_at,
        "severity": Severity(severity),
    }


def _row_from_row(row: tuple[Any, ...]) -> EventRow:
    return EventRow(**_row_fields(row))


def _event_from_row(row: tuple[Any, ...]) -> Event:
    body, headers, remote_addr, path, digest = row[12:]
    return Event(
        **_row_fields(row),
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
    if query.search:
        pattern = "%" + _escape_like(query.search) + "%"
        where.append("(summary LIKE ? ESCAPE '\\' OR CAST(body AS TEXT) LIKE ? ESCAPE '\\')")
        params.extend((pattern, pattern))
    return (" WHERE " + " AND ".join(where) if where else ""), params


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _split_sql(script: str) -> list[str]:
    return [statement.strip() for statement in script.split(";") if statement.strip()]
