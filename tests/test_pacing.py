"""The dashboard updates often at a developer's pace and seldom during a burst."""

from __future__ import annotations

from tavus_monitor.tui.pacing import BURST_INTERVAL, UPDATE_INTERVAL, Pacing


def test_a_developers_pace_gets_frequent_updates() -> None:
    pacing = Pacing()
    now = 0.0
    for _ in range(100):  # 100 callbacks/s: two per update
        now += UPDATE_INTERVAL
        assert pacing.after(2, now) == UPDATE_INTERVAL


def test_a_burst_slows_the_updates_and_one_large_batch_does_not() -> None:
    pacing = Pacing()
    now = 0.0
    pacing.after(2, now)
    now += UPDATE_INTERVAL
    # One batch of 12 after a slow frame (600/s for a moment): still a developer's pace.
    assert pacing.after(12, now) == UPDATE_INTERVAL
    waits = []
    for _ in range(10):  # 2,500 callbacks/s
        now += 0.1
        waits.append(pacing.after(250, now))
    assert waits[-1] == BURST_INTERVAL
    assert waits.count(BURST_INTERVAL) >= 8  # within a couple of batches


def test_a_pause_ends_the_burst() -> None:
    pacing = Pacing()
    now = 0.0
    for _ in range(10):
        now += 0.1
        pacing.after(250, now)
    pacing.idle()
    assert pacing.after(1, now + 5) == UPDATE_INTERVAL
