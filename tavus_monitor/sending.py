"""Sending a stored delivery to the developer's own handler, and what it answered.

Forwarding (every delivery as it arrives), replay (chosen deliveries, or a
whole call, again), an edited copy from the dashboard and ``check`` (the
documented quirks) all POST a body to a handler and keep the same facts about
the answer: one :class:`Attempt`. They say the same words about it too
(:meth:`Attempt.describe` for a pane cell, :attr:`Attempt.error` for the
sentence), so ``→ refused`` means one thing everywhere.

The request carries the delivery's own body bytes and its end-to-end headers
(``Content-Type``, ``User-Agent`` and the rest as Tavus sent them), never the
hop-by-hop ones (RFC 9110 §7.6.1), ``Host`` or the length (httpx sets those
for the new connection), plus :data:`EVENT_ID_HEADER` naming the stored event,
so a handler's logs can be matched to the monitor's.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import httpx

from .attempts import RESPONSE_KEPT, Attempt
from .events import Headers

EVENT_ID_HEADER = "x-tavus-monitor-event-id"
"""Names the stored event a forwarded or replayed request carries."""
REPLAY_HEADER = "x-tavus-monitor-replay"
"""Present (``1``) on a request sent again by replay or edited from the dashboard."""

_NOT_FORWARDED = frozenset(
    {
        # Hop-by-hop (RFC 9110 §7.6.1), and what belongs to the original connection.
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "expect",
        # Headers an ngrok tunnel adds: they describe the hop to us, not Tavus's request.
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-forwarded-port",
        "x-real-ip",
        "ngrok-trace-id",
        EVENT_ID_HEADER,
        REPLAY_HEADER,
    }
)


def end_to_end_headers(
    headers: Headers, *, event_id: int | None = None, replay: bool = False
) -> Headers:
    """``headers`` as a handler should get them again (see the module notes)."""
    kept = tuple((name, value) for name, value in headers if name.lower() not in _NOT_FORWARDED)
    if not any(name.lower() == "content-type" for name, _ in kept):
        kept += (("content-type", "application/json"),)
    if event_id is not None:
        kept += ((EVENT_ID_HEADER, str(event_id)),)
    if replay:
        kept += ((REPLAY_HEADER, "1"),)
    return kept


async def send(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: Headers,
    *,
    timeout: float,  # noqa: ASYNC109 (httpx's own timeout: an answer that started still counts)
) -> Attempt:
    """POST ``body`` with ``headers`` to ``url``; never raises for what the handler does.

    ``timeout`` bounds the whole exchange (connect, send, answer), so a handler
    that hangs costs at most that long.
    """
    started_at = time.time()
    start = time.perf_counter()
    try:
        async with client.stream(
            "POST", url, content=body, headers=list(headers), timeout=timeout
        ) as response:
            kept = bytearray()
            async for chunk in response.aiter_bytes():
                kept += chunk[: RESPONSE_KEPT - len(kept)]
                if len(kept) >= RESPONSE_KEPT:
                    break
            return Attempt(
                target=url,
                started_at=started_at,
                latency_ms=(time.perf_counter() - start) * 1000,
                status=response.status_code,
                request_headers=headers,
                response_headers=tuple(
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in response.headers.raw
                ),
                response_body=bytes(kept),
            )
    except httpx.HTTPError as exc:
        failure, sentence = explain(exc, url, timeout)
        return Attempt(
            target=url,
            started_at=started_at,
            latency_ms=(time.perf_counter() - start) * 1000,
            status=None,
            error=sentence,
            request_headers=headers,
            failure=failure,
        )


def explain(exc: httpx.HTTPError, url: str, timeout: float) -> tuple[str, str]:
    """A failed exchange as a word for a cell and one sentence saying what to check."""
    where = urlsplit(url)
    port = where.port or (443 if where.scheme == "https" else 80)
    host = where.hostname or "?"
    if isinstance(exc, httpx.ConnectError) and _refused(exc):
        return "refused", f"connection refused: is your server running on :{port}?"
    if isinstance(exc, httpx.ConnectError):
        return "unreachable", f"cannot connect to {host}:{port} ({_reason(exc)})"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout", (
            f"no answer from {host}:{port} within {timeout:g} s: is your handler stuck?"
        )
    if isinstance(exc, httpx.RemoteProtocolError):
        return "closed", f"{host}:{port} closed the connection without a valid answer"
    return "error", f"sending to {host}:{port} failed ({_reason(exc)})"


def _refused(exc: BaseException) -> bool:
    """Whether the connection was refused (anyio reports it as "All connection attempts
    failed", with the ``ConnectionRefusedError`` in the chain)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError) or "refused" in str(seen).lower():
            return True
        if isinstance(seen, OSError) and seen.errno is not None:
            return False
        seen = seen.__cause__ or seen.__context__
    return False


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())
