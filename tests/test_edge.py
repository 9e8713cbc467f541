"""The server's edge over real sockets: what a sender that misbehaves before its request is read
can do to the monitor, and what a real delivery still gets meanwhile.

Real uvicorn on loopback (the monitor's own, or ``create_app`` + ``make_server`` where a test
needs a small connection cap), real sockets speaking raw HTTP/1.1 so every byte and every close
is the test's to choose, and a real ``tavus-monitor`` process under a real descriptor limit. The
header deadline is shortened to a fraction of a second; every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import io
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote, unquote

import httpx
import pytest
from conftest import TEST_TOKEN, fixture_bytes
from headless_process import CONSOLE_SCRIPT, HeadlessProcess
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from resolve_settings import resolve

from tavus_monitor import cli
from tavus_monitor.bus import RequestRejected, Subscription
from tavus_monitor.edge import EdgeLimits
from tavus_monitor.headless import HeadlessPrinter
from tavus_monitor.monitor import Monitor
from tavus_monitor.redact import REDACTED, redact_path
from tavus_monitor.server import Stats, bind_socket, create_app, make_server
from tavus_monitor.settings import Settings, SettingsError
from tavus_monitor.store import Rejection, Store

WEBHOOK = f"/webhook/{TEST_TOKEN}"
DEADLINE = 5.0
"""Seconds any single wait in this module may take before the test fails."""
HEADER_TIMEOUT = 0.3
"""The header deadline the monitors here run with (10 s by default)."""
SLOW_START = b"GET / HTTP/1.1\r\nHost: x\r\n"
"""A request line and one header, and then nothing: the slowloris request."""
KIB = 1024
MB = 1024 * 1024


def request(
    target: str = WEBHOOK,
    *,
    method: str = "POST",
    body: bytes = b"{}",
    headers: tuple[str, ...] = (),
    close: bool = True,
) -> bytes:
    """One raw HTTP/1.1 request, byte for byte."""
    lines = [f"{method} {target} HTTP/1.1", "Host: x", f"Content-Length: {len(body)}", *headers]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), f"not an HTTP answer: {answer[:80]!r}"
    return int(answer.split(b" ", 2)[1])


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    async with asyncio.timeout(DEADLINE):
        return await asyncio.open_connection("127.0.0.1", port)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One answer on a connection that stays open: status and body."""
    async with asyncio.timeout(DEADLINE):
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status_of(head), await reader.readexactly(length)


async def read_to_end(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (a reset ends it too)."""
    chunks: list[bytes] = []
    async with asyncio.timeout(DEADLINE):
        while True:
            try:
                chunk = await reader.read(64 * KIB)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


async def exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` on a new connection; everything answered until the server closes."""
    reader, writer_ = await connect(port)
    try:
        writer_.write(data)
        await writer_.drain()
        return await read_to_end(reader)
    finally:
        writer_.close()


async def next_rejection(subscription: Subscription) -> Rejection:
    """The next refused request the monitor publishes (after the store committed it)."""
    async with asyncio.timeout(DEADLINE):
        while True:
            message = await subscription.get()
            assert message is not None, "the bus closed"
            if isinstance(message, RequestRejected):
                return message.rejection


@contextlib.asynccontextmanager
async def started(settings: Settings) -> AsyncIterator[Monitor]:
    monitor = Monitor(settings)
    try:
        await monitor.start()
        yield monitor
    finally:
        await monitor.stop()


@pytest.fixture
async def edge_monitor(settings: Settings) -> AsyncIterator[Monitor]:
    """A monitor whose header deadline is :data:`HEADER_TIMEOUT`."""
    async with started(replace(settings, header_timeout=HEADER_TIMEOUT)) as monitor:
        yield monitor


def port_of(monitor: Monitor) -> int:
    assert monitor.port is not None
    return monitor.port


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, limits: EdgeLimits) -> AsyncIterator[int]:
    """The receiver under ``limits`` on a loopback port (yielded), over a real store."""
    with Store(tmp_path / "events.db") as store:
        app = create_app(store, token=TEST_TOKEN, max_body_bytes=MB, stats=Stats())
        server = make_server(app, limits=limits)
        sock = bind_socket("127.0.0.1", 0)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            async with asyncio.timeout(DEADLINE):
                await server.listening.wait()
            yield sock.getsockname()[1]
        finally:
            server.should_exit = True
            async with asyncio.timeout(30):
                await task


# ------------------------------------------------- 5. slow and incomplete requests


async def test_a_request_whose_headers_never_end_gets_408_at_the_deadline(
    edge_monitor: Monitor,
) -> None:
    reader, writer_ = await connect(port_of(edge_monitor))
    began = time.monotonic()
    writer_.write(SLOW_START)
    answer = await read_to_end(reader)
    waited = time.monotonic() - began
    writer_.close()

    assert status_of(answer) == 408
    assert b"not received within 0.3 s" in answer
    assert waited >= HEADER_TIMEOUT - 0.05, "closed before its deadline"


async def test_a_connection_that_sends_nothing_is_closed_at_the_deadline(
    edge_monitor: Monitor,
) -> None:
    reader, writer_ = await connect(port_of(edge_monitor))
    assert await read_to_end(reader) == b""
    writer_.close()


async def test_an_unfinished_second_request_on_a_kept_alive_connection_is_closed(
    edge_monitor: Monitor,
) -> None:
    """uvicorn cancels its keep-alive timer when any byte arrives; the deadline still holds."""
    reader, writer_ = await connect(port_of(edge_monitor))
    writer_.write(request(body=fixture_bytes("replica.ready.json"), close=False))
    assert (await read_response(reader))[0] == 200

    writer_.write(f"POST {WEBHOOK} HTTP/1.1\r\nHost: x\r\n".encode())
    answer = await read_to_end(reader)
    writer_.close()
    assert status_of(answer) == 408


async def test_pipelined_requests_are_served_and_an_unfinished_one_is_still_closed(
    edge_monitor: Monitor,
) -> None:
    """Two requests and the start of a third in one write: two answers, then 408."""
    reader, writer_ = await connect(port_of(edge_monitor))
    writer_.write(
        request(body=fixture_bytes("replica.ready.json"), close=False)
        + request(body=fixture_bytes("video.ready.json"), close=False)
        + f"POST {WEBHOOK} HTTP/1.1\r\nHost: x\r\n".encode()
    )
    assert [(await read_response(reader))[0] for _ in range(2)] == [200, 200]
    answer = await read_to_end(reader)
    writer_.close()
    assert status_of(answer) == 408


async def test_a_head_answer_goes_out_though_it_has_no_body(edge_monitor: Monitor) -> None:
    """Answers leave in one send (head held until the body): one with no body still leaves."""
    reader, writer_ = await connect(port_of(edge_monitor))
    writer_.write(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    async with asyncio.timeout(DEADLINE):
        head = await reader.readuntil(b"\r\n\r\n")
    assert status_of(head) == 200
    writer_.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # the connection goes on
    status, body = await read_response(reader)
    assert status == 200
    assert b'"status":"ok"' in body
    writer_.close()


async def test_an_idle_kept_alive_connection_outlives_the_header_deadline(
    edge_monitor: Monitor,
) -> None:
    """Between requests the keep-alive timeout (30 s) applies, not the header deadline."""
    reader, writer_ = await connect(port_of(edge_monitor))
    writer_.write(request(body=fixture_bytes("replica.ready.json"), close=False))
    assert (await read_response(reader))[0] == 200
    await asyncio.sleep(HEADER_TIMEOUT * 2)  # idle for longer than the header deadline

    writer_.write(request(body=fixture_bytes("video.ready.json"), close=False))
    assert (await read_response(reader))[0] == 200
    writer_.close()


async def test_a_slow_body_is_not_cut_by_the_header_deadline(edge_monitor: Monitor) -> None:
    """The deadline ends with the headers; the body has its own (30 s)."""
    body = fixture_bytes("replica.ready.json")
    raw = request(body=body)
    reader, writer_ = await connect(port_of(edge_monitor))
    writer_.write(raw[: len(raw) - len(body) + 5])
    await asyncio.sleep(HEADER_TIMEOUT * 2)  # the body is slower than the header deadline
    writer_.write(raw[len(raw) - len(body) + 5 :])
    assert status_of(await read_to_end(reader)) == 200
    writer_.close()


async def test_a_new_connection_at_the_cap_sheds_the_oldest_incomplete_one(
    tmp_path: Path,
) -> None:
    """Not the idle kept-alive one, not the newer incomplete ones: and the newcomer is served."""
    async with serving(tmp_path, EdgeLimits(header_timeout=30, max_connections=6)) as port:
        idle = await connect(port)
        idle[1].write(request(body=fixture_bytes("replica.ready.json"), close=False))
        assert (await read_response(idle[0]))[0] == 200
        slow = [await connect(port) for _ in range(5)]  # six open: the cap
        for _, writer_ in slow:
            writer_.write(SLOW_START)
            await writer_.drain()

        delivery = await exchange(port, request(body=fixture_bytes("video.ready.json")))

        assert status_of(delivery) == 200
        assert await read_to_end(slow[0][0]) == b"", "the oldest incomplete one is closed"
        idle[1].write(request(body=fixture_bytes("replica.error.json"), close=False))
        assert (await read_response(idle[0]))[0] == 200, "the idle one was kept"
        for reader, writer_ in slow[1:]:  # the newer incomplete ones were kept: finish them
            writer_.write(b"\r\n")
            assert (await read_response(reader))[0] == 404
        for _, writer_ in [idle, *slow]:
            writer_.close()


async def test_at_the_cap_an_idle_connection_is_shed_before_a_busy_one(tmp_path: Path) -> None:
    async with serving(tmp_path, EdgeLimits(header_timeout=30, max_connections=2)) as port:
        idle = await connect(port)
        idle[1].write(request(body=b'{"a": 1}', close=False))
        assert (await read_response(idle[0]))[0] == 200
        busy, body = await busy_connection(port)

        delivery = await exchange(port, request(body=b'{"b": 2}'))

        assert status_of(delivery) == 200
        assert await read_to_end(idle[0]) == b"", "the idle one is closed"
        busy[1].write(body)
        assert (await read_response(busy[0]))[0] == 200, "the busy one finishes"
        for _, writer_ in (idle, busy):
            writer_.close()


async def test_when_every_connection_is_busy_a_newcomer_gets_503(tmp_path: Path) -> None:
    async with serving(tmp_path, EdgeLimits(header_timeout=30, max_connections=2)) as port:
        busy = [await busy_connection(port) for _ in range(2)]

        refused = await exchange(port, request(body=b'{"c": 3}'))

        assert status_of(refused) == 503
        for (reader, writer_), body in busy:
            writer_.write(body)
            assert (await read_response(reader))[0] == 200, "the busy ones finish"
            writer_.close()


async def busy_connection(
    port: int,
) -> tuple[tuple[asyncio.StreamReader, asyncio.StreamWriter], bytes]:
    """A connection whose request is being answered: headers read, body still to come.

    ``Expect: 100-continue`` makes the server say when the handler starts reading the
    body; returns the connection and the body to send to finish the request.
    """
    body = b'{"busy": true}'
    connection = await connect(port)
    connection[1].write(request(body=body, headers=("Expect: 100-continue",))[: -len(body)])
    async with asyncio.timeout(DEADLINE):
        assert await connection[0].readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
    return connection, body


SET_LIMIT_AND_EXEC = (
    "import os, resource, sys; n = int(sys.argv[1]); "
    "resource.setrlimit(resource.RLIMIT_NOFILE, (n, n)); os.execv(sys.argv[2], sys.argv[2:])"
)


def still_open(sock: socket.socket) -> bool:
    """Whether the server still holds ``sock``'s connection (nothing, not even a close, came)."""
    try:
        sock.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc and sets RLIMIT_NOFILE")
def test_a_slow_request_flood_at_the_descriptor_limit_leaves_room_for_real_deliveries(
    tmp_path: Path,
) -> None:
    """``ulimit -n 256`` and 300 connections that never finish their headers.

    Before: the monitor sat at 256 of 256 descriptors and every delivery got a reset or a
    broken pipe. Now the oldest incomplete connections are shed below the limit (224 open
    at most) and deliveries get 200, with the default 10 s header deadline untouched.
    """
    limit, flood, cap = 256, 300, 224
    program = [sys.executable, "-c", SET_LIMIT_AND_EXEC, str(limit), str(CONSOLE_SCRIPT)]
    args = ["--no-tunnel", "--port", "0", "--token", TEST_TOKEN]
    with HeadlessProcess(*args, "--data-dir", str(tmp_path / "data"), program=program) as monitor:
        port = int(monitor.wait_for_callback_url().split(":")[2].split("/")[0])
        attack: list[socket.socket] = []
        try:
            for _ in range(flood):
                sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
                sock.sendall(SLOW_START)
                sock.settimeout(None)
                attack.append(sock)
            deadline = time.monotonic() + DEADLINE
            while sum(map(still_open, attack)) > cap and time.monotonic() < deadline:
                time.sleep(0.05)  # polling the server's progress, bounded by the deadline

            answers = [deliver(port, number) for number in range(3)]
            descriptors = len(os.listdir(f"/proc/{monitor.pid}/fd"))
        finally:
            for sock in attack:
                sock.close()
        code = monitor.stop(signal.SIGTERM)

    assert answers == [200, 200, 200]
    assert descriptors < limit
    assert code == 0


def test_the_header_timeout_option_reaches_the_server(tmp_path: Path) -> None:
    args = ["--no-tunnel", "--port", "0", "--token", TEST_TOKEN, "--header-timeout", "0.5"]
    with HeadlessProcess(*args, "--data-dir", str(tmp_path / "data")) as monitor:
        port = int(monitor.wait_for_callback_url().split(":")[2].split("/")[0])
        with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
            sock.sendall(SLOW_START)
            answer = b""
            while data := sock.recv(64 * KIB):
                answer += data
        assert monitor.stop(signal.SIGTERM) == 0

    assert status_of(answer) == 408
    assert b"not received within 0.5 s" in answer


def test_the_header_timeout_is_set_like_every_other_option(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("header_timeout = 7\n")
    assert resolve({}, env={}).header_timeout == 10.0
    assert resolve({}, env={}, config_file=config).header_timeout == 7.0
    env = {"TAVUS_MONITOR_HEADER_TIMEOUT": "4.5"}
    assert resolve({}, env=env, config_file=config).header_timeout == 4.5
    assert resolve({"header_timeout": 2.0}, env=env, config_file=config).header_timeout == 2.0
    for wrong in (0, -1, float("nan")):
        with pytest.raises(SettingsError) as refused:
            resolve({"header_timeout": wrong}, env={})
        assert str(refused.value) == "--header-timeout must be a number of seconds more than 0."


def deliver(port: int, number: int) -> int | str:
    """POST a delivery on its own connection: the status, or what the sender got instead."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
    try:
        connection.request("POST", WEBHOOK, b'{"conversation_id": "c-%d"}' % number)
        return connection.getresponse().status
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        connection.close()


# ---------------------------------------------------------------- 6. header limits


@pytest.mark.parametrize("size", [65 * KIB, MB], ids=["65KiB", "1MiB"])
async def test_headers_over_64_kib_get_431_recorded_and_nothing_is_stored(
    edge_monitor: Monitor, size: int
) -> None:
    subscription = edge_monitor.bus.subscribe(events=False)
    answer = await exchange(port_of(edge_monitor), request(headers=("X-Big: " + "a" * size,)))

    assert status_of(answer) == 431
    rejection = await next_rejection(subscription)
    assert (rejection.status, rejection.method, rejection.path) == (431, "POST", "/webhook/<token>")
    assert "64 KiB" in rejection.reason
    assert rejection.remote_addr == "127.0.0.1"
    assert edge_monitor.store is not None
    assert edge_monitor.store.counts().events == 0


async def test_headers_just_under_64_kib_with_a_large_body_in_the_same_write_are_stored(
    edge_monitor: Monitor,
) -> None:
    """The body that arrives with the headers does not count against the header cap."""
    body = b'{"padding": "' + b"x" * (300 * KIB) + b'"}'
    raw = request(body=body, headers=("X-Big: " + "a" * (63 * KIB),))
    assert status_of(await exchange(port_of(edge_monitor), raw)) == 200
    assert edge_monitor.store is not None
    [row] = edge_monitor.store.rows()
    event = edge_monitor.store.get(row.id)
    assert event is not None
    assert event.body == body


async def test_more_than_100_header_fields_get_431(edge_monitor: Monitor) -> None:
    subscription = edge_monitor.bus.subscribe(events=False)
    # Host, Content-Length and Connection, then 97 more: exactly 100 is fine.
    fine = request(headers=tuple(f"X-{n}: {n}" for n in range(97)))
    assert status_of(await exchange(port_of(edge_monitor), fine)) == 200

    too_many = request(headers=tuple(f"X-{n}: {n}" for n in range(98)))
    assert status_of(await exchange(port_of(edge_monitor), too_many)) == 431
    rejection = await next_rejection(subscription)
    assert (rejection.status, rejection.reason) == (431, "more than 100 header fields")

    # Counted as they arrive, too: a sender that never ends its 150 fields is not waited for.
    unfinished = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: %d\r\n" % (n, n) for n in range(150))
    assert status_of(await exchange(port_of(edge_monitor), unfinished)) == 431


async def test_a_header_streamed_without_end_is_cut_off_early(edge_monitor: Monitor) -> None:
    """The sender is stopped after little more than 64 KiB, not after all it wants to send.

    Before, httptools took all of it (one client streaming 100 MB held the event loop for
    seconds); here the sender gets its 431 long before 32 MB are through.
    """
    sent, answer = await asyncio.to_thread(stream_header, port_of(edge_monitor), 32 * MB)

    assert status_of(answer) == 431
    assert sent < 32 * MB, "the monitor read the whole header"
    async with httpx.AsyncClient(base_url=edge_monitor.base_url, timeout=DEADLINE) as client:
        response = await client.post(WEBHOOK, content=fixture_bytes("replica.ready.json"))
    assert response.status_code == 200


def stream_header(port: int, limit: int) -> tuple[int, bytes]:
    """Send a header value of ``limit`` bytes in 256 KiB writes; bytes sent and the answer."""
    chunk = b"a" * (256 * KIB)
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
        sock.sendall(f"POST {WEBHOOK} HTTP/1.1\r\nHost: x\r\nX-Big: ".encode())
        with contextlib.suppress(OSError):  # a reset or broken pipe once the server closes
            while sent < limit:
                sock.sendall(chunk)
                sent += len(chunk)
        answer = b""
        with contextlib.suppress(OSError):
            while data := sock.recv(64 * KIB):
                answer += data
    return sent, answer


# ----------------------------------------------------- 7. a refusal is never a 5xx


async def test_refusals_are_answered_when_the_store_is_closed(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async with started(replace(settings, max_body_mb=0.001)) as monitor:
        assert monitor.store is not None
        await asyncio.to_thread(monitor.store.close)
        async with httpx.AsyncClient(base_url=monitor.base_url, timeout=DEADLINE) as client:
            wrong_token = await client.post("/webhook/guessed-token-123", content=b"{}")
            get = await client.get(WEBHOOK)
            too_big = await client.post(WEBHOOK, content=b"x" * 2048)
            health = (await client.get("/healthz")).json()

    assert [wrong_token.status_code, get.status_code, too_big.status_code] == [404, 405, 413]
    assert wrong_token.json() == {"status": "error", "error": "wrong token"}
    assert (health["rejected_this_session"], health["rejected_not_recorded"]) == (3, 3)
    unrecorded = [r.getMessage() for r in caplog.records if "not recorded" in r.getMessage()]
    assert len(unrecorded) == 3
    assert "POST /webhook/<token> from 127.0.0.1 with 404 (wrong token)" in unrecorded[0]
    assert TEST_TOKEN not in caplog.text


async def test_refusals_are_answered_when_the_writer_process_is_gone(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer was killed and no new one can start (out of processes): still 404 and 405."""
    async with started(settings) as monitor:
        store = monitor.store
        assert store is not None
        async with httpx.AsyncClient(base_url=monitor.base_url, timeout=DEADLINE) as client:
            assert (await client.post(WEBHOOK, content=b"{}")).status_code == 200
            assert store.writer_pid is not None
            os.kill(store.writer_pid, signal.SIGKILL)

            def cannot_start(*args: object, **kwargs: object) -> None:
                raise OSError(11, "Resource temporarily unavailable")

            monkeypatch.setattr("tavus_monitor.writerprocess.subprocess.Popen", cannot_start)
            statuses = [
                (await client.post("/webhook/guessed-token-123", content=b"{}")).status_code,
                (await client.get(WEBHOOK)).status_code,
                (await client.post("/elsewhere", content=b"{}")).status_code,
            ]
            health = (await client.get("/healthz")).json()
            monkeypatch.undo()

    assert statuses == [404, 405, 404]
    assert health["rejected_not_recorded"] >= 2  # the first may still reach the dying writer


# ------------------------------------------------------ 10. the token never in clear


def percent(text: str, *, twice: bool = False) -> str:
    """Every character percent-encoded (``%25``-encoded again when ``twice``)."""
    once = "".join(f"%{ord(char):02X}" for char in text)
    return once.replace("%", "%25") if twice else once


LEAKY_TARGETS = [
    f"/webhook//{TEST_TOKEN}",
    f"/WEBHOOK/{TEST_TOKEN}",
    f"/WebHook//{TEST_TOKEN.upper()}",
    f"/webhook/{TEST_TOKEN}/",
    f"/webhook/{TEST_TOKEN}//extra/{TEST_TOKEN}",
    f"/webhook/{TEST_TOKEN}/?token={TEST_TOKEN}",
    f"/hooks/{TEST_TOKEN}",
    f"/webhook/{percent(TEST_TOKEN, twice=True)}",
    f"/x/{percent(TEST_TOKEN, twice=True)}",
    f"/webhook%252F{TEST_TOKEN}",
]


def leaks(text: str, token: str = TEST_TOKEN) -> bool:
    """Whether ``text`` shows ``token``, in any case, plain or percent-encoded at any depth."""
    seen = text
    while True:
        if token.lower() in seen.lower():
            return True
        decoded = unquote(seen)
        if decoded == seen:
            return False
        seen = decoded


async def test_no_shape_of_a_path_with_the_token_shows_it_anywhere(
    monitor: Monitor, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not in the rejected table, not on headless stderr, not in ``history --rejected``."""
    subscription = monitor.bus.subscribe(events=False)
    for target in LEAKY_TARGETS:
        answer = await exchange(port_of(monitor), request(target))
        assert status_of(answer) == 404, target
    rejections = [await next_rejection(subscription) for _ in LEAKY_TARGETS]
    stderr = io.StringIO()
    HeadlessPrinter(stderr).handle([RequestRejected(r) for r in rejections])
    assert monitor.settings.db_path is not None
    assert cli.main(["history", "--rejected", "--db", str(monitor.settings.db_path)]) == 0
    history = capsys.readouterr().out

    assert [leaks(r.path) for r in rejections] == [False] * len(LEAKY_TARGETS)
    assert all(REDACTED in r.path for r in rejections)
    assert not leaks(stderr.getvalue())
    assert len(stderr.getvalue().splitlines()) == len(LEAKY_TARGETS)
    assert not leaks(history)


token_alphabet = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
tokens = st.text(token_alphabet, min_size=8, max_size=40)


@st.composite
def disguised(draw: st.DrawFn, token: str) -> str:
    """``token`` with each character in either case, plain, or percent-encoded once or twice."""
    out = []
    for char in token:
        char = draw(st.sampled_from([char.lower(), char.upper()]))
        form = draw(st.sampled_from(["plain", "plain", "once", "twice"]))
        hex_code = draw(st.sampled_from([f"{ord(char):02X}", f"{ord(char):02x}"]))
        out.append({"plain": char, "once": "%" + hex_code, "twice": "%25" + hex_code}[form])
    return "".join(out)


@st.composite
def paths_with(draw: st.DrawFn, token: str) -> str:
    """A request path (maybe with a query) that contains ``token`` in some shape."""
    word = draw(st.sampled_from(["webhook", "WEBHOOK", "WebHook", "hooks", "x"]))
    slashes = draw(st.sampled_from(["/", "//", "///", "%2F", "%252F"]))
    prefix = draw(st.sampled_from(["", "/", "/api", "//v1"]))
    around = st.text(st.characters(codec="ascii", exclude_characters="\x00"), max_size=6)
    path = (
        f"{prefix}/{word}{slashes}{draw(around)}{draw(disguised(token))}{draw(around)}"
        + draw(st.sampled_from(["", "/", "//", "/extra", "?token=", "?a=b&t="]))
        + draw(st.sampled_from(["", draw(disguised(token))]))
    )
    return quote(path, safe="/%?&=") if draw(st.booleans()) else path


@given(data=st.data(), token=tokens)
@hypothesis_settings(
    max_examples=400,
    deadline=None,
    # Drawing these paths is slow for hypothesis's taste on a busy 2-core CI machine.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
def test_a_redacted_path_never_shows_the_token(data: st.DataObject, token: str) -> None:
    path = data.draw(paths_with(token))
    shown = redact_path(path, token)
    assert not leaks(shown, token), (path, shown)


@given(path=st.text(max_size=60))
@hypothesis_settings(max_examples=300, deadline=None)
def test_a_path_without_the_token_or_a_webhook_segment_is_only_decoded(path: str) -> None:
    if "webhook" in path.lower() or "%" in path:
        return
    assert redact_path(path, TEST_TOKEN) == (path if len(path) <= 200 else path[:199] + "…")
    assert redact_path(quote(path), None) == redact_path(unquote(quote(path)), None)


def test_redaction_keeps_what_the_user_needs_to_see_their_mistake() -> None:
    assert redact_path(f"/webhook//{TEST_TOKEN}", TEST_TOKEN) == "/webhook//<token>"
    assert redact_path(f"/WEBHOOK/{TEST_TOKEN}", TEST_TOKEN) == "/WEBHOOK/<token>"
    assert redact_path(f"/webhook/{TEST_TOKEN}/extra", TEST_TOKEN) == "/webhook/<token>/extra"
    assert redact_path("/webhook/an-old-token-42", TEST_TOKEN) == "/webhook/<token>"
    assert redact_path("/callbacks/tavus", TEST_TOKEN) == "/callbacks/tavus"
