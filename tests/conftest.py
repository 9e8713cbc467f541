"""Shared fixtures: a real monitor (real uvicorn on a loopback port, real SQLite file).

The tests run against the installed ``tavus-monitor``: an editable install for
development, the built package in CI (``pip install ".[test]" && pytest``).
``pytest_configure`` refuses to run when the package imported here is not the
one installed, which is what ``python -m pytest`` from the checkout does to a
non-editable install (``-m`` puts the working directory first on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
from standin_ngrok import standin  # noqa: F401  (the stand-in ngrok agent, for every module)

import tavus_monitor
from tavus_monitor.event_types import ENVELOPE_FAMILIES, REGISTRY
from tavus_monitor.monitor import Monitor
from tavus_monitor.settings import Settings
from tavus_monitor.store import StoreReader

FIXTURES = Path(__file__).parent / "fixtures" / "tavus"
TEST_TOKEN = "test-token-0123456789abcdef"

# What property-based tests build Tavus-shaped bodies from: every registered
# conversation event type, and every key the callbacks put under "properties".
DOCUMENTED_EVENT_TYPES = [
    entry.name for entry in REGISTRY.values() if entry.family in ENVELOPE_FAMILIES
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
    "interaction_id",
    "component",
    "type",
    "value",
]


def shadowed_install() -> str | None:
    """Why the imported ``tavus_monitor`` is not the installed one, or None when it is.

    An editable install points at the checkout, so importing the checkout is right there.
    A regular install is what users get; importing anything else would test a different
    set of files (a data file missing from the wheel would go unnoticed).
    """
    imported = Path(tavus_monitor.__file__).resolve()
    # Installed by pip (a RECORD), not a stale tavus_monitor.egg-info lying in the checkout.
    installs = [
        dist
        for dist in metadata.distributions(name="tavus-monitor")
        if dist.read_text("RECORD") is not None
    ]
    if installs:
        dist = installs[0]
    else:
        return (
            f"the tests import tavus_monitor from {imported.parent}, but tavus-monitor is not "
            'installed: run pip install -e ".[test]" (or pip install ".[test]") first.'
        )
    direct_url = json.loads(dist.read_text("direct_url.json") or "{}")
    if direct_url.get("dir_info", {}).get("editable"):
        return None
    installed = Path(str(dist.locate_file("tavus_monitor/__init__.py"))).resolve()
    if installed == imported:
        return None
    return (
        f"the tests import tavus_monitor from {imported.parent}, not the installed copy in "
        f"{installed.parent}: run pytest (not python -m pytest, which puts the checkout first "
        'on sys.path), or install for development with pip install -e ".[test]".'
    )


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to test a different copy of the package from the one installed."""
    problem = shadowed_install()
    if problem is not None:
        raise pytest.UsageError(problem)


class HasReady(Protocol):
    ready: asyncio.Event


READY_DEADLINE = 10.0
"""Seconds the dashboard may take to start its server (under a second when idle)."""


async def wait_ready(app: HasReady) -> None:
    """Wait for ``app.ready``, failing in seconds if the dashboard never gets there.

    Without a deadline a start-up failure hangs the test until pytest-timeout (120 s).
    """
    try:
        async with asyncio.timeout(READY_DEADLINE):
            await app.ready.wait()
    except TimeoutError:
        pytest.fail(f"the dashboard was not ready within {READY_DEADLINE:g} s")


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
    for name in (
        "PORT",
        "HOST",
        "TOKEN",
        "DB",
        "CONFIG",
        "PUBLIC_URL",
        "MAX_BODY_MB",
        "FORWARD_TO",
        "FORWARD_TIMEOUT",
        "FORWARD_RETRIES",
    ):
        monkeypatch.delenv(f"TAVUS_MONITOR_{name}", raising=False)
    # No test may reach for ngrok's servers: tunnels are opened only by the tests that
    # ask for one, against the stand-in agent in tests/standin_ngrok.
    monkeypatch.setenv("TAVUS_MONITOR_NO_TUNNEL", "1")
    for name in ("NGROK_AUTHTOKEN", "PYNGROK_NGROK_PATH"):
        monkeypatch.delenv(name, raising=False)
    # Nor Tavus's API: a key in the developer's environment never reaches a test, and the
    # base URL is a closed loopback port unless a test points it at its stand-in.
    monkeypatch.delenv("TAVUS_API_KEY", raising=False)
    monkeypatch.setenv("TAVUS_PUBLIC_API_BASE_URL", "http://127.0.0.1:9/v2")
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


def wait_indexed(store: StoreReader, timeout: float = 10.0) -> None:
    """Until search finds every stored event (the writer indexes while idle, just after)."""
    deadline = time.monotonic() + timeout
    while store.unindexed():
        assert time.monotonic() < deadline, "the writer never indexed what it stored"
        time.sleep(0.01)


async def wait_indexed_async(store: StoreReader) -> None:
    """:func:`wait_indexed` for tests on the app's event loop (10 s at most)."""
    async with asyncio.timeout(10):
        # The writer is another process: there is no event here to await, only the file.
        while await asyncio.to_thread(store.unindexed):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
