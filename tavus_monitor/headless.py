"""Headless mode: JSON lines on stdout, status sentences on stderr.

stdout carries nothing but one JSON line per stored event (see
:mod:`tavus_monitor.jsonlines`), so ``tavus-monitor --headless | jq`` works.
This module chooses that format and gives it to the store
(:class:`~tavus_monitor.store.EventLines`), which writes the lines right after
each commit (rendered by its writer process, on the second core): in id order
with no gaps, including what a writer process that died had committed. This
module prints the rest: status sentences, refused requests and one line per
forwarding attempt (``forward #42 system.shutdown → 200 12ms``), on stderr.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import TextIO

from .bus import Forwarded, Message, RequestRejected, StatusChanged, StatusKind
from .forward import attempt_line
from .jsonlines import event_line
from .monitor import Monitor
from .sanitize import printable
from .settings import Settings
from .store import EventLines

_PREFIX = {StatusKind.INFO: "", StatusKind.WARNING: "warning: ", StatusKind.ERROR: "error: "}


class HeadlessPrinter:
    """Turns bus messages into stderr lines (event lines come from the store)."""

    def __init__(self, err: TextIO, *, forward_retries: int = 0) -> None:
        self.err = err
        self.forward_retries = forward_retries
        """``--forward-retries``, which the attempt lines count against."""

    def handle(self, messages: list[Message]) -> None:
        forwarded = False
        for message in messages:
            if isinstance(message, StatusChanged):
                self.status(message)
            elif isinstance(message, RequestRejected):
                rejected = message.rejection
                self.err.write(
                    printable(
                        f"rejected: {rejected.method} {rejected.path} → {rejected.status} "
                        f"({rejected.reason}) from {rejected.remote_addr or 'unknown'}"
                    )
                    + "\n"
                )
                self.err.flush()
            elif isinstance(message, Forwarded):
                # The event type comes from the payload: made printable with the rest.
                self.err.write(printable(attempt_line(message, self.forward_retries)) + "\n")
                forwarded = True
        if forwarded:  # once per batch: under load there are thousands a second
            self.err.flush()

    def status(self, message: StatusChanged) -> None:
        self.err.write(_PREFIX[message.kind] + printable(message.text) + "\n")
        self.err.flush()


async def run_headless(
    settings: Settings, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Run until SIGINT/SIGTERM; return the exit code."""
    monitor = Monitor(settings, event_lines=EventLines(out, event_line))
    printer = HeadlessPrinter(err, forward_retries=settings.forward_retries)
    subscription = monitor.bus.subscribe(events=False)  # the store writes event lines
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    started = False
    try:
        await monitor.start()
        started = True
        stopper = asyncio.ensure_future(stop.wait())
        stopped = asyncio.ensure_future(monitor.wait_stopped())
        while not stop.is_set() and not stopped.done():
            getter = asyncio.ensure_future(subscription.get())
            await asyncio.wait({getter, stopper, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                first = getter.result()
                if first is None:
                    break
                printer.handle([first, *subscription.drain()])
            else:
                getter.cancel()
        stopper.cancel()
        stopped.cancel()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if started:  # a failed start is reported by the caller, alone
            err.write("Stopping…\n")
        await monitor.stop()
        printer.handle(subscription.drain())
        if started:
            err.write("Stopped.\n")
        err.flush()
    return 0
