"""The webhook receiver: a Starlette app and an embeddable uvicorn runner.

The handler reads the raw bytes, hands them to the store (whose writer
classifies them), waits until the store has committed them and only then
answers ``200 {"status": "success"}``. Nothing a sender does (bad JSON, wrong
token, a huge or slow body) produces a 5xx; the one 5xx is 503, when the disk
refuses the write and Tavus should try again. A refusal (404, 405, 413, ...) is
answered even when the store cannot record it: it is then counted and logged.
What a connection may do before its request is read (how long it may take to
send its headers, how large they may be, how many connections may be open) is
enforced in :mod:`tavus_monitor.edge`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import socket
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import control
from .edge import HEADER_TIMEOUT, ConnectionGuard, EdgeLimits, Refusal
from .events import Event
from .redact import REDACTED, path_redactor
from .store import Delivery, Rejection, Store, StoreError

log = logging.getLogger(__name__)

BODY_READ_TIMEOUT = 30.0
"""Seconds a sender may take to send its body; a stalled sender gets 408."""
SUCCESS = {"status": "success"}


@dataclass(slots=True)
class Stats:
    """Counters for ``/healthz`` and status lines; seeded from the store at start."""

    events_total: int = 0
    rejected_total: int = 0
    events_session: int = 0
    rejected_session: int = 0
    rejected_unrecorded: int = 0
    """Refusals the store could not record (disk full, writer gone): counted and logged."""
    last_event_at: float | None = None
    started_at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, object]:
        return {
            "events": self.events_total,
            "rejected": self.rejected_total,
            "events_this_session": self.events_session,
            "rejected_this_session": self.rejected_session,
            "rejected_not_recorded": self.rejected_unrecorded,
            "last_event_at": self.last_event_at,
            "uptime_seconds": round(time.time() - self.started_at, 3),
        }


def create_app(
    store: Store,
    *,
    token: str | None,
    max_body_bytes: int,
    stats: Stats | None = None,
    on_event: Callable[[Event], None] | None = None,
    on_rejection: Callable[[Rejection], None] | None = None,
) -> Starlette:
    """The receiver app. ``token=None`` serves plain ``/webhook`` (no secret)."""
    counters = stats if stats is not None else Stats()
    expected = token.encode() if token is not None else None
    redact = path_redactor(token)
    webhook_path = "/webhook/" + token if token is not None else "/webhook"
    shown_webhook_path = "/webhook/" + REDACTED if token is not None else "/webhook"

    async def record(
        method: str,
        path: str,
        remote_addr: str | None,
        size: int | None,
        status: int,
        reason: str,
    ) -> None:
        """Keep a line about a refused request; if the store cannot, count and log it.

        Never raises: the refusal is answered either way (a 404 must not become a 500
        because the disk is full or the writer process is gone).
        """
        counters.rejected_total += 1
        counters.rejected_session += 1
        shown = redact(path)
        try:
            rejection = await store.reject(
                method=method,
                path=shown,
                remote_addr=remote_addr,
                size=size,
                status=status,
                reason=reason,
            )
        except Exception as exc:
            counters.rejected_unrecorded += 1
            log.warning(
                "refused %s %s from %s with %d (%s); the refusal was not recorded: %s",
                method,
                shown,
                remote_addr or "unknown",
                status,
                reason,
                exc,
                exc_info=not isinstance(exc, StoreError),
            )
            return
        if on_rejection is not None:
            on_rejection(rejection)

    async def refuse(scope: Scope, status: int, reason: str, size: int | None = None) -> Response:
        """Record a refusal and build its answer (``{"status": "error", ...}``)."""
        if size is None:
            size = _content_length(scope)
        client = scope.get("client")
        await record(
            scope["method"],
            scope["path"],
            client[0] if client else None,
            size,
            status,
            reason,
        )
        return JSONResponse({"status": "error", "error": reason}, status_code=status)

    async def record_refusal(refusal: Refusal) -> None:
        """A refusal made at the edge, before the app saw the request (431)."""
        await record(
            refusal.method,
            refusal.target,
            refusal.remote_addr,
            None,
            refusal.status,
            refusal.reason,
        )

    too_large = f"body larger than the {max_body_bytes / (1024 * 1024):g} MB limit"

    async def webhook(scope: Scope, receive: Receive, send: Send) -> None:
        """The one handler for the webhook path(s): check, read, store, answer.

        Token (404), method (405), body cap (413, by Content-Length before
        reading and by counting while reading a chunked body), body deadline
        (408), sender gone (499), store refused (503), else 200 once committed.
        It is plain ASGI, without Request, Response or routing on the accepted
        path, like the raw fast path it replaces (which served only well-formed
        POSTs and left the rest to a second, Starlette Route handler).
        ``python bench/ingest.py``, runs alternated on 2 CPUs: the merged
        handler 9,113 and 8,818 requests/s, the two handlers 8,997 and 8,999
        (noise is about 5%). Refusals are rare and use ordinary Responses; the
        200 is two pre-built messages.
        """
        if expected is not None:
            path: str = scope["path"]
            if path == "/webhook":
                await (await refuse(scope, 404, "missing token"))(scope, receive, send)
                return
            if not hmac.compare_digest(path[9:].encode(), expected):
                await (await refuse(scope, 404, "wrong token"))(scope, receive, send)
                return
        method: str = scope["method"]
        if method != "POST":
            reason = f"method {method} not allowed; use POST"
            await (await refuse(scope, 405, reason))(scope, receive, send)
            return
        received_at = time.time()
        response: Response | None
        length = _content_length(scope)
        if length is not None and length > max_body_bytes:
            await refuse(scope, 413, too_large, length)
            response = _content_too_large()
        else:
            try:
                # asyncio.timeout, not wait_for: no extra task per request.
                async with asyncio.timeout(BODY_READ_TIMEOUT):
                    body = await _read_body(receive, max_body_bytes)
            except _BodyTooLarge:
                await refuse(scope, 413, too_large, length)
                response = _content_too_large()
            except ClientDisconnect:
                await refuse(scope, 499, "sender disconnected before the body was complete")
                response = Response(status_code=499)
            except TimeoutError:
                reason = f"body not received within {BODY_READ_TIMEOUT:g} s"
                response = await refuse(scope, 408, reason)
            else:
                response = await deliver(scope, body, received_at)
        if response is not None:
            await response(scope, receive, send)
            return
        await send(_SUCCESS_START)
        await send(_SUCCESS_BODY)

    async def deliver(scope: Scope, body: bytes, received_at: float) -> Response | None:
        """Store a received body; None once it is committed (answer 200), else the answer."""
        headers = tuple(
            (key.decode("latin-1"), value.decode("latin-1")) for key, value in scope["headers"]
        )
        client = scope.get("client")
        delivery = Delivery(
            body=body,
            headers=headers,
            received_at=received_at,
            remote_addr=client[0] if client else None,
            path=shown_webhook_path if scope["path"] == webhook_path else redact(scope["path"]),
        )
        try:
            event = await store.append(delivery)
        except StoreError as exc:
            log.error("delivery not stored: %s", exc)
            return JSONResponse(
                {"status": "error", "error": "not stored; try again"}, status_code=503
            )
        counters.events_total += 1
        counters.events_session += 1
        counters.last_event_at = event.received_at
        if on_event is not None:
            on_event(event)
        return None

    def is_webhook_path(path: str) -> bool:
        """What the Route ``/webhook/{token}`` (and ``/webhook``) used to match.

        ``/webhook`` itself, and with a token any single non-empty segment
        after it (a wrong one is refused by :func:`webhook` as "wrong token");
        deeper paths such as ``/webhook/<token>/extra`` are "no such path".
        """
        if path == "/webhook":
            return True
        return (
            expected is not None
            and path.startswith("/webhook/")
            and len(path) > 9
            and "/" not in path[9:]
        )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", **counters.as_dict()})

    async def not_found(request: Request) -> Response:
        return await refuse(request.scope, 404, "no such path")

    methods = ["POST", "GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        *control.routes(store),
        Route("/{path:path}", not_found, methods=methods),
    ]
    webhooks = Middleware(_WebhookPaths, accepts=is_webhook_path, handle=webhook)
    app = Starlette(routes=routes, middleware=[webhooks])
    app.state.record_refusal = record_refusal  # for the edge's 431s (see make_server)
    return app


_SUCCESS_BYTES = b'{"status":"success"}'  # what JSONResponse(SUCCESS) renders
_SUCCESS_START: Message = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-length", str(len(_SUCCESS_BYTES)).encode()),
        (b"content-type", b"application/json"),
    ],
}
_SUCCESS_BODY: Message = {"type": "http.response.body", "body": _SUCCESS_BYTES}


def _content_too_large() -> Response:
    """The 413 answer, as Starlette's body limit (``Route(max_body_size=)``) wrote it."""
    return PlainTextResponse("Content Too Large", status_code=413)


class _WebhookPaths:
    """ASGI middleware: the webhook path(s) to ``handle``, every other request on.

    Dispatching here, ahead of the router, keeps routing off the path every
    callback takes; ``/healthz`` and the 404 catch-all stay Starlette routes.
    """

    def __init__(self, app: ASGIApp, *, accepts: Callable[[str], bool], handle: ASGIApp) -> None:
        self.app = app
        self.accepts = accepts
        self.handle = handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.accepts(scope["path"]):
            await self.handle(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class _BodyTooLarge(Exception):
    """A body grew past the cap while being read (chunked, or longer than announced)."""


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body, or :class:`_BodyTooLarge` once it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise _BodyTooLarge()
        if not message.get("more_body", False):
            if not chunks:
                return chunk
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


# ---------------------------------------------------------------- sockets


class PortInUse(Exception):
    """The chosen port is taken by another program."""


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0 = any free port).

    Binding ourselves (instead of letting uvicorn do it) turns a busy port into
    an exception we can explain, where uvicorn would ``sys.exit(3)``.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP (not 0) so asyncio sets TCP_NODELAY on accepted connections;
    # without it every response waits ~40 ms on Nagle + delayed ACK (uvloop is unaffected).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
            raise PortInUse(port) from exc
        raise
    sock.setblocking(False)
    return sock


def bind_with_fallback(host: str, port: int, *, explicit: bool) -> tuple[socket.socket, bool]:
    """Bind ``port``; if it is busy and was not chosen by the user, any free port.

    Returns the socket and whether it fell back.
    """
    try:
        return bind_socket(host, port), False
    except PortInUse:
        if explicit:
            raise
        return bind_socket(host, 0), True


# ---------------------------------------------------------------- uvicorn


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that shares its event loop with the rest of the program.

    It leaves signals to its host (Textual turns Ctrl+C into a key; headless
    mode installs its own handlers) and is stopped with ``should_exit``.
    """

    guard: ConnectionGuard | None = None
    """The edge limits in force (set by :func:`make_server`)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.listening.set()


def make_server(
    app: Starlette, *, header_timeout: float = HEADER_TIMEOUT, limits: EdgeLimits | None = None
) -> EmbeddedServer:
    """uvicorn for ``app`` with the edge limits (``limits`` overrides ``header_timeout``).

    The connection cap comes from the descriptor limit, which is first raised
    towards the hard limit (see :func:`tavus_monitor.edge.raise_open_file_limit`).
    """
    guard = ConnectionGuard(
        limits if limits is not None else EdgeLimits(header_timeout=header_timeout),
        record=getattr(app.state, "record_refusal", None),
    )
    config = uvicorn.Config(
        app,
        http=guard.protocol_class(),
        ws="none",  # no websockets served; an upgrade would leave the guard's protocol
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
        timeout_keep_alive=30,
        server_header=False,
        date_header=False,
    )
    server = EmbeddedServer(config)
    server.guard = guard
    return server
