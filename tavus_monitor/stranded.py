"""Conversations a change of the public URL leaves behind, said out loud.

Tavus has no way to change a conversation's ``callback_url`` after it is created
(tavus-api.md §0): when the tunnel comes back on another URL, every conversation created with
the old one keeps posting there, and its shutdown and transcript never reach this monitor.
The monitor knows which conversations it created and with which URL (``store.created``), so
it can name the ones still running and say what to do: ``tavus-monitor recover`` once they
end (Tavus's verbose GET keeps their events).
"""

from __future__ import annotations

from collections.abc import Sequence

from .callbacks import SHUTDOWN
from .sanitize import printable
from .store import Created, EventQuery, StoreReader

SHOWN = 5
"""Conversations named in the sentence; more are counted."""


def _made_with(callback_url: str | None, url: str) -> bool:
    """Whether ``callback_url`` is ``url`` or under it (``url`` may be the public base)."""
    if not callback_url:
        return False
    base = url.rstrip("/")
    return callback_url == base or callback_url.startswith(base + "/")


def stranded(reader: StoreReader, old_url: str, new_url: str | None = None) -> list[Created]:
    """Conversations created through the monitor with ``old_url`` that are still active:
    not ended through the monitor, not created ended (``test_mode``), no shutdown stored.

    ``old_url`` is the previous public base URL or callback URL; one created with
    ``new_url`` (the same base again) is not stranded.
    """
    found: list[Created] = []
    for created in reader.created("conversation"):
        if not _made_with(created.callback_url, old_url):
            continue
        if new_url and _made_with(created.callback_url, new_url):
            continue
        if created.ended_at is not None or created.response.get("status") == "ended":
            continue
        query = EventQuery(conversation_id=created.resource_id, event_type=SHUTDOWN, limit=1)
        if reader.count(query):
            continue
        found.append(created)
    return found


def url_changed_sentence(conversations: Sequence[Created]) -> str | None:
    """The warning for a URL change that strands ``conversations``; None when it strands none.

    "The public URL changed: 2 conversations created with the old one are still active
    (c123 demo, c456): their callbacks will not arrive here; run `tavus-monitor recover`
    after they end."
    """
    if not conversations:
        return None
    named = [  # ids and names are Tavus's text: made inert for the terminal
        printable(f"{created.resource_id} {created.name}" if created.name else created.resource_id)
        for created in conversations[:SHOWN]
    ]
    if len(conversations) > SHOWN:
        named.append(f"and {len(conversations) - SHOWN} more")
    one = len(conversations) == 1
    return (
        f"The public URL changed: {len(conversations)} "
        f"{'conversation' if one else 'conversations'} created with the old one "
        f"{'is' if one else 'are'} still active ({', '.join(named)}): "
        f"{'its' if one else 'their'} callbacks will not arrive here; "
        f"run `tavus-monitor recover` after {'it ends' if one else 'they end'}."
    )
