"""Ingest benchmark: how close the monitor's receiver comes to a bare Starlette app.

What it measures
    Two servers run side by side on loopback, each in its own process:

    * **bare**: a minimal Starlette app (``POST /webhook`` reads the body and
      answers ``200 {"status": "success"}``) under uvicorn with httptools and
      uvloop, access log off -- the ceiling for a Python receiver here;
    * **monitor**: ``python -m tavus_monitor --headless --no-tunnel`` with a
      durable SQLite store in a temporary directory, stdout (one JSON line per
      stored event) going to a file.

    Each target gets the same load, one after the other in the same run: a
    short warm-up, then a fixed number of keep-alive connections POSTing
    realistic Tavus callback bodies (samples from ``tavus_monitor/samples``,
    each with a unique ``conversation_id`` so every body is new to the
    duplicate index) for a fixed time. The load comes from ``wrk`` (with a Lua
    script) when it is installed, otherwise from a built-in asyncio load
    generator.

    It prints requests/s, p50/p99 latency and errors of each target, the ratio
    monitor/bare, and the *lost* count: after the monitor has stopped, the rows
    in its events table are compared with the 200 answers it gave. An answer
    means "stored", so ``lost = acknowledged - stored`` must be 0 (stored may
    exceed acknowledged by requests still in flight when the load stopped).

    Target: ratio >= 0.6 with 0 lost.

    With ``--forward`` a third target runs: **forward**, the same monitor
    command plus ``--forward-to`` a counting receiver (a bare Starlette app in
    its own process that answers 200 and keeps each forwarded event id). The
    ratio forward/monitor is the forwarding overhead on ingest (both run in the
    same process, on the same loop). Forwarding sends one event at a time, so
    it may fall behind under load: once the load stops the benchmark waits for
    the receiver to have every stored event and prints how long that took, then
    how many stored events it got (missing and sent twice).

How to run
    python bench/ingest.py                      # defaults: 32 connections, 10 s per target
    python bench/ingest.py --generator builtin  # force the built-in generator
    python bench/ingest.py --duration 5 --connections 16 --check   # exit 1 on FAIL
    python bench/ingest.py --forward            # also the monitor with --forward-to
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
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO, cast

ROOT = Path(__file__).resolve().parent.parent
SAMPLES_DIR = ROOT / "tavus_monitor" / "samples"
SAMPLE_NAMES = (
    "system.replica_joined",
    "system.shutdown",
    "application.transcription_ready",
    "application.recording_ready",
)
"""Callback bodies sent, in rotation: small and large, join (extra lookup) and not."""
ID_PLACEHOLDER = "@@CONVERSATION_ID@@"
TARGET_RATIO = 0.6
START_TIMEOUT = 30.0
STOP_TIMEOUT = 60.0
DRAIN_TIMEOUT = 10.0
FORWARD_DRAIN_TIMEOUT = 300.0
"""Seconds the forwarding monitor has, after the load, to send every stored event."""
"""Seconds the built-in generator waits for answers in flight when time is up."""
ID_LENGTH = len("bench-123456bm-0000000000")
"""Length of the conversation ids sent (both generators): tag, target, phase, counter."""
BUSY_WARNING = 0.25
"""Cores busy before the run above which the figures are flagged as disturbed."""
CALLBACK_URL = re.compile(r"Callback URL: http://127\.0\.0\.1:(\d+)(/webhook/\S+)")


# ------------------------------------------------------------------- bodies


@dataclass(frozen=True, slots=True)
class BodyTemplate:
    """A callback body split around its conversation id."""

    name: str
    prefix: bytes
    suffix: bytes


def load_templates(names: Sequence[str] = SAMPLE_NAMES) -> list[BodyTemplate]:
    """The sample bodies, compact JSON as a sender would post them, id left open."""
    templates = []
    for name in names:
        data = json.loads((SAMPLES_DIR / f"{name}.json").read_text(encoding="utf-8"))
        data["conversation_id"] = ID_PLACEHOLDER
        text = json.dumps(data)
        prefix, suffix = text.split(ID_PLACEHOLDER)
        templates.append(BodyTemplate(name, prefix.encode(), suffix.encode()))
    return templates


# ------------------------------------------------------------------ results


@dataclass(slots=True)
class LoadResult:
    """What one generator run against one target saw."""

    duration: float
    """Seconds of measured load."""
    completed: int
    """Responses received within the measured time (for requests/s)."""
    ok: int
    """200 answers, including those to requests in flight when time ran out."""
    non_2xx: int
    errors: int
    """Socket errors, unparseable answers and requests never answered."""
    p50_ms: float
    p99_ms: float
    acked_ids: list[str] | None = None
    """The conversation ids answered 200 (built-in generator only)."""

    @property
    def rps(self) -> float:
        return self.completed / self.duration if self.duration > 0 else 0.0


@dataclass(slots=True)
class TargetResult:
    name: str
    load: LoadResult
    warmup_ok: int
    server_cpu: float
    """Share of one core the server process used during the measured run (1.0 = 100 %)."""
    generator_cpu: float
    other_cpu: float
    """Cores busy with anything else on the machine (other programs, interrupts)."""
    acked_ids: list[str] = field(default_factory=list)


# ------------------------------------------------------- built-in generator


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection sending one request at a time."""

    def __init__(self, generator: BuiltinGenerator) -> None:
        self.generator = generator
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.in_flight: str | None = None
        self.sent_at = 0.0
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.send_next()

    def send_next(self) -> None:
        assert self.transport is not None
        generator = self.generator
        if generator.stopping:
            self.transport.close()
            return
        conversation_id, request = generator.next_request()
        self.in_flight = conversation_id
        self.sent_at = time.perf_counter()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buffer[:end]).lower()
        start = head.find(b"\r\ncontent-length:")
        line_end = head.find(b"\r\n", start + 2)
        try:
            if not head.startswith(b"http/1.1 ") or start < 0:
                raise ValueError("not an HTTP/1.1 answer with a Content-Length")
            length = int(head[start + 17 : line_end if line_end >= 0 else len(head)])
            status = int(head[9:12])
        except ValueError:
            self.fail()
            return
        total = end + 4 + length
        if len(buffer) < total:
            return
        if len(buffer) > total:  # one request at a time: there can be no second answer
            self.fail()
            return
        self.buffer.clear()
        conversation_id, self.in_flight = self.in_flight, None
        assert conversation_id is not None
        self.generator.answered(conversation_id, status, time.perf_counter() - self.sent_at)
        self.send_next()

    def fail(self) -> None:
        self.generator.errors += 1
        self.in_flight = None
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.in_flight is not None:
            self.generator.errors += 1
            self.in_flight = None
        if not self.closed.done():
            self.closed.set_result(None)


class BuiltinGenerator:
    """A light asyncio load generator: ``connections`` keep-alive HTTP/1.1 clients.

    Each connection is a protocol object that sends its next request from the
    callback that completes the previous answer, so the per-request cost is a
    few bytes concatenated, one write and one header scan.
    """

    def __init__(
        self,
        port: int,
        path: str,
        templates: Sequence[BodyTemplate],
        connections: int,
        tag: str,
        keep_ids: bool,
    ) -> None:
        self.port = port
        self.connections = connections
        self.tag = tag
        self.keep_ids = keep_ids
        self.counter = 0
        self.stopping = False
        self.deadline = math.inf
        self.completed = 0
        self.ok = 0
        self.non_2xx = 0
        self.errors = 0
        self.latencies: list[float] = []
        self.acked_ids: list[str] = []
        self._parts: list[tuple[bytes, bytes]] = []
        id_length = len(self._conversation_id(0))
        for template in templates:
            length = len(template.prefix) + id_length + len(template.suffix)
            head = (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"User-Agent: tavus-monitor-bench\r\nContent-Type: application/json\r\n"
                f"Content-Length: {length}\r\n\r\n"
            ).encode()
            self._parts.append((head + template.prefix, template.suffix))

    def _conversation_id(self, number: int) -> str:
        return f"bench-{self.tag}-{number:010d}"

    def next_request(self) -> tuple[str, bytes]:
        number = self.counter
        self.counter += 1
        start, end = self._parts[number % len(self._parts)]
        conversation_id = self._conversation_id(number)
        return conversation_id, start + conversation_id.encode() + end

    def answered(self, conversation_id: str, status: int, seconds: float) -> None:
        if time.perf_counter() <= self.deadline:
            self.completed += 1
            self.latencies.append(seconds)
        if status == 200:
            self.ok += 1
            if self.keep_ids:
                self.acked_ids.append(conversation_id)
        else:
            self.non_2xx += 1

    async def run(self, duration: float) -> LoadResult:
        loop = asyncio.get_running_loop()
        protocols: list[_Connection] = []
        started = time.perf_counter()
        self.deadline = started + duration
        for _ in range(self.connections):
            try:
                _, protocol = await loop.create_connection(
                    lambda: _Connection(self), "127.0.0.1", self.port
                )
            except OSError:
                self.errors += 1
                continue
            protocols.append(protocol)
        await asyncio.sleep(max(0.0, self.deadline - time.perf_counter()))
        self.stopping = True
        elapsed = time.perf_counter() - started
        # Wait for the answers still in flight: they count as acknowledged.
        waiting = [protocol.closed for protocol in protocols]
        if waiting:
            await asyncio.wait(waiting, timeout=DRAIN_TIMEOUT)
            for protocol in protocols:
                if protocol.in_flight is not None:
                    self.errors += 1  # never answered
                    protocol.in_flight = None
                if protocol.transport is not None:
                    protocol.transport.abort()
        latencies = sorted(self.latencies)
        return LoadResult(
            duration=elapsed,
            completed=self.completed,
            ok=self.ok,
            non_2xx=self.non_2xx,
            errors=self.errors,
            p50_ms=percentile(latencies, 50) * 1000,
            p99_ms=percentile(latencies, 99) * 1000,
            acked_ids=self.acked_ids if self.keep_ids else None,
        )


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def run_builtin(
    port: int,
    path: str,
    templates: Sequence[BodyTemplate],
    connections: int,
    duration: float,
    tag: str,
    keep_ids: bool,
) -> LoadResult:
    generator = BuiltinGenerator(port, path, templates, connections, tag, keep_ids)
    return cast(LoadResult, run_async(generator.run(duration)))


def run_async(coroutine: Any) -> Any:
    """Run ``coroutine`` on uvloop when it is installed (lighter), else on asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


# -------------------------------------------------------------------- wrk

_WRK_SCRIPT = """
-- Generated by bench/ingest.py: POST rotating Tavus callback bodies with unique ids.
local templates = {
%(templates)s
}
local path = %(path)s
local headers = {["Content-Type"] = "application/json", ["User-Agent"] = "tavus-monitor-bench"}
local threads = {}
counter = 0
ok = 0
other = 0
tid = 0
tag = "x"

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  if args[1] then tag = args[1] end
end

function request()
  counter = counter + 1
  local t = templates[(counter %% #templates) + 1]
  local id = string.format("bench-%%s-%%02d%%08d", tag, tid, counter)
  return wrk.format("POST", path, headers, t[1] .. id .. t[2])
end

function response(status, hdrs, body)
  if status == 200 then ok = ok + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local total_ok, total_other = 0, 0
  for _, thread in ipairs(threads) do
    total_ok = total_ok + thread:get("ok")
    total_other = total_other + thread:get("other")
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH-RESULT duration_us=%%d requests=%%d ok=%%d other=%%d connect=%%d read=%%d " ..
    "write=%%d status=%%d timeout=%%d p50_us=%%d p99_us=%%d\\n",
    summary.duration, summary.requests, total_ok, total_other,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def lua_string(data: bytes) -> str:
    """``data`` as a Lua string literal (decimal escapes for anything unusual)."""
    out = ['"']
    for byte in data:
        char = chr(byte)
        if char in '"\\' or byte < 32 or byte > 126:
            out.append(f"\\{byte:03d}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def write_wrk_script(directory: Path, path: str, templates: Sequence[BodyTemplate]) -> Path:
    rows = ",\n".join(
        f"  {{{lua_string(template.prefix)}, {lua_string(template.suffix)}}}"
        for template in templates
    )
    script = directory / "ingest.lua"
    script.write_text(
        _WRK_SCRIPT % {"templates": rows, "path": lua_string(path.encode())}, encoding="utf-8"
    )
    return script


def run_wrk(
    port: int,
    script: Path,
    connections: int,
    threads: int,
    duration: float,
    tag: str,
) -> LoadResult:
    command = [
        "wrk",
        f"-t{max(1, min(threads, connections))}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}",
        "--",
        tag,
    ]
    finished = subprocess.run(
        command, capture_output=True, text=True, timeout=duration + 60, check=False
    )
    match = re.search(r"^BENCH-RESULT (.*)$", finished.stdout, re.MULTILINE)
    if finished.returncode != 0 or match is None:
        raise BenchError(
            f"wrk failed (exit {finished.returncode}):\n{finished.stdout}\n{finished.stderr}"
        )
    data = {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", match.group(1))}
    socket_errors = data["connect"] + data["read"] + data["write"] + data["timeout"]
    return LoadResult(
        duration=data["duration_us"] / 1e6,
        completed=data["requests"],
        ok=data["ok"],
        non_2xx=data["other"],
        errors=socket_errors,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
    )


# ---------------------------------------------------------------- servers


class BenchError(Exception):
    """The benchmark could not run (a server did not start, wrk failed, ...)."""


def serve_bare(port: int) -> None:
    """The baseline receiver; prints ``PORT n`` on stdout once it is bound."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def webhook(request: Request) -> Response:
        await request.body()
        return JSONResponse({"status": "success"})

    app = Starlette(routes=[Route("/webhook", webhook, methods=["POST"])])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        # Same as the monitor's server (tavus_monitor.server.make_server).
        server_header=False,
        date_header=False,
        timeout_keep_alive=30,
    )
    uvicorn.Server(config).run(sockets=[sock])


def serve_receiver(port: int) -> None:
    """The handler ``--forward`` forwards to: answers 200, keeps each event id it got;
    ``GET /count`` says how many requests came and how many distinct events."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    seen: set[str] = set()
    total = 0

    async def forwarded(request: Request) -> Response:
        nonlocal total
        await request.body()
        total += 1
        seen.add(request.headers.get("x-tavus-monitor-event-id", ""))
        return JSONResponse({"ok": True})

    async def count(request: Request) -> Response:
        return JSONResponse({"requests": total, "events": len(seen)})

    app = Starlette(
        routes=[
            Route("/forward", forwarded, methods=["POST"]),
            Route("/count", count, methods=["GET"]),
        ]
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(
        app, loop="uvloop", http="httptools", lifespan="off", access_log=False, log_level="warning"
    )
    uvicorn.Server(config).run(sockets=[sock])


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    path: str
    log: Path

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.process.pid)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all its threads), from /proc; 0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return (total - idle) / ticks, total / ticks


def background_load(seconds: float = 1.0) -> float:
    """Cores kept busy by other programs over ``seconds`` before the benchmark starts."""
    busy_before, _ = machine_cpu_seconds()
    time.sleep(seconds)
    busy_after, _ = machine_cpu_seconds()
    return (busy_after - busy_before) / seconds


def clean_env() -> dict[str, str]:
    """This environment without TAVUS_MONITOR_* settings that could change the monitor."""
    return {key: value for key, value in os.environ.items() if not key.startswith("TAVUS_MONITOR_")}


def wait_for_line(
    log: Path, process: subprocess.Popen[bytes], pattern: re.Pattern[str]
) -> re.Match[str]:
    """Wait until ``pattern`` appears in the server's ``log``; fail if it exits first."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        match = pattern.search(text)
        if match:
            return match
        if process.poll() is not None:
            raise BenchError(f"server exited with {process.returncode} before listening:\n{text}")
        time.sleep(0.05)
    raise BenchError(f"server not listening after {START_TIMEOUT:g} s; see {log}")


def start_bare(workdir: Path, role: str = "bare") -> Server:
    """The bare receiver (``role="bare"``) or the counting one ``--forward`` forwards to."""
    log = workdir / f"{role}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), f"--serve-{role}", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=clean_env(),
        )
    match = wait_for_line(log, process, re.compile(r"^PORT (\d+)$", re.MULTILINE))
    path = "/webhook" if role == "bare" else "/forward"
    return Server(role, process, int(match.group(1)), path, log)


def start_monitor(workdir: Path, name: str = "monitor", forward_to: str | None = None) -> Server:
    data_dir = workdir / name
    data_dir.mkdir()
    config = workdir / "config.toml"
    config.write_text("", encoding="utf-8")  # isolate from the user's own config file
    token = secrets.token_hex(16)  # hex: a urlsafe token may start with "-", read as an option
    log = workdir / f"{name}.stderr"
    command = [
        sys.executable,
        "-m",
        "tavus_monitor",
        "--headless",
        "--no-tunnel",
        "--port",
        "0",
        "--db",
        str(database(workdir, name)),
        f"--token={token}",
        "--data-dir",
        str(data_dir),
        "--config",
        str(config),
        *(["--forward-to", forward_to] if forward_to else []),
    ]
    with log.open("wb") as err, (workdir / f"{name}.stdout").open("wb") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            env=clean_env(),
        )
    match = wait_for_line(log, process, CALLBACK_URL)
    return Server(name, process, int(match.group(1)), match.group(2), log)


def database(workdir: Path, name: str) -> Path:
    """The store file of the monitor called ``name`` (``events.db`` for the plain one)."""
    return workdir / ("events.db" if name == "monitor" else f"{name}.db")


def stop(server: Server, signum: int) -> int:
    """Signal ``server`` and wait for it; kill it if it does not stop in time."""
    if server.process.poll() is None:
        server.process.send_signal(signum)
        try:
            server.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
            raise BenchError(f"{server.name} did not stop within {STOP_TIMEOUT:g} s") from None
    return server.process.returncode


@contextlib.contextmanager
def running(servers: list[Server]) -> Iterator[None]:
    """Make sure every started server is gone when the benchmark ends, even on error."""
    try:
        yield
    finally:
        for server in servers:
            if server.process.poll() is None:
                server.process.kill()
                server.process.wait()


# -------------------------------------------------------------- the run


@dataclass
class Options:
    duration: float
    warmup: float
    connections: int
    generator: str
    wrk_threads: int
    check: bool
    keep: bool
    target_ratio: float = TARGET_RATIO
    forward: bool = False


def drive(
    server: Server,
    options: Options,
    templates: Sequence[BodyTemplate],
    script: Path | None,
    run_tag: str,
) -> TargetResult:
    """Warm ``server`` up, then measure it under the configured load."""
    keep_ids = server.name in ("monitor", "forward") and options.generator == "builtin"
    acked: list[str] = []

    def one(duration: float, phase: str) -> LoadResult:
        tag = f"{run_tag}{server.name[0]}{phase}"
        if options.generator == "wrk":
            assert script is not None
            return run_wrk(
                server.port, script, options.connections, options.wrk_threads, duration, tag
            )
        return run_builtin(
            server.port, server.path, templates, options.connections, duration, tag, keep_ids
        )

    warmup_ok = 0
    if options.warmup > 0:
        warm = one(options.warmup, "w")
        warmup_ok = warm.ok
        acked.extend(warm.acked_ids or [])
    server_before = server.cpu_seconds()
    machine_before = machine_cpu_seconds()
    own_before = os.times()
    wall_before = time.perf_counter()
    load = one(options.duration, "m")
    wall = time.perf_counter() - wall_before
    own_after = os.times()
    machine_after = machine_cpu_seconds()
    server_cpu = (server.cpu_seconds() - server_before) / wall
    if options.generator == "wrk":
        generator_seconds = (own_after.children_user + own_after.children_system) - (
            own_before.children_user + own_before.children_system
        )
    else:
        generator_seconds = (own_after.user + own_after.system) - (
            own_before.user + own_before.system
        )
    acked.extend(load.acked_ids or [])
    machine_cpu = (machine_after[0] - machine_before[0]) / wall
    generator_cpu = generator_seconds / wall
    other_cpu = max(0.0, machine_cpu - server_cpu - generator_cpu)
    return TargetResult(server.name, load, warmup_ok, server_cpu, generator_cpu, other_cpu, acked)


@dataclass
class StoreCheck:
    acknowledged: int
    stored: int
    rejected: int
    missing_ids: int | None
    stdout_lines: int
    exit_code: int

    @property
    def lost(self) -> int:
        by_count = max(0, self.acknowledged - self.stored)
        return max(by_count, self.missing_ids or 0)


def check_store(
    workdir: Path, result: TargetResult, exit_code: int, name: str = "monitor"
) -> StoreCheck:
    """Count what the stopped monitor kept against what it acknowledged."""
    uri = f"file:{database(workdir, name)}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        stored = db.execute("SELECT count(*) FROM events").fetchone()[0]
        rejected = db.execute("SELECT count(*) FROM rejected").fetchone()[0]
        missing: int | None = None
        if result.acked_ids:
            kept = {row[0] for row in db.execute("SELECT conversation_id FROM events")}
            missing = sum(1 for conversation_id in result.acked_ids if conversation_id not in kept)
    with (workdir / f"{name}.stdout").open("rb") as handle:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    return StoreCheck(
        acknowledged=result.warmup_ok + result.load.ok,
        stored=stored,
        rejected=rejected,
        missing_ids=missing,
        stdout_lines=lines,
        exit_code=exit_code,
    )


@dataclass
class ForwardCheck:
    stored: int
    received: int
    """Requests the receiver got (an event sent twice counts twice)."""
    events: int
    """Distinct events the receiver got."""
    drain_seconds: float | None
    """Seconds from the end of the load until the receiver had every stored event
    (None: it did not within :data:`FORWARD_DRAIN_TIMEOUT`)."""
    behind: int
    """Stored events the receiver had not got yet when the load stopped."""

    @property
    def drain_rate(self) -> float:
        """Events forwarded per second while catching up (the load had stopped)."""
        return self.behind / self.drain_seconds if self.drain_seconds else 0.0

    @property
    def missing(self) -> int:
        return max(0, self.stored - self.events)

    @property
    def twice(self) -> int:
        return self.received - self.events


def stored_count(workdir: Path, name: str) -> int:
    uri = f"file:{database(workdir, name)}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])


def received_count(receiver: Server) -> tuple[int, int]:
    """(requests, distinct events) the counting receiver has had so far."""
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=10) as sock:
        sock.sendall(b"GET /count HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    counts = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    return int(counts["requests"]), int(counts["events"])


def wait_drained(
    workdir: Path, receiver: Server, name: str = "forward"
) -> tuple[float | None, int]:
    """Seconds until the receiver has every event the running monitor stored (None: not
    in time), and how many it lacked at the start."""
    started = time.perf_counter()
    behind = stored_count(workdir, name) - received_count(receiver)[1]
    deadline = time.monotonic() + FORWARD_DRAIN_TIMEOUT
    while time.monotonic() < deadline:
        if received_count(receiver)[1] >= stored_count(workdir, name):
            return time.perf_counter() - started, behind
        time.sleep(0.05)
    return None, behind


def choose_generator(wanted: str) -> str:
    if wanted == "auto":
        return "wrk" if shutil.which("wrk") else "builtin"
    if wanted == "wrk" and not shutil.which("wrk"):
        raise BenchError("--generator wrk: wrk is not installed (apt-get install wrk)")
    return wanted


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def machine_line() -> str:
    cpus = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    return (
        f"{cpus} CPUs ({usable} usable), {platform.system()} {platform.release()} "
        f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}; "
        f"uvicorn {version('uvicorn')}, starlette {version('starlette')}, "
        f"uvloop {version('uvloop')}, httptools {version('httptools')}"
    )


def filesystem(path: Path) -> str:
    """The file system type holding ``path`` (from /proc/mounts), or "unknown"."""
    best, kind = "", "unknown"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    target = str(path.resolve())
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1]
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, fields[2]
    return kind


def monitor_line(workdir: Path) -> str:
    """Which tavus_monitor was measured (version, git commit) and where its database was."""
    init = (ROOT / "tavus_monitor" / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r"__version__\s*=\s*[\"']([^\"']+)", init)
    version_text = found.group(1) if found else "?"
    commit = "no git"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "tavus_monitor"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
        if head:
            commit = f"git {head}" + (" + uncommitted changes" if dirty else "")
    return (
        f"tavus_monitor {version_text} ({commit}); "
        f"database on {filesystem(workdir)} in {workdir.parent}"
    )


def generator_line(generator: str, options: Options) -> str:
    if generator == "wrk":
        first = subprocess.run(
            ["wrk", "--version"], capture_output=True, text=True, check=False, timeout=10
        ).stdout.splitlines()
        name = first[0].split(" Copyright")[0] if first else "wrk"
        name += f", {options.wrk_threads} thread(s)"
    else:
        name = "builtin (asyncio protocol, uvloop)" if version("uvloop") != "absent" else "builtin"
    return (
        f"{name}; {options.connections} keep-alive connections, "
        f"{options.warmup:g} s warm-up + {options.duration:g} s per target"
    )


def report(
    out: TextIO,
    generator: str,
    options: Options,
    templates: Sequence[BodyTemplate],
    results: list[TargetResult],
    store: StoreCheck,
    background: float,
    described: str,
    forwarded: ForwardCheck | None = None,
) -> bool:
    sizes = [len(t.prefix) + len(t.suffix) + ID_LENGTH for t in templates]
    write = out.write
    write("tavus-monitor ingest benchmark\n")
    write(f"machine:   {machine_line()}\n")
    write(f"monitor:   {described}\n")
    write(f"idle load: {background:.2f} cores busy with other programs just before the run\n")
    if background > BUSY_WARNING:
        write(
            "warning:   the machine was not idle; every figure below is lower than it should "
            "be (see 'other CPU')\n"
        )
    write(f"generator: {generator_line(generator, options)}\n")
    write(
        f"bodies:    {', '.join(t.name for t in templates)} in rotation, "
        f"{min(sizes)}-{max(sizes)} bytes, a unique conversation_id each\n\n"
    )
    header = (
        f"{'target':<9}{'requests/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'answered':>10}"
        f"{'non-2xx':>9}{'errors':>8}{'server CPU':>12}{'load CPU':>10}{'other CPU':>11}\n"
    )
    write(header)
    write("-" * (len(header) - 1) + "\n")
    for result in results:
        load = result.load
        write(
            f"{result.name:<9}{load.rps:>11,.0f}{load.p50_ms:>9.2f}{load.p99_ms:>9.2f}"
            f"{load.completed:>10,}{load.non_2xx:>9,}{load.errors:>8,}"
            f"{result.server_cpu:>11.0%} {result.generator_cpu:>9.0%} {result.other_cpu:>10.0%}\n"
        )
    bare, monitor, *forwarding = results
    ratio = monitor.load.rps / bare.load.rps if bare.load.rps else 0.0
    write("\n")
    write(f"ratio monitor/bare: {ratio:.2f}  (target >= {options.target_ratio:.2f})\n")
    ids = "" if store.missing_ids is None else f", acknowledged ids missing {store.missing_ids:,}"
    write(
        f"monitor store: acknowledged {store.acknowledged:,} (warm-up included), "
        f"stored {store.stored:,}, rejected {store.rejected:,}{ids}, "
        f"stdout lines {store.stdout_lines:,}, exit code {store.exit_code}\n"
    )
    write(f"lost: {store.lost:,}\n")
    failures = []
    if forwarding and forwarded is not None:
        (forward,) = forwarding
        overhead = forward.load.rps / monitor.load.rps if monitor.load.rps else 0.0
        write(
            f"forwarding overhead on ingest: forward/monitor requests/s = {overhead:.2f} "
            f"({forward.load.rps:,.0f} vs {monitor.load.rps:,.0f})\n"
        )
        drained = (
            f"in {forwarded.drain_seconds:.1f} s after the load stopped"
            if forwarded.drain_seconds is not None
            else f"not within {FORWARD_DRAIN_TIMEOUT:g} s"
        )
        write(
            f"forwarded: the receiver got {forwarded.events:,} of {forwarded.stored:,} stored "
            f"events ({forwarded.missing:,} missing, {forwarded.twice:,} sent twice), all of "
            f"them {drained}\n"
        )
        write(
            f"forwarding rate: {forwarded.drain_rate:,.0f} events/s while catching up "
            f"({forwarded.behind:,} behind when the load stopped)\n"
        )
        if forwarded.missing:
            failures.append(f"{forwarded.missing:,} stored but not forwarded")
    if ratio < options.target_ratio:
        failures.append(f"ratio {ratio:.2f} < {options.target_ratio:.2f}")
    if store.lost:
        failures.append(f"{store.lost:,} acknowledged but not stored")
    errors = monitor.load.errors + monitor.load.non_2xx
    if errors:
        failures.append(f"monitor gave {errors:,} errors/non-2xx answers")
    write(f"result: {'FAIL (' + '; '.join(failures) + ')' if failures else 'PASS'}\n")
    out.flush()
    return not failures


def run(options: Options) -> bool:
    generator = choose_generator(options.generator)
    options.generator = generator
    templates = load_templates()
    run_tag = secrets.token_hex(3)
    background = background_load()
    workdir = Path(tempfile.mkdtemp(prefix="tavus-bench-"))
    servers: list[Server] = []
    try:
        with running(servers):
            bare = start_bare(workdir)
            servers.append(bare)
            monitor = start_monitor(workdir)
            servers.append(monitor)
            targets = [bare, monitor]
            receiver = None
            if options.forward:
                receiver = start_bare(workdir, "receiver")
                servers.append(receiver)
                forward_to = f"http://127.0.0.1:{receiver.port}{receiver.path}"
                targets.append(start_monitor(workdir, "forward", forward_to))
                servers.append(targets[-1])
            print(
                f"bare on :{bare.port}, monitor on :{monitor.port} (files in {workdir}); "
                f"about {len(targets) * (options.warmup + options.duration):.0f} s of load...",
                file=sys.stderr,
                flush=True,
            )
            results = []
            for server in targets:
                script = None
                if generator == "wrk":
                    script = write_wrk_script(workdir, server.path, templates)
                results.append(drive(server, options, templates, script, run_tag))
            stop(bare, signal.SIGTERM)
            exit_code = stop(monitor, signal.SIGINT)
            forwarded = None
            if receiver is not None:
                drain, behind = wait_drained(workdir, receiver)
                stop(targets[2], signal.SIGINT)
                received, events = received_count(receiver)
                stored = stored_count(workdir, "forward")
                forwarded = ForwardCheck(stored, received, events, drain, behind)
                stop(receiver, signal.SIGTERM)
        store = check_store(workdir, results[1], exit_code)
        described = monitor_line(workdir)
        return report(
            sys.stdout,
            generator,
            options,
            templates,
            results,
            store,
            background,
            described,
            forwarded,
        )
    finally:
        if options.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Compare the monitor's ingest rate with a bare Starlette receiver."
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=10.0,
        help="seconds of load per target (default 10; whole seconds with wrk)",
    )
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds of warm-up per target (default 2)"
    )
    parser.add_argument(
        "--connections", type=int, default=32, help="keep-alive connections (default 32)"
    )
    parser.add_argument(
        "--generator",
        choices=("auto", "wrk", "builtin"),
        default="auto",
        help="load generator: wrk when installed (auto, the default) or the built-in one",
    )
    parser.add_argument(
        "--wrk-threads", type=int, default=1, help="wrk threads (default 1: it shares 2 cores)"
    )
    parser.add_argument(
        "--target-ratio",
        type=float,
        default=TARGET_RATIO,
        help=f"least monitor/bare requests/s ratio that passes (default {TARGET_RATIO:g})",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 on FAIL: ratio under target, anything lost, or monitor errors",
    )
    parser.add_argument(
        "--forward",
        action="store_true",
        help="also measure the monitor with --forward-to a counting receiver (its own process)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--serve-receiver", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 0 < args.duration <= 120 or not 0 <= args.warmup <= 30:
        parser.error("--duration must be in (0, 120] and --warmup in [0, 30] seconds")
    if not 1 <= args.connections <= 1000:
        parser.error("--connections must be 1 to 1000")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_bare is not None:
        serve_bare(args.serve_bare)
        return 0
    if args.serve_receiver is not None:
        serve_receiver(args.serve_receiver)
        return 0
    options = Options(
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        generator=args.generator,
        wrk_threads=args.wrk_threads,
        check=args.check,
        keep=args.keep,
        target_ratio=args.target_ratio,
        forward=args.forward,
    )
    try:
        passed = run(options)
    except BenchError as exc:
        print(f"bench/ingest.py: {exc}", file=sys.stderr)
        return 2
    return 0 if passed or not options.check else 1


if __name__ == "__main__":
    sys.exit(main())
