"""Full garbage collections wait until the callbacks pause (tavus_monitor.tui.quiet_gc)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from tavus_monitor.tui.quiet_gc import QuietCollector


class Node:
    """An object in a reference cycle: only the cycle collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def collector() -> Iterator[QuietCollector]:
    quiet = QuietCollector(quiet_after=0.0)
    yield quiet
    quiet.stopped()


def test_what_is_held_at_start_is_frozen_and_nothing_is_kept_after_stop(
    collector: QuietCollector,
) -> None:
    collector.started()
    assert gc.get_freeze_count() > 0  # the collector's passes no longer walk it
    collector.stopped()
    assert gc.get_freeze_count() == 0


def test_a_cycle_left_behind_by_a_burst_is_collected_once_the_callbacks_pause(
    collector: QuietCollector,
) -> None:
    collector.started()
    cycle = Node()
    freed = weakref.ref(cycle)
    collector.started()  # frozen while alive (say, a toast still on screen)
    del cycle
    gc.collect()
    assert freed() is not None  # frozen: the collector does not see it
    assert not collector.tick()  # no callbacks since: nothing is due
    collector.busy()
    assert collector.tick()  # the callbacks paused: a full collection ran
    assert freed() is None


def test_no_full_collection_while_callbacks_keep_arriving() -> None:
    quiet = QuietCollector(quiet_after=60.0)
    try:
        quiet.started()
        quiet.busy()
        assert not quiet.tick()
    finally:
        quiet.stopped()


def test_an_endless_stream_still_gets_a_full_collection_now_and_then() -> None:
    quiet = QuietCollector(quiet_after=60.0, longest=0.0)
    try:
        cycle = Node()
        freed = weakref.ref(cycle)
        quiet.started()  # frozen while alive
        del cycle
        quiet.busy()  # callbacks still coming, but the longest deferral has passed
        assert quiet.tick()
        assert freed() is None
    finally:
        quiet.stopped()
