"""Meaning at every width: what the system and jobs panes say in a narrow terminal.

A day of traffic (``test_tui_snapshots.day_history``) is stored before the start, and
the dashboard runs at 80×24 and 120×35: the system pane must lead each row with the
kind and the reason in words no two reasons share, and the jobs pane must show each
job's status; each list's detail strip shows the selected row whole.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_TOKEN, wait_ready
from test_tui import screen_lines, settle, widget_lines
from test_tui_snapshots import DAY_REASONS, day_history, store_history

from tavus_monitor import callbacks as cb
from tavus_monitor import event_types
from tavus_monitor.events import Event, EventRow, Family, Severity, classify
from tavus_monitor.jobs import job_from_event
from tavus_monitor.settings import Settings
from tavus_monitor.tui.app import MonitorApp
from tavus_monitor.tui.formatters import row_detail, system_line
from tavus_monitor.tui.widgets.jobs_pane import JobsPane, JobsTable
from tavus_monitor.tui.widgets.row_list import RowList

DOCUMENTED = [reason for reason in DAY_REASONS if not reason.startswith("replica_restarted")]


def shutdown_row(reason: str | None, conversation_id: str = "c0a1b2c3d4e5") -> EventRow:
    """A system.shutdown row as the store holds it (summary and severity classified)."""
    entry = event_types.REGISTRY[cb.SHUTDOWN]
    properties = {} if reason is None else {"shutdown_reason": reason}
    body = {"conversation_id": conversation_id, "properties": properties}
    return EventRow(
        id=7,
        received_at=1_752_224_400.0,
        family=Family.CONVERSATION,
        event_type=cb.SHUTDOWN,
        conversation_id=conversation_id,
        subject_id=conversation_id,
        summary=event_types.one_line(entry.summary(cb.SHUTDOWN, body, properties)),
        duplicate_of=None,
        error=None,
        size=100,
        severity=entry.rate(cb.SHUTDOWN, body, properties),
    )


# ------------------------------------------------------------- without a screen


def test_every_documented_reason_has_short_words_no_other_reason_starts_with() -> None:
    shorts = []
    for reason in DOCUMENTED:
        parsed = cb.shutdown_reason({"shutdown_reason": reason})
        assert parsed is not None
        assert parsed.short
        assert parsed.short != parsed.raw
        shorts.append(parsed.short)
    # With and without " reached" the same reason; otherwise told apart in 6 characters.
    distinct = set(shorts)
    assert len({short[:6] for short in distinct}) == len(distinct)
    assert "left · timeout" in distinct
    assert "never joined" in distinct
    assert "internal error at llm_inference" in distinct
    unknown = cb.shutdown_reason({"shutdown_reason": "replica_restarted_mid_call"})
    assert unknown is not None
    assert unknown.short == "replica_restarted_mid_call"  # the raw reason, verbatim


@pytest.mark.parametrize(
    "reason",
    [*DAY_REASONS, "internal error occurred at step tts (retry (2))", "odd (value)", None],
)
def test_the_reason_is_read_back_from_a_stored_summary(reason: str | None) -> None:
    row = shutdown_row(reason)
    expected = cb.shutdown_reason({} if reason is None else {"shutdown_reason": reason})
    assert event_types.shutdown_of_summary(row.summary) == expected


def test_the_system_line_leads_with_the_kind_and_the_short_reason_at_any_width() -> None:
    for width in (28, 38, 46, 62, 86):
        left = system_line(shutdown_row("participant_left_timeout reached"), width).plain
        absent = system_line(shutdown_row("participant_absent_timeout reached"), width).plain
        assert left.startswith("ended  left · timeout")
        assert absent.startswith("ended  never joined")
    wide = system_line(shutdown_row("participant_left_timeout reached"), 86).plain
    assert "participant left (timeout) (participant_left_timeout reached)" in wide
    hostile = system_line(shutdown_row("\x1b[31mred\u202e"), 86).plain
    assert hostile.startswith("ended  ␛[31mred<U+202E>")
    assert "\x1b" not in hostile
    assert "\u202e" not in hostile


def test_the_detail_is_the_whole_row() -> None:
    row = shutdown_row("exception_encountered_during_conversation_startup")
    detail = row_detail(row).plain
    assert row.summary in detail
    assert "c0a1b2c3d4e5" in detail
    assert "system.shutdown" in detail
    assert row.severity is Severity.ERROR


def test_a_video_error_prefers_error_details_to_the_generic_status_details() -> None:
    failed = [body for _, body in day_history() if b"video_id" in body and b'"error"' in body]
    assert len(failed) == 1
    classified = classify(failed[0])
    job = job_from_event(Event.classified(classified, event_id=1, received_at=0.0, body=failed[0]))
    assert job is not None
    assert job.message == "Audio file could not be decoded: unsupported codec (opus in .mov)"
    assert classified.summary.endswith("failed: " + job.message)
    # Without error_details the generic sentence is all there is.
    generic = cb.video_error({"status": "error", "status_details": "An error occurred."})
    assert generic == "An error occurred."
    assert cb.video_error({"error_details": {"code": 7}}) == '{"code": 7}'


# ------------------------------------------------------------------ on screen


@contextlib.asynccontextmanager
async def day_dashboard(tmp_path: Path, size: tuple[int, int]) -> AsyncIterator[Any]:
    settings = Settings(
        port=0, port_explicit=True, token=TEST_TOKEN, data_dir=tmp_path / "data", no_tunnel=True
    )
    store_history(settings, day_history())
    app = MonitorApp(settings)
    app.animation_level = "none"
    async with app.run_test(size=size, notifications=False) as pilot:
        await wait_ready(app)
        await settle(pilot)
        try:
            yield app, pilot
        finally:
            await app.monitor.stop()


def system_words(system: RowList) -> list[str]:
    """Every row of the system pane as it draws it at its width (cut with "…")."""
    width = system.scrollable_content_region.width
    lines = []
    for row in system.rows:
        text = system_line(row, width)
        text.truncate(width, overflow="ellipsis")
        lines.append(text.plain)
    return lines


@pytest.mark.parametrize(
    ("size", "pane_width"), [((80, 24), 30), ((120, 35), 48)], ids=["80x24", "120x35"]
)
async def test_the_system_pane_says_how_each_call_ended(
    tmp_path: Path, size: tuple[int, int], pane_width: int
) -> None:
    async with day_dashboard(tmp_path, size) as (app, pilot):
        system = app.query_one("#system", RowList)
        assert system.scrollable_content_region.width <= pane_width
        lines = system_words(system)
        ended = [line for line in lines if line.startswith("ended ")]
        assert len(ended) == len(DAY_REASONS) + 2  # one delivered twice, the last call
        for words in (
            "ended  left · timeout",
            "ended  never joined",
            "ended  max duration",
            "ended  ended via API",
            "ended  startup error",
            "ended  internal error at llm",
            "ended  join failed",
            "ended  room deleted",
            "ended  replica_restarted_mi",
        ):
            assert any(line.startswith(words) for line in ended), words
        # Two different reasons never read the same, however narrow the pane: as many
        # different beginnings as different reasons (the twice-delivered one is marked ↻).
        shorts = {
            reason.short
            for r in DAY_REASONS
            if (reason := cb.shutdown_reason({"shutdown_reason": r}))
        }
        assert len({line[:13] for line in ended}) == len(shorts)
        joined = [line for line in lines if line.startswith("joined ")]
        assert joined
        assert all("r79e1c033f" in line for line in joined)
        # What the pane draws: the newest rows, then the selected row whole.
        drawn = widget_lines(system)
        assert drawn[0].startswith("ended  left · timeout")
        strip = " ".join(line.strip() for line in drawn[system.list_height :])
        assert strip.startswith("shutdown: participant left (timeout)")
        if size[0] >= 120:
            assert "cbe5a0b7d31f  16:54:56" in drawn[0]
        # Moving the cursor moves the detail strip to that row.
        system.focus()
        await pilot.press("down", "down", "down")
        await settle(pilot)
        strip = " ".join(line.strip() for line in widget_lines(system)[system.list_height :])
        assert strip.startswith("shutdown: replica_restarted_mid_call")


async def test_the_jobs_pane_shows_each_status_at_80_columns(tmp_path: Path) -> None:
    async with day_dashboard(tmp_path, (80, 24)) as (app, pilot):
        pane = app.query_one("#jobs", JobsPane)
        table = app.query_one(JobsTable)
        assert table.row_count == 5
        drawn = [line.rstrip() for line in widget_lines(table)]
        assert drawn[0].startswith("status progress error")
        statuses = [line.split()[0] for line in drawn[1:] if line.strip()]
        assert len(statuses) >= 3  # as many as the pane has lines for
        assert statuses == ["ready", "error", "ready", "error", "ready"][: len(statuses)]
        # The status is on screen, first in its row, at 80 columns.
        screen = "\n".join(screen_lines(app))
        assert "│status progress error" in screen
        # The failed video's row and its detail: error_details, not the generic sentence.
        table.focus()
        failed = [
            key for key, job in table.jobs.items() if job.kind == "video" and job.status == "error"
        ]
        table.move_cursor(row=table.get_row_index(failed[0]))
        await settle(pilot)
        shown = " ".join(pane.detail_text.plain.split())
        assert shown.startswith("error 0/100 · Audio file could not be decoded")
