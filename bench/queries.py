"""Paged store queries at 100k+ events: how long each view's query takes.

    python bench/queries.py [--events 100000]

Fills a fresh SQLite store (in a temporary directory) with realistic events
through the real writer (group commit), then times the queries the views make:
the newest page, a page deep in history, a page per family / type /
conversation, a text search that hits and one that misses (a full scan), and
one conversation. Each figure is the median of several runs, printed beside
the time of a bare ``SELECT id ... LIMIT 100`` on the same file as baseline.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tavus_monitor import samples
from tavus_monitor.events import Event
from tavus_monitor.store import Delivery, EventQuery, Store


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
            ]
            base = median_ms(baseline)
            print(f"events: {args.events:,}  file: {size_mb:.0f} MB  fill: {rate:,.0f} events/s")
            print(f"baseline bare SELECT LIMIT 100: {base:.2f} ms")
            print(f"{'query':<28}{'median ms':>10}{'× baseline':>12}")
            for name, run in cases:
                took = median_ms(run)
                print(f"{name:<28}{took:>10.2f}{took / base:>12.1f}")


if __name__ == "__main__":
    main()
