"""Python's cycle collector, kept out of the way of acknowledgements.

The dashboard's process holds far more objects than headless mode (Textual's
widgets, styles and caches, thousands of rows per list), and the cycle
collector's full pass walks all of them. During a burst of 2,500 callbacks/s
those passes came every second or so and took up to 68 ms each, on the thread
that answers Tavus: they were the slowest answers of the burst (POST → 200 p99
55-99 ms against 16 ms with the collector off, ``python bench/tui.py --only
burst``).

So the dashboard moves what it holds once started into the permanent
generation (:func:`gc.freeze`), and while callbacks keep coming it freezes what
they left behind every second too: the collector's passes during a burst then
walk only the last second's objects. Freezing only at start still left passes
of up to 27 ms (p99 30 ms); freezing each second as well gives p99 17-23 ms,
against 6-7 ms for headless in the same run. Once the callbacks have stopped for
:data:`QUIET_AFTER` seconds (or after :data:`LONGEST_DEFERRAL` at the latest), a
full collection runs over everything, so nothing cyclic is kept forever just
because it was alive at a freeze, and what survives is frozen again.
"""

from __future__ import annotations

import gc
import time

QUIET_AFTER = 2.0
"""Seconds without a callback after which a full collection may run."""
LONGEST_DEFERRAL = 60.0
"""Seconds a full collection may wait for a pause at most: cyclic garbage frozen during
an endless stream of callbacks must be freed some time, even at the cost of one stall."""


class QuietCollector:
    """Freeze after start; collect everything again once the callbacks pause."""

    def __init__(self, quiet_after: float = QUIET_AFTER, longest: float = LONGEST_DEFERRAL) -> None:
        self.quiet_after = quiet_after
        self.longest = longest
        self._last_busy: float | None = None
        self._last_full = time.monotonic()

    def started(self) -> None:
        """The app is up: what it holds now lives as long as it does."""
        gc.collect()
        gc.freeze()

    def stopped(self) -> None:
        """The app is ending: give the collector everything back."""
        gc.unfreeze()

    def busy(self) -> None:
        """Callbacks arrived: a full collection is due once they pause."""
        self._last_busy = time.monotonic()

    def tick(self) -> bool:
        """Called every second or so; True if a full collection ran.

        While callbacks keep coming, what they left behind is frozen too (cheap: the
        collector's lists are spliced), so its passes during a burst only walk the last
        second's objects; the full collection runs once they pause, or after
        :data:`LONGEST_DEFERRAL` whatever happens.
        """
        if self._last_busy is None:
            return False
        now = time.monotonic()
        if now - self._last_busy < self.quiet_after and now - self._last_full < self.longest:
            gc.freeze()
            return False
        self._last_busy = None
        self._last_full = now
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        return True
