"""The server's edge: what a connection may do before its request has been read.

The tunnel exposes the port to the whole internet, and uvicorn (0.54) leaves two
doors open there. It has no deadline for the request line and headers (uvicorn
issue #157): its keep-alive timer is cancelled as soon as any byte arrives, so a
partial request, the first on a connection or a later one on a kept-alive
connection, stays open forever. And httptools accepts headers of any size,
growing one Python bytes object per header value. Measured with
``bench/edge.py`` (2 cores, uvloop), before this module → with it:

* 1,100 connections that send ``GET / HTTP/1.1\\r\\nHost: x\\r\\n`` and stop, under
  ``ulimit -n 1024``: the monitor sat at 1024 of 1024 descriptors and 10 of 10
  real deliveries got a broken pipe or a reset, the attack still held 13 s later
  → 917 descriptors, 10 of 10 deliveries 200 (p50 0.9 ms), every attack
  connection closed 11 s after it began;
* one client streaming a header value (122 MB in 10 s): real deliveries p50
  5.7 s, p99 11.3 s (0.9 ms without it), RSS +217 MB; four clients: p50 18 s,
  p99 29 s, RSS +526 MB → each client answered 431 after 64 KiB, reconnecting
  thousands of times: p99 4 ms (one client) and 10 ms (four), RSS +7 to +9 MB
  (a plateau: the same after 25 s and 20,000 refusals).

:class:`GuardedHttpToolsProtocol` is uvicorn's httptools protocol with a
:class:`ConnectionGuard` shared by every connection of one server:

* **header deadline**: a connection must complete its request line and headers
  within ``header_timeout`` seconds, counted from the connection (first request)
  or from the first byte of a later request on a kept-alive connection; then it
  gets ``408`` (or, if it sent nothing, is simply closed);
* **header size**: at most ``max_header_bytes`` of request line and headers and
  ``max_header_fields`` fields, answered ``431`` and recorded as a rejected
  request. Bytes are counted *before* they reach the parser: a chunk is fed only
  up to the remaining allowance, so neither httptools nor this module ever holds
  more than the cap;
* **connection cap**: below the descriptor limit (see :func:`connection_limit`),
  so ``accept()`` always finds a free descriptor. A connection beyond the cap
  sheds the oldest one still sending its headers, else the oldest idle
  kept-alive one; only when every connection is busy with a request being
  answered is the newcomer refused (``503``, which Tavus retries).

Nothing here runs per byte or per request beyond a few attribute and dict
operations; the deadline is one timer for the whole server, armed at the oldest
incomplete request, not one per connection. Measured, the guarded protocol
costs 1.1 to 1.4 µs more per request than uvicorn's (9.1 against 7.7 µs,
``bench/edge.py --part overhead``); ``bench/ingest.py`` sees no difference (10,134 against 10,139
requests/s, two runs each).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .settings import DEFAULT_HEADER_TIMEOUT

log = logging.getLogger(__name__)

HEADER_TIMEOUT = DEFAULT_HEADER_TIMEOUT
"""Seconds a connection has to send its request line and headers (``--header-timeout``)."""
MAX_HEADER_BYTES = 64 * 1024
"""Request line and headers together (nginx allows 4 × 8 KiB by default)."""
MAX_HEADER_FIELDS = 100
CONNECTION_CAP = 4096
"""Open connections at most, whatever the descriptor limit: Tavus sends a few at a time."""
LINGER_SECONDS = 1.0
LINGER_BYTES = 256 * 1024
"""After a 431, what is still read (and dropped) so the sender can read the answer:
closing a socket with unread data makes the kernel send a reset, which can reach the
sender before the answer does."""

# Where a connection is in its current request.
_HEADERS = 0
"""Request line and headers still arriving: counted, and under the deadline."""
_BODY = 1
_BETWEEN = 2
"""The request was read; no byte of the next one yet."""
_REFUSED = 3
"""Answered 431; what still arrives is dropped until the connection closes."""


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    header_timeout: float = HEADER_TIMEOUT
    max_header_bytes: int = MAX_HEADER_BYTES
    max_header_fields: int = MAX_HEADER_FIELDS
    max_connections: int | None = None
    """None: from the descriptor limit (see :func:`connection_limit`)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request refused at the edge, before the app saw it."""

    method: str
    target: str
    """The request target as sent (not redacted: the recorder redacts it)."""
    remote_addr: str | None
    status: int
    reason: str


Recorder = Callable[[Refusal], Coroutine[Any, Any, object]]
"""Keeps a refusal (in the store, or counted and logged); never raises."""


def raise_open_file_limit(wanted: int) -> int | None:
    """Raise the soft descriptor limit towards ``wanted`` (never past the hard limit).

    Many systems start processes with a soft limit of 1024 and a much higher
    hard one; the soft limit is the process's own to raise. It is never lowered.
    Returns the soft limit in force, or None where there is none to read (Windows).
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):  # macOS refuses more than OPEN_MAX
            pass
    return None if soft == resource.RLIM_INFINITY else soft


def connection_limit(open_file_limit: int | None) -> int:
    """How many connections may be open: the descriptor limit less a reserve.

    The reserve (an eighth of the limit, 32 to 128) covers what the rest of the
    monitor opens: the store's pipes and files, the log, the tunnel agent. At
    ``ulimit -n 1024`` that is 896 connections.
    """
    if open_file_limit is None:
        return CONNECTION_CAP
    reserve = min(128, max(32, open_file_limit // 8))
    return max(8, min(CONNECTION_CAP, open_file_limit - reserve))


class _Refused(Exception):
    """Raised in a parser callback to stop parsing a request that is answered 431."""


class ConnectionGuard:
    """The limits of one server's connections, and the state they need.

    ``incomplete`` and ``idle`` are dicts used as ordered sets: insertion order
    is age, so the oldest is always first and the deadline needs one timer.
    """

    def __init__(self, limits: EdgeLimits, record: Recorder | None = None) -> None:
        self.limits = limits
        if limits.max_connections is not None:
            self.max_connections = limits.max_connections
        else:
            self.max_connections = connection_limit(raise_open_file_limit(CONNECTION_CAP + 128))
        self.record = record
        self.incomplete: dict[GuardedHttpToolsProtocol, float] = {}
        """Connections still sending request line and headers → when that began."""
        self.idle: dict[GuardedHttpToolsProtocol, None] = {}
        """Kept-alive connections between requests, oldest first."""
        self.open = 0
        self.timed_out = 0
        self.shed = 0
        self.too_large = 0
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self._reported_at = -math.inf
        self._reported = (0, 0, 0)

    def protocol_class(self) -> type[GuardedHttpToolsProtocol]:
        """A protocol class for ``uvicorn.Config(http=...)`` bound to this guard."""
        return cast(
            "type[GuardedHttpToolsProtocol]",
            type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"guard": self}),
        )

    # ------------------------------------------------------------ connections

    def admit(self, connection: GuardedHttpToolsProtocol) -> None:
        """A new connection: make room for it if the cap is reached, start its deadline."""
        self.open += 1
        if self.open > self.max_connections:
            victim = next(iter(self.incomplete), None) or next(iter(self.idle), None)
            self.shed += 1
            self._report()
            if victim is None:  # every connection is busy with a request: refuse this one
                connection.refuse_newcomer()
                return
            victim.drop()
        self.begin(connection, connection.loop.time())

    def begin(self, connection: GuardedHttpToolsProtocol, now: float) -> None:
        """``connection`` starts sending a request: its header deadline runs from ``now``."""
        self.incomplete[connection] = now
        if self._timer is None:
            self._timer = connection.loop.call_at(now + self.limits.header_timeout, self._expire)

    def forget(self, connection: GuardedHttpToolsProtocol) -> None:
        self.open -= 1
        self.incomplete.pop(connection, None)
        self.idle.pop(connection, None)

    def _expire(self) -> None:
        """Close every connection whose headers are overdue; re-arm for the next oldest."""
        self._timer = None
        timeout = self.limits.header_timeout
        overdue: list[GuardedHttpToolsProtocol] = []
        if not self.incomplete:
            return
        loop = next(iter(self.incomplete)).loop
        now = loop.time()
        for connection, began in self.incomplete.items():
            if began + timeout > now:
                break
            overdue.append(connection)
        for connection in overdue:
            del self.incomplete[connection]
            connection.headers_overdue()
        self.timed_out += len(overdue)
        if overdue:
            self._report()
        if self.incomplete:
            oldest = next(iter(self.incomplete.values()))
            self._timer = loop.call_at(max(oldest + timeout, now + 0.001), self._expire)

    # --------------------------------------------------------------- refusals

    def refused(self, refusal: Refusal, loop: asyncio.AbstractEventLoop) -> None:
        """Record a refusal made at the edge (the recorder never raises)."""
        self.too_large += 1
        self._report()
        if self.record is None:
            return
        task = loop.create_task(self.record(refusal))
        self._tasks.add(task)  # a task only weakly referenced by the loop could vanish
        task.add_done_callback(self._tasks.discard)

    def _report(self) -> None:
        """Log what the limits did, at most once a minute (an attack must not flood the log)."""
        now = time.monotonic()
        counts = (self.timed_out, self.shed, self.too_large)
        if now - self._reported_at < 60 or counts == self._reported:
            return
        self._reported_at, self._reported = now, counts
        log.warning(
            "edge limits so far: %d connections closed without complete headers within %g s, "
            "%d shed at the cap of %d open connections, %d requests with headers over "
            "%d bytes or %d fields answered 431",
            self.timed_out,
            self.limits.header_timeout,
            self.shed,
            self.max_connections,
            self.too_large,
            self.limits.max_header_bytes,
            self.limits.max_header_fields,
        )


def _answer(status: bytes, reason: str) -> bytes:
    body = json.dumps({"status": "error", "error": reason}).encode()
    return b"".join(
        [
            b"HTTP/1.1 ",
            status,
            b"\r\ncontent-type: application/json\r\ncontent-length: ",
            str(len(body)).encode(),
            b"\r\nconnection: close\r\n\r\n",
            body,
        ]
    )


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol under a :class:`ConnectionGuard` (see the module).

    Get a class bound to a guard from :meth:`ConnectionGuard.protocol_class`;
    uvicorn instantiates it once per connection.
    """

    guard: ClassVar[ConnectionGuard]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        guard = self.guard
        limits = guard.limits
        self._max_bytes = limits.max_header_bytes
        self._max_fields = limits.max_header_fields
        self._incomplete = guard.incomplete
        self._idle = guard.idle
        self._phase = _HEADERS
        self._begun = False
        """Whether the parser has seen the start of the current request."""
        self._room = self._max_bytes
        self._refusal: str | None = None
        self._dropped = 0
        guard.admit(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.forget(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """uvicorn's, with the header bytes counted before the parser sees them."""
        self._unset_keepalive_if_required()
        phase = self._phase
        if phase != _BODY:
            if phase == _REFUSED:
                self._drop(data)
                return
            if phase == _BETWEEN:
                self._request_begins()
            room = self._room
            if len(data) > room:
                self._feed_beyond(data, room)
                return
            self._room = room - len(data)
            if self._feed(data) and self._phase == _HEADERS:
                self._count_fields()
            return
        self._feed(data)

    def _feed(self, data: bytes) -> bool:
        """Parse ``data`` (what uvicorn does); False if the connection was answered and ends."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._refuse_headers()
            else:
                message = "Invalid HTTP request received."
                self.logger.warning(message)
                self.send_400_response(message)
            return False
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return False
        return True

    def _feed_beyond(self, data: bytes, room: int) -> None:
        """A chunk longer than the header allowance left: feed the allowance first.

        If the headers end within it, the rest (body, or a pipelined request) is
        fed after it; if not, the headers are too large.
        """
        self._room = 0
        if room and not self._feed(data[:room]):
            return
        if self._phase == _HEADERS:
            if self._count_fields():  # else already refused for too many fields
                self._refusal = (
                    f"request line and headers larger than {self._max_bytes // 1024} KiB"
                )
                self._refuse_headers()
            return
        self._feed(data[room:])

    def _count_fields(self) -> bool:
        """With the headers still incomplete: refuse them if already too many; False if so."""
        if self.headers is None or len(self.headers) <= self._max_fields:
            return True
        self._refusal = f"more than {self._max_fields} header fields"
        self._refuse_headers()
        return False

    def _request_begins(self) -> None:
        self._phase = _HEADERS
        self._begun = False
        self._room = self._max_bytes
        self._idle.pop(self, None)
        self.guard.begin(self, self.loop.time())

    # ------------------------------------------------------ parser callbacks

    # The base class is called by name, not through super(): these run for every
    # request, and each super() costs a lookup (see bench/edge.py --part overhead).

    def on_message_begin(self) -> None:
        if self._phase == _BETWEEN:
            # A request pipelined behind the last one, in the same read: its deadline starts
            # now, and its bytes in this read go uncounted (the parser does not say where it
            # is in a chunk), so it may hold one read (at most 256 KiB) more than the cap.
            self._request_begins()
        self._begun = True
        HttpToolsProtocol.on_message_begin(self)

    def on_headers_complete(self) -> None:
        # Fields are counted here and after each partial feed (_count_fields), not in
        # on_header: an override there cost 0.8 µs per request (9 headers), as much as all
        # the rest of this class, and the byte cap already bounds what is parsed uncounted.
        if len(self.headers) > self._max_fields:
            self._refusal = f"more than {self._max_fields} header fields"
            raise _Refused
        self._phase = _BODY
        self._incomplete.pop(self, None)
        HttpToolsProtocol.on_headers_complete(self)
        self.cycle.transport = _OneSendPerResponse(self.transport)  # type: ignore[assignment]

    def on_message_complete(self) -> None:
        self._phase = _BETWEEN
        HttpToolsProtocol.on_message_complete(self)
        if self.cycle.response_complete and not self.transport.is_closing():
            self._idle[self] = None  # answered before its body was read: idle from now

    def on_response_complete(self) -> None:
        transport = self.cycle.transport
        if isinstance(transport, _OneSendPerResponse):
            transport.flush()  # a HEAD answer has no body write to carry its head
        HttpToolsProtocol.on_response_complete(self)
        if self._phase == _BETWEEN and not self.transport.is_closing():
            self._idle[self] = None

    # ------------------------------------------------------------ the limits

    def headers_overdue(self) -> None:
        """The header deadline passed: 408 if the request had begun, then close."""
        if self.transport.is_closing() or self._answering():
            return
        if self._begun:
            reason = (
                "request line and headers not received within "
                f"{self.guard.limits.header_timeout:g} s"
            )
            self.transport.write(_answer(b"408 Request Timeout", reason))
        self.transport.close()

    def drop(self) -> None:
        """Shed to make room for a new connection."""
        self._incomplete.pop(self, None)
        self._idle.pop(self, None)
        if not self.transport.is_closing() and not self._answering():
            self.transport.close()

    def _answering(self) -> bool:
        """Whether the previous request's answer is still being made (a pipelined one waits).

        Then the connection is closed once that answer is sent, as uvicorn's own
        shutdown does, rather than cutting the answer off.
        """
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return False
        cycle.keep_alive = False
        return True

    def refuse_newcomer(self) -> None:
        reason = "too many open connections; try again"
        self.transport.write(_answer(b"503 Service Unavailable", reason))
        self.transport.close()

    def _refuse_headers(self) -> None:
        """Answer 431, record it, and read (then drop) a little more before closing."""
        reason = self._refusal or "request headers too large"
        self._phase = _REFUSED
        self._incomplete.pop(self, None)
        url: bytes = getattr(self, "url", b"")
        # The parser knows the method once any of the target has arrived.
        method = self.parser.get_method().decode("ascii", "replace") if url else "?"
        self.guard.refused(
            Refusal(
                method=method,
                target=url.decode("latin-1"),
                remote_addr=self.client[0] if self.client else None,
                status=431,
                reason=reason,
            ),
            self.loop,
        )
        if self.transport.is_closing():
            return
        self.transport.write(_answer(b"431 Request Header Fields Too Large", reason))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self._close)

    def _drop(self, data: bytes) -> None:
        self._dropped += len(data)
        if self._dropped > LINGER_BYTES:
            self._close()

    def _close(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()


class _OneSendPerResponse:
    """The transport a response is written through: its head waits for its body.

    uvicorn writes a response's status line and headers, then its body, as two
    ``transport.write`` calls, so every 200 to Tavus costs two ``send`` system
    calls and two TCP segments. Holding the head until the body (or the end of
    the response, or a close) sends both at once. Profiled under load, those two
    writes were 29 % of the receiving process; with one, ``bench/ingest.py``
    went from 9.7-10.3k to 10.8-11.8k requests/s on the same machine.
    """

    __slots__ = ("_head", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head: bytes | None = None
        """The held head; None until the first write, b"" once it has gone out."""

    def write(self, data: bytes) -> None:
        if self._head is None:
            if data.startswith(b"HTTP/1.1 1"):  # an interim answer (100 Continue) goes now
                self._transport.write(data)
                return
            self._head = data
            return
        if self._head:
            data, self._head = self._head + data, b""
        self._transport.write(data)

    def flush(self) -> None:
        if self._head:
            self._transport.write(self._head)
            self._head = b""

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
