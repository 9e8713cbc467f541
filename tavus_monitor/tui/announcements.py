"""Which toasts the dashboard shows: each notable callback while they are rare, one per burst.

A developer waits for a few callbacks (a call ended, its transcript is ready, a
video failed) and a toast for each is what they want while they come one at a
time. In a burst (a replay, a load test, Tavus catching up after an outage) a
toast per callback, or per frame, stacks up over the panes and says nothing the
Events pane does not. So the first notable callback of a quiet spell is shown
at once, and whatever follows it closely is counted by type and shown as one
summary once the callbacks pause for :data:`BURST_QUIET` seconds (or every
:data:`BURST_LONGEST` seconds while a long burst goes on); a burst of two (a
call's shutdown and its transcript arrive together) is told one toast each.

Plain data in, toasts out, with the clock passed in: the app decides when to
call, and the rules are tested without a screen.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

BURST_QUIET = 1.0
"""Seconds without a notable callback that end a burst (and show its summary)."""
BURST_LONGEST = 5.0
"""Seconds a burst's summary waits at most while notable callbacks keep coming."""
TOLD_ONE_BY_ONE = 2
"""A burst this small (a call's shutdown and its transcript, sent together) is told one
toast each, in their own words: a count would say less than the two toasts."""
SEVERITIES = ("information", "warning", "error")
"""Textual's toast severities, mildest first (a summary takes the worst of its callbacks)."""


@dataclass(frozen=True, slots=True)
class Notable:
    """A callback worth a toast: its short type, the toast's text and severity."""

    kind: str
    text: str
    severity: str


@dataclass(frozen=True, slots=True)
class Toast:
    text: str
    severity: str
    callbacks: int
    """How many callbacks it tells of (a summary tells of several)."""


@dataclass
class _Burst:
    first_at: float
    last_at: float
    items: list[Notable] = field(default_factory=list)


class Announcements:
    """Turns notable callbacks, batch by batch, into the toasts worth showing."""

    def __init__(self, quiet: float = BURST_QUIET, longest: float = BURST_LONGEST) -> None:
        self.quiet = quiet
        self.longest = longest
        self._burst: _Burst | None = None
        self._last_shown: float | None = None

    def take(self, notable: list[Notable], now: float) -> list[Toast]:
        """A batch's notable callbacks: a toast now, or nothing until the burst pauses."""
        if not notable:
            return []
        calm = self._last_shown is None or now - self._last_shown >= self.quiet
        if self._burst is None and calm and len(notable) == 1:
            self._last_shown = now
            only = notable[0]
            return [Toast(only.text, only.severity, 1)]
        if self._burst is None:
            self._burst = _Burst(first_at=now, last_at=now)
        self._burst.items.extend(notable)
        self._burst.last_at = now
        return []

    def tick(self, now: float) -> list[Toast]:
        """The burst's summary once it paused (or ran for ``longest``); else nothing."""
        burst = self._burst
        if burst is None:
            return []
        if now - burst.last_at < self.quiet and now - burst.first_at < self.longest:
            return []
        self._burst = None
        self._last_shown = now
        if len(burst.items) <= TOLD_ONE_BY_ONE:
            return [Toast(item.text, item.severity, 1) for item in burst.items]
        return [summarise(burst.items)]

    @property
    def pending(self) -> int:
        """Notable callbacks counted for a summary not shown yet."""
        return len(self._burst.items) if self._burst is not None else 0


def summarise(items: list[Notable]) -> Toast:
    """One toast for ``items``: the callback's own text when it is one, else counts by type."""
    worst = max((item.severity for item in items), key=SEVERITIES.index)
    if len(items) == 1:
        return Toast(items[0].text, worst, 1)
    kinds = ", ".join(
        f"{count:,} {kind}" for kind, count in Counter(i.kind for i in items).most_common()
    )
    return Toast(f"{len(items):,} callbacks: {kinds} (see Events)", worst, len(items))
