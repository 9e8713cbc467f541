"""The receiver over real HTTP: a real Monitor, real uvicorn on loopback, a real SQLite file.

What a sender (Tavus, or anything else that finds the URL) sees, and what the
user then finds in the store: every body kept byte-exact and answered only
once committed, bad bodies kept as malformed with a reason, refused requests
kept as rejections with the token redacted, a body cap that answers 413, a
busy port explained, and duplicates linked to the first delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import DOCUMENTED_EVENT_TYPES, FIXTURES, PROPERTY_KEYS, TEST_TOKEN, fixture_bytes
from headless_process import tavus_monitor
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tavus_monitor import samples
from tavus_monitor.bus import StatusChanged, StatusKind
from tavus_monitor.event_types import REGISTRY
from tavus_monitor.events import Event, Family
from tavus_monitor.monitor import Monitor, MonitorError
from tavus_monitor.settings import Settings
from tavus_monitor.store import EventQuery, Store

SAMPLES = Path(samples.__file__).parent
WEBHOOK = f"/webhook/{TEST_TOKEN}"
SUCCESS = {"status": "success"}
MB = 1024 * 1024

# (family, event_type) a user should see for each shipped sample and team fixture.
# The samples' expectations are the registry's entries: a sample file without an
# entry (or an entry without its file) fails the coverage test below.
EXPECTED: dict[str, tuple[Family, str]] = {
    **{f"samples/{entry.sample}": (entry.family, entry.name) for entry in REGISTRY.values()},
    "fixtures/conversation.application.perception_analysis.json": (
        Family.CONVERSATION,
        "application.perception_analysis",
    ),
    "fixtures/conversation.application.recording_ready.json": (
        Family.CONVERSATION,
        "application.recording_ready",
    ),
    "fixtures/conversation.application.transcription_ready.json": (
        Family.CONVERSATION,
        "application.transcription_ready",
    ),
    "fixtures/conversation.system.replica_joined.json": (
        Family.CONVERSATION,
        "system.replica_joined",
    ),
    "fixtures/conversation.system.shutdown.json": (Family.CONVERSATION, "system.shutdown"),
    "fixtures/replica.error.json": (Family.REPLICA, "replica.error"),
    "fixtures/replica.ready.json": (Family.REPLICA, "replica.ready"),
    "fixtures/video.error.json": (Family.VIDEO, "video.error"),
    "fixtures/video.ready.json": (Family.VIDEO, "video.ready"),
}


def payload_file(name: str) -> Path:
    folder, _, filename = name.partition("/")
    return (SAMPLES if folder == "samples" else FIXTURES) / filename


@contextlib.asynccontextmanager
async def started(monitor: Monitor) -> AsyncIterator[Monitor]:
    """Start ``monitor`` and always stop it (a failed start has opened the store)."""
    try:
        await monitor.start()
        yield monitor
    finally:
        await monitor.stop()


def store_of(monitor: Monitor) -> Store:
    assert monitor.store is not None
    return monitor.store


def newest(monitor: Monitor) -> Event:
    """The most recently stored event, read back in full from the store."""
    store = store_of(monitor)
    latest = store.page(EventQuery(limit=1))
    assert latest, "no event was stored"
    event = store.get(latest[0].id)
    assert event is not None
    return event


async def post_ok(monitor: Monitor, client: httpx.AsyncClient, body: bytes) -> Event:
    """POST ``body`` to the webhook, expect the success answer, return the stored event."""
    response = await client.post(WEBHOOK, content=body)
    assert response.status_code == 200, response.text
    assert response.json() == SUCCESS
    return newest(monitor)


# ---------------------------------------------------------------- valid callbacks


def test_expectation_table_covers_every_payload_file() -> None:
    files = {f"samples/{p.name}" for p in SAMPLES.glob("*.json")}
    files |= {f"fixtures/{p.name}" for p in FIXTURES.glob("*.json")}
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_every_sample_is_answered_success_and_stored_byte_exact(
    name: str, monitor: Monitor, client: httpx.AsyncClient
) -> None:
    body = payload_file(name).read_bytes()
    family, event_type = EXPECTED[name]

    event = await post_ok(monitor, client, body)

    stored = store_of(monitor).get(event.id)
    assert stored is not None
    assert stored.body == body
    assert stored.family is family
    assert stored.event_type == event_type
    assert stored.error is None
    payload = json.loads(body)
    if family is Family.REPLICA:
        assert stored.subject_id == payload["replica_id"]
    elif family is Family.VIDEO:
        assert stored.subject_id == payload["video_id"]
    else:
        assert stored.conversation_id == payload["conversation_id"]
    assert stored.remote_addr == "127.0.0.1"
    assert stored.path == "/webhook/<token>"
    assert TEST_TOKEN not in json.dumps(stored.headers)


async def test_a_killed_writer_process_is_replaced_and_nothing_acknowledged_is_lost(
    monitor: Monitor, client: httpx.AsyncClient
) -> None:
    """The writer dies: what it held is answered 503 (Tavus retries), a new one takes over."""
    store = store_of(monitor)
    before = await post_ok(monitor, client, numbered_body(1))
    first_pid = store.writer_pid
    assert first_pid is not None

    os.kill(first_pid, signal.SIGKILL)
    during = await client.post(WEBHOOK, content=numbered_body(2))
    assert during.status_code in (200, 503)  # 503 if it reached the dead writer
    after = await post_ok(monitor, client, numbered_body(3))

    assert store.writer_pid not in (None, first_pid)
    stored = {event.body for event in store.page(EventQuery(limit=10))}
    assert {before.body, after.body} <= stored
    assert (numbered_body(2) in stored) == (during.status_code == 200)


def numbered_body(number: int) -> bytes:
    return json.dumps({"conversation_id": f"c-{number}", "event_type": "system.shutdown"}).encode()


async def test_answer_waits_for_the_commit(
    settings: Settings, monitor: Monitor, client: httpx.AsyncClient
) -> None:
    """No 200 while the database cannot be written; after it, another connection sees the row."""
    assert settings.db_path is not None
    body = fixture_bytes("conversation.system.shutdown.json")
    with contextlib.closing(sqlite3.connect(settings.db_path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # hold the write lock: the store's commit must wait
        try:
            answer = asyncio.ensure_future(client.post(WEBHOOK, content=body))
            done, _ = await asyncio.wait({answer}, timeout=0.5)
            assert not done, "answered while the delivery could not have been committed"
        finally:
            other.execute("ROLLBACK")
        response = await answer
        assert response.status_code == 200
        # Read at once from a separate connection: the row must already be there.
        row = other.execute("SELECT count(*) FROM events WHERE body = ?", (body,)).fetchone()
        assert row == (1,)


async def test_every_200_is_visible_to_another_connection_at_once(
    settings: Settings, monitor: Monitor, client: httpx.AsyncClient
) -> None:
    assert settings.db_path is not None
    template = json.loads(fixture_bytes("conversation.system.shutdown.json"))
    with contextlib.closing(sqlite3.connect(f"file:{settings.db_path}?mode=ro", uri=True)) as other:

        async def post_and_look(number: int) -> None:
            body = json.dumps({**template, "conversation_id": f"commit-{number}"}).encode()
            response = await client.post(WEBHOOK, content=body)
            assert response.status_code == 200
            row = other.execute("SELECT count(*) FROM events WHERE body = ?", (body,)).fetchone()
            assert row == (1,), f"delivery {number} was acknowledged before it was committed"

        await asyncio.gather(*(post_and_look(number) for number in range(60)))


async def test_chunked_callback_under_the_cap_is_stored_intact(
    monitor: Monitor, client: httpx.AsyncClient
) -> None:
    body = fixture_bytes("conversation.application.transcription_ready.json")

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 100):
            yield body[start : start + 100]

    request = client.build_request("POST", WEBHOOK, content=chunks())
    assert request.headers.get("transfer-encoding") == "chunked"
    response = await client.send(request)
    assert response.status_code == 200
    assert newest(monitor).body == body


async def test_answers_are_not_held_back_by_nagle_on_the_asyncio_loop(
    monitor: Monitor, client: httpx.AsyncClient
) -> None:
    """A sender posting one callback after another is not slowed to ~40 ms per answer.

    The tests run on the standard asyncio loop (as a Textual UI does); without
    TCP_NODELAY on accepted sockets every answer waits for a delayed ACK.
    """
    assert "uvloop" not in type(asyncio.get_running_loop()).__module__
    body = fixture_bytes("replica.ready.json")
    durations: list[float] = []
    for _ in range(21):
        began = time.perf_counter()
        response = await client.post(WEBHOOK, content=body)
        durations.append(time.perf_counter() - began)
        assert response.status_code == 200
    assert statistics.median(durations) < 0.020, durations


# ---------------------------------------------------------------- bad bodies


BAD_BODIES = [
    pytest.param(b"hello, this is not json", None, Family.MALFORMED, "not json", id="not-json"),
    pytest.param(
        b'{"event_type": "system.shutdown", "conversation_id": "c1", "properties": {',
        None,
        Family.MALFORMED,
        "truncated",
        id="truncated",
    ),
    pytest.param(
        b'{"event_type": "system.shutdown", "conversation_id": "c1", "properties": {"re',
        None,
        Family.MALFORMED,
        "truncated",
        id="truncated-in-string",
    ),
    pytest.param(
        b'{"analysis": "line one\nline two"}',
        None,
        Family.MALFORMED,
        "control character",
        id="raw-newline-in-string",
    ),
    pytest.param(b'{"note": "caf\xe9 \xff"}', None, Family.MALFORMED, "utf-8", id="not-utf8"),
    pytest.param(b"[1, 2, 3]", None, Family.MALFORMED, "array", id="array"),
    pytest.param(b'"system.shutdown"', None, Family.MALFORMED, "string", id="string"),
    pytest.param(b"42", None, Family.MALFORMED, "number", id="number"),
    pytest.param(b"null", None, Family.MALFORMED, "null", id="null"),
    pytest.param(b'{"duration": NaN}', None, Family.MALFORMED, "nan", id="nan"),
    pytest.param(b'{"duration": Infinity}', None, Family.MALFORMED, "infinity", id="infinity"),
    pytest.param(b'{"duration": -Infinity}', None, Family.MALFORMED, "infinity", id="-infinity"),
    pytest.param(b'{"a": "\\ud800"}', None, Family.MALFORMED, "surrogate", id="lone-surrogate"),
    pytest.param(b"[" * 5000 + b"]" * 5000, None, Family.MALFORMED, "nested", id="deep-array"),
    pytest.param(
        b'{"a":' * 5000 + b"1" + b"}" * 5000, None, Family.MALFORMED, "nested", id="deep-object"
    ),
    pytest.param(b'{"n": ' + b"7" * 5000 + b"}", None, Family.MALFORMED, "digits", id="big-int"),
    pytest.param(b"", None, Family.MALFORMED, "empty", id="empty"),
    pytest.param(
        b"event_type=system.shutdown&conversation_id=c1",
        "application/x-www-form-urlencoded",
        Family.MALFORMED,
        "form",
        id="form-encoded",
    ),
    pytest.param(
        b'{"event_type": 42, "conversation_id": "c1"}',
        "application/json",
        Family.UNKNOWN,
        "event_type",
        id="event-type-not-a-string",
    ),
]


@pytest.mark.parametrize(("body", "content_type", "family", "named"), BAD_BODIES)
async def test_bad_body_is_kept_byte_exact_with_a_one_line_reason(
    body: bytes,
    content_type: str | None,
    family: Family,
    named: str,
    monitor: Monitor,
    client: httpx.AsyncClient,
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await client.post(WEBHOOK, content=body, headers=headers)

    assert response.status_code == 200, response.text
    assert response.json() == SUCCESS
    assert store_of(monitor).counts().events == 1
    event = newest(monitor)
    assert event.body == body
    assert event.family is family
    assert event.error, "a kept bad body must say what is wrong with it"
    assert "\n" not in event.error
    assert event.error == event.error.strip()
    assert named in event.error.lower(), event.error
    assert " at at " not in event.error


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{}", id="empty-object"),
        pytest.param(b'{"a": "\\ud83d\\ude00"}', id="surrogate-pair"),
        pytest.param(b'{"n": ' + b"7" * 4000 + b"}", id="4000-digit-int"),
        pytest.param(b'{"a":' * 400 + b"1" + b"}" * 400, id="400-deep"),
        pytest.param(b'\xef\xbb\xbf{"hello": "world"}', id="utf8-bom"),
    ],
)
async def test_near_misses_are_valid_json_not_malformed(
    body: bytes, monitor: Monitor, client: httpx.AsyncClient
) -> None:
    response = await client.post(WEBHOOK, content=body)
    assert response.status_code == 200
    event = newest(monitor)
    assert event.body == body
    assert event.family is Family.UNKNOWN
    assert event.error is None


# ---------------------------------------------------------------- token, paths, methods


async def test_wrong_token_is_404_not_stored_and_kept_as_redacted_rejection(
    monitor: Monitor, client: httpx.AsyncClient
) -> None:
    body = fixture_bytes("conversation.system.shutdown.json")
    response = await client.post("/webhook/guessed-token-123456", content=body)

    assert response.status_code == 404
    store = store_of(monitor)
    assert store.counts().events == 0
    [rejection] = store.rejections()
    assert rejection.status == 404
    assert rejection.method == "POST"
    assert rejection.path == "/webhook/<token>"
    assert rejection.remote_addr == "127.0.0.1"
    assert rejection.size == len(body)
    assert "token" in rejection.reason


async def test_real_token_never_appears_in_a_rejection(
    monitor: Monitor, client: httpx.AsyncClient
) -> None:
    response = await client.post(f"{WEBHOOK}/extra", content=b"{}")
    assert response.status_code == 404
    [rejection] = store_of(monitor).rejections()
    assert rejection.path == "/webhook/<token>/extra"
    assert TEST_TOKEN not in repr(rejection)


async def test_missing_token_is_404_missing_token(
    monitor: Monitor, client: httpx.AsyncClient
) -> None:
    response = await client.post("/webhook", content=b"{}")
    assert response.status_code == 404
    store = store_of(monitor)
    assert store.counts().events == 0
    [rejection] = store.rejections()
    assert (rejection.path, rejection.status, rejection.reason) == (
        "/webhook",
        404,
        "missing token",
    )


@pytest.mark.parametrize("method", ["POST", "GET", "OPTIONS"])
async def test_unknown_path_is_404_and_kept(
    method: str, monitor: Monitor, client: httpx.AsyncClient
) -> None:
    response = await client.request(method, "/callbacks/tavus")
    assert response.status_code == 404
    store = store_of(monitor)
    assert store.counts().events == 0
    [rejection] = store.rejections()
    assert (rejection.method, rejection.path, rejection.status) == (method, "/callbacks/tavus", 404)
    assert rejection.reason


async def test_get_on_the_webhook_url_is_405_and_kept(
    monitor: Monitor, client: httpx.AsyncClient
) -> None:
    response = await client.get(WEBHOOK)
    assert response.status_code == 405
    store = store_of(monitor)
    assert store.counts().events == 0
    [rejection] = store.rejections()
    assert (rejection.method, rejection.path, rejection.status) == ("GET", "/webhook/<token>", 405)
    assert "POST" in rejection.reason


async def test_no_token_mode_serves_plain_webhook(settings: Settings) -> None:
    monitor = Monitor(replace(settings, no_token=True, token=None))
    subscription = monitor.bus.subscribe()
    async with started(monitor), httpx.AsyncClient(base_url=monitor.base_url) as client:
        assert monitor.callback_url == f"http://127.0.0.1:{monitor.port}/webhook"
        body = fixture_bytes("replica.ready.json")
        response = await client.post("/webhook", content=body)
        assert response.status_code == 200
        assert newest(monitor).body == body
        assert newest(monitor).path == "/webhook"
        assert (await client.post("/webhook/anything-else", content=body)).status_code == 404
        assert (await client.get("/webhook")).status_code == 405
        assert store_of(monitor).counts().events == 1
    warnings = [
        message
        for message in subscription.drain()
        if isinstance(message, StatusChanged) and message.kind is StatusKind.WARNING
    ]
    assert any("without a token" in message.text for message in warnings)


async def test_healthz_counts_events_and_rejections_across_restarts(settings: Settings) -> None:
    async with (
        started(Monitor(settings)) as monitor,
        httpx.AsyncClient(base_url=monitor.base_url) as client,
    ):
        health = await client.get("/healthz")
        assert health.status_code == 200
        assert (health.json()["events"], health.json()["rejected"]) == (0, 0)
        for name in ("replica.ready.json", "video.ready.json", "video.error.json"):
            assert (await client.post(WEBHOOK, content=fixture_bytes(name))).status_code == 200
        assert (await client.post("/webhook/not-the-token", content=b"{}")).status_code == 404
        assert (await client.get("/nowhere")).status_code == 404
        health = await client.get("/healthz")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        assert (health.json()["events"], health.json()["rejected"]) == (3, 2)

    async with (
        started(Monitor(settings)) as monitor,
        httpx.AsyncClient(base_url=monitor.base_url) as client,
    ):
        health = (await client.get("/healthz")).json()
        assert (health["events"], health["rejected"]) == (3, 2)
        assert (health["events_this_session"], health["rejected_this_session"]) == (0, 0)


# ---------------------------------------------------------------- body cap


async def too_big_chunks(total: int, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        piece = min(chunk, total - sent)
        sent += piece
        yield b"x" * piece


async def test_body_over_the_cap_is_413_with_content_length(settings: Settings) -> None:
    async with (
        started(Monitor(replace(settings, max_body_mb=1))) as monitor,
        httpx.AsyncClient(base_url=monitor.base_url, timeout=30) as client,
    ):
        body = b'{"pad": "' + b"x" * MB + b'"}'
        response = await client.post(WEBHOOK, content=body)
        assert response.status_code == 413
        store = store_of(monitor)
        assert store.counts().events == 0
        [rejection] = store.rejections()
        assert (rejection.status, rejection.size, rejection.path) == (
            413,
            len(body),
            "/webhook/<token>",
        )
        assert "1 MB" in rejection.reason

    # The server keeps working: a normal post on a new connection succeeds.
    async with (
        started(Monitor(replace(settings, max_body_mb=1))) as monitor,
        httpx.AsyncClient(base_url=monitor.base_url, timeout=30) as first,
    ):
        assert (await first.post(WEBHOOK, content=b"y" * (2 * MB))).status_code == 413
        async with httpx.AsyncClient(base_url=monitor.base_url, timeout=30) as second:
            body = fixture_bytes("video.ready.json")
            response = await second.post(WEBHOOK, content=body)
            assert response.status_code == 200
            assert newest(monitor).body == body


async def test_chunked_body_over_the_cap_is_413_and_server_keeps_working(
    settings: Settings,
) -> None:
    async with (
        started(Monitor(replace(settings, max_body_mb=1))) as monitor,
        httpx.AsyncClient(base_url=monitor.base_url, timeout=30) as client,
    ):
        request = client.build_request("POST", WEBHOOK, content=too_big_chunks(3 * MB))
        assert request.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in request.headers
        response = await client.send(request)
        assert response.status_code == 413
        store = store_of(monitor)
        assert store.counts().events == 0
        [rejection] = store.rejections()
        assert rejection.status == 413
        assert "1 MB" in rejection.reason

        async with httpx.AsyncClient(base_url=monitor.base_url, timeout=30) as fresh:
            body = fixture_bytes("replica.error.json")
            response = await fresh.post(WEBHOOK, content=body)
            assert response.status_code == 200
            assert newest(monitor).body == body
            assert store.counts().events == 1


async def test_body_exactly_at_the_cap_is_accepted(settings: Settings) -> None:
    async with (
        started(Monitor(replace(settings, max_body_mb=1))) as monitor,
        httpx.AsyncClient(base_url=monitor.base_url, timeout=30) as client,
    ):
        prefix, suffix = b'{"pad": "', b'"}'
        body = prefix + b"x" * (MB - len(prefix) - len(suffix)) + suffix
        assert len(body) == MB
        response = await client.post(WEBHOOK, content=body)
        assert response.status_code == 200
        assert newest(monitor).body == body


async def test_fractional_cap_is_named_correctly_in_the_reason(settings: Settings) -> None:
    async with (
        started(Monitor(replace(settings, max_body_mb=0.5))) as monitor,
        httpx.AsyncClient(base_url=monitor.base_url, timeout=30) as client,
    ):
        response = await client.post(WEBHOOK, content=b"x" * MB)
        assert response.status_code == 413
        [rejection] = store_of(monitor).rejections()
        assert "0.5 MB" in rejection.reason, rejection.reason


async def test_five_megabyte_transcript_is_stored_intact_under_default_cap(
    monitor: Monitor, client: httpx.AsyncClient
) -> None:
    assert monitor.settings.max_body_mb == 25
    payload = json.loads(fixture_bytes("conversation.application.transcription_ready.json"))
    turn_text = "Could you tell me more about the pricing tiers, please? " * 10
    turns = [
        {"role": "user" if n % 2 else "assistant", "content": f"{n}: {turn_text}"}
        for n in range(9000)
    ]
    payload["properties"]["transcript"] = turns
    body = json.dumps(payload, indent=1).encode()
    assert 5 * MB <= len(body) < 6 * MB

    response = await client.post(WEBHOOK, content=body)

    assert response.status_code == 200
    event = newest(monitor)
    assert event.body == body
    assert event.event_type == "application.transcription_ready"
    assert "9000 turns" in event.summary


# ---------------------------------------------------------------- ports


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


async def test_busy_default_port_falls_back_and_says_so(settings: Settings, busy_port: int) -> None:
    monitor = Monitor(replace(settings, port=busy_port, port_explicit=False))
    subscription = monitor.bus.subscribe()
    async with started(monitor), httpx.AsyncClient(base_url=monitor.base_url) as client:
        assert monitor.port not in (None, 0, busy_port)
        assert (await client.get("/healthz")).status_code == 200
        statuses = [m for m in subscription.drain() if isinstance(m, StatusChanged)]
        fallback = [
            s for s in statuses if s.kind is StatusKind.WARNING and str(busy_port) in s.text
        ]
        assert len(fallback) == 1, statuses
        assert str(monitor.port) in fallback[0].text
        [url] = [s for s in statuses if s.text.startswith("Callback URL:")]
        assert f":{monitor.port}/webhook/" in url.text


async def test_busy_explicit_port_is_an_error_naming_the_port(
    settings: Settings, busy_port: int
) -> None:
    monitor = Monitor(replace(settings, port=busy_port, port_explicit=True))
    with pytest.raises(MonitorError, match=rf"\b{busy_port}\b"):
        async with started(monitor):
            pass


def test_cli_busy_port_exits_2_with_one_sentence(tmp_path: Path, busy_port: int) -> None:
    result = subprocess.run(
        tavus_monitor(
            "--headless",
            "--no-tunnel",
            "--port",
            str(busy_port),
            "--data-dir",
            str(tmp_path / "cli"),
        ),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert str(busy_port) in lines[0]
    assert "Traceback" not in result.stderr


async def test_port_zero_picks_a_free_port(settings: Settings) -> None:
    async with (
        started(Monitor(replace(settings, port=0))) as one,
        started(Monitor(replace(settings, port=0, data_dir=settings.data_dir / "2"))) as two,
    ):
        assert one.port not in (None, 0)
        assert two.port not in (None, 0, one.port)
        for running in (one, two):
            async with httpx.AsyncClient(base_url=running.base_url) as client:
                assert (await client.get("/healthz")).status_code == 200


# ---------------------------------------------------------------- duplicates


async def test_same_bytes_twice_is_a_duplicate_of_the_first(
    monitor: Monitor, client: httpx.AsyncClient
) -> None:
    body = fixture_bytes("conversation.system.shutdown.json")
    first = await post_ok(monitor, client, body)
    second = await post_ok(monitor, client, body)
    third = await post_ok(monitor, client, body)
    assert first.duplicate_of is None
    assert second.id != first.id
    assert second.duplicate_of == first.id
    assert third.duplicate_of == first.id
    assert second.body == body


async def test_pal_joined_after_replica_joined_is_one_join(
    monitor: Monitor, client: httpx.AsyncClient
) -> None:
    replica_joined = (SAMPLES / "system.replica_joined.json").read_bytes()
    pal_joined = (SAMPLES / "system.pal_joined.json").read_bytes()
    other = json.loads(pal_joined)
    other["conversation_id"] = "c-another-call"

    joined = await post_ok(monitor, client, replica_joined)
    pal = await post_ok(monitor, client, pal_joined)
    elsewhere = await post_ok(monitor, client, json.dumps(other).encode())

    assert joined.duplicate_of is None
    assert pal.event_type == "system.pal_joined"
    assert pal.duplicate_of == joined.id
    assert elsewhere.duplicate_of is None


async def test_replica_joined_after_pal_joined_is_one_join(
    monitor: Monitor, client: httpx.AsyncClient
) -> None:
    pal = await post_ok(monitor, client, (SAMPLES / "system.pal_joined.json").read_bytes())
    joined = await post_ok(monitor, client, (SAMPLES / "system.replica_joined.json").read_bytes())
    assert pal.duplicate_of is None
    assert joined.duplicate_of == pal.id


# ---------------------------------------------------------------- properties


@pytest.fixture(scope="module")
def threaded_monitor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitor]:
    """One monitor for many hypothesis examples, served from its own loop in a thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="monitor-loop", daemon=True)
    thread.start()
    monitor = Monitor(
        Settings(
            port=0,
            port_explicit=True,
            token=TEST_TOKEN,
            data_dir=tmp_path_factory.mktemp("property"),
            no_tunnel=True,
        )
    )
    try:
        asyncio.run_coroutine_threadsafe(monitor.start(), loop).result(timeout=30)
        yield monitor
    finally:
        asyncio.run_coroutine_threadsafe(monitor.stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


PROPERTY_SETTINGS = hypothesis_settings(max_examples=200, deadline=None)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)

EVENT_TYPES = [*DOCUMENTED_EVENT_TYPES, "application.something_new"]
turns = st.lists(
    st.dictionaries(
        st.sampled_from(["role", "content", "timestamp", "seconds_from_start", "duration"]),
        json_values | st.sampled_from(["user", "assistant", "tool", "2025-07-11T06:45:47Z"]),
    ),
    max_size=4,
)
tavus_shaped = st.dictionaries(
    st.sampled_from(
        [
            "event_type",
            "conversation_id",
            "timestamp",
            "message_type",
            "webhook_url",
            "video_id",
            "video_name",
            "replica_id",
            "status",
            "status_details",
            "error_details",
            "generation_progress",
            "updated_at",
            "objective_name",
            "output_variables",
        ]
    ),
    json_values | st.sampled_from([*EVENT_TYPES, "ready", "error", "completed"]),
    max_size=8,
).flatmap(
    lambda top: st.dictionaries(
        st.sampled_from(PROPERTY_KEYS), json_values | turns | st.just({"body": '{"a": 1}'})
    ).map(lambda properties: {**top, "properties": properties})
)


def has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list):
        return any(has_non_finite(item) for item in value)
    if isinstance(value, dict):
        return any(has_non_finite(item) for item in value.values())
    return False


def post_sync(client: httpx.Client, monitor: Monitor, body: bytes, content_type: str) -> Event:
    response = client.post(WEBHOOK, content=body, headers={"content-type": content_type})
    assert response.status_code == 200, (response.status_code, response.text)
    assert response.json() == SUCCESS
    event = newest(monitor)
    assert event.body == body
    return event


def test_any_bytes_are_answered_200_and_kept_byte_exact(threaded_monitor: Monitor) -> None:
    with httpx.Client(base_url=threaded_monitor.base_url, timeout=30) as client:

        @PROPERTY_SETTINGS
        @given(
            body=st.binary(max_size=2048)
            | st.text(max_size=200).map(lambda text: text.encode("utf-8")),
            content_type=st.sampled_from(
                ["application/json", "text/plain", "application/x-www-form-urlencoded", ""]
            ),
        )
        def check(body: bytes, content_type: str) -> None:
            event = post_sync(client, threaded_monitor, body, content_type)
            if event.family is Family.MALFORMED:
                assert event.error
                assert "\n" not in event.error

        check()


def test_any_json_value_is_answered_200_and_kept_byte_exact(threaded_monitor: Monitor) -> None:
    with httpx.Client(base_url=threaded_monitor.base_url, timeout=30) as client:

        @PROPERTY_SETTINGS
        @given(
            value=json_values,
            ensure_ascii=st.booleans(),
            indent=st.sampled_from([None, 2]),
        )
        def check(value: Any, ensure_ascii: bool, indent: int | None) -> None:
            body = json.dumps(value, ensure_ascii=ensure_ascii, indent=indent).encode()
            event = post_sync(client, threaded_monitor, body, "application/json")
            if isinstance(value, dict) and not has_non_finite(value):
                assert event.family is not Family.MALFORMED, event.error
            else:
                assert event.family is Family.MALFORMED
                assert event.error

        check()


def test_any_tavus_shaped_object_is_understood_or_unknown_never_an_error(
    threaded_monitor: Monitor,
) -> None:
    with httpx.Client(base_url=threaded_monitor.base_url, timeout=30) as client:

        @PROPERTY_SETTINGS
        @given(value=tavus_shaped)
        def check(value: dict[str, Any]) -> None:
            body = json.dumps(value).encode()
            event = post_sync(client, threaded_monitor, body, "application/json")
            if has_non_finite(value):
                assert event.family is Family.MALFORMED
                return
            assert event.family is not Family.MALFORMED, event.error
            event_type = value.get("event_type")
            if isinstance(event_type, str) and event_type.strip():
                assert event.event_type == event_type.strip()
                assert event.family in (Family.CONVERSATION, Family.OBJECTIVE, Family.GUARDRAIL)
            assert "\n" not in event.summary

        check()
