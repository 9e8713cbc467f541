"""The stand-in ngrok agent as a test fixture, for every test module that needs a tunnel.

``standin`` gives each test a private copy of the stand-in script (``ngrok`` beside this
file: pyngrok keys its process registry by ``ngrok_path``, and the control file sits next
to the copy), a record file (``STANDIN_NGROK_RECORD``), a guard that fails the test if
pyngrok ever tries to download ngrok, and a ``subprocess.Popen`` subclass that remembers
every process started during the test. The teardown kills and reaps all of them, closes
their pipes and checks that no agent process is left.

tests/conftest.py re-exports the fixture, so any test can ask for ``standin``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pyngrok import installer, ngrok, process
from pyngrok.conf import PyngrokConfig

STANDIN = Path(__file__).parent / "ngrok"
"""The stand-in agent script (``#!/usr/bin/env python3``)."""
WAIT = 10.0
"""Upper bound, in seconds, for anything a test waits for."""

STANDIN_ENV = (
    "STANDIN_NGROK_MODE",
    "STANDIN_NGROK_CONTROL",
    "STANDIN_NGROK_RECORD",
    "STANDIN_NGROK_PUBLIC_URL",
    "STANDIN_NGROK_REQUIRE_AUTHTOKEN",
    "STANDIN_NGROK_FORWARDED_PROTO",
    "STANDIN_NGROK_RETRY_INTERVAL",
    "NGROK_AUTHTOKEN",
    "NGROK_API_KEY",
    "PYNGROK_NGROK_PATH",
)
"""Environment that changes what the stand-in or pyngrok do; cleared for every test."""


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def pid_exists(pid: int) -> bool:
    """True while the process exists at all, zombies included (so: not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process reused the pid
        return True
    return True


class TrackedPopen(subprocess.Popen[Any]):
    """``subprocess.Popen`` that remembers every process, so teardown can reap them all."""

    started: list[subprocess.Popen[Any]] = []  # noqa: RUF012

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        TrackedPopen.started.append(self)


@dataclass
class StandIn:
    """One private copy of the stand-in agent, its config file and its record."""

    path: Path
    config_path: Path
    record_path: Path
    configs: list[PyngrokConfig] = field(default_factory=list)

    @property
    def control(self) -> Path:
        return self.path.with_name(self.path.name + ".control")

    def mode(self, *lines: str) -> None:
        """What the next starts do: one line per start, the last one sticks."""
        self.control.write_text("\n".join(lines) + "\n")

    def config(self, **kwargs: Any) -> PyngrokConfig:
        kwargs.setdefault("ngrok_path", str(self.path))
        kwargs.setdefault("config_path", str(self.config_path))
        kwargs.setdefault("startup_timeout", 10)
        kwargs.setdefault("request_timeout", 5)
        config = PyngrokConfig(**kwargs)
        self.configs.append(config)
        return config

    def records(self, event: str | None = None) -> list[dict[str, Any]]:
        if not self.record_path.exists():
            return []
        entries = [json.loads(line) for line in self.record_path.read_text().splitlines()]
        return [entry for entry in entries if event is None or entry["event"] == event]

    def agent_pids(self) -> list[int]:
        return [entry["pid"] for entry in self.records("start") if entry["command"] == "start"]


def reap(started: list[subprocess.Popen[Any]]) -> None:
    """Kill and wait for every process pyngrok started, then close the pipes it left open."""
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(WAIT)
    for thread in threading.enumerate():
        if "_monitor_process" in thread.name:
            thread.join(WAIT)
    for proc in started:
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIn]:
    """A private stand-in agent; no download possible; every process reaped at the end."""
    for name in STANDIN_ENV:
        monkeypatch.delenv(name, raising=False)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    path = bin_dir / "ngrok"
    # This copy runs under the interpreter running the tests, whatever python3 is on PATH.
    _, script = STANDIN.read_text().split("\n", 1)
    path.write_text(f"#!{sys.executable}\n{script}")
    path.chmod(0o755)
    record_path = tmp_path / "standin-record.jsonl"
    monkeypatch.setenv("STANDIN_NGROK_RECORD", str(record_path))

    def no_download(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"pyngrok tried to download ngrok: {args} {kwargs}")

    monkeypatch.setattr(installer, "install_ngrok", no_download)
    monkeypatch.setattr(installer, "_download_file", no_download)
    started: list[subprocess.Popen[Any]] = []
    monkeypatch.setattr(TrackedPopen, "started", started)
    monkeypatch.setattr(subprocess, "Popen", TrackedPopen)

    agent = StandIn(path=path, config_path=tmp_path / "ngrok.yml", record_path=record_path)
    try:
        yield agent
    finally:
        for config in agent.configs:
            ngrok.kill(config)
        reap(started)
        left = [pid for pid in agent.agent_pids() if pid_exists(pid)]
        assert not left, f"stand-in agents left running or unreaped: {left}"
        assert not any(config.ngrok_path in process._current_processes for config in agent.configs)
