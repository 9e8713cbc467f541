"""A developer's webhook handler, for real, on a loopback port: it records what it gets.

Forwarding, replay and ``check`` are tested against this instead of a mock:
a Starlette app served by uvicorn in the test's own loop. Each request is
recorded (:class:`Received`, with its bytes and headers) and answered as the
test says: a status, a delay (a slow or hanging handler), or a rule per
request (``answer``). ``stop()`` then ``start()`` brings it down and up again
on the same port, so "refused" and "back up" are real connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

WAIT = 10.0


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    body: bytes
    headers: tuple[tuple[str, str], ...]
    at: float

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


@dataclass(slots=True)
class Answer:
    status: int = 200
    body: bytes = b'{"ok": true}'
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})


class Handler:
    """The handler on ``url``; set ``answer`` (or ``status``/``delay``) to change its answers."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answer: Callable[[Received], Answer] = lambda _: Answer(self.status, delay=self.delay)
        self.status = 200
        self.delay = 0.0
        self._arrived = asyncio.Condition()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/tavus/webhook"

    async def _receive(self, request: Request) -> Response:
        got = Received(
            path=request.url.path,
            body=await request.body(),
            headers=tuple(
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in request.headers.raw
            ),
            at=time.time(),
        )
        self.received.append(got)
        async with self._arrived:
            self._arrived.notify_all()
        answer = self.answer(got)
        if answer.delay:
            await asyncio.sleep(answer.delay)
        return Response(answer.body, status_code=answer.status, headers=answer.headers)

    async def start(self) -> None:
        app = Starlette(routes=[Route("/{path:path}", self._receive, methods=["POST", "GET"])])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="critical", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        deadline = time.monotonic() + WAIT
        while not self._server.started:
            assert time.monotonic() < deadline, "the handler did not start"
            assert not self._task.done(), "the handler could not start"
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop listening: requests now get 'connection refused'."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        self._server.force_exit = True  # a slow answer in flight is not waited for
        await asyncio.wait_for(self._task, WAIT)
        self._server = self._task = None

    async def until(self, count: int, within: float = WAIT) -> list[Received]:
        """Wait until ``count`` requests have arrived (they are returned)."""

        async def enough() -> None:
            async with self._arrived:
                await self._arrived.wait_for(lambda: len(self.received) >= count)

        await asyncio.wait_for(enough(), within)
        return self.received[:count]


@contextlib.asynccontextmanager
async def running_handler() -> AsyncIterator[Handler]:
    handler = Handler()
    await handler.start()
    try:
        yield handler
    finally:
        await handler.stop()
