"""``tavus-monitor replay``: stored deliveries sent again to a real handler on loopback, through
the installed command; the chaos plan's reproducibility, with a seed."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from handler import Answer, Handler, running_handler
from headless_process import tavus_monitor

from tavus_monitor import samples
from tavus_monitor.events import Event
from tavus_monitor.replay import Chaos, ReplayError, parse_chaos, plan
from tavus_monitor.sending import EVENT_ID_HEADER, REPLAY_HEADER
from tavus_monitor.state import RunningState, write_state
from tavus_monitor.store import Delivery, Store

DEADLINE = 60.0

CALL_IN_TAVUS_ORDER = [
    "system.replica_joined",
    "system.pal_joined",
    "conversation.objective.completed",
    "system.shutdown",
    "application.transcription_ready",
    "application.recording_ready",
    "application.perception_analysis",
    "application.post_call_action_executed",
]
ARRIVAL_ORDER = [  # as a flaky network might have brought them
    "application.post_call_action_executed",
    "application.transcription_ready",
    "system.shutdown",
    "application.perception_analysis",
    "system.replica_joined",
    "conversation.objective.completed",
    "application.recording_ready",
    "system.pal_joined",
]
HEADERS = (
    ("host", "abc.ngrok-free.app"),
    ("content-type", "application/json; charset=utf-8"),
    ("user-agent", "python-requests/2.31"),
    ("x-forwarded-for", "34.1.2.3"),
)


@dataclass(frozen=True, slots=True)
class Run:
    code: int
    out: str
    err: str


async def replay(*args: str, cwd: Path, data_dir: Path | None = None) -> Run:
    """The real ``tavus-monitor replay *args``, beside the handler on this loop."""
    env = dict(os.environ)
    if data_dir is not None:
        env["TAVUS_MONITOR_DATA_DIR"] = str(data_dir)
    process = await asyncio.create_subprocess_exec(
        *tavus_monitor("replay", *args),
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), DEADLINE)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


@pytest.fixture
def store_path(isolated_dirs: Path) -> Path:
    """A store (in the data directory) holding one call, arrived out of order, and a job."""
    rendered = {
        sample.name: sample.body
        for sample in samples.render_many(CALL_IN_TAVUS_ORDER, conversation_id="cCALL")
    }
    job = samples.render_many(["replica.ready"])[0].body
    path = isolated_dirs / "events.db"
    with Store(path) as store:
        for name in ARRIVAL_ORDER:
            store.submit(Delivery(body=rendered[name], headers=HEADERS)).result(timeout=30)
        store.submit(Delivery(body=job, headers=HEADERS)).result(timeout=30)
    return path


def stored(path: Path) -> dict[int, Event]:
    with Store(path) as store:
        return {event.id: event for event in store.after(0)}


def event_ids(handler: Handler) -> list[int]:
    return [int(got.header(EVENT_ID_HEADER) or 0) for got in handler.received]


async def test_the_handler_gets_the_stored_bytes_and_headers_in_the_order_asked(
    store_path: Path, tmp_path: Path
) -> None:
    events = stored(store_path)
    async with running_handler() as handler:
        run = await replay("9", "3", "--to", handler.url, cwd=tmp_path)
    assert run.code == 0, run.err
    assert event_ids(handler) == [9, 3]
    for got in handler.received:
        event = events[int(got.header(EVENT_ID_HEADER) or 0)]
        assert got.body == event.body
        assert got.header("content-type") == "application/json; charset=utf-8"
        assert got.header("user-agent") == "python-requests/2.31"
        assert got.header(REPLAY_HEADER) == "1"
        assert got.header("x-forwarded-for") is None
    lines = run.out.splitlines()
    assert re.fullmatch(r"#9 replica\.ready → 200 \d+ms", lines[0]), lines[0]
    assert re.fullmatch(r"#3 system\.shutdown → 200 \d+ms", lines[1]), lines[1]


async def test_a_whole_call_is_sent_in_tavus_order(store_path: Path, tmp_path: Path) -> None:
    async with running_handler() as handler:
        run = await replay("--conversation", "cCALL", "--to", handler.url, cwd=tmp_path)
    assert run.code == 0, run.err
    sent = [
        samples_type(got.body) for got in handler.received
    ]  # what the handler saw, by the bodies' own event_type
    assert sent == CALL_IN_TAVUS_ORDER


def samples_type(body: bytes) -> str:
    match = re.search(rb'"event_type": "([^"]+)"', body)
    assert match is not None
    return match.group(1).decode()


CHAOS = "reorder,duplicate,drop"


async def test_a_seed_repeats_the_disorder_and_another_seed_changes_it(
    store_path: Path, tmp_path: Path
) -> None:
    async def sequence(*args: str) -> tuple[list[int], Run]:
        async with running_handler() as handler:
            run = await replay(
                "--conversation",
                "cCALL",
                "--chaos",
                CHAOS,
                "--to",
                handler.url,
                *args,
                cwd=tmp_path,
            )
        assert run.code == 0, run.err
        return event_ids(handler), run

    first, run = await sequence("--seed", "7")
    again, _ = await sequence("--seed", "7")
    other, _ = await sequence("--seed", "8")
    assert first == again
    assert first != other
    assert len(set(first)) < 8  # something was dropped
    assert len(first) != len(set(first))  # something was sent twice
    assert "dropped" in run.out
    assert "duplicate" in run.out

    unseeded, told = await sequence()
    match = re.search(r"Chaos seed (\d+): pass --seed \1 to repeat this run\.", told.err)
    assert match, told.err
    repeated, _ = await sequence("--seed", match.group(1))
    assert repeated == unseeded


async def test_a_refusing_or_failing_handler_exits_1_with_the_sentence(
    store_path: Path, tmp_path: Path
) -> None:
    handler = Handler()
    await handler.start()
    handler.answer = lambda _: Answer(500, body=b"KeyError: 'properties'")
    failed = await replay("1", "--to", handler.url, cwd=tmp_path)
    await handler.stop()
    refused = await replay("1", "2", "--to", handler.url, cwd=tmp_path)
    assert failed.code == 1
    assert re.fullmatch(r"#1 \S+ → 500 \d+ms", failed.out.strip()), failed.out
    assert refused.code == 1
    sentence = f"connection refused: is your server running on :{handler.port}?"
    assert refused.out.splitlines() == [
        f"#1 application.post_call_action_executed → refused: {sentence}",
        f"#2 application.transcription_ready → refused: {sentence}",
    ]


async def test_the_default_target_is_the_running_monitors_forward_target(
    store_path: Path, tmp_path: Path, isolated_dirs: Path
) -> None:
    async with running_handler() as handler:
        state = RunningState(
            pid=os.getpid(),  # a live process: this test's
            local_url="http://127.0.0.1:1/webhook/x",
            callback_url="http://127.0.0.1:1/webhook/x",
            healthz_url="http://127.0.0.1:1/healthz",
            db=None,
            started_at=time.time(),
            forward_to=handler.url,
        )
        write_state(isolated_dirs, state)
        run = await replay("4", cwd=tmp_path, data_dir=isolated_dirs)
        assert run.code == 0, run.err
        assert event_ids(handler) == [4]
        write_state(isolated_dirs, dataclasses.replace(state, forward_to=None))
        nowhere = await replay("4", cwd=tmp_path, data_dir=isolated_dirs)
    assert nowhere.code == 2
    assert nowhere.err.strip().startswith("tavus-monitor replay: no target: pass --to URL")
    assert len(nowhere.err.strip().splitlines()) == 1


async def test_usage_errors_say_what_is_wrong(store_path: Path, tmp_path: Path) -> None:
    to = ("--to", "http://127.0.0.1:9/")
    unknown = await replay("2", "999", "77", *to, cwd=tmp_path)
    assert unknown.code == 2
    assert unknown.err.strip() == (
        "tavus-monitor replay: no stored event with id 999, 77; "
        "`tavus-monitor history` lists what is stored."
    )
    chaos = await replay("2", "--chaos", "reorder,explode", *to, cwd=tmp_path)
    assert chaos.code == 2
    assert chaos.err.startswith("tavus-monitor replay: --chaos has no 'explode'")
    neither = await replay(*to, cwd=tmp_path)
    assert neither.code == 2
    assert "event ids or --conversation" in neither.err


# ------------------------------------------------------------------ the plan, pure


def test_the_plan_is_reproducible_with_a_seed() -> None:
    events = list(range(20))
    chaos = Chaos(reorder=True, duplicate=True, drop=True, delay=2.0)
    first = plan(events, chaos, random.Random(1))
    assert first == plan(events, chaos, random.Random(1))
    assert first != plan(events, chaos, random.Random(2))
    dropped = [send.event for send in first if send.dropped]
    copies = [send.event for send in first if "duplicate" in send.notes]
    assert len(dropped) == 5
    assert len(copies) == 5
    assert not set(dropped) & set(copies)
    assert sorted(send.event for send in first if "duplicate" not in send.notes) == events
    assert all(0 <= send.delay <= 2.0 for send in first)
    assert all(send.delay == 0 for send in first if send.dropped)


def test_without_chaos_the_plan_is_the_events_in_order() -> None:
    sends = plan([3, 1, 2], Chaos(), random.Random(0))
    assert [(send.event, send.delay, send.notes) for send in sends] == [
        (3, 0.0, ()),
        (1, 0.0, ()),
        (2, 0.0, ()),
    ]


def test_a_copy_comes_after_its_original_unless_reordered() -> None:
    for seed in range(50):
        sends = plan(list(range(8)), Chaos(duplicate=True), random.Random(seed))
        for index, send in enumerate(sends):
            if "duplicate" in send.notes:
                assert send.event in [earlier.event for earlier in sends[:index]]


def test_chaos_words() -> None:
    assert parse_chaos("reorder, delay=500ms") == Chaos(reorder=True, delay=0.5)
    assert parse_chaos("drop,duplicate,delay=2s") == Chaos(duplicate=True, drop=True, delay=2.0)
    for bad in ("shuffle", "delay=soon", "drop=3"):
        with pytest.raises(ReplayError):
            parse_chaos(bad)
