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
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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

    async def refuse(
        request: Request, status: int, reason: str, size: int | None = None
    ) -> Response:
        if size is None:
            size = _content_length(request)
        client = request.client
        await record(
            request.method,
            request.scope["path"],
            client.host if client else None,
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

    async def receive(request: Request) -> Response:
        if expected is not None:
            given = request.path_params.get("token")
            if given is None:
                return await refuse(request, 404, "missing token")
            if not hmac.compare_digest(given.encode(), expected):
                return await refuse(request, 404, "wrong token")
        if request.method != "POST":
            return await refuse(request, 405, f"method {request.method} not allowed; use POST")
        received_at = time.time()
        try:
            async with asyncio.timeout(BODY_READ_TIMEOUT):
                body = await request.body()
        except HTTPException as exc:
            if exc.status_code == 413:
                reason = f"body larger than the {max_body_bytes / (1024 * 1024):g} MB limit"
                await refuse(request, 413, reason)
            raise
        except ClientDisconnect:
            await refuse(request, 499, "sender disconnected before the body was complete")
            return Response(status_code=499)
        except TimeoutError:
            return await refuse(request, 408, f"body not received within {BODY_READ_TIMEOUT:g} s")
        return await deliver(request.scope, body, received_at) or JSONResponse(SUCCESS)

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

    def takes_fast_path(scope: Scope) -> bool:
        """A POST to the webhook path with a Content-Length body within the limit.

        Everything else (wrong token, other methods, chunked or oversized
        bodies) goes through the routes below, which refuse it with a reason.
        """
        if scope["method"] != "POST":
            return False
        path: str = scope["path"]
        if expected is None:
            if path != "/webhook":
                return False
        elif not (
            path.startswith("/webhook/") and hmac.compare_digest(path[9:].encode(), expected)
        ):
            return False
        length = None
        for key, value in scope["headers"]:
            if key == b"content-length":
                length = value
            elif key == b"transfer-encoding":
                return False
        return length is not None and length.isdigit() and int(length) <= max_body_bytes

    async def fast_webhook(scope: Scope, receive_: Receive, send: Send) -> None:
        """``receive`` for the common case, without Request, routing or Response objects."""
        received_at = time.time()
        response: Response | None
        try:
            # asyncio.timeout, not wait_for: no extra task per request.
            async with asyncio.timeout(BODY_READ_TIMEOUT):
                body = await _read_body(receive_)
        except ClientDisconnect:
            request = Request(scope, receive_)
            await refuse(request, 499, "sender disconnected before the body was complete")
            response = Response(status_code=499)
        except TimeoutError:
            request = Request(scope, receive_)
            reason = f"body not received within {BODY_READ_TIMEOUT:g} s"
            response = await refuse(request, 408, reason)
        else:
            response = await deliver(scope, body, received_at)
        if response is not None:
            await response(scope, receive_, send)
            return
        await send(_SUCCESS_START)
        await send(_SUCCESS_BODY)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", **counters.as_dict()})

    async def not_found(request: Request) -> Response:
        return await refuse(request, 404, "no such path")

    route_path = "/webhook/{token}" if expected is not None else "/webhook"
    methods = ["POST", "GET", "PUT", "PATCH", "DELETE"]
    routes = [
        Route(route_path, receive, methods=methods, max_body_size=max_body_bytes),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    if expected is not None:
        routes.append(Route("/webhook", receive, methods=methods, max_body_size=max_body_bytes))
    routes.append(Route("/{path:path}", not_found, methods=[*methods, "HEAD", "OPTIONS"]))
    fast_path = Middleware(_FastPath, accepts=takes_fast_path, handle=fast_webhook)
    app = Starlette(routes=routes, middleware=[fast_path])
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


class _FastPath:
    """ASGI middleware: hand the requests ``accepts`` picks to ``handle``, the rest on."""

    def __init__(self, app: ASGIApp, *, accepts: Callable[[Scope], bool], handle: ASGIApp) -> None:
        self.app = app
        self.accepts = accepts
        self.handle = handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.accepts(scope):
            await self.handle(scope, receive, send)
        else:
            await self.app(scope, receive, send)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _content_length(request: Request) -> int | None:
    try:
        return int(request.headers["content-length"])
    except (KeyError, ValueError):
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
