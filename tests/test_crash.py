"""The headless process as a user runs it: killed with -9 under load, stopped with signals.

- ``kill -9`` in the middle of a burst of concurrent posts loses no delivery
  that was answered 200: after a restart on the same file every one is there,
  byte-exact, once.
- SIGTERM and SIGINT stop the process with exit code 0, and stdout then holds
  exactly one JSON line per posted event (nothing else), token-free.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FIXTURES, fixture_bytes
from headless_process import HeadlessProcess, tavus_monitor

TOKEN = "crash-test-token-0123456789"
LINE_KEYS = {
    "id",
    "received_at",
    "family",
    "event_type",
    "conversation_id",
    "duplicate_of",
    "error",
    "payload",
}

TOTAL_POSTS = 2000
CLIENTS = 8
KILL_AFTER = 700
"""Acknowledged posts after which the process is killed (well before TOTAL_POSTS)."""


def headless_args(data_dir: Path, db: Path) -> tuple[str, ...]:
    return (
        "--no-tunnel",
        "--port",
        "0",
        "--db",
        str(db),
        "--data-dir",
        str(data_dir),
        "--token",
        TOKEN,
    )


SHUTDOWN = json.loads(fixture_bytes("conversation.system.shutdown.json"))


def delivery(conversation_id: str) -> bytes:
    """A realistic shutdown callback, unique by its conversation id."""
    return json.dumps({**SHUTDOWN, "conversation_id": conversation_id}).encode()


# ---------------------------------------------------------------- kill -9


def test_kill_9_under_load_loses_no_acknowledged_delivery(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    args = headless_args(tmp_path, db)
    sent: dict[str, bytes] = {}
    acknowledged: set[str] = set()
    refused: list[tuple[str, int]] = []
    lock = threading.Lock()
    enough = threading.Event()

    def sender(worker: int, url: str) -> None:
        with httpx.Client(timeout=30) as http:
            for number in range(TOTAL_POSTS // CLIENTS):
                conversation_id = f"crash-{worker}-{number}"
                body = delivery(conversation_id)
                with lock:
                    sent[conversation_id] = body
                try:
                    response = http.post(url, content=body)
                except httpx.TransportError:
                    return  # the monitor is gone
                with lock:
                    if response.status_code != 200:
                        refused.append((conversation_id, response.status_code))
                        continue
                    acknowledged.add(conversation_id)
                    if len(acknowledged) >= KILL_AFTER:
                        enough.set()

    with HeadlessProcess(*args) as first:
        url = first.wait_for_callback_url()
        with ThreadPoolExecutor(CLIENTS) as pool:
            senders = [pool.submit(sender, worker, url) for worker in range(CLIENTS)]
            reached = enough.wait(timeout=60)
            os.kill(first.pid, signal.SIGKILL)
            for finished in senders:
                finished.result()
        killed_with = first.finish()

    assert reached, f"only {len(acknowledged)} posts acknowledged before the timeout"
    assert killed_with == -signal.SIGKILL
    assert refused == []
    assert KILL_AFTER <= len(acknowledged) < TOTAL_POSTS, "the kill did not land mid-load"

    # Restart on the same file: it opens, counts what is there and takes new posts.
    with HeadlessProcess(*args) as second:
        url = second.wait_for_callback_url()
        with httpx.Client(timeout=30) as http:
            health = http.get(url.split("/webhook/")[0] + "/healthz").json()
            after = http.post(url, content=delivery("after-restart"))
        assert after.status_code == 200
        assert second.stop(signal.SIGTERM) == 0
    assert health["events"] >= len(acknowledged)
    restarted_lines = second.stdout.splitlines()
    assert [json.loads(line)["conversation_id"] for line in restarted_lines] == ["after-restart"]

    history = subprocess.run(
        tavus_monitor(
            "history",
            "--db",
            str(db),
            "--data-dir",
            str(tmp_path),
            "--format",
            "jsonl",
            "--limit",
            "100000",
        ),
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        check=True,
    )
    records = [json.loads(line) for line in history.stdout.decode("utf-8").splitlines()]
    stored = [record["conversation_id"] for record in records]
    assert len(stored) == len(set(stored)), "a delivery was stored twice"
    missing = acknowledged - set(stored)
    assert not missing, f"{len(missing)} acknowledged deliveries lost, e.g. {sorted(missing)[:5]}"
    assert stored[0] == "after-restart", "ids must continue after the crash"
    unacknowledged = set(stored) - acknowledged - {"after-restart"}
    assert unacknowledged <= set(sent), "something was stored that was never sent"
    assert len(unacknowledged) <= CLIENTS, "more stored-but-unanswered posts than were in flight"

    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        bodies = dict(check.execute("SELECT conversation_id, body FROM events").fetchall())
    corrupted = [cid for cid in acknowledged if bodies[cid] != sent[cid]]
    assert corrupted == []


# ---------------------------------------------------------------- clean stops


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_cleanly_with_one_json_line_per_event(
    tmp_path: Path, signum: signal.Signals
) -> None:
    transcript = json.loads(fixture_bytes("conversation.application.transcription_ready.json"))
    transcript["webhook_url"] = f"https://example.ngrok-free.app/webhook/{TOKEN}"
    bodies: list[tuple[bytes, str]] = [
        (fixture_bytes("conversation.system.replica_joined.json"), "system.replica_joined"),
        (fixture_bytes("conversation.system.replica_joined.json"), "system.replica_joined"),
        (json.dumps(transcript).encode(), "application.transcription_ready"),
        ((FIXTURES / "video.ready.json").read_bytes(), "video.ready"),
        (fixture_bytes("replica.error.json"), "replica.error"),
        (b"\x1b[2J not json at all", "malformed"),
        (b'{"bad": "\xff\xfe"}', "malformed"),
        (b"", "malformed"),
        (b'{"hello": "world"}', "unknown"),
    ]

    with HeadlessProcess(*headless_args(tmp_path, tmp_path / "events.db")) as process:
        url = process.wait_for_callback_url()
        with httpx.Client(timeout=30) as http:
            for body, _ in bodies:
                response = http.post(url, content=body)
                assert response.status_code == 200, response.text
        code = process.stop(signum)

    assert code == 0, process.stderr
    assert "Stopped." in process.stderr
    assert "Traceback" not in process.stderr
    out = process.stdout
    assert out.endswith("\n")
    lines = out.splitlines()
    assert len(lines) == len(bodies), out
    records: list[dict[str, Any]] = [json.loads(line) for line in lines]
    for record in records:
        assert isinstance(record, dict)
        assert record.keys() >= LINE_KEYS, sorted(record)
    ids = [record["id"] for record in records]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert [record["event_type"] for record in records] == [expected for _, expected in bodies]

    joined, again, transcript_line = records[0], records[1], records[2]
    assert joined["duplicate_of"] is None
    assert again["duplicate_of"] == joined["id"]
    assert joined["conversation_id"] == "c7f3a91b2d04"
    assert transcript_line["payload"]["properties"] == transcript["properties"]
    for record in records[5:8]:
        assert record["family"] == "malformed"
        assert record["payload"] is None
        assert record["error"]
    assert TOKEN not in out, "the webhook token leaked into stdout"
    assert "\x1b" not in out, "a raw escape character reached stdout"
