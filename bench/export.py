"""``tavus-monitor export`` at 100k events: events/s per format and peak memory.

    python bench/export.py [--events 100000]

Fills a fresh store (in a temporary directory) through the real writer, as
``bench/queries.py`` does, then runs the installed ``tavus-monitor`` once per
case, each in its own Python so each peak RSS is that case's alone: Linux's
``VmHWM`` (``resource.getrusage``'s ``ru_maxrss`` survives exec, so it would
report the memory of this process, copied at fork, as the child's), else
``ru_maxrss`` elsewhere. The output goes to a file in the same directory.

Baselines, measured in the same run on the same file:

- ``bare read``: the rows read in id-ordered pages and decoded into events
  (:func:`tavus_monitor.storewalk.walk`), nothing written: what any export
  costs at the least;
- ``history jsonl``: ``history --format jsonl --limit N``, the other way to get
  every line, which holds them all before printing (its memory grows with N).

Each export's rate is printed as a ratio to the bare read's, and its peak RSS
beside that of a one-conversation export (the start-up cost): streaming means
the two are about equal.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tavus_monitor import samples
from tavus_monitor.events import Event
from tavus_monitor.store import Delivery, Store

PEAK_RSS = '''
import sys
def peak_rss() -> int:
    """Bytes: this process's peak RSS since exec (Linux's VmHWM; ru_maxrss would count the
    parent's memory copied at fork), else getrusage's."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak * (1 if sys.platform == "darwin" else 1024)
'''
"""Defined in each measured process: its peak memory."""

CONSOLE = PEAK_RSS + (
    "import time\n"
    "from tavus_monitor.cli import main\n"
    "started = time.perf_counter()\n"
    "code = main(sys.argv[1:])\n"
    "took = time.perf_counter() - started\n"
    "print(took, peak_rss(), file=sys.stderr)\n"
    "sys.exit(code)\n"
)
BARE_READ = PEAK_RSS + (
    "import time\n"
    "from pathlib import Path\n"
    "from tavus_monitor.store import ReadOnlyStore\n"
    "from tavus_monitor.storewalk import walk\n"
    "started = time.perf_counter()\n"
    "with ReadOnlyStore(Path(sys.argv[1])) as store:\n"
    "    count = sum(1 for _ in walk(store))\n"
    "took = time.perf_counter() - started\n"
    "print(took, peak_rss(), file=sys.stderr)\n"
)


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


def measure(code: str, *args: str, cwd: Path) -> tuple[float, int]:
    """Seconds and peak RSS bytes of one case in a new Python (its stdout discarded)."""
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        check=True,
    )
    took, peak = result.stderr.strip().splitlines()[-1].split()
    return float(took), int(peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        db = directory / "events.db"
        with Store(db) as store:
            rate = fill(store, args.events)
        n = args.events
        print(f"events: {n:,}  file: {db.stat().st_size / 1e6:.0f} MB  fill: {rate:,.0f} events/s")
        base_s, base_rss = measure(BARE_READ, str(db), cwd=directory)
        one_s, one_rss = measure(
            CONSOLE, "export", "--db", str(db), "--conversation", f"c{1:011d}", cwd=directory
        )
        print(f"one-conversation export (start-up): {one_s:.2f} s, peak RSS {one_rss / 1e6:.0f} MB")
        print(
            f"{'case':<30}{'events/s':>12}{'× bare read':>13}{'peak RSS MB':>13}{'output MB':>11}"
        )
        print(
            f"{'bare read (baseline)':<30}{n / base_s:>12,.0f}{1.0:>13.2f}{base_rss / 1e6:>13.0f}"
        )
        cases = [
            ("export jsonl", ["export", "--format", "jsonl", "--out", "out.jsonl"], "out.jsonl"),
            ("export har", ["export", "--format", "har", "--out", "out.har"], "out.har"),
            ("export raw", ["export", "--format", "raw", "--out", "raw"], "raw"),
            (f"history jsonl --limit {n}", ["history", "--format", "jsonl", "--limit", str(n)], ""),
        ]
        for label, command, output in cases:
            took, peak = measure(CONSOLE, *command, "--db", str(db), cwd=directory)
            target = directory / output if output else None
            if target is None:
                size = float("nan")
            elif target.is_dir():
                size = sum(file.stat().st_size for file in target.iterdir()) / 1e6
            else:
                size = target.stat().st_size / 1e6
            print(
                f"{label:<30}{n / took:>12,.0f}{base_s / took:>13.2f}"
                f"{peak / 1e6:>13.0f}{size:>11.0f}"
            )


if __name__ == "__main__":
    main()
