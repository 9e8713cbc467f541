"""Live traffic against the real ``tavus-monitor`` in a real terminal (bench/tui.py parts 3, 5).

The monitor runs as users run it, the installed console script in its own
process, drawing into a pseudo-terminal of 120×35 (:mod:`terminal`: one this
benchmark reads, or tmux); the load comes from another process
(:mod:`load`): whole conversations, eight callbacks each in Tavus's order,
on an open-loop schedule. Each figure is printed beside the same load on
``tavus-monitor --headless`` (JSON lines drained from a pipe, as ``| jq``
would), the baseline that has no screen.

* **POST → 200**: due time → answer, per request, from the client.
* **POST → row on screen**: due time → the first byte stream in which the
  terminal received that row (the System pane's join and shutdown rows, found
  by their conversation id: two of each conversation's eight callbacks).
* **CPU per callback**: the monitor's process and its writer child, from
  ``/proc``.
* **Lost**: after the monitor has quit, every callback answered 200 must be in
  its store.

Why this replaced the in-process measurement (``App.run_test``, an httpx
client): at 1,000/s that reported seconds of backlog and 2.2-4 ms of loop time
per callback, while the same app in a terminal cost 0.84 ms per callback.
Taken apart on this machine (code at d465744, 3,000 callbacks at 1,000/s):

* the in-process app was not the difference: under ``run_test`` with this
  load generator it cost 0.73 ms per callback, and the old bench's frame hook
  changed that by 3 %;
* the client was: httpx from one process managed about 150 requests/s here
  (its 3,000 requests took 19 s even against ``--headless``, 26 s against the
  dashboard in a terminal), and it stamped each send before waiting for a
  pooled connection, so its own queue was reported as the monitor's backlog,
  and the dashboard's cost per frame, spread over a run eight times longer
  than scheduled, as a cost per callback (4.4 ms against the real process);
* and an in-process run cannot see what a terminal costs: the driver's writer
  thread, the bytes a terminal must read.

So here the load is a raw-socket open-loop client that keeps its schedule
(``late`` is printed), latency is counted from each request's due time, and
the monitor is the installed program in a terminal.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from terminal import TERMINALS, OutputTap, Terminal

HERE = Path(__file__).resolve().parent
TOKEN = "benchtoken"
ROW = re.compile(r"(ended|joined)[^\x00]{1,40}?(c\d{11})")
"""A System pane row: what happened ("ended  left · timeout", "joined r79e…"), then the
12-character conversation id, within one line of the pane."""
ROW_EVENTS = {"joined": "system.replica_joined", "ended": "system.shutdown"}
"""Which callback each row kind shows first (the pal_joined row comes after the replica's)."""
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def monitor_command() -> list[str]:
    """The installed console script when there is one (what users run), else the module."""
    script = Path(sys.executable).with_name("tavus-monitor")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tavus_monitor"]


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its children (the writer process), all threads."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            pids += [int(c) for c in (task / "children").read_text().split()]
    for one in pids:
        with contextlib.suppress(OSError, IndexError):
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def wait_healthy(port: int, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the monitor did not answer on port {port}") from None
            time.sleep(0.05)


def wait_quiet(pid: int, timeout: float = 20.0, window: float = 0.3) -> None:
    """Until ``pid`` (and children) used under 10 % of a core over ``window``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = tree_cpu_seconds(pid)
        time.sleep(window)
        if tree_cpu_seconds(pid) - before < 0.1 * window:
            return


class Headless:
    """``tavus-monitor --headless``, its JSON lines drained from a pipe."""

    name = "headless"

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [*argv, "--headless"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd="/",
        )
        self.pid = self.process.pid
        self.lines = 0
        assert self.process.stdout is not None
        self._drain = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self._drain.start()

    def _read(self, stream: Any) -> None:
        for _ in stream:
            self.lines += 1

    def quit(self) -> None:
        self.process.send_signal(2)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._drain.join(timeout=5)


@dataclass
class Run:
    """One load against one target."""

    target: str
    rate: float
    count: int
    ack: list[float] = field(default_factory=list)
    """Seconds from due to 200, per answered request."""
    rows: list[float] = field(default_factory=list)
    """Seconds from due to the row in the terminal's output."""
    rows_missing: int = 0
    failed: int = 0
    lost: int = 0
    cpu_per_callback: float = 0.0
    client_late: float = 0.0
    terminal_bytes: int = 0


def drive(
    target: str,
    data_dir: Path,
    rate: float,
    seconds: float,
    warmup: int,
    *,
    terminal: str = "pty",
    size: tuple[int, int] = (120, 35),
    watch_rows: bool = False,
) -> Run:
    """Start the monitor (``target``: "dashboard" or "headless"), load it, stop it, check it."""
    port = free_port()
    env = {**os.environ, "TAVUS_MONITOR_DATA_DIR": str(data_dir)}
    env.pop("TEXTUAL", None)
    argv = [*monitor_command(), "--data-dir", str(data_dir), "--no-tunnel"]
    argv += ["--port", str(port), "--token", TOKEN]
    url = f"http://127.0.0.1:{port}/webhook/{TOKEN}"
    count = int(rate * seconds)
    screen: Terminal | None = None
    headless: Headless | None = None
    if target == "dashboard":
        tap = OutputTap()
        tap.watch(r"(?:Callback URL|Local URL only)\s+http\S+")  # --no-tunnel: local only
        screen = TERMINALS[terminal](argv, size, env, tap)
        pid = screen.pid
    else:
        headless = Headless(argv, env)
        pid = headless.pid
    try:
        wait_healthy(port)
        if screen is not None and not screen.tap.wait_for(bool, START_TIMEOUT):
            raise RuntimeError("the dashboard never showed its callback URL")
        wait_quiet(pid)
        if warmup:
            _client(url, rate, warmup, "w")
            wait_quiet(pid)
        if screen is not None and watch_rows:
            screen.tap.watch(ROW.pattern)
        bytes_before = screen.tap.bytes if screen is not None else 0
        cpu_before = tree_cpu_seconds(pid)
        result = _client(url, rate, count, "c")
        if screen is not None and watch_rows:
            screen.tap.wait_for(lambda seen: False, 1.0)  # the frames after the last batch
        cpu = tree_cpu_seconds(pid) - cpu_before
        run = Run(target, rate, count, cpu_per_callback=cpu / count, client_late=result["late"])
        if screen is not None:
            run.terminal_bytes = screen.tap.bytes - bytes_before
        _collect(run, result, screen.tap.seen if screen is not None and watch_rows else None)
    finally:
        if screen is not None:
            screen.quit("q")
        if headless is not None:
            headless.quit()
    run.lost = _lost(data_dir / "events.db", result)
    return run


def _client(url: str, rate: float, count: int, prefix: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(HERE / "load.py"), url, "--rate", str(rate), "--count", str(count),
         "--prefix", prefix],
        capture_output=True, check=True, timeout=count / rate + 120, cwd=str(HERE),
    )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _collect(run: Run, result: dict[str, Any], seen: dict[str, float] | None) -> None:
    names, ids = result["names"], result["ids"]
    first: dict[tuple[str, str], float] = {}
    for index, (due, _sent, answered, status) in enumerate(result["sends"]):
        if status != 200:
            run.failed += 1
            continue
        run.ack.append(answered - due)
        first[(ids[index], names[index % len(names)])] = due
    if seen is None:
        return
    stamps: dict[tuple[str, str], float] = {}
    for text, when in seen.items():
        match = ROW.fullmatch(text)
        if match:
            key = (match.group(2), ROW_EVENTS[match.group(1)])
            stamps[key] = min(when, stamps.get(key, when))
    for key, due in first.items():
        if key[1] not in ROW_EVENTS.values():
            continue
        if key in stamps:
            run.rows.append(stamps[key] - due)
        else:
            run.rows_missing += 1


def _lost(db: Path, result: dict[str, Any]) -> int:
    """Callbacks answered 200 that are not in the store."""
    names, ids = result["names"], result["ids"]
    acked = {
        (ids[i], names[i % len(names)]) for i, send in enumerate(result["sends"]) if send[3] == 200
    }
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        stored = set(
            conn.execute(
                "SELECT conversation_id, event_type FROM events WHERE conversation_id LIKE 'c%'"
            )
        )
    return len(acked - stored)
