"""Forwarding (``--forward-to URL``): every stored delivery POSTed to the developer's handler.

Forwarding never delays Tavus's 200. The server answers once a delivery is
committed, as without forwarding; the :class:`Forwarder` then reads committed
events back from the store (woken by the store's commit listener, through the
monitor) and sends them one at a time, oldest first, because a handler may
depend on the order (``system.shutdown`` before the transcript). It keeps no
queue of its own: where it got to is the store's per-target cursor
(``forwarded_through``), moved in the same transaction as the attempt that
finished an event, so after a restart it resumes exactly there and the
events stored meanwhile still go out.

The first run for a target starts from the newest stored event: history is not
forwarded (a store of months would flood a handler that asked for live
deliveries). Replay sends old events on purpose.

What each answer means for the event at the head:

- **2xx**: done; the next event goes.
- **refused / unreachable** (the handler is down: it never got the request):
  the event waits and is sent again with backoff (0.5 s doubling, at most
  30 s) for as long as it takes. These tries do not count against
  ``--forward-retries``: a handler restarted after a minute gets every
  delivery, in order.
- **another status, a timeout, a dropped connection** (the handler got it and
  failed): sent again with the same backoff, up to ``--forward-retries``
  times; then it is given up (recorded, and the cursor moves past it) so the
  events behind it are not held forever. A handler that hangs costs at most
  ``--forward-timeout`` per try.

Delivery is at least once: an event whose answer had not come back when the
monitor stopped is sent again after a restart; one answered 2xx is never sent
again by forwarding. Malformed bodies are deliveries too and are forwarded as
they arrived. Every attempt is kept (``kind="forward"``) and published as a
:class:`~tavus_monitor.bus.Forwarded` message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from .bus import Forwarded
from .events import Event
from .sending import end_to_end_headers, send
from .store import EventQuery, Store

log = logging.getLogger(__name__)

KIND = "forward"
"""The attempts' kind in the store."""
BATCH = 32
"""Events read from the store at a time: a transcript body is several MB, and they wait
in memory until their turn."""
DOWN = frozenset({"refused", "unreachable"})
"""Failures where the handler never got the request: waiting for it costs no retry."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Seconds before the n-th try again of one event: ``first`` doubling, at most ``most``."""

    first: float = 0.5
    most: float = 30.0

    def delay(self, again: int) -> float:
        """The wait before try again number ``again`` (1 for the first retry)."""
        return min(self.most, self.first * 2.0 ** min(again - 1, 60))


class Forwarder:
    """Sends each committed event to ``target`` in id order; see the module notes."""

    def __init__(
        self,
        store: Store,
        target: str,
        *,
        timeout: float,
        retries: int,
        publish: Callable[[Forwarded], None],
        backoff: Backoff = Backoff(),
    ) -> None:
        self.store = store
        self.target = target
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._publish = publish
        self.cursor = 0
        """The newest event forwarding is done with (the store's cursor, as last written)."""
        self.resumed = False
        """Whether the store had a cursor for ``target`` (a later run), else it starts new."""
        self._wake = asyncio.Event()
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._records: set[asyncio.Future[int]] = set()
        """Attempts handed to the store and not yet committed (see :meth:`_record`)."""

    async def start(self) -> None:
        """Find where to start (see the module notes) and begin sending in the background."""
        kept = await asyncio.to_thread(self.store.forwarded_through, self.target)
        if kept is not None:
            self.cursor, self.resumed = kept, True
        else:
            newest = await asyncio.to_thread(self.store.rows, EventQuery(limit=1))
            self.cursor = newest[0].id if newest else 0
            await self._keep_start()
        # One client for the whole run: a kept-alive connection to the handler saves a
        # TCP handshake per delivery.
        self._client = httpx.AsyncClient()
        self._wake.set()
        self._task = asyncio.create_task(self._run(), name="tavus-monitor-forward")

    async def _keep_start(self) -> None:
        """Keep the start in the store when it can (``Store.start_forwarding``), so a first
        run whose handler never answered resumes there too after a restart."""
        self.cursor = await self.store.start_forwarding(self.target, self.cursor)

    def wake(self) -> None:
        """Events were committed: look for them (any number of calls, one read)."""
        self._wake.set()

    async def pending(self) -> int:
        """How many stored events wait to be forwarded (the head included)."""
        return await asyncio.to_thread(self.store.count, EventQuery(after_id=self.cursor))

    async def stop(self) -> None:
        """Stop at once: an event in flight is sent again after a restart. Safe twice."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._records:  # once an answer is here, its record is kept
            await asyncio.gather(*self._records, return_exceptions=True)
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _run(self) -> None:
        try:
            while True:
                self._wake.clear()
                events = await asyncio.to_thread(self.store.after, self.cursor, BATCH)
                if not events:
                    await self._wake.wait()
                    continue
                for event in events:
                    await self._forward(event)
                    self.cursor = event.id
        except asyncio.CancelledError:
            raise
        except Exception:  # a store that closed under it, a bug: say so, do not end silently
            log.exception("forwarding to %s stopped", self.target)
            raise

    async def _forward(self, event: Event) -> None:
        """Send ``event`` until it is answered 2xx or given up (see the module notes)."""
        assert self._client is not None
        headers = end_to_end_headers(event.headers, event_id=event.id)
        counted = tries = 0
        while True:
            attempt = await send(
                self._client, self.target, event.body, headers, timeout=self.timeout
            )
            tries += 1
            if not attempt.ok and attempt.failure not in DOWN:
                counted += 1
            done = attempt.ok or counted > self.retries
            retry_in = None if done else self.backoff.delay(tries)
            self._record(Forwarded(event.id, event.event_type, attempt, done, counted, retry_in))
            if retry_in is None:
                return
            await asyncio.sleep(retry_in)

    def _record(self, message: Forwarded) -> None:
        """Keep the attempt, and publish it once it is committed, while the next event goes.

        Not awaited: waiting for each commit before sending the next event forwarded 292
        events/s while catching up, against 489 without (``bench/ingest.py --forward``, a
        busy 2-core machine): the writer's round trip is as long as a loopback POST. The writer
        commits in order, so the cursor still only moves forward, and what is published
        can be read back from the store; :meth:`stop` waits for what is outstanding.
        """
        record = asyncio.ensure_future(
            self.store.record_attempt(
                message.event_id, KIND, message.attempt, forwarded=message.done
            )
        )
        self._records.add(record)
        record.add_done_callback(lambda done: self._recorded(done, message))

    def _recorded(self, record: asyncio.Future[int], message: Forwarded) -> None:
        self._records.discard(record)
        if record.cancelled():
            return
        problem = record.exception()
        if problem is not None:
            log.error("an attempt to forward #%d was not recorded: %r", message.event_id, problem)
            return
        self._publish(message)


def attempt_line(message: Forwarded, retries: int) -> str:
    """The headless status line for one attempt (untrusted parts not yet made printable):

    ``forward #42 system.shutdown → 200 12ms``,
    ``forward #42 system.shutdown → refused: connection refused: is your server running on
    :3000? (waiting for it; again in 4 s)``.
    """
    attempt = message.attempt
    line = f"forward #{message.event_id} {message.event_type} {attempt.describe()}"
    if attempt.error:
        line += f": {attempt.error}"
    if attempt.ok:
        return line
    if message.given_up:
        return line + f" (given up after {retries + 1} failed tries; the next event goes on)"
    if attempt.failure in DOWN:
        return line + f" (waiting for it; again in {message.retry_in:g} s)"
    return line + f" (try {message.counted} of {retries + 1}; again in {message.retry_in:g} s)"
