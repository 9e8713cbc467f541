"""How long the dashboard waits before showing the next batch of callbacks.

The screen shares the event loop with the server that answers Tavus, and a
frame of the dashboard costs 7-12 ms of that loop at 120×35 whatever the batch
holds (Textual renders every changed line of the panes). So the panes take the
bus's messages a batch at a time, and how often depends on the rate:

* at a developer's pace, every :data:`UPDATE_INTERVAL`: a row waits for the
  next update and then for its frame. At 100 callbacks/s, POST → row on screen
  was p99 52-58 ms with updates every 1/30 s and 44-48 ms every 1/50 s, for
  1.4 ms more CPU per callback;
* during a burst (over :data:`BURST_RATE`), every :data:`BURST_INTERVAL`:
  nobody reads rows scrolling past at hundreds a second, and ten frames a
  second leave the loop to the answers (at 2,500/s, POST → 200 p99 went from
  123 ms to 18 ms with the other changes of issue 10).

The rate is smoothed over a few batches, so one large batch (after a slow frame,
say) does not slow the next update five-fold. Figures from ``python
bench/tui.py --only latency --only burst``.
"""

from __future__ import annotations

UPDATE_INTERVAL = 1 / 50
"""Seconds between updates while callbacks come at a developer's pace."""
BURST_INTERVAL = 1 / 10
"""Seconds between updates during a burst."""
BURST_RATE = 400.0
"""Callbacks per second (smoothed) above which updates slow to BURST_INTERVAL."""
SMOOTHING = 0.25
"""Weight of the newest batch in the smoothed rate."""


class Pacing:
    """The wait before the next update, from the messages each update took."""

    def __init__(self) -> None:
        self.rate = 0.0
        """Messages per second, smoothed."""
        self._last: float | None = None

    def after(self, messages: int, now: float) -> float:
        """An update took ``messages`` at ``now``: seconds to wait before the next."""
        if self._last is not None and now > self._last:
            instant = messages / (now - self._last)
            self.rate += SMOOTHING * (instant - self.rate)
        self._last = now
        return BURST_INTERVAL if self.rate > BURST_RATE else UPDATE_INTERVAL

    def idle(self) -> None:
        """The bus went quiet: the next message starts afresh (a burst is over)."""
        self._last = None
        self.rate = 0.0
