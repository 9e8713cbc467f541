"""Writer-kill benchmark: is everything the store committed on the headless stream?

What it measures
    ``tavus-monitor --headless`` (the same process as ``bench/ingest.py``
    starts, stdout to a file) takes the built-in generator's load while this
    script kills its writer process with SIGKILL every ``--interval`` seconds,
    ``--kills`` times. A killed writer may have committed a batch it never
    answered: those senders get 503 (Tavus retries), but the events are in the
    store, so their JSON lines must still be printed.

    After the monitor stops, every event id in the store is looked for among
    the stdout lines. It prints the deliveries answered 200 and 503, the events
    stored, the lines printed, how many stored events never reached stdout
    (``unstreamed``), lines that are not strict JSON, and acknowledged
    deliveries missing from the store (``lost``).

    Target: unstreamed = 0, invalid = 0, lost = 0.

How to run
    python bench/writer_kill.py                       # 20 kills, one every 0.25 s
    python bench/writer_kill.py --kills 50 --connections 32 --check
    (copy it beside another checkout's bench/ingest.py to measure that tree)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ingest  # bench/ingest.py: the monitor process and the load generator


def writer_pids(monitor_pid: int) -> list[int]:
    """The monitor's child processes (its writer)."""
    pids = []
    for task in Path(f"/proc/{monitor_pid}/task").iterdir():
        with contextlib.suppress(OSError):
            pids += [int(pid) for pid in (task / "children").read_text().split()]
    return pids


def strict(line: str) -> object:
    def refuse(token: str) -> object:
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(line, parse_constant=refuse)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.25)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--check", action="store_true", help="exit 1 unless every target holds")
    options = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="tavus-monitor-kill-") as scratch:
        workdir = Path(scratch)
        server = ingest.start_monitor(workdir)
        generator = ingest.BuiltinGenerator(
            server.port,
            server.path,
            ingest.load_templates(),
            options.connections,
            tag="kill",
            keep_ids=True,
        )
        duration = options.kills * options.interval + 1.0
        results: list[ingest.LoadResult] = []
        load = threading.Thread(
            target=lambda: results.append(ingest.run_async(generator.run(duration)))
        )
        try:
            load.start()
            time.sleep(0.5)  # let the load reach a steady state first
            killed = 0
            while killed < options.kills and load.is_alive():
                for pid in writer_pids(server.process.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                        killed += 1
                time.sleep(options.interval)
            load.join(duration + 30)
        finally:
            code = ingest.stop(server, signal.SIGTERM)
        result = results[0]
        uri = f"file:{workdir / 'events.db'}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            rows = db.execute("SELECT id, conversation_id FROM events")
            stored = {event_id: conversation_id for event_id, conversation_id in rows}
        printed: set[int] = set()
        invalid = 0
        for line in (workdir / "monitor.stdout").read_text(encoding="utf-8").splitlines():
            try:
                record = strict(line)
            except ValueError:
                invalid += 1
                continue
            assert isinstance(record, dict)
            printed.add(record["id"])
        kept = set(stored.values())
        lost = sum(1 for conversation_id in result.acked_ids or [] if conversation_id not in kept)
        unstreamed = len(set(stored) - printed)

    print(f"writer kills: {killed} (one every {options.interval:g} s), exit code {code}")
    print(f"answered 200: {result.ok}, other: {result.non_2xx}, errors: {result.errors}")
    print(f"stored: {len(stored)}, JSON lines: {len(printed)}")
    verdict = "PASS" if unstreamed == invalid == lost == 0 else "FAIL"
    print(f"unstreamed: {unstreamed}, invalid lines: {invalid}, lost: {lost}  {verdict}")
    return 1 if options.check and verdict == "FAIL" else 0


if __name__ == "__main__":
    sys.exit(main())
