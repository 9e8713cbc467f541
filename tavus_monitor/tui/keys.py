"""Every key, once: the bindings, footer, ``?`` help, palette and README derive from it.

Keys used to be written four times (the app's ``BINDINGS``, a hand-written help text,
``get_system_commands`` and the README table), and the copies had drifted apart. Like
harlequin's ``actions.py``, this module is the single table; the rest is generated:

- :func:`bindings` gives a screen's (or the app's) ``BINDINGS``, and so its footer;
- :func:`help_sections` gives the ``?`` help screen;
- :func:`palette_entries` gives the command palette's entries for the dashboard's keys;
- :func:`markdown_table` gives the README's key tables (``tests/test_keys.py`` checks them).

Each entry says which :class:`Scope` it belongs to, and a key acts only there: the app
disables the dashboard's keys on every other screen (``MonitorApp.check_action``), so ``m``
on the Conversations screen does nothing instead of maximising a pane that is not shown.
The panes' own keys (lists, transcripts, jobs) are bound by their widgets; their entries here
document them, and a test checks each widget really binds them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum

from textual.binding import Binding, BindingType


class Scope(Enum):
    """Where a key acts; the value is the heading it has in the help and the README."""

    APP = "Everywhere"
    DASHBOARD = "Dashboard"
    LISTS = "Lists (system events, events)"
    TRANSCRIPTS = "Transcripts"
    JOBS = "Jobs"
    INSPECTOR = "Inspector"


BOUND_HERE = frozenset({Scope.APP, Scope.DASHBOARD, Scope.INSPECTOR})
"""Scopes whose bindings this table generates; the others' are bound by their widgets."""

SHOWN_NAMES = {
    "slash": "/",
    "question_mark": "?",
    "escape": "esc",
    "pageup": "pgup",
    "pagedown": "pgdn",
}
"""How a Textual key name is written for people (help screen, README)."""


@dataclass(frozen=True, slots=True)
class Key:
    """One key (or several keys doing one thing) and everything said about it."""

    keys: str
    """Textual key names, comma separated, as ``Binding`` takes them (``"escape,q"``)."""
    action: str | None
    """The action it runs; ``None`` when something else binds it (Textual, or several
    actions of a widget documented as one line, like the arrows)."""
    help: str
    """What the ``?`` help and the README say it does; entries of one scope with the same
    help are shown as one line (``q / ctrl+c``)."""
    scope: Scope
    label: str = ""
    """The footer's label (and the binding's description)."""
    show: bool = True
    """Whether the footer shows it."""
    priority: bool = False
    palette: str | None = None
    """The command palette title; ``None`` keeps it out of the palette."""
    palette_help: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.keys.split(","))

    @property
    def shown(self) -> tuple[str, ...]:
        return tuple(SHOWN_NAMES.get(name, name) for name in self.names)

    def binding(self) -> Binding:
        if self.action is None:
            raise ValueError(f"{self.keys!r} has no action to bind")
        return Binding(self.keys, self.action, self.label, show=self.show, priority=self.priority)


QUIT_HELP = "quit: the server finishes open requests and the store is flushed"

KEYS: tuple[Key, ...] = (
    # The dashboard's footer follows this order (quit first, as before).
    Key(
        "q",
        "quit",
        QUIT_HELP,
        Scope.APP,
        "Quit",
    ),
    Key(
        "ctrl+c",
        "quit",
        QUIT_HELP,
        Scope.APP,
        "Quit",
        show=False,
        priority=True,
    ),
    Key(
        "c",
        "copy_url",
        "copy the callback URL",
        Scope.DASHBOARD,
        "Copy URL",
        palette="Copy callback URL",
        palette_help="Copy the URL to give Tavus",
    ),
    Key(
        "m",
        "toggle_maximize",
        "maximise the focused pane (again, or esc, to restore)",
        Scope.DASHBOARD,
        "Maximise",
        palette="Maximise or restore pane",
        palette_help="Toggle the focused pane full screen",
    ),
    Key(
        "slash",
        "filter",
        "filter the focused pane: words, family:video, type:system.shutdown, conv:c123",
        Scope.DASHBOARD,
        "Filter",
        palette="Filter pane",
        palette_help="Filter the focused pane",
    ),
    Key(
        "escape",
        "escape",
        "clear the filter, restore a maximised pane",
        Scope.DASHBOARD,
        "Clear",
        show=False,
    ),
    Key(
        "v",
        "conversations",
        (
            "conversations, each with its lifecycle (joined → shutdown → transcript → recording"
            " → perception → post-call) and what is missing, duplicated or overdue"
        ),
        Scope.DASHBOARD,
        "Conversations",
        palette="Conversations",
        palette_help="Every conversation with its lifecycle",
    ),
    Key(
        "r",
        "rejected",
        "rejected requests (wrong token, unknown path, too large): why did nothing arrive?",
        Scope.DASHBOARD,
        "Rejected",
        palette="Rejected requests",
        palette_help="Requests refused (token, path, size)",
    ),
    Key(
        "t",
        "retry_tunnel",
        "retry the ngrok tunnel now (after fixing what its failure message says)",
        Scope.DASHBOARD,
        "Retry tunnel",
        show=False,
        palette="Retry tunnel",
        palette_help="Open the ngrok tunnel again now",
    ),
    Key(
        "l",
        "log",
        "the log (uvicorn, pyngrok and library messages go to the log file, never over the screen)",
        Scope.DASHBOARD,
        "Log",
        show=False,
        palette="Log",
        palette_help="Server and library messages",
    ),
    Key(
        "question_mark",
        "help",
        "every key (this list)",
        Scope.APP,
        "Help",
        palette="Keys",
        palette_help="Every key binding",
    ),
    Key("ctrl+p", None, "command palette: every action by name", Scope.APP),
    Key("tab,shift+tab", None, "move between panes", Scope.DASHBOARD),
    # Bound by RowList (widgets/row_list.py).
    Key("up,down,pageup,pagedown", None, "move", Scope.LISTS),
    Key("enter", "open", "open the inspector on the event (or double click)", Scope.LISTS),
    Key(
        "f,home",
        "follow",
        "follow the newest again (scrolling away pauses following)",
        Scope.LISTS,
    ),
    # Bound by TranscriptView (widgets/transcript_view.py).
    Key("e", "toggle_system", "expand or collapse the system prompt", Scope.TRANSCRIPTS),
    Key("enter", "open", "inspect the event under the cursor", Scope.TRANSCRIPTS),
    # Bound by JobsTable (widgets/jobs_pane.py).
    Key("h,s,d", None, "copy the hosted / stream / download URL", Scope.JOBS),
    Key("enter", "open", "inspect the job's event", Scope.JOBS),
    # InspectorScreen.BINDINGS (screens/inspector.py); its footer follows this order.
    Key("escape,q", "close", "close the inspector", Scope.INSPECTOR, "Close"),
    Key(
        "y",
        "copy_payload",
        "copy the payload (the body exactly as received)",
        Scope.INSPECTOR,
        "Copy payload",
    ),
    Key(
        "v",
        "copy_value",
        "copy the value under the cursor in the tree",
        Scope.INSPECTOR,
        "Copy value",
    ),
    Key("slash", "search", "search the JSON", Scope.INSPECTOR, "Search"),
    Key("n", "next_match(1)", "next / previous match", Scope.INSPECTOR, "Next match"),
    Key(
        "N",
        "next_match(-1)",
        "next / previous match",
        Scope.INSPECTOR,
        "Previous match",
        show=False,
    ),
    Key("z", "fold", "fold the tree", Scope.INSPECTOR, "Fold all"),
    *(
        Key(
            str(number),
            f"tab({tab!r})",
            "tabs: summary, JSON, tree, headers, raw",
            Scope.INSPECTOR,
            label,
            show=False,
        )
        for number, (tab, label) in enumerate(
            (
                ("summary", "Summary"),
                ("json", "JSON"),
                ("tree", "Tree"),
                ("headers", "Headers"),
                ("raw", "Raw"),
            ),
            start=1,
        )
    ),
)


def bindings(*scopes: Scope) -> list[BindingType]:
    """The ``BINDINGS`` of whatever owns ``scopes``: the app (APP, DASHBOARD) or a screen."""
    for scope in scopes:
        if scope not in BOUND_HERE:
            raise ValueError(f"{scope.name} keys are bound by their widget, not from the table")
    return [key.binding() for key in KEYS if key.scope in scopes and key.action is not None]


def actions(scope: Scope) -> frozenset[str]:
    """The actions of a scope: the app disables the dashboard's on other screens."""
    return frozenset(key.action for key in KEYS if key.scope is scope and key.action)


def palette_entries(*scopes: Scope) -> Iterator[Key]:
    """The entries that have a command palette title, in table order, once each."""
    seen: set[str] = set()
    for key in KEYS:
        if key.scope in scopes and key.palette is not None and key.palette not in seen:
            seen.add(key.palette)
            yield key


def _lines(keys: Iterable[Key]) -> list[tuple[tuple[str, ...], str]]:
    """``(shown keys, help)`` per line: entries with the same help merge into one line."""
    lines: dict[str, list[str]] = {}
    for key in keys:
        shown = lines.setdefault(key.help, [])
        shown.extend(name for name in key.shown if name not in shown)
    return [(tuple(shown), help_text) for help_text, shown in lines.items()]


def help_sections() -> list[tuple[str, list[tuple[str, str]]]]:
    """The ``?`` help: per scope its heading and ``(keys, what they do)`` lines."""
    return [
        (
            scope.value,
            [
                (" / ".join(shown), help_text)
                for shown, help_text in _lines(key for key in KEYS if key.scope is scope)
            ],
        )
        for scope in Scope
    ]


def markdown_table(*scopes: Scope) -> str:
    """The README's key table for ``scopes`` (one line per help line, in table order)."""
    rows = ["| key | does |", "|---|---|"]
    for scope in scopes:
        for shown, help_text in _lines(key for key in KEYS if key.scope is scope):
            keys = " / ".join(f"`{name}`" for name in shown)
            rows.append(f"| {keys} | {help_text} |")
    return "\n".join(rows)
