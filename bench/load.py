"""Open-loop callback load at a fixed rate, as Tavus sends it: run in its own process.

    python bench/load.py URL --rate 2500 --seconds 6 --warmup 200 > sends.json

Each conversation is the eight callbacks of one call in delivery order
(``samples.CONVERSATION_SEQUENCE``: joins, an objective, shutdown, the
transcript, recording, perception, a post-call action), rendered from the real
samples with a conversation id of exactly 12 characters (the width the
dashboard's System pane shows, so a benchmark can find each join and shutdown
row on screen by it).

Open loop: request ``i`` is due at ``start + i / rate`` whatever happened to the
earlier ones, and its latency is measured from when it was *due*, not from when
a connection got round to sending it, so a stalled server is not hidden by a
stalled client (coordinated omission). Requests go over a pool of keep-alive
HTTP/1.1 connections, one request at a time each (as Tavus's sender does); a
new connection is opened when all are busy, up to ``--max-connections``.

The client is raw asyncio protocols (uvloop when installed): at 2,500/s it
needs about a fifth of a core here, where an httpx client needed more than a
whole one and fell seconds behind its schedule.

Prints one JSON object: ``{"names": [...], "ids": [...], "sends": [[due, sent,
answered, status], ...], "late": max seconds a send was behind its due time}``
with times on ``time.monotonic`` (system-wide, so comparable with the
benchmark's own stamps), status 0 for a request that got no answer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections import deque
from typing import cast
from urllib.parse import urlsplit

from tavus_monitor import samples

CONVERSATION = tuple(name for name, _ in samples.CONVERSATION_SEQUENCE)
"""One call's callbacks in the order Tavus delivers them."""
ID_WIDTH = 12


def conversation_id(prefix: str, number: int) -> str:
    """A 12-character conversation id: the prefix, then the number."""
    digits = ID_WIDTH - len(prefix)
    return f"{prefix}{number:0{digits}d}"


def bodies(prefix: str, count: int, url: str) -> tuple[list[bytes], list[str]]:
    """``count`` request bodies (whole conversations in order) and each one's conversation id."""
    out: list[bytes] = []
    ids: list[str] = []
    per = len(CONVERSATION)
    for number in range(-(-count // per)):
        cid = conversation_id(prefix, number)
        for sample in samples.render_many(list(CONVERSATION), conversation_id=cid, webhook_url=url):
            out.append(sample.body)
            ids.append(cid)
    return out[:count], ids[:count]


class Connection(asyncio.Protocol):
    """One keep-alive connection, one request at a time; answers are Content-Length framed."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.index: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.pool.idle(self)

    def send(self, index: int, request: bytes) -> None:
        assert self.transport is not None
        self.index = index
        self.pool.sends[index][1] = time.monotonic()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        start = head.find(b"\r\ncontent-length:")
        stop = head.find(b"\r\n", start + 2)
        length = int(head[start + 17 : stop if stop >= 0 else len(head)]) if start >= 0 else 0
        if len(self.buffer) < end + 4 + length:
            return
        del self.buffer[: end + 4 + length]
        index, self.index = self.index, None
        if index is not None:
            self.pool.answered(index, int(head[9:12]))
        self.pool.idle(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.pool.lost(self)


class Pool:
    """Keep-alive connections, opened as needed; requests wait for a free one in order."""

    def __init__(self, host: str, port: int, requests: list[bytes], limit: int) -> None:
        self.host, self.port, self.requests, self.limit = host, port, requests, limit
        self.sends: list[list[float]] = [[0.0, 0.0, 0.0, 0.0] for _ in requests]
        self.free: list[Connection] = []
        self.waiting: deque[int] = deque()
        self.open = 0
        self.outstanding = len(requests)
        self.done = asyncio.get_running_loop().create_future()

    def submit(self, index: int, due: float) -> None:
        self.sends[index][0] = due
        if self.free:
            self.free.pop().send(index, self.requests[index])
            return
        self.waiting.append(index)
        if self.open < self.limit:
            self.open += 1
            loop = asyncio.get_running_loop()
            task = loop.create_task(
                loop.create_connection(lambda: Connection(self), self.host, self.port)
            )
            task.add_done_callback(self._connected)

    def _connected(self, task: asyncio.Task[object]) -> None:
        if task.exception() is not None:
            self.open -= 1

    def idle(self, connection: Connection) -> None:
        if self.waiting:
            index = self.waiting.popleft()
            connection.send(index, self.requests[index])
        else:
            self.free.append(connection)

    def answered(self, index: int, status: int) -> None:
        self.sends[index][2] = time.monotonic()
        self.sends[index][3] = float(status)
        self.outstanding -= 1
        if self.outstanding == 0 and not self.done.done():
            self.done.set_result(None)

    def lost(self, connection: Connection) -> None:
        self.open -= 1
        with contextlib.suppress(ValueError):
            self.free.remove(connection)
        if connection.index is not None:  # no answer: counted as failed
            self.answered(connection.index, 0)


async def run(url: str, rate: float, count: int, limit: int, prefix: str) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    payloads, ids = bodies(prefix, count, url)
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Content-Type: application/json\r\nUser-Agent: tavus-monitor-bench\r\n"
    )
    requests = [f"{head}Content-Length: {len(b)}\r\n\r\n".encode() + b for b in payloads]
    pool = Pool(host, port, requests, limit)
    start = time.monotonic() + 0.05
    late = 0.0
    for index in range(count):
        due = start + index / rate
        delay = due - time.monotonic()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        late = max(late, time.monotonic() - due)
        pool.submit(index, due)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(pool.done, timeout=60)
    return {"ids": ids, "names": list(CONVERSATION), "sends": pool.sends, "late": late}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--count", type=int, required=True, help="requests in all")
    parser.add_argument("--max-connections", type=int, default=256)
    parser.add_argument("--prefix", default="c", help="conversation ids start with this")
    args = parser.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    result = asyncio.run(run(args.url, args.rate, args.count, args.max_connections, args.prefix))
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
