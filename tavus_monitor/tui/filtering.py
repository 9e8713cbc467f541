"""The filter syntax of ``/``: words plus ``family:``, ``type:`` and ``conv:`` terms."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..store import EventQuery

_KEYS = {
    "family": "family",
    "f": "family",
    "type": "event_type",
    "t": "event_type",
    "conv": "conversation_id",
    "conversation": "conversation_id",
    "c": "conversation_id",
}


@dataclass(frozen=True, slots=True)
class Filter:
    text: str
    """Free words, matched against summaries and bodies."""
    family: str | None = None
    event_type: str | None = None
    conversation_id: str | None = None
    source: str = ""
    """What was typed: a pane that shows its filter shows it as typed."""

    @property
    def is_empty(self) -> bool:
        return not (self.text or self.family or self.event_type or self.conversation_id)

    def apply(self, base: EventQuery) -> EventQuery:
        """``base`` narrowed by this filter (terms of the base query are kept)."""
        return replace(
            base,
            family=self.family or base.family,
            event_type=self.event_type or base.event_type,
            conversation_id=self.conversation_id or base.conversation_id,
            search=self.text or None,
        )

    @property
    def words(self) -> str:
        """Everything as one lower-case string, for panes that filter in memory."""
        return " ".join(
            part for part in (self.conversation_id, self.event_type, self.family, self.text) if part
        )


def parse_filter(source: str) -> Filter:
    """``family:video failed render`` → family video, text ``failed render``."""
    terms: dict[str, str] = {}
    words: list[str] = []
    for token in source.split():
        key, sep, value = token.partition(":")
        if sep and value and key.lower() in _KEYS:
            terms[_KEYS[key.lower()]] = value
        else:
            words.append(token)
    return Filter(text=" ".join(words), source=source.strip(), **terms)
