"""Paged store queries at 100k+ events: how long each view's query takes.

    python bench/queries.py [--events 100000]

Fills a fresh SQLite store (in a temporary directory) with realistic events
through the real writer (group commit), then times the queries the views make:
the newest page, a page deep in history, a page per family / type /
conversation, a text search that hits and one that misses (a full scan), and
one conversation. Each figure is the median of several runs, printed beside
the time of a bare ``SELECT id ... LIMIT 100`` on the same file as baseline.

Then the full-text index (:mod:`tavus_monitor.search`): what the dashboard's
search screen and ``history --search`` ask (100 matches with their snippets, a
rare word, a common one, and a miss), which must answer within 50 ms at 100k
events, and how long migration 4 takes to index a store of that size that
predates it (``--no-backfill`` skips that).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tavus_monitor import samples
from tavus_monitor.events import Event
from tavus_monitor.store import Delivery, EventQuery, Store
from tavus_monitor.storefile import SEARCH_SCHEMA, SEARCH_TABLE


def fill(store: Store, count: int) -> float:
    """Store ``count`` events (conversations of 15 callbacks each); return events/s."""
    names = list(samples.ALL_SAMPLES)
    started = time.perf_counter()
    pending: list[concurrent.futures.Future[Event]] = []
    conversation = 0
    while len(pending) < count:
        conversation += 1
        for sample in samples.render_many(names, conversation_id=f"c{conversation:011d}"):
            pending.append(store.submit(Delivery(body=sample.body, received_at=time.time())))
            if len(pending) >= count:
                break
    for future in pending:
        future.result()
    return count / (time.perf_counter() - started)


def median_ms(run: Callable[[], object], repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--no-backfill", action="store_true", help="do not time migration 4")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "events.db"
        with Store(path) as store:
            rate = fill(store, args.events)
            size_mb = path.stat().st_size / 1e6
            newest = store.page(EventQuery(limit=1))[0].id
            middle_conversation = f"c{args.events // 30:011d}"

            def baseline() -> object:
                return store._read("SELECT id FROM events ORDER BY id DESC LIMIT 100")

            cases: list[tuple[str, Callable[[], object]]] = [
                ("newest page (100)", lambda: store.page(EventQuery(limit=100))),
                (
                    "page deep in history",
                    lambda: store.page(EventQuery(before_id=newest // 2, limit=100)),
                ),
                ("family=video", lambda: store.page(EventQuery(family="video", limit=100))),
                (
                    "type=system.shutdown",
                    lambda: store.page(EventQuery(event_type="system.shutdown", limit=100)),
                ),
                (
                    "one conversation page",
                    lambda: store.page(EventQuery(conversation_id=middle_conversation)),
                ),
                ("conversation()", lambda: store.conversation(middle_conversation)),
                ("search hit 'Alfama'", lambda: store.page(EventQuery(search="Alfama", limit=100))),
                (
                    "search miss (full scan)",
                    lambda: store.page(EventQuery(search="no-such-text-anywhere", limit=100)),
                ),
                ("counts()", store.counts),
                ("fts hit rare 'Alfama'", lambda: store.search("Alfama", 100)),
                ("fts hit common 'Lisbon'", lambda: store.search("Lisbon", 100)),
                ("fts two words 'tram castle'", lambda: store.search("tram castle", 100)),
                ("fts typing 'Alf' (prefix)", lambda: store.search("Alf", 100, prefix_last=True)),
                ("fts miss", lambda: store.search("nosuchwordanywhere", 100)),
                (
                    "fts events (history jsonl)",
                    lambda: store.search_events("Lisbon", EventQuery(limit=50)),
                ),
            ]
            base = median_ms(baseline)
            print(f"events: {args.events:,}  file: {size_mb:.0f} MB  fill: {rate:,.0f} events/s")
            print(f"baseline bare SELECT LIMIT 100: {base:.2f} ms")
            print(f"{'query':<28}{'median ms':>10}{'× baseline':>12}")
            for name, run in cases:
                took = median_ms(run)
                print(f"{name:<28}{took:>10.2f}{took / base:>12.1f}")
        if not args.no_backfill:
            print("migration 4 (a store that predates the search index):")
            backfill(path)


def backfill(path: Path) -> float:
    """Seconds a store opens in when it must build its search index (schema 3 → 4)."""
    older = path.with_name("older.db")
    shutil.copyfile(path, older)
    with sqlite3.connect(older) as db:
        db.execute(f"DROP TABLE {SEARCH_TABLE}")
        for table in ("attempts", "forward_cursor", "created"):  # what migration 5 made
            db.execute(f"DROP TABLE IF EXISTS {table}")
        db.execute(f"PRAGMA user_version = {SEARCH_SCHEMA - 1}")
    started = time.perf_counter()
    with Store(older) as store:
        took = time.perf_counter() - started
        print(f"  opened (migrated, index empty) in {took:.2f} s; the writer indexes while idle")
        deadline = started + 600
        while store.unindexed():
            assert time.perf_counter() < deadline, "the index was not built in 10 min"
            time.sleep(0.1)
        print(f"  whole index built {time.perf_counter() - started:.1f} s after opening")
        assert store.search("Alfama", 1)
    return took


if __name__ == "__main__":
    main()
