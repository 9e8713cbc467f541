"""Toasts: each notable callback at once while they are rare, one summary per burst."""

from __future__ import annotations

from tavus_monitor.tui.announcements import Announcements, Notable, Toast

SHUTDOWN = Notable("shutdown", "c1: shutdown: participant left", "information")
TRANSCRIPT = Notable("transcription_ready", "c1: transcript: 6 turns", "information")
FAILED = Notable("error", "video v1 failed", "error")


def test_a_lone_callback_is_shown_at_once_with_its_own_words() -> None:
    toasts = Announcements()
    assert toasts.take([SHUTDOWN], now=10.0) == [Toast(SHUTDOWN.text, "information", 1)]
    assert toasts.tick(now=20.0) == []
    # Another, a while later, is shown at once too.
    assert toasts.take([TRANSCRIPT], now=30.0) == [Toast(TRANSCRIPT.text, "information", 1)]


def test_what_follows_closely_waits_for_the_pause_and_is_told_in_its_own_words() -> None:
    toasts = Announcements(quiet=1.0)
    assert toasts.take([SHUTDOWN], now=10.0) != []
    assert toasts.take([TRANSCRIPT], now=10.2) == []  # too soon: it waits
    assert toasts.tick(now=10.9) == []
    assert toasts.tick(now=11.2) == [Toast(TRANSCRIPT.text, "information", 1)]


def test_a_burst_is_one_summary_counting_by_type_with_the_worst_severity() -> None:
    toasts = Announcements(quiet=1.0, longest=5.0)
    assert toasts.take([SHUTDOWN, TRANSCRIPT, SHUTDOWN], now=10.0) == []
    assert toasts.take([FAILED], now=10.5) == []
    assert toasts.pending == 4
    assert toasts.tick(now=11.0) == []  # still within a second of the last one
    [summary] = toasts.tick(now=11.6)
    assert summary == Toast(
        "4 callbacks: 2 shutdown, 1 transcription_ready, 1 error (see Events)", "error", 4
    )
    assert toasts.pending == 0
    assert toasts.tick(now=20.0) == []


def test_a_long_burst_is_summed_up_every_few_seconds_while_it_lasts() -> None:
    toasts = Announcements(quiet=1.0, longest=5.0)
    shown: list[Toast] = []
    for tenth in range(120):  # 12 s of a shutdown every 100 ms
        now = 100.0 + tenth / 10
        shown += toasts.take([SHUTDOWN], now)
        shown += toasts.tick(now)
    shown += toasts.tick(200.0)
    assert sum(toast.callbacks for toast in shown) == 120  # every callback told, once
    assert 3 <= len(shown) <= 4  # the first at once, then one per 5 s and the rest


def test_two_close_together_are_each_told_in_their_own_words() -> None:
    toasts = Announcements(quiet=1.0)
    assert toasts.take([SHUTDOWN, TRANSCRIPT], now=10.0) == []  # a call's end, in one batch
    assert toasts.tick(now=11.1) == [
        Toast(SHUTDOWN.text, "information", 1),
        Toast(TRANSCRIPT.text, "information", 1),
    ]
