"""An honest URL (issue 11, item 2): the header, `c` and headless say when Tavus cannot
reach the callback URL, the tunnel's advice stays on screen until it works, and an
authtoken pasted in the running dashboard brings the tunnel up.

Real parts only: the real pyngrok against the stand-in agent (``standin``), the real app
through ``run_test``, the headless console script in its own process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import TEST_TOKEN, wait_ready
from headless_process import HeadlessProcess
from pyngrok import conf as pyngrok_conf
from standin_ngrok import WAIT, StandIn
from test_tunnel import (
    alive,
    assert_local_url_works,
    child_env,
    closed_port,
    dead_end_proxies,
    screen_text,
    tunnel_monitor,
    tunnel_settings,
    until,
)
from textual.pilot import Pilot
from textual.widgets import Checkbox, Input

from tavus_monitor.settings import Settings
from tavus_monitor.tui.app import MonitorApp
from tavus_monitor.tui.screens.authtoken import AuthtokenScreen
from tavus_monitor.tui.widgets.url_bar import UrlBar, url_rows
from tavus_monitor.tunnel import TunnelState

LOCAL_ONLY = "(local only: Tavus cannot reach it)"
LONG_DOMAIN = "d1f4-2a02-8109-b6c0-4e00-5d2c.ngrok-free.app"
"""A public host as long as the first-use review's, whose URL broke inside the token."""
LONG_TOKEN = "zr2h_IFHVpSuk6Xk0ZrO6_K0IfozX1lW"


@pytest.fixture(autouse=True)
def private_ngrok_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pyngrok's default config path where the stand-in reads it (XDG_CONFIG_HOME)."""
    path = tmp_path / "config" / "ngrok" / "ngrok.yml"
    monkeypatch.setattr(pyngrok_conf, "DEFAULT_NGROK_CONFIG_PATH", str(path))
    return path


@contextlib.asynccontextmanager
async def dashboard(
    settings: Settings, size: tuple[int, int]
) -> AsyncIterator[tuple[MonitorApp, Pilot[int]]]:
    monitor = tunnel_monitor(settings)
    app = MonitorApp(settings, monitor=monitor)
    app.animation_level = "none"
    try:
        async with app.run_test(size=size, notifications=True) as pilot:
            await wait_ready(app)
            yield app, pilot
    finally:
        await asyncio.wait_for(monitor.stop(), WAIT)


def rows(app: MonitorApp) -> list[str]:
    return [row.replace("\xa0", " ") for row in screen_text(app).splitlines()]


def header_height(app: MonitorApp) -> int:
    """Rows above the first pane's top border."""
    return next(number for number, row in enumerate(rows(app)) if "System events" in row)


def header_text(app: MonitorApp) -> str:
    """The header's rows joined into one paragraph (wrapping undone)."""
    return " ".join(row.strip(" │╭╮╰╯─") for row in rows(app)[: header_height(app)])


# ------------------------------------------------------------------------ dashboard


@pytest.mark.parametrize("size", [(80, 24), (120, 35)], ids=["80x24", "120x35"])
async def test_a_failed_tunnel_says_local_only_and_keeps_its_advice_until_fixed(
    standin: StandIn, tmp_path: Path, size: tuple[int, int]
) -> None:
    standin.mode("no-authtoken")
    async with dashboard(tunnel_settings(tmp_path, standin.path), size) as (app, pilot):
        bar = app.query_one(UrlBar)
        await until(pilot, lambda: bar.state.local_only == "the tunnel failed", "the failure")
        local = app.monitor.local_url
        await until(pilot, lambda: "Press a to paste" in header_text(app), "the advice")
        header = header_text(app)
        assert "Callback URL" not in header
        assert "Local URL only" in header
        assert "Tavus cannot reach it: the tunnel failed. ngrok refused to start" in header
        assert "Press a to paste your authtoken (https:" in header
        assert "https://dashboard.ngrok.com/get-started/your-authtoken" in header
        assert any(local in row for row in rows(app)), "the URL is broken across rows"
        if size == (80, 24):
            assert "╭" not in rows(app)[0]  # compact: no border
            assert header_height(app) <= 6, "\n".join(rows(app)[:9])

        # The advice is in the header, not only in a toast: gone toasts leave it there,
        # and a retry that fails again keeps it.
        app.clear_notifications()
        await pilot.pause()
        assert "Press a to paste" in header_text(app)
        await pilot.press("t")
        await until(pilot, lambda: len(standin.agent_pids()) == 2, "the second start")
        await until(pilot, lambda: bar.state.local_only == "the tunnel failed", "failed again")
        assert "Press a to paste" in header_text(app)

        standin.mode("ok")
        await pilot.press("t")
        await until(pilot, lambda: bar.state.local_only is None, "the tunnel to be up")
        public = app.monitor.tunnel_status.public_url
        await until(pilot, lambda: "Callback URL" in header_text(app), "the public URL")
        assert "Press a" not in header_text(app)
        assert "Tavus cannot reach" not in header_text(app)
        assert f"{public}/webhook/{TEST_TOKEN}" in screen_text(app)
        pids = standin.agent_pids()
        await pilot.press("q")
    assert alive(pids) == []


async def test_c_says_when_it_copies_the_local_url(standin: StandIn, tmp_path: Path) -> None:
    standin.mode("no-authtoken", "ok")
    async with dashboard(tunnel_settings(tmp_path, standin.path), (120, 35)) as (app, pilot):
        bar = app.query_one(UrlBar)
        await until(pilot, lambda: bar.state.local_only == "the tunnel failed", "the failure")
        app.clear_notifications()
        await pilot.press("c")
        assert app.clipboard == app.monitor.local_url
        [copied] = list(app._notifications)
        assert copied.message.startswith(
            "Copied the LOCAL URL: Tavus cannot reach it (the tunnel failed; "
        )
        assert copied.severity == "warning"

        await pilot.press("t")
        await until(pilot, lambda: bar.state.local_only is None, "the tunnel to be up")
        app.clear_notifications()
        await pilot.press("c")
        public = app.monitor.tunnel_status.public_url
        assert app.clipboard == f"{public}/webhook/{TEST_TOKEN}"
        [copied] = list(app._notifications)
        assert copied.message.startswith("Copied the callback URL")
        assert copied.severity == "information"


async def test_c_says_local_only_with_no_tunnel(tmp_path: Path) -> None:
    settings = dataclasses.replace(tunnel_settings(tmp_path, "unused"), no_tunnel=True)
    async with dashboard(settings, (80, 24)) as (app, pilot):
        bar = app.query_one(UrlBar)
        assert bar.state.local_only == "no tunnel was opened (--no-tunnel)"
        await until(pilot, lambda: "--no-tunnel to open" in header_text(app), "the header")
        assert "Tavus cannot reach it: no tunnel was opened (--no-tunnel)." in header_text(app)
        assert "Restart without --no-tunnel" in header_text(app), "\n".join(rows(app))
        await pilot.press("c")
        assert app.clipboard == app.monitor.local_url
        assert list(app._notifications)[-1].message.startswith(
            "Copied the LOCAL URL: Tavus cannot reach it (no tunnel was opened (--no-tunnel)"
        )


async def test_a_pasted_authtoken_brings_the_tunnel_up_and_is_saved(
    standin: StandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    private_ngrok_config: Path,
) -> None:
    """The stand-in refuses to start without an authtoken (as ngrok does); none is set
    anywhere. The token pasted in the dashboard is used at once and saved by ngrok's own
    ``config add-authtoken`` (through pyngrok) where the agent reads it next time."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("STANDIN_NGROK_REQUIRE_AUTHTOKEN", "1")
    token = "2pastedTok3n_0123456789abcdefghij"
    async with dashboard(tunnel_settings(tmp_path, standin.path), (80, 24)) as (app, pilot):
        bar = app.query_one(UrlBar)
        await until(pilot, lambda: bar.state.local_only == "the tunnel failed", "the failure")
        assert "needs an authtoken" in bar.state.tunnel

        await pilot.press("a")
        assert isinstance(app.screen, AuthtokenScreen)
        field = app.screen.query_one("#authtoken-input", Input)
        assert field.password  # masked
        assert app.focused is field
        await pilot.press(*token)
        assert field.value == token
        assert token not in screen_text(app)
        app.screen.query_one("#authtoken-save", Checkbox).value = True
        await pilot.press("enter")
        assert not isinstance(app.screen, AuthtokenScreen)

        await until(pilot, lambda: bar.state.local_only is None, "the tunnel to be up")
        assert app.monitor.tunnel_status.state is TunnelState.UP
        await until(
            pilot,
            lambda: any("Saved the authtoken" in n.message for n in app._notifications),
            "the saved notification",
        )
        starts = [entry for entry in standin.records("start") if entry["command"] == "start"]
        assert [entry["authtoken"] for entry in starts] == [None, token]
        assert [entry["command"] for entry in standin.records("start")].count(
            "config add-authtoken"
        ) == 1
        saved = await asyncio.to_thread(private_ngrok_config.read_text)
        assert re.search(rf"authtoken: {token}$", saved, re.M)
        await assert_local_url_works(app.monitor)
        messages = " ".join(f"{n.title} {n.message}" for n in app._notifications)
        assert token not in messages
        assert token not in screen_text(app)
        pids = standin.agent_pids()
        await pilot.press("q")
    assert alive(pids) == []
    assert token not in caplog.text


async def test_a_refused_pasted_authtoken_says_so_and_never_reaches_the_log(
    standin: StandIn, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    standin.mode("no-authtoken", "bad-authtoken")  # ngrok quotes a refused token
    token = "not-a-real-token-4242"
    async with dashboard(tunnel_settings(tmp_path, standin.path), (120, 35)) as (app, pilot):
        bar = app.query_one(UrlBar)
        await until(pilot, lambda: bar.state.local_only == "the tunnel failed", "the failure")
        await pilot.press("a")
        await pilot.press(*token, "enter")
        await until(pilot, lambda: "not valid" in bar.state.tunnel, "the refusal")
        assert "Press a to paste" in header_text(app)
        assert token not in screen_text(app)
    assert "Your authtoken: <authtoken>" in caplog.text
    assert token not in caplog.text


async def test_the_paste_key_is_in_the_palette_and_escape_cancels(
    standin: StandIn, tmp_path: Path
) -> None:
    standin.mode("no-authtoken")
    async with dashboard(tunnel_settings(tmp_path, standin.path), (120, 35)) as (app, pilot):
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert "Paste ngrok authtoken" in titles
        await pilot.press("a")
        assert isinstance(app.screen, AuthtokenScreen)
        await pilot.press("x", "escape")
        assert not isinstance(app.screen, AuthtokenScreen)
        assert len([e for e in standin.records("start") if e["command"] == "start"]) == 1


# --------------------------------------------------------------- URL never broken


@pytest.mark.parametrize("size", [(80, 24), (80, 40)], ids=["80x24", "80x40"])
async def test_a_long_public_url_is_never_broken_inside_the_token(
    standin: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:
    monkeypatch.setenv("STANDIN_NGROK_PUBLIC_URL", "requested")
    settings = tunnel_settings(tmp_path, standin.path, ngrok_domain=LONG_DOMAIN)
    settings = dataclasses.replace(settings, token=LONG_TOKEN)
    async with dashboard(settings, size) as (app, pilot):
        bar = app.query_one(UrlBar)
        await until(pilot, lambda: bar.state.local_only is None, "the tunnel to be up")
        url = f"https://{LONG_DOMAIN}/webhook/{LONG_TOKEN}"
        assert bar.state.callback_url == url
        await until(pilot, lambda: LONG_TOKEN in screen_text(app), "the URL on screen")
        shown = rows(app)
        # Too long for 80 columns: split only before /webhook, the token whole on one row.
        assert any(row.strip(" │").startswith(f"/webhook/{LONG_TOKEN}") for row in shown)
        assert any(row.strip(" │") == f"https://{LONG_DOMAIN}" for row in shown)
        assert "c copies it" in header_text(app)
        if size == (80, 24):
            assert header_height(app) <= 5, "\n".join(shown[:9])


def test_url_rows_keep_the_url_whole_when_it_fits() -> None:
    url = f"https://{LONG_DOMAIN}/webhook/{LONG_TOKEN}"
    assert url_rows("Callback URL", url, 200) == [
        [("Callback URL    ", "label"), (url, "url"), ("   c copies it", "hint")]
    ]
    assert url_rows("Callback URL", url, len(url)) == [
        [("Callback URL", "label"), (" (c copies it)", "hint")],
        [(url, "url")],
    ]
    no_webhook = f"https://{LONG_DOMAIN}/{LONG_TOKEN}"
    assert url_rows("Callback URL", no_webhook, 60)[1:] == [
        [(f"https://{LONG_DOMAIN}/", "url")],
        [(LONG_TOKEN, "url")],
    ]


# ------------------------------------------------------------------------- headless


def test_headless_prints_every_url_change_at_line_start(standin: StandIn, tmp_path: Path) -> None:
    """A failed tunnel, then (the agent retried by the supervisor after a crash) up:
    every ``Callback URL:`` line starts the line; local ones are marked."""
    standin.mode("crash-after=1", "ok")
    data_dir = tmp_path / "headless-data"
    with HeadlessProcess(
        "--port", "0", "--data-dir", str(data_dir), "--ngrok-path", str(standin.path),
        "--token", TEST_TOKEN, env=child_env(),
    ) as run:  # fmt: skip
        first = run.wait_for("err", lambda line: line.startswith("Callback URL: "), "the URL")
        assert LOCAL_ONLY not in first
        local = run.wait_for("err", lambda line: LOCAL_ONLY in line, "the local-only URL")
        again = run.wait_for(
            "err",
            lambda line: line.startswith("Callback URL: ") and LOCAL_ONLY not in line,
            "the public URL again",
        )
        assert run.stop() == 0
    assert re.fullmatch(
        rf"Callback URL: http://127\.0\.0\.1:\d+/webhook/{TEST_TOKEN} \(local only: Tavus "
        r"cannot reach it\)",
        local,
    )
    assert again.endswith(f"/webhook/{TEST_TOKEN}")
    url_lines = [line for line in run.err if "Callback URL:" in line]
    assert all(line.startswith("Callback URL: ") for line in url_lines), url_lines


def test_headless_no_tunnel_marks_the_url_local_only(tmp_path: Path) -> None:
    with HeadlessProcess(
        "--port", "0", "--no-tunnel", "--data-dir", str(tmp_path / "d"), "--token", TEST_TOKEN,
        env=child_env(**dead_end_proxies(closed_port())),
    ) as run:  # fmt: skip
        line = run.wait_for("err", lambda text: "Callback URL:" in text, "the URL line")
        tunnel = [text for text in run.err if "Tunnel" in text]
        assert run.stop() == 0
    assert line.startswith("Callback URL: http://127.0.0.1:")
    assert line.endswith(f"/webhook/{TEST_TOKEN} {LOCAL_ONLY}")
    assert tunnel == ["warning: Tunnel: off (--no-tunnel)"]
