"""Writing deliveries into the store file: what the writer process runs.

The store has one writer, a child process (started and fed by
:class:`tavus_monitor.writerprocess.ProcessWriter`; why a process, with the
measurements, is told there). This module is that child's program, and
nothing in it is needed by the parent but the job types and the pipe format.
The child imports only this, the event model and the store file (no asyncio,
no subprocess, no command-line parser), because every store starts one, every
test of the store included: importing this module took 86 ms while it also
held the parent's side, and takes 45 ms now (``python -X importtime``, 2
cores, no ``.pyc`` files); a child that starts, opens the store and stops
takes 78 ms instead of 106.

:class:`SQLiteWriter` classifies every delivery of a batch, inserts the batch
in one transaction, commits, and, when the store was given a renderer, renders
each committed event as one line of text. The renderer is not chosen here:
the parent names it (``module:function``, see :func:`renderer_name`) and the
child imports it from the parent's own package, so storage knows no output
format (the JSON lines of headless mode are :mod:`tavus_monitor.jsonlines`,
which headless mode gives the store).

A batch crosses the pipe as one length-prefixed ``marshal`` frame each way
(both ends are the same interpreter, so marshal's format always matches). The
child ignores SIGINT and SIGTERM (a Ctrl+C meant for the monitor reaches the
whole process group) and exits when its stdin closes, which also happens when
the parent dies, after finishing the batch it holds.

The writer checks, before and after each transaction, that the path still
names the file it opened (:class:`~tavus_monitor.storefile.FileIdentity`).
A file deleted or replaced while idle is made again before writing; one
that went during a transaction fails that batch with
:class:`~tavus_monitor.storefile.StoreFileLost` (answered 503, so Tavus
sends it again), because what it committed went with the old file.
"""

from __future__ import annotations

import importlib
import logging
import marshal
import os
import select
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from . import event_types
from .events import (
    Classification,
    Delivery,
    Event,
    Family,
    Rejection,
    Severity,
    StoreError,
    StoreFileLost,
    body_digest,
    classify,
    row_fields,
)
from .jsonbody import parse_json
from .search import index_rows, rowid
from .storefile import (
    SEARCH_TABLE,
    UNINDEXED,
    FileIdentity,
    has_search_index,
    lost_file_notice,
    open_for_writing,
)

log = logging.getLogger(__name__)

JOIN_TYPES = tuple(sorted(event_types.stage_types(event_types.JOINED)))
"""The types a conversation's join arrives as (``pal_joined`` repeats ``replica_joined``)."""
_REDELIVERY = (
    # The first earlier event with the same body (?12). An identical body has
    # the same conversation (?4) or job (?2, ?5), so the lookup runs within
    # those indexes; only bodies with neither need an index on the digest
    # itself, which keeps a random-order index write off the common insert.
    "(CASE WHEN ?4 IS NOT NULL THEN (SELECT id FROM events WHERE conversation_id = ?4 "
    "AND body_sha256 = ?12 ORDER BY id LIMIT 1) "
    "WHEN ?2 IN ('replica', 'video') THEN (SELECT id FROM events WHERE family = ?2 "
    "AND family IN ('replica', 'video') AND subject_id IS ?5 AND body_sha256 = ?12 "
    "ORDER BY id LIMIT 1) "
    "ELSE (SELECT id FROM events WHERE conversation_id IS NULL "
    "AND family NOT IN ('replica', 'video') AND body_sha256 = ?12 ORDER BY id LIMIT 1) END)"
)
FRAME_HEADER = 4
"""Bytes of a frame's length prefix (little-endian)."""


@dataclass(frozen=True, slots=True)
class EventJob:
    """Store ``delivery``; the writer classifies it unless ``classification`` is given."""

    delivery: Delivery
    classification: Classification | None = None


@dataclass(frozen=True, slots=True)
class RejectionJob:
    """Keep a line about a refused request (its body is not kept)."""

    received_at: float
    method: str
    path: str
    """Already redacted."""
    remote_addr: str | None
    size: int | None
    status: int
    reason: str

    def fields(self) -> tuple[Any, ...]:
        """The values, in the order of the ``rejected`` table's columns after ``id``."""
        return (
            self.received_at,
            self.method,
            self.path,
            self.remote_addr,
            self.size,
            self.status,
            self.reason,
        )

    def rejection(self, rejection_id: int) -> Rejection:
        return Rejection(rejection_id, *self.fields())


@dataclass(frozen=True, slots=True)
class RecordJob:
    """Keep a fact about an event or a Tavus resource: a row of one of :data:`RECORDS`.

    Its outcome is the row's id. These are the monitor's own records (what a
    handler answered, what was created through the API), not deliveries, so
    they reach no renderer and no commit listener.
    """

    record: str
    """A key of :data:`RECORDS`."""
    values: tuple[Any, ...]


RECORDS: dict[str, tuple[str, ...]] = {
    # An attempt to send an event to a handler (attempts.StoredAttempt's fields).
    "attempt": (
        "INSERT INTO attempts (event_id, kind, target, started_at, latency_ms, status, error, "
        "failure, request_headers, request_body, response_headers, response_body) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    ),
    # The same, by forwarding, which is then done with the event: the cursor moves past it.
    "forwarded": (
        "INSERT INTO attempts (event_id, kind, target, started_at, latency_ms, status, error, "
        "failure, request_headers, request_body, response_headers, response_body) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        "INSERT INTO forward_cursor (target, event_id) SELECT target, event_id FROM attempts "
        "WHERE id = last_insert_rowid() ON CONFLICT (target) "
        "DO UPDATE SET event_id = max(event_id, excluded.event_id)",
    ),
    # Forwarding to a target starts here (its first run): kept unless it has a cursor already.
    "forward_start": (
        "INSERT INTO forward_cursor (target, event_id) VALUES (?1, ?2) "
        "ON CONFLICT (target) DO NOTHING",
    ),
    # A resource created through Tavus's API with this monitor's callback URL.
    "created": (
        "INSERT INTO created (created_at, kind, resource_id, name, callback_url, response) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (kind, resource_id) DO UPDATE SET "
        "name = coalesce(excluded.name, name), "
        "callback_url = coalesce(excluded.callback_url, callback_url), "
        "response = excluded.response",
    ),
    # It was ended (a conversation) through the API.
    "ended": ("UPDATE created SET ended_at = ?1 WHERE kind = ?2 AND resource_id = ?3",),
}
"""Each record's statements, run in order in the batch's transaction: the first with the
job's values, the rest with none (they read what the first wrote). The outcome is the
first one's row (an insert) or how many rows it changed (an update)."""


Job = EventJob | RejectionJob | RecordJob
Outcome = Event | Rejection | int | StoreError
Notice = tuple[str, int]
"""A sentence for the user about the store file, and how many deliveries it cost."""
Written = tuple[list[Outcome], str, tuple[Notice, ...]]
"""What a batch became: one outcome per job, the events' lines ("" without a renderer),
and notices for the user (the store file was lost and made again)."""
Render = Callable[[Event], str]
"""Renders a committed event as one line of text (no newline)."""


_INSERT_EVENT = (
    "INSERT INTO events (received_at, family, event_type, conversation_id, subject_id, "
    "summary, duplicate_of, error, occurred_at, severity, body, body_sha256, headers, "
    "remote_addr, path) VALUES (?1, ?2, ?3, ?4, ?5, ?6, coalesce(" + _REDELIVERY + ", ?16), "
    "?7, ?8, ?9, ?10, ?12, ?13, ?14, ?15) RETURNING id, duplicate_of"
)

_INDEX_ROW = f"INSERT INTO {SEARCH_TABLE} (rowid, text) VALUES (?, ?)"
INDEX_BATCH = 100
"""Events indexed per transaction when nothing else waits (at exit)."""
INDEX_SLICE = 25
"""Events indexed per transaction between batches: about 2-3 ms of the writer."""
IDLE_WAIT = 0.005
"""Seconds without a batch after which the writer counts as idle and may index."""
INDEX_AT_EXIT = 2.0
"""Seconds a stopping writer goes on indexing what it has not indexed yet."""


class SQLiteWriter:
    """Writes batches of jobs in one transaction each on its own connection.

    It also makes sure every batch it acknowledges went into the file that
    ``path`` names (see the module notes). With ``render``, each batch's
    committed events come back rendered as lines too.
    """

    def __init__(
        self,
        connection: sqlite3.Connection,
        *,
        path: Path,
        identity: FileIdentity | None,
        synchronous: str = "NORMAL",
        render: Render | None = None,
    ) -> None:
        self.db: sqlite3.Connection | None = connection
        self.path = path
        self.identity = identity
        self.synchronous = synchronous
        self.render = render
        self.indexing = has_search_index(connection)
        """Whether the file has the search index (FTS5 may be missing: then it has none)."""

    def write(self, jobs: Sequence[Job]) -> Written:
        """Insert ``jobs`` in one transaction and commit.

        If SQLite refuses the batch, each job is retried in its own transaction
        so one bad job cannot fail its neighbours; a job that still fails gets a
        :class:`StoreError` as its outcome.
        """
        notices: list[Notice] = []
        stale = self.db is None or not self._file_is_ours()
        if stale and not self._reopen(notices, lost=0):
            error = StoreError(f"the store file {self.path} cannot be opened")
            return [error] * len(jobs), "", tuple(notices)
        results = self._write(jobs)
        if not self._file_is_ours():
            # Committed into a file that is gone: not acknowledged; Tavus retries.
            lost = sum(isinstance(result, Event | Rejection) for result in results)
            results = [StoreFileLost(f"{self.path} was deleted or replaced")] * len(jobs)
            self._reopen(notices, lost=lost)
        lines = ""
        render = self.render
        if render is not None:
            lines = "".join(
                [render(result) + "\n" for result in results if isinstance(result, Event)]
            )
        return results, lines, tuple(notices)

    def _write(self, jobs: Sequence[Job]) -> list[Outcome]:
        try:
            return list(self._transaction(jobs))
        except sqlite3.Error:
            if len(jobs) == 1:
                log.exception("could not store a delivery")
                return [StoreError("the delivery could not be stored")]
            return [outcome for job in jobs for outcome in self._write([job])]

    def _file_is_ours(self) -> bool:
        return self.identity is not None and FileIdentity.of(self.path) == self.identity

    def _reopen(self, notices: list[Notice], *, lost: int) -> bool:
        """Open ``path`` again (making a new file if it is missing); False if that fails."""
        if self.db is not None:
            self.db.close()
            self.db = None
        try:
            self.db, self.identity = open_for_writing(self.path, synchronous=self.synchronous)
            self.indexing = has_search_index(self.db)
        except (OSError, sqlite3.Error, StoreError) as exc:
            text = lost_file_notice(self.path, lost=lost, error=exc)
            log.error("%s", text)
            if self.identity is not None:  # say it once, not once per batch
                notices.append((text, lost))
                self.identity = None
            return False
        text = lost_file_notice(self.path, lost=lost)
        log.error("%s", text)
        notices.append((text, lost))
        return True

    def close(self) -> None:
        if self.db is not None:
            self.db.close()

    def _transaction(self, jobs: Sequence[Job]) -> list[Event | Rejection | int]:
        db = self.db
        assert db is not None
        db.execute("BEGIN IMMEDIATE")
        try:
            results: list[Event | Rejection | int] = []
            for job in jobs:
                if isinstance(job, EventJob):
                    results.append(self._insert_event(job.delivery, job.classification))
                elif isinstance(job, RecordJob):
                    results.append(self._insert_record(job))
                else:
                    results.append(self._insert_rejection(job))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return results

    def _insert_event(self, delivery: Delivery, c: Classification | None) -> Event:
        db = self.db
        assert db is not None
        if c is None:
            c = classify(delivery.body, delivery.headers)
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
            _INSERT_EVENT,
            (
                received_at,
                *_classification_fields(c),
                delivery.body,
                None,
                digest,
                orjson.dumps(delivery.headers).decode(),
                delivery.remote_addr,
                delivery.path,
                twin,
            ),
        ).fetchone()
        event = Event.classified(
            c,
            event_id=event_id,
            received_at=received_at,
            body=delivery.body,
            duplicate_of=duplicate_of,
            headers=delivery.headers,
            remote_addr=delivery.remote_addr,
            path=delivery.path,
            sha256=digest,
        )
        return event

    def index_pending(self, limit: int = INDEX_BATCH) -> int:
        """Index for search up to ``limit`` stored events it lacks, in one transaction.

        Indexing is not part of storing: in the same transaction it doubled the
        writer's time per event (about 50 → 100 µs) and cut ``bench/ingest.py``
        from 0.46-0.54 of a bare receiver to 0.36. So the writer commits and
        answers first, and indexes what is stored but not yet searchable while no
        batch is waiting (:func:`_index_while_idle`; 0.47 again): a search lags a
        burst by the time the burst takes to end.
        The index's own rowids say how far it got (the newest indexed event's id,
        see :func:`~tavus_monitor.search.rowid`), so a store from before the index,
        or one the writer left mid-way, is caught up the same way. Returns how
        many events it indexed.
        """
        db = self.db
        if db is None or not self.indexing:
            return 0
        rows = db.execute(
            f"SELECT id, summary, body FROM events WHERE {UNINDEXED} ORDER BY id LIMIT ?",
            (limit,),
        ).fetchall()
        if not rows:
            return 0
        db.execute("BEGIN IMMEDIATE")
        try:
            for event_id, summary, body in rows:
                body = bytes(body)
                db.executemany(
                    _INDEX_ROW,
                    [
                        (rowid(event_id, row.turn), row.text)
                        for row in index_rows(parse_json(body).value, summary, body=body)
                    ],
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return len(rows)

    def _insert_record(self, job: RecordJob) -> int:
        assert self.db is not None
        first, *rest = RECORDS[job.record]
        cursor = self.db.execute(first, job.values)
        # An insert's outcome is its row; an update's, how many rows it changed.
        row_id = (cursor.lastrowid or 0) if first.startswith("INSERT") else cursor.rowcount
        for statement in rest:
            self.db.execute(statement)
        return row_id

    def _insert_rejection(self, job: RejectionJob) -> Rejection:
        assert self.db is not None
        cursor = self.db.execute(
            "INSERT INTO rejected (received_at, method, path, remote_addr, size, status, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            job.fields(),
        )
        assert cursor.lastrowid is not None
        return job.rejection(cursor.lastrowid)


# ------------------------------------------------------------ the renderer


def renderer_name(render: Render) -> str:
    """``module:function``, by which the writer process imports ``render``.

    The child loads nothing but its parent's own package (see
    :mod:`tavus_monitor.writerprocess`), so ``render`` must be a module-level
    function of that package; anything else (a lambda, a method, a function
    of another package) is refused here, in the parent, rather than making
    every child die at start.
    """
    module, qualname = getattr(render, "__module__", None), getattr(render, "__qualname__", "")
    name = f"{module}:{qualname}"
    package = __name__.rpartition(".")[0]
    if not (module or "").startswith(package + ".") or "." in qualname or "<" in qualname:
        raise ValueError(
            f"{render!r} cannot be the store's renderer: the writer process imports it by "
            f"name, so it must be a module-level function of {package}"
        )
    if import_renderer(name) is not render:
        raise ValueError(f"{name} does not name {render!r}, so the writer process cannot import it")
    return name


def import_renderer(name: str) -> Render:
    """The function ``module:function`` names (see :func:`renderer_name`)."""
    module, _, function = name.partition(":")
    render: Render = getattr(importlib.import_module(module), function)
    return render


# ------------------------------------------------------------ the pipe


def _classification_fields(c: Classification) -> tuple[Any, ...]:
    """A classification as plain values, in the order of the INSERT's ?2-?9 and the pipe's."""
    return (
        str(c.family),
        c.event_type,
        c.conversation_id,
        c.subject_id,
        c.summary,
        c.error,
        c.occurred_at,
        str(c.severity),
    )


def encode_job(job: Job) -> tuple[Any, ...]:
    if isinstance(job, RejectionJob):
        return ("r", job.fields())
    if isinstance(job, RecordJob):
        return ("k", job.record, job.values)
    delivery, c = job.delivery, job.classification
    known = _classification_fields(c) if c is not None else None
    return (
        "e",
        delivery.body,
        delivery.headers,
        delivery.received_at,
        delivery.remote_addr,
        delivery.path,
        known,
    )


def decode_job(encoded: tuple[Any, ...]) -> Job:
    if encoded[0] == "r":
        return RejectionJob(*encoded[1])
    if encoded[0] == "k":
        return RecordJob(encoded[1], tuple(encoded[2]))
    _, body, headers, received_at, remote_addr, path, known = encoded
    delivery = Delivery(
        body, tuple(tuple(pair) for pair in headers), received_at, remote_addr, path
    )
    c = None
    if known is not None:
        family, event_type, conversation_id, subject_id, summary, error, occurred_at, severity = (
            known
        )
        c = Classification(
            Family(family),
            event_type,
            conversation_id,
            subject_id,
            summary,
            error,
            occurred_at,
            Severity(severity),
        )
    return EventJob(delivery, c)


def encode_outcome(result: Outcome) -> Any:
    """What crosses the pipe back: an error's text (a list when the file was lost),
    a rejection's id, or an event's EventRow fields in order (see
    ``events.row_fields``) and its digest."""
    if isinstance(result, StoreFileLost):
        return [str(result)]
    if isinstance(result, StoreError):
        return str(result)
    if isinstance(result, Rejection):
        return result.id
    if isinstance(result, int):
        return result
    return (
        result.id,
        result.received_at,
        str(result.family),
        result.event_type,
        result.conversation_id,
        result.subject_id,
        result.summary,
        result.duplicate_of,
        result.error,
        result.size,
        result.occurred_at,
        str(result.severity),
        result.sha256,
    )


def decode_outcome(job: Job, outcome: Any) -> Outcome:
    if isinstance(outcome, str):
        return StoreError(outcome)
    if isinstance(outcome, list):
        return StoreFileLost(outcome[0])
    if isinstance(job, RejectionJob):
        return job.rejection(outcome)
    if isinstance(job, RecordJob):
        return int(outcome)
    delivery = job.delivery
    return Event(
        **row_fields(outcome),
        body=delivery.body,
        headers=delivery.headers,
        remote_addr=delivery.remote_addr,
        path=delivery.path,
        sha256=outcome[-1],
    )


def write_frames(stream: IO[bytes], values: Sequence[Any]) -> None:
    """Write each value as one frame (4-byte length, marshal data), then flush once."""
    for value in values:
        data = marshal.dumps(value)
        stream.write(len(data).to_bytes(FRAME_HEADER, "little"))
        stream.write(data)
    stream.flush()


class FrameReader:
    """Reads frames from a pipe, giving back every complete frame that has arrived.

    One ``os.read`` takes whatever is waiting in the pipe, so a reader that
    fell behind catches up in one step: the child writes everything that
    queued up while it was busy in one transaction (one commit instead of many).
    """

    CHUNK = 1 << 16
    """Bytes asked for per read: a pipe's capacity. ``os.read`` allocates what it is
    asked for, and a 1 MiB allocation per read cost ten times the read itself."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = bytearray()
        self.ended = False

    def read(self) -> list[Any] | None:
        """The complete frames available (waiting for at least one), or None at the end."""
        while True:
            frames = self._complete_frames()
            if frames:
                return frames
            chunk = os.read(self.fd, max(self.CHUNK, self._missing()))
            if not chunk:
                return None
            self.buffer += chunk

    def read_available(self) -> list[Any]:
        """Without waiting (a non-blocking fd): the complete frames so far (``ended`` at EOF)."""
        while True:
            try:
                chunk = os.read(self.fd, max(self.CHUNK, self._missing()))
            except BlockingIOError:
                break
            if not chunk:
                self.ended = True
                break
            self.buffer += chunk
            if len(chunk) < self.CHUNK:
                break
        return self._complete_frames()

    def _missing(self) -> int:
        if len(self.buffer) < FRAME_HEADER:
            return 0
        return (
            FRAME_HEADER + int.from_bytes(self.buffer[:FRAME_HEADER], "little") - len(self.buffer)
        )

    def _complete_frames(self) -> list[Any]:
        frames: list[Any] = []
        view = memoryview(self.buffer)
        offset = 0
        try:
            while len(view) - offset >= FRAME_HEADER:
                size = int.from_bytes(view[offset : offset + FRAME_HEADER], "little")
                end = offset + FRAME_HEADER + size
                if end > len(view):
                    break
                frames.append(marshal.loads(view[offset + FRAME_HEADER : end]))
                offset = end
        finally:
            view.release()
        if offset:
            del self.buffer[:offset]
        return frames


# ------------------------------------------------------------ the child


def serve(writer: SQLiteWriter, source: int, sink: IO[bytes]) -> None:
    """The child's loop: batches in, one transaction, outcomes out; until ``source`` ends.

    Every batch waiting in the pipe goes into the same transaction; the
    replies still go back one per batch, in order (the lines and notices with
    the first).
    """
    reader = FrameReader(source)
    _index_while_idle(writer, reader)
    while (frames := reader.read()) is not None:
        jobs = [decode_job(encoded) for batch in frames for encoded in batch]
        results, text, notices = writer.write(jobs)
        outcomes = [encode_outcome(result) for result in results]
        replies = []
        start = 0
        for batch in frames:
            replies.append((outcomes[start : start + len(batch)], text, notices))
            start += len(batch)
            text, notices = "", ()
        write_frames(sink, replies)
        _index_while_idle(writer, reader)
    _index_before_exit(writer)


def _index_before_exit(writer: SQLiteWriter, seconds: float = INDEX_AT_EXIT) -> None:
    """Input ended (the monitor is stopping): index what is left, within ``seconds``.

    So ``history --search`` right after a run finds what the run stored; a longer
    backlog (a store of a million events from before the index) is finished by the
    next monitor, instead of holding this one's exit.
    """
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline and writer.index_pending() == INDEX_BATCH:
            pass
    except sqlite3.Error:
        log.exception("indexing for search failed at exit; the next monitor catches up")


def _index_while_idle(writer: SQLiteWriter, reader: FrameReader) -> None:
    """Index stored events for search while no batch comes for :data:`IDLE_WAIT` seconds.

    Under a sustained load a batch always comes within that time, so indexing waits
    for the load to ease and storing keeps the whole writer (``bench/ingest.py``).
    Between callbacks at a developer's pace it runs at once, a small slice at a time,
    so a batch that arrives meanwhile waits a few milliseconds at most.
    """
    while not reader.buffer and not select.select([reader.fd], [], [], IDLE_WAIT)[0]:
        try:
            if writer.index_pending(INDEX_SLICE) < INDEX_SLICE:
                return
        except sqlite3.Error:  # the file went, or is locked: storing matters, not this
            log.exception("indexing for search failed; it is tried again after the next batch")
            return


USAGE = "usage: writer PATH SYNCHRONOUS [RENDERER]"
"""The child's arguments, which only :class:`~tavus_monitor.writerprocess.ProcessWriter`
gives: the store file, its ``PRAGMA synchronous``, and the renderer's
:func:`renderer_name` when the store renders lines."""


def main(argv: Sequence[str] | None = None) -> int:
    """The writer process: serve batches from stdin until it closes (see the module notes)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (2, 3):
        print(USAGE, file=sys.stderr)
        return 2
    path, synchronous = Path(args[0]), args[1]
    render = import_renderer(args[2]) if len(args) == 3 else None
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    source, sink = sys.stdin.fileno(), sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write into the reply pipe
    try:
        connection, identity = open_for_writing(path, synchronous=synchronous)
    except (OSError, sqlite3.Error, StoreError) as exc:
        # Every batch is answered with StoreError until the file can be opened.
        log.error("the store writer cannot open %s: %s", path, exc)
        connection, identity = sqlite3.connect(":memory:"), None
    writer = SQLiteWriter(
        connection, path=path, identity=identity, synchronous=synchronous, render=render
    )
    try:
        serve(writer, source, sink)
    finally:
        writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
