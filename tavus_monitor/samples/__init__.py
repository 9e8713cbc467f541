"""Realistic sample callbacks, shipped as package data.

Each ``<name>.json`` here is one callback body as Tavus sends it. ``render``
makes a fresh copy for now: a new conversation id, current timestamps and the
target URL echoed in ``webhook_url``, so that sending the samples twice gives
two conversations, not a pile of duplicates.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

CONVERSATION_SEQUENCE: tuple[tuple[str, float], ...] = (
    ("system.replica_joined", 0.0),
    ("system.pal_joined", 0.001),
    ("conversation.objective.completed", 75.0),
    ("system.shutdown", 170.0),
    ("application.transcription_ready", 170.001),
    ("application.recording_ready", 211.0),
    ("application.perception_analysis", 350.0),
    ("application.post_call_action_executed", 474.0),
)
"""One call in the order Tavus delivers it, with seconds after the join."""

OTHER_SAMPLES: tuple[str, ...] = (
    "conversation.guardrail.triggered",
    "application.recording_copy_failed",
    "application.perception_unavailable",
    "replica.ready",
    "replica.error",
    "video.ready",
    "video.error",
)

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
