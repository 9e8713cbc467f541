"""What needs the developer's attention: counted in the dashboard's header, listed by ``!``.

A burst of callbacks gets one toast; what stays wrong after it must not scroll away with
the panes. A :class:`Concern` is one such thing:

- a replica training or video generation whose latest callback says it failed;
- a call that ended in error (the replica could not join, an internal error);
- a transcript overdue: judged exactly as the Conversations list judges it
  (:func:`~tavus_monitor.conversation.shown_lifecycle`), so a call nobody joined, which
  gets none, is no concern;
- the tunnel down: the callback URL is local only and Tavus cannot reach it;
- requests refused since the monitor started (a wrong token in the callback URL is the
  usual reason nothing arrives);
- deliveries the developer's handler did not accept (forwarding), when it forwards;
- conversations created through the monitor with a public URL it no longer has, still
  active: their callbacks go to the old URL (:mod:`~tavus_monitor.stranded`), so they stay
  listed until their shutdown is here (recovered, ``r`` on the Conversations screen).

They are read from the store with the queries the Conversations list and the Jobs pane
already run (the most recent :data:`RECENT_CONVERSATIONS` conversations, every job),
not kept up event by event: one judgement, in one place, and nothing to drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from . import callbacks as cb
from .conversation import (
    ROWS_PER_CONVERSATION,
    WHOLE_TYPES,
    StageState,
    build_conversation,
    shown_lifecycle,
)
from .event_types import TRANSCRIPT
from .events import Severity
from .jobs import job_from_event
from .store import StoreReader
from .stranded import stranded

RECENT_CONVERSATIONS = 200
"""Conversations looked at: the most recently active (what the Conversations list's first
page shows). A call older than these is history, not something to act on now."""


class ConcernKind(StrEnum):
    """What kind of thing needs attention; the value is the word the list shows."""

    TUNNEL = "tunnel down"
    REJECTED = "rejected"
    FAILED_JOB = "job failed"
    ERROR_END = "call failed"
    OVERDUE = "no transcript"
    HANDLER = "handler failed"
    STRANDED = "old URL"


@dataclass(frozen=True, slots=True)
class Concern:
    """One thing to look at, and where Enter takes the user to see it."""

    kind: ConcernKind
    text: str
    """One line saying what is wrong (ids, reasons, the error)."""
    at: float | None = None
    """When it happened (epoch seconds), if it is one moment."""
    event_id: int | None = None
    """The event that shows it (opens in the inspector)."""
    conversation_id: str | None = None


def find_concerns(
    store: StoreReader,
    *,
    now: float,
    local_only: str | None = None,
    rejected: int = 0,
    handler_failures: int = 0,
    url_changes: tuple[tuple[str, str | None], ...] = (),
) -> list[Concern]:
    """Everything that needs attention now: the tunnel and refusals first, then the rest,
    newest first.

    ``local_only``: why Tavus cannot reach the callback URL (None while it can);
    ``rejected``: requests refused since the monitor started; ``handler_failures``:
    deliveries the handler did not accept (forwarding); ``url_changes``: each change of
    the public URL this run, ``(old, new)``, whose stranded conversations are listed.
    """
    found: list[Concern] = []
    if local_only:
        found.append(
            Concern(ConcernKind.TUNNEL, f"Tavus cannot reach the callback URL: {local_only}")
        )
    if rejected:
        noun = "request" if rejected == 1 else "requests"
        found.append(
            Concern(
                ConcernKind.REJECTED,
                f"{rejected:,} {noun} refused since the monitor started (wrong token or path?)",
            )
        )
    if handler_failures:
        noun = "delivery" if handler_failures == 1 else "deliveries"
        found.append(
            Concern(
                ConcernKind.HANDLER,
                f"{handler_failures:,} {noun} not accepted by your handler (forwarding)",
            )
        )
    found.extend(_stranded_concerns(store, url_changes))
    dated = _job_concerns(store) + _conversation_concerns(store, now)
    dated.sort(key=lambda concern: concern.at or 0.0, reverse=True)
    return found + dated


def _stranded_concerns(
    store: StoreReader, url_changes: tuple[tuple[str, str | None], ...]
) -> list[Concern]:
    """Created with a URL the monitor had before a change, still active, no shutdown here."""
    concerns: dict[str, Concern] = {}
    for old_url, new_url in url_changes:
        for created in stranded(store, old_url, new_url):
            name = f" “{created.name}”" if created.name else ""
            concerns.setdefault(
                created.resource_id,
                Concern(
                    ConcernKind.STRANDED,
                    f"{created.resource_id}{name} was created with the old URL "
                    f"({created.callback_url}): its callbacks will not arrive here; recover it "
                    "after it ends (r on Conversations)",
                    at=created.created_at,
                    conversation_id=created.resource_id,
                ),
            )
    return list(concerns.values())


def _job_concerns(store: StoreReader) -> list[Concern]:
    concerns = []
    for event in store.jobs():
        job = job_from_event(event)
        if job is None or job.severity is not Severity.ERROR:
            continue
        name = f" “{job.name}”" if job.name else ""
        why = f": {job.message}" if job.message else ""
        concerns.append(
            Concern(
                ConcernKind.FAILED_JOB,
                f"{job.kind} {job.subject_id}{name} {job.status}{why}",
                at=job.received_at,
                event_id=job.event_id,
            )
        )
    return concerns


def _conversation_concerns(store: StoreReader, now: float) -> list[Concern]:
    concerns = []
    for item in store.conversations_with_events(
        RECENT_CONVERSATIONS, events_each=ROWS_PER_CONVERSATION, bodies_of=WHOLE_TYPES
    ):
        cid = item.conversation.conversation_id
        view = build_conversation(cid, item.events)
        reason = view.shutdown_reason
        if (
            view.shutdown is not None
            and reason is not None
            and reason.kind is cb.ShutdownKind.ERROR
        ):
            concerns.append(
                Concern(
                    ConcernKind.ERROR_END,
                    f"{cid} ended in error: {reason.words}",
                    at=view.shutdown.received_at,
                    event_id=view.shutdown.id,
                    conversation_id=cid,
                )
            )
        for stage in shown_lifecycle(view, now):
            if stage.name == TRANSCRIPT.name and stage.state is StageState.OVERDUE:
                shutdown = view.shutdown
                concerns.append(
                    Concern(
                        ConcernKind.OVERDUE,
                        f"{cid}: {stage.note}",
                        at=shutdown.received_at if shutdown is not None else None,
                        event_id=shutdown.id if shutdown is not None else None,
                        conversation_id=cid,
                    )
                )
    return concerns
