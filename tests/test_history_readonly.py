"""``history`` only reads the store (issue 9, item 9).

It used to open the store as the monitor does: create and migrate it, switch
it to WAL and start a writer. So it failed on a read-only file or mount,
rewrote an older tavus-monitor's file, and answered a damaged, newer or
unreadable file with a traceback. Every test runs the real ``tavus-monitor``
command on a real SQLite file and checks what a user would see: the output,
one sentence on stderr and exit 2 when the file cannot be read, and a file
left exactly as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tavus_monitor import samples
from tavus_monitor.events import body_digest, classify
from tavus_monitor.store import SCHEMA_VERSION, Delivery, Store
from tavus_monitor.storefile import MIGRATIONS

CONSOLE_SCRIPT = Path(sys.executable).parent / "tavus-monitor"
EXIT_OK, EXIT_USAGE = 0, 2

SCHEMA_1 = MIGRATIONS[0] + ";\nPRAGMA user_version = 1;"
"""The first schema, as a file an older tavus-monitor left (migrations are append-only,
so the first one is what that version made)."""

BODIES = [
    sample.body
    for sample in samples.render_many(
        ["system.replica_joined", "system.shutdown", "replica.ready"], conversation_id="cOLD"
    )
]


def run(
    *args: str, cwd: Path, user: list[str] | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real ``tavus-monitor *args`` (this environment's console script), with a deadline."""
    return subprocess.run(
        [*(user or []), str(CONSOLE_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env,
        check=False,
    )


def one_sentence(stderr: str) -> str:
    """What a refusal must look like: one line ending in a full stop, no traceback."""
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("tavus-monitor history: ")
    assert lines[0].endswith(".")
    return lines[0]


def older_store(path: Path) -> None:
    """A schema-1 store in rollback-journal mode (what tavus-monitor 0.1 left), with events."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = DELETE")
    connection.executescript(SCHEMA_1)
    for number, body in enumerate(BODIES):
        meaning = classify(body)
        connection.execute(
            "INSERT INTO events (received_at, family, event_type, conversation_id, subject_id, "
            "summary, error, occurred_at, severity, body, body_sha256, headers, path) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                1_752_216_517.0 + number,
                str(meaning.family),
                meaning.event_type,
                meaning.conversation_id,
                meaning.subject_id,
                meaning.summary,
                meaning.error,
                meaning.occurred_at,
                str(meaning.severity),
                body,
                body_digest(body),
                json.dumps([["content-type", "application/json"]]),
                "/webhook/<token>",
            ),
        )
    connection.execute(
        "INSERT INTO rejected (received_at, method, path, remote_addr, size, status, reason) "
        "VALUES (1752216600.0, 'GET', '/', '203.0.113.9', NULL, 404, 'no such path')"
    )
    connection.close()


def snapshot(path: Path) -> tuple[str, list[str], int, str]:
    """The file's bytes (digest), the files beside it, its schema version and journal mode.

    Read from the file's header, not through SQLite, which would make ``-wal``
    and ``-shm`` files for a store in WAL mode just by looking.
    """
    data = path.read_bytes()
    beside = sorted(entry.name for entry in path.parent.iterdir())
    version = int.from_bytes(data[60:64], "big")  # the header's user_version
    mode = "wal" if data[18:20] == b"\x02\x02" else "rollback"  # format versions 2: WAL
    return hashlib.sha256(data).hexdigest(), beside, version, mode


def test_history_reads_an_older_store_without_touching_it(tmp_path: Path) -> None:
    db = tmp_path / "store" / "events.db"
    db.parent.mkdir()
    older_store(db)
    before = snapshot(db)
    assert before[2:] == (1, "rollback")

    events = run("history", "--db", str(db), "--format", "jsonl", cwd=tmp_path)
    rejected = run("history", "--db", str(db), "--rejected", cwd=tmp_path)
    table = run("history", "--db", str(db), "--conversation", "cOLD", cwd=tmp_path)

    assert events.returncode == EXIT_OK, events.stderr
    records = [json.loads(line) for line in events.stdout.splitlines()]
    assert [record["id"] for record in records] == [3, 2, 1]
    assert [record["event_type"] for record in records] == [
        "replica.ready",
        "system.shutdown",
        "system.replica_joined",
    ]
    assert rejected.returncode == EXIT_OK, rejected.stderr
    assert rejected.stdout.splitlines()[1].endswith("no such path")
    assert table.returncode == EXIT_OK, table.stderr
    assert len(table.stdout.splitlines()) == 1 + 2  # header and the conversation's two
    # Not migrated, not switched to WAL, no -wal / -shm / -journal left beside it.
    assert snapshot(db) == before


def test_history_reads_a_store_while_the_monitor_writes_it(tmp_path: Path) -> None:
    """Read-only is not a snapshot: what the running monitor committed (in its WAL) shows."""
    db = tmp_path / "events.db"
    with Store(db) as store:
        for body in BODIES:
            store.submit(Delivery(body=body)).result(timeout=30)
        assert db.with_name("events.db-wal").stat().st_size > 0  # not yet checkpointed
        done = run("history", "--db", str(db), "--format", "jsonl", cwd=tmp_path)
        assert done.returncode == EXIT_OK, done.stderr
        assert len(done.stdout.splitlines()) == len(BODIES)
        store.submit(Delivery(body=b'{"replica_id": "r2", "status": "ready"}')).result(30)
        again = run("history", "--db", str(db), "--family", "replica", cwd=tmp_path)
        assert again.returncode == EXIT_OK, again.stderr
        assert "r2" in again.stdout


def test_history_of_an_empty_file_says_nothing_is_stored_and_leaves_it_empty(
    tmp_path: Path,
) -> None:
    db = tmp_path / "events.db"
    db.touch()
    done = run("history", "--db", str(db), cwd=tmp_path)
    assert done.returncode == EXIT_OK
    assert done.stdout == ""
    assert "No events stored yet" in done.stderr
    assert db.stat().st_size == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["events.db"]


def corrupt(path: Path) -> None:
    path.write_bytes(os.urandom(8192))


def newer(path: Path) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.executescript(SCHEMA_1.replace("user_version = 1", "user_version = 99"))
    connection.close()


def another_programs(path: Path) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("CREATE TABLE notes (text TEXT)")
    connection.close()


def directory(path: Path) -> None:
    path.mkdir()


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (corrupt, "is not a tavus-monitor event store, or it is damaged"),
        (newer, "was written by a newer tavus-monitor (schema 99, this one knows"),
        (another_programs, "is an SQLite file but not a tavus-monitor event store"),
        (directory, "is not a file"),
    ],
    ids=["corrupt", "newer-schema", "not-a-store", "a-directory"],
)
def test_history_refuses_what_it_cannot_read_in_one_sentence(
    tmp_path: Path, make: Callable[[Path], None], said: str
) -> None:
    db = tmp_path / "events.db"
    make(db)
    before = sorted(path.name for path in tmp_path.iterdir())
    contents = db.read_bytes() if db.is_file() else None

    done = run("history", "--db", str(db), cwd=tmp_path)

    assert done.returncode == EXIT_USAGE
    assert done.stdout == ""
    sentence = one_sentence(done.stderr)
    assert said in sentence
    assert str(db) in sentence
    assert "--db" in sentence or "upgrade tavus-monitor" in sentence  # what to do
    assert sorted(path.name for path in tmp_path.iterdir()) == before
    if contents is not None:
        assert db.read_bytes() == contents


# ------------------------------------------------------------ as another user


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every user can read and only root can write (pytest's are root-only)."""
    with tempfile.TemporaryDirectory(prefix="tavus-monitor-ro-") as name:
        path = Path(name)
        path.chmod(0o755)
        yield path


def runnable_as_nobody(shared_dir: Path) -> str | None:
    """Why ``tavus-monitor`` cannot be run as user nobody here, or None if it can."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return "needs root, to run the command as another user"
    if shutil.which("setpriv") is None:
        return "needs setpriv (util-linux)"
    done = run("--version", cwd=shared_dir, user=NOBODY)
    if done.returncode != 0:  # e.g. a virtual environment whose Python is under /root
        return f"user nobody cannot run {CONSOLE_SCRIPT}: {done.stderr.strip()[-200:]}"
    return None


def test_history_as_another_user_reads_a_file_it_cannot_write(shared_dir: Path) -> None:
    """A root-owned 0644 store in a root-owned 0755 directory: a read-only file and mount.

    The store is in WAL mode and was closed cleanly, so SQLite has no ``-shm``
    index and cannot make one in this directory: that is where ``mode=ro``
    alone fails and the store is opened ``immutable``.
    """
    problem = runnable_as_nobody(shared_dir)
    if problem is not None:
        pytest.skip(problem)
    db = shared_dir / "events.db"
    with Store(db) as store:
        for body in BODIES:
            store.submit(Delivery(body=body)).result(timeout=30)
    db.chmod(0o644)
    private = shared_dir / "private.db"
    shutil.copyfile(db, private)
    private.chmod(0o600)
    before = snapshot(db)
    assert before[1:] == (
        ["events.db", "private.db"],
        SCHEMA_VERSION,
        "wal",
    )  # no -shm: immutable it is
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(shared_dir),
        "TAVUS_MONITOR_DATA_DIR": str(shared_dir / "data"),
        "XDG_CONFIG_HOME": str(shared_dir / "config"),
        **{name: os.environ[name] for name in ("PYTHONPATH",) if name in os.environ},
    }

    done = run(
        "history", "--db", str(db), "--format", "jsonl", cwd=shared_dir, user=NOBODY, env=env
    )
    refused = run("history", "--db", str(private), cwd=shared_dir, user=NOBODY, env=env)

    assert done.returncode == EXIT_OK, done.stderr
    assert len(done.stdout.splitlines()) == len(BODIES)
    assert snapshot(db) == before
    assert refused.returncode == EXIT_USAGE
    assert "Permission denied" in one_sentence(refused.stderr)
