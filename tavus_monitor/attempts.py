"""What a handler answered when a delivery was sent to it: one :class:`Attempt`.

Apart from :mod:`tavus_monitor.sending` (which makes them, with httpx) so the
store can keep and read attempts without importing an HTTP client.
"""

from __future__ import annotations

from dataclasses import dataclass

from .events import Headers

RESPONSE_KEPT = 64 * 1024
"""Bytes of a handler's response body kept with an attempt: enough for any error page."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One POST to a handler: what was sent where, and the answer or the failure."""

    target: str
    started_at: float
    """Epoch seconds when the request was started."""
    latency_ms: float
    """Milliseconds to the whole answer (or to the failure)."""
    status: int | None
    """The handler's status code; None when there was no answer (see ``error``)."""
    error: str | None = None
    """One sentence saying why there was no answer, and what to check."""
    request_headers: Headers = ()
    response_headers: Headers = ()
    response_body: bytes = b""
    """The start of the response body (at most :data:`RESPONSE_KEPT` bytes)."""
    failure: str | None = None
    """The failure in a word for a pane cell: ``refused``, ``timeout``, ``error``."""

    @property
    def ok(self) -> bool:
        """Whether the handler accepted it (2xx), as Tavus would count it."""
        return self.status is not None and 200 <= self.status < 300

    def describe(self) -> str:
        """A pane cell: ``→ 200 12ms``, ``→ 500 3ms``, ``→ refused``."""
        if self.status is None:
            return f"→ {self.failure or 'error'}"
        return f"→ {self.status} {self.latency_ms:.0f}ms"


@dataclass(frozen=True, slots=True)
class StoredAttempt:
    """An attempt as the store keeps it: which event, why it was sent, and what was sent."""

    id: int
    event_id: int
    kind: str
    """``forward``, ``replay`` or ``edited`` (an edited copy sent from the dashboard)."""
    attempt: Attempt
    request_body: bytes | None = None
    """The body sent, when it was not the event's own (an edited copy)."""
