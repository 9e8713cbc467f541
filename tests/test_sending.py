"""Sending a body to a real handler on loopback: what arrives, and how failures are told."""

from __future__ import annotations

import httpx
from handler import Answer, running_handler

from tavus_monitor.sending import EVENT_ID_HEADER, end_to_end_headers, send

BODY = b'{"event_type":"system.shutdown","conversation_id":"c1"}'
TAVUS_HEADERS = (
    ("host", "abc.ngrok.app"),
    ("content-type", "application/json; charset=utf-8"),
    ("user-agent", "python-requests/2.31"),
    ("content-length", str(len(BODY))),
    ("x-forwarded-for", "34.1.2.3"),
    ("connection", "keep-alive"),
)


async def test_the_handler_gets_the_bytes_and_end_to_end_headers_only() -> None:
    async with running_handler() as handler, httpx.AsyncClient() as client:
        headers = end_to_end_headers(TAVUS_HEADERS, event_id=42)
        attempt = await send(client, handler.url, BODY, headers, timeout=5)
        (got,) = handler.received
    assert attempt.ok
    assert attempt.status == 200
    assert attempt.describe().startswith("→ 200 ")
    assert got.body == BODY
    assert got.header("content-type") == "application/json; charset=utf-8"
    assert got.header("user-agent") == "python-requests/2.31"
    assert got.header(EVENT_ID_HEADER) == "42"
    assert got.header("x-forwarded-for") is None
    assert got.header("host") == f"127.0.0.1:{handler.port}"
    assert attempt.response_body == b'{"ok": true}'


async def test_an_error_answer_a_refusal_and_a_hang_are_each_told() -> None:
    async with running_handler() as handler, httpx.AsyncClient() as client:
        handler.answer = lambda _: Answer(500, body=b"Traceback: KeyError 'properties'")
        failed = await send(client, handler.url, BODY, (), timeout=5)
        handler.answer = lambda _: Answer(200, delay=5)
        hung = await send(client, handler.url, BODY, (), timeout=0.3)
        await handler.stop()
        refused = await send(client, handler.url, BODY, (), timeout=5)
    assert not failed.ok
    assert failed.describe().startswith("→ 500 ")
    assert failed.response_body == b"Traceback: KeyError 'properties'"
    assert hung.status is None
    assert hung.describe() == "→ timeout"
    assert hung.error is not None
    assert "within 0.3 s" in hung.error
    assert refused.describe() == "→ refused"
    assert refused.error == f"connection refused: is your server running on :{handler.port}?"
