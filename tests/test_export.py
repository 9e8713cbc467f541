"""``tavus-monitor export``: what a user gets in each format, from a real store, through the
installed command (and, for memory, a store of 20,000 events)."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_indexed
from headless_process import tavus_monitor

from tavus_monitor import samples
from tavus_monitor.events import Event
from tavus_monitor.export import ANSWER_BODY
from tavus_monitor.jsonlines import event_line
from tavus_monitor.store import Delivery, EventQuery, ReadOnlyStore, Store
from tavus_monitor.storewalk import walk

SECRET = "SECRETtoken0123456789"
HOOK_URL = f"https://abc.ngrok-free.app/webhook/{SECRET}"
HEADERS = (
    ("host", "abc.ngrok-free.app"),
    ("user-agent", "python-requests/2.31"),
    ("content-type", "application/json"),
    ("x-forwarded-proto", "https"),
)
NOW = time.time()
OLD = NOW - 3 * 86400
"""When the first conversation arrived: three days ago."""
NOT_UTF8 = b"\xff\xfe{not json, not text\x00"
TRUNCATED = b'{"event_type": "system.shutdown", "properties": {'
HOSTILE_TYPE = b'{"event_type": "../../etc/x y\\u0007z", "conversation_id": "cNEW"}'


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        tavus_monitor(*args), capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )


def fill(path: Path) -> list[Event]:
    """Two conversations (one three days old), a job, a truncated, a binary and a hostile body."""
    old = samples.render_many(
        [name for name, _ in samples.CONVERSATION_SEQUENCE], conversation_id="cOLD"
    )
    new = samples.render_many(
        [*(name for name, _ in samples.CONVERSATION_SEQUENCE), "replica.ready"],
        conversation_id="cNEW",
        webhook_url=HOOK_URL,
    )
    deliveries = [
        Delivery(body=s.body, headers=HEADERS, received_at=OLD + n, path="/webhook/<token>")
        for n, s in enumerate(old)
    ]
    deliveries += [
        Delivery(body=body, headers=HEADERS, received_at=NOW - 600 + n, path="/webhook/<token>")
        for n, body in enumerate([*(s.body for s in new), TRUNCATED, NOT_UTF8, HOSTILE_TYPE])
    ]
    with Store(path) as store:
        events = [store.submit(delivery).result(timeout=30) for delivery in deliveries]
        wait_indexed(store)  # for --search
        return events


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Path, list[Event]]:
    path = tmp_path / "events.db"
    return path, fill(path)


def summary(stderr: str) -> str:
    """The one line on stderr: ``Exported N events to WHERE.``"""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert re.fullmatch(r"Exported [\d,]+ events? to .+\.", lines[0]), lines[0]
    return lines[0]


# ------------------------------------------------------------------ raw


def test_raw_files_are_the_stored_bodies_byte_for_byte(
    stored: tuple[Path, list[Event]], tmp_path: Path
) -> None:
    db, events = stored
    out = tmp_path / "fixtures" / "today"  # made, parents and all
    result = run("export", "--db", str(db), "--format", "raw", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert summary(result.stderr) == f"Exported {len(events)} events to {out}."
    files = sorted(out.iterdir())
    assert [file.read_bytes() for file in files] == [event.body for event in events]
    names = [file.name for file in files]
    assert "000004-system.shutdown.json" in names
    by_body = {file.read_bytes(): file.name for file in files}
    assert by_body[TRUNCATED].endswith("-malformed.json")
    assert by_body[NOT_UTF8].endswith("-malformed.bin")
    hostile = by_body[HOSTILE_TYPE]
    assert re.fullmatch(r"\d{6}-[A-Za-z0-9._-]+\.json", hostile), hostile
    assert not hostile.startswith(".")


def test_raw_needs_a_directory(stored: tuple[Path, list[Event]], tmp_path: Path) -> None:
    result = run("export", "--db", str(stored[0]), "--format", "raw", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "tavus-monitor export: --format raw writes one file per event: pass --out DIR."
    )


# ---------------------------------------------------------------- jsonl


def test_jsonl_is_every_event_oldest_first_as_history_writes_it(
    stored: tuple[Path, list[Event]], tmp_path: Path
) -> None:
    db, events = stored
    result = run("export", "--db", str(db), cwd=tmp_path)
    history = run("history", "--db", str(db), "--format", "jsonl", "--limit", "1000", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert summary(result.stderr) == f"Exported {len(events)} events to stdout."
    lines = result.stdout.splitlines()
    assert lines == [event_line(event) for event in events]
    records = [json.loads(line) for line in lines]
    # history may add what the monitor did with each event (its attempts to forward it)
    shown = [json.loads(line) for line in reversed(history.stdout.splitlines())]
    assert records == [{k: v for k, v in r.items() if k != "attempts"} for r in shown]
    assert [record["id"] for record in records] == [event.id for event in events]
    assert base64.b64decode(records[-2]["body_base64"]) == NOT_UTF8
    assert SECRET not in result.stdout


def test_filters_and_since(stored: tuple[Path, list[Event]], tmp_path: Path) -> None:
    db, events = stored

    def ids(*args: str) -> list[int]:
        result = run("export", "--db", str(db), *args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return [json.loads(line)["id"] for line in result.stdout.splitlines()]

    recent = [event.id for event in events if event.received_at >= NOW - 3600]
    assert len(recent) == len(events) - len(samples.CONVERSATION_SEQUENCE)
    assert ids("--since", "1h") == recent
    assert ids("--since", "90m") == recent
    assert ids("--since", "7d") == [event.id for event in events]
    yesterday = (datetime.fromtimestamp(NOW) - timedelta(days=1)).date().isoformat()
    assert ids("--since", yesterday) == recent
    shutdowns = [event.id for event in events if event.event_type == "system.shutdown"]
    assert len(shutdowns) == 2
    assert ids("--type", "system.shutdown") == shutdowns
    assert ids("--type", "system.shutdown", "--since", "2h") == shutdowns[1:]
    assert ids("--conversation", "cOLD") == [e.id for e in events if e.conversation_id == "cOLD"]
    assert ids("--family", "replica") == [e.id for e in events if e.family == "replica"]
    transcripts = [e.id for e in events if e.event_type == "application.transcription_ready"]
    assert ids("--search", "Alfama tram") == transcripts
    assert ids("--search", "Alfama", "--conversation", "cNEW") == transcripts[1:]
    assert ids("--search", "nosuchwordanywhere") == []

    bad = run("export", "--db", str(db), "--since", "yesterday-ish", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.startswith("tavus-monitor export: --since 'yesterday-ish' is neither")
    assert len(bad.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------ har

_TYPES: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "int": int,
    "num": (int, float),
    "obj": dict,
    "list": list,
}

HAR_SPEC: dict[str, dict[str, str]] = {
    # HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/): required keys and their types.
    "log": {"version": "str", "creator": "obj", "entries": "list"},
    "creator": {"name": "str", "version": "str"},
    "entry": {
        "startedDateTime": "str",
        "time": "num",
        "request": "obj",
        "response": "obj",
        "cache": "obj",
        "timings": "obj",
    },
    "request": {
        "method": "str",
        "url": "str",
        "httpVersion": "str",
        "cookies": "list",
        "headers": "list",
        "queryString": "list",
        "headersSize": "int",
        "bodySize": "int",
    },
    "response": {
        "status": "int",
        "statusText": "str",
        "httpVersion": "str",
        "cookies": "list",
        "headers": "list",
        "content": "obj",
        "redirectURL": "str",
        "headersSize": "int",
        "bodySize": "int",
    },
    "content": {"size": "int", "mimeType": "str"},
    "postData": {"mimeType": "str"},
    "timings": {"send": "num", "wait": "num", "receive": "num"},
    "pair": {"name": "str", "value": "str"},
}
ISO_8601 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def har_problems(document: Any) -> list[str]:
    """What keeps ``document`` from being an HTTP Archive 1.2 (empty when nothing)."""
    problems: list[str] = []

    def check(value: Any, kind: str, where: str) -> bool:
        """Add what is wrong with ``value`` as a ``kind``; whether it was all right."""
        if not isinstance(value, dict):
            problems.append(f"{where} is not an object")
            return False
        before = len(problems)
        for key, expected in HAR_SPEC[kind].items():
            if key not in value:
                problems.append(f"{where}.{key} is missing")
            elif isinstance(value[key], bool) or not isinstance(value[key], _TYPES[expected]):
                problems.append(f"{where}.{key} is not {expected}")
        for key in value:
            if key.startswith("_"):
                continue  # custom fields are allowed
            if key not in HAR_SPEC[kind] and key not in OPTIONAL[kind]:
                problems.append(f"{where}.{key} is not a HAR 1.2 field")
        return len(problems) == before

    if not isinstance(document, dict) or not check(document.get("log"), "log", "log"):
        return problems or ["no log"]
    log = document["log"]
    if log["version"] != "1.2":
        problems.append("log.version is not 1.2")
    check(log["creator"], "creator", "log.creator")
    for n, entry in enumerate(log["entries"]):
        where = f"entries[{n}]"
        if not check(entry, "entry", where):
            continue
        if not ISO_8601.fullmatch(entry["startedDateTime"]):
            problems.append(f"{where}.startedDateTime is not ISO 8601")
        request, response = entry["request"], entry["response"]
        if check(request, "request", f"{where}.request"):
            for pair in (*request["headers"], *request["queryString"]):
                check(pair, "pair", f"{where}.request header")
            if "postData" in request:
                post = request["postData"]
                check(post, "postData", f"{where}.request.postData")
                if "text" in post and "params" in post:
                    problems.append(f"{where}.postData has both text and params")
        if check(response, "response", f"{where}.response"):
            check(response["content"], "content", f"{where}.response.content")
            for pair in response["headers"]:
                check(pair, "pair", f"{where}.response header")
        check(entry["timings"], "timings", f"{where}.timings")
    return problems


OPTIONAL: dict[str, set[str]] = {
    "log": {"browser", "pages", "comment"},
    "creator": {"comment"},
    "entry": {"pageref", "serverIPAddress", "connection", "comment"},
    "request": {"postData", "comment"},
    "response": {"comment"},
    "content": {"compression", "text", "encoding", "comment"},
    "postData": {"params", "text", "comment"},
    "timings": {"blocked", "dns", "connect", "ssl", "comment"},
    "pair": {"comment"},
}


def test_har_is_an_http_archive_of_what_arrived_and_what_was_answered(
    stored: tuple[Path, list[Event]], tmp_path: Path
) -> None:
    db, events = stored
    out = tmp_path / "today.har"
    result = run("export", "--db", str(db), "--format", "har", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert summary(result.stderr) == f"Exported {len(events)} events to {out}."
    text = out.read_text(encoding="utf-8")
    assert SECRET not in text
    document = json.loads(text)
    assert har_problems(document) == []
    entries = document["log"]["entries"]
    assert len(entries) == len(events)
    for entry, event in zip(entries, events, strict=True):
        request = entry["request"]
        assert request["method"] == "POST"
        assert request["url"] == "https://abc.ngrok-free.app/webhook/<token>"
        assert request["bodySize"] == len(event.body)
        assert {"name": "user-agent", "value": "python-requests/2.31"} in request["headers"]
        post = request["postData"]
        if event.body == NOT_UTF8:
            assert base64.b64decode(post["_base64"]) == NOT_UTF8
            assert "not UTF-8" in post["comment"]
        elif event.conversation_id == "cNEW" and SECRET.encode() in event.body:
            assert post["text"] == event.body.decode().replace(SECRET, "<token>")
            assert "redacted" in post["comment"]
        else:
            assert post["text"].encode() == event.body
        assert entry["response"]["status"] == 200
        assert entry["response"]["content"]["text"].encode() == ANSWER_BODY
        assert datetime.fromisoformat(entry["startedDateTime"]).timestamp() == pytest.approx(
            event.received_at, abs=0.001
        )


def test_the_validator_catches_a_broken_archive() -> None:
    broken = {"log": {"version": "1.1", "creator": {"name": "x"}, "entries": [{"time": "1"}]}}
    problems = har_problems(broken)
    assert "log.version is not 1.2" in problems
    assert "log.creator.version is missing" in problems
    assert "entries[0].time is not num" in problems
    assert "entries[0].request is missing" in problems


def test_the_archive_answer_is_what_the_server_answers() -> None:
    from tavus_monitor import server

    assert server._SUCCESS_BYTES == ANSWER_BODY


# ------------------------------------------------------------- streaming


def test_the_store_is_read_in_pages_whatever_their_size(stored: tuple[Path, list[Event]]) -> None:
    """Small pages give the same events as one big one: a page boundary, even inside one
    event's transcript turns (the search index has a row per turn), loses or repeats nothing."""
    db, events = stored
    with ReadOnlyStore(db) as store:
        for page in (1, 2, 3, 7, 500):
            assert [e.id for e in walk(store, page=page)] == [e.id for e in events]
            found = [e.id for e in walk(store, words="Lisbon", page=page)]
            assert found == [e.id for e in events if b"Lisbon" in e.body]
            assert {e.id for e in events if e.event_type.endswith("transcription_ready")} <= set(
                found
            )
            query = EventQuery(conversation_id="cNEW")
            assert [e.id for e in walk(store, query, page=page)] == [
                e.id for e in events if e.conversation_id == "cNEW"
            ]


BIG = 20_000

PEAK_RSS = """
import sys
from tavus_monitor.cli import main
code = main(sys.argv[1:])
with open("/proc/self/status") as status:
    print([line.split()[1] for line in status if line.startswith("VmHWM:")][0], file=sys.stderr)
sys.exit(code)
"""
"""``tavus-monitor ARGS`` that prints its peak RSS in KiB: Linux's VmHWM, the peak of this
program alone (getrusage's ru_maxrss survives exec: it would count pytest's memory, copied at
fork, as the child's)."""


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "events.db"
    names = list(samples.ALL_SAMPLES)
    with Store(path) as store:
        pending: list[concurrent.futures.Future[Event]] = []
        conversation = 0
        while len(pending) < BIG:
            conversation += 1
            rendered = samples.render_many(names, conversation_id=f"c{conversation:06d}")
            pending += [store.submit(Delivery(body=sample.body)) for sample in rendered]
        for future in pending:
            future.result(timeout=60)
    return path


def peak_rss(*args: str, cwd: Path) -> int:
    """Bytes of memory at most resident in ``tavus-monitor *args`` (run in a new Python)."""
    result = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return int(result.stderr.strip().splitlines()[-1]) * 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's VmHWM")
@pytest.mark.parametrize("fmt", ["jsonl", "har"])
def test_exporting_20k_events_takes_no_more_memory_than_exporting_one_call(
    big_store: Path, tmp_path: Path, fmt: str
) -> None:
    whole, one = tmp_path / f"all.{fmt}", tmp_path / f"one.{fmt}"
    common = ("export", "--db", str(big_store), "--format", fmt)
    small = peak_rss(*common, "--conversation", "c000001", "--out", str(one), cwd=tmp_path)
    large = peak_rss(*common, "--out", str(whole), cwd=tmp_path)
    written = whole.stat().st_size
    # 15 MB of lines, 26 MB of HAR. Holding the events instead costs about four times that
    # (history --format jsonl --limit 20000 peaks 60 MB above this export, which adds nothing).
    assert written > 12_000_000
    with whole.open(encoding="utf-8") as handle:
        if fmt == "har":
            assert len(json.load(handle)["log"]["entries"]) >= BIG
        else:
            assert sum(1 for _ in handle) >= BIG
    assert large - small < 8_000_000, f"{fmt}: {small:,} → {large:,} bytes for {written:,}"
