"""First-use review fixes (issue 11, items 8 and 9): a busy --port in the dashboard, the help at
80 columns, the trigger's and --ngrok-region's refusals, the Jobs pane following, wording."""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
from test_tui import encode, sample, settle
from test_tui import running as running_dashboard
from textual.app import App
from textual.pilot import Pilot
from textual.widget import Widget

from tavus_monitor.cli import EXIT_USAGE, main
from tavus_monitor.settings import Settings
from tavus_monitor.tui.app import MonitorApp
from tavus_monitor.tui.keys import help_sections
from tavus_monitor.tui.screens.simple import HelpScreen
from tavus_monitor.tui.text import counted
from tavus_monitor.tui.widgets.json_tree import _preview


def screen_lines(app: App[int]) -> list[str]:
    strips = app.screen._compositor.render_strips()
    return ["".join(segment.text for segment in strip) for strip in strips]


@contextlib.asynccontextmanager
async def running(settings: Settings, size: tuple[int, int]) -> AsyncIterator[Pilot[int]]:
    app = MonitorApp(settings)
    app.animation_level = "none"
    async with app.run_test(size=size, notifications=False) as pilot:
        await app.ready.wait()
        await pilot.pause()
        try:
            yield pilot
        finally:
            await app.monitor.stop()


# ------------------------------------------------------------ a busy --port


@pytest.fixture
def restore_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """``main`` would send the test's logging to a log file, as ``tavus-monitor`` does."""
    monkeypatch.setattr("tavus_monitor.cli.dashboard.configure_logging", lambda data_dir: None)


@contextlib.contextmanager
def busy_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.mark.usefixtures("restore_logging")
def test_a_busy_port_ends_the_dashboard_as_it_ends_headless_mode(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_dashboard(settings: Settings) -> int:
        raise AssertionError("the dashboard started on a busy port")

    monkeypatch.setattr("tavus_monitor.tui.run_tui", no_dashboard)
    with busy_port() as port:
        assert main(["--headless", "--port", str(port)]) == EXIT_USAGE
        headless = capsys.readouterr().err
        assert main(["--port", str(port)]) == EXIT_USAGE
        dashboard = capsys.readouterr().err
    assert dashboard == headless
    assert dashboard.strip().splitlines() == [
        f"tavus-monitor: Port {port} is already in use by another program; "
        "stop it or choose another port with --port (--port 0 picks a free one)."
    ]


@pytest.mark.usefixtures("restore_logging")
def test_a_free_explicit_port_still_opens_the_dashboard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[int] = []

    def dashboard(settings: Settings) -> int:
        started.append(settings.port)
        return 0

    monkeypatch.setattr("tavus_monitor.tui.run_tui", dashboard)
    with busy_port() as port:
        pass  # now free again
    assert main(["--port", str(port)]) == 0
    assert started == [port]


# ------------------------------------------------------------ help at 80 columns


async def test_help_fits_80_columns_with_nothing_cut(settings: Settings) -> None:
    async with running(settings, (80, 24)) as pilot:
        app = pilot.app
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        body = app.screen.query_one("#help-body")
        assert body.region.x >= 0
        assert body.region.right <= 80
        assert body.max_scroll_x == 0
        await pilot.pause(0.1)
        seen: list[str] = []
        lines = screen_lines(app)
        while True:
            # The box's both edges are on screen, on every line of it.
            inside = [line for line in lines if "│" in line]
            assert inside
            assert all(line.rstrip().endswith("│") for line in inside)
            seen.extend(line.strip().strip("│") for line in inside)
            if body.scroll_y >= body.max_scroll_y:
                break
            # Less than a page, so no line is skipped (the overlap repeats some).
            step = body.scrollable_content_region.height - 2
            assert step > 0
            body.scroll_to(y=body.scroll_y + step, animate=False)
            for _ in range(50):  # until the screen shows the new lines
                await pilot.pause(0.01)
                if (now := screen_lines(app)) != lines:
                    break
            lines = now
        # The help body's scrollbar thumb (block glyphs) can sit at any line's end.
        shown = " ".join(re.sub("[▁▂▃▄▅▆▇█]+", " ", " ".join(seen)).split())
        for _heading, entries in help_sections():
            for _keys, description in entries:
                # Wrapped, a description continues on the next line in its column.
                words = description.split()
                pattern = r"\s.*?".join(re.escape(word) for word in words)
                assert re.search(pattern, shown), description


# ------------------------------------------------------------ refusals that say what to do


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("shutdown", "did you mean system.shutdown?"),
        ("video.redy", "did you mean video.ready?"),
        ("ready", "did you mean replica.ready or video.ready?"),
    ],
)
def test_an_unknown_sample_suggests_the_name_meant(
    capsys: pytest.CaptureFixture[str], name: str, suggestion: str
) -> None:
    assert main(["trigger", name]) == EXIT_USAGE
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert f"unknown sample(s) {name}; {suggestion}" in lines[0]


def test_a_sample_name_nothing_like_any_gets_no_guess(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trigger", "xyzzy"]) == EXIT_USAGE
    assert "did you mean" not in capsys.readouterr().err


def test_an_unknown_ngrok_region_is_refused_with_the_valid_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--headless", "--ngrok-region", "xx"]) == EXIT_USAGE
    assert capsys.readouterr().err.strip().splitlines() == [
        "tavus-monitor: --ngrok-region 'xx' is not an ngrok region; "
        "use one of us, eu, ap, au, sa, jp, in."
    ]


# ------------------------------------------------------------ the Jobs pane follows


async def test_the_jobs_pane_follows_the_newest_job_until_the_user_moves(
    settings: Settings,
) -> None:
    async with running_dashboard(settings) as dash:
        jobs = dash.jobs
        pane = jobs.parent
        assert isinstance(pane, Widget)
        jobs.focus()
        await dash.post(encode(sample("video.ready", video_id="v1")))
        await dash.post(encode(sample("video.ready", video_id="v2")))
        # Following: the cursor stays on the newest job, on top.
        assert jobs.following
        assert jobs.cursor_row == 0
        assert jobs.highlighted_job is not None
        assert jobs.highlighted_job.subject_id == "v2"
        assert not pane.border_subtitle
        await dash.press("down")  # moved away: following pauses, the cursor stays on its job
        assert not jobs.following
        assert str(pane.border_subtitle) == "paused · f follows"
        await dash.post(encode(sample("video.ready", video_id="v3")))
        await dash.post(encode(sample("replica.ready", replica_id="r9")))
        assert jobs.highlighted_job is not None
        assert jobs.highlighted_job.subject_id == "v1"
        assert str(pane.border_subtitle) == "paused · 2 new · f follows"
        assert "paused · 2 new" in dash.text()
        await dash.press("f")  # follows again: the newest, and it stays there
        assert jobs.following
        assert jobs.cursor_row == 0
        assert not pane.border_subtitle
        await dash.post(encode(sample("video.ready", video_id="v4")))
        assert jobs.highlighted_job is not None
        assert jobs.highlighted_job.subject_id == "v4"
        await dash.press("down", "up")  # back on the top row by hand follows too
        assert jobs.following
        assert not pane.border_subtitle


# ------------------------------------------------------------ wording


def test_counts_agree_with_their_nouns() -> None:
    assert counted(1, "key") == "1 key"
    assert counted(3, "key") == "3 keys"
    assert counted(1_204, "event") == "1,204 events"
    assert counted(1, "match", "matches") == "1 match"
    assert counted(0, "match", "matches") == "0 matches"
    assert _preview({"a": 1}).plain == "{…} 1 key"
    assert _preview([1]).plain == "[…] 1 item"
    assert _preview([1, 2]).plain == "[…] 2 items"


async def test_the_footer_says_collapse_once_the_prompt_is_expanded(settings: Settings) -> None:
    async with running_dashboard(settings) as dash:
        view = dash.transcript
        view.focus()
        await settle(dash.pilot)

        def footer() -> str:
            return dash.text().splitlines()[-1]

        assert not view.system_expanded
        assert "Expand prompt" in footer()
        await dash.press("e")
        assert view.system_expanded
        assert "Collapse prompt" in footer()
        assert "Expand prompt" not in footer()
        await dash.press("e")
        assert not view.system_expanded
        assert "Expand prompt" in footer()
