"""The event store's file: its schema, how a writer opens it, and whether it is still there.

The store (:mod:`tavus_monitor.store`, which opens the file first, and again
when it was deleted while idle) and its writer process
(:mod:`tavus_monitor.writer`) open it through :func:`open_for_writing`, so a
file that has to be made again (deleted under a running monitor) gets the same
schema, mode and pragmas as one made at start.

SQLite keeps writing into a file that was deleted or replaced while open (its
descriptor still points at the old inode) and reports success, so a monitor
would acknowledge deliveries into a file that is gone at exit. A
:class:`FileIdentity` taken at open and compared around every write is how
the writer notices (one ``stat`` each time: about 2 µs).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .events import StoreError as StoreError
from .events import StoreFileLost as StoreFileLost
from .private import create_private, make_private
from .search import TURN_BITS

log = logging.getLogger(__name__)

BUSY_TIMEOUT = 30.0
"""Seconds a connection waits for another's lock before SQLite gives up."""

SEARCH_TABLE = "search_index"
SEARCH_INDEX_SQL = (
    f"CREATE VIRTUAL TABLE {SEARCH_TABLE} USING fts5("
    "text, content='', tokenize='unicode61 remove_diacritics 2')"
)
UNINDEXED = (
    f"id > (SELECT coalesce(max(rowid), 0) >> {TURN_BITS} FROM {SEARCH_TABLE}) "
    "AND duplicate_of IS NULL"
)
"""Events the search index does not hold yet: newer than its newest, redeliveries aside
(their text is their original's). The writer indexes them; the reader counts them."""

MIGRATIONS: tuple[str, ...] = (
    # 1: events and rejected requests.
    """
    CREATE TABLE events (
        id              INTEGER PRIMARY KEY,
        received_at     REAL    NOT NULL,
        family          TEXT    NOT NULL,
        event_type      TEXT    NOT NULL,
        conversation_id TEXT,
        subject_id      TEXT,
        summary         TEXT    NOT NULL,
        duplicate_of    INTEGER REFERENCES events(id),
        error           TEXT,
        occurred_at     REAL,
        severity        TEXT    NOT NULL,
        body            BLOB    NOT NULL,
        body_sha256     BLOB    NOT NULL,
        headers         TEXT    NOT NULL,
        remote_addr     TEXT,
        path            TEXT    NOT NULL
    );
    CREATE INDEX events_family ON events (family, id);
    CREATE INDEX events_type ON events (event_type, id);
    CREATE INDEX events_conversation ON events (conversation_id, id)
        WHERE conversation_id IS NOT NULL;
    CREATE INDEX events_subject ON events (subject_id, id) WHERE subject_id IS NOT NULL;
    CREATE INDEX events_sha ON events (body_sha256);
    CREATE INDEX events_received ON events (received_at);
    CREATE TABLE rejected (
        id          INTEGER PRIMARY KEY,
        received_at REAL    NOT NULL,
        method      TEXT    NOT NULL,
        path        TEXT    NOT NULL,
        remote_addr TEXT,
        size        INTEGER,
        status      INTEGER NOT NULL,
        reason      TEXT    NOT NULL
    );
    """,
    # 2: every index costs each insert time and its commit dirty pages. Nothing
    # queries by received_at (ids are in arrival order), and subject ids are
    # looked up only for replica and video jobs, a small part of all events.
    """
    DROP INDEX events_received;
    DROP INDEX events_subject;
    CREATE INDEX events_jobs ON events (family, subject_id, id)
        WHERE family IN ('replica', 'video');
    """,
    # 3: redeliveries are looked up within their conversation or job (see
    # writer._REDELIVERY); the digest index is kept for bodies with neither.
    """
    DROP INDEX events_sha;
    CREATE INDEX events_sha_orphans ON events (body_sha256)
        WHERE conversation_id IS NULL AND family NOT IN ('replica', 'video');
    """,
    # 4: full-text search over every transcript turn and every payload (see
    # tavus_monitor.search). Contentless: the text is in events.body already.
    # Made by _search_index (FTS5 is missing from some SQLite builds); the writer
    # indexes the events, those already stored included, while it is idle.
    SEARCH_INDEX_SQL,
    # 5: what was done with events and for them. Each attempt to send an event to
    # the developer's handler (forwarded, replayed, an edited copy), the newest
    # event forwarding has finished with per target (so it resumes there after a
    # restart), and the Tavus resources created through the monitor (shown before
    # their first callback).
    """
    CREATE TABLE attempts (
        id               INTEGER PRIMARY KEY,
        event_id         INTEGER NOT NULL,
        kind             TEXT    NOT NULL,
        target           TEXT    NOT NULL,
        started_at       REAL    NOT NULL,
        latency_ms       REAL    NOT NULL,
        status           INTEGER,
        error            TEXT,
        failure          TEXT,
        request_headers  TEXT    NOT NULL,
        request_body     BLOB,
        response_headers TEXT    NOT NULL,
        response_body    BLOB    NOT NULL
    );
    CREATE INDEX attempts_event ON attempts (event_id, id);
    CREATE TABLE forward_cursor (
        target   TEXT    PRIMARY KEY,
        event_id INTEGER NOT NULL
    );
    CREATE TABLE created (
        id           INTEGER PRIMARY KEY,
        created_at   REAL    NOT NULL,
        kind         TEXT    NOT NULL,
        resource_id  TEXT    NOT NULL,
        name         TEXT,
        callback_url TEXT,
        response     TEXT    NOT NULL,
        ended_at     REAL
    );
    CREATE UNIQUE INDEX created_resource ON created (kind, resource_id);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
SEARCH_SCHEMA = 4
RECORDS_SCHEMA = 5
"""The first schema with the monitor's own records (attempts, the forward cursor, created)."""
"""The first schema with the search index: an older file has none until a monitor opens it."""


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """Which file a path named when it was opened (device and inode)."""

    device: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> FileIdentity | None:
        """The file ``path`` names now, or None when there is none."""
        try:
            info = os.stat(path)
        except OSError:
            return None
        return cls(info.st_dev, info.st_ino)


def connect(target: str | Path, *, uri: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) that waits on locks."""
    connection = sqlite3.connect(
        target, uri=uri, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT
    )
    connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
    return connection


def open_for_writing(path: Path, *, synchronous: str) -> tuple[sqlite3.Connection, FileIdentity]:
    """Open (creating owner-only, in WAL mode, migrated) the store file for writing.

    Returns the connection and the identity of the file it opened, to compare
    against later (:meth:`FileIdentity.of`).
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # a new directory is private
    create_private(path)
    make_private(path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
    identity = FileIdentity.of(path)
    connection = connect(path)
    try:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute(f"PRAGMA synchronous = {synchronous}")
        migrate(connection, str(path))
    except BaseException:
        connection.close()
        raise
    if identity is None or FileIdentity.of(path) != identity:
        connection.close()
        raise StoreFileLost(f"{path} was deleted or replaced while it was being opened")
    return connection, identity


def lost_file_notice(path: Path, *, lost: int = 0, error: BaseException | None = None) -> str:
    """The sentence the user gets when the store file went: made again, or (``error``) not.

    ``lost``: deliveries that were being written into the old file just then.
    Both checks (the writer's around each batch, the store's while idle) say it.
    """
    text = f"The store file was deleted or replaced while the monitor was running ({path})"
    if lost:
        text += (
            f"; {lost} deliveries written to it just then were answered 503 "
            "so that Tavus sends them again"
        )
    if error is not None:
        return (
            f"{text}, and it cannot be made again ({error}): deliveries are answered 503 "
            "until it can; check the disk and the directory."
        )
    return f"{text}; a new store file was made there and events go to it now."


def migrate(connection: sqlite3.Connection, name: str) -> None:
    """Bring the schema to :data:`SCHEMA_VERSION`, one transaction per migration.

    The version is read inside each transaction, so two processes opening a
    new file at once (the monitor and its writer, after the file was deleted)
    migrate it once between them.
    """
    while True:
        connection.execute("BEGIN IMMEDIATE")
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{name} was written by a newer tavus-monitor "
                    f"(schema {version}, this one knows {SCHEMA_VERSION}); upgrade tavus-monitor."
                )
            if version == SCHEMA_VERSION:
                if not has_search_index(connection) and fts5_available(connection):
                    _search_index(connection, name)  # migrated where SQLite had no FTS5
                connection.execute("COMMIT")
                return
            if version + 1 == SEARCH_SCHEMA:
                _search_index(connection, name)
            else:
                for statement in _split_sql(MIGRATIONS[version]):
                    connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {version + 1}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise


def fts5_available(connection: sqlite3.Connection) -> bool:
    """Whether this SQLite has FTS5 (most builds do; a few minimal ones do not)."""
    try:
        connection.execute("CREATE VIRTUAL TABLE temp.fts5_probe USING fts5(x)")
        connection.execute("DROP TABLE temp.fts5_probe")
    except sqlite3.OperationalError:
        return False
    return True


def has_search_index(connection: sqlite3.Connection) -> bool:
    row = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (SEARCH_TABLE,)
    ).fetchone()
    return row is not None


def _search_index(connection: sqlite3.Connection, name: str) -> None:
    """Migration 4, in its transaction: make the (empty) search index.

    The events already stored are indexed by the writer process while it is idle
    (:meth:`~tavus_monitor.writer.SQLiteWriter.index_pending`), as new ones are:
    filling it here took 1.9 s for 100,000 events and 27 s for 1,000,000
    (``python bench/queries.py``), all before the monitor could answer anyone.
    Without FTS5 the store works on unsearchable (search says so in one
    sentence), and the index is made the first time a monitor whose SQLite has
    FTS5 opens the file.
    """
    if not fts5_available(connection):
        log.warning("%s: this SQLite has no FTS5, so stored events cannot be searched", name)
        return
    connection.execute(SEARCH_INDEX_SQL)


def _split_sql(script: str) -> list[str]:
    return [statement.strip() for statement in script.split(";") if statement.strip()]
