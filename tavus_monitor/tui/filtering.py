"""The filter syntax of ``/``: words plus ``family:``, ``type:`` and ``conv:`` terms.

Terms speak the panes' words, as prefixes: ``family:`` takes the abbreviation a pane
shows (``bad``, ``conv``, ``guard``: :data:`~.formatters.FAMILY_ABBREVIATIONS`) or the
family's name; ``type:`` takes the start of the type or of one of its words, so the
short type a pane shows (``shutdown``, ``pal_joined``: :func:`~.formatters.short_type`)
matches, and ``join`` matches both joins (:func:`~tavus_monitor.store.type_has_word`).
A leading ``-`` negates a term or a word: ``-type:joined``, ``-family:conv``, ``-echo``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..events import Family
from ..store import EventQuery
from .formatters import FAMILY_ABBREVIATIONS

_KEYS = {
    "family": "family",
    "f": "family",
    "type": "event_type",
    "t": "event_type",
    "conv": "conversation_id",
    "conversation": "conversation_id",
    "c": "conversation_id",
}


def families_shown_as(prefix: str) -> tuple[str, ...]:
    """The families whose pane abbreviation or name starts with ``prefix``: ``bad`` →
    malformed, ``conv`` → conversation (ignoring case)."""
    prefix = prefix.lower()
    return tuple(
        family.value
        for family, shown in FAMILY_ABBREVIATIONS.items()
        if shown.startswith(prefix) or family.value.startswith(prefix)
    )


@dataclass(frozen=True, slots=True)
class Filter:
    text: str
    """Free words, matched against summaries and bodies."""
    family: str | None = None
    """A family as the panes show it, or its start (see :func:`families_shown_as`)."""
    event_type: str | None = None
    """A type, a short type as the panes show it, or the start of one of its words."""
    conversation_id: str | None = None
    source: str = ""
    """What was typed: a pane that shows its filter shows it as typed."""
    without_families: tuple[str, ...] = ()
    without_types: tuple[str, ...] = ()
    without_conversations: tuple[str, ...] = ()
    without_words: tuple[str, ...] = ()
    """``-family:``, ``-type:``, ``-conv:`` terms and ``-word`` words, as typed."""

    @property
    def is_empty(self) -> bool:
        return not (
            self.text
            or self.family
            or self.event_type
            or self.conversation_id
            or self.without_families
            or self.without_types
            or self.without_conversations
            or self.without_words
        )

    def apply(self, base: EventQuery) -> EventQuery:
        """``base`` narrowed by this filter (terms of the base query are kept)."""
        families = base.families
        if self.family is not None:
            shown = families_shown_as(self.family)
            families = shown if families is None else tuple(f for f in families if f in shown)
        if self.without_families:
            hidden = {f for prefix in self.without_families for f in families_shown_as(prefix)}
            kept = families if families is not None else tuple(f.value for f in Family)
            families = tuple(f for f in kept if f not in hidden)
        return replace(
            base,
            families=families,
            type_word=self.event_type or base.type_word,
            conversation_id=self.conversation_id or base.conversation_id,
            search=self.text or None,
            without_types=base.without_types + self.without_types,
            without_words=base.without_words + self.without_words,
            without_conversations=base.without_conversations + self.without_conversations,
        )

    @property
    def words(self) -> str:
        """Everything as one lower-case string, for panes that filter in memory."""
        return " ".join(
            part for part in (self.conversation_id, self.event_type, self.family, self.text) if part
        )


def parse_filter(source: str) -> Filter:
    """``family:video failed render -type:error`` → family video, text ``failed render``,
    and no type with a word starting ``error``."""
    terms: dict[str, str] = {}
    without: dict[str, list[str]] = {key: [] for key in set(_KEYS.values())}
    words: list[str] = []
    without_words: list[str] = []
    for token in source.split():
        negated = token.startswith("-") and len(token) > 1
        key, sep, value = (token[1:] if negated else token).partition(":")
        if sep and value and key.lower() in _KEYS:
            if negated:
                without[_KEYS[key.lower()]].append(value)
            else:
                terms[_KEYS[key.lower()]] = value
        elif negated:
            without_words.append(token[1:])
        else:
            words.append(token)
    return Filter(
        text=" ".join(words),
        source=source.strip(),
        without_families=tuple(without["family"]),
        without_types=tuple(without["event_type"]),
        without_conversations=tuple(without["conversation_id"]),
        without_words=tuple(without_words),
        **terms,
    )
