"""The SQLite event store, on real files in tmp_path (and ``--ephemeral``'s temporary ones),
written by its real writer process."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import io
import json
import os
import signal
import sqlite3
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from tavus_monitor import jsonlines, samples
from tavus_monitor.events import Event, Family, body_digest, classify
from tavus_monitor.store import (
    SCHEMA_VERSION,
    Delivery,
    EventLines,
    EventQuery,
    Rejection,
    Store,
    StoreError,
)
from tavus_monitor.storefile import MIGRATIONS

JSON_HEADERS = (("content-type", "application/json"), ("user-agent", "Tavus/1.0"))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "events.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    with Store(db_path) as opened:
        yield opened


def raw_db(path: Path) -> contextlib.closing[sqlite3.Connection]:
    """A plain sqlite3 connection to inspect the file as another program would."""
    return contextlib.closing(sqlite3.connect(path))


def body_for(event_type: str, conversation_id: str = "c1", **properties: object) -> bytes:
    return json.dumps(
        {
            "conversation_id": conversation_id,
            "event_type": event_type,
            "message_type": "system",
            "timestamp": "2025-07-11T06:45:47.472000Z",
            "properties": properties,
        }
    ).encode()


def put(store: Store, body: bytes, headers: tuple[tuple[str, str], ...] = JSON_HEADERS) -> Event:
    return store.submit(Delivery(body=body, headers=headers)).result(timeout=30)


def numbered(n: int) -> bytes:
    return json.dumps({"n": n}).encode()


# ------------------------------------------------------------ appending


def test_append_returns_the_stored_event(store: Store) -> None:
    body = samples.render_many(["system.shutdown"], conversation_id="c42")[0].body
    event = store.submit(
        Delivery(
            body=body,
            headers=JSON_HEADERS,
            received_at=1_752_216_517.5,
            remote_addr="10.0.0.7",
            path="/webhook/<token>",
        )
    ).result(timeout=30)

    assert event.id == 1
    assert event.family is Family.CONVERSATION
    assert event.event_type == "system.shutdown"
    assert event.conversation_id == "c42"
    assert event.summary.startswith("shutdown: participant left")
    assert event.duplicate_of is None
    assert store.get(event.id) == event
    stored = store.get(1)
    assert stored is not None
    assert (stored.received_at, stored.remote_addr, stored.path) == (
        1_752_216_517.5,
        "10.0.0.7",
        "/webhook/<token>",
    )


async def test_async_append(store: Store) -> None:
    event = await store.append(Delivery(body=b'{"replica_id": "r1", "status": "ready"}'))
    assert event.event_type == "replica.ready"
    assert store.get(event.id) == event


def test_received_at_defaults_to_now(store: Store) -> None:
    before = time.time()
    event = put(store, b"{}")
    assert before <= event.received_at <= time.time()


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1}\r\n',
        b"\x00\x01\xff\xfe binary \x9b\x1b[2J",
        '{"text": "caf\u00e9 \u202e \U0001f642"}'.encode(),
        b"",
        b"x" * 300_000,
    ],
    ids=["crlf", "binary", "unicode", "empty", "large"],
)
def test_body_is_kept_byte_exact_as_a_blob(store: Store, db_path: Path, body: bytes) -> None:
    event = put(store, body)

    stored = store.get(event.id)
    assert stored is not None
    assert stored.body == body
    assert stored.size == len(body)
    with raw_db(db_path) as db:
        kind, raw = db.execute(
            "SELECT typeof(body), body FROM events WHERE id = ?", (event.id,)
        ).fetchone()
    assert kind == "blob"
    assert raw == body


def test_headers_are_kept_in_order_with_repeats(store: Store) -> None:
    headers = (
        ("Content-Type", "application/json"),
        ("X-Forwarded-For", "1.2.3.4"),
        ("x-forwarded-for", "5.6.7.8"),
        ("X-Odd", "caf\u00e9 \u00ff"),
    )
    event = put(store, b"{}", headers)
    stored = store.get(event.id)
    assert stored is not None
    assert stored.headers == headers


def test_classification_can_be_given(store: Store) -> None:
    chosen = classify(body_for("system.shutdown", shutdown_reason="max_call_duration"))
    event = store.submit(Delivery(body=b"{}"), chosen).result(timeout=30)
    assert event.event_type == "system.shutdown"
    assert event.summary == chosen.summary


def test_get_missing_event_is_none(store: Store) -> None:
    assert store.get(12345) is None


# ------------------------------------------------------------ schema, reopening, WAL


def test_new_file_has_the_current_schema_version_and_wal(store: Store, db_path: Path) -> None:
    put(store, b"{}")
    with raw_db(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db_path.with_name(db_path.name + "-wal").exists()


def test_a_database_from_a_newer_version_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with raw_db(db_path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        db.commit()

    with pytest.raises(StoreError, match=r"newer tavus-monitor.*upgrade") as caught:
        Store(db_path)
    assert str(db_path) in str(caught.value)
    assert f"schema {SCHEMA_VERSION + 1}" in str(caught.value)
    # Refusing must not touch the file: it still says the newer version.
    with raw_db(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


def test_a_first_version_database_is_migrated_keeping_its_events(db_path: Path) -> None:
    """A file written by schema 1 opens: its events stay, redeliveries are still found."""
    db_path.parent.mkdir(parents=True)
    with raw_db(db_path) as db:
        db.executescript(MIGRATIONS[0])
        db.execute("PRAGMA user_version = 1")
        old_body = body_for("system.shutdown", "c-old")
        db.execute(
            "INSERT INTO events (received_at, family, event_type, conversation_id, subject_id, "
            "summary, severity, body, body_sha256, headers, path) "
            "VALUES (1.0, 'conversation', 'system.shutdown', 'c-old', 'c-old', 'shutdown', "
            "'info', ?, ?, '[]', '/webhook')",
            (old_body, body_digest(old_body)),
        )
        db.commit()
    with Store(db_path) as store:
        again = put(store, old_body)
        assert again.duplicate_of == 1
        assert [row.id for row in store.rows()] == [again.id, 1]
    with Store(db_path) as store:  # reopened: the migrations ran once
        assert store.count() == 2
    with raw_db(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        indexes = {
            row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
    assert "events_received" not in indexes
    assert {"events_jobs", "events_sha_orphans", "events_conversation"} <= indexes


def test_reopening_keeps_history_and_ids_continue(db_path: Path) -> None:
    bodies = [numbered(n) for n in range(3)]
    with Store(db_path) as first:
        ids = [put(first, body).id for body in bodies]
    assert ids == [1, 2, 3]

    with Store(db_path) as second:
        assert [event.body for event in second.page()] == bodies[::-1]
        assert second.counts().events == 3
        assert put(second, numbered(99)).id == 4
        # A redelivery after a restart is still recognised.
        assert put(second, bodies[0]).duplicate_of == 1


def test_close_finishes_queued_writes_and_is_safe_twice(db_path: Path) -> None:
    opened = Store(db_path)
    futures = [opened.submit(Delivery(body=numbered(n))) for n in range(200)]
    opened.close()
    opened.close()

    assert all(future.done() for future in futures)
    with pytest.raises(StoreError, match="closed"):
        opened.submit(Delivery(body=b"{}"))
    # The loop the store ran to drive its writer (nothing else was running one) is gone.
    assert not [thread for thread in threading.enumerate() if thread.name == "store-writer"]
    with Store(db_path) as reopened:
        assert reopened.counts().events == 200


# ------------------------------------------------------------ lines


def test_lines_are_rendered_by_the_writer_process_and_written_in_id_order(db_path: Path) -> None:
    sink = io.StringIO()
    with Store(db_path, lines=EventLines(sink, jsonlines.event_line)) as store:
        events = [put(store, numbered(n)) for n in range(3)]
        assert sink.getvalue().splitlines() == [jsonlines.event_line(e) for e in events]


@pytest.mark.parametrize(
    "render",
    [lambda event: "", str, EventQuery.matches],
    ids=["lambda", "not-this-package", "method"],
)
def test_a_renderer_the_writer_process_cannot_import_is_refused_at_open(
    db_path: Path, render: object
) -> None:
    """The writer process imports its renderer by name: only this package's functions can be."""
    with pytest.raises(ValueError, match="renderer"):
        Store(db_path, lines=EventLines(io.StringIO(), render))  # type: ignore[arg-type]


# ------------------------------------------------------------ --ephemeral


def test_a_temporary_store_shares_writes_with_its_reader_and_is_deleted_on_close() -> None:
    with Store.temporary() as temporary:
        directory = temporary.path.parent
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        event = put(temporary, body_for("system.shutdown"))
        assert temporary.get(event.id) == event
        assert [e.id for e in temporary.page()] == [event.id]
        assert temporary.counts().events == 1
        assert stat.S_IMODE(temporary.path.stat().st_mode) == 0o600
    assert not directory.exists()


def test_temporary_stores_are_separate() -> None:
    with Store.temporary() as one, Store.temporary() as two:
        put(one, b"{}")
        assert two.counts().events == 0
        assert one.path != two.path


def test_a_temporary_store_keeps_every_write_while_being_read() -> None:
    """--ephemeral: reads overlapping writes must not make deliveries fail."""
    with Store.temporary() as memory:
        stop = threading.Event()
        read_errors: list[BaseException] = []

        def read_all_the_time() -> None:
            while not stop.is_set():
                try:
                    memory.page(EventQuery(limit=5))
                    memory.counts()
                except Exception as exc:
                    read_errors.append(exc)

        readers = [threading.Thread(target=read_all_the_time) for _ in range(2)]
        for reader in readers:
            reader.start()
        try:
            futures = [memory.submit(Delivery(body=numbered(n))) for n in range(1500)]
            failures = [f.exception(timeout=60) for f in futures]
        finally:
            stop.set()
            for reader in readers:
                reader.join()
        assert [f for f in failures if f is not None] == []
        assert read_errors == []
        assert memory.counts().events == 1500


# ------------------------------------------------------------ reading


@pytest.fixture
def filled(store: Store) -> Store:
    """Two conversations, a replica, a video and a malformed body, interleaved."""
    bodies = [
        body_for("system.replica_joined", "cA", replica_id="r1"),  # 1
        body_for("system.replica_joined", "cB", replica_id="r1"),  # 2
        body_for("system.shutdown", "cA", shutdown_reason="participant_left_timeout"),  # 3
        b'{"replica_id": "r9", "status": "ready"}',  # 4
        body_for("application.perception_analysis", "cB", analysis="Calm USER, good light."),  # 5
        b'{"video_id": "v1", "status": "error", "status_details": "Bad Script"}',  # 6
        b'{"truncated": ',  # 7
        body_for("system.shutdown", "cB", shutdown_reason="max_call_duration reached"),  # 8
    ]
    for body in bodies:
        put(store, body)
    return store


def ids(events: list[Event]) -> list[int]:
    return [event.id for event in events]


def test_page_is_newest_first_and_pages_with_before_id(store: Store) -> None:
    for n in range(25):
        put(store, numbered(n))

    first = store.page(EventQuery(limit=10))
    second = store.page(EventQuery(limit=10, before_id=first[-1].id))
    last = store.page(EventQuery(limit=10, before_id=second[-1].id))
    beyond = store.page(EventQuery(limit=10, before_id=last[-1].id))

    assert ids(first) == list(range(25, 15, -1))
    assert ids(second) == list(range(15, 5, -1))
    assert ids(last) == [5, 4, 3, 2, 1]
    assert beyond == []
    assert store.page(EventQuery(limit=0)) == []


def test_page_filters(filled: Store) -> None:
    assert ids(filled.page(EventQuery(family="replica"))) == [4]
    assert ids(filled.page(EventQuery(family="malformed"))) == [7]
    assert ids(filled.page(EventQuery(event_type="system.shutdown"))) == [8, 3]
    assert ids(filled.page(EventQuery(conversation_id="cB"))) == [8, 5, 2]
    assert ids(filled.page(EventQuery(family="conversation", conversation_id="cA"))) == [3, 1]
    assert filled.page(EventQuery(conversation_id="nope")) == []
    assert ids(filled.page(EventQuery(event_type="system.shutdown", before_id=8))) == [3]
    assert ids(filled.page(EventQuery(after_id=6))) == [8, 7]


def test_search_looks_in_summary_and_body_ignoring_case(filled: Store) -> None:
    # Only in the summary: the body says "max_call_duration", the summary "maximum call".
    assert ids(filled.page(EventQuery(search="MAXIMUM CALL"))) == [8]
    # Only in the body: no summary shows the envelope's timestamp.
    assert ids(filled.page(EventQuery(search="2025-07-11T06:45:47"))) == [8, 5, 3, 2, 1]
    assert ids(filled.page(EventQuery(search="calm user"))) == [5]
    assert ids(filled.page(EventQuery(search="bad script"))) == [6]
    assert ids(filled.page(EventQuery(search="truncated"))) == [7]
    assert ids(filled.page(EventQuery(search="cB", family="conversation"))) == [8, 5, 2]
    assert filled.page(EventQuery(search="no such text anywhere")) == []


def test_search_treats_percent_and_underscore_literally(store: Store) -> None:
    percent = put(store, b'{"note": "rate 50% done"}')
    put(store, b'{"note": "rate 500 done"}')
    underscore = put(store, b'{"note": "a_b"}')
    put(store, b'{"note": "axb"}')
    backslash = put(store, b'{"note": "C:\\\\temp"}')

    assert ids(store.page(EventQuery(search="50%"))) == [percent.id]
    assert ids(store.page(EventQuery(search="a_b"))) == [underscore.id]
    assert ids(store.page(EventQuery(search="\\\\temp"))) == [backslash.id]
    assert ids(store.page(EventQuery(search="%"))) == [percent.id]
    assert ids(store.page(EventQuery(search="_"))) == [underscore.id]


def test_after_gives_newer_events_oldest_first(filled: Store) -> None:
    assert ids(filled.after(5)) == [6, 7, 8]
    assert ids(filled.after(0, limit=2)) == [1, 2]
    assert filled.after(8) == []


def test_conversation_gives_its_events_in_arrival_order(filled: Store) -> None:
    events = filled.conversation("cB")
    assert ids(events) == [2, 5, 8]
    assert [e.event_type for e in events] == [
        "system.replica_joined",
        "application.perception_analysis",
        "system.shutdown",
    ]
    assert filled.conversation("unknown") == []


def test_counts_by_family(filled: Store) -> None:
    counts = filled.counts()
    assert counts.events == 8
    assert counts.rejected == 0
    assert counts.by_family == {"conversation": 5, "replica": 1, "video": 1, "malformed": 1}


async def test_rejections_are_kept_newest_first(store: Store) -> None:
    first = await store.reject(
        method="POST",
        path="/webhook/<token>",
        remote_addr="203.0.113.9",
        size=12,
        status=404,
        reason="wrong token",
    )
    second = await store.reject(
        method="GET", path="/favicon.ico", remote_addr=None, size=None, status=404, reason="x"
    )

    assert isinstance(first, Rejection)
    assert (first.status, first.reason, first.path, first.size) == (
        404,
        "wrong token",
        "/webhook/<token>",
        12,
    )
    assert store.rejections() == [second, first]
    assert store.rejections(limit=1) == [second]
    assert store.rejections(before_id=second.id) == [first]
    assert store.counts().rejected == 2
    assert store.counts().events == 0


# ------------------------------------------------------------ duplicates


def test_exact_redelivery_points_at_the_first_copy(store: Store) -> None:
    body = body_for("system.shutdown", shutdown_reason="end_conversation_endpoint_hit")
    first = put(store, body)
    other = put(store, body_for("system.shutdown", "c2"))
    again = put(store, body)
    third = put(store, body)

    assert first.duplicate_of is None
    assert other.duplicate_of is None
    assert again.duplicate_of == first.id
    assert third.duplicate_of == first.id
    assert store.get(again.id) == again


@pytest.mark.parametrize(
    "body",
    [
        b'{"video_id": "v1", "status": "ready", "hosted_url": null}',
        b'{"replica_id": "r1", "status": "error", "error_message": "bad footage"}',
        b'{"status": "ready"}',
        b'{"message_type": "mystery", "event_type": "x.y"}',
        b"not json at all",
        b"",
    ],
    ids=["video", "replica", "replica-without-id", "unknown", "malformed", "empty"],
)
def test_redelivery_is_found_for_bodies_without_a_conversation(store: Store, body: bytes) -> None:
    """Redeliveries are looked up per conversation, per job, or by digest alone."""
    first = put(store, body)
    put(store, b'{"video_id": "v2", "status": "ready"}')
    put(store, b"other garbage")
    again = put(store, body)
    assert first.duplicate_of is None
    assert again.duplicate_of == first.id


def test_same_bytes_but_different_headers_is_still_a_redelivery(store: Store) -> None:
    first = put(store, b'{"replica_id": "r1", "status": "ready"}', ())
    again = put(store, b'{"replica_id": "r1", "status": "ready"}', (("x-retry", "1"),))
    assert again.duplicate_of == first.id


@pytest.mark.parametrize(
    ("first_type", "second_type"),
    [
        ("system.replica_joined", "system.pal_joined"),
        ("system.pal_joined", "system.replica_joined"),
    ],
)
def test_join_twin_is_a_duplicate_of_the_first_join(
    store: Store, first_type: str, second_type: str
) -> None:
    first = put(store, body_for(first_type, "cJ", replica_id="r79"))
    put(store, body_for("system.shutdown", "cJ"))
    twin = put(store, body_for(second_type, "cJ", replica_id="r79", face_id="r79"))
    elsewhere = put(store, body_for(second_type, "cK", replica_id="r79"))

    assert first.duplicate_of is None
    assert twin.duplicate_of == first.id
    assert elsewhere.duplicate_of is None


def test_events_of_one_conversation_are_not_duplicates_of_each_other(store: Store) -> None:
    put(store, body_for("system.shutdown", "cZ"))
    transcript = put(store, body_for("application.transcription_ready", "cZ", transcript=[]))
    assert transcript.duplicate_of is None


# ------------------------------------------------------------ group commit


def test_many_concurrent_submits_all_resolve_and_are_all_stored(store: Store) -> None:
    def submit_range(start: int) -> list[concurrent.futures.Future[Event]]:
        return [store.submit(Delivery(body=numbered(n))) for n in range(start, start + 250)]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        batches = list(pool.map(submit_range, range(0, 2000, 250)))
    events = [future.result(timeout=60) for batch in batches for future in batch]

    assert sorted(e.id for e in events) == list(range(1, 2001))
    assert store.counts().events == 2000
    stored = {bytes(e.body) for e in store.page(EventQuery(limit=5000))}
    assert stored == {numbered(n) for n in range(2000)}


async def test_many_concurrent_appends_from_the_event_loop(db_path: Path) -> None:
    """Each append gets its own delivery back, ids in the order they were made.

    500 appends in one loop iteration: the writer process receives them in
    several batches (``EARLY_SEND``) that may share a transaction in the child.
    """
    with Store(db_path) as store:
        events = await asyncio.gather(
            *(store.append(Delivery(body=numbered(n))) for n in range(500))
        )
        assert [event.body for event in events] == [numbered(n) for n in range(500)]
        assert [event.id for event in events] == list(range(1, 501))
        assert store.counts().events == 500


async def test_a_writer_process_that_cannot_be_started_fails_its_batch_at_once(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Out of processes or files: the deliveries get StoreError (503), none waits forever."""
    with Store(db_path) as store:
        await store.append(Delivery(body=numbered(1)))
        first_pid = store.writer_pid
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)

        def refuse(*args: object, **kwargs: object) -> NoReturn:
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

        # writerprocess starts the writer with subprocess.Popen.
        monkeypatch.setattr(subprocess, "Popen", refuse)
        async with asyncio.timeout(30):
            for n in (2, 3):  # the first may still reach the dead child; the second cannot
                with pytest.raises(StoreError):
                    await store.append(Delivery(body=numbered(n)))
        monkeypatch.undo()

        after = await store.append(Delivery(body=numbered(4)))
        assert store.writer_pid not in (None, first_pid)
        assert [e.body for e in store.page(EventQuery(limit=10))] == [after.body, numbered(1)]


def test_commit_listener_sees_committed_events_in_id_order(store: Store) -> None:
    seen: list[int] = []
    visible: list[bool] = []

    def listener(events: list[Event], rejections: list[Rejection]) -> None:
        for event in events:
            seen.append(event.id)
            # Called after commit: another connection can already read it.
            visible.append(store.get(event.id) is not None)

    store.on_commit(listener)
    futures = [store.submit(Delivery(body=numbered(n))) for n in range(300)]
    results = [future.result(timeout=60) for future in futures]

    assert seen == [e.id for e in results] == list(range(1, 301))
    assert all(visible)


async def test_a_batch_is_answered_before_what_loop_listeners_wake(store: Store) -> None:
    """The dashboard listens on the loop: its work for a batch must not delay the answers.

    A listener (the bus) wakes a consumer (the dashboard's panes); the handlers that
    answer the batch's senders must run before that consumer does. The listener itself
    still runs first, so the bus holds each event before its sender hears 200.
    """
    loop = asyncio.get_running_loop()
    order: list[tuple[str, int]] = []
    heard: set[int] = set()
    heard_before_answer: list[bool] = []

    def listener(events: list[Event], rejections: list[Rejection]) -> None:
        heard.update(event.id for event in events)
        for event in events:  # what a woken consumer would do, on its next turn
            loop.call_soon(order.append, ("shown", event.id))

    async def deliver(n: int) -> None:
        event = await store.append(Delivery(body=numbered(n)))
        heard_before_answer.append(event.id in heard)
        order.append(("answered", event.id))

    store.on_commit(listener, loop=loop)
    await asyncio.wait_for(asyncio.gather(*(deliver(n) for n in range(40))), timeout=60)
    await asyncio.sleep(0)  # the last batch's consumer turn
    assert heard_before_answer == [True] * 40
    position = {entry: index for index, entry in enumerate(order)}
    late = [i for i in range(1, 41) if position[("answered", i)] > position[("shown", i)]]
    assert late == []


async def test_commit_listener_gets_rejections_too(store: Store) -> None:
    rejected: list[Rejection] = []
    store.on_commit(lambda events, rejections: rejected.extend(rejections))
    rejection = await store.reject(
        method="PUT", path="/webhook", remote_addr=None, size=0, status=405, reason="use POST"
    )
    assert rejected == [rejection]


def test_a_failing_listener_does_not_lose_deliveries(store: Store) -> None:
    calls: list[int] = []

    def broken(events: list[Event], rejections: list[Rejection]) -> None:
        raise RuntimeError("listener bug")

    store.on_commit(broken)
    store.on_commit(lambda events, rejections: calls.extend(e.id for e in events))
    event = put(store, b"{}")
    assert calls == [event.id]
    assert store.get(event.id) is not None
