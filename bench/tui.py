"""TUI benchmark: how fast the dashboard shows what a developer waits for.

    python bench/tui.py                    # everything, about two minutes (plus a one-off fill)
    python bench/tui.py --runs 5 --rate 100 --seconds 6 --history 100000 --transcript-mb 5
    python bench/tui.py --only latency --only burst --terminal both
    python bench/tui.py --check            # exit 1 when a target FAILs

What it measures, all in one run, each beside a baseline measured the same way:

1. **Launch → callback URL on screen.** ``python -m tavus_monitor --port 0
   --no-tunnel --data-dir <tmp>`` is started as a real process in a detached
   tmux session (120×35, a pseudo-terminal) and ``tmux capture-pane`` is polled
   every ``--poll-ms`` until "Callback URL  http" is on the screen, timed from
   the moment the session is created. ``q`` then quits it (the quit time is
   printed too). Baselines: a bare ``python -c`` that prints a line, and a bare
   Textual app with one Static, launched and polled the same way. One warm-up
   launch each, then ``--runs`` timed ones; PASS/FAIL uses the median.
   Target: ≤ 1.5 s.

2. **Start-up with a long history.** A store of ``--history`` realistic events
   is filled once through the real writer (as bench/queries.py does) and kept
   in ``--cache-dir``; the real process is then launched under tmux with
   ``--db`` on it and timed until the newest event's row is in the Events
   pane. Its peak RSS (``VmHWM``) is read once its CPU use has settled. The
   last run also sends End / PageDown / Home and times each key until the
   Events pane changes. Baseline: the empty-store launches of part 1.
   Targets: ≤ 2 s and ≤ 300 MB.

3. **POST → row on screen at 100 callbacks/s.** The installed
   ``tavus-monitor`` runs as a user runs it, in its own process, drawing into a
   120×35 pseudo-terminal that this benchmark reads as a terminal would (or
   tmux: ``--terminal tmux``, or ``both`` to see that they agree); see
   ``bench/live.py`` and ``bench/terminal.py``. Another process
   (``bench/load.py``) sends whole conversations, eight callbacks each in
   Tavus's order, open loop at ``--rate``. A row is on screen when its text
   (conversation id, then "joined"/"shutdown", in the System pane) first
   arrives in the terminal's byte stream. Printed beside the same load on
   ``--headless``: POST → 200 for both, the CPU each spends per callback, and
   every 200 checked against the store afterwards. Target: p99 ≤ 50 ms.

4. **A 5 MB transcript in the inspector.** A ``transcription_ready`` body of
   ``--transcript-mb`` (many turns) is stored with two ordinary conversations;
   in-process (``run_test``), the inspector is opened on it and timed until a
   frame shows its Summary, then ``2`` until a frame shows the JSON tab's text,
   then ``3`` until a frame shows the Tree. Baseline: the same steps on the
   ordinary sample transcript (~2 KB). Target: Summary ≤ 1 s (JSON and Tree are
   printed against the same budget for information).

5. **A burst: 2,500 callbacks/s for 6 s.** As part 3, at ``--burst-rate``:
   POST → 200 in the dashboard against headless, nothing lost. Target: p99 ≤
   25 ms.

Part 4 runs in-process (``App.run_test``) and detects frames by wrapping
``App._display``; parts 1 and 2 poll tmux (the resolution is the poll
interval: a capture costs a few ms of CPU). Parts 3 and 5 once ran in-process
too, and disagreed with a real terminal by a factor of four; ``bench/live.py``
says why. Latency percentiles are sensitive to other work on the machine: the
header prints the load average, and each part ends with the share of its time
that runnable tasks (the benchmark's own included) waited for a CPU (Linux PSI,
/proc/pressure/cpu); above 20 % the part's figures are marked as disturbed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import live

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent
SIZE = (120, 35)
URL_NEEDLE = "Callback URL  http"
BARE_PYTHON_NEEDLE = "BARE PYTHON READY"
BARE_TEXTUAL_NEEDLE = "BARE TEXTUAL READY"
BARE_PYTHON = f"print({BARE_PYTHON_NEEDLE!r}, flush=True); input()"
BARE_TEXTUAL = f"""
from textual.app import App
from textual.widgets import Static

class Bare(App):
    BINDINGS = [("q", "quit", "Quit")]

    def compose(self):
        yield Static({BARE_TEXTUAL_NEEDLE!r})

Bare().run()
"""
CONVERSATION_NAMES = (
    "system.replica_joined",
    "system.pal_joined",
    "conversation.objective.completed",
    "system.shutdown",
    "application.transcription_ready",
    "application.recording_ready",
    "application.perception_analysis",
    "application.post_call_action_executed",
)
"""One call's callbacks in delivery order (samples.CONVERSATION_SEQUENCE)."""
CACHE_VERSION = 1
"""Bump when the filled history's content changes."""
ANSI = re.compile(
    r"\x1b\[[0-9;:?<=>]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-B]"
)

TARGET_URL_S = 1.5
TARGET_ROW_P99_MS = 50.0
TARGET_ACK_P99_MS = 25.0
TARGET_HISTORY_S = 2.0
TARGET_HISTORY_RSS_MB = 300.0
TARGET_INSPECTOR_S = 1.0


# ------------------------------------------------------------------ helpers


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def fmt_s(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f} s"


def fmt_ms(value: float | None) -> str:
    return "—" if value is None else f"{value * 1000:.0f} ms"


def spread(values: list[float]) -> str:
    if not values:
        return "no successful run"
    return (
        f"median {statistics.median(values):.3f} s  "
        f"(min {min(values):.3f}, max {max(values):.3f}, runs: "
        + ", ".join(f"{value:.3f}" for value in values)
        + ")"
    )


def median_or_none(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


@dataclass
class Verdict:
    name: str
    measured: str
    target: str
    ok: bool | None
    """None: not measured (counts as FAIL for --check)."""
    spec: bool = True


@dataclass
class Report:
    verdicts: list[Verdict] = field(default_factory=list)

    def add(
        self, name: str, value: float | None, limit: float, unit: str, spec: bool = True
    ) -> None:
        if unit == "s":
            measured, target = fmt_s(value), f"≤ {limit:g} s"
        elif unit == "ms":
            measured = "—" if value is None else f"{value:.0f} ms"
            target = f"≤ {limit:g} ms"
        else:
            measured = "—" if value is None else f"{value:.0f} MB"
            target = f"≤ {limit:g} MB"
        ok = None if value is None else value <= limit
        self.verdicts.append(Verdict(name, measured, target, ok, spec))


def section(title: str) -> None:
    print(f"\n== {title}", flush=True)


def cpu_pressure() -> tuple[float, float] | None:
    """(µs some task waited for a CPU, now in µs) from PSI; None without /proc/pressure."""
    try:
        text = Path("/proc/pressure/cpu").read_text()
    except OSError:
        return None
    some = text.splitlines()[0]
    return float(some.rsplit("total=", 1)[1]), time.monotonic() * 1e6


@contextlib.contextmanager
def pressure_note() -> Iterator[None]:
    """Print how much of the part's time runnable tasks waited for a CPU (PSI "some")."""
    before = cpu_pressure()
    yield
    after = cpu_pressure()
    if before is not None and after is not None and after[1] > before[1]:
        share = (after[0] - before[0]) / (after[1] - before[1])
        note = "  (figures disturbed)" if share > 0.2 else ""
        print(f"{'  … CPU pressure in this part':<34}{share:.0%} of the time{note}")


# --------------------------------------------------------------- processes


def proc_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def proc_status_kb(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def proc_cpu_ticks(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])  # utime + stime, all threads


def wait_cpu_idle(pid: int, timeout: float, window: float = 0.3, busy: float = 0.1) -> float:
    """Seconds until ``pid`` used under ``busy`` of a core over ``window``; stops at timeout."""
    ticks_per_s = os.sysconf("SC_CLK_TCK")
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        before = proc_cpu_ticks(pid)
        time.sleep(window)
        after = proc_cpu_ticks(pid)
        if before is None or after is None:
            break
        if (after - before) / ticks_per_s <= busy * window:
            return time.perf_counter() - started - window
    return time.perf_counter() - started


class Tmux:
    """A private tmux server (own socket) that hosts the launched processes."""

    def __init__(self, env: dict[str, str], poll: float) -> None:
        self.socket = f"tavus-monitor-bench-{os.getpid()}"
        self.env = env
        self.poll = poll
        self.started = False
        self._sessions = 0
        self._socket_path = ""

    def _tmux(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=10,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"tmux {args[0]} failed: {done.stderr.strip()}")
        return done.stdout

    def start(self) -> None:
        # A holder session keeps the server up, so launches do not pay for its start.
        width, height = SIZE
        self._tmux("new-session", "-d", "-s", "holder", "-x", str(width), "-y", str(height))
        self.started = True
        self._socket_path = self._tmux("display-message", "-p", "#{socket_path}").strip()

    def close(self) -> None:
        if self.started:
            self._tmux("kill-server", check=False)
            self.started = False
            if self._socket_path:  # tmux leaves the socket file behind
                Path(self._socket_path).unlink(missing_ok=True)

    def launch(self, argv: list[str]) -> tuple[str, int, float]:
        """Start ``argv`` in a new session; return (session, pid, start time)."""
        self._sessions += 1
        name = f"run{self._sessions}"
        width, height = SIZE
        started = time.perf_counter()
        out = self._tmux(
            "new-session",
            "-d",
            "-P",
            "-F",
            "#{pane_pid}",
            "-s",
            name,
            "-x",
            str(width),
            "-y",
            str(height),
            "-c",
            str(ROOT),
            "exec " + shlex.join(argv),
        )
        return name, int(out.strip()), started

    def capture(self, name: str) -> str:
        return self._tmux("capture-pane", "-p", "-t", name, check=False)

    def keys(self, name: str, *keys: str) -> None:
        self._tmux("send-keys", "-t", name, *keys, check=False)

    def wait_for(
        self,
        name: str,
        pid: int,
        found: Callable[[str], bool],
        since: float,
        timeout: float,
    ) -> tuple[float | None, str]:
        """Poll the pane until ``found(screen)``; (seconds since ``since`` or None, screen)."""
        deadline = time.perf_counter() + timeout
        screen = ""
        while True:
            screen = self.capture(name)
            now = time.perf_counter()
            if found(screen):
                return now - since, screen
            if now > deadline or not proc_alive(pid):
                return None, screen
            time.sleep(self.poll)

    def quit(self, name: str, pid: int, keys: tuple[str, ...], timeout: float = 15.0) -> float:
        """Send the quit keys; seconds until the process is gone (killed after ``timeout``)."""
        started = time.perf_counter()
        self.keys(name, *keys)
        while proc_alive(pid) and time.perf_counter() - started < timeout:
            time.sleep(0.01)
        took = time.perf_counter() - started
        if proc_alive(pid):
            print(f"   process {pid} did not quit within {timeout:g} s; terminating it")
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
                for _ in range(300):
                    if not proc_alive(pid):
                        break
                    time.sleep(0.01)
        self._tmux("kill-session", "-t", name, check=False)
        return took


@dataclass
class Launch:
    shown: float | None
    """Seconds from launch to the needle on screen (None: never)."""
    rows: float | None = None
    settled: float | None = None
    hwm_mb: float | None = None
    quit_s: float | None = None
    screen: str = ""


def launch_once(
    tmux: Tmux,
    argv: list[str],
    needle: str,
    quit_keys: tuple[str, ...],
    *,
    rows_needle: str | None = None,
    settle: bool = False,
    after: Callable[[str, int], None] | None = None,
    timeout: float = 30.0,
) -> Launch:
    name, pid, started = tmux.launch(argv)
    result = Launch(None)
    try:
        result.shown, result.screen = tmux.wait_for(
            name, pid, lambda s: needle in s, started, timeout
        )
        if result.shown is not None and rows_needle is not None:
            result.rows, result.screen = tmux.wait_for(
                name, pid, lambda s: rows_needle in events_pane(s), started, timeout
            )
        if settle and proc_alive(pid):
            waiting = time.perf_counter()
            result.settled = waiting - started + wait_cpu_idle(pid, timeout=10.0)
        if after is not None and proc_alive(pid):
            after(name, pid)
        hwm = proc_status_kb(pid, "VmHWM")
        result.hwm_mb = None if hwm is None else hwm / 1024
    finally:
        if proc_alive(pid):
            result.quit_s = tmux.quit(name, pid, quit_keys)
    return result


def events_pane(screen: str) -> str:
    """The part of a captured dashboard below the Events pane's top border."""
    lines = screen.splitlines()
    for index, line in enumerate(lines):
        column = line.find("─ Events ")
        if column != -1:
            start = line.rfind("╭", 0, column)
            return "\n".join(rest[max(0, start) :] for rest in lines[index + 1 :])
    return ""


def launch_series(
    tmux: Tmux,
    label: str,
    argv: list[str],
    needle: str,
    quit_keys: tuple[str, ...],
    runs: int,
    settle: bool = False,
) -> list[Launch]:
    launch_once(tmux, argv, needle, quit_keys)  # warm-up: page cache, .pyc files
    results = [launch_once(tmux, argv, needle, quit_keys, settle=settle) for _ in range(runs)]
    shown = [r.shown for r in results if r.shown is not None]
    print(f"{label:<34}{spread(shown)}")
    if len(shown) < len(results):
        print(f"   {len(results) - len(shown)} run(s) never showed {needle!r}; last screen:")
        print(results[-1].screen)
    return results


def bench_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAVUS_MONITOR_")}
    env["XDG_CONFIG_HOME"] = str(home / "config")
    env["XDG_DATA_HOME"] = str(home / "xdg-data")
    env.setdefault("COLORTERM", "truecolor")
    return env


def monitor_argv(data_dir: Path, db: Path | None = None) -> list[str]:
    argv = [sys.executable, "-m", "tavus_monitor", "--port", "0", "--no-tunnel"]
    argv += ["--data-dir", str(data_dir)]
    return argv + (["--db", str(db)] if db is not None else [])


# ------------------------------------------------------ part 1: launch → URL


def part_launch(tmux: Tmux, home: Path, runs: int, report: Report) -> list[Launch]:
    section(f"1. launch → text on screen (tmux {SIZE[0]}×{SIZE[1]}, poll {tmux.poll * 1000:g} ms)")
    py = [sys.executable]
    launch_series(
        tmux, "bare python -c print", [*py, "-c", BARE_PYTHON], BARE_PYTHON_NEEDLE, ("Enter",), runs
    )
    launch_series(
        tmux,
        "bare textual App + Static",
        [*py, "-c", BARE_TEXTUAL],
        BARE_TEXTUAL_NEEDLE,
        ("q",),
        runs,
    )
    data_dir = home / "launch-data"
    monitor = launch_series(
        tmux,
        "tavus-monitor: Callback URL",
        monitor_argv(data_dir),
        URL_NEEDLE,
        ("q",),
        runs,
        settle=True,
    )
    quits = [r.quit_s for r in monitor if r.quit_s is not None]
    hwm = [r.hwm_mb for r in monitor if r.hwm_mb is not None]
    settled = [r.settled for r in monitor if r.settled is not None]
    if settled:
        print(f"{'  … CPU idle after start':<34}median {statistics.median(settled):.3f} s")
    if hwm:
        print(f"{'  … peak RSS (empty store)':<34}median {statistics.median(hwm):.0f} MB")
    if quits:
        print(f"{'  … q → process gone':<34}median {statistics.median(quits):.3f} s")
    report.add(
        "launch → callback URL on screen (median)",
        median_or_none([r.shown for r in monitor if r.shown is not None]),
        TARGET_URL_S,
        "s",
    )
    return monitor


# ---------------------------------------------------- part 2: 100k history


def filled_history(cache_dir: Path, count: int, rebuild: bool) -> Path:
    """A store of ``count`` realistic events, filled once and kept in ``cache_dir``."""
    sys.path.insert(0, str(ROOT / "bench"))
    from queries import fill

    from tavus_monitor.store import SCHEMA_VERSION, Store

    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"history-{count}-s{SCHEMA_VERSION}-v{CACHE_VERSION}.db"
    if path.exists() and not rebuild:
        print(f"history: reusing {path} ({path.stat().st_size / 1e6:.0f} MB)")
        return path
    partial = path.with_suffix(".partial")
    for stale in cache_dir.glob(partial.name + "*"):
        stale.unlink()
    print(f"history: filling {count:,} events into {path} (once) …", flush=True)
    with Store(partial) as store:
        rate = fill(store, count)
    partial.replace(path)
    print(f"history: {rate:,.0f} events/s, {path.stat().st_size / 1e6:.0f} MB")
    return path


def part_history(
    tmux: Tmux, home: Path, db: Path, runs: int, report: Report, empty: list[Launch]
) -> None:
    from tavus_monitor.store import EventQuery, Store

    with Store(db) as store:
        newest = store.rows(EventQuery(limit=1))[0]
        total = store.counts().events
    needle = newest.summary[:30]
    section(f"2. start-up with {total:,} stored events (tmux, --db {db.name})")
    print(f"newest row: #{newest.id} {newest.summary!r}; waiting for {needle!r} in Events")
    keys: list[tuple[str, float | None]] = []

    def steady_pane(name: str) -> str:
        """The Events pane once it stopped changing for 100 ms (at most 2 s)."""
        pane, deadline = events_pane(tmux.capture(name)), time.perf_counter() + 2
        while time.perf_counter() < deadline:
            time.sleep(0.1)
            now = events_pane(tmux.capture(name))
            if now == pane:
                break
            pane = now
        return pane

    def scroll(name: str, pid: int) -> None:
        for key in ("End", "PageDown", "PageDown", "PageDown", "Home"):
            before = steady_pane(name)
            started = time.perf_counter()
            tmux.keys(name, key)

            def changed(screen: str, before: str = before) -> bool:
                return events_pane(screen) != before

            took, _ = tmux.wait_for(name, pid, changed, started, 5.0)
            keys.append((key, took))

    argv = monitor_argv(home / "history-data", db)
    launch_once(tmux, argv, URL_NEEDLE, ("q",), rows_needle=needle)  # warm-up
    results = []
    for run in range(runs):
        results.append(
            launch_once(
                tmux,
                argv,
                URL_NEEDLE,
                ("q",),
                rows_needle=needle,
                settle=True,
                after=scroll if run == runs - 1 else None,
            )
        )
    url = [r.shown for r in results if r.shown is not None]
    rows = [r.rows for r in results if r.rows is not None]
    hwm = [r.hwm_mb for r in results if r.hwm_mb is not None]
    settled = [r.settled for r in results if r.settled is not None]
    quits = [r.quit_s for r in results if r.quit_s is not None]
    print(f"{'Callback URL on screen':<34}{spread(url)}")
    print(f"{'newest row in Events':<34}{spread(rows)}")
    if len(rows) < len(results):
        print("   the newest row never showed; last screen:\n" + results[-1].screen)
    empty_url = median_or_none([r.shown for r in empty if r.shown is not None])
    if empty_url is not None and rows:
        print(f"{'  … baseline: empty store URL':<34}median {empty_url:.3f} s")
    if settled:
        print(f"{'  … CPU idle after start':<34}median {statistics.median(settled):.3f} s")
    empty_hwm = [r.hwm_mb for r in empty if r.hwm_mb is not None]
    if hwm:
        baseline = f" (empty store: {statistics.median(empty_hwm):.0f} MB)" if empty_hwm else ""
        print(
            f"{'  … peak RSS (VmHWM)':<34}median {statistics.median(hwm):.0f} MB, "
            f"max {max(hwm):.0f} MB{baseline}"
        )
    if quits:
        print(f"{'  … q → process gone':<34}median {statistics.median(quits):.3f} s")
    if keys:
        print(
            "  … key → Events pane changed: "
            + ", ".join(f"{key} {fmt_ms(took)}" for key, took in keys)
        )
    report.add(
        f"{total // 1000}k history: newest row on screen (median)",
        median_or_none(rows),
        TARGET_HISTORY_S,
        "s",
    )
    report.add(
        f"{total // 1000}k history: peak RSS (max)",
        max(hwm) if hwm else None,
        TARGET_HISTORY_RSS_MB,
        "MB",
    )


# ------------------------------------------------- in-process frame watching


class Frames:
    """Wraps ``app._display``: stamps every frame and lets callers wait for one."""

    def __init__(self, app: Any) -> None:
        from textual._compositor import CompositorUpdate

        self.app = app
        self.count = 0
        self.bytes = 0
        self.listeners: list[Callable[[float, Any, str], None]] = []
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            original(screen, renderable)
            if renderable is None or app._batch_count:
                return
            # The headless driver drops frames; encode them as a terminal driver would.
            data = (
                renderable.render_segments(app.console)
                if isinstance(renderable, CompositorUpdate)
                else ""
            )
            now = time.monotonic()
            self.count += 1
            self.bytes += len(data)
            for listener in list(self.listeners):
                listener(now, screen, data)

        app._display = display

    async def until(
        self, found: Callable[[Any, str], bool], start: Awaitable[Any] | None, limit: float
    ) -> float | None:
        """Await ``start``; return seconds from before it to the first frame where found."""
        loop = asyncio.get_running_loop()
        hit: asyncio.Future[float] = loop.create_future()

        def listener(now: float, screen: Any, data: str) -> None:
            if not hit.done() and found(screen, ANSI.sub("", data)):
                hit.set_result(now)

        self.listeners.append(listener)
        started = time.monotonic()
        try:
            if start is not None:
                await start
            return await asyncio.wait_for(hit, limit) - started
        except TimeoutError:
            return None
        finally:
            self.listeners.remove(listener)


async def settle_loop(limit: float = 20.0, quiet: float = 0.5, tick: float = 0.02) -> float:
    """Seconds until the event loop has run ``quiet`` s with no tick late by > 10 ms."""
    started = last_late = time.monotonic()
    while time.monotonic() - started < limit:
        before = time.monotonic()
        await asyncio.sleep(tick)
        now = time.monotonic()
        if now - before - tick > 0.01:
            last_late = now
        elif now - last_late >= quiet:
            return last_late - started
    return limit


def monitor_settings(data_dir: Path, db: Path | None = None) -> Any:
    from tavus_monitor.settings import Settings

    return Settings(port=0, port_explicit=True, data_dir=data_dir, db=db, no_tunnel=True)


# ------------------------------- parts 3 and 5: live traffic in a real terminal


def latency_line(label: str, values: list[float]) -> None:
    if values:
        print(
            f"{label:<38}p50 {percentile(values, 50) * 1000:6.1f} ms   "
            f"p99 {percentile(values, 99) * 1000:6.1f} ms   max {max(values) * 1000:6.1f} ms"
        )
    else:
        print(f"{label:<38}—")


def run_line(run: live.Run) -> None:
    extra = f"; {run.terminal_bytes / 1e6:.1f} MB drawn" if run.terminal_bytes else ""
    print(
        f"{'  … ' + run.target:<38}{run.cpu_per_callback * 1000:.2f} ms CPU per callback "
        f"(process and writer){extra}; {run.failed} failed, {run.lost} lost; "
        f"client at most {run.client_late * 1000:.1f} ms behind schedule"
    )


def terminals(choice: str) -> list[str]:
    return ["pty", "tmux"] if choice == "both" else [choice]


def part_latency(
    home: Path, rate: float, seconds: float, warmup: int, terminal: str, report: Report
) -> None:
    count = int(rate * seconds)
    section(
        f"3. POST → row on screen: {count} callbacks at {rate:g}/s (+{warmup} warm-up), "
        f"the real process in a {SIZE[0]}×{SIZE[1]} terminal ({terminal}), client apart"
    )
    baseline = live.drive("headless", home / "latency-headless", rate, seconds, warmup)
    latency_line("POST → 200, headless (baseline)", baseline.ack)
    run_line(baseline)
    worst: float | None = None
    for kind in terminals(terminal):
        run = live.drive(
            "dashboard", home / f"latency-{kind}", rate, seconds, warmup,
            terminal=kind, size=SIZE, watch_rows=True,
        )  # fmt: skip
        latency_line(f"POST → 200, dashboard in {kind}", run.ack)
        latency_line(f"POST → row on screen, {kind}", run.rows)
        run_line(run)
        if run.rows_missing:
            print(f"   {run.rows_missing} rows never reached the terminal")
        p99 = percentile(run.rows, 99) * 1000 if run.rows else None
        ok = p99 is not None and not (run.rows_missing or run.failed or run.lost)
        worst = None if not ok or p99 is None else max(worst or 0.0, p99)
        if not ok:
            break
    report.add(f"POST → row on screen p99 at {rate:g}/s", worst, TARGET_ROW_P99_MS, "ms")


def part_burst(
    home: Path, rate: float, seconds: float, warmup: int, terminal: str, report: Report
) -> None:
    count = int(rate * seconds)
    section(
        f"5. A burst: {count} callbacks at {rate:g}/s (+{warmup} warm-up), "
        f"the real process in a {SIZE[0]}×{SIZE[1]} terminal ({terminal}) against headless"
    )
    baseline = live.drive("headless", home / "burst-headless", rate, seconds, warmup)
    latency_line("POST → 200, headless (baseline)", baseline.ack)
    run_line(baseline)
    worst: float | None = None
    for kind in terminals(terminal):
        run = live.drive(
            "dashboard", home / f"burst-{kind}", rate, seconds, warmup, terminal=kind, size=SIZE
        )
        latency_line(f"POST → 200, dashboard in {kind}", run.ack)
        run_line(run)
        if run.ack and baseline.ack:
            print(
                f"{'  … p99 dashboard / headless':<38}"
                f"{percentile(run.ack, 99) / percentile(baseline.ack, 99):.1f}×"
            )
        ok = bool(run.ack) and not (run.failed or run.lost)
        p99 = percentile(run.ack, 99) * 1000 if ok else None
        worst = None if p99 is None else max(worst or 0.0, p99)
        if p99 is None:
            break
    report.add(f"burst: POST → 200 p99 at {rate:g}/s, nothing lost", worst, TARGET_ACK_P99_MS, "ms")


# --------------------------------------------------- part 4: the inspector


def big_transcript(megabytes: float) -> bytes:
    """A transcription_ready body of about ``megabytes`` MB: the sample's turns, many times."""
    from tavus_monitor import samples

    data = samples.load("application.transcription_ready")
    transcript = data["properties"]["transcript"]
    system, turns = transcript[0], transcript[1:]
    out: list[dict[str, Any]] = [system]
    size, target, index = 0, int(megabytes * 1024 * 1024), 0
    while size < target:
        turn = dict(turns[index % len(turns)])
        turn["content"] = f"{turn['content']} (turn {index})"
        if "seconds_from_start" in turn:
            turn["seconds_from_start"] = round(index * 2.5, 1)
        out.append(turn)
        size += len(json.dumps(turn)) + 2
        index += 1
    data["properties"]["transcript"] = out
    data["conversation_id"] = "cbigtranscript1"
    return json.dumps(data).encode()


async def part_inspector(home: Path, megabytes: float, report: Report) -> None:
    from tavus_monitor import samples
    from tavus_monitor.store import Delivery, Store
    from tavus_monitor.tui.app import MonitorApp
    from tavus_monitor.tui.screens.inspector import InspectorScreen

    data_dir = home / "inspector-data"
    db = data_dir / "events.db"
    big = big_transcript(megabytes)
    cases: list[tuple[str, int, str, int]] = []
    with Store(db) as store:
        small_id = 0
        for conversation in ("cinspect0001", "cinspect0002"):
            rendered = samples.render_many(list(CONVERSATION_NAMES), conversation_id=conversation)
            for sample in rendered:
                event = store.submit(Delivery(body=sample.body, received_at=time.time())).result()
                if sample.name == "application.transcription_ready":
                    small_id = event.id
                    small = (
                        f"~{len(sample.body) / 1000:.0f} KB transcript (baseline)",
                        event.id,
                        event.summary,
                        len(sample.body),
                    )
        event = store.submit(Delivery(body=big, received_at=time.time())).result()
        cases = [small, (f"{len(big) / 1e6:.1f} MB transcript", event.id, event.summary, len(big))]
    assert small_id
    section(f"4. inspector (in-process, headless {SIZE[0]}×{SIZE[1]})")
    print(f"big event: #{cases[1][1]} {cases[1][2]!r}")
    started = time.monotonic()
    app = MonitorApp(monitor_settings(data_dir, db))
    results: dict[str, list[float | None]] = {}
    async with app.run_test(size=SIZE, notifications=True, tooltips=True) as pilot:
        frames = Frames(app)
        await app.ready.wait()
        ready = time.monotonic() - started
        settled = await settle_loop()
        print(
            f"{'dashboard ready, then settled':<34}{ready:.3f} s, +{settled:.3f} s "
            "(the big conversation is the newest: the Transcripts pane shows it)"
        )
        for label, event_id, summary, _ in cases:

            def inspector(screen: Any, text: str, needle: str) -> bool:
                return isinstance(screen, InspectorScreen) and needle in text

            async def open_it(event_id: int = event_id) -> None:
                app.open_inspector(event_id)

            def shows_summary(
                screen: Any, text: str, needle: str = "summary  " + summary[:20]
            ) -> bool:
                return inspector(screen, text, needle)

            summary_s = await frames.until(shows_summary, open_it(), 30)
            json_s = await frames.until(
                lambda s, t: inspector(s, t, '"replica_id": "r79e'), pilot.press("2"), 90
            )
            tree_s = await frames.until(
                lambda s, t: inspector(s, t, "webhook_url: "), pilot.press("3"), 60
            )
            results[label] = [summary_s, json_s, tree_s]
            await pilot.press("escape")
            await settle_loop(limit=30)
        await pilot.press("q")
    print(f"{'':<34}{'Summary':>10}{'JSON (2)':>12}{'Tree (3)':>12}")
    for label, (summary_s, json_s, tree_s) in results.items():
        print(f"{label:<34}{fmt_s(summary_s):>10}{fmt_s(json_s):>12}{fmt_s(tree_s):>12}")
    summary_s, json_s, tree_s = results[cases[1][0]]
    name = f"{megabytes:g} MB transcript"
    report.add(f"{name}: inspector Summary on screen", summary_s, TARGET_INSPECTOR_S, "s")
    report.add(f"{name}: JSON tab on screen", json_s, TARGET_INSPECTOR_S, "s", spec=False)
    report.add(f"{name}: Tree tab on screen", tree_s, TARGET_INSPECTOR_S, "s", spec=False)


# --------------------------------------------------------------------- main


def print_report(report: Report) -> bool:
    section("targets")
    passed = True
    for verdict in report.verdicts:
        word = {True: "PASS", False: "FAIL", None: "FAIL (not measured)"}[verdict.ok]
        if verdict.spec:
            passed = passed and bool(verdict.ok)
        else:
            word += "  (extra, not a spec target)"
        print(f"{verdict.name:<46}{verdict.measured:>10}  {verdict.target:<10}{word}")
    return passed


def header() -> None:
    load = os.getloadavg()
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("textual", "rich", "uvicorn")
    )
    print(
        f"python {platform.python_version()}, {versions}; {os.cpu_count()} CPUs; "
        f"load {load[0]:.2f} {load[1]:.2f}"
    )
    if load[0] > 0.5:
        print("warning: the machine is busy; figures may be disturbed")
    if cpu_pressure() is None:
        print("(no /proc/pressure/cpu: CPU contention during each part is not reported)")


@contextlib.contextmanager
def workspace(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="tavus-monitor-bench-tui-"))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed launches per target (3)")
    parser.add_argument("--rate", type=float, default=100.0, help="callbacks/s (100)")
    parser.add_argument("--seconds", type=float, default=6.0, help="seconds of load (6)")
    parser.add_argument("--warmup", type=int, default=200, help="callbacks before timing (200)")
    parser.add_argument("--burst-rate", type=float, default=2500.0, help="burst callbacks/s (2500)")
    parser.add_argument("--burst-seconds", type=float, default=6.0, help="burst length (6)")
    parser.add_argument("--burst-warmup", type=int, default=500, help="before the burst (500)")
    parser.add_argument(
        "--terminal",
        choices=("pty", "tmux", "both"),
        default="pty",
        help="what the dashboard draws into in parts 3 and 5: a pseudo-terminal read here, "
        "tmux, or one run in each (pty)",
    )
    parser.add_argument("--history", type=int, default=100_000, help="stored events (100000)")
    parser.add_argument("--transcript-mb", type=float, default=5.0, help="inspector body MB (5)")
    parser.add_argument("--poll-ms", type=float, default=20.0, help="tmux capture interval (20)")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "tavus-monitor-bench",
        help="where the filled history store is kept between runs",
    )
    parser.add_argument("--rebuild", action="store_true", help="refill the cached history")
    parser.add_argument(
        "--only",
        choices=("launch", "latency", "history", "inspector", "burst"),
        action="append",
        help="run only these parts (repeatable)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target FAILs")
    args = parser.parse_args()
    parts = set(args.only or ("launch", "latency", "history", "inspector", "burst"))
    header()
    report = Report()
    started = time.perf_counter()
    with workspace(args.keep) as home:
        history = None
        if "history" in parts:
            history = filled_history(args.cache_dir, args.history, args.rebuild)
        empty: list[Launch] = []
        if {"launch", "history"} & parts:
            if shutil.which("tmux") is None:
                print("tmux is not installed: skipping the launch and history parts")
            else:
                tmux = Tmux(bench_env(home), args.poll_ms / 1000)
                try:
                    tmux.start()
                    if "launch" in parts:
                        with pressure_note():
                            empty = part_launch(tmux, home, args.runs, report)
                    if history is not None:
                        with pressure_note():
                            part_history(tmux, home, history, args.runs, report, empty)
                finally:
                    tmux.close()
        if "latency" in parts:
            with pressure_note():
                part_latency(home, args.rate, args.seconds, args.warmup, args.terminal, report)
        if "inspector" in parts:
            with pressure_note():
                asyncio.run(part_inspector(home, args.transcript_mb, report))
        if "burst" in parts:
            with pressure_note():
                part_burst(
                    home, args.burst_rate, args.burst_seconds, args.burst_warmup, args.terminal,
                    report,
                )  # fmt: skip
    passed = print_report(report)
    print(f"\nwhole run: {time.perf_counter() - started:.0f} s")
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
