"""Recovering callbacks that never arrived, from Tavus's own log of them.

Tavus sends each callback once, with no retries (tavus-callbacks.md): one that finds the
monitor stopped, the tunnel down or the URL changed is gone. ``GET
/v2/conversations/{id}?verbose=true`` returns the conversation's ``events``, documented as
"the same events" the callbacks carry, so ``tavus-monitor recover`` fetches it and stores
every event the store does not hold yet, marked as recovered.

What is stored, and why in that shape:

- **A delivery whose path is** ``api:GET /v2/conversations/<id>?verbose=true`` (see
  :func:`api_path`): the store keeps where each event came from in its ``path`` column, so
  :attr:`~tavus_monitor.events.Event.source` says ``api`` and no schema changed. Its headers
  and remote address are empty: nothing was delivered.
- **The callback's shape, not the API's** (:func:`callback_body`): the API's events are
  thinner (``{event_type, timestamp, properties}``; tavus-api.md §6), and a recovered event
  must be classified, summarised and shown exactly like the callback it stands for. So the
  envelope is rebuilt (``conversation_id``, ``message_type`` from the type's first word), a
  shutdown's ``reason`` becomes ``shutdown_reason``, and the join, shutdown and transcript,
  which carry ``replica_id`` as callbacks but not in the API's example, get the
  conversation's ``replica_id``. What Tavus gave is otherwise kept as it gave it: its
  whole-second ``timestamp`` (it is the only time known; nothing finer is invented), the
  transcript's turns, any key this module does not know. No ``webhook_url``: the event was
  never posted to one.
- **A summary that begins** ``recovered · `` (:data:`~tavus_monitor.events.RECOVERED_PREFIX`),
  so every pane, list and JSON line shows it without knowing about recovery.

Matching (:func:`match_key`): an event the store already holds, received or recovered, is
never stored again. Tavus gives no event id, and the two shapes differ (timestamps to the
microsecond vs whole seconds, ``shutdown_reason`` vs ``reason``, joins without properties),
so an event is matched on what both shapes agree on:

- the once-per-call stages (joined, shutdown, transcript, recording, perception; the
  registry's stages that count no repeats) match by stage alone: the ``pal_joined`` twin of
  a ``replica_joined`` is the same join, and a call has one shutdown and one transcript;
- repeatable types with an id match on it: a post-call action's ``tool_name`` (each runs
  once per call), a canvas interaction's ``interaction_id`` (Tavus's own idempotency key);
- anything else (a type no one registered yet) matches on its properties, the replica
  left out, and its time to within a second either way (the API rounds or cuts it).

Recordings and canvas interactions are not in the API's list of verbose events
(tavus-api.md §1.3), so they cannot be recovered this way: the command says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from . import callbacks as cb
from . import event_types
from .conversation import (
    ROWS_PER_CONVERSATION,
    WHOLE_TYPES,
    Stage,
    build_conversation,
    shown_lifecycle,
)
from .conversation import StageState as StageState
from .event_types import ENVELOPE_FAMILIES, REGISTRY
from .events import (
    API_PATH_PREFIX,
    RECOVERED_PREFIX,
    Classification,
    Delivery,
    Event,
    EventRow,
    classify,
    one_line,
)
from .private import private_dir
from .state import RunningState, read_state
from .store import Store, StoreError, StoreReader

RECOVER_PATH = "/control/recover"
"""The running monitor's control route that takes a verbose GET's answer (control.py)."""
HAND_OVER_TIMEOUT = 60.0
"""Seconds the running monitor has to store a conversation's recovered events."""

NOT_IN_THE_LOG = "recordings and canvas interactions are not in Tavus's event log"
"""What recovery cannot bring back (tavus-api.md §1.3): said rather than implied."""

_IDENTITY: Mapping[str, tuple[str, ...]] = {
    cb.POST_CALL_ACTION: ("tool_name", "tool_id"),
    cb.CANVAS_INTERACTION: ("interaction_id",),
}
"""Repeatable types and the property that tells one of them from another."""

_CARRY_REPLICA = frozenset(
    {*event_types.stage_types(event_types.JOINED), cb.SHUTDOWN, cb.TRANSCRIPTION_READY}
)
"""Types whose callbacks carry ``properties.replica_id`` (tavus-callbacks.md §1)."""

_REPLICA_KEYS = ("replica_id", "face_id")


def api_path(conversation_id: str) -> str:
    """The ``path`` a recovered event is stored with: the request it came from."""
    return f"{API_PATH_PREFIX}GET /v2/conversations/{conversation_id}?verbose=true"


# --------------------------------------------------------------------- the shape


def callback_body(
    conversation_id: str, item: Mapping[str, Any], conversation: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The callback an event of the verbose GET stands for; None when it is not one.

    ``conversation`` is the whole GET answer (its ``replica_id`` fills what the
    callback carries and the API's event leaves out). See the module notes.
    """
    event_type = item.get("event_type")
    if not isinstance(event_type, str) or not event_type.strip():
        return None
    event_type = event_type.strip()
    properties = dict(cb.as_dict(item.get("properties")))
    if event_type == cb.SHUTDOWN and "shutdown_reason" not in properties and "reason" in properties:
        properties = {"shutdown_reason": properties.pop("reason"), **properties}
    replica = cb.as_text(conversation.get("replica_id"))
    if (
        event_type in _CARRY_REPLICA
        and replica
        and not any(key in properties for key in _REPLICA_KEYS)
    ):
        properties = {"replica_id": replica, **properties}
    body: dict[str, Any] = {"properties": properties, "conversation_id": conversation_id}
    body["event_type"] = event_type
    kind = event_type.split(".", 1)[0]
    if kind in ("system", "application", "canvas", "conversation"):
        body["message_type"] = kind
    for key, value in item.items():  # whatever else Tavus gave (timestamp, …), as it gave it
        if key not in ("properties", "event_type", "conversation_id"):
            body[key] = value
    return body


# ------------------------------------------------------------------ the matching


@dataclass(frozen=True, slots=True)
class MatchKey:
    """What a callback and its verbose twin have in common (see the module notes)."""

    kind: str
    """A once-per-call stage's name, else the event type."""
    detail: str | None = None
    """The repeatable type's id (``tool_name=…``), or its properties as canonical JSON."""
    second: int | None = None
    """The whole second it happened, for types matched on their properties; else None."""

    def same_as(self, other: MatchKey) -> bool:
        if self.kind != other.kind or self.detail != other.detail:
            return False
        if self.second is None or other.second is None:
            return True
        return abs(self.second - other.second) <= 1


def match_key(
    event_type: str, properties: Mapping[str, Any], occurred_at: float | None
) -> MatchKey:
    """The key an event of ``event_type`` is matched on (one conversation's events)."""
    entry = REGISTRY.get(event_type)
    stage = entry.stage if entry is not None else None
    if stage is not None and stage.count_unit is None:
        return MatchKey(f"stage:{stage.name}")
    for name in _IDENTITY.get(event_type, ()):
        value = cb.as_text(properties.get(name))
        if value:
            return MatchKey(event_type, f"{name}={value}")
    kept = {key: value for key, value in properties.items() if key not in _REPLICA_KEYS}
    detail = json.dumps(kept, sort_keys=True, ensure_ascii=False, default=str)
    second = (
        math.floor(occurred_at) if occurred_at is not None and math.isfinite(occurred_at) else None
    )
    return MatchKey(event_type, detail, second)


def stored_key(event: Event) -> MatchKey | None:
    """The key of an event the store holds; None when it is no conversation event."""
    if event.family not in ENVELOPE_FAMILIES:
        return None
    payload = event.payload
    properties = cb.as_dict(payload.get("properties")) if isinstance(payload, dict) else {}
    return match_key(event.event_type, properties, event.occurred_at)


# ---------------------------------------------------------------------- the plan


@dataclass(frozen=True, slots=True)
class Missing:
    """An event the API lists that the store does not hold: ready to store."""

    event_type: str
    delivery: Delivery
    classification: Classification


@dataclass(frozen=True, slots=True)
class Plan:
    conversation_id: str
    missing: tuple[Missing, ...]
    already: int
    """Events the API lists that the store holds (received, or recovered before)."""
    unreadable: int = 0
    """Items of ``events`` that are no event (no ``event_type``)."""
    status: str | None = None
    """The conversation's status as Tavus gave it (``active``, ``ended``)."""


def plan(
    conversation_id: str,
    conversation: Mapping[str, Any],
    stored: Iterable[Event],
    *,
    now: float,
) -> Plan:
    """What to store of the verbose GET answer ``conversation``, given the ``stored`` events.

    Pure: the caller reads the store and writes what this returns. The missing events
    come in the order they happened, so their store ids follow the call.
    """
    known = [key for key in map(stored_key, stored) if key is not None]
    items = conversation.get("events")
    candidates: list[tuple[float, int, Missing, MatchKey]] = []
    unreadable = 0
    for index, item in enumerate(items if isinstance(items, list) else ()):
        body = callback_body(conversation_id, cb.as_dict(item), conversation)
        if body is None:
            unreadable += 1
            continue
        raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
        classified = classify(raw)
        key = match_key(classified.event_type, body["properties"], classified.occurred_at)
        classification = replace(
            classified, summary=one_line(RECOVERED_PREFIX + classified.summary)
        )
        delivery = Delivery(body=raw, received_at=now, path=api_path(conversation_id))
        when = classified.occurred_at if classified.occurred_at is not None else math.inf
        candidates.append(
            (when, index, Missing(classified.event_type, delivery, classification), key)
        )
    candidates.sort(key=lambda candidate: candidate[:2])
    missing: list[Missing] = []
    already = 0
    taken: list[MatchKey] = []
    for _, _, item, key in candidates:
        if any(key.same_as(other) for other in known):
            already += 1
        elif any(key.same_as(other) for other in taken):
            continue  # the twin of one recovered just now (pal_joined and replica_joined)
        else:
            taken.append(key)
            missing.append(item)
    status = cb.as_text(conversation.get("status"))
    return Plan(conversation_id, tuple(missing), already, unreadable, status)


# ------------------------------------------------------------------- the outcome


@dataclass(frozen=True, slots=True)
class Outcome:
    """What recovering one conversation did, for its line of output."""

    conversation_id: str
    recovered: tuple[str, ...] = ()
    """The types stored, in the order they happened."""
    already: int = 0
    unreadable: int = 0
    status: str | None = None
    error: str | None = None
    """Why nothing was fetched or stored (one sentence); None when it worked."""

    @property
    def line(self) -> str:
        """``c123: 2 recovered (system.shutdown, …), 1 already here``."""
        if self.error is not None:
            return f"{self.conversation_id}: failed: {self.error}"
        text = f"{self.conversation_id}: {len(self.recovered)} recovered"
        if self.recovered:
            text += f" ({', '.join(self.recovered)})"
        text += f", {self.already} already here"
        if self.unreadable:
            text += f", {self.unreadable} not understood"
        if self.status == "active":
            text += " (still active at Tavus: run recover again after it ends)"
        return text

    def as_json(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "recovered": list(self.recovered),
            "already": self.already,
            "unreadable": self.unreadable,
            "status": self.status,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Outcome:
        """The outcome a running monitor answered with (see :func:`handle_request`)."""
        recovered = data.get("recovered")
        return cls(
            conversation_id=str(data.get("conversation_id")),
            recovered=tuple(str(name) for name in recovered) if isinstance(recovered, list) else (),
            already=_count(data.get("already")),
            unreadable=_count(data.get("unreadable")),
            status=cb.as_text(data.get("status")),
            error=cb.as_text(data.get("error")),
        )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


_LOCKS: weakref.WeakKeyDictionary[Store, asyncio.Lock] = weakref.WeakKeyDictionary()
"""One recovery at a time per store: two at once would both find an event missing."""


async def recover_into(
    store: Store, conversation_id: str, conversation: Mapping[str, Any], *, now: float
) -> Outcome:
    """Store what ``conversation`` (a verbose GET answer) lists and ``store`` lacks.

    The one way recovered events are written: by ``recover`` into a store it opened, and
    by the running monitor for a ``recover`` that handed them over (:func:`handle_request`).
    """
    lock = _LOCKS.setdefault(store, asyncio.Lock())
    async with lock:
        stored = await asyncio.to_thread(store.conversation, conversation_id)
        planned = plan(conversation_id, conversation, stored, now=now)
        for item in planned.missing:
            await store.append(item.delivery, item.classification)
    return Outcome(
        conversation_id,
        tuple(item.event_type for item in planned.missing),
        planned.already,
        planned.unreadable,
        planned.status,
    )


async def handle_request(
    store: Store, body: Mapping[str, Any], *, now: float
) -> tuple[int, dict[str, Any]]:
    """The running monitor's side of a hand-over: (status, JSON answer) for ``body``.

    ``body`` is ``{"kind": "conversation", "resource_id": <id>, "conversation": <the
    verbose GET answer>}``; the answer is :meth:`Outcome.as_json`. Matching runs here,
    against the monitor's own store, so a callback that arrived meanwhile is not doubled.
    """
    conversation_id = body.get("resource_id")
    conversation = body.get("conversation")
    if (
        body.get("kind") != "conversation"
        or not isinstance(conversation_id, str)
        or not conversation_id
        or not isinstance(conversation, dict)
    ):
        return 400, {
            "status": "error",
            "error": "kind must be conversation, resource_id its id and conversation "
            "the verbose GET's answer",
        }
    outcome = await recover_into(store, conversation_id, conversation, now=now)
    return 200, outcome.as_json()


# ------------------------------------------------------------ what looks incomplete


@dataclass(frozen=True, slots=True)
class Candidate:
    """A conversation worth asking Tavus about, and why."""

    conversation_id: str
    why: str


def incomplete_reason(
    events: Sequence[Event | EventRow], conversation_id: str, now: float
) -> str | None:
    """Why a conversation looks incomplete (no shutdown; no transcript past the grace
    time), or None: the lists' own judgement (:func:`.conversation.shown_lifecycle`)."""
    return incomplete_from_stages(shown_lifecycle(build_conversation(conversation_id, events), now))


def incomplete_from_stages(shown: Sequence[Stage]) -> str | None:
    """:func:`incomplete_reason` from a lifecycle already judged (``shown_lifecycle``): the
    Conversations list has it for every row and asks this before it offers to recover."""
    stages = {stage.name: stage for stage in shown}
    shutdown = stages[event_types.SHUTDOWN.name]
    if shutdown.state is StageState.WAITING:
        return "no shutdown"
    transcript = stages[event_types.TRANSCRIPT.name]
    if transcript.state is StageState.OVERDUE:
        return transcript.note or "transcript overdue"
    return None


SCAN_LIMIT = 10_000
"""Conversations a scan looks at, most recently active first."""


def candidates(reader: StoreReader, *, now: float, cutoff: float | None = None) -> list[Candidate]:
    """The conversations ``recover`` with no ids asks about: those the store knows that look
    incomplete, and those created through the monitor of which nothing arrived, active at
    or after ``cutoff`` (epoch seconds; None: any time)."""
    found: dict[str, Candidate] = {}
    known: set[str] = set()
    for conversation in reader.conversations_with_events(
        SCAN_LIMIT, events_each=ROWS_PER_CONVERSATION, bodies_of=WHOLE_TYPES
    ):
        conversation_id = conversation.conversation.conversation_id
        known.add(conversation_id)
        if cutoff is not None and conversation.conversation.last_received_at < cutoff:
            continue
        why = incomplete_reason(conversation.events, conversation_id, now)
        if why is not None:
            found[conversation_id] = Candidate(conversation_id, why)
    for created in reader.created("conversation", limit=SCAN_LIMIT):
        if created.resource_id in known or created.resource_id in found:
            continue
        if cutoff is not None and created.created_at < cutoff:
            continue
        found[created.resource_id] = Candidate(created.resource_id, "created here, nothing arrived")
    return list(found.values())


# ------------------------------------------------------------- where they are written

Recover = Callable[[str, Mapping[str, Any]], Awaitable[Outcome]]
"""Store what a conversation's verbose GET answer lists and the store lacks."""


class RecoverError(Exception):
    """Recovered events cannot be written anywhere; the message is one sentence."""


@contextlib.asynccontextmanager
async def destination(data_dir: Path, db: Path | None = None) -> AsyncIterator[Recover]:
    """Where recovered events go: the running monitor if there is one, else the store file.

    The store has one writer. While a monitor runs (``state.json`` in ``data_dir``), the
    verbose answers are handed to it over loopback and it matches and stores them itself
    (:data:`RECOVER_PATH`); with none running, the store (``db``, default ``events.db`` in
    ``data_dir``) is opened here once for every conversation, and closed after.
    """
    state = read_state(data_dir)
    if state is not None:
        async with httpx.AsyncClient(timeout=HAND_OVER_TIMEOUT) as http:

            async def hand_over(conversation_id: str, conversation: Mapping[str, Any]) -> Outcome:
                return await _hand_over(http, state, conversation_id, conversation)

            yield hand_over
        return
    store_path = db if db is not None else data_dir / "events.db"
    try:
        if db is None:
            private_dir(data_dir)
        store = await asyncio.to_thread(Store, store_path)
    except Exception as exc:  # a file or directory that cannot hold a store
        raise RecoverError(f"Cannot open the event store {store_path} ({exc}).") from None
    try:

        async def into_store(conversation_id: str, conversation: Mapping[str, Any]) -> Outcome:
            try:
                return await recover_into(store, conversation_id, conversation, now=time.time())
            except StoreError as exc:
                return Outcome(conversation_id, error=f"not stored in {store_path}: {exc}.")

        yield into_store
    finally:
        await asyncio.to_thread(store.close)


async def _hand_over(
    http: httpx.AsyncClient,
    state: RunningState,
    conversation_id: str,
    conversation: Mapping[str, Any],
) -> Outcome:
    """POST one verbose answer to the running monitor; its outcome (an error sentence if not)."""
    from .control import KEY_HEADER  # control mounts this module's route: import it late

    base = state.healthz_url.removesuffix("/healthz")
    cannot = (
        f"the running monitor (pid {state.pid}) cannot take recovered events; "
        "restart it with this version of tavus-monitor."
    )
    if not state.control_key:
        return Outcome(conversation_id, error=cannot)
    record = {"kind": "conversation", "resource_id": conversation_id, "conversation": conversation}
    try:
        answer = await http.post(
            base + RECOVER_PATH,
            content=json.dumps(record, ensure_ascii=False).encode("utf-8"),
            headers={KEY_HEADER: state.control_key, "content-type": "application/json"},
        )
    except httpx.HTTPError as exc:
        return Outcome(
            conversation_id,
            error=f"the running monitor at {base} did not answer ({exc or type(exc).__name__}).",
        )
    if answer.status_code == 404:
        return Outcome(conversation_id, error=cannot)
    try:
        data = answer.json()
    except ValueError:
        data = None
    if not answer.is_success or not isinstance(data, dict):
        reason = data.get("error") if isinstance(data, dict) else None
        said = " ".join(str(reason or answer.text).split())[:200]
        refused = (
            f"the running monitor refused the recovered events ({answer.status_code}: {said})."
        )
        return Outcome(conversation_id, error=refused)
    return Outcome.from_json(data)
