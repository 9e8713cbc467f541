"""The key table (``tui/keys.py``) against what the app binds, shows, offers and documents.

Keys used to be written four times and had drifted (the palette listed "Keys" twice, ``m``
maximised a pane of the dashboard from the Conversations screen); these tests hold the
bindings, the ``?`` help, the palette and the README to the one table.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from rich.table import Table
from rich.text import Text
from test_tui import Dashboard, conversation_bodies, running, settle
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static

import tavus_monitor.tui
from tavus_monitor.settings import Settings
from tavus_monitor.tui.app import MonitorApp
from tavus_monitor.tui.keys import KEYS, Scope, bindings, help_sections, markdown_table
from tavus_monitor.tui.screens.attention import AttentionScreen
from tavus_monitor.tui.screens.authtoken import AuthtokenScreen
from tavus_monitor.tui.screens.confirm import ConfirmScreen
from tavus_monitor.tui.screens.inspector import InspectorScreen
from tavus_monitor.tui.screens.new_conversation import NewConversationScreen
from tavus_monitor.tui.screens.resend import EditBodyScreen, TargetScreen
from tavus_monitor.tui.screens.search import SearchScreen
from tavus_monitor.tui.screens.simple import (
    ConversationsScreen,
    HelpScreen,
    LogScreen,
    RejectedScreen,
)
from tavus_monitor.tui.widgets.conversation_picker import ConversationPicker
from tavus_monitor.tui.widgets.jobs_pane import JobsTable
from tavus_monitor.tui.widgets.json_lines import JsonLines
from tavus_monitor.tui.widgets.row_list import RowList
from tavus_monitor.tui.widgets.transcript_view import TranscriptView

README = Path(__file__).resolve().parent.parent / "README.md"
DASHBOARD_TABLE = (
    Scope.APP,
    Scope.DASHBOARD,
    Scope.LISTS,
    Scope.PICKER,
    Scope.TRANSCRIPTS,
    Scope.JOBS,
)
"""The scopes of the README's dashboard key table (the inspector has a table of its own)."""
README_TABLES = (
    DASHBOARD_TABLE,
    (Scope.INSPECTOR, Scope.LONG_JSON),
    (
        Scope.CONVERSATIONS,
        Scope.NEW_CONVERSATION,
        Scope.CONFIRM,
        Scope.REJECTED_AND_LOG,
        Scope.SEARCH,
        Scope.ATTENTION,
        Scope.AUTHTOKEN,
        Scope.EDITOR,
        Scope.TARGET,
        Scope.HELP,
    ),
)
"""Every key table of the README, in its order."""
WIDGETS: dict[Scope, type[Widget]] = {
    Scope.LISTS: RowList,
    Scope.PICKER: ConversationPicker,
    Scope.TRANSCRIPTS: TranscriptView,
    Scope.JOBS: JobsTable,
}
"""The panes' widgets that bind their scope's keys."""
OWNERS: dict[type[App[Any]] | type[Widget] | type[Screen[Any]], tuple[Scope, ...]] = {
    MonitorApp: (Scope.APP, Scope.DASHBOARD),
    RowList: (Scope.LISTS,),
    ConversationPicker: (Scope.PICKER,),
    TranscriptView: (Scope.TRANSCRIPTS,),
    JobsTable: (Scope.JOBS,),
    InspectorScreen: (Scope.INSPECTOR,),
    JsonLines: (Scope.LONG_JSON,),
    ConversationsScreen: (Scope.CONVERSATIONS,),
    NewConversationScreen: (Scope.NEW_CONVERSATION,),
    ConfirmScreen: (Scope.CONFIRM,),
    RejectedScreen: (Scope.REJECTED_AND_LOG,),
    LogScreen: (Scope.REJECTED_AND_LOG,),
    SearchScreen: (Scope.SEARCH,),
    AttentionScreen: (Scope.ATTENTION,),
    AuthtokenScreen: (Scope.AUTHTOKEN,),
    EditBodyScreen: (Scope.EDITOR,),
    TargetScreen: (Scope.TARGET,),
    HelpScreen: (Scope.HELP,),
}
"""Every class of the dashboard that binds keys, and the scopes it binds."""


def bound(owner: type[App[Any]] | type[Widget] | type[Screen[Any]]) -> dict[str, str]:
    """``{key: action}`` of a class's own ``BINDINGS``."""
    result = {}
    for binding in owner.BINDINGS:
        assert isinstance(binding, Binding)
        for key in binding.key.split(","):
            result[key.strip()] = binding.action
    return result


@pytest.fixture
async def dash(settings: Settings) -> AsyncIterator[Dashboard]:
    async with running(settings) as dashboard:
        yield dashboard


def test_the_readme_key_tables_are_the_key_table() -> None:
    readme = README.read_text(encoding="utf-8")
    assert markdown_table(*DASHBOARD_TABLE) in readme
    assert markdown_table(Scope.INSPECTOR) in readme
    for scopes in README_TABLES:
        assert markdown_table(*scopes) in readme
    assert {scope for scopes in README_TABLES for scope in scopes} == set(Scope)


def test_every_scope_has_owners_that_bind_exactly_its_entries() -> None:
    for owner, scopes in OWNERS.items():
        expected = {
            name: key.action
            for key in KEYS
            if key.scope in scopes and key.action
            for name in key.names
        }
        assert bound(owner) == expected, owner.__name__
        assert bindings(*scopes) == owner.BINDINGS, owner.__name__
    assert {scope for scopes in OWNERS.values() for scope in scopes} == set(Scope)


def test_no_class_of_the_dashboard_binds_keys_outside_the_table() -> None:
    """A widget or screen that writes its own ``BINDINGS`` would bypass the help and README."""
    binders = set()
    for module_info in pkgutil.walk_packages(tavus_monitor.tui.__path__, "tavus_monitor.tui."):
        module = importlib.import_module(module_info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and "BINDINGS" in vars(cls):
                binders.add(cls)
    assert binders == set(OWNERS)


def test_the_app_and_the_inspector_bind_exactly_their_entries() -> None:
    expected_app = {
        name: key.action
        for key in KEYS
        if key.scope in (Scope.APP, Scope.DASHBOARD) and key.action
        for name in key.names
    }
    assert bound(MonitorApp) == expected_app
    expected_inspector = {
        name: key.action for key in KEYS if key.scope is Scope.INSPECTOR for name in key.names
    }
    assert bound(InspectorScreen) == expected_inspector


@pytest.mark.parametrize("scope", list(WIDGETS), ids=lambda scope: scope.name)
def test_the_widgets_bind_what_the_table_documents(scope: Scope) -> None:
    keys = bound(WIDGETS[scope])
    actions = {
        (name.strip(), binding.action)
        for binding in WIDGETS[scope].BINDINGS
        if isinstance(binding, Binding)
        for name in binding.key.split(",")
    }
    for key in KEYS:
        if key.scope is scope:
            for name in key.names:
                assert name in keys, f"{WIDGETS[scope].__name__} does not bind {name!r}"
                if key.action is not None:  # a key may have two bindings (e: expand, collapse)
                    assert (name, key.action) in actions


def test_textual_binds_the_keys_the_table_leaves_to_it() -> None:
    unbound = {
        name for key in KEYS if key.scope is Scope.APP and key.action is None for name in key.names
    }
    assert unbound == {App.COMMAND_PALETTE_BINDING}


async def test_question_mark_lists_every_key_of_the_table(dash: Dashboard) -> None:
    await dash.press("question_mark")
    assert isinstance(dash.app.screen, HelpScreen)
    headings: list[str] = []
    rows: list[tuple[str, str]] = []
    for static in dash.app.screen.query(Static):
        if isinstance(static.content, Text):
            headings.append(static.content.plain.strip())
        elif isinstance(static.content, Table):  # a section: keys, then what they do
            keys_column, help_column = static.content.columns
            rows.extend(zip(map(str, keys_column.cells), map(str, help_column.cells), strict=True))
    for heading, lines in help_sections():
        assert heading in headings
        for line in lines:
            assert line in rows
    shown = "\n".join(f"{keys} {description}" for keys, description in rows)
    for key in KEYS:
        assert key.help in shown
        for name in key.shown:
            assert name in shown
    assert "Everywhere" in dash.text()


async def test_the_palette_lists_each_title_once(dash: Dashboard) -> None:
    app = dash.app

    def titles() -> list[str]:
        return [command.title for command in app.get_system_commands(app.screen)]

    # The transcripts pane may be maximised, so Textual would offer "Maximize" for it too.
    app.query_one("#transcripts").focus()
    await dash.press("tab", "shift+tab")
    assert len(titles()) == len(set(titles())), titles()
    assert app.screen.focused is not None
    assert app.screen.focused.allow_maximize
    assert "Maximise or restore pane" in titles()
    assert "Maximize" not in titles()
    assert titles().count("Keys") == 1
    await dash.press("m")
    assert app.screen.maximized is not None
    assert len(titles()) == len(set(titles())), titles()
    assert "Minimize" not in titles()
    await dash.press("m")
    await dash.press("v")
    assert isinstance(app.screen, ConversationsScreen)
    assert len(titles()) == len(set(titles())), titles()
    assert "Maximise or restore pane" not in titles()
    assert "Keys" in titles()


async def test_m_on_the_conversations_screen_maximises_nothing(dash: Dashboard) -> None:
    await dash.post(*conversation_bodies("ckeys0000001"))
    app = dash.app
    dashboard = app.screen
    await dash.press("v")
    screen = app.screen
    assert isinstance(screen, ConversationsScreen)
    assert "Maximise" not in dash.text()
    await dash.press("m", "slash", "c")
    assert app.screen is screen
    assert screen.maximized is None
    assert dashboard.maximized is None
    assert app.clipboard == ""
    await dash.press("escape")
    assert app.screen is dashboard
    await dash.press("m")
    assert dashboard.maximized is not None


async def test_the_inspector_footer_shows_only_its_keys(dash: Dashboard) -> None:
    await dash.post(*conversation_bodies("ckeys0000002"))
    app = dash.app
    app.query_one("#events", RowList).focus()
    await dash.press("enter")
    assert isinstance(app.screen, InspectorScreen)
    footer = dash.text().splitlines()[-1]
    assert "Copy payload" in footer
    for dashboard_only in ("Maximise", "Copy URL", "Conversations", "Rejected"):
        assert dashboard_only not in footer
    await dash.press("m")
    assert app.screen.maximized is None
    assert app.screen_stack[0].maximized is None


async def test_the_dashboard_footer_keeps_its_keys(settings: Settings) -> None:
    async with running(settings) as dash:
        footer = dash.text().splitlines()[-1]
        for label in ("Quit", "Copy URL", "Maximise", "Filter", "Conversations", "Rejected"):
            assert label in footer


async def test_a_panes_keys_act_and_show_only_while_it_has_focus(dash: Dashboard) -> None:
    app = dash.app

    def footer() -> str:
        return dash.text().splitlines()[-1]

    assert app.focused is app.query_one("#events")
    assert "Follow" in footer()
    assert "Copy hosted URL" not in footer()
    assert "Expand prompt" not in footer()
    await dash.press("e")  # the transcript's key, not the list's: nothing happens
    assert not dash.transcript.system_expanded
    dash.jobs.focus()
    await settle(dash.pilot)
    assert "Copy hosted URL" in footer()
    assert "Expand prompt" not in footer()
    dash.transcript.focus()
    await settle(dash.pilot)
    assert "Expand prompt" in footer()
    assert "Copy hosted URL" not in footer()
    await dash.press("e")
    assert dash.transcript.system_expanded
