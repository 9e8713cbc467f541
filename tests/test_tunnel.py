"""The public tunnel, offline: the monitor's tunnel over the REAL pyngrok and the stand-in agent.

Nothing here reaches ngrok's servers or downloads anything. Every tunnel is opened by
pyngrok's own code against a private copy of tests/standin_ngrok/ngrok (the ``standin``
fixture, whose teardown also checks that no agent process is left); the one scenario
without a binary keeps pyngrok's download attempt on loopback with a proxy on a closed
port. Waiting is for a bus message (``Watcher``), a line from a process, or, where
nothing can be awaited (the dashboard's screen), a condition polled against a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import TEST_TOKEN, fixture_bytes, wait_ready
from headless_process import HeadlessProcess, tavus_monitor
from pyngrok import conf as pyngrok_conf
from pyngrok import installer
from pyngrok.exception import (
    PyngrokNgrokError,
    PyngrokNgrokHTTPError,
    PyngrokNgrokInstallError,
)
from pyngrok.log import NgrokLog
from standin_ngrok import WAIT, StandIn, pid_exists
from textual.pilot import Pilot

from tavus_monitor import samples
from tavus_monitor.bus import (
    EventStored,
    Message,
    StatusChanged,
    StatusKind,
    Subscription,
    TunnelChanged,
)
from tavus_monitor.events import Event, header
from tavus_monitor.monitor import Monitor
from tavus_monitor.settings import Settings
from tavus_monitor.state import read_state
from tavus_monitor.store import EventQuery
from tavus_monitor.tui.app import MonitorApp
from tavus_monitor.tui.widgets.url_bar import UrlBar
from tavus_monitor.tunnel import (
    TunnelError,
    TunnelOptions,
    TunnelState,
    TunnelStatus,
    TunnelTiming,
    explain,
)

FAST = TunnelTiming(health_interval=0.2, backoff=(0.1, 0.2), start_grace=2.0)
"""Short enough for tests, long enough for a stand-in agent (a Python process) to start."""
PROXY_VARIABLES = (
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
)
SIZE = (120, 35)


@pytest.fixture(autouse=True)
def private_ngrok_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pyngrok's default config path, fixed at import, moved out of the user's home.

    The monitor passes no ``config_path`` (a user's ngrok config holds their authtoken),
    so pyngrok writes its default file there when it is missing. Point it where the
    stand-in (and a child process, through XDG_CONFIG_HOME from conftest.py) looks.
    Proxies from the environment are dropped too: the health check goes through urllib.
    """
    path = tmp_path / "config" / "ngrok" / "ngrok.yml"
    monkeypatch.setattr(pyngrok_conf, "DEFAULT_NGROK_CONFIG_PATH", str(path))
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return path


# ----------------------------------------------------------------------------- helpers


class Watcher:
    """The monitor's bus as a test reads it: every message kept, and awaitable in order."""

    def __init__(self, subscription: Subscription) -> None:
        self.subscription = subscription
        self.seen: list[Message] = []
        self._cursor = 0

    async def next(
        self, match: Callable[[Message], bool], what: str, within: float = WAIT
    ) -> Message:
        """The first message after the last one returned that ``match``es."""

        async def scan() -> Message:
            while True:
                while self._cursor < len(self.seen):
                    message = self.seen[self._cursor]
                    self._cursor += 1
                    if match(message):
                        return message
                received = await self.subscription.get()
                if received is None:
                    pytest.fail(f"the bus closed before {what}; saw {self.describe()}")
                self.seen.append(received)

        try:
            return await asyncio.wait_for(scan(), within)
        except TimeoutError:
            pytest.fail(f"no {what} within {within} s; saw {self.describe()}")

    async def tunnel(self, *states: TunnelState, within: float = WAIT) -> TunnelStatus:
        message = await self.next(
            lambda m: isinstance(m, TunnelChanged) and m.status.state in states,
            f"tunnel state {'/'.join(states)}",
            within,
        )
        assert isinstance(message, TunnelChanged)
        return message.status

    async def status(self, topic: str, contains: str = "") -> StatusChanged:
        message = await self.next(
            lambda m: isinstance(m, StatusChanged) and m.topic == topic and contains in m.text,
            f"a {topic!r} status containing {contains!r}",
        )
        assert isinstance(message, StatusChanged)
        return message

    async def stored(self) -> Event:
        message = await self.next(lambda m: isinstance(m, EventStored), "a stored event")
        assert isinstance(message, EventStored)
        return message.event

    def collect(self) -> None:
        """Keep what is queued now (after ``Monitor.stop`` that is everything)."""
        self.seen.extend(self.subscription.drain())

    def states(self) -> list[TunnelState]:
        return [m.status.state for m in self.seen if isinstance(m, TunnelChanged)]

    def statuses(self, topic: str) -> list[StatusChanged]:
        return [m for m in self.seen if isinstance(m, StatusChanged) and m.topic == topic]

    def describe(self) -> list[str]:
        return [
            f"{m.status.state}: {m.status.text}" if isinstance(m, TunnelChanged) else repr(m)
            for m in self.seen
            if not isinstance(m, EventStored)
        ]


def tunnel_settings(tmp_path: Path, ngrok_path: Path | str, **changes: Any) -> Settings:
    return Settings(
        port=0,
        port_explicit=True,
        token=TEST_TOKEN,
        data_dir=tmp_path / "data",
        no_tunnel=False,
        ngrok_path=str(ngrok_path),
        **changes,
    )


def tunnel_monitor(
    settings: Settings, *, startup_timeout: int = 5, timing: TunnelTiming = FAST
) -> Monitor:
    monitor = Monitor(settings)
    monitor.tunnel_timing = timing
    monitor.tunnel_startup_timeout = startup_timeout
    return monitor


@contextlib.asynccontextmanager
async def running(
    settings: Settings, *, startup_timeout: int = 5, timing: TunnelTiming = FAST
) -> AsyncIterator[tuple[Monitor, Watcher]]:
    """A started monitor that opens its own tunnel, and a watcher on its bus from the start."""
    monitor = tunnel_monitor(settings, startup_timeout=startup_timeout, timing=timing)
    watcher = Watcher(monitor.bus.subscribe())
    await monitor.start()
    try:
        yield monitor, watcher
    finally:
        await asyncio.wait_for(monitor.stop(), WAIT)
        watcher.collect()


def http() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=WAIT, trust_env=False)


async def post_callback(url: str, name: str = "video.ready.json") -> httpx.Response:
    async with http() as client:
        return await client.post(url, content=fixture_bytes(name))


async def assert_local_url_works(monitor: Monitor) -> None:
    response = await post_callback(monitor.local_url)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "success"}


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None, url
    return port


def port_refuses(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def dead_end_proxies(port: int) -> dict[str, str]:
    """Proxy settings that turn any download into an immediate refusal on loopback."""
    proxy = f"http://127.0.0.1:{port}"
    return {name: proxy for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")}


def one_sentence(text: str | None) -> str:
    assert text, "no sentence"
    assert "\n" not in text, text
    assert text.endswith("."), text
    return text


def alive(pids: list[int]) -> list[int]:
    return [pid for pid in pids if pid_exists(pid)]


# ----------------------------------------------------------------------- end to end


async def test_the_tunnel_comes_up_and_carries_a_callback_end_to_end(
    standin: StandIn, tmp_path: Path
) -> None:
    settings = tunnel_settings(
        tmp_path, standin.path, ngrok_authtoken="tok-e2e-123", ngrok_region="eu"
    )
    async with running(settings) as (monitor, watcher):
        up = await watcher.tunnel(TunnelState.UP)
        assert up.public_url is not None
        assert up.public_url.startswith("http://127.0.0.1:")
        assert up.public_url != monitor.base_url
        assert (up.problem, up.advice, up.previous_url) == (None, None, None)
        assert watcher.states() == [TunnelState.STARTING, TunnelState.UP]
        public_callback = f"{up.public_url}/webhook/{TEST_TOKEN}"
        assert monitor.callback_url == public_callback
        announced = await watcher.status("url", public_callback)
        assert announced.text == f"Callback URL: {public_callback}"
        state = read_state(settings.data_dir)
        assert state is not None
        assert (state.callback_url, state.local_url) == (public_callback, monitor.local_url)

        # The flags the monitor's settings turn into, as the agent received them.
        [start] = [entry for entry in standin.records("start") if entry["command"] == "start"]
        argv = start["argv"][1:]
        assert argv[:4] == ["start", "--none", "--log", "stdout"]
        assert argv[argv.index("--authtoken") + 1] == "tok-e2e-123"
        assert argv[argv.index("--region") + 1] == "eu"
        [opened] = standin.records("tunnel-open")
        assert opened["public_url"] == up.public_url
        assert opened["inspect"] is False
        assert port_of(opened["upstream"]) == monitor.port

        # A Tavus callback through the public URL is stored, then published.
        response = await post_callback(public_callback)
        assert response.status_code == 200, response.text
        event = await watcher.stored()
        assert event.event_type == "video.ready"
        assert monitor.store is not None
        assert [e.id for e in monitor.store.page(EventQuery())] == [event.id]
        assert header(event.headers, "x-forwarded-proto") == "https"  # it came via the agent

        # inspect: false — the agent keeps no copy of the callbacks (tokens, payloads).
        [listening] = standin.records("listening")
        async with http() as client:
            captured = await client.get(f"{listening['api_url']}/api/requests/http")
        assert captured.status_code == 200
        assert captured.json()["requests"] == []

        await assert_local_url_works(monitor)
        pids = standin.agent_pids()
        assert len(pids) == 1
        assert alive(pids) == pids

    # stop() closed the tunnel: no agent, no public listener, no state file.
    assert alive(pids) == []
    assert port_refuses(port_of(up.public_url))
    assert port_refuses(port_of(listening["api_url"]))
    assert monitor.tunnel is None
    assert read_state(settings.data_dir) is None


# ------------------------------------------------------------------------- failures


async def test_a_missing_authtoken_fails_for_good_until_retried(
    standin: StandIn, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    standin.mode("no-authtoken")
    async with running(tunnel_settings(tmp_path, standin.path)) as (monitor, watcher):
        failed = await watcher.tunnel(TunnelState.FAILED, TunnelState.RECONNECTING)
        assert failed.state is TunnelState.FAILED  # permanent: no retry loop
        assert "authtoken" in one_sentence(failed.problem)
        assert "NGROK_AUTHTOKEN" in one_sentence(failed.advice)
        assert failed.public_url is None
        warning = await watcher.status("tunnel", "failed")
        assert warning.kind is StatusKind.WARNING
        assert warning.text == f"Tunnel failed: {failed.problem} {failed.advice}"
        local_only = await watcher.status("url", "local only")
        assert local_only.kind is StatusKind.INFO  # headless prints it with nothing before it
        assert local_only.text == (
            f"Callback URL: {monitor.local_url} (local only: Tavus cannot reach it)"
        )
        assert monitor.callback_url == monitor.local_url
        state = read_state(monitor.settings.data_dir)
        assert state is not None
        assert state.callback_url == monitor.local_url
        await assert_local_url_works(monitor)
        assert len(standin.agent_pids()) == 1
        assert alive(standin.agent_pids()) == []

        # The user fixes the token and presses t (retry_tunnel): one more start, and up.
        standin.mode("ok")
        assert monitor.retry_tunnel() is True
        up = await watcher.tunnel(TunnelState.UP)
        assert up.public_url is not None
        assert monitor.callback_url == f"{up.public_url}/webhook/{TEST_TOKEN}"
        assert watcher.states() == [
            TunnelState.STARTING,
            TunnelState.FAILED,
            TunnelState.STARTING,
            TunnelState.UP,
        ]
        assert [entry["mode"] for entry in standin.records("start")] == ["no-authtoken", "ok"]
        response = await post_callback(monitor.callback_url)
        assert response.status_code == 200
    assert alive(standin.agent_pids()) == []
    # ngrok prints its fatal error to stderr too: not onto the dashboard or the status lines.
    assert capfd.readouterr() == ("", "")


@pytest.mark.parametrize(
    ("mode", "changes", "problem", "advice"),
    [
        pytest.param(
            "session-limit", {}, "Another ngrok agent is already running", "Stop the other agent",
            id="session-limit",
        ),
        pytest.param(
            "bad-authtoken", {"ngrok_authtoken": "not-a-token"}, "authtoken: it is not valid",
            "NGROK_AUTHTOKEN", id="bad-authtoken",
        ),
        pytest.param(
            "invalid-domain", {"ngrok_domain": "example.ngrok.app"},
            "ngrok refused the domain example.ngrok.app", "--ngrok-domain", id="invalid-domain",
        ),
    ],
)  # fmt: skip
async def test_a_refusal_is_one_sentence_and_the_local_url_keeps_working(
    standin: StandIn,
    tmp_path: Path,
    mode: str,
    changes: dict[str, str],
    problem: str,
    advice: str,
) -> None:
    standin.mode(mode)
    settings = tunnel_settings(tmp_path, standin.path, **changes)
    async with running(settings) as (monitor, watcher):
        failed = await watcher.tunnel(TunnelState.FAILED, TunnelState.RECONNECTING, TunnelState.UP)
        assert failed.state is TunnelState.FAILED
        assert problem in one_sentence(failed.problem)
        assert advice in one_sentence(failed.advice)
        assert monitor.callback_url == monitor.local_url
        await assert_local_url_works(monitor)
        assert monitor.tunnel_status == failed
        assert watcher.states() == [TunnelState.STARTING, TunnelState.FAILED]
        # The agent that refused is gone (the invalid-domain one was running fine).
        assert alive(standin.agent_pids()) == []
    if "ngrok_domain" in changes:
        [start] = standin.records("start")
        assert start["mode"] == "invalid-domain"
        assert standin.records("tunnel-open") == []


async def test_an_agent_that_dies_is_replaced_and_a_changed_url_is_announced(
    standin: StandIn, tmp_path: Path
) -> None:
    standin.mode("crash-after=1", "ok")
    async with running(tunnel_settings(tmp_path, standin.path)) as (monitor, watcher):
        first = await watcher.tunnel(TunnelState.UP)
        dropped = await watcher.tunnel(TunnelState.RECONNECTING, TunnelState.FAILED)
        assert dropped.state is TunnelState.RECONNECTING
        assert one_sentence(dropped.problem) == "The ngrok agent exited unexpectedly."
        assert "local URL keeps working" in one_sentence(dropped.advice)
        assert dropped.public_url is None

        again = await watcher.tunnel(TunnelState.UP)  # by itself: nobody called retry
        assert again.public_url is not None
        assert monitor.callback_url == f"{again.public_url}/webhook/{TEST_TOKEN}"
        assert [entry["reason"] for entry in standin.records("crash")] == ["crash-after=1.0"]
        first_pid, second_pid = standin.agent_pids()
        assert alive([first_pid, second_pid]) == [second_pid]
        state = read_state(monitor.settings.data_dir)
        assert state is not None
        assert state.callback_url == monitor.callback_url

        if again.public_url != first.public_url:  # a fresh loopback port: almost always
            assert again.previous_url == first.public_url
            changed = await watcher.status("tunnel-url-changed")
            assert changed.kind is StatusKind.WARNING
            assert f"from {first.public_url} to {again.public_url}" in changed.text
            assert "Tavus resources created with the old URL will not reach this monitor" in (
                changed.text
            )
        else:
            assert again.previous_url is None
        response = await post_callback(monitor.callback_url)
        assert response.status_code == 200
    assert alive(standin.agent_pids()) == []


@pytest.mark.parametrize(
    ("mode", "timing", "sentence"),
    [
        # pyngrok's startup_timeout fires between the agent's log lines ...
        pytest.param("hang", FAST, "The ngrok agent could not start", id="hang"),
        # ... but never for an agent that prints nothing: the supervisor's watchdog does.
        pytest.param(
            "hang-silent",
            TunnelTiming(health_interval=0.2, backoff=(0.1, 0.2), start_grace=0.5),
            "The ngrok agent did not start within 1.5 s.",
            id="hang-silent",
        ),
    ],
)
async def test_a_hanging_agent_is_given_up_on_and_retried(
    standin: StandIn, tmp_path: Path, mode: str, timing: TunnelTiming, sentence: str
) -> None:
    standin.mode(mode, "ok")
    settings = tunnel_settings(tmp_path, standin.path)
    started = time.monotonic()
    async with running(settings, startup_timeout=1, timing=timing) as (monitor, watcher):
        stuck = await watcher.tunnel(TunnelState.RECONNECTING, TunnelState.FAILED, TunnelState.UP)
        assert stuck.state is TunnelState.RECONNECTING
        assert one_sentence(stuck.problem).startswith(sentence)
        assert one_sentence(stuck.advice) == "Retrying in 0.1 s; the local URL keeps working."
        assert 1.0 <= time.monotonic() - started < WAIT
        [hung] = standin.agent_pids()
        assert not pid_exists(hung)
        await assert_local_url_works(monitor)

        up = await watcher.tunnel(TunnelState.UP)
        assert up.public_url is not None
        assert [entry["mode"] for entry in standin.records("start")] == [mode, "ok"]
    assert alive(standin.agent_pids()) == []


async def test_stopping_while_the_agent_is_still_being_installed_leaves_no_agent(
    standin: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Quit while pyngrok still installs (downloads ngrok, writes its config): the agent
    it starts after that must not outlive the monitor, nor be announced."""
    installing = threading.Event()
    go_on = threading.Event()
    install_default_config = installer.install_default_config

    def slow_install(*args: Any, **kwargs: Any) -> None:
        installing.set()
        go_on.wait(WAIT)
        install_default_config(*args, **kwargs)

    monkeypatch.setattr(installer, "install_default_config", slow_install)
    monitor = tunnel_monitor(tunnel_settings(tmp_path, standin.path))
    watcher = Watcher(monitor.bus.subscribe())
    await monitor.start()
    try:
        assert await asyncio.to_thread(installing.wait, WAIT)
        assert monitor.tunnel is not None
        await monitor.tunnel.close()  # what stop() does first; no agent process exists yet
    finally:
        go_on.set()
        await asyncio.wait_for(monitor.stop(), WAIT)
    watcher.collect()
    assert watcher.states() == [TunnelState.STARTING]  # never announced UP after the stop
    pids = standin.agent_pids()
    assert len(pids) == 1  # the start-up went on after close() ...
    assert alive(pids) == []  # ... and its agent was ended


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts /proc/self/fd")
async def test_agents_that_come_and_go_leave_no_descriptors_behind(
    standin: StandIn, tmp_path: Path
) -> None:
    """pyngrok never closes an agent's output pipe (and its atexit hook keeps it alive).

    Counted at quiet moments (FAILED: nothing runs; UP: one agent, no start in flight),
    since a start in flight holds a few pipes; a leak is one descriptor per agent.
    """
    cycles = 6
    standin.mode("no-authtoken")
    async with running(tunnel_settings(tmp_path, standin.path)) as (monitor, watcher):
        await watcher.tunnel(TunnelState.FAILED)
        before = open_descriptors()
        for _ in range(cycles):  # refused at start-up: pyngrok forgets the process itself
            monitor.retry_tunnel()
            await watcher.tunnel(TunnelState.FAILED)
        refused = open_descriptors()

        standin.mode("crash-after=0.05")
        monitor.retry_tunnel()
        await watcher.tunnel(TunnelState.UP)
        first_up = open_descriptors()
        for _ in range(cycles):  # up, then gone: the supervisor ends it and starts another
            await watcher.tunnel(TunnelState.RECONNECTING)
            await watcher.tunnel(TunnelState.UP)
        last_up = open_descriptors()
    assert len(standin.agent_pids()) >= 2 * cycles + 2
    assert refused - before <= 1, f"{refused - before} descriptors kept by refused agents"
    assert last_up - first_up <= 2, f"{last_up - first_up} descriptors kept by ended agents"


# ------------------------------------------------------------- no binary, no network


async def test_no_binary_and_no_network_fails_fast_and_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    for name, value in dead_end_proxies(closed_port()).items():
        monkeypatch.setenv(name, value)
    missing = tmp_path / "no-ngrok-here" / "ngrok"
    started = time.monotonic()
    async with running(tunnel_settings(tmp_path, missing)) as (monitor, watcher):
        failed = await watcher.tunnel(TunnelState.FAILED, TunnelState.RECONNECTING, within=5)
        assert time.monotonic() - started < 5
        assert failed.state is TunnelState.FAILED
        assert "could not be downloaded" in one_sentence(failed.problem)
        advice = one_sentence(failed.advice)
        for option in ("--ngrok-path", "PYNGROK_NGROK_PATH", "--public-url"):
            assert option in advice
        await watcher.status("url", "(local only: Tavus cannot reach it)")
        await assert_local_url_works(monitor)
        assert not missing.exists()
    out, err = capfd.readouterr()
    assert (out, err) == ("", ""), "pyngrok wrote to the terminal"


def child_env(**extra: str) -> dict[str, str]:
    """This test's environment (isolated dirs, stand-in record) with the tunnel allowed."""
    env = {key: value for key, value in os.environ.items() if key != "TAVUS_MONITOR_NO_TUNNEL"}
    env.update(PYTHONIOENCODING="utf-8", **extra)
    return env


def assert_json_lines(lines: list[str]) -> list[dict[str, Any]]:
    parsed = [json.loads(line) for line in lines]
    assert all(isinstance(item, dict) for item in parsed)
    return parsed


def test_headless_without_a_binary_reports_and_keeps_serving_locally(tmp_path: Path) -> None:
    data_dir = tmp_path / "headless-data"
    missing = tmp_path / "no-ngrok-here" / "ngrok"
    env = child_env(**dead_end_proxies(closed_port()))
    with HeadlessProcess(
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        "--ngrok-path",
        str(missing),
        "--token",
        TEST_TOKEN,
        env=env,
    ) as run:
        started = time.monotonic()
        failed = run.wait_for("err", lambda line: "Tunnel failed:" in line, "the failure line")
        url_line = run.wait_for("err", lambda line: "Callback URL:" in line, "the URL line")
        assert time.monotonic() - started < 5
        assert "could not be downloaded" in failed
        assert "--ngrok-path" in failed
        assert url_line.startswith("Callback URL: http://127.0.0.1:")  # what grep '^…' finds
        assert url_line.endswith(f"/webhook/{TEST_TOKEN} (local only: Tavus cannot reach it)")
        local_url = url_line.removeprefix("Callback URL: ").split(" ")[0]
        with httpx.Client(timeout=WAIT, trust_env=False) as client:
            response = client.post(local_url, content=fixture_bytes("replica.ready.json"))
        assert response.status_code == 200
        run.wait_for("out", lambda line: '"replica_id"' in line, "the event's JSON line")
        assert run.stop() == 0
    [event] = assert_json_lines(run.out)
    assert event["event_type"] == "replica.ready"
    assert not any("Downloading ngrok" in line for line in run.err)
    assert not missing.exists()


def test_headless_through_the_tunnel(standin: StandIn, tmp_path: Path) -> None:
    data_dir = tmp_path / "headless-data"
    env = child_env()
    with HeadlessProcess(
        "--port", "0", "--data-dir", str(data_dir), "--ngrok-path", str(standin.path),
        "--token", TEST_TOKEN, env=env,
    ) as run:  # fmt: skip
        up = run.wait_for("err", lambda line: line.startswith("Tunnel: up: "), "the tunnel")
        public_url = up.removeprefix("Tunnel: up: ")
        assert public_url.startswith("http://127.0.0.1:")
        url_line = run.wait_for("err", lambda line: line.startswith("Callback URL: "), "the URL")
        assert url_line == f"Callback URL: {public_url}/webhook/{TEST_TOKEN}"
        state = read_state(data_dir)
        assert state is not None
        assert state.callback_url == f"{public_url}/webhook/{TEST_TOKEN}"

        # tavus-monitor trigger finds the running monitor through its state file.
        trigger = subprocess.run(
            tavus_monitor("trigger", "--data-dir", str(data_dir)),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=WAIT * 3,
            env=env,
            check=False,
        )
        assert trigger.returncode == 0, trigger.stderr
        sent = len(samples.CONVERSATION_SEQUENCE)
        assert f"{sent} accepted, 0 failed" in trigger.stderr
        for _ in range(sent):
            run.wait_for("out", lambda line: line.startswith("{"), "a triggered event's line")

        # Through the public URL, as Tavus would call.
        with httpx.Client(timeout=WAIT, trust_env=False) as client:
            response = client.post(
                f"{public_url}/webhook/{TEST_TOKEN}", content=fixture_bytes("video.ready.json")
            )
        assert response.status_code == 200
        line = run.wait_for("out", lambda line: '"video.ready"' in line, "the public event")
        assert json.loads(line)["event_type"] == "video.ready"
        pids = standin.agent_pids()
        assert len(pids) == 1
        assert run.stop() == 0

    events = assert_json_lines(run.out)
    assert [event["id"] for event in events] == list(range(1, sent + 2))
    assert alive(pids) == []
    assert port_refuses(port_of(public_url))
    assert "Stopped." in run.err


# ------------------------------------------------------------------------ dashboard


def screen_text(app: MonitorApp) -> str:
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)


async def until(pilot: Pilot[int], condition: Callable[[], bool], what: str) -> None:
    """Poll the dashboard (its state changes have nothing to await) against a deadline."""
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


@contextlib.asynccontextmanager
async def dashboard(settings: Settings) -> AsyncIterator[tuple[MonitorApp, Pilot[int]]]:
    monitor = tunnel_monitor(settings)
    app = MonitorApp(settings, monitor=monitor)
    app.animation_level = "none"
    try:
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await wait_ready(app)
            yield app, pilot
    finally:
        await asyncio.wait_for(monitor.stop(), WAIT)


async def test_dashboard_shows_the_public_url_and_c_copies_it(
    standin: StandIn, tmp_path: Path
) -> None:
    async with dashboard(tunnel_settings(tmp_path, standin.path)) as (app, pilot):
        bar = app.query_one(UrlBar)
        await until(pilot, lambda: bar.state.tunnel.startswith("up ("), "the tunnel to be up")
        public = app.monitor.tunnel_status.public_url
        assert public is not None
        callback = f"{public}/webhook/{TEST_TOKEN}"
        assert bar.state.tunnel == f"up ({public})"
        assert bar.state.tunnel_style == "green"
        assert bar.state.callback_url == callback
        await until(pilot, lambda: callback in screen_text(app), "the URL on screen")
        assert f"up ({public})" in screen_text(app)
        # Shown apart when they differ; its row appears with a layout pass, maybe a frame later.
        local = app.monitor.local_url
        await until(pilot, lambda: local in screen_text(app), "the local URL on screen")

        await pilot.press("c")
        assert app.clipboard == callback

        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert "Retry tunnel" in titles
        pids = standin.agent_pids()
        assert alive(pids) == pids
        await pilot.press("q")
    assert app.return_value == 0
    assert alive(pids) == []


async def test_dashboard_explains_a_failure_and_t_retries(standin: StandIn, tmp_path: Path) -> None:
    standin.mode("no-authtoken")
    async with dashboard(tunnel_settings(tmp_path, standin.path)) as (app, pilot):
        bar = app.query_one(UrlBar)
        await until(pilot, lambda: bar.state.local_only == "the tunnel failed", "the failure")
        status = app.monitor.tunnel_status
        assert bar.state.tunnel == status.problem
        assert "authtoken" in bar.state.tunnel
        assert bar.state.tunnel_style == "bold red"
        assert bar.state.advice is not None
        assert "Press a" in bar.state.advice.replace("\xa0", " ")
        assert bar.state.callback_url == app.monitor.local_url
        toasts = [n for n in app._notifications if n.title.startswith("Tunnel failed")]
        assert len(toasts) == 1
        assert toasts[0].message == (
            f"{status.problem} What to do stays in the header until it works."
        )
        assert toasts[0].severity == "error"
        toast_title = "Tunnel failed: Tavus cannot reach the local URL"
        await until(pilot, lambda: toast_title in screen_text(app), "the toast on screen")
        await assert_local_url_works(app.monitor)

        standin.mode("ok")
        await pilot.press("t")
        await until(pilot, lambda: bar.state.tunnel.startswith("up ("), "the retried tunnel")
        public = app.monitor.tunnel_status.public_url
        assert bar.state.callback_url == f"{public}/webhook/{TEST_TOKEN}"
        messages = [n.message for n in app._notifications]
        assert "Retrying the tunnel…" in messages
        assert "The tunnel is up again." in messages
        assert [entry["mode"] for entry in standin.records("start")] == ["no-authtoken", "ok"]
        pids = standin.agent_pids()
        await pilot.press("q")
    assert app.return_value == 0
    assert alive(pids) == []


# -------------------------------------------------------------------------- explain


def refused_on_start(error: str) -> PyngrokNgrokError:
    """What pyngrok raises when the agent logs an error and exits during start-up."""
    return PyngrokNgrokError(f"The ngrok process errored on start: {error}.", [], error)


DOMAIN = TunnelOptions(domain="mine.ngrok.app", ngrok_path="/opt/ngrok")
PLAIN = TunnelOptions(ngrok_path="/opt/ngrok")


@pytest.mark.parametrize(
    ("error", "options", "problem", "advice", "permanent"),
    [
        pytest.param(
            refused_on_start("authentication failed: Usage of ngrok requires a verified "
                             "account and authtoken.\r\n\r\nERR_NGROK_4018"),
            PLAIN, "it needs an authtoken", "NGROK_AUTHTOKEN", True, id="4018",
        ),
        pytest.param(
            refused_on_start("authentication failed: The authtoken you specified does not look "
                             "like a proper ngrok authtoken.\r\n\r\nERR_NGROK_105"),
            PLAIN, "refused the authtoken: it is not valid", "--ngrok-authtoken", True, id="105",
        ),
        pytest.param(
            refused_on_start("authentication failed: Your account is limited to 1 simultaneous "
                             "ngrok agent sessions.\r\n\r\nERR_NGROK_108"),
            PLAIN, "Another ngrok agent is already running", "--public-url", True, id="108",
        ),
        pytest.param(
            PyngrokNgrokHTTPError(
                "ngrok client exception, API returned 502: failed to start tunnel",
                "http://127.0.0.1:4040/api/endpoints", 502, "Bad Gateway", {},
                json.dumps({"error_code": 103, "status_code": 502,
                            "msg": "failed to start tunnel",
                            "details": {"err": "This domain is reserved for another account."
                                               "\r\n\r\nERR_NGROK_320\r\n"}}),
            ),
            DOMAIN, "ngrok refused the domain mine.ngrok.app", "--ngrok-domain", True, id="320",
        ),
        pytest.param(
            PyngrokNgrokInstallError(
                "An error occurred while downloading ngrok from https://bin.equinox.io/x: "
                "<urlopen error [Errno 111] Connection refused>"
            ),
            PLAIN, "could not be downloaded", "PYNGROK_NGROK_PATH", True, id="install",
        ),
        pytest.param(
            PyngrokNgrokError(
                'failed to reconnect session: failed to dial ngrok server with address '
                '"connect.ngrok-agent.com:443": dial tcp: lookup connect.ngrok-agent.com: '
                "no such host"
            ),
            PLAIN, "cannot reach its servers", "retries by itself", False, id="offline",
        ),
        pytest.param(
            PyngrokNgrokError(
                "The ngrok process was unable to start.",
                [NgrokLog('t=2025-01-01T00:00:00+0000 lvl=eror msg="session closed" '
                          'err="tls: handshake failure"')],
            ),
            PLAIN, "could not start: tls: handshake failure", "retries by itself", False,
            id="unable-to-start",
        ),
        pytest.param(
            FileNotFoundError(2, "No such file or directory"),
            PLAIN, "The ngrok binary at /opt/ngrok cannot be run", "--ngrok-path", True,
            id="not-executable",
        ),
        pytest.param(
            PyngrokNgrokError("something odd happened\nwith a second line"),
            PLAIN, "The tunnel failed: something odd happened.", "log file", False, id="unknown",
        ),
    ],
)  # fmt: skip
def test_explain_gives_one_sentence_and_a_next_step(
    error: BaseException, options: TunnelOptions, problem: str, advice: str, permanent: bool
) -> None:
    explained = explain(error, options)
    assert problem in one_sentence(explained.problem)
    assert advice in one_sentence(explained.advice)
    assert explained.permanent is permanent
    assert str(explained) == explained.problem


def test_explain_passes_an_explained_error_through() -> None:
    error = TunnelError("Already explained.", "Nothing to add.", permanent=False)
    assert explain(error, PLAIN) is error
