"""The store's one writer, a child process, seen from the monitor: start it, feed it, replace it.

Every write, the monitor's and the tests' alike, goes through one path: the
store queues jobs on the event loop that drives this writer, which sends each
loop iteration's batch to a child process (``python -P -c`` running
:func:`tavus_monitor.writer.main`) that classifies, inserts, commits and
renders; the loop reads the replies and the store answers the senders.

Why a process: classifying, inserting and rendering cost as much CPU as
receiving a request does, and in one process they would share one core with
uvicorn under the GIL. In a child they run on the second core while the
monitor only receives and answers. Measured with ``python bench/ingest.py
--duration 5`` (wrk, 32 connections, 2 cores, an idle machine): 11,153 and
9,993 requests/s with the writer in a child (0.51 and 0.54 of a bare Starlette
app's 21,993 and 18,671), against 7,972, 7,576 and 6,906 with the same writer
on a thread of the monitor (0.37, 0.35 and 0.34 of 21,471, 21,611 and 20,182;
its process then used a whole core, 95 %, against 66 %). So the thread writer,
and the in-memory store (``--ephemeral``) that needed it, were removed: an
ephemeral store is a file in a private temporary directory, written the same way.

The child loads exactly the package its parent runs, from the parent's
``tavus_monitor`` directory (see :data:`_CHILD_BOOTSTRAP`): not whatever the
working directory or ``PYTHONPATH`` would put first, so an installed monitor
never runs a checkout's writer and a broken install is not rescued by one.
It imports only :mod:`tavus_monitor.writer` (and the renderer it is given),
which is why this parent side lives in a module of its own: every store
starts a child, every test of the store included, and that module's notes
give what the split saved. The tests pay the rest, about 0.1 s a store:
``tests/test_store.py`` took 1.5 s on the thread writer and takes 6 to 7 s
(the store, store-file, JSON-line, conversation and CLI tests together: 11 s
then, 22 s now). Each test still gets a store of its own, with nothing shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import marshal
import os
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import tavus_monitor

from .events import StoreError
from .writer import (
    FRAME_HEADER,
    FrameReader,
    Job,
    Render,
    Written,
    decode_outcome,
    encode_job,
    renderer_name,
)

log = logging.getLogger(__name__)

_STOP_TIMEOUT = 30.0
"""Seconds a child may take to finish its last batch after its stdin closes."""


class WriterGone(StoreError):
    """The child writer died; the batches it held may or may not have been committed."""


BatchDone = Callable[[Written | WriterGone], None]


class ProcessWriter:
    """Runs :class:`~tavus_monitor.writer.SQLiteWriter` in a child process, driven by one loop.

    ``send`` (on the loop) writes a batch to the child's stdin without
    blocking and returns; the loop reads the replies as they come and reports
    each, in order, to its ``done``. No thread sits between the requests and
    the child: every hand-off is a pipe the loop already watches, so a batch
    costs no thread wake-ups or GIL hand-offs in this process. Batches queue
    in the pipe while the child is busy, and it writes all that queued up in
    one transaction.

    If the child dies, every batch it held is reported as :class:`WriterGone`
    and the next batch starts a new child.

    The driving loop is chosen once (:meth:`driving_loop`): the loop of the
    first caller that has one, or else a loop this writer runs on a thread of
    its own (named ``store-writer``) until :meth:`close`, for callers that run
    no event loop (tools, tests).

    With ``render`` each reply brings the batch's lines, rendered in the
    child, which the store prints: one printer that knows what it printed, so
    the events a dying child committed but never answered can still be
    streamed (see ``Store._stream_unanswered``).
    """

    def __init__(self, path: Path, *, synchronous: str, render: Render | None) -> None:
        self.path = path
        self.synchronous = synchronous
        self.renderer = renderer_name(render) if render is not None else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_choice = threading.Lock()
        self._own_loop: threading.Thread | None = None
        self._child: _Child | None = None
        self._stopping = False
        """Set once closing began on the loop: no batch is taken after it."""
        self._closed = threading.Event()
        self._child = self._spawn()

    def _spawn(self) -> _Child:
        package = str(Path(tavus_monitor.__file__).resolve().parent)
        # -P: nothing from the working directory. The bootstrap loads `package` itself.
        command = [sys.executable, "-P", "-c", _CHILD_BOOTSTRAP, package, str(self.path)]
        command.append(self.synchronous)
        if self.renderer is not None:
            command.append(self.renderer)
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
        return _Child(process, process.stdin.fileno(), FrameReader(process.stdout.fileno()))

    @property
    def pid(self) -> int | None:
        child = self._child
        return child.process.pid if child is not None and not child.gone else None

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop that drives this writer, once one was chosen."""
        return self._loop

    def driving_loop(self, loop: asyncio.AbstractEventLoop | None) -> asyncio.AbstractEventLoop:
        """The loop that drives this writer: chosen by the first call, ``loop`` or one of its own.

        Any thread. The writer's own loop is running when this returns, so that
        :meth:`close` hands it the last batches rather than racing it.
        """
        with self._loop_choice:
            if self._loop is None:
                if loop is None:
                    loop = asyncio.new_event_loop()
                    running = threading.Event()

                    def run(loop: asyncio.AbstractEventLoop = loop) -> None:
                        loop.call_soon(running.set)
                        loop.run_forever()

                    self._own_loop = threading.Thread(target=run, name="store-writer", daemon=True)
                    self._own_loop.start()
                    running.wait()
                self._loop = loop
            return self._loop

    # ------------------------------------------------------- on the loop

    def send(self, jobs: Sequence[Job], done: BatchDone) -> None:
        """Queue ``jobs`` for the child; ``done`` runs on the loop when they come back.

        Raises :class:`StoreError` once the writer is closing, and whatever
        starting a new child raised (out of processes or files).
        """
        if self._stopping:
            raise StoreError("the store is closed")
        loop = self.driving_loop(asyncio.get_running_loop())
        child = self._child
        if child is None or child.gone:
            child = self._child = self._spawn()
        if not child.watched:
            os.set_blocking(child.stdin_fd, False)
            os.set_blocking(child.reader.fd, False)
            loop.add_reader(child.reader.fd, self._on_replies, child)
            child.watched = True
        child.in_flight.append((jobs, done))
        data = marshal.dumps([encode_job(job) for job in jobs])
        child.pending += len(data).to_bytes(FRAME_HEADER, "little") + data
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
        self._stopping = True
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
        The writer's own loop, if it ran one, is stopped and closed after.
        """
        loop = self._loop
        if (
            loop is not None
            and not loop.is_closed()
            and loop.is_running()
            and asyncio._get_running_loop() is not loop
        ):
            loop.call_soon_threadsafe(self._begin_close)
            if not self._closed.wait(_STOP_TIMEOUT):
                self._close_here()
        else:
            self._close_here()
        if self._own_loop is not None and loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            self._own_loop.join()
            loop.close()
            self._own_loop = None

    def _close_here(self) -> None:
        self._stopping = True
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
    reader: FrameReader
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
        decoded = [decode_outcome(job, o) for job, o in zip(jobs, outcomes, strict=True)]
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
"""``python -P -c`` program that runs :func:`tavus_monitor.writer.main` from the package
directory given first: the parent's own, whatever the child's ``sys.path`` would find first."""
