"""Keeping the secret webhook token out of logs, exports and the screen.

A path is redacted two ways, so a near miss (a doubled slash from URL
concatenation, ``/WEBHOOK/...``, an encoded character) never shows the token:

* by shape: the segment after a ``webhook`` segment (any case, any number of
  slashes) is replaced, whatever it is (a guessed or an old token too);
* by value: the real token, which the server knows, anywhere in the path, in
  any case.

Both look at the path percent-decoded until nothing changes, so no encoded
form of the token (``%74oken``, ``%2574oken``) survives either.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

REDACTED = "<token>"
_PATH_SEGMENT = re.compile(r"((?:^|/)webhook/+)[^/]+", re.IGNORECASE)
_URL_SEGMENT = re.compile(r"((?:^|/)webhook/+)[^/?#\s]+", re.IGNORECASE)
_PATH_LIMIT = 200


def redact_path(path: str, token: str | None = None) -> str:
    """``/webhook/s3cret`` → ``/webhook/<token>``; ``token`` is also removed anywhere.

    The result is the path percent-decoded (when it had escapes) and cut at 200
    characters. A query string, if any, is treated as part of the path.
    """
    return path_redactor(token)(path)


def path_redactor(token: str | None) -> Callable[[str], str]:
    """:func:`redact_path` for one token, its pattern compiled once."""
    value = re.compile(re.escape(token), re.IGNORECASE) if token else None

    def redact(path: str) -> str:
        shown = _PATH_SEGMENT.sub(_keep_prefix, _decoded(path))
        if value is not None:
            shown = value.sub(REDACTED, shown)
        return shown if len(shown) <= _PATH_LIMIT else shown[: _PATH_LIMIT - 1] + "…"

    return redact


def _keep_prefix(match: re.Match[str]) -> str:
    return match.group(1) + REDACTED


def _decoded(text: str) -> str:
    """``text`` percent-decoded until it no longer changes (each round shortens it)."""
    while "%" in text:
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def redact_url(url: str) -> str:
    """A URL with the webhook token replaced, e.g. for a payload's ``webhook_url``."""
    return _URL_SEGMENT.sub(_keep_prefix, url)


def redact_payload(payload: Any) -> Any:
    """A shallow copy of a callback payload with ``webhook_url`` redacted.

    Tavus echoes the callback URL (token included) in every conversation
    callback, so anything exported or shown goes through here.
    """
    if isinstance(payload, dict) and isinstance(payload.get("webhook_url"), str):
        return {**payload, "webhook_url": redact_url(payload["webhook_url"])}
    return payload
