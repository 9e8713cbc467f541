"""When the dashboard counts what needs attention again (see :mod:`tavus_monitor.attention`).

Counting reads the recent conversations and every job from the store, a few
milliseconds on a worker thread, but a thread still shares the GIL with the screen.
So it runs soon after something changed, waits while callbacks pour in (the burst's
toast has the news; the count follows when it eases), and runs at least every
:data:`AT_LEAST` seconds anyway: a transcript becomes overdue with time alone.
"""

from __future__ import annotations

import math

SOON = 2.0
"""Seconds between counts while things change."""
AT_LEAST = 30.0
"""Seconds between counts when nothing changed."""
BURST_RATE = 100.0
"""Callbacks per second (the pacing's smoothed rate) above which counting waits."""


class AttentionWatch:
    def __init__(self) -> None:
        self.dirty = True
        self._last = -math.inf

    def changed(self) -> None:
        """Something that can change a concern happened (events, refusals, the tunnel)."""
        self.dirty = True

    def due(self, now: float, rate: float) -> bool:
        """Whether to count now (monotonic ``now``); if so, it counts as done."""
        waited = now - self._last
        if waited >= AT_LEAST or (self.dirty and waited >= SOON and rate < BURST_RATE):
            self._last = now
            self.dirty = False
            return True
        return False
