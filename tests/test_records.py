"""The monitor's own records in the store: what handlers answered, where forwarding got to,
and the Tavus resources created through the monitor. They go through the one writer and
survive a restart; a file an older monitor wrote reads as having none."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tavus_monitor import samples
from tavus_monitor.attempts import Attempt
from tavus_monitor.events import Delivery
from tavus_monitor.store import ReadOnlyStore, Store
from tavus_monitor.storefile import MIGRATIONS, RECORDS_SCHEMA

TARGET = "http://127.0.0.1:3000/tavus/webhook"


def sample(name: str) -> bytes:
    (rendered,) = samples.render_many([name], conversation_id="c1")
    return rendered.body


def answered(status: int | None, *, failure: str | None = None) -> Attempt:
    return Attempt(
        target=TARGET,
        started_at=1_700_000_000.0,
        latency_ms=12.5,
        status=status,
        error="connection refused: is your server running on :3000?" if failure else None,
        request_headers=(("content-type", "application/json"),),
        response_headers=(("content-type", "text/plain"),) if status else (),
        response_body=b"Traceback" if status == 500 else b"",
        failure=failure,
    )


async def test_attempts_and_the_forward_cursor_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with Store(path) as store:
        first = await store.append(Delivery(sample("system.replica_joined")))
        second = await store.append(Delivery(sample("system.shutdown")))
        assert store.forwarded_through(TARGET) is None
        await store.record_attempt(first.id, "forward", answered(None, failure="refused"))
        await store.record_attempt(first.id, "forward", answered(200), forwarded=True)
        await store.record_attempt(second.id, "forward", answered(500), forwarded=True)
        edited = b'{"edited": true}'
        await store.record_attempt(second.id, "edited", answered(200), request_body=edited)
    with Store(path) as store:
        assert store.forwarded_through(TARGET) == second.id
        assert store.forwarded_through("http://elsewhere/") is None
        tries = store.attempts(first.id)
        assert [(a.kind, a.attempt.describe()) for a in tries] == [
            ("forward", "→ refused"),
            ("forward", "→ 200 12ms"),
        ]
        assert tries[0].attempt.error == "connection refused: is your server running on :3000?"
        latest = store.latest_attempts([first.id, second.id, 999])
        assert set(latest) == {first.id, second.id}
        assert latest[second.id].kind == "edited"
        assert latest[second.id].request_body == b'{"edited": true}'
        assert store.attempts(second.id)[0].attempt.response_body == b"Traceback"


async def test_created_resources_are_remembered_and_ended(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with Store(path) as store:
        url = "https://abc.ngrok.app/webhook/t"
        response = {"conversation_id": "c123", "status": "active"}
        await store.record_created(
            "conversation", "c123", name="demo", callback_url=url, response=response
        )
        await store.record_created("video", "v9", name=None, callback_url=url, response={})
        assert await store.record_ended("conversation", "c123")
        assert not await store.record_ended("conversation", "c-not-ours")
    with ReadOnlyStore(path) as reader:
        video, conversation = reader.created()
        assert (video.kind, video.resource_id, video.ended_at) == ("video", "v9", None)
        assert conversation.name == "demo"
        assert conversation.response == response
        assert conversation.ended_at is not None
        assert [c.resource_id for c in reader.created("conversation")] == ["c123"]


def test_a_file_from_before_the_records_reads_as_having_none(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        for script in MIGRATIONS[: RECORDS_SCHEMA - 1]:
            db.executescript(script)
        db.execute(f"PRAGMA user_version = {RECORDS_SCHEMA - 1}")
    with ReadOnlyStore(path) as reader:
        assert reader.attempts(1) == []
        assert reader.latest_attempts([1]) == {}
        assert reader.forwarded_through(TARGET) is None
        assert reader.created() == []
