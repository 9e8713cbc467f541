"""Shared fixtures: a real monitor (real uvicorn on a loopback port, real SQLite file)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from standin_ngrok import standin  # noqa: F401  (the stand-in ngrok agent, for every module)

from tavus_monitor.monitor import Monitor
from tavus_monitor.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "tavus"
TEST_TOKEN = "test-token-0123456789abcdef"

# What property-based tests build Tavus-shaped bodies from: every documented
# conversation event type, and every key the callbacks put under "properties".
DOCUMENTED_EVENT_TYPES = [
    "system.replica_joined",
    "system.pal_joined",
    "system.shutdown",
    "application.transcription_ready",
    "application.recording_ready",
    "application.recording_copy_failed",
    "application.perception_analysis",
    "application.perception_unavailable",
    "application.post_call_action_executed",
    "conversation.objective.completed",
    "conversation.guardrail.triggered",
]
PROPERTY_KEYS = [
    "replica_id",
    "face_id",
    "shutdown_reason",
    "reason",
    "transcript",
    "bucket_name",
    "s3_key",
    "duration",
    "storage_uri",
    "storage_provider",
    "analysis",
    "tool_name",
    "tool_id",
    "status",
    "request",
    "response",
    "objective_name",
    "output_variables",
    "guardrail",
    "guardrail_name",
    "error_message",
]


def fixture_bytes(name: str) -> bytes:
    """A body from tests/fixtures/tavus (copied from the team's shared fixtures)."""
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(fixture_bytes(name))
    return data


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep every test away from the user's real data and config directories."""
    data_dir = tmp_path / "data"
    monkeypatch.setenv("TAVUS_MONITOR_DATA_DIR", str(data_dir))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    for name in ("PORT", "HOST", "TOKEN", "DB", "CONFIG", "PUBLIC_URL", "MAX_BODY_MB"):
        monkeypatch.delenv(f"TAVUS_MONITOR_{name}", raising=False)
    # No test may reach for ngrok's servers: tunnels are opened only by the tests that
    # ask for one, against the stand-in agent in tests/standin_ngrok.
    monkeypatch.setenv("TAVUS_MONITOR_NO_TUNNEL", "1")
    for name in ("NGROK_AUTHTOKEN", "PYNGROK_NGROK_PATH"):
        monkeypatch.delenv(name, raising=False)
    return data_dir


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        port=0,
        port_explicit=True,
        token=TEST_TOKEN,
        data_dir=tmp_path / "data",
        no_tunnel=True,
    )


@pytest.fixture
async def monitor(settings: Settings) -> AsyncIterator[Monitor]:
    """A started monitor listening on a free loopback port."""
    running = Monitor(settings)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def client(monitor: Monitor) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=monitor.base_url, timeout=30) as http:
        yield http
