"""The SQLite event store: every delivery, byte-exact, committed before it is acknowledged.

One writer owns the only write connection and commits in groups: it takes
every job that is waiting, writes them in one transaction, commits, and only
then resolves their futures. The server answers 200 after that future
resolves, so "acknowledged" means "in the WAL", which survives ``kill -9``.
The writer is a thread here, or (``writer="process"``, what the monitor uses
for a file) a child process fed by the event loop; see :mod:`tavus_monitor.writer`.
The event loop never waits on SQLite; readers use their own connection and
WAL lets them run beside the writer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
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
from typing import Any, TextIO

from .events import Classification, Event, EventRow, row_fields
from .writer import (
    Delivery,
    Job,
    ProcessWriter,
    Rejection,
    SQLiteWriter,
    StoreError,
    WriterGone,
    WriterKind,
    Written,
)

__all__ = [
    "SCHEMA_VERSION",
    "ConversationRow",
    "Counts",
    "Delivery",
    "EventQuery",
    "Rejection",
    "Store",
    "StoreError",
]

log = logging.getLogger(__name__)

GROUP_COMMIT_MAX = 512
"""Most jobs written in one transaction; enough to amortise a commit under a burst."""
EARLY_SEND = 4
"""Jobs after which a loop iteration's batch goes to the writer process at once.

The child then starts classifying and committing them while this process
parses the rest of the iteration's requests (which it takes in its next
transaction), instead of idling until the whole iteration is done. Fewer
means more commits; more means less overlap. 4 measured best with
``bench/ingest.py`` (32 connections): about 10 % more requests/s than one
batch per iteration.
"""

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
    # 2: every index costs each insert time and its commit dirty pages. Nothing
    # queries by received_at (ids are in arrival order), and subject ids are
    # looked up only for replica and video jobs, a small part of all events.
    """
    DROP INDEX events_received;
    DROP INDEX events_subject;
    CREATE INDEX events_jobs ON events (family, subject_id, id)
        WHERE family IN ('replica', 'video');
    """,
    # 3: redeliveries are looked up within their conversation or job (see
    # writer._REDELIVERY); the digest index is kept for bodies with neither.
    """
    DROP INDEX events_sha;
    CREATE INDEX events_sha_orphans ON events (body_sha256)
        WHERE conversation_id IS NULL AND family NOT IN ('replica', 'video');
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


_ROW_COLUMNS = (  # EventRow's fields, in their order (see events.row_fields)
    "id, received_at, family, event_type, conversation_id, subject_id, summary, "
    "duplicate_of, error, length(body), occurred_at, severity"
)
_EVENT_COLUMNS = _ROW_COLUMNS + ", body, headers, remote_addr, path, body_sha256"


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
    job: Job
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


class _LockedWriter(SQLiteWriter):
    """The in-process writer, holding ``lock`` around each batch (see ``Store._write_lock``)."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        lock: contextlib.AbstractContextManager[Any],
        *,
        render_lines: bool,
    ) -> None:
        super().__init__(connection, render_lines=render_lines)
        self.lock = lock

    def write(self, jobs: Sequence[Job]) -> Written:
        with self.lock:
            return super().write(jobs)


def _descriptor(stream: TextIO | None) -> int | None:
    """The file descriptor behind ``stream``, if it has one (``sys.stdout`` does, StringIO not)."""
    if stream is None:
        return None
    try:
        return stream.fileno()
    except (OSError, ValueError, AttributeError):
        return None


def _connect(target: str, *, uri: bool) -> sqlite3.Connection:
    connection = sqlite3.connect(
        target, uri=uri, isolation_level=None, check_same_thread=False, timeout=30.0
    )
    connection.execute("PRAGMA busy_timeout = 30000")
    return connection


class Store:
    """Event store over one SQLite file (or shared in-memory database)."""

    def __init__(
        self,
        path: Path | None,
        *,
        synchronous: str = "NORMAL",
        writer: WriterKind = "thread",
        lines: TextIO | None = None,
    ) -> None:
        """Open (creating or migrating) the store. ``path=None`` keeps it in memory.

        ``writer="process"`` classifies and writes in a child process (see
        :mod:`tavus_monitor.writer`); an in-memory store always writes here.
        With ``lines``, each committed event's JSON line is written to it, in id
        order and before the delivery is acknowledged.
        """
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
        self._lines = lines
        self._local_writer: SQLiteWriter | None = None
        self._process_writer: ProcessWriter | None = None
        if writer == "process" and path is not None:
            self._writer_db.close()
            lines_fd = _descriptor(lines)
            if lines_fd is not None:
                assert lines is not None
                lines.flush()
                self._lines = None  # the child writes them
            self._process_writer = ProcessWriter(
                path, synchronous=synchronous, render_lines=lines is not None, lines_fd=lines_fd
            )
        else:
            self._local_writer = _LockedWriter(
                self._writer_db, self._write_lock, render_lines=lines is not None
            )
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._outbox: list[_Job] = []
        """Jobs queued on the event loop in this iteration, not yet given to the writer."""
        self._commit_listeners: list[CommitListener] = []
        self._loop_listeners: dict[asyncio.AbstractEventLoop, list[CommitListener]] = {}
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        """The loop that queued the first job (a process writer is driven from it)."""
        self._writer: threading.Thread | None = None
        if self._local_writer is not None:
            self._writer = threading.Thread(
                target=self._write_loop, name="store-writer", daemon=True
            )
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

    @property
    def writer_pid(self) -> int | None:
        """The writer process's id (None when writes happen on a thread here)."""
        return self._process_writer.pid if self._process_writer is not None else None

    def on_commit(
        self, listener: CommitListener, *, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        """Call ``listener`` after each commit, in id order.

        From the thread that finishes the batch (the writer thread, or the loop
        that drives a writer process), or with ``loop`` on that event loop, in the
        same callback that answers the loop's waiting deliveries (one wake-up per batch).
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
        loop = self._loop
        if self._outbox and loop is not None and asyncio._get_running_loop() is not loop:
            with contextlib.suppress(RuntimeError):  # the outbox belongs to the loop's thread
                loop.call_soon_threadsafe(self._flush_outbox)
        else:
            self._flush_outbox()
        if self._process_writer is not None:
            self._process_writer.close()
        if self._writer is not None:
            self._jobs.put(None)
            self._writer.join()
        if self._local_writer is not None:
            self._local_writer.close()
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
        """Queue a delivery; the future resolves to its Event once committed.

        Without ``classification`` the writer classifies the body.
        """
        return self._submit(("event", (delivery, classification)))

    async def append(
        self, delivery: Delivery, classification: Classification | None = None
    ) -> Event:
        """Store a delivery and return its Event once it is committed.

        Without ``classification`` the writer classifies the body, off the event loop.
        """
        event: Event = await self._submit_async(("event", (delivery, classification)))
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
        rejection: Rejection = await self._submit_async(("rejection", data))
        return rejection

    def _submit(self, job: Job) -> concurrent.futures.Future[Any]:
        if self._closed:
            raise StoreError("the store is closed")
        if self._process_writer is not None:
            # The child's pipes belong to the loop that drives them.
            if self._loop is None:
                raise StoreError("a store with a writer process takes writes on its event loop")
            return asyncio.run_coroutine_threadsafe(self._queue_async(job), self._loop)
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._jobs.put(_Job(job, future))
        return future

    async def _queue_async(self, job: Job) -> Any:
        return await self._submit_async(job)

    def _submit_async(self, job: Job) -> asyncio.Future[Any]:
        """Queue a job from the event loop; the future is settled on the loop."""
        if self._closed:
            raise StoreError("the store is closed")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        future = loop.create_future()
        if not self._outbox:
            # Hand the jobs of this loop iteration to the writer together, after
            # every ready handler has run: one wake-up and one full batch, instead
            # of a wake-up (and a GIL hand-off) per request.
            loop.call_soon(self._flush_outbox)
        self._outbox.append(_Job(job, future, loop))
        if self._process_writer is not None and len(self._outbox) >= EARLY_SEND:
            self._flush_outbox()  # the next job schedules the iteration's last flush
        return future

    def _flush_outbox(self) -> None:
        jobs, self._outbox = self._outbox, []
        if not jobs:
            return
        if self._process_writer is not None:
            try:
                self._process_writer.send(
                    [queued.job for queued in jobs], functools.partial(self._finish, jobs)
                )
            except Exception:  # no writer process could be started (out of processes, files)
                log.exception("the store writer process could not take %d deliveries", len(jobs))
                self._resolve(jobs, [StoreError("the delivery could not be stored")] * len(jobs))
            return
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
            if loop is asyncio._get_running_loop():
                _settle(pairs, listeners, events, rejections)
                continue
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
            assert self._local_writer is not None
            try:
                self._finish(batch, self._local_writer.write([queued.job for queued in batch]))
            except Exception:  # a bug, not a refusal (SQLite's are outcomes): keep serving
                log.exception("the store writer failed on a batch")
                self._resolve(batch, [StoreError("the delivery could not be stored")] * len(batch))

    def _finish(self, batch: list[_Job], written: Written | WriterGone) -> None:
        """A batch came back from the writer: print its lines, tell listeners, answer."""
        if isinstance(written, WriterGone):
            log.error("%s; %d deliveries not stored (answered 503)", written, len(batch))
            self._resolve(batch, [StoreError("the delivery could not be stored")] * len(batch))
            return
        results, lines = written
        if lines:
            self._emit(lines)
        events = [result for result in results if isinstance(result, Event)]
        rejections = [result for result in results if isinstance(result, Rejection)]
        for listener in self._commit_listeners:
            try:
                listener(events, rejections)
            except Exception:
                log.exception("a commit listener failed")
        self._resolve(batch, results, events, rejections)

    def _emit(self, lines: str) -> None:
        """Write committed events' JSON lines; a closed reader (``| head``) stops them."""
        if self._lines is None:
            return
        try:
            self._lines.write(lines)
            self._lines.flush()
        except (OSError, ValueError) as exc:
            log.warning("JSON lines output closed (%s); events are still stored", exc)
            self._lines = None

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
    if query.search:
        pattern = "%" + _escape_like(query.search) + "%"
        where.append("(summary LIKE ? ESCAPE '\\' OR CAST(body AS TEXT) LIKE ? ESCAPE '\\')")
        params.extend((pattern, pattern))
    return (" WHERE " + " AND ".join(where) if where else ""), params


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _split_sql(script: str) -> list[str]:
    return [statement.strip() for statement in script.split(";") if statement.strip()]
