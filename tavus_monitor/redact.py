"""Keeping the secret webhook token out of logs, exports and the screen."""

from __future__ import annotations

import re
from typing import Any

REDACTED = "<token>"
_WEBHOOK_SEGMENT = re.compile(r"(/webhook/)[^/?#\s]+")
_PATH_LIMIT = 200


def redact_path(path: str) -> str:
    """``/webhook/s3cret`` → ``/webhook/<token>``; long paths are cut."""
    redacted = _WEBHOOK_SEGMENT.sub(lambda match: match.group(1) + REDACTED, path)
    return redacted if len(redacted) <= _PATH_LIMIT else redacted[: _PATH_LIMIT - 1] + "…"


def redact_url(url: str) -> str:
    """A URL with the webhook token replaced, e.g. for a payload's ``webhook_url``."""
    return _WEBHOOK_SEGMENT.sub(lambda match: match.group(1) + REDACTED, url)


def redact_payload(payload: Any) -> Any:
    """A shallow copy of a callback payload with ``webhook_url`` redacted.

    Tavus echoes the callback URL (token included) in every conversation
    callback, so anything exported or shown goes through here.
    """
    if isinstance(payload, dict) and isinstance(payload.get("webhook_url"), str):
        return {**payload, "webhook_url": redact_url(payload["webhook_url"])}
    return payload
