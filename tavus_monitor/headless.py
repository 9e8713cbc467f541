"""Headless mode: JSON lines on stdout, status sentences on stderr.

stdout carries nothing but one JSON line per stored event (see
:mod:`tavus_monitor.jsonlines`), so ``tavus-monitor --headless | jq`` works.
Lines are written in id order with no gaps: if this consumer ever falls behind
the bus, it reads the missing events back from the store.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import TextIO

from .bus import EventStored, Message, RequestRejected, StatusChanged, StatusKind
from .events import Event
from .jsonlines import event_line
from .monitor import Monitor
from .sanitize import printable
from .settings import Settings

_PREFIX = {StatusKind.INFO: "", StatusKind.WARNING: "warning: ", StatusKind.ERROR: "error: "}


class HeadlessPrinter:
    """Turns bus messages into output lines, keeping stdout gap-free."""

    def __init__(self, monitor: Monitor, out: TextIO, err: TextIO) -> None:
        self.monitor = monitor
        self.out = out
        self.err = err
        self.last_id: int | None = None

    def handle(self, messages: list[Message]) -> None:
        lines: list[str] = []
        for message in messages:
            if isinstance(message, EventStored):
                lines.extend(self._event_lines(message.event))
            elif isinstance(message, StatusChanged):
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
        if lines:
            self.out.write("".join(lines))
            self.out.flush()

    def _event_lines(self, event: Event) -> list[str]:
        events = [event]
        if self.last_id is not None and event.id > self.last_id + 1 and self.monitor.store:
            # Fell behind (the bus dropped messages for us): fill the gap from the store.
            events = [
                *self.monitor.store.after(self.last_id, limit=event.id - self.last_id - 1),
                event,
            ]
        if self.last_id is not None:
            events = [e for e in events if e.id > self.last_id]
        if events:
            self.last_id = events[-1].id
        return [event_line(e) + "\n" for e in events]

    def status(self, message: StatusChanged) -> None:
        self.err.write(_PREFIX[message.kind] + printable(message.text) + "\n")
        self.err.flush()


async def run_headless(
    settings: Settings, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Run until SIGINT/SIGTERM; return the exit code."""
    monitor = Monitor(settings)
    printer = HeadlessPrinter(monitor, out, err)
    subscription = monitor.bus.subscribe()
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
