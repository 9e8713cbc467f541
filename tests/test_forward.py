"""Forwarding (``--forward-to``): a real monitor sends each stored delivery to a real handler
on loopback (tests/handler.py), which goes down, answers 500 or hangs as each test says."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from conftest import TEST_TOKEN
from handler import WAIT, Answer, Handler, Received, running_handler
from headless_process import HeadlessProcess

from tavus_monitor.bus import Forwarded, StatusChanged, Subscription
from tavus_monitor.cli import main
from tavus_monitor.forward import Backoff
from tavus_monitor.monitor import Monitor
from tavus_monitor.sending import EVENT_ID_HEADER
from tavus_monitor.settings import Settings

QUICK = Backoff(first=0.05, most=0.2)
"""Waits between tries, shortened: the tests wait on what arrives, not on the clock."""


def body(number: int, event_type: str = "system.replica_joined") -> bytes:
    return json.dumps(
        {
            "event_type": event_type,
            "conversation_id": f"c-{number}",
            "message_type": "system",
            "timestamp": "2026-01-01T00:00:00Z",
            "properties": {"replica_id": "r1"},
        }
    ).encode()


def number_of(received: Received) -> int:
    return int(json.loads(received.body)["conversation_id"].removeprefix("c-"))


@dataclasses.dataclass
class Running:
    monitor: Monitor
    client: httpx.AsyncClient
    attempts: Subscription

    async def post(self, content: bytes, content_type: str = "application/json") -> int:
        """POST to the webhook as Tavus does; the stored event's id."""
        response = await self.client.post(
            f"/webhook/{TEST_TOKEN}", content=content, headers={"content-type": content_type}
        )
        assert response.status_code == 200
        assert self.monitor.store is not None
        return self.monitor.stats.events_total

    async def forwarded(self, done: int, within: float = WAIT) -> list[Forwarded]:
        """Every attempt published until ``done`` events are done with (answered or given up)."""
        seen: list[Forwarded] = []
        async with asyncio.timeout(within):
            while sum(message.done for message in seen) < done:
                message = await self.attempts.get()
                assert message is not None, "the bus closed"
                if isinstance(message, Forwarded):
                    seen.append(message)
        return seen

    async def attempt(self, failure: str) -> Forwarded:
        """The next attempt that failed with ``failure`` (``refused``, ``timeout``)."""
        async with asyncio.timeout(WAIT):
            while True:
                message = await self.attempts.get()
                assert message is not None, "the bus closed"
                if isinstance(message, Forwarded) and message.attempt.failure == failure:
                    return message


@asynccontextmanager
async def forwarding(
    settings: Settings, handler: Handler | None, **changes: object
) -> AsyncIterator[Running]:
    """A monitor forwarding to ``handler`` (None: not forwarding), with quick retries."""
    if handler is not None:
        changes.setdefault("forward_to", handler.url)
    monitor = Monitor(dataclasses.replace(settings, **changes))  # type: ignore[arg-type]
    monitor.forward_backoff = QUICK
    attempts = monitor.bus.subscribe(events=False)
    await monitor.start()
    try:
        async with httpx.AsyncClient(base_url=monitor.base_url, timeout=30) as client:
            yield Running(monitor, client, attempts)
    finally:
        await monitor.stop()


async def test_the_handler_gets_the_stored_bytes_content_type_and_event_id(
    settings: Settings,
) -> None:
    malformed = b'{"event_type": "system.shutdown", "properties": '
    async with running_handler() as handler, forwarding(settings, handler) as run:
        first = await run.post(body(1), "application/json; charset=utf-8")
        second = await run.post(malformed, "text/plain")
        await run.forwarded(done=2)
        got = handler.received
        assert run.monitor.store is not None
        stored = [run.monitor.store.get(first), run.monitor.store.get(second)]
    assert [g.body for g in got] == [event.body for event in stored if event]
    assert got[1].body == malformed  # a malformed delivery is a delivery too
    assert got[0].header("content-type") == "application/json; charset=utf-8"
    assert got[1].header("content-type") == "text/plain"
    assert [g.header(EVENT_ID_HEADER) for g in got] == [str(first), str(second)]
    assert [g.path for g in got] == ["/tavus/webhook"] * 2


async def test_a_handler_down_for_a_while_gets_everything_in_order_once_back(
    settings: Settings,
) -> None:
    handler = Handler()  # not started: connections are refused
    async with forwarding(settings, handler, forward_retries=0) as run:
        for number in range(1, 6):
            await run.post(body(number))
        refused = await run.attempt("refused")
        assert not refused.done  # waiting for it costs no retry, even with --forward-retries 0
        await handler.start()
        try:
            await run.forwarded(done=5)
            assert run.monitor.store is not None
            tries = run.monitor.store.attempts(refused.event_id)
        finally:
            await handler.stop()
    assert [number_of(got) for got in handler.received] == [1, 2, 3, 4, 5]
    assert tries[0].attempt.describe() == "→ refused"
    assert tries[-1].attempt.ok


async def test_error_answers_are_retried_then_given_up_and_the_next_event_goes(
    settings: Settings,
) -> None:
    async with (
        running_handler() as handler,
        forwarding(settings, handler, forward_retries=2) as run,
    ):
        handler.answer = lambda got: Answer(500 if number_of(got) == 1 else 200)
        failing = await run.post(body(1))
        after = await run.post(body(2))
        seen = await run.forwarded(done=2)
        assert run.monitor.store is not None
        kept = run.monitor.store.attempts(failing)
        cursor = run.monitor.store.forwarded_through(handler.url)
    assert [number_of(got) for got in handler.received] == [1, 1, 1, 2]
    assert [stored.attempt.status for stored in kept] == [500, 500, 500]
    assert {stored.kind for stored in kept} == {"forward"}
    assert [m.done for m in seen] == [False, False, True, True]
    assert seen[2].given_up
    assert cursor == after


async def test_a_hanging_handler_holds_the_next_event_only_for_the_retry_budget(
    settings: Settings,
) -> None:
    timeout, retries = 0.3, 1
    async with (
        running_handler() as handler,
        forwarding(settings, handler, forward_timeout=timeout, forward_retries=retries) as run,
    ):
        handler.answer = lambda got: Answer(delay=30 if number_of(got) == 1 else 0)
        started = time.monotonic()
        await run.post(body(1))
        await run.post(body(2))
        seen = await run.forwarded(done=2)
        took = time.monotonic() - started
    assert [m.attempt.describe() for m in seen[:2]] == ["→ timeout", "→ timeout"]
    assert seen[1].given_up
    assert seen[2].attempt.ok
    # Two tries of at most the timeout each, one quick backoff wait, then the next one.
    assert took < (retries + 1) * timeout + QUICK.most + 2.0


async def test_a_hanging_handler_does_not_delay_tavuss_200(settings: Settings) -> None:
    async with running_handler() as handler, forwarding(settings, handler) as run:
        handler.delay = 60  # longer than the test: every forwarding try hangs
        await run.post(body(1))
        await handler.until(1)  # the forwarder now waits on the hanging handler
        for number in range(2, 12):
            started = time.monotonic()
            await run.post(body(number))
            assert time.monotonic() - started < 1.0
        assert len(handler.received) == 1  # one at a time: the rest wait their turn
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 5.0  # stopping does not wait on the handler either


async def test_a_restart_resumes_where_forwarding_stopped(settings: Settings) -> None:
    handler = Handler()
    await handler.start()
    async with forwarding(settings, handler) as run:
        await run.post(body(1))
        await run.forwarded(done=1)
        await handler.stop()  # the handler goes down with events behind it
        await run.post(body(2))
        await run.post(body(3))
        await run.attempt("refused")
    async with forwarding(settings, None) as run:  # a run without forwarding stores more
        await run.post(body(4))
    await handler.start()
    try:
        async with forwarding(settings, handler) as run:
            announced = run.monitor.bus.last["forward"]
            await run.forwarded(done=3)
    finally:
        await handler.stop()
    # 1 was answered 200 before the restart and is not sent again; 2 and 3 (held while
    # the handler was down) and 4 (stored while nothing forwarded) go, in order.
    assert [number_of(got) for got in handler.received] == [1, 2, 3, 4]
    assert isinstance(announced, StatusChanged)
    assert "3 stored while it was not running go first" in announced.text


async def test_a_first_run_does_not_forward_what_was_stored_before(settings: Settings) -> None:
    async with forwarding(settings, None) as run:
        await run.post(body(1))
    async with running_handler() as handler, forwarding(settings, handler) as run:
        assert "stored before now are not forwarded" in run.monitor.bus.last["forward"].text
        await run.post(body(2))
        await run.forwarded(done=1)
    assert [number_of(got) for got in handler.received] == [2]


async def test_history_jsonl_lists_each_events_attempts(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    async with (
        running_handler() as handler,
        forwarding(settings, handler, forward_retries=1) as run,
    ):
        handler.answer = lambda got: Answer(500 if number_of(got) == 1 else 200)
        await run.post(body(1))
        await run.post(body(2))
        await run.forwarded(done=2)
    capsys.readouterr()
    assert settings.db_path is not None
    assert main(["history", "--format", "jsonl", "--db", str(settings.db_path)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    second, first = lines  # newest first
    assert [(a["kind"], a["status"]) for a in first["attempts"]] == [
        ("forward", 500),
        ("forward", 500),
    ]
    (answered,) = second["attempts"]
    assert answered["target"] == handler.url
    assert answered["status"] == 200
    assert answered["failure"] is None
    assert answered["error"] is None
    assert answered["latency_ms"] >= 0
    assert answered["at"].endswith("Z")


async def test_headless_prints_one_attempt_line_on_stderr_and_events_only_on_stdout(
    tmp_path: Path,
) -> None:
    async with running_handler() as handler:
        handler.answer = lambda got: Answer(200 if number_of(got) == 1 else 500)
        run = HeadlessProcess(
            "--port", "0", "--no-tunnel", "--forward-to", handler.url, "--forward-retries", "0"
        )
        with run:
            url = await asyncio.to_thread(run.wait_for_callback_url)
            async with httpx.AsyncClient(timeout=30) as client:
                for number in (1, 2):
                    assert (await client.post(url, content=body(number))).status_code == 200
                given_up = await asyncio.to_thread(
                    run.wait_for, "err", lambda line: "given up" in line, "the given-up line"
                )
            assert await asyncio.to_thread(run.stop) == 0
    assert any(line.startswith(f"Forwarding each delivery to {handler.url}") for line in run.err)
    forward_lines = [line for line in run.err if line.startswith("forward #")]
    assert len(forward_lines) == 2
    assert forward_lines[0].startswith("forward #1 system.replica_joined → 200 ")
    assert forward_lines[1].startswith("forward #2 system.replica_joined → 500 ")
    assert given_up == forward_lines[1]
    assert [json.loads(line)["id"] for line in run.out] == [1, 2]  # stdout: events only


@pytest.mark.parametrize("url", ["localhost:3000", "ftp://x/hook", "http://", "http://a b/"])
def test_a_forward_url_that_is_not_http_is_one_sentence_and_exit_2(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--headless", "--no-tunnel", "--port", "0", "--forward-to", url]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"--forward-to {url!r} is not an http(s) URL" in line
    assert line.endswith(".")
