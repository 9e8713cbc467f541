"""Writing deliveries into the store file, in this process or in a child process.

The store's writer thread hands each batch of jobs to a writer, which
classifies every delivery, inserts the batch in one transaction, commits, and
(when asked) renders each committed event as a JSON line. Two writers do this
with the same code (:class:`SQLiteWriter`):

* in this process, on the writer thread's own connection; simple, and the
  only choice for an in-memory database;
* in a child process (:class:`ProcessWriter`, ``python -m
  tavus_monitor.writer``). Classifying, inserting and rendering cost as much
  CPU as receiving a request does, and in one process they share one core
  with uvicorn under the GIL. In a child they run on the second core while
  this process only receives and answers; that is what lets the monitor keep
  up with a sender at more than half the speed of a bare receiver (see
  ``bench/ingest.py``).

A batch crosses the pipe as one length-prefixed ``marshal`` frame each way
(both ends are the same interpreter, so marshal's format always matches). The
child ignores SIGINT and SIGTERM (a Ctrl+C meant for the monitor reaches the
whole process group) and exits when its stdin closes, which also happens when
the parent dies, after finishing the batch it holds.

The child loads exactly the package its parent runs, from the parent's
``tavus_monitor`` directory (see :data:`_CHILD_BOOTSTRAP`): not whatever the
working directory or ``PYTHONPATH`` would put first, so an installed monitor
never runs a checkout's writer and a broken install is not rescued by one.

Either writer checks, before and after each transaction, that the path still
names the file it opened (:class:`~tavus_monitor.storefile.FileIdentity`).
A file deleted or replaced while idle is made again before writing; one
that went during a transaction fails that batch with
:class:`~tavus_monitor.storefile.StoreFileLost` (answered 503, so Tavus
sends it again), because what it committed went with the old file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import marshal
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import orjson

import tavus_monitor

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
from .jsonlines import event_line
from .storefile import FileIdentity, lost_file_notice, open_for_writing

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
WriterKind = Literal["thread", "process"]
_FRAME_HEADER = 4
_STOP_TIMEOUT = 30.0
"""Seconds a child may take to finish its last batch after its stdin closes."""


class WriterGone(StoreError):
    """The child writer died; the batches it held may or may not have been committed."""


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


Job = EventJob | RejectionJob
Outcome = Event | Rejection | StoreError
Notice = tuple[str, int]
"""A sentence for the user about the store file, and how many deliveries it cost."""
Written = tuple[list[Outcome], str, tuple[Notice, ...]]
"""What a batch became: one outcome per job, the events' JSON lines ("" if not asked),
and notices for the user (the store file was lost and made again)."""
BatchDone = Callable[[Written | WriterGone], None]


_INSERT_EVENT = (
    "INSERT INTO events (received_at, family, event_type, conversation_id, subject_id, "
    "summary, duplicate_of, error, occurred_at, severity, body, body_sha256, headers, "
    "remote_addr, path) VALUES (?1, ?2, ?3, ?4, ?5, ?6, coalesce(" + _REDELIVERY + ", ?16), "
    "?7, ?8, ?9, ?10, ?12, ?13, ?14, ?15) RETURNING id, duplicate_of"
)


class SQLiteWriter:
    """Writes batches of jobs in one transaction each on its own connection.

    With ``path`` (a file, not memory) it also makes sure every batch it
    acknowledges went into the file that ``path`` names (see the module notes).
    """

    def __init__(
        self,
        connection: sqlite3.Connection,
        *,
        render_lines: bool = False,
        path: Path | None = None,
        identity: FileIdentity | None = None,
        synchronous: str = "NORMAL",
    ) -> None:
        self.db: sqlite3.Connection | None = connection
        self.render_lines = render_lines
        self.path = path
        self.identity = identity
        self.synchronous = synchronous

    def write(self, jobs: Sequence[Job]) -> Written:
        """Insert ``jobs`` in one transaction and commit.

        If SQLite refuses the batch, each job is retried in its own transaction
        so one bad job cannot fail its neighbours; a job that still fails gets a
        :class:`StoreError` as its outcome.
        """
        notices: list[Notice] = []
        stale = self.path is not None and (self.db is None or not self._file_is_ours())
        if stale and not self._reopen(notices, lost=0):
            error = StoreError(f"the store file {self.path} cannot be opened")
            return [error] * len(jobs), "", tuple(notices)
        results = self._write(jobs)
        if self.path is not None and not self._file_is_ours():
            # Committed into a file that is gone: not acknowledged; Tavus retries.
            lost = sum(isinstance(result, Event | Rejection) for result in results)
            results = [StoreFileLost(f"{self.path} was deleted or replaced")] * len(jobs)
            self._reopen(notices, lost=lost)
        lines = ""
        if self.render_lines:
            lines = "".join(
                [event_line(result) + "\n" for result in results if isinstance(result, Event)]
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
        assert self.path is not None
        return self.identity is not None and FileIdentity.of(self.path) == self.identity

    def _reopen(self, notices: list[Notice], *, lost: int) -> bool:
        """Open ``path`` again (making a new file if it is missing); False if that fails."""
        assert self.path is not None
        if self.db is not None:
            self.db.close()
            self.db = None
        try:
            self.db, self.identity = open_for_writing(self.path, synchronous=self.synchronous)
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

    def _transaction(self, jobs: Sequence[Job]) -> list[Event | Rejection]:
        db = self.db
        assert db is not None
        db.execute("BEGIN IMMEDIATE")
        try:
            results: list[Event | Rejection] = []
            for job in jobs:
                if isinstance(job, EventJob):
                    results.append(self._insert_event(job.delivery, job.classification))
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
        return Event.classified(
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

    def _insert_rejection(self, job: RejectionJob) -> Rejection:
        assert self.db is not None
        cursor = self.db.execute(
            "INSERT INTO rejected (received_at, method, path, remote_addr, size, status, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            job.fields(),
        )
        assert cursor.lastrowid is not None
        return job.rejection(cursor.lastrowid)


# ------------------------------------------------------------- the child


class ProcessWriter:
    """Runs :class:`SQLiteWriter` in a child process, driven by one event loop.

    ``send`` (on the loop) writes a batch to the child's stdin without
    blocking and returns; the loop reads the replies as they come and reports
    each, in order, to its ``done``. No thread sits between the requests and
    the child: every hand-off is a pipe the loop already watches, so a batch
    costs no thread wake-ups or GIL hand-offs in this process. Batches queue
    in the pipe while the child is busy, and it writes all that queued up in
    one transaction.

    If the child dies, every batch it held is reported as :class:`WriterGone`
    and the next batch starts a new child.

    With ``render_lines`` each reply brings the batch's JSON lines, which the
    parent prints: one printer that knows what it printed, so the events a dying
    child committed but never answered can still be streamed (see
    ``Store._stream_unanswered``).
    """

    def __init__(self, path: Path, *, synchronous: str, render_lines: bool) -> None:
        self.path = path
        self.synchronous = synchronous
        self.render_lines = render_lines
        self._loop: asyncio.AbstractEventLoop | None = None
        self._child: _Child | None = None
        self._closed = threading.Event()
        self._child = self._spawn()

    def _spawn(self) -> _Child:
        package = str(Path(tavus_monitor.__file__).resolve().parent)
        # -P: nothing from the working directory. The bootstrap loads `package` itself.
        command = [sys.executable, "-P", "-c", _CHILD_BOOTSTRAP, package, str(self.path)]
        command += ["--synchronous", self.synchronous]
        if self.render_lines:
            command.append("--lines")
        stderr = _log_file()
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr if stderr is not None else subprocess.DEVNULL,
            )
        finally:
            if stderr is not None:
                stderr.close()
        log.info("store writer process %d started", process.pid)
        assert process.stdin is not None
        assert process.stdout is not None
        return _Child(process, process.stdin.fileno(), _FrameReader(process.stdout.fileno()))

    @property
    def pid(self) -> int | None:
        child = self._child
        return child.process.pid if child is not None and not child.gone else None

    # ------------------------------------------------------- on the loop

    def send(self, jobs: Sequence[Job], done: BatchDone) -> None:
        """Queue ``jobs`` for the child; ``done`` runs on the loop when they come back."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        child = self._child
        if child is None or child.gone:
            child = self._child = self._spawn()
        if not child.watched:
            os.set_blocking(child.stdin_fd, False)
            os.set_blocking(child.reader.fd, False)
            loop.add_reader(child.reader.fd, self._on_replies, child)
            child.watched = True
        child.in_flight.append((jobs, done))
        data = marshal.dumps([_encode_job(job) for job in jobs])
        child.pending += len(data).to_bytes(_FRAME_HEADER, "little") + data
        self._flush(child)

    def _flush(self, child: _Child) -> None:
        """Write what the pipe takes now; the loop writes the rest when it drains."""
        loop = self._loop
        assert loop is not None
        try:
            while child.pending:
                written = os.write(child.stdin_fd, child.pending)
                del child.pending[:written]
        except BlockingIOError:
            if not child.waiting_to_write:
                loop.add_writer(child.stdin_fd, self._flush, child)
                child.waiting_to_write = True
            return
        except OSError:
            # The child is gone; its end of stdout closes and _on_replies reports it.
            child.pending.clear()
        if child.waiting_to_write:
            loop.remove_writer(child.stdin_fd)
            child.waiting_to_write = False
        if child.closing:
            self._close_stdin(child)

    def _on_replies(self, child: _Child) -> None:
        try:
            replies = child.reader.read_available()
        except OSError:
            replies, child.reader.ended = [], True
        _answer(child, replies)
        if child.reader.ended:
            self._child_ended(child)

    def _child_ended(self, child: _Child) -> None:
        loop = self._loop
        assert loop is not None
        loop.remove_reader(child.reader.fd)
        if child.waiting_to_write:
            loop.remove_writer(child.stdin_fd)
        if not child.closing:
            self._close_stdin(child)
        _release(child)
        if child.closing:
            self._closed.set()

    def _begin_close(self) -> None:
        child = self._child
        if child is None or child.gone:
            self._closed.set()
            return
        child.closing = True
        if not child.pending:
            self._close_stdin(child)

    @staticmethod
    def _close_stdin(child: _Child) -> None:
        assert child.process.stdin is not None
        with contextlib.suppress(OSError):
            child.process.stdin.close()

    # ------------------------------------------------------- any thread

    def close(self) -> None:
        """Let the child finish what it holds, answer it, and exit.

        From another thread the loop does the work (it owns the pipes); on the
        loop's own thread, or with no loop, the replies are read right here.
        """
        loop = self._loop
        if (
            loop is not None
            and not loop.is_closed()
            and loop.is_running()
            and asyncio._get_running_loop() is not loop
        ):
            loop.call_soon_threadsafe(self._begin_close)
            if self._closed.wait(_STOP_TIMEOUT):
                return
        self._close_here()

    def _close_here(self) -> None:
        child = self._child
        if child is None or child.gone:
            return
        loop = self._loop
        if child.watched and loop is not None and not loop.is_closed():
            loop.remove_reader(child.reader.fd)
            if child.waiting_to_write:
                loop.remove_writer(child.stdin_fd)
        os.set_blocking(child.stdin_fd, True)
        os.set_blocking(child.reader.fd, True)
        with contextlib.suppress(OSError):
            os.write(child.stdin_fd, child.pending)
        child.pending.clear()
        child.closing = True
        self._close_stdin(child)
        try:
            while (replies := child.reader.read()) is not None:
                _answer(child, replies)
        except OSError:
            pass
        try:
            child.process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.error("store writer process %d did not stop; killing it", child.process.pid)
            child.process.kill()
        _release(child)


@dataclass(slots=True, eq=False)
class _Child:
    process: subprocess.Popen[bytes]
    stdin_fd: int
    reader: _FrameReader
    in_flight: deque[tuple[Sequence[Job], BatchDone]] = field(default_factory=deque)
    pending: bytearray = field(default_factory=bytearray)
    """Frames not yet taken by the pipe."""
    watched: bool = False
    waiting_to_write: bool = False
    closing: bool = False
    gone: bool = False


def _answer(child: _Child, replies: list[Any]) -> None:
    """Report each reply to the batch it answers (replies come in the order batches went)."""
    for outcomes, lines, notices in replies:
        jobs, done = child.in_flight.popleft()
        decoded = [_decode_outcome(job, o) for job, o in zip(jobs, outcomes, strict=True)]
        done((decoded, lines, tuple((text, lost) for text, lost in notices)))


def _release(child: _Child) -> None:
    """The child has ended: reap it and fail the batches it never answered."""
    child.gone = True
    code = child.process.wait()
    assert child.process.stdout is not None
    child.process.stdout.close()
    lost, child.in_flight = list(child.in_flight), deque()
    if lost or not child.closing:
        log.error("store writer process %d stopped (exit code %s)", child.process.pid, code)
    for _jobs, done in lost:
        done(WriterGone(f"the store writer process stopped (exit code {code})"))


def _log_file() -> IO[bytes] | None:
    """The file this process logs to, opened for the child's stderr (a crash lands there)."""
    for handler in logging.getLogger().handlers:
        filename = getattr(handler, "baseFilename", None)
        if filename:
            try:
                return open(filename, "ab")
            except OSError:
                return None
    return None


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


def _encode_job(job: Job) -> tuple[Any, ...]:
    if isinstance(job, RejectionJob):
        return ("r", job.fields())
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


def _decode_job(encoded: tuple[Any, ...]) -> Job:
    if encoded[0] == "r":
        return RejectionJob(*encoded[1])
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


def _encode_outcome(result: Outcome) -> Any:
    """What crosses the pipe back: an error's text (a list when the file was lost),
    a rejection's id, or an event's EventRow fields in order (see
    ``events.row_fields``) and its digest."""
    if isinstance(result, StoreFileLost):
        return [str(result)]
    if isinstance(result, StoreError):
        return str(result)
    if isinstance(result, Rejection):
        return result.id
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


def _decode_outcome(job: Job, outcome: Any) -> Outcome:
    if isinstance(outcome, str):
        return StoreError(outcome)
    if isinstance(outcome, list):
        return StoreFileLost(outcome[0])
    if isinstance(job, RejectionJob):
        return job.rejection(outcome)
    delivery = job.delivery
    return Event(
        **row_fields(outcome),
        body=delivery.body,
        headers=delivery.headers,
        remote_addr=delivery.remote_addr,
        path=delivery.path,
        sha256=outcome[-1],
    )


def _write_frames(stream: IO[bytes], values: Sequence[Any]) -> None:
    """Write each value as one frame (4-byte length, marshal data), then flush once."""
    for value in values:
        data = marshal.dumps(value)
        stream.write(len(data).to_bytes(_FRAME_HEADER, "little"))
        stream.write(data)
    stream.flush()


class _FrameReader:
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
        if len(self.buffer) < _FRAME_HEADER:
            return 0
        return (
            _FRAME_HEADER + int.from_bytes(self.buffer[:_FRAME_HEADER], "little") - len(self.buffer)
        )

    def _complete_frames(self) -> list[Any]:
        frames: list[Any] = []
        view = memoryview(self.buffer)
        offset = 0
        try:
            while len(view) - offset >= _FRAME_HEADER:
                size = int.from_bytes(view[offset : offset + _FRAME_HEADER], "little")
                end = offset + _FRAME_HEADER + size
                if end > len(view):
                    break
                frames.append(marshal.loads(view[offset + _FRAME_HEADER : end]))
                offset = end
        finally:
            view.release()
        if offset:
            del self.buffer[:offset]
        return frames


def serve(writer: SQLiteWriter, source: int, sink: IO[bytes]) -> None:
    """The child's loop: batches in, one transaction, outcomes out; until ``source`` ends.

    Every batch waiting in the pipe goes into the same transaction; the
    replies still go back one per batch, in order (the lines and notices with
    the first).
    """
    reader = _FrameReader(source)
    while (frames := reader.read()) is not None:
        jobs = [_decode_job(encoded) for frame in frames for encoded in frame]
        results, text, notices = writer.write(jobs)
        outcomes = [_encode_outcome(result) for result in results]
        replies = []
        start = 0
        for frame in frames:
            replies.append((outcomes[start : start + len(frame)], text, notices))
            start += len(frame)
            text, notices = "", ()
        _write_frames(sink, replies)


_CHILD_BOOTSTRAP = """\
import importlib.util, sys
package = sys.argv.pop(1)
spec = importlib.util.spec_from_file_location(
    "tavus_monitor", package + "/__init__.py", submodule_search_locations=[package]
)
module = importlib.util.module_from_spec(spec)
sys.modules["tavus_monitor"] = module
spec.loader.exec_module(module)
from tavus_monitor.writer import main
sys.exit(main(sys.argv[1:]))
"""
"""``python -P -c`` program that runs :func:`main` from the package directory given
first: the parent's own, whatever the child's ``sys.path`` would find first."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tavus_monitor.writer")
    parser.add_argument("path", type=Path)
    parser.add_argument("--synchronous", default="NORMAL")
    parser.add_argument("--lines", action="store_true", help="JSON lines in each reply")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    source, sink = sys.stdin.fileno(), sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write into the reply pipe
    try:
        connection, identity = open_for_writing(args.path, synchronous=args.synchronous)
    except (OSError, sqlite3.Error, StoreError) as exc:
        # Every batch is answered with StoreError until the file can be opened.
        log.error("the store writer cannot open %s: %s", args.path, exc)
        connection, identity = sqlite3.connect(":memory:"), None
    writer = SQLiteWriter(
        connection,
        render_lines=args.lines,
        path=args.path,
        identity=identity,
        synchronous=args.synchronous,
    )
    try:
        serve(writer, source, sink)
    finally:
        writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
