"""Edge benchmark: what a real delivery gets while someone abuses the monitor's open port.

What it measures
    The real monitor (``python -m tavus_monitor --headless --no-tunnel --port 0``) runs as
    a subprocess with a durable store in a temporary directory; everything stays on
    loopback and every step is bounded in count and time.

    (a) **slowloris**: with the monitor's descriptor limit set to 1024 (soft and hard,
        as ``ulimit -n 1024`` does), 1,100 connections each send
        ``GET / HTTP/1.1\\r\\nHost: x\\r\\n`` and stop. Then real deliveries are posted,
        one connection each: the status of each (200, or the error the sender got) and
        its latency; how many descriptors the monitor holds; how many of the attack
        connections the monitor has closed right away, and after its header deadline.
    (b) **giant header**: while a real sender posts deliveries back to back, one and
        then four clients stream a header value of up to ``--header-mb`` MB each and
        hold their connections open; a client that is cut off connects again and
        starts over, so the attack lasts the whole round. p50/p99 of the real
        deliveries (before and during the attack), how far the attackers got, and the
        monitor's RSS growth (``VmRSS`` in ``/proc/<pid>/status``, sampled every 0.1 s).
    (c) **overhead**: the cost the guarded protocol adds to each request, with no
        network and no app: the same keep-alive request (a Tavus-sized set of headers
        and a 1 KiB body) is fed to uvicorn's ``HttpToolsProtocol`` and to the monitor's
        guarded one, the response marked complete as uvicorn does after sending it;
        best of several rounds, per request. Needs the code of this checkout.

How to run
    python bench/edge.py                              # the code in this checkout
    python bench/edge.py --checkout /tmp/base-edge    # another tree (e.g. before a fix)
    python bench/edge.py --part slowloris             # or --part headers, --part overhead

    The chosen tree is put first on PYTHONPATH and used as the working directory, and
    the benchmark prints which ``tavus_monitor`` the monitor imported.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import platform
import re
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CALLBACK_URL = re.compile(r"Callback URL: http://127\.0\.0\.1:(\d+)(/webhook/\S+)")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
SLOW_REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n"
DELIVERY = b'{"event_type": "system.shutdown", "conversation_id": "edge-%d"}'
DEFAULT_HEADER_TIMEOUT = 10.0
"""The monitor's default header deadline (``--header-timeout``), for the 'after' check."""


# ---------------------------------------------------------------- the monitor


@dataclass
class Monitor:
    """A running ``tavus-monitor --headless`` and where to reach it."""

    process: subprocess.Popen[bytes]
    port: int
    path: str
    stderr: list[str]
    package: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def descriptors(self) -> int:
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return -1

    def rss_mb(self) -> float:
        try:
            with open(f"/proc/{self.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return float("nan")


def monitor_env(checkout: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAVUS_MONITOR_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(checkout), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    env["XDG_CONFIG_HOME"] = str(home / "config")
    env["PYTHONIOENCODING"] = "utf-8"
    return env


@contextlib.contextmanager
def running_monitor(checkout: Path, nofile: int | None) -> Iterator[Monitor]:
    """Start the monitor from ``checkout`` (descriptor limit ``nofile``), stop it after."""
    with tempfile.TemporaryDirectory(prefix="edge-bench-") as tmp:
        home = Path(tmp)
        env = monitor_env(checkout, home)
        package = subprocess.run(
            [sys.executable, "-c", "import tavus_monitor; print(tavus_monitor.__file__)"],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=START_TIMEOUT,
        ).stdout.strip()

        def limit() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        token = "edge-" + secrets.token_hex(8)
        command = [
            sys.executable,
            "-m",
            "tavus_monitor",
            "--headless",
            "--no-tunnel",
            "--port",
            "0",
            "--token",
            token,
            "--data-dir",
            str(home / "data"),
        ]
        with (home / "stdout.jsonl").open("wb") as out:
            process = subprocess.Popen(
                command,
                cwd=checkout,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.PIPE,
                preexec_fn=limit,  # only setrlimit, before exec
            )
        lines: list[str] = []
        found = threading.Event()
        where: list[tuple[int, str]] = []

        def read() -> None:
            assert process.stderr is not None
            for raw in process.stderr:
                text = raw.decode("utf-8", "replace").rstrip("\n")
                lines.append(text)
                match = CALLBACK_URL.search(text)
                if match and not found.is_set():
                    where.append((int(match.group(1)), match.group(2)))
                    found.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            if not found.wait(START_TIMEOUT):
                raise SystemExit("the monitor did not start:\n" + "\n".join(lines))
            port, path = where[0]
            yield Monitor(process, port, path, lines, package)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(STOP_TIMEOUT)
            reader.join(STOP_TIMEOUT)


# ---------------------------------------------------------------- a real sender


@dataclass
class Answer:
    outcome: str
    """``"200"`` (or another status), or what the sender got instead: reset, timeout ..."""
    seconds: float


def deliver(port: int, path: str, number: int, timeout: float) -> Answer:
    """One delivery on its own connection, as Tavus sends them."""
    body = DELIVERY % number
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        outcome = str(response.status)
    except ConnectionResetError:
        outcome = "connection reset"
    except http.client.RemoteDisconnected:
        outcome = "closed without an answer"
    except TimeoutError:
        outcome = f"no answer within {timeout:g} s"
    except OSError as exc:
        outcome = f"error: {exc.strerror or exc}"
    finally:
        connection.close()
    return Answer(outcome, time.perf_counter() - started)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def describe(answers: list[Answer]) -> str:
    counts = Counter(answer.outcome for answer in answers)
    ok = [answer.seconds * 1000 for answer in answers if answer.outcome == "200"]
    text = ", ".join(f"{count} × {outcome}" for outcome, count in counts.most_common())
    if ok:
        text += (
            f"; 200s: p50 {statistics.median(ok):.1f} ms, p99 {percentile(ok, 0.99):.1f} ms, "
            f"max {max(ok):.1f} ms"
        )
    return text


# ---------------------------------------------------------------- (a) slowloris


def still_open(sock: socket.socket) -> bool:
    """Whether the monitor still holds this connection open (it sent nothing back)."""
    try:
        data = sock.recv(1024, socket.MSG_DONTWAIT | socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        return False
    del data  # b"" = closed; anything else is an answer (408) sent before closing
    return False


def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def part_slowloris(args: argparse.Namespace) -> None:
    print(f"\n(a) slowloris: {args.connections} incomplete connections, monitor ulimit -n 1024")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.connections + 256
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    with running_monitor(args.checkout, 1024) as monitor:
        print(f"    code under test: {monitor.package}")
        before = [deliver(monitor.port, monitor.path, n, 5.0) for n in range(5)]
        print(f"    before the attack: {describe(before)}; descriptors {monitor.descriptors()}")

        attack: list[socket.socket] = []
        failed = 0
        started = time.monotonic()
        for _ in range(args.connections):
            try:
                sock = socket.create_connection(("127.0.0.1", monitor.port), timeout=2)
                sock.sendall(SLOW_REQUEST)
                sock.settimeout(None)  # blocking: still_open's MSG_DONTWAIT peek returns at once
                attack.append(sock)
            except OSError:
                failed += 1
        print(
            f"    attack: {len(attack)} connections open ({failed} failed to connect) "
            f"in {time.monotonic() - started:.1f} s"
        )
        try:
            # Let the monitor accept what it will (the descriptor count settles).
            previous = -2
            for _ in range(30):
                time.sleep(0.2)
                current = monitor.descriptors()
                if current == previous:
                    break
                previous = current
            held = sum(still_open(sock) for sock in attack)
            print(
                f"    monitor descriptors: {monitor.descriptors()} (limit 1024); "
                f"attack connections still open: {held}"
            )
            during = [
                deliver(monitor.port, monitor.path, 100 + n, args.timeout)
                for n in range(args.deliveries)
            ]
            print(f"    real deliveries during the attack: {describe(during)}")
            deadline = DEFAULT_HEADER_TIMEOUT + 2.0
            wait_until(lambda: not any(still_open(sock) for sock in attack), deadline, 0.5)
            held = sum(still_open(sock) for sock in attack)
            print(
                f"    {time.monotonic() - started:.0f} s after the attack began: "
                f"{held} attack connections still open; descriptors {monitor.descriptors()}"
            )
            after = [
                deliver(monitor.port, monitor.path, 200 + n, args.timeout)
                for n in range(args.deliveries)
            ]
            print(f"    real deliveries, attackers still connected: {describe(after)}")
        finally:
            for sock in attack:
                sock.close()


# ---------------------------------------------------------------- (b) giant headers


@dataclass
class Attacker:
    sent: int = 0
    connections: int = 0
    ended: str = "still streaming when time was up"
    answers: Counter[str] = field(default_factory=Counter)
    sockets: list[socket.socket] = field(default_factory=list)


def stream_header(port: int, path: str, limit: int, stop: threading.Event, into: Attacker) -> None:
    """Send a request line and one header value that never ends, up to ``limit`` bytes.

    Cut off, the attacker connects again and starts over, until ``stop``; having sent it
    all, it holds the connection open.
    """
    chunk = b"a" * (1024 * 1024)
    while not stop.is_set():
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError as exc:
            into.ended = f"could not connect ({exc})"
            return
        into.connections += 1
        into.sockets.append(sock)
        sent = 0
        try:
            sock.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Big: ")
            while sent < limit and not stop.is_set():
                sock.sendall(chunk)
                sent += len(chunk)
                into.sent += len(chunk)
            if sent >= limit:
                into.ended = "sent it all; holding the connection open"
        except TimeoutError:
            into.ended = "the monitor stopped reading"
        except OSError as exc:
            into.ended = f"cut off by the monitor ({exc.strerror or exc}), connected again"
        answer = b""
        with contextlib.suppress(OSError):
            sock.settimeout(0.2)
            answer = sock.recv(200)
        into.answers[answer.split(b"\r\n", 1)[0].decode("latin-1") or "no answer"] += 1
        if sent >= limit or not into.ended.startswith("cut off"):
            stop.wait()  # hold what was sent until the round ends
            return
        sock.close()
        into.sockets.remove(sock)


def sample_rss(monitor: Monitor, stop: threading.Event, peak: list[float]) -> None:
    """Keep the highest RSS seen in ``peak[0]`` until ``stop``."""
    while not stop.wait(0.1):
        rss = monitor.rss_mb()
        if rss == rss:  # not NaN (the process is gone)
            peak[0] = max(peak[0], rss)


def part_headers(args: argparse.Namespace) -> None:
    limit = int(args.header_mb * 1024 * 1024)
    for count in args.attackers:
        print(
            f"\n(b) giant header: {count} client(s) streaming up to {args.header_mb:g} MB "
            f"of one header value each, {args.duration:g} s, while a real sender posts"
        )
        with running_monitor(args.checkout, None) as monitor:
            print(f"    code under test: {monitor.package}")
            for n in range(20):  # warm up
                deliver(monitor.port, monitor.path, n, 5.0)
            rss_start = monitor.rss_mb()
            quiet: list[Answer] = []
            quiet_end = time.monotonic() + 3.0
            number = 1000
            while time.monotonic() < quiet_end:
                quiet.append(deliver(monitor.port, monitor.path, number, 30.0))
                number += 1
            print(f"    without attack (3 s): {describe(quiet)}; RSS {rss_start:.1f} MB")

            stop = threading.Event()
            peak = [rss_start]
            attackers = [Attacker() for _ in range(count)]
            threads = [threading.Thread(target=sample_rss, args=(monitor, stop, peak), daemon=True)]
            threads += [
                threading.Thread(
                    target=stream_header,
                    args=(monitor.port, monitor.path, limit, stop, attacker),
                    daemon=True,
                )
                for attacker in attackers
            ]
            for thread in threads:
                thread.start()
            during: list[Answer] = []
            end = time.monotonic() + args.duration
            while time.monotonic() < end:
                during.append(deliver(monitor.port, monitor.path, number, 30.0))
                number += 1
            rss_end = monitor.rss_mb()
            stop.set()
            for thread in threads:
                thread.join(10)
            print(f"    during the attack ({args.duration:g} s): {describe(during)}")
            for index, attacker in enumerate(attackers, 1):
                answers = ", ".join(f"{n} × {text}" for text, n in attacker.answers.most_common())
                print(
                    f"    attacker {index}: {attacker.connections} connection(s), sent "
                    f"{attacker.sent / 1024 / 1024:.1f} MB in all, {attacker.ended}; "
                    f"answers: {answers or 'none'}"
                )
            print(
                f"    monitor RSS: {rss_start:.1f} MB before, peak {peak[0]:.1f} MB, "
                f"{rss_end:.1f} MB at the end: grew by {peak[0] - rss_start:.1f} MB"
            )
            for attacker in attackers:
                for sock in attacker.sockets:
                    sock.close()


# ---------------------------------------------------------------- (c) overhead


class _Transport:
    """Just enough of an asyncio transport for uvicorn's protocol to run without a socket."""

    def __init__(self) -> None:
        self.closing = False

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"sockname": ("127.0.0.1", 5000), "peername": ("127.0.0.1", 40000)}.get(
            name, default
        )

    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def part_overhead(args: argparse.Namespace) -> None:
    import asyncio

    sys.path.insert(0, str(args.checkout))
    import uvicorn
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    if not (args.checkout / "tavus_monitor" / "edge.py").exists():
        print(f"\n(c) overhead: skipped, {args.checkout} has no guarded protocol")
        return
    from tavus_monitor.edge import ConnectionGuard, EdgeLimits

    body = b"x" * 1024
    headers = [
        "Host: abc.ngrok-free.app",
        "User-Agent: python-requests/2.32.3",
        "Accept-Encoding: gzip, deflate",
        "Accept: */*",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "X-Forwarded-For: 34.1.2.3",
        "X-Forwarded-Host: abc.ngrok-free.app",
        "X-Forwarded-Proto: https",
    ]
    raw = ("POST /webhook/t0ken HTTP/1.1\r\n" + "\r\n".join(headers) + "\r\n\r\n").encode()
    raw += body

    async def app(scope: object, receive: object, send: object) -> None:  # never run
        pass

    def per_request(base: type[HttpToolsProtocol], count: int) -> float:
        class Bench(base):  # type: ignore[valid-type, misc]
            def _start_asgi_task(self, cycle: object, app: object) -> None:
                pass  # no app: the response is marked complete below, as uvicorn's send does

        loop = asyncio.new_event_loop()
        try:
            config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
            config.load()
            protocol = Bench(config=config, server_state=ServerState(), app_state={}, _loop=loop)
            protocol.connection_made(_Transport())
            started = time.perf_counter()
            for _ in range(count):
                protocol.data_received(raw)
                protocol.cycle.response_complete = True
                protocol.on_response_complete()
            elapsed = time.perf_counter() - started
            protocol.connection_lost(None)
        finally:
            loop.close()
        return elapsed / count

    guarded = ConnectionGuard(EdgeLimits(max_connections=100)).protocol_class()
    count = 20_000
    best = {"uvicorn": float("inf"), "guarded": float("inf")}
    for _ in range(7):
        best["uvicorn"] = min(best["uvicorn"], per_request(HttpToolsProtocol, count))
        best["guarded"] = min(best["guarded"], per_request(guarded, count))
    added = best["guarded"] - best["uvicorn"]
    print(
        f"\n(c) protocol cost per keep-alive request ({len(raw)} bytes, {len(headers)} headers), "
        f"best of 7 × {count}:\n"
        f"    uvicorn HttpToolsProtocol {best['uvicorn'] * 1e6:.2f} µs, "
        f"guarded {best['guarded'] * 1e6:.2f} µs: {added * 1e6:+.2f} µs per request "
        f"({added / (1 / 7000):+.1%} of a request at 7k requests/s)"
    )


# ---------------------------------------------------------------- main


def version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkout", type=Path, default=ROOT, help="the source tree to run (default: this one)"
    )
    parser.add_argument(
        "--part", choices=("all", "slowloris", "headers", "overhead"), default="all"
    )
    parser.add_argument("--connections", type=int, default=1100, help="slowloris connections")
    parser.add_argument("--deliveries", type=int, default=10, help="real deliveries per step")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds a sender waits")
    parser.add_argument(
        "--attackers",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[1, 4],
        help="giant-header rounds, by number of attacking clients (default 1,4)",
    )
    parser.add_argument("--header-mb", type=float, default=176.0, help="header size per client")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of header attack")
    args = parser.parse_args()
    args.checkout = args.checkout.resolve()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    print(
        f"edge bench: {' '.join(sys.argv)}\n"
        f"python {platform.python_version()}, uvicorn {version('uvicorn')}, "
        f"httptools {version('httptools')}, uvloop {version('uvloop')}, "
        f"{os.cpu_count()} cores; checkout {args.checkout}"
    )
    if args.part in ("all", "slowloris"):
        part_slowloris(args)
    if args.part in ("all", "headers"):
        part_headers(args)
    if args.part in ("all", "overhead"):
        part_overhead(args)


if __name__ == "__main__":
    main()
