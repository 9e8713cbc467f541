"""The ``/`` filter speaks the panes' words: ``family:bad``, ``type:shutdown``, negation,
a match count in the border, and "No match for …" when nothing matches.

The parser is tested on its own; the rest is the dashboard as a user drives it (real
server, real store, real HTTP, see ``test_tui``), and the store's SQL is checked
against :meth:`EventQuery.matches` on real stored events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from test_tui import (
    CONVERSATION,
    Dashboard,
    conversation_bodies,
    encode,
    running,
    sample,
    settle,
    store_history,
    widget_lines,
)

from tavus_monitor.events import Family
from tavus_monitor.settings import Settings
from tavus_monitor.store import EventQuery, Store, type_has_word
from tavus_monitor.tui.filtering import families_shown_as, parse_filter
from tavus_monitor.tui.formatters import FAMILY_ABBREVIATIONS, short_type
from tavus_monitor.tui.layout import SYSTEM_TYPES
from tavus_monitor.tui.widgets.row_list import PAGE_SIZE

MALFORMED = b'{"event_type": "system.'
JOINS = ["system.pal_joined", "system.replica_joined"]

# ------------------------------------------------------------------ parser


def test_families_are_named_as_the_panes_show_them_or_in_full() -> None:
    for family, shown in FAMILY_ABBREVIATIONS.items():
        assert family.value in families_shown_as(shown)
        assert family.value in families_shown_as(family.value)
        assert family.value in families_shown_as(shown.upper())
    assert families_shown_as("bad") == (Family.MALFORMED.value,)
    assert families_shown_as("conv") == (Family.CONVERSATION.value,)
    assert families_shown_as("g") == (Family.GUARDRAIL.value,)
    assert families_shown_as("nothing") == ()


@pytest.mark.parametrize(
    ("event_type", "word", "matches"),
    [
        ("system.shutdown", "shutdown", True),
        ("system.shutdown", "shut", True),
        ("system.shutdown", "system.shutdown", True),
        ("system.shutdown", "SYSTEM.Shut", True),
        ("system.pal_joined", "join", True),
        ("system.replica_joined", "joined", True),
        ("system.replica_joined", "replica_joined", True),
        ("application.transcription_ready", "transcription", True),
        ("system.shutdown", "down", False),
        ("system.shutdown", "ystem", False),
        ("system.pal_joined", "oined", False),
    ],
)
def test_a_type_word_matches_the_start_of_the_type_or_of_one_of_its_words(
    event_type: str, word: str, matches: bool
) -> None:
    assert type_has_word(event_type, word) is matches
    # What the panes show (the short type) is matched by its own start.
    assert type_has_word(event_type, short_type(event_type)[:4])


def test_parse_filter_reads_terms_words_and_negations() -> None:
    parsed = parse_filter("  family:bad type:shutdown conv:c1 hello world  ")
    assert (parsed.family, parsed.event_type, parsed.conversation_id) == ("bad", "shutdown", "c1")
    assert parsed.text == "hello world"
    assert parsed.source == "family:bad type:shutdown conv:c1 hello world"

    parsed = parse_filter("-type:joined -family:conv -conv:c2 -echo -T:pal keep")
    assert parsed.without_types == ("joined", "pal")
    assert parsed.without_families == ("conv",)
    assert parsed.without_conversations == ("c2",)
    assert parsed.without_words == ("echo",)
    assert parsed.text == "keep"
    assert not parsed.is_empty
    assert not parse_filter("-echo").is_empty
    assert parse_filter("   ").is_empty


def test_parse_filter_keeps_what_is_no_term_as_words() -> None:
    # A lone "-", an unknown key and a key without a value are words, as typed.
    parsed = parse_filter("- type: colour:red -colour:blue")
    assert parsed.text == "- type: colour:red"
    assert parsed.without_words == ("colour:blue",)
    assert parsed.event_type is None


def test_a_filter_narrows_the_base_query_in_the_panes_words() -> None:
    query = parse_filter("family:bad").apply(EventQuery())
    assert query.families == (Family.MALFORMED.value,)
    query = parse_filter("-family:conv -family:bad").apply(EventQuery())
    assert query.families is not None
    assert set(query.families) == {f.value for f in Family} - {"conversation", "malformed"}
    # The system pane stays joins and shutdowns.
    base = EventQuery(event_types=SYSTEM_TYPES)
    query = parse_filter("type:join -word").apply(base)
    assert query.event_types == SYSTEM_TYPES
    assert (query.type_word, query.without_words) == ("join", ("word",))
    # A family that no pane shows matches nothing (no family at all, not every family).
    assert parse_filter("family:zzz").apply(EventQuery()).families == ()


# ------------------------------------------------------------------- store


QUERIES = [
    EventQuery(type_word="shutdown"),
    EventQuery(type_word="join"),
    EventQuery(type_word="system.shut"),
    EventQuery(without_types=("joined", "shutdown")),
    EventQuery(without_words=("transcript",)),
    EventQuery(without_conversations=("cstore000001",)),
    EventQuery(type_word="r%", without_words=("_",)),
]


@pytest.mark.parametrize("query", QUERIES)
def test_the_store_and_matches_agree_on_the_new_terms(
    settings: Settings, query: EventQuery
) -> None:
    bodies = [*conversation_bodies("cstore000001"), *conversation_bodies("cstore000002")]
    store_history(settings, [*bodies, MALFORMED], start=1_752_216_000.0)
    assert settings.db_path is not None
    with Store(settings.db_path) as store:
        everything = store.rows(EventQuery(limit=1000))
        found = store.rows(query)
        assert [row.id for row in found] == [row.id for row in everything if query.matches(row)]
        assert store.count(query) == len(found)
    if query.type_word == "join":
        assert sorted({row.event_type for row in found}) == JOINS
    if query.type_word == "shutdown":
        assert {row.event_type for row in found} == {"system.shutdown"}


# --------------------------------------------------------------- dashboard


@pytest.fixture
async def dash(settings: Settings) -> AsyncIterator[Dashboard]:
    async with running(settings) as dashboard:
        yield dashboard


async def type_filter(dash: Dashboard, source: str) -> None:
    await dash.press("slash", *source)


async def test_family_and_type_take_the_words_the_pane_shows(dash: Dashboard) -> None:
    await dash.post(*conversation_bodies("cfilterwd001"), *conversation_bodies("cfilterwd002"))
    await dash.post(MALFORMED)
    events = dash.pane("events")

    await type_filter(dash, "family:bad")
    assert [row.family for row in events.rows] == [Family.MALFORMED]
    assert events.border_subtitle == "filter: family:bad · 1 match"

    await dash.press("escape")
    await type_filter(dash, "type:shutdown")
    assert [row.event_type for row in events.rows] == ["system.shutdown"] * 2
    assert "filter: type:shutdown · 2 matches" in dash.text()

    await dash.press("escape")
    await type_filter(dash, "type:join")
    assert sorted(row.event_type for row in events.rows) == sorted(JOINS * 2)

    await dash.press("escape")
    await type_filter(dash, "family:conv")
    conversation = [row for row in events.rows if row.family is Family.CONVERSATION]
    assert events.rows == conversation
    assert len(conversation) > 0


async def test_negated_terms_and_words_leave_those_out(dash: Dashboard) -> None:
    await dash.post(*conversation_bodies("cfilterng001"), MALFORMED)
    events = dash.pane("events")
    everything = list(events.rows)

    await type_filter(dash, "-type:joined")
    assert [row.id for row in events.rows] == [
        row.id for row in everything if row.event_type not in JOINS
    ]
    assert events.border_subtitle == f"filter: -type:joined · {len(everything) - 2} matches"

    await dash.press("escape")
    await type_filter(dash, "-family:conv")
    assert events.rows
    assert [row.id for row in events.rows] == [
        row.id for row in everything if row.family is not Family.CONVERSATION
    ]

    await dash.press("escape")
    await type_filter(dash, "-participant")
    shutdown = next(row for row in everything if row.event_type == "system.shutdown")
    assert "participant" in shutdown.summary
    assert shutdown.id not in [row.id for row in events.rows]
    assert len(events.rows) < len(everything)

    # The system pane keeps to joins and shutdowns under a negation.
    system = dash.pane("system")
    await dash.press("escape")
    system.focus()
    await type_filter(dash, "-type:joined")
    assert [row.event_type for row in system.rows] == ["system.shutdown"]


async def test_the_match_count_is_of_the_whole_history_and_grows_with_new_events(
    settings: Settings,
) -> None:
    total = PAGE_SIZE + 50
    bodies = [encode(sample("replica.ready", replica_id=f"r{index:09d}")) for index in range(total)]
    store_history(settings, [*bodies, *conversation_bodies("cfiltercnt01")], start=1.7e9)
    async with running(settings) as dash:
        store = dash.app.store
        assert store is not None
        counted: list[EventQuery] = []
        count = store.count

        def counting(query: EventQuery) -> int:
            counted.append(query)
            return count(query)

        store.count = counting  # type: ignore[method-assign, assignment]
        events = dash.pane("events")
        await type_filter(dash, "-type:shut")
        assert len(events.rows) == PAGE_SIZE
        matched = total + len(CONVERSATION) - 1
        assert events.border_subtitle == f"filter: -type:shut · {matched} matches"
        # One count per filter (here, per key typed), not one per row or page.
        counted.clear()
        events.apply_filter(parse_filter("-type:shut"))
        await settle(dash.pilot)
        assert events.border_subtitle == f"filter: -type:shut · {matched} matches"
        assert len(counted) == 1

        await dash.post(*conversation_bodies("cfiltercnt02"))
        matched = total + 2 * (len(CONVERSATION) - 1)
        assert events.border_subtitle == f"filter: -type:shut · {matched} matches"
        assert len(counted) == 1


async def test_a_filter_that_hides_everything_says_so_as_typed(dash: Dashboard) -> None:
    events = dash.pane("events")
    assert "Waiting for callbacks" in widget_lines(events)[0]
    await dash.post(*conversation_bodies("cfilternm001"))

    await type_filter(dash, "type:[b]x[/b]")
    assert events.rows == []
    assert widget_lines(events)[0].startswith("No match for type:[b]x[/b]")
    assert "Waiting for callbacks" not in dash.text()
    assert "filter: type:[b]x[/b] · 0 matches" in dash.text()

    # A control character (pasted, say) never reaches the terminal.
    events.apply_filter(parse_filter("type:x\x1b[2J"))
    await settle(dash.pilot)
    first = widget_lines(events)[0]
    assert first.startswith("No match for type:x")
    assert "\x1b" not in first

    await dash.press("escape")
    assert len(events.rows) == len(CONVERSATION)
    assert "No match" not in dash.text()
