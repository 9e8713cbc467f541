"""``tavus-monitor replay``: stored deliveries sent again to a handler, optionally in disorder.

A handler is best tested with what Tavus really sent: the stored body bytes
and end-to-end headers (:func:`tavus_monitor.sending.end_to_end_headers`,
marked as a replay), posted by :func:`tavus_monitor.sending.send`. A whole
call is sent in the order Tavus delivers one, which is the order of the
lifecycle stages in the event-type registry (:data:`~tavus_monitor.event_types.STAGES`),
so a stage added there is replayed in its place without touching this module.

Tavus retries, so handlers meet redeliveries, gaps and late or crossed
callbacks. ``--chaos`` makes them on purpose, and :func:`plan` decides the
disorder from a seeded :class:`random.Random` alone (it is pure), so a seed
reproduces a run exactly: the same sends, in the same order, with the same
delays.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import httpx

from .attempts import Attempt
from .event_types import STAGES, lookup
from .events import Event, EventRow
from .sending import end_to_end_headers, send

T = TypeVar("T")

CHAOS_WORDS = ("reorder", "duplicate", "drop", "delay")
CHAOS_SHARE = 4
"""``duplicate`` and ``drop`` each pick one event in this many (at least one)."""

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m)?")
_IN_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}


class ReplayError(Exception):
    """A value the user gave cannot be used; the text is one sentence."""


@dataclass(frozen=True, slots=True)
class Chaos:
    """The disorder ``--chaos`` asks for."""

    reorder: bool = False
    """Send in a shuffled order."""
    duplicate: bool = False
    """Send some events twice, the copy later (a redelivery)."""
    drop: bool = False
    """Leave some events out (a delivery that never came)."""
    delay: float = 0.0
    """Wait up to this many seconds (at random) before each send."""

    @property
    def any(self) -> bool:
        return self.reorder or self.duplicate or self.drop or self.delay > 0


def parse_chaos(text: str) -> Chaos:
    """``reorder,duplicate,drop,delay=2s`` as a :class:`Chaos`."""
    chosen: dict[str, bool | float] = {}
    for word in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = word.partition("=")
        name = name.strip().lower()
        if name not in CHAOS_WORDS:
            raise ReplayError(
                f"--chaos has no {name!r}; use any of {', '.join(CHAOS_WORDS)} "
                "(e.g. reorder,duplicate,drop,delay=2s)."
            )
        if name == "delay":
            match = _DURATION.fullmatch(value.strip())
            if match is None:
                raise ReplayError(
                    f"--chaos delay={value} is not a duration; give e.g. delay=2s or delay=500ms."
                )
            chosen[name] = float(match.group(1)) * _IN_SECONDS[match.group(2)]
        elif value:
            raise ReplayError(f"--chaos {name} takes no value; write just {name}.")
        else:
            chosen[name] = True
    return Chaos(
        reorder=bool(chosen.get("reorder")),
        duplicate=bool(chosen.get("duplicate")),
        drop=bool(chosen.get("drop")),
        delay=float(chosen.get("delay", 0.0)),
    )


@dataclass(frozen=True, slots=True)
class Send(Generic[T]):
    """One step of a replay: the event, how long to wait before it, what chaos did to it."""

    event: T
    delay: float = 0.0
    """Seconds to wait before sending."""
    notes: tuple[str, ...] = field(default=())
    """What chaos did: ``dropped``, ``duplicate``, ``reordered``, ``delayed 1.2s``."""

    @property
    def dropped(self) -> bool:
        return "dropped" in self.notes


def plan(events: Sequence[T], chaos: Chaos, rng: random.Random) -> list[Send[T]]:
    """The sends for ``events`` (in the order given) under ``chaos``, decided by ``rng`` alone.

    In this order: drop (a dropped event keeps its place, shown but not sent),
    duplicate (the copy at a random later place), reorder (a shuffle of all,
    copies included), delay (a random wait of up to ``chaos.delay`` before each
    send). The same events, chaos and seed give the same list.
    """
    steps: list[tuple[T, list[str]]] = [(event, []) for event in events]
    count = len(steps)
    if chaos.drop and count:
        for index in rng.sample(range(count), max(1, count // CHAOS_SHARE)):
            steps[index][1].append("dropped")
    if chaos.duplicate and count:
        kept = [index for index, (_, notes) in enumerate(steps) if not notes]
        chosen = rng.sample(kept, min(len(kept), max(1, count // CHAOS_SHARE)))
        for index in sorted(chosen, reverse=True):  # later insertions leave earlier places be
            place = rng.randint(index + 1, len(steps))
            steps.insert(place, (steps[index][0], ["duplicate"]))
    if chaos.reorder:
        before = list(range(len(steps)))
        rng.shuffle(before)
        steps = [
            (steps[old][0], [*steps[old][1], "reordered"] if old != new else steps[old][1])
            for new, old in enumerate(before)
        ]
    sends = []
    for event, notes in steps:
        delay = 0.0
        if chaos.delay > 0 and "dropped" not in notes:
            delay = round(rng.uniform(0, chaos.delay), 3)
            notes = [*notes, f"delayed {delay:g}s"]
        sends.append(Send(event, delay, tuple(notes)))
    return sends


def _stage_rank(event: EventRow) -> int:
    """Where in a call Tavus sends ``event``: its lifecycle stage's place (times two), or
    between the join and the shutdown for an event of no stage (objectives, guardrails
    and other in-call events)."""
    stage = lookup(event.family, event.event_type).stage
    if stage is None:
        return 1
    return 2 * STAGES.index(stage)


def call_order(events: Iterable[Event]) -> list[Event]:
    """A call's events in the order Tavus delivers them; by id within a stage."""
    return sorted(events, key=lambda event: (_stage_rank(event), event.id))


@dataclass(frozen=True, slots=True)
class Sent:
    """A step done: the send and, unless it was dropped, the handler's answer."""

    send: Send[Event]
    attempt: Attempt | None


def describe(sent: Sent) -> str:
    """One line: ``#42 system.shutdown [duplicate] → 200 12ms`` (and the error sentence)."""
    event = sent.send.event
    line = f"#{event.id} {event.event_type}"
    if sent.send.notes:
        line += f" [{', '.join(sent.send.notes)}]"
    if sent.attempt is None:
        return line + " (not sent)"
    line += f" {sent.attempt.describe()}"
    if sent.attempt.error:
        line += f": {sent.attempt.error}"
    return line


async def run(
    sends: Sequence[Send[Event]],
    url: str,
    *,
    timeout: float,  # noqa: ASYNC109 (each send's own bound, passed to httpx)
    report: Callable[[Sent], None],
) -> list[Sent]:
    """Send each step in turn (waiting its delay first), reporting each as it is done."""
    done = []
    async with httpx.AsyncClient() as client:
        for step in sends:
            if step.dropped:
                result = Sent(step, None)
            else:
                if step.delay:
                    await asyncio.sleep(step.delay)
                event = step.event
                headers = end_to_end_headers(event.headers, event_id=event.id, replay=True)
                attempt = await send(client, url, event.body, headers, timeout=timeout)
                result = Sent(step, attempt)
            report(result)
            done.append(result)
    return done
