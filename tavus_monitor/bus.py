"""Fan-out of what happened (events stored, requests refused, status changes).

The store publishes after commit, so a subscriber never sees an event that is
not durable. Each subscriber has its own bounded queue: a slow consumer cannot
make the server wait or memory grow without bound. When a queue is full the
message is dropped and the subscription counts it; the consumer asks with
:meth:`Subscription.take_missed` and, since every event is in the store, reads
what it needs from there (the dashboard reloads its panes; see
``MonitorApp._resync``). A drop is never silent: a count nobody reads is how
panes once went on lacking rows after a burst.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum

from .attempts import Attempt
from .events import Event
from .store import Rejection
from .tunnel import TunnelStatus


class StatusKind(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class EventStored:
    event: Event


@dataclass(frozen=True, slots=True)
class RequestRejected:
    rejection: Rejection


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """A plain sentence for the user about the monitor itself."""

    text: str
    kind: StatusKind = StatusKind.INFO
    topic: str = "monitor"
    """What changed: ``server``, ``url``, ``token``, ``tunnel``, ``store`` ..."""


@dataclass(frozen=True, slots=True)
class TunnelChanged:
    """The tunnel moved to a new state (see :mod:`tavus_monitor.tunnel`)."""

    status: TunnelStatus


@dataclass(frozen=True, slots=True)
class Forwarded:
    """One attempt to forward a stored event to ``--forward-to``, already recorded in the
    store (see :mod:`tavus_monitor.forward`). Published for every attempt, failed ones and
    retries included, so a consumer can show ``→ 200 12ms`` on the event's row as it happens;
    a consumer that missed some reads them back with ``store.latest_attempts``."""

    event_id: int
    event_type: str
    attempt: Attempt
    done: bool
    """Forwarding is done with this event (answered 2xx, or given up): the next one goes."""
    counted: int
    """Failed tries of this event that count against ``--forward-retries`` so far."""
    retry_in: float | None = None
    """Seconds until it is sent again (None when ``done``)."""

    @property
    def given_up(self) -> bool:
        return self.done and not self.attempt.ok


Message = EventStored | RequestRejected | StatusChanged | TunnelChanged | Forwarded

DEFAULT_QUEUE_SIZE = 10_000


class Subscription:
    """One consumer's view of the bus: an async iterator of messages.

    A deque and one waiter future rather than an ``asyncio.Queue``: an offer
    is an append (the bus publishes once per stored event, thousands of times
    a second under load), and a waiting consumer is woken once per batch.
    """

    def __init__(self, bus: Bus, maxsize: int, *, events: bool = True) -> None:
        self._bus = bus
        self._maxsize = maxsize
        self.events = events
        """Whether this consumer gets :class:`EventStored` messages."""
        self._items: deque[Message] = deque()
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None
        self.missed = 0
        """How many messages were dropped because this consumer fell behind."""

    def _offer(self, message: Message) -> None:
        if self._closed:
            return
        if len(self._items) >= self._maxsize:
            self.missed += 1
            return
        self._items.append(message)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def take_missed(self) -> int:
        """How many messages were dropped since the last call (and reset the count).

        Read after each :meth:`drain`: a consumer that got a non-zero answer has an
        incomplete picture and must catch up from the store.
        """
        missed, self.missed = self.missed, 0
        return missed

    @property
    def pending(self) -> int:
        """Messages waiting now."""
        return len(self._items)

    def drain(self) -> list[Message]:
        """Everything waiting now, without blocking (for batch consumers)."""
        items = list(self._items)
        self._items.clear()
        return items

    async def get(self) -> Message | None:
        """The next message, or None once the bus (or this subscription) is closed."""
        while not self._items:
            if self._closed:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    def close(self) -> None:
        self._bus._unsubscribe(self)
        self._closed = True
        self._wake()

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        while (item := await self.get()) is not None:
            yield item


class Bus:
    """Publish on the event loop's thread; every subscriber gets every message."""

    def __init__(self) -> None:
        self._subscribers: list[Subscription] = []
        self.last: dict[str, StatusChanged] = {}
        """The latest status per topic, so late subscribers can show the current state."""

    def subscribe(self, maxsize: int = DEFAULT_QUEUE_SIZE, *, events: bool = True) -> Subscription:
        """A new consumer; ``events=False`` for one that needs no stored events."""
        subscription = Subscription(self, maxsize, events=events)
        self._subscribers.append(subscription)
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscribers:
            self._subscribers.remove(subscription)

    @property
    def wants_events(self) -> bool:
        """Whether any consumer takes stored events (if not, they need not be published)."""
        return any(subscription.events for subscription in self._subscribers)

    def publish(self, message: Message) -> None:
        if isinstance(message, StatusChanged):
            self.last[message.topic] = message
        is_event = isinstance(message, EventStored)
        for subscription in self._subscribers:
            if subscription.events or not is_event:
                subscription._offer(message)

    def close(self) -> None:
        for subscription in list(self._subscribers):
            subscription.close()
