"""The stand-in ngrok agent (tests/standin_ngrok/ngrok) driven by the real pyngrok, offline.

Every test goes through pyngrok's own code: ``ngrok.connect`` starts the stand-in with the
command line it gives the real agent, waits for its logfmt start-up lines, probes
``/api/endpoints`` (or ``/api/tunnels``), creates tunnels over the agent API and reads
the answers into ``NgrokTunnel``; ``disconnect``, ``get_tunnels``, ``kill``, the monitor
thread and ``log_event_callback`` run unpatched. The only patches: a guard that fails the
test if pyngrok ever tries to download ngrok, and a ``subprocess.Popen`` subclass that
remembers the processes pyngrok starts so the teardown can reap them.

Each test gets its own copy of the stand-in (pyngrok keys its process registry by
``ngrok_path``) and its own config file, and the teardown kills whatever pyngrok started,
closes the pipes and checks that no agent process is left: the ``standin`` fixture, in
tests/standin_ngrok/__init__.py (shared with every test module through conftest.py).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import socketserver
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pyngrok
import pytest
import yaml
from conftest import fixture_bytes
from pyngrok import agent as ngrok_agent
from pyngrok import installer, ngrok, process
from pyngrok.exception import PyngrokError, PyngrokNgrokError, PyngrokNgrokHTTPError
from pyngrok.log import NgrokLog
from standin_ngrok import STANDIN, WAIT, StandIn, pid_exists, wait_until

from tavus_monitor.monitor import Monitor

# ------------------------------------------------------------------------------ helpers


def port_refuses(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None, url
    return port


def http_client() -> httpx.Client:
    return httpx.Client(timeout=WAIT, trust_env=False)


class LogTap:
    """A ``log_event_callback`` that keeps every line and lets a test wait for one."""

    def __init__(self) -> None:
        self.logs: list[NgrokLog] = []
        self._changed = threading.Condition()

    def __call__(self, log: NgrokLog) -> None:
        with self._changed:
            self.logs.append(log)
            self._changed.notify_all()

    def wait_for(self, match: Callable[[NgrokLog], bool], what: str) -> NgrokLog:
        deadline = time.monotonic() + WAIT
        with self._changed:
            while True:
                for log in self.logs:
                    if match(log):
                        return log
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"no ngrok log line for {what}; got {self.messages()}")
                self._changed.wait(left)

    def messages(self) -> list[str | None]:
        return [log.msg for log in self.logs]


@dataclass
class Seen:
    """A request as the upstream received it."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers_named(name)
        return values[0] if values else None

    def headers_named(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


class UpstreamHandler(BaseHTTPRequestHandler):
    """Records each request; ``/stream`` answers in chunks, anything else with a JSON echo."""

    protocol_version = "HTTP/1.1"
    server: UpstreamServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def handle_any(self) -> None:
        body = self.read_body()
        self.server.seen.append(Seen(self.command, self.path, list(self.headers.items()), body))
        if self.path.startswith("/stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b"first,", b"second,", b"third"):
                self.wfile.write(b"%X\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            return
        answer = json.dumps({"method": self.command, "path": self.path, "size": len(body)})
        data = answer.encode()
        self.send_response(201, "Created")
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Upstream", "seen")
        self.send_header("Set-Cookie", "a=1")
        self.send_header("Set-Cookie", "b=2")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


class UpstreamServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        super().__init__(("127.0.0.1", 0), UpstreamHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    server = UpstreamServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(WAIT)


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


# ---------------------------------------------------------------------- installation


def test_the_standin_is_an_executable_python_script() -> None:
    assert STANDIN.read_text().startswith("#!/usr/bin/env python3\n")
    assert STANDIN.stat().st_mode & stat.S_IXUSR
    for command in ([str(STANDIN), "version"], [sys.executable, str(STANDIN), "--version"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=WAIT, check=True)
        assert result.stdout == "ngrok version 3.22.1\n"


def test_pyngrok_uses_the_standin_and_never_downloads(standin: StandIn, tmp_path: Path) -> None:
    config = standin.config()
    assert not standin.config_path.exists()

    ngrok.install_ngrok(config)  # the binary exists: only the config file is written
    assert yaml.safe_load(standin.config_path.read_text()) == {"version": "3"}
    assert ngrok.get_version(config) == ("3.22.1", pyngrok.__version__)

    # The guard is live: with no binary at ngrok_path pyngrok would download one.
    missing = standin.config(ngrok_path=str(tmp_path / "missing" / "ngrok"))
    with pytest.raises(AssertionError, match="tried to download"):
        ngrok.install_ngrok(missing)


def test_config_commands_write_the_config_like_ngrok(
    standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = standin.config()
    ngrok.set_auth_token("token-from-set-auth-token", config)
    ngrok.set_api_key("key-from-set-api-key", config)
    written = yaml.safe_load(standin.config_path.read_text())
    assert written == {
        "version": "3",
        "agent": {"authtoken": "token-from-set-auth-token", "api_key": "key-from-set-api-key"},
    }
    assert ngrok.update(config) == "No update available, this is the latest version."
    with pytest.raises(PyngrokNgrokError, match="exited with code 1"):
        ngrok.api("endpoints", "list", pyngrok_config=config)

    # An agent that insists on an authtoken finds the one set_auth_token saved.
    monkeypatch.setenv("STANDIN_NGROK_REQUIRE_AUTHTOKEN", "1")
    assert ngrok.get_ngrok_process(config).healthy()
    [start] = [entry for entry in standin.records("start") if entry["command"] == "start"]
    assert start["authtoken"] is None  # not on the command line: read from the config


# ------------------------------------------------------------------------ forwarding


def test_connect_forwards_a_post_byte_exact_and_relays_the_answer(
    standin: StandIn, upstream: UpstreamServer
) -> None:
    config = standin.config()
    tunnel = ngrok.connect(str(upstream.port), pyngrok_config=config)

    assert tunnel.public_url is not None
    assert tunnel.public_url.startswith("http://127.0.0.1:")
    assert tunnel.proto == "http"
    assert tunnel.upstream == {"url": f"http://localhost:{upstream.port}", "protocol": "http1"}
    assert tunnel.uri == f"/api/endpoints/{tunnel.name}"
    assert ngrok._current_tunnels == {tunnel.public_url: tunnel}

    body = bytes(range(256)) * 40 + '{"émoji": "🎥"}'.encode()
    with http_client() as client:
        response = client.post(
            f"{tunnel.public_url}/webhook/s3cret?x=1&y=%20z",
            content=body,
            headers=[("X-Custom", "one"), ("X-Custom", "two"), ("Content-Type", "x/y")],
        )

    assert response.status_code == 201
    assert response.reason_phrase == "Created"
    assert response.headers["X-Upstream"] == "seen"
    assert response.headers.get_list("Set-Cookie") == ["a=1", "b=2"]
    assert response.json() == {
        "method": "POST",
        "path": "/webhook/s3cret?x=1&y=%20z",
        "size": len(body),
    }
    [seen] = upstream.seen
    assert (seen.method, seen.path, seen.body) == ("POST", "/webhook/s3cret?x=1&y=%20z", body)
    assert seen.headers_named("X-Custom") == ["one", "two"]
    assert seen.header("Content-Type") == "x/y"
    assert seen.header("Content-Length") == str(len(body))
    assert seen.header("Host") == urlsplit(tunnel.public_url).netloc
    assert seen.header("X-Forwarded-For") == "127.0.0.1"
    assert seen.header("X-Forwarded-Host") == urlsplit(tunnel.public_url).netloc
    assert seen.header("X-Forwarded-Proto") == "https"


def test_chunked_bodies_and_streamed_answers_pass_through(
    standin: StandIn, upstream: UpstreamServer
) -> None:
    tunnel = ngrok.connect(str(upstream.port), pyngrok_config=standin.config())
    assert tunnel.public_url is not None

    def pieces() -> Iterator[bytes]:
        yield b'{"part": 1,'
        yield b' "part2": "' + b"x" * 100_000 + b'"}'

    with http_client() as client:
        response = client.put(f"{tunnel.public_url}/chunked", content=pieces())
        assert response.status_code == 201
        streamed = client.get(f"{tunnel.public_url}/stream")

    [chunked, stream] = upstream.seen
    assert chunked.method == "PUT"
    assert chunked.header("Transfer-Encoding") == "chunked"
    assert chunked.header("Content-Length") is None
    assert chunked.body == b"".join(pieces())
    assert stream.method == "GET"
    assert streamed.status_code == 200
    assert streamed.headers["Transfer-Encoding"] == "chunked"
    assert streamed.content == b"first,second,third"


def test_an_unreachable_upstream_gets_ngroks_502(standin: StandIn) -> None:
    tap = LogTap()
    port = free_port()
    tunnel = ngrok.connect(str(port), pyngrok_config=standin.config(log_event_callback=tap))
    assert tunnel.public_url is not None

    with http_client() as client:
        response = client.post(f"{tunnel.public_url}/webhook", content=b"{}")

    assert response.status_code == 502
    assert response.headers["Ngrok-Error-Code"] == "ERR_NGROK_8012"
    assert "ERR_NGROK_8012" in response.text
    assert f"localhost:{port}" in response.text
    warning = tap.wait_for(lambda log: log.msg == "failed to open private leg", "the 8012 warning")
    assert warning.lvl == "WARNING"


def test_tcp_tunnels_pipe_bytes_both_ways(standin: StandIn) -> None:
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), EchoHandler) as echo:
        echo.daemon_threads = True
        thread = threading.Thread(target=echo.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            tunnel = ngrok.connect(
                str(echo.server_address[1]), "tcp", pyngrok_config=standin.config()
            )
            assert tunnel.public_url is not None
            assert tunnel.public_url.startswith("tcp://127.0.0.1:")
            assert tunnel.proto == "tcp"
            with socket.create_connection(("127.0.0.1", port_of(tunnel.public_url)), WAIT) as sock:
                sock.sendall(b"ping over tcp")
                sock.shutdown(socket.SHUT_WR)
                received = b""
                while data := sock.recv(65536):
                    received += data
            assert received == b"ping over tcp"
        finally:
            echo.shutdown()
            thread.join(WAIT)


async def test_the_monitor_receives_a_callback_through_the_tunnel(
    standin: StandIn, monitor: Monitor
) -> None:
    """The whole path a Tavus callback takes: public URL -> agent -> the monitor's uvicorn."""
    assert monitor.port is not None
    config = standin.config()
    tunnel = await asyncio.to_thread(ngrok.connect, str(monitor.port), pyngrok_config=config)
    body = fixture_bytes("video.ready.json")
    async with httpx.AsyncClient(timeout=WAIT, trust_env=False) as client:
        response = await client.post(f"{tunnel.public_url}{monitor.webhook_path}", content=body)
    assert response.status_code == 200
    assert response.json() == {"status": "success"}
    assert monitor.store is not None
    assert monitor.store.counts().events == 1


# ---------------------------------------------------------------- the pyngrok life cycle


def test_get_tunnels_and_disconnect_close_only_that_listener(
    standin: StandIn, upstream: UpstreamServer
) -> None:
    config = standin.config()
    first = ngrok.connect(str(upstream.port), pyngrok_config=config)
    second = ngrok.connect(f"http://localhost:{upstream.port}", pyngrok_config=config)
    assert first.public_url is not None
    assert second.public_url is not None
    assert first.public_url != second.public_url

    listed = {tunnel.public_url: tunnel for tunnel in ngrok.get_tunnels(config)}
    assert set(listed) == {first.public_url, second.public_url}
    assert listed[first.public_url].name == first.name

    ngrok.disconnect(first.public_url, config)

    assert port_refuses(port_of(first.public_url))
    assert [tunnel.public_url for tunnel in ngrok.get_tunnels(config)] == [second.public_url]
    with http_client() as client:
        assert client.get(f"{second.public_url}/still-up").status_code == 201
    opened = [entry["name"] for entry in standin.records("tunnel-open")]
    closed = [entry["name"] for entry in standin.records("tunnel-close")]
    assert (opened, closed) == ([first.name, second.name], [first.name])


def test_kill_leaves_no_agent_and_no_listener(standin: StandIn, upstream: UpstreamServer) -> None:
    config = standin.config()
    tunnel = ngrok.connect(str(upstream.port), pyngrok_config=config)
    agent = ngrok.get_ngrok_process(config)
    assert agent.api_url is not None
    assert tunnel.public_url is not None
    [pid] = standin.agent_pids()
    assert agent.proc.pid == pid

    ngrok.kill(config)

    assert not pid_exists(pid)
    assert not process.is_process_running(config.ngrok_path)
    assert ngrok._current_tunnels == {}
    assert port_refuses(port_of(agent.api_url))
    assert port_refuses(port_of(tunnel.public_url))


def test_log_event_callback_and_monitor_thread_see_every_line(
    standin: StandIn, upstream: UpstreamServer
) -> None:
    tap = LogTap()
    config = standin.config(log_event_callback=tap, max_logs=50)
    tunnel = ngrok.connect(str(upstream.port), pyngrok_config=config)
    agent = ngrok.get_ngrok_process(config)

    web = tap.wait_for(lambda log: log.msg == "starting web service", "the web service")
    assert agent.api_url == f"http://{web.addr}"
    assert {"client session established", "tunnel session started"} <= set(tap.messages())
    assert all(log.t and log.lvl == "INFO" for log in tap.logs)
    assert agent._monitor_thread is not None
    assert agent._monitor_thread.is_alive()

    with http_client() as client:
        client.post(f"{tunnel.public_url}/logged?q=1", content=b"{}")

    line = tap.wait_for(lambda log: log.msg == "http request", "the forwarded request")
    assert 'uri="/logged?q=1"' in line.line
    assert "status=201" in line.line
    assert "join connections" in tap.messages()
    assert any(log.msg == "http request" for log in agent.logs)


def test_the_flags_pyngrok_passes_reach_the_agent(standin: StandIn) -> None:
    config = standin.config(auth_token="tok-123", region="eu")
    agent = ngrok.get_ngrok_process(config)

    [start] = [entry for entry in standin.records("start") if entry["command"] == "start"]
    assert start["argv"][1:] == [
        "start",
        "--none",
        "--log",
        "stdout",
        "--config",
        str(standin.config_path),
        "--authtoken",
        "tok-123",
        "--region",
        "eu",
    ]
    assert (start["authtoken"], start["region"]) == ("tok-123", "eu")
    status = ngrok_agent.get_agent_status(config)
    assert (status.status, status.agent_version) == ("online", "3.22.1")
    assert status.session["legs"][0]["region"] == "eu"
    assert agent.api_url is not None


def test_config_version_2_goes_through_api_tunnels(
    standin: StandIn, upstream: UpstreamServer
) -> None:
    config = standin.config(config_version="2")
    tunnel = ngrok.connect(str(upstream.port), pyngrok_config=config)
    assert tunnel.public_url is not None

    assert tunnel.uri == f"/api/tunnels/{tunnel.name}"
    assert tunnel.proto == "http"
    assert tunnel.config == {"addr": f"http://localhost:{upstream.port}", "inspect": True}
    assert [t.public_url for t in ngrok.get_tunnels(config)] == [tunnel.public_url]
    with http_client() as client:
        assert client.get(f"{tunnel.public_url}/v2").status_code == 201
    ngrok.disconnect(tunnel.public_url, config)
    assert ngrok.get_tunnels(config) == []


def test_metrics_and_captured_requests_follow_inspect(
    standin: StandIn, upstream: UpstreamServer
) -> None:
    config = standin.config()
    inspected = ngrok.connect(str(upstream.port), pyngrok_config=config)
    private = ngrok.connect(str(upstream.port), pyngrok_config=config, inspect=False)
    with http_client() as client:
        client.post(f"{inspected.public_url}/seen", content=b'{"a": 1}')
        client.post(f"{private.public_url}/unseen", content=b'{"b": 2}')

    inspected.refresh_metrics()
    private.refresh_metrics()
    assert inspected.metrics["http"]["count"] == 1
    assert private.metrics["http"]["count"] == 1
    assert inspected.metrics["conns"]["count"] == 1

    [captured] = ngrok_agent.get_requests(pyngrok_config=config)
    assert captured.tunnel_name == inspected.name
    assert ngrok_agent.get_requests(private.name, config) == []
    found = ngrok_agent.get_request(str(captured.id), config)
    raw = base64.b64decode(found.request["raw"])
    assert raw.startswith(b"POST /seen HTTP/1.1\r\n")
    assert raw.endswith(b'\r\n\r\n{"a": 1}')
    assert found.response["status_code"] == 201

    ngrok_agent.replay_request(str(captured.id), pyngrok_config=config)
    replayed = upstream.seen[-1]
    assert (replayed.method, replayed.path, replayed.body) == ("POST", "/seen", b'{"a": 1}')
    assert len(ngrok_agent.get_requests(inspected.name, config)) == 2
    ngrok_agent.delete_requests(config)
    assert ngrok_agent.get_requests(pyngrok_config=config) == []


def test_sigterm_stops_the_agent_cleanly(standin: StandIn) -> None:
    agent = ngrok.get_ngrok_process(standin.config())

    process._terminate_process(agent.proc)  # what pyngrok's atexit hook does

    assert agent.proc.wait(WAIT) == 0
    assert [entry["code"] for entry in standin.records("exit")] == [0]


# ------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("mode", "code", "text"),
    [
        ("no-authtoken", "ERR_NGROK_4018", "Usage of ngrok requires a verified account"),
        ("session-limit", "ERR_NGROK_108", "limited to 1 simultaneous ngrok agent sessions"),
        ("bad-authtoken", "ERR_NGROK_105", "does not look like a proper ngrok authtoken"),
    ],
)
def test_a_refused_session_is_a_startup_error(
    standin: StandIn, upstream: UpstreamServer, mode: str, code: str, text: str
) -> None:
    standin.mode(mode)
    config = standin.config()

    with pytest.raises(PyngrokNgrokError) as raised:
        ngrok.connect(str(upstream.port), pyngrok_config=config)

    error = raised.value
    assert str(error).startswith("The ngrok process errored on start: authentication failed: ")
    assert code in str(error)
    assert text in str(error)
    assert error.ngrok_error_code == code
    assert any(log.lvl == "ERROR" for log in error.ngrok_logs)
    [pid] = standin.agent_pids()
    assert not pid_exists(pid)
    assert not process.is_process_running(config.ngrok_path)
    assert upstream.seen == []


def test_required_authtoken_missing_is_err_4018(
    standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_NGROK_REQUIRE_AUTHTOKEN", "1")
    with pytest.raises(PyngrokNgrokError) as raised:
        ngrok.get_ngrok_process(standin.config())
    assert raised.value.ngrok_error_code == "ERR_NGROK_4018"

    assert ngrok.get_ngrok_process(standin.config(auth_token="given")).healthy()


def test_hang_runs_into_pyngroks_startup_timeout(
    standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_NGROK_MODE", "hang")  # the env works as well as the file
    config = standin.config(startup_timeout=1)
    started = time.monotonic()

    with pytest.raises(PyngrokNgrokError) as raised:
        ngrok.get_ngrok_process(config)

    assert str(raised.value) == "The ngrok process was unable to start."
    assert 1 <= time.monotonic() - started < 1 + WAIT
    [pid] = standin.agent_pids()
    assert not pid_exists(pid)


def test_a_busy_web_addr_from_the_config_is_a_startup_error(standin: StandIn) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        address = f"127.0.0.1:{busy.getsockname()[1]}"
        installer.install_default_config(str(standin.config_path), {"agent": {"web_addr": address}})
        with pytest.raises(PyngrokNgrokError) as raised:
            ngrok.get_ngrok_process(standin.config())
    assert raised.value.ngrok_error == f"listen tcp {address}: bind: address already in use"

    # A free web_addr is honoured, as ngrok does.
    address = f"127.0.0.1:{free_port()}"
    installer.install_default_config(str(standin.config_path), {"agent": {"web_addr": address}})
    assert ngrok.get_ngrok_process(standin.config()).api_url == f"http://{address}"


def test_offline_reports_the_dial_error_at_the_timeout(standin: StandIn) -> None:
    standin.mode("offline")
    with pytest.raises(PyngrokNgrokError) as raised:
        ngrok.get_ngrok_process(standin.config(startup_timeout=1))
    assert "failed to dial ngrok server" in str(raised.value)
    assert raised.value.ngrok_error_code is None


def test_a_silent_agent_blocks_pyngrok_beyond_its_startup_timeout(standin: StandIn) -> None:
    """pyngrok checks startup_timeout only between lines: an agent that says nothing hangs it."""
    standin.mode("hang-silent")
    config = standin.config(startup_timeout=1)
    outcome: list[BaseException] = []

    def start() -> None:
        try:
            ngrok.get_ngrok_process(config)
        except PyngrokError as error:
            outcome.append(error)

    starter = threading.Thread(target=start, daemon=True)
    starter.start()
    [pid] = wait_until(standin.agent_pids, "the silent agent to start")
    starter.join(config.startup_timeout + 1.5)
    assert starter.is_alive(), "pyngrok gave up on a silent agent"

    os.kill(pid, signal.SIGKILL)  # only the end of the pipe frees pyngrok
    starter.join(WAIT)
    assert not starter.is_alive()
    assert [str(error) for error in outcome] == ["The ngrok process was unable to start."]


def test_invalid_domain_is_a_pyngrok_http_error(standin: StandIn, upstream: UpstreamServer) -> None:
    standin.mode("invalid-domain")
    config = standin.config()

    for option in ({"url": "https://mine.ngrok.app"}, {"domain": "mine.ngrok.app"}):
        with pytest.raises(PyngrokNgrokHTTPError) as raised:
            ngrok.connect(str(upstream.port), pyngrok_config=config, **option)
        error = raised.value
        assert error.status_code == 502
        body = json.loads(error.body)
        assert (body["error_code"], body["status_code"]) == (103, 502)
        assert body["msg"] == "failed to start tunnel"
        assert "'mine.ngrok.app'" in body["details"]["err"]
        assert "ERR_NGROK_320" in body["details"]["err"]

    # Without a domain the same agent opens tunnels as usual.
    tunnel = ngrok.connect(str(upstream.port), pyngrok_config=config)
    assert tunnel.public_url is not None
    assert ngrok.get_ngrok_process(config).healthy()


def test_a_requested_domain_is_echoed_or_used_as_the_public_url(
    standin: StandIn, upstream: UpstreamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = standin.config()
    echoed = ngrok.connect(str(upstream.port), pyngrok_config=config, url="https://a.ngrok.app")
    assert echoed.public_url is not None
    assert echoed.public_url.startswith("http://127.0.0.1:")
    assert echoed.data["standin"]["requested_url"] == "https://a.ngrok.app"
    ngrok.kill(config)

    monkeypatch.setenv("STANDIN_NGROK_PUBLIC_URL", "requested")
    used = ngrok.connect(str(upstream.port), pyngrok_config=config, url="https://b.ngrok.app")
    assert used.public_url == "https://b.ngrok.app"
    assert used.proto == "https"
    with http_client() as client:
        forwarded = client.get(f"{used.data['standin']['forward_url']}/via-loopback")
    assert forwarded.status_code == 201
    assert upstream.seen[-1].path == "/via-loopback"


def test_crash_after_requests_ends_the_agent_mid_session(
    standin: StandIn, upstream: UpstreamServer
) -> None:
    standin.mode("crash-after-requests=1", "ok")
    config = standin.config()
    tunnel = ngrok.connect(str(upstream.port), pyngrok_config=config)
    agent = ngrok.get_ngrok_process(config)
    assert tunnel.public_url is not None

    with http_client() as client:
        response = client.post(f"{tunnel.public_url}/last", content=b"{}")
    assert response.status_code == 201  # the request that triggers the crash is answered

    assert agent.proc.wait(WAIT) == 1
    assert not agent.healthy()
    assert not process.is_process_running(config.ngrok_path)
    assert port_refuses(port_of(tunnel.public_url))
    assert [entry["reason"] for entry in standin.records("crash")] == ["crash-after-requests=1"]

    # Reconnecting starts a fresh agent (the control file now says "ok").
    again = ngrok.connect(str(upstream.port), pyngrok_config=config)
    assert ngrok.get_ngrok_process(config).proc.pid != agent.proc.pid
    with http_client() as client:
        assert client.post(f"{again.public_url}/again", content=b"{}").status_code == 201
    assert len(standin.agent_pids()) == 2


def test_crash_after_seconds_from_the_first_tunnel(
    standin: StandIn, upstream: UpstreamServer
) -> None:
    standin.mode("crash-after=0.2")
    config = standin.config()
    agent = ngrok.get_ngrok_process(config)
    assert agent.healthy()  # no tunnel yet: no countdown

    ngrok.connect(str(upstream.port), pyngrok_config=config)

    assert agent.proc.wait(WAIT) == 1
    assert not agent.healthy()
    assert [entry["reason"] for entry in standin.records("crash")] == ["crash-after=0.2"]


def test_control_file_makes_the_first_start_fail_and_the_next_succeed(
    standin: StandIn, upstream: UpstreamServer
) -> None:
    standin.mode("no-authtoken", "ok")
    config = standin.config()

    with pytest.raises(PyngrokNgrokError) as raised:
        ngrok.connect(str(upstream.port), pyngrok_config=config)
    assert raised.value.ngrok_error_code == "ERR_NGROK_4018"
    assert standin.control.read_text() == "ok\n"

    tunnel = ngrok.connect(str(upstream.port), pyngrok_config=config)
    with http_client() as client:
        assert client.get(f"{tunnel.public_url}/retry").status_code == 201
    assert [entry["mode"] for entry in standin.records("start")] == ["no-authtoken", "ok"]
