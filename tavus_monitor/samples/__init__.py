"""Realistic sample callbacks, shipped as package data.

Each ``<name>.json`` here is one callback body as Tavus sends it. ``render``
makes a fresh copy for now: a new conversation id, current timestamps and the
target URL echoed in ``webhook_url``, so that sending the samples twice gives
two conversations, not a pile of duplicates.

Which samples exist, and where each falls in the demo call, is the event-type
registry's (:mod:`tavus_monitor.event_types`): a new type is one entry there plus
its ``<name>.json`` here, and a test fails when either is missing.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from ..event_types import REGISTRY

CONVERSATION_SEQUENCE: tuple[tuple[str, float], ...] = tuple(
    sorted(
        (
            (entry.name, entry.call_offset)
            for entry in REGISTRY.values()
            if entry.call_offset is not None
        ),
        key=lambda item: item[1],
    )
)
"""One call in the order Tavus delivers it, with seconds after the join (from the registry)."""

OTHER_SAMPLES: tuple[str, ...] = tuple(
    entry.name for entry in REGISTRY.values() if entry.call_offset is None
)
"""The registered types one call does not produce, in registry order."""

ALL_SAMPLES: tuple[str, ...] = tuple(name for name, _ in CONVERSATION_SEQUENCE) + OTHER_SAMPLES


@dataclass(frozen=True, slots=True)
class RenderedSample:
    name: str
    body: bytes


def load(name: str) -> dict[str, Any]:
    """The sample body as shipped."""
    if name not in ALL_SAMPLES:
        raise KeyError(name)
    text = resources.files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def new_conversation_id() -> str:
    return "c" + secrets.token_hex(6)


def render(
    name: str,
    *,
    conversation_id: str,
    webhook_url: str,
    at: datetime,
    salt: str,
) -> bytes:
    """A fresh body for ``name``; ``salt`` makes replica and video ids unique per run."""
    data = load(name)
    if "event_type" in data:
        data["conversation_id"] = conversation_id
        data["webhook_url"] = webhook_url
        data["timestamp"] = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    elif "video_id" in data:
        data["video_id"] = data["video_id"][:4] + salt
        data["updated_at"] = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    elif "replica_id" in data:
        data["replica_id"] = data["replica_id"][:5] + salt
    return json.dumps(data, indent=2).encode("utf-8")


def render_many(
    names: list[str],
    *,
    conversation_id: str | None = None,
    webhook_url: str = "",
    now: datetime | None = None,
) -> list[RenderedSample]:
    """Bodies for ``names`` in the given order, timed as one call ending ``now``."""
    conversation_id = conversation_id or new_conversation_id()
    now = now or datetime.now(UTC)
    offsets = dict(CONVERSATION_SEQUENCE)
    start = now - timedelta(seconds=max(offsets.values()))
    salt = secrets.token_hex(3)
    return [
        RenderedSample(
            name,
            render(
                name,
                conversation_id=conversation_id,
                webhook_url=webhook_url,
                at=start + timedelta(seconds=offsets.get(name, max(offsets.values()))),
                salt=salt,
            ),
        )
        for name in names
    ]
