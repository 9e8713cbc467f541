"""The store file as the user's disk sees it: private, noticed when it goes, fully streamed.

- The writer process runs the monitor's own package, whatever the working
  directory or ``PYTHONPATH`` holds.
- The data directory is 0700 and everything in it 0600, whatever the umask,
  and files an older version left 0644 are tightened.
- ``rm events.db*`` under a running monitor is noticed and said loudly; nothing
  is acknowledged into the deleted file; a new one is made and used.
- ``--ephemeral`` keeps events in a private temporary file, deleted at stop.
- A writer process that dies after committing a batch it never answered still
  gets those events onto the headless stream.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from headless_process import HeadlessProcess
from textual.app import App

from tavus_monitor import writer
from tavus_monitor.jsonlines import event_line
from tavus_monitor.store import Delivery, EventLines, EventQuery, Store, StoreError
from tavus_monitor.storefile import FileIdentity, StoreFileLost
from tavus_monitor.tui.clipboard import CLIPBOARD_FILE, copy_text

TOKEN = "store-file-test-token-0123"
DEADLINE = 30.0


def body(n: int) -> bytes:
    return json.dumps(
        {"conversation_id": f"c{n:06d}", "event_type": "system.replica_joined", "n": n}
    ).encode()


def stored_bodies(path: Path) -> list[bytes]:
    """The bodies in the file at ``path``, read by a connection of its own."""
    with sqlite3.connect(path) as db:
        return [bytes(row[0]) for row in db.execute("SELECT body FROM events ORDER BY id")]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The common umask, under which files are 0644 unless made private on purpose."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


# ------------------------------------------------ the writer's own package


async def test_the_writer_process_runs_the_monitors_package_not_the_working_directorys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``tavus_monitor`` in the working directory or on PYTHONPATH is not what the child runs."""
    for decoy in (tmp_path / "cwd", tmp_path / "pythonpath"):
        package = decoy / "tavus_monitor"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("raise ImportError('the decoy was imported')\n")
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "pythonpath"))
    with Store(tmp_path / "events.db") as store:
        async with asyncio.timeout(DEADLINE):
            event = await store.append(Delivery(body=body(1)))
    assert event.id == 1
    assert stored_bodies(tmp_path / "events.db") == [body(1)]


# ------------------------------------------------------- private files


def test_the_data_directory_and_every_file_in_it_are_private(
    tmp_path: Path, umask_022: None
) -> None:
    data_dir = tmp_path / "data"
    with HeadlessProcess(
        "--no-tunnel", "--port", "0", "--data-dir", str(data_dir), "--token", TOKEN
    ) as process:
        url = process.wait_for_callback_url()
        assert httpx.post(url, content=body(1), timeout=DEADLINE).status_code == 200
        names = {path.name: mode(path) for path in data_dir.iterdir()}
        assert process.stop() == 0
    assert mode(data_dir) == 0o700
    assert {"events.db", "events.db-wal", "events.db-shm", "tavus-monitor.log"} <= set(names)
    assert names == dict.fromkeys(names, 0o600), names


def test_files_an_older_version_left_readable_are_tightened(
    tmp_path: Path, umask_022: None
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    with Store(data_dir / "events.db") as store:
        store.submit(Delivery(body=body(1))).result(timeout=DEADLINE)
    (data_dir / "tavus-monitor.log").write_text("old log\n")
    (data_dir / CLIPBOARD_FILE).write_text("old copy\n")
    for path in [data_dir, *data_dir.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)

    with HeadlessProcess(
        "--no-tunnel", "--port", "0", "--data-dir", str(data_dir), "--token", TOKEN
    ) as process:
        process.wait_for_callback_url()
        assert process.stop() == 0
    assert mode(data_dir) == 0o700
    for name in ("events.db", "tavus-monitor.log"):
        assert mode(data_dir / name) == 0o600, name

    copy_text(App(), "https://example.ngrok.app/webhook/" + TOKEN, "the URL", data_dir)
    assert mode(data_dir / CLIPBOARD_FILE) == 0o600
    assert TOKEN in (data_dir / CLIPBOARD_FILE).read_text()


def test_a_new_clipboard_file_is_private(tmp_path: Path, umask_022: None) -> None:
    copy_text(App(), "a payload with the token " + TOKEN, "the payload", tmp_path / "data")
    assert mode(tmp_path / "data") == 0o700
    assert mode(tmp_path / "data" / CLIPBOARD_FILE) == 0o600


# ------------------------------------------------- the file goes away


def remove_store_files(path: Path) -> None:
    """``rm events.db*``."""
    for candidate in path.parent.glob(path.name + "*"):
        candidate.unlink()


async def test_a_store_file_deleted_while_idle_is_made_again_before_the_next_write(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.db"
    with Store(path) as store:
        notices: list[str] = []
        store.on_notice(notices.append)
        async with asyncio.timeout(DEADLINE):
            await store.append(Delivery(body=body(1)))
            remove_store_files(path)
            event = await store.append(Delivery(body=body(2)))
        assert event.id == 1  # a new file: ids start again
        assert stored_bodies(path) == [body(2)]
        assert [e.body for e in store.page(EventQuery())] == [body(2)]  # the reader follows
        assert len(notices) == 1
        assert "deleted or replaced" in notices[0]
        assert str(path) in notices[0]


def test_check_file_notices_a_deleted_file_with_no_traffic_and_says_it_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.db"
    with Store(path) as store:
        notices: list[str] = []
        store.on_notice(notices.append)
        store.submit(Delivery(body=body(1))).result(timeout=DEADLINE)
        assert store.check_file()
        remove_store_files(path)
        assert not store.check_file()
        assert store.check_file()
        assert path.exists()
        assert mode(path) == 0o600
        store.submit(Delivery(body=body(2))).result(timeout=DEADLINE)  # the writer follows
        assert stored_bodies(path) == [body(2)]
        assert len(notices) == 1, notices


def test_a_file_deleted_during_a_transaction_acknowledges_nothing(tmp_path: Path) -> None:
    """What went into the deleted file is refused (503, Tavus retries), and the next write lands.

    The deletion is timed with SQLite's own statement trace: right as COMMIT runs.
    """
    path = tmp_path / "events.db"
    from tavus_monitor.storefile import open_for_writing

    connection, identity = open_for_writing(path, synchronous="NORMAL")
    sqlite_writer = writer.SQLiteWriter(connection, path=path, identity=identity)

    def delete_at_commit(statement: str) -> None:
        if statement == "COMMIT":
            connection.set_trace_callback(None)
            remove_store_files(path)

    connection.set_trace_callback(delete_at_commit)
    jobs: list[writer.Job] = [writer.EventJob(Delivery(body=body(n))) for n in (1, 2)]
    outcomes, _lines, notices = sqlite_writer.write(jobs)
    assert all(isinstance(outcome, StoreFileLost) for outcome in outcomes)
    assert len(notices) == 1
    text, lost = notices[0]
    assert lost == 2
    assert "answered 503" in text

    outcomes, _lines, notices = sqlite_writer.write([writer.EventJob(Delivery(body=body(3)))])
    assert not isinstance(outcomes[0], StoreError)
    assert notices == ()
    assert stored_bodies(path) == [body(3)]
    assert FileIdentity.of(path) == sqlite_writer.identity
    sqlite_writer.close()


def test_the_running_monitor_says_so_and_keeps_what_comes_after(tmp_path: Path) -> None:
    """``rm events.db*`` under ``tavus-monitor --headless``: an error line within seconds,
    and the deliveries after it are in the new file when the monitor has stopped."""
    db = tmp_path / "events.db"
    with HeadlessProcess(
        "--no-tunnel", "--port", "0", "--data-dir", str(tmp_path), "--db", str(db), "--token", TOKEN
    ) as process:
        url = process.wait_for_callback_url()
        assert httpx.post(url, content=body(1), timeout=DEADLINE).status_code == 200
        remove_store_files(db)
        line = process.wait_for(
            "err", lambda text: "deleted or replaced" in text, "a store-file error", timeout=10
        )
        assert line.startswith("error: ")
        assert httpx.post(url, content=body(2), timeout=DEADLINE).status_code == 200
        assert process.stop() == 0
    assert stored_bodies(db) == [body(2)]
    assert [json.loads(line)["payload"]["n"] for line in process.out] == [1, 2]


# ---------------------------------------------------------- --ephemeral


def test_an_ephemeral_monitor_keeps_events_in_a_private_temporary_file_it_deletes(
    tmp_path: Path, umask_022: None
) -> None:
    """``--ephemeral`` stores and streams as with a file, in a 0700 directory of the system's
    temporary directory that is gone once the monitor has stopped; the data directory
    gets no store."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    data_dir = tmp_path / "data"
    with HeadlessProcess(
        "--ephemeral",
        "--no-tunnel",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        "--token",
        TOKEN,
        env={**os.environ, "TMPDIR": str(temporary)},
    ) as process:
        url = process.wait_for_callback_url()
        assert httpx.post(url, content=body(1), timeout=DEADLINE).status_code == 200
        [directory] = temporary.iterdir()
        assert mode(directory) == 0o700
        assert mode(directory / "events.db") == 0o600
        assert stored_bodies(directory / "events.db") == [body(1)]
        assert process.stop() == 0
    assert list(temporary.iterdir()) == []
    assert not (data_dir / "events.db").exists()
    assert [json.loads(line)["payload"]["n"] for line in process.out] == [1]
    assert any("temporary file deleted when the monitor stops" in line for line in process.err)


# ------------------------------------------- what is committed is streamed


async def test_events_a_dead_writer_committed_but_never_answered_are_streamed(
    tmp_path: Path,
) -> None:
    """The child commits and answers; the answer is lost as if the child had died first.

    The test takes the reply out of the pipe itself, then kills the child: the
    sender gets 503 (StoreError), yet the committed event's line is printed,
    once, and the stream goes on in order.
    """
    path = tmp_path / "events.db"
    lines = io.StringIO()
    with Store(path, lines=EventLines(lines, event_line)) as store:
        async with asyncio.timeout(DEADLINE):
            await store.append(Delivery(body=body(1)))
            process_writer = store._writer
            assert process_writer is not None
            child = process_writer._child
            assert child is not None
            pending = asyncio.ensure_future(store.append(Delivery(body=body(2))))
            await asyncio.sleep(0)  # the outbox goes to the child at the end of this iteration
            asyncio.get_running_loop().remove_reader(child.reader.fd)
            os.set_blocking(child.reader.fd, True)
            # The reply, which the parent never sees, comes once the batch is committed.
            assert await asyncio.to_thread(os.read, child.reader.fd, 1 << 16)
            os.set_blocking(child.reader.fd, False)
            assert stored_bodies(path) == [body(1), body(2)]
            child.process.send_signal(signal.SIGKILL)
            child.process.wait()
            asyncio.get_running_loop().add_reader(
                child.reader.fd, process_writer._on_replies, child
            )
            with pytest.raises(StoreError):
                await pending
            third = await store.append(Delivery(body=body(3)))
    assert third.id == 3
    printed = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert [record["id"] for record in printed] == [1, 2, 3]
    assert [record["payload"]["n"] for record in printed] == [1, 2, 3]
