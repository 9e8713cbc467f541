"""Full-text search (issue 11, item 5): the index, its migration, the writer, ``history``.

Every test uses real SQLite files, the real writer process and, for ``history``,
the installed ``tavus-monitor`` command run from a temporary directory.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import wait_indexed

from tavus_monitor import samples
from tavus_monitor.events import body_digest, classify
from tavus_monitor.search import index_rows, match_expression, split_rowid
from tavus_monitor.store import (
    Delivery,
    EventQuery,
    ReadOnlyStore,
    SearchUnavailable,
    Store,
)
from tavus_monitor.storefile import MIGRATIONS, SEARCH_SCHEMA, SEARCH_TABLE

CONSOLE_SCRIPT = Path(sys.executable).parent / "tavus-monitor"
CONVERSATION = [name for name, _ in samples.CONVERSATION_SEQUENCE]
HOSTILE = "evil\x1b[2J\x1b]52;c;SGVsbG8=\x07word\u202eabc [bold]markup[/bold]"


def conversation(conversation_id: str) -> list[bytes]:
    return [s.body for s in samples.render_many(CONVERSATION, conversation_id=conversation_id)]


def transcript(conversation_id: str, *turns: tuple[str, str]) -> bytes:
    data = samples.load("application.transcription_ready")
    data["conversation_id"] = conversation_id
    data["properties"]["transcript"] = [{"role": r, "content": c} for r, c in turns]
    return json.dumps(data).encode()


def put(store: Store, body: bytes) -> int:
    """Store ``body``, and wait until search finds it (indexing follows the answer)."""
    event_id = store.submit(Delivery(body=body)).result(timeout=30).id
    wait_indexed(store)
    return event_id


def index_rowids(path: Path) -> list[int]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute(f"SELECT rowid FROM {SEARCH_TABLE} ORDER BY rowid")]


def expected_rowids(path: Path) -> list[int]:
    """What the index should hold for every original (not redelivered) event of the file."""
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT id, summary, body FROM events WHERE duplicate_of IS NULL ORDER BY id"
        ).fetchall()
    expected = []
    for event_id, summary, body in rows:
        payload = classify(bytes(body)).parsed
        value = payload.value if payload is not None else None
        for row in index_rows(value, summary, body=bytes(body)):
            expected.append(event_id << 20 | row.turn)
    return sorted(expected)


def schema_3_store(path: Path, bodies: list[bytes]) -> None:
    """A store as the tavus-monitor before the index left it (schema 3), with events."""
    db = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[: SEARCH_SCHEMA - 1]:
        db.executescript(script)
    db.execute(f"PRAGMA user_version = {SEARCH_SCHEMA - 1}")
    for number, body in enumerate(bodies):
        meaning = classify(body)
        db.execute(
            "INSERT INTO events (received_at, family, event_type, conversation_id, subject_id, "
            "summary, severity, body, body_sha256, headers, path) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '[]', '/webhook')",
            (
                1_752_216_517.0 + number,
                str(meaning.family),
                meaning.event_type,
                meaning.conversation_id,
                meaning.subject_id,
                meaning.summary,
                str(meaning.severity),
                body,
                body_digest(body),
            ),
        )
    db.close()


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CONSOLE_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        check=False,
    )


# ------------------------------------------------------------ the index


def test_a_search_finds_a_word_in_a_transcript_turn_and_names_the_turn(tmp_path: Path) -> None:
    with Store(tmp_path / "events.db") as store:
        for body in conversation("cSEARCH1"):
            put(store, body)
        hits = store.search("Alfama")
        assert len(hits) == 1
        hit = hits[0]
        assert hit.event.event_type == "application.transcription_ready"
        assert hit.event.conversation_id == "cSEARCH1"
        assert (hit.turn, hit.role) == (6, "assistant")
        assert ("Alfama", True) in hit.snippet
        assert "Start in Alfama early" in "".join(part for part, _ in hit.snippet)
        # Every word must occur, in any case, accents ignored; newest first.
        found = [(h.event.event_type, h.turn) for h in store.search("lisbon may")]
        assert found == [
            ("application.post_call_action_executed", 0),
            ("application.transcription_ready", 5),
            ("application.transcription_ready", 4),
            ("conversation.objective.completed", 0),
        ]
        assert [h.turn for h in store.search("CASTLE tram")] == [6]
        assert store.search("Alfama castle nowhere") == []
        # Words outside transcripts: a payload's text, with the event named.
        video = store.search("shutdown participant")
        assert video
        assert all(h.turn == 0 for h in video)
        # As the dashboard types: the last word is a prefix.
        assert store.search("Alfa") == []
        assert [h.turn for h in store.search("Alfa", prefix_last=True)] == [6]
        assert [h.turn for h in store.search("Alfa*")] == [6]
        # Filters narrow it.
        assert store.search("Lisbon", query=EventQuery(event_type="system.shutdown")) == []


def test_what_is_typed_is_never_fts_syntax(tmp_path: Path) -> None:
    with Store(tmp_path / "events.db") as store:
        put(store, transcript("cSYNTAX", ("user", 'say "NEAR(a b)" AND -x col:umn 50% ok')))
        for words in ('"', "AND", "-x", "col:umn", "NEAR(a", "*", "^", "a OR", '""', "50%"):
            store.search(words)  # never an FTS5 syntax error
        assert [h.turn for h in store.search("col:umn")] == [1]
        assert [h.turn for h in store.search("near(a b)")] == [1]
        assert store.search("   ") == []
    assert match_expression("2025-07-11") == '"2025 07 11"'
    assert match_expression("") is None


def test_the_writer_keeps_the_index_in_step(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with Store(path) as store:
        for body in conversation("cSTEP1"):
            put(store, body)
        first = put(store, transcript("cSTEP2", ("user", "Where is Belém?"), ("assistant", "x")))
        # In the same transaction: searchable as soon as the delivery is answered
        # (and accents ignored).
        assert [(h.event.id, h.turn) for h in store.search("Belem")] == [(first, 1)]
        redelivered = put(
            store, transcript("cSTEP2", ("user", "Where is Belém?"), ("assistant", "x"))
        )
        assert store.get(redelivered).duplicate_of == first  # type: ignore[union-attr]
        put(store, b'{"event_type": "system.shutdown", "properties": {"shutdown_reason": "Sintra')
        put(store, b"\xff\xfe not utf-8 Cascais")
        assert [h.event.event_type for h in store.search("Sintra")] == ["malformed"]
        assert [h.event.event_type for h in store.search("Cascais")] == ["malformed"]
    assert index_rowids(path) == expected_rowids(path)
    assert not [value for value in index_rowids(path) if split_rowid(value)[0] == redelivered]


def test_the_webhook_url_and_its_token_are_not_indexed(tmp_path: Path) -> None:
    secret = "tokensecret0123456789"
    body = samples.render_many(
        ["system.shutdown"],
        conversation_id="cTOKEN",
        webhook_url=f"https://example.test/webhook/{secret}",
    )[0].body
    with Store(tmp_path / "events.db") as store:
        put(store, body)
        assert store.search(secret) == []
        assert store.search("cTOKEN")


def test_migrating_an_older_store_indexes_what_it_holds(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    bodies = [
        *conversation("cOLD1"),
        transcript("cOLD2", ("system", "prompt"), ("user", "a ship to Madeira")),
    ]
    schema_3_store(path, bodies)
    with (
        ReadOnlyStore(path) as old,
        pytest.raises(SearchUnavailable, match="run once on this store"),
    ):
        old.search("Alfama")
    with Store(path) as store:
        wait_indexed(store)  # what the older store holds is indexed once the writer starts
        assert [(h.event.conversation_id, h.turn) for h in store.search("Madeira")] == [
            ("cOLD2", 2)
        ]
        assert [h.turn for h in store.search("Alfama")] == [6]
        put(store, transcript("cNEW", ("user", "and then Madeira again")))
        assert [h.event.conversation_id for h in store.search("Madeira")] == ["cNEW", "cOLD2"]
    assert index_rowids(path) == expected_rowids(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] >= SEARCH_SCHEMA


def test_a_store_without_its_index_degrades_to_one_sentence_and_gets_it_back(
    tmp_path: Path,
) -> None:
    """As a store migrated where SQLite had no FTS5 is: searching says why, never crashes."""
    path = tmp_path / "events.db"
    with Store(path) as store:
        for body in conversation("cNOFTS"):
            put(store, body)
    with sqlite3.connect(path) as db:
        db.execute(f"DROP TABLE {SEARCH_TABLE}")
    with ReadOnlyStore(path) as reader, pytest.raises(SearchUnavailable) as caught:
        reader.search("Alfama")
    sentence = str(caught.value)
    assert "FTS5" in sentence
    assert sentence.endswith(".")
    assert "\n" not in sentence
    with Store(path) as store:  # a monitor whose SQLite has FTS5 builds it
        wait_indexed(store)
        assert [h.turn for h in store.search("Alfama")] == [6]


# ------------------------------------------------------------ history --search


def test_history_search_through_the_console_script(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with Store(path) as store:
        for body in conversation("cHIST1"):
            put(store, body)
        put(store, transcript("cHIST2", ("user", f"Alfama {HOSTILE}")))
    table = run("history", "--db", str(path), "--search", "alfama", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ID", "RECEIVED", "TYPE", "SUBJECT", "TURN", "MATCH"]
    assert len(lines) == 3
    assert "cHIST2" in lines[1]
    assert " 1 user " in lines[1]
    assert "cHIST1" in lines[2]
    assert " 6 assistant " in lines[2]
    assert "Start in Alfama early" in lines[2]
    for char in ("\x1b", "\x07", "\u202e"):
        assert char not in table.stdout
    assert "evil␛[2J␛]52;c;SGVsbG8=␇word<U+202E>abc" in lines[1]

    lines_out = run(
        "history", "--db", str(path), "--search", "Lisbon", "--format", "jsonl", cwd=tmp_path
    )
    assert lines_out.returncode == 0, lines_out.stderr
    records = [json.loads(line) for line in lines_out.stdout.splitlines()]
    assert [r["event_type"] for r in records] == [
        "application.post_call_action_executed",
        "application.transcription_ready",
        "conversation.objective.completed",
    ]
    limited = run("history", "--db", str(path), "--search", "Lisbon", "--limit", "1", cwd=tmp_path)
    assert len(limited.stdout.splitlines()) == 2


def test_history_search_on_a_store_before_the_index_says_so_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    schema_3_store(path, conversation("cPRE"))
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    result = run("history", "--db", str(path), "--search", "Alfama", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("tavus-monitor history: ")
    assert "search needs tavus-monitor (this version) to have run once" in lines[0]
    assert lines[0].endswith(".")
    # Read only: not migrated, not indexed.
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    plain = run("history", "--db", str(path), cwd=tmp_path)  # without --search it still reads
    assert plain.returncode == 0
    assert len(plain.stdout.splitlines()) == len(CONVERSATION) + 1
