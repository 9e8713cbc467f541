"""Full-text search: what is indexed, how words become a query, and where they matched.

The store keeps one SQLite FTS5 index (``search_index``, made by migration 4 in
:mod:`tavus_monitor.storefile`) over every stored event: each transcript turn
is a row of its own, so a match names its turn, and every event has one row
for the rest of its text (its summary and the payload's strings). The index
is *contentless* (``content=''``): the text is already in ``events.body``,
and a second copy would double the file (a long call's transcript is
megabytes). A row's rowid says where its text is: ``event_id << TURN_BITS |
turn`` (turn 0: the event's other text; turn *n*: the *n*-th turn of its
transcript), so a hit is read back from the event's body, and its snippet is
cut here, in Python (FTS5's ``snippet()`` needs stored text).

This module is pure (no SQLite): the writer (:mod:`tavus_monitor.writer`), the
backfill and the reader (:mod:`tavus_monitor.store`) all get their text from
:func:`index_rows`, so what is searched is what is shown. Measured with
``python bench/queries.py`` (2 cores): at 100,000 events (111 MB) 100 matches
with their snippets take 5-6 ms and a miss 0.05 ms, where the ``LIKE`` scan
takes 65 ms to miss; at 1,000,000 events (1.1 GB) 8-10 ms and 0.05 ms, where
``LIKE`` takes 1.2 s. Most of a hit's time is reading its events' bodies back
for the snippets. The index costs the writer about 50 µs an event (the writer
alone: 40-50 µs an event without it, 90-110 µs with it, in batches of 50-500).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

TURN_BITS = 20
"""Low bits of a rowid that number the turn: 1,048,575 turns an event at most."""
MAX_TURN = (1 << TURN_BITS) - 1
WEBHOOK_KEY = "webhook_url"
"""Tavus echoes the callback URL (and with it the secret token): never indexed."""
RAW_TEXT_LIMIT = 1 << 20
"""Characters of a body that is not JSON that are indexed (it is kept whole all the same)."""
SNIPPET_CHARS = 90
"""About how long a snippet is."""

_WORD = re.compile(r"[^\W_]+")
"""What FTS5's ``unicode61`` tokenizer calls a token: a run of letters and digits."""


@dataclass(frozen=True, slots=True)
class IndexRow:
    """One row of the index: where its text is (the turn, 0 for the rest) and the text."""

    turn: int
    text: str
    role: str | None = None
    """A transcript turn's role."""


def rowid(event_id: int, turn: int) -> int:
    return event_id << TURN_BITS | turn


def split_rowid(value: int) -> tuple[int, int]:
    """``(event_id, turn)`` of an index rowid."""
    return value >> TURN_BITS, value & MAX_TURN


def index_rows(payload: Any, summary: str, *, body: bytes | None = None) -> list[IndexRow]:
    """What an event puts in the index: its transcript's turns, then the rest of its text.

    ``payload`` is the parsed body (None when it could not be parsed: then the
    body's bytes, as text, are indexed instead). Turns are numbered from 1 as
    :func:`tavus_monitor.callbacks.transcript_turns` lists them (entries that
    are not objects are skipped there and here), so turn *n* is the *n*-th turn
    the transcript view shows.
    """
    rows: list[IndexRow] = []
    transcript: object = None
    if isinstance(payload, dict):
        properties = payload.get("properties")
        if isinstance(properties, dict):
            transcript = properties.get("transcript")
    if isinstance(transcript, list):
        number = 0
        for raw in transcript:
            if not isinstance(raw, dict):
                continue
            number += 1
            if number > MAX_TURN:
                break
            content = raw.get("content")
            text = content if isinstance(content, str) else " ".join(_strings(content))
            role = raw.get("role")
            if text.strip():
                rows.append(IndexRow(number, text, role if isinstance(role, str) else None))
    else:
        transcript = None
    if payload is None and body is not None:
        rest = body[:RAW_TEXT_LIMIT].decode("utf-8", errors="replace")
    else:
        rest = "\n".join(_strings(payload, skip=transcript))
    rows.insert(0, IndexRow(0, f"{summary}\n{rest}" if rest else summary))
    return rows


def _strings(value: Any, skip: object = None) -> Iterator[str]:
    """Every string in ``value`` (keys excepted), depth first, without recursion.

    ``skip`` (compared by identity) and the echoed webhook URL are left out.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if item is skip and skip is not None:
            continue
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(child for key, child in reversed(item.items()) if key != WEBHOOK_KEY)
        elif isinstance(item, list):
            stack.extend(reversed(item))


# ------------------------------------------------------------ the query


def terms(words: str) -> list[tuple[str, bool]]:
    """The words typed, as ``(folded token, prefix)``: ``lisb*`` is a prefix."""
    found: list[tuple[str, bool]] = []
    for chunk in words.split():
        prefix = chunk.endswith("*")
        for token in _WORD.findall(chunk):
            found.append((fold(token), prefix))
    return found


def match_expression(words: str, *, prefix_last: bool = False) -> str | None:
    """An FTS5 MATCH expression for ``words`` (every word must occur), or None for no words.

    Each whitespace-separated chunk becomes a quoted phrase, so nothing the user
    types is FTS5 syntax (``AND``, ``-``, ``:``, quotes): ``2025-07-11`` is the
    phrase of its three tokens. A chunk ending in ``*`` matches as a prefix, and
    ``prefix_last`` makes the last chunk one (search as you type).
    """
    phrases: list[str] = []
    chunks = words.split()
    for index, chunk in enumerate(chunks):
        prefix = chunk.endswith("*") or (prefix_last and index == len(chunks) - 1)
        tokens = _WORD.findall(chunk)
        if not tokens:
            continue
        phrases.append('"' + " ".join(tokens) + '"' + ("*" if prefix else ""))
    return " ".join(phrases) or None


def fold(text: str) -> str:
    """Lower case without diacritics, as the index's tokenizer folds (``remove_diacritics 2``)."""
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def find_spans(
    text: str, wanted: Sequence[tuple[str, bool]], *, prefix: bool = False
) -> list[tuple[int, int]]:
    """Where in ``text`` a word of ``wanted`` (see :func:`terms`) occurs, as ``(start, end)``.

    Words match whole, as the index matches them; ``prefix`` makes every word
    match the start of a word too (the transcript's find, as you type).
    """
    if not wanted:
        return []
    exact = {token for token, is_prefix in wanted if not (is_prefix or prefix)}
    starts = tuple(token for token, is_prefix in wanted if is_prefix or prefix)
    spans = []
    for match in _WORD.finditer(text):
        token = fold(match.group())
        if token in exact or (starts and token.startswith(starts)):
            spans.append(match.span())
    return spans


def snippet(
    text: str, wanted: Sequence[tuple[str, bool]], width: int = SNIPPET_CHARS
) -> list[tuple[str, bool]]:
    """A window of ``text`` around its first match, as ``(part, is_match)`` parts.

    Whitespace runs become one space (a snippet is one line). The parts are the
    payload's own text: whoever shows them makes them inert
    (:func:`tavus_monitor.sanitize.printable`).
    """
    flat = " ".join(text.split())
    spans = find_spans(flat, wanted)
    start = 0
    if spans:
        start = max(0, spans[0][0] - width // 3)
        if start:  # begin at a word
            space = flat.find(" ", start, spans[0][0])
            start = space + 1 if space >= 0 else start
    end = min(len(flat), start + width)
    parts: list[tuple[str, bool]] = []
    if start:
        parts.append(("…", False))
    cursor = start
    for begin, finish in spans:
        if finish <= start:
            continue
        if begin >= end:
            break
        begin, finish = max(begin, start), min(finish, end)
        if begin > cursor:
            parts.append((flat[cursor:begin], False))
        parts.append((flat[begin:finish], True))
        cursor = finish
    if cursor < end:
        parts.append((flat[cursor:end], False))
    if end < len(flat):
        parts.append(("…", False))
    return parts
