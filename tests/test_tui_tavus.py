"""The dashboard calling Tavus (issue 13): create, end and recover from the Conversations
screen, and a URL change that leaves calls behind said loudly.

Real parts: the stand-in Tavus API (``standin_tavus.py``) on loopback, and the real app whose
monitor's public URL is its own local address (as ``test_tavus_api.py`` gives
``--public-url``), so the callbacks the stand-in POSTs reach this very dashboard.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator

import pytest
from conftest import TEST_TOKEN
from standin_tavus import Behaviour, StandinTavus, running_standin
from test_conversations_screen import detail, open_screen, rows
from test_tui import Dashboard, running, wait_for
from textual.widgets import DataTable, Input

from tavus_monitor.attention import ConcernKind
from tavus_monitor.settings import Settings
from tavus_monitor.tavus_api import API_KEY_ENV
from tavus_monitor.tui.screens.attention import AttentionScreen
from tavus_monitor.tui.screens.confirm import ConfirmScreen
from tavus_monitor.tui.screens.new_conversation import NewConversationScreen
from tavus_monitor.tui.screens.simple import WAITING, ConversationsScreen
from tavus_monitor.tui.tavus_calls import NewConversation, TavusCalls
from tavus_monitor.tunnel import TunnelState, TunnelStatus

REPLICA = "r90bbd427f71"
OLD_URL = "https://old-tunnel.ngrok-free.app"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def tavus_settings(settings: Settings, standin: StandinTavus | None, *, public: bool) -> Settings:
    """``settings`` with the stand-in's key and base URL, and (``public``) a public URL that
    is the monitor's own local address."""
    port = free_port()
    return Settings(
        port=port,
        port_explicit=True,
        token=TEST_TOKEN,
        data_dir=settings.data_dir,
        no_tunnel=True,
        public_url=f"http://127.0.0.1:{port}" if public else None,
        tavus_api_key=standin.api_key if standin is not None else None,
        tavus_api_base_url=standin.tavus_base_url if standin is not None else "http://127.0.0.1:9",
    )


@contextlib.asynccontextmanager
async def dashboard(
    settings: Settings, behaviour: Behaviour | None = None
) -> AsyncIterator[tuple[Dashboard, StandinTavus]]:
    async with (
        running_standin(behaviour) as standin,
        running(tavus_settings(settings, standin, public=True)) as dash,
    ):
        yield dash, standin


def toasts(dash: Dashboard, title: str) -> list[str]:
    return [n.message for n in dash.app._notifications if n.title == title]


async def created(dash: Dashboard, name: str) -> str:
    """A conversation created the way the form creates it; its id."""
    calls = TavusCalls(dash.app.settings, dash.app.monitor)
    made = await calls.create(NewConversation(replica_id=REPLICA, name=name))
    return made.conversation_id


async def select(dash: Dashboard, table: DataTable[object], conversation_id: str) -> None:
    await wait_for(dash.pilot, lambda: conversation_id in rows(table), conversation_id)
    table.move_cursor(row=table.get_row_index(conversation_id))
    await dash.pilot.pause()


@pytest.fixture(autouse=True)
def never_the_real_tavus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(API_KEY_ENV, raising=False)


async def test_create_from_the_form_lists_it_waiting_at_once_then_joined(
    settings: Settings,
) -> None:
    async with dashboard(settings) as (dash, standin):
        _, table = await open_screen(dash)
        await dash.press("n")
        form = dash.app.screen
        assert isinstance(form, NewConversationScreen)
        callback_url = dash.app.monitor.callback_url
        assert callback_url in dash.text()  # the form says where the callbacks will go
        form.query_one("#new-replica", Input).value = REPLICA
        form.query_one("#new-name", Input).value = "Demo call"
        form.query_one("#new-max-duration", Input).value = "90"
        async with standin.held():  # the join waits: "at once" means before any callback
            await dash.press("enter")
            await wait_for(dash.pilot, lambda: form.made is not None, "Tavus's answer")
            [request] = standin.requests_to("POST", "/conversations")
            sent = request.json()
            assert sent["callback_url"] == callback_url
            assert sent["replica_id"] == REPLICA
            assert sent["conversation_name"] == "Demo call"
            assert sent["properties"] == {"max_call_duration": 90}
            assert form.made is not None
            conversation_id = form.made.conversation_id
            url = f"https://tavus.daily.co/{conversation_id}"
            assert url in dash.text()
            await dash.press("y")
            assert dash.app.clipboard == url
            await dash.press("escape")
            assert isinstance(dash.app.screen, ConversationsScreen)
            assert rows(table)[conversation_id][4] == WAITING
            assert not standin.deliveries
        await standin.delivered("system.replica_joined")
        await wait_for(
            dash.pilot, lambda: rows(table)[conversation_id][4].startswith("J✓ S…"), "the join"
        )
        assert rows(table)[conversation_id][3] == "in progress"


async def test_the_end_key_asks_then_ends_and_the_shutdown_shows(settings: Settings) -> None:
    async with dashboard(settings) as (dash, standin):
        conversation_id = await created(dash, "to end")
        await standin.delivered("system.replica_joined")
        screen, table = await open_screen(dash)
        await select(dash, table, conversation_id)
        await dash.press("e")
        assert isinstance(dash.app.screen, ConfirmScreen)
        assert f"End conversation {conversation_id}?" in dash.text()
        await dash.press("y")
        [ended] = standin.requests_to("POST", f"/conversations/{conversation_id}/end")
        assert ended.headers["x-api-key"] == standin.api_key
        shutdown = await standin.delivered("system.shutdown")
        assert shutdown.body["properties"]["shutdown_reason"] == "end_conversation_endpoint_hit"
        await wait_for(
            dash.pilot, lambda: rows(table)[conversation_id][3] == "ended via API", "the end"
        )
        assert rows(table)[conversation_id][4].startswith("J✓ S✓")
        [said] = toasts(dash, "Ended")
        assert said.startswith(f"Ended {conversation_id}")
        store = dash.app.monitor.store
        assert store is not None
        [record] = store.created("conversation")
        assert record.ended_at is not None
        # Nothing left to end: e says so rather than asking.
        await dash.press("e")
        assert dash.app.screen_stack[-1] is screen  # no question asked
        assert toasts(dash, "")[-1] == f"{conversation_id} has already ended: its shutdown is here."


async def test_n_then_no_on_the_question_ends_nothing(settings: Settings) -> None:
    async with dashboard(settings) as (dash, standin):
        conversation_id = await created(dash, "kept")
        _, table = await open_screen(dash)
        await select(dash, table, conversation_id)
        await dash.press("e", "n")
        assert isinstance(dash.app.screen, ConversationsScreen)
        assert not standin.requests_to("POST", f"/conversations/{conversation_id}/end")


async def test_recover_brings_back_what_the_callbacks_never_delivered(settings: Settings) -> None:
    async with dashboard(settings, Behaviour(withhold=True)) as (dash, standin):
        conversation_id = await created(dash, "withheld")
        screen, table = await open_screen(dash)
        await select(dash, table, conversation_id)
        assert rows(table)[conversation_id][4] == WAITING
        await dash.press("e", "y")
        await standin.until(
            lambda s: s.conversations[conversation_id].record["status"] == "ended",
            what="the call ended",
        )
        await wait_for(
            dash.pilot,
            lambda: "waiting for the shutdown" in rows(table)[conversation_id][4],
            "the end noted",
        )
        assert not standin.deliveries  # Tavus kept every callback to itself
        await dash.press("r")
        await wait_for(dash.pilot, lambda: bool(toasts(dash, "Recovered")), "the outcome")
        [said] = toasts(dash, "Recovered")
        assert said.startswith(f"{conversation_id}: 3 recovered (")
        for event_type in ("joined", "system.shutdown", "application.transcription_ready"):
            assert event_type in said
        await wait_for(
            dash.pilot,
            lambda: rows(table).get(conversation_id, [""] * 5)[4].startswith("J✓ S✓ T✓"),
            "the recovered lifecycle",
        )
        assert rows(table)[conversation_id][3] == "↺ ended via API"
        assert "recovered from Tavus's log" in detail(screen)
        # Complete now: r says so instead of asking Tavus again.
        asked = len(standin.requests_to("GET", f"/conversations/{conversation_id}"))
        await dash.press("r")
        assert "looks complete" in toasts(dash, "")[-1]
        assert len(standin.requests_to("GET", f"/conversations/{conversation_id}")) == asked


async def test_without_a_key_each_call_is_one_sentence_on_how_to_set_it(
    settings: Settings,
) -> None:
    async with running(tavus_settings(settings, None, public=True)) as dash:
        await open_screen(dash)
        await dash.press("n")
        assert isinstance(dash.app.screen, ConversationsScreen)
        [said] = toasts(dash, "Tavus API")
        assert said.startswith(f"No Tavus API key is set; set {API_KEY_ENV}")
        assert said.endswith(".")
        assert ". " not in said  # one sentence


async def test_a_local_only_callback_url_is_refused_before_the_form(settings: Settings) -> None:
    async with (
        running_standin() as standin,
        running(tavus_settings(settings, standin, public=False)) as dash,
    ):
        await open_screen(dash)
        await dash.press("n")
        assert isinstance(dash.app.screen, ConversationsScreen)
        [said] = toasts(dash, "Not created")
        assert said.startswith("This monitor has only a local callback URL")
        assert not standin.calls


async def test_a_url_change_that_strands_calls_is_a_long_toast_and_listed(
    settings: Settings,
) -> None:
    async with dashboard(settings) as (dash, _):
        store = dash.app.monitor.store
        assert store is not None
        await store.record_created(
            "conversation",
            "cstranded0001",
            name="left behind",
            callback_url=f"{OLD_URL}/webhook/{TEST_TOKEN}",
            response={"status": "active"},
        )
        new_url = dash.app.monitor.public_base_url
        dash.app.monitor._tunnel_changed(
            TunnelStatus(TunnelState.UP, public_url=new_url, previous_url=OLD_URL)
        )
        title = "Calls left on the old URL (! lists them)"
        await wait_for(dash.pilot, lambda: bool(toasts(dash, title)), "the stranded toast")
        [toast] = [n for n in dash.app._notifications if n.title == title]
        assert "cstranded0001 left behind" in toast.message
        assert "tavus-monitor recover" in toast.message
        assert toast.timeout >= 120
        await wait_for(
            dash.pilot,
            lambda: any(c.kind is ConcernKind.STRANDED for c in dash.app.concerns),
            "the concern",
        )
        await dash.press("exclamation_mark")
        assert isinstance(dash.app.screen, AttentionScreen)
        text = dash.text()
        assert "old URL" in text
        assert "cstranded0001" in text
        await dash.press("enter")
        screen = dash.app.screen
        assert isinstance(screen, ConversationsScreen)
        table = screen.query_one("#conversations-table", DataTable)
        await wait_for(dash.pilot, lambda: list(rows(table)) == ["cstranded0001"], "filtered")
