"""Every key, once: the bindings, footer, ``?`` help, palette and README derive from it.

Keys used to be written four times (the app's ``BINDINGS``, a hand-written help text,
``get_system_commands`` and the README table), and the copies had drifted apart. Like
harlequin's ``actions.py``, this module is the single table; the rest is generated:

- :func:`bindings` gives the ``BINDINGS`` of whatever owns a scope, and so its footer;
- :func:`help_sections` gives the ``?`` help screen;
- :func:`palette_entries` gives the command palette's entries for the dashboard's keys;
- :func:`markdown_table` gives the README's key tables (``tests/test_keys.py`` checks them).

Each entry says which :class:`Scope` it belongs to, and a key acts only there. Every scope
has one owner whose ``BINDINGS = bindings(Scope.…)`` binds it: the app (APP, DASHBOARD),
a pane's widget (LISTS: ``RowList``, TRANSCRIPTS: ``TranscriptView``, JOBS: ``JobsTable``)
or a screen (the inspector and its long-JSON view, the Conversations, Rejected, Log and help
screens). A widget's keys act (and show in the footer) only while it has focus, a screen's
only on it, and the app disables the dashboard's keys on every other screen
(``MonitorApp.check_action``), so ``m`` on the Conversations screen does nothing instead of
maximising a pane that is not shown. Entries without an action document what Textual binds.
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
    PICKER = "Transcripts: conversation list"
    TRANSCRIPTS = "Transcripts"
    JOBS = "Jobs"
    INSPECTOR = "Inspector"
    LONG_JSON = "Inspector: very long JSON"
    CONVERSATIONS = "Conversations"
    NEW_CONVERSATION = "New conversation (n on Conversations)"
    CONFIRM = "Confirm (ending a call)"
    REJECTED_AND_LOG = "Rejected requests, log"
    SEARCH = "Search"
    ATTENTION = "Needs attention"
    AUTHTOKEN = "ngrok authtoken"
    EDITOR = "Edit and send (E)"
    TARGET = "Handler URL (R or E without --forward-to)"
    HELP = "This list"


SHOWN_NAMES = {
    "slash": "/",
    "question_mark": "?",
    "exclamation_mark": "!",
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
    """The action it runs; ``None`` when Textual binds it (the palette, moving focus) and
    the entry only documents it."""
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
MOVE_HELP = "move"
FOLLOW_HELP = "follow the newest again (scrolling away pauses following)"
COPY_LINK_HELP = "copy the hosted / stream / download URL"
FIND_NEXT_HELP = "next / previous match of the find"
REPLAY_HELP = (
    "replay: send the event to your handler again (--forward-to, else a URL asked once), "
    "marked as a replay; its answer shows on the row"
)
EDIT_HELP = "edit the event's body ($EDITOR, else an editor here) and send the copy to your handler"
SCROLL_KEYS = ("up,k", "down,j", "pageup", "pagedown", "home", "end")
SCROLL_ACTIONS = ("scroll_up", "scroll_down", "page_up", "page_down", "scroll_home", "scroll_end")
"""The text views' keys (transcript, long JSON) and the actions they run."""


def _scrolling(scope: Scope, help_text: str, labels: tuple[str, ...]) -> tuple[Key, ...]:
    """A text view's scroll keys: one help line, no footer entries."""
    return tuple(
        Key(keys, action, help_text, scope, label, show=False)
        for keys, action, label in zip(SCROLL_KEYS, SCROLL_ACTIONS, labels, strict=True)
    )


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
        "filter the focused pane: words, family:conv, type:shutdown, -type:joined, conv:c1",
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
        "exclamation_mark",
        "attention",
        (
            "what needs attention (failed jobs, calls that failed, overdue transcripts, the"
            " tunnel down, refused requests); enter goes to one"
        ),
        Scope.DASHBOARD,
        "Attention",
        palette="Needs attention",
        palette_help="Failed jobs and calls, overdue transcripts, tunnel, refusals",
    ),
    Key(
        "ctrl+f",
        "search",
        "search every transcript turn and payload stored; enter opens the match",
        Scope.DASHBOARD,
        "Search",
        palette="Search all events",
        palette_help="Find words in every transcript and payload",
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
        "a",
        "paste_authtoken",
        "paste an ngrok authtoken: the tunnel is retried with it at once (and it can be saved)",
        Scope.DASHBOARD,
        "Authtoken",
        show=False,
        palette="Paste ngrok authtoken",
        palette_help="Use an authtoken for the tunnel now (input masked)",
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
    # RowList.BINDINGS (widgets/row_list.py); its footer shows Inspect, then Follow.
    Key("up,k", "cursor(-1)", MOVE_HELP, Scope.LISTS, "Up", show=False),
    Key("down,j", "cursor(1)", MOVE_HELP, Scope.LISTS, "Down", show=False),
    Key("pageup", "page(-1)", MOVE_HELP, Scope.LISTS, "Page up", show=False),
    Key("pagedown", "page(1)", MOVE_HELP, Scope.LISTS, "Page down", show=False),
    Key(
        "enter",
        "open",
        "open the inspector on the event (or double click)",
        Scope.LISTS,
        "Inspect",
    ),
    Key("f", "follow", FOLLOW_HELP, Scope.LISTS, "Follow"),
    Key("home", "follow", FOLLOW_HELP, Scope.LISTS, "Newest", show=False),
    Key(
        "end",
        "oldest",
        "go to the oldest event loaded (older ones load as you reach the end)",
        Scope.LISTS,
        "Oldest loaded",
        show=False,
    ),
    # Not in the lists' footer (it is full at 80 columns): the help, the palette and the
    # inspector's footer show them.
    Key("R", "resend(False)", REPLAY_HELP, Scope.LISTS, "Replay", show=False),
    Key("E", "resend(True)", EDIT_HELP, Scope.LISTS, "Edit & send", show=False),
    # ConversationPicker.BINDINGS (widgets/conversation_picker.py).
    Key(
        "up,k",
        "cursor(-1)",
        "open the previous / next conversation",
        Scope.PICKER,
        "Up",
        show=False,
    ),
    Key(
        "down,j",
        "cursor(1)",
        "open the previous / next conversation",
        Scope.PICKER,
        "Down",
        show=False,
    ),
    Key(
        "pageup", "page(-1)", "move a page up / down the list", Scope.PICKER, "Page up", show=False
    ),
    Key(
        "pagedown",
        "page(1)",
        "move a page up / down the list",
        Scope.PICKER,
        "Page down",
        show=False,
    ),
    Key("home", "first", "open the most recent conversation", Scope.PICKER, "First", show=False),
    Key("end", "last", "open the oldest conversation listed", Scope.PICKER, "Last", show=False),
    # TranscriptView.BINDINGS (widgets/transcript_view.py).
    # One key, two bindings: the footer shows the one TranscriptView.check_action allows.
    Key(
        "e",
        "expand_system",
        "expand or collapse the system prompt",
        Scope.TRANSCRIPTS,
        "Expand prompt",
    ),
    Key(
        "e",
        "collapse_system",
        "expand or collapse the system prompt",
        Scope.TRANSCRIPTS,
        "Collapse prompt",
    ),
    Key("enter", "open", "inspect the event under the cursor", Scope.TRANSCRIPTS, "Inspect"),
    Key(
        "slash",
        "find",
        "find words in the transcript: matches highlighted, k of N shown (this pane's filter: "
        "/ on the conversation list)",
        Scope.TRANSCRIPTS,
        "Find",
    ),
    Key("n", "find_next(1)", FIND_NEXT_HELP, Scope.TRANSCRIPTS, "Next match", show=False),
    Key("N", "find_next(-1)", FIND_NEXT_HELP, Scope.TRANSCRIPTS, "Previous match", show=False),
    Key(
        "escape",
        "clear_find",
        "close the find and clear its highlights (then as on the dashboard)",
        Scope.TRANSCRIPTS,
        "Clear find",
        show=False,
    ),
    *_scrolling(Scope.TRANSCRIPTS, "scroll the transcript", ("Up", "Down", "", "", "", "")),
    # JobsTable.BINDINGS (widgets/jobs_pane.py); its footer shows Inspect, Follow, the hosted URL.
    Key("enter", "open", "inspect the job's event", Scope.JOBS, "Inspect"),
    Key(
        "f",
        "follow",
        "follow the newest job again (moving off the top row pauses following)",
        Scope.JOBS,
        "Follow",
    ),
    Key("h", "copy_link('hosted')", COPY_LINK_HELP, Scope.JOBS, "Copy hosted URL"),
    Key("s", "copy_link('stream')", COPY_LINK_HELP, Scope.JOBS, "Copy stream URL", show=False),
    Key(
        "d",
        "copy_link('download')",
        COPY_LINK_HELP,
        Scope.JOBS,
        "Copy download URL",
        show=False,
    ),
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
    Key(
        "slash",
        "search",
        "search the JSON (enter finds the first match and goes back to the JSON)",
        Scope.INSPECTOR,
        "Search",
    ),
    Key(
        "n",
        "next_match(1)",
        "next / previous match (the match count stays shown)",
        Scope.INSPECTOR,
        "Next match",
    ),
    Key(
        "N",
        "next_match(-1)",
        "next / previous match (the match count stays shown)",
        Scope.INSPECTOR,
        "Previous match",
        show=False,
    ),
    Key("w", "wrap", "wrap long lines in the JSON, or stop wrapping", Scope.INSPECTOR, "Wrap"),
    Key("z", "fold", "fold the tree", Scope.INSPECTOR, "Fold all"),
    Key("R", "resend(False)", REPLAY_HELP, Scope.INSPECTOR, "Replay"),
    Key("E", "resend(True)", EDIT_HELP, Scope.INSPECTOR, "Edit & send", show=False),
    *(
        Key(
            str(number),
            f"tab({tab!r})",
            "tabs: summary, JSON, tree, headers, raw, handler (the tab's content takes the keys)",
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
                ("handler", "Handler"),
            ),
            start=1,
        )
    ),
    # JsonLines.BINDINGS (widgets/json_lines.py): the JSON tab of a payload too long for
    # the editor (screens/inspector.py, LONG_JSON_CHARS).
    *_scrolling(
        Scope.LONG_JSON,
        "scroll the JSON (payloads too long for the editor get this lighter view)",
        ("Up", "Down", "Page up", "Page down", "Top", "Bottom"),
    ),
    # ConversationsScreen.BINDINGS (screens/simple.py).
    Key("escape,q", "dismiss_none", "close the conversations", Scope.CONVERSATIONS, "Close"),
    Key(
        "enter",
        "choose",
        "read the conversation under the cursor in Transcripts (or click it)",
        Scope.CONVERSATIONS,
        "Read transcript",
    ),
    Key(
        "slash",
        "focus_filter",
        "filter the conversations by id or ended reason (enter or down goes back to the list)",
        Scope.CONVERSATIONS,
        "Filter",
    ),
    Key("down", "to_table", "from the filter to the list", Scope.CONVERSATIONS, show=False),
    Key(
        "n",
        "new_conversation",
        "create a conversation (a form) whose callbacks come to this monitor; it is listed at "
        "once, waiting for the replica to join",
        Scope.CONVERSATIONS,
        "New call",
    ),
    Key(
        "e",
        "end_call",
        "end the conversation under the cursor through Tavus's API (asks first); Tavus then "
        "sends its shutdown",
        Scope.CONVERSATIONS,
        "End call",
    ),
    Key(
        "r",
        "recover",
        "recover what never arrived of the conversation under the cursor (no shutdown, or the "
        "transcript overdue) from Tavus's own log of it",
        Scope.CONVERSATIONS,
        "Recover",
    ),
    # NewConversationScreen.BINDINGS (screens/new_conversation.py); enter is the inputs' own.
    Key(
        "enter",
        None,
        "create it with the monitor's callback URL (from any field)",
        Scope.NEW_CONVERSATION,
    ),
    Key("tab,shift+tab", None, "move between the fields", Scope.NEW_CONVERSATION),
    Key(
        "y",
        "copy_url",
        "copy the conversation_url once Tavus answered",
        Scope.NEW_CONVERSATION,
        "Copy URL",
    ),
    Key("escape", "close", "close the form", Scope.NEW_CONVERSATION, "Close"),
    # ConfirmScreen.BINDINGS (screens/confirm.py).
    Key("y", "confirm", "yes, do it", Scope.CONFIRM, "Yes"),
    Key("n,escape", "cancel", "no, leave it", Scope.CONFIRM, "No"),
    # RejectedScreen.BINDINGS and LogScreen.BINDINGS (screens/simple.py).
    Key(
        "escape,q",
        "dismiss",
        "close the rejected requests or the log",
        Scope.REJECTED_AND_LOG,
        "Close",
    ),
    # SearchScreen.BINDINGS (screens/search.py).
    Key("escape", "dismiss_none", "close the search", Scope.SEARCH, "Close"),
    Key(
        "enter",
        "choose",
        "open the match: its conversation at that turn in Transcripts, else the inspector",
        Scope.SEARCH,
        "Open",
    ),
    Key("down", "to_results", "from the words to the matches", Scope.SEARCH, "Matches", show=False),
    # AttentionScreen.BINDINGS (screens/attention.py); enter is the table's own.
    Key(
        "enter",
        None,
        "go to it: the inspector, the conversation, the refused requests, or retry the tunnel",
        Scope.ATTENTION,
    ),
    Key("escape,q", "dismiss_none", "close the list", Scope.ATTENTION, "Close"),
    # AuthtokenScreen.BINDINGS (screens/authtoken.py); enter is the input's own.
    Key("enter", None, "use the authtoken (and save it, if ticked)", Scope.AUTHTOKEN),
    Key("escape", "cancel", "close without using it", Scope.AUTHTOKEN, "Cancel"),
    # EditBodyScreen.BINDINGS and TargetScreen.BINDINGS (screens/resend.py); enter is the
    # URL input's own.
    Key(
        "ctrl+s",
        "send",
        "send the edited body (JSON that does not parse: a warning first, ctrl+s again sends "
        "it as typed)",
        Scope.EDITOR,
        "Send",
    ),
    Key("escape", "cancel", "close without sending", Scope.EDITOR, "Cancel"),
    Key(
        "enter",
        None,
        "send to this URL (remembered until the dashboard quits)",
        Scope.TARGET,
    ),
    Key("escape", "cancel", "close without sending", Scope.TARGET, "Cancel"),
    # HelpScreen.BINDINGS (screens/simple.py).
    Key("escape,q,question_mark", "dismiss", "close the key list", Scope.HELP, "Close"),
)


def bindings(*scopes: Scope) -> list[BindingType]:
    """The ``BINDINGS`` of whatever owns ``scopes`` (the app, a screen or a widget)."""
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
