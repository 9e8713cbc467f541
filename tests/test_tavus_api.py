"""Calling Tavus: ``conversation``/``replica``/``video`` commands against a stand-in Tavus.

Real parts throughout: the stand-in API (``standin_tavus.py``) and a real monitor serve on
loopback in the test's loop, and the installed ``tavus-monitor`` runs as a subprocess (in a
thread, so the loop keeps serving both while it runs). The monitor is given ``--public-url``
set to its own local address, so the "public" callback URL reaches it over loopback, as a
tunnel would.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from conftest import TEST_TOKEN
from headless_process import tavus_monitor
from standin_tavus import Behaviour, StandinTavus, running_standin

from tavus_monitor import control
from tavus_monitor.monitor import Monitor
from tavus_monitor.settings import Settings
from tavus_monitor.store import EventQuery, ReadOnlyStore
from tavus_monitor.tavus_api import TavusApi, TavusApiError

CLI_DEADLINE = 60.0


@pytest.fixture(autouse=True)
def never_the_real_tavus(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key or base URL in the developer's environment must never reach a test (each test
    points the commands at its stand-in)."""
    monkeypatch.delenv("TAVUS_API_KEY", raising=False)
    monkeypatch.setenv("TAVUS_PUBLIC_API_BASE_URL", "http://127.0.0.1:9/v2")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def public_monitor(tmp_path: Path) -> AsyncIterator[Monitor]:
    """A monitor whose public URL (``--public-url``) is its own loopback address."""
    port = free_port()
    running = Monitor(
        Settings(
            port=port,
            port_explicit=True,
            token=TEST_TOKEN,
            data_dir=tmp_path / "data",
            public_url=f"http://127.0.0.1:{port}",
        )
    )
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def standin() -> AsyncIterator[StandinTavus]:
    async with running_standin() as running:
        yield running


class Ran:
    def __init__(self, done: subprocess.CompletedProcess[str], secret: str) -> None:
        self.code = done.returncode
        self.out = done.stdout
        self.err = done.stderr
        # The key never appears in anything the command prints.
        assert secret not in self.out
        assert secret not in self.err

    def sentence(self) -> str:
        """stderr is exactly one line, a sentence."""
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, self.err
        assert lines[0].endswith("."), lines[0]
        return lines[0]


async def run_cli(
    standin: StandinTavus, *args: str, api_key: str | None = None, cwd: Path | None = None
) -> Ran:
    """The installed ``tavus-monitor *args`` pointed at ``standin``, in a thread."""
    env = {**os.environ, **standin.env(api_key=api_key)}
    done = await asyncio.to_thread(
        subprocess.run,
        tavus_monitor(*args),
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=CLI_DEADLINE,
        check=False,
    )
    return Ran(done, api_key or standin.api_key)


def created_id(ran: Ran) -> str:
    fields = dict(line.split(None, 1) for line in ran.out.splitlines())
    return fields["conversation_id"]


# ------------------------------------------------------------ create


async def test_create_gives_tavus_the_monitors_callback_url_and_the_join_is_stored(
    public_monitor: Monitor, standin: StandinTavus, tmp_path: Path
) -> None:
    ran = await run_cli(
        standin,
        "conversation", "create", "--replica", "r90bbd427f71", "--persona", "pcb7a34da5fe",
        "--name", "Demo call", "--max-call-duration", "60", "--property", "language=english",
        "--property", "enable_closed_captions=true", "--property", 'languages=["en","pt"]',
        cwd=tmp_path,
    )  # fmt: skip
    assert ran.code == 0, ran.err
    conversation_id = created_id(ran)
    assert f"https://tavus.daily.co/{conversation_id}" in ran.out

    [request] = standin.requests_to("POST", "/conversations")
    assert request.headers["x-api-key"] == standin.api_key
    sent = request.json()
    assert sent["callback_url"] == public_monitor.callback_url
    assert sent["replica_id"] == "r90bbd427f71"
    assert sent["persona_id"] == "pcb7a34da5fe"
    assert sent["conversation_name"] == "Demo call"
    assert sent["properties"] == {
        "language": "english",
        "enable_closed_captions": True,
        "languages": ["en", "pt"],
        "max_call_duration": 60,
    }
    assert "test_mode" not in sent

    joined = await standin.delivered("system.replica_joined")
    assert joined.status == 200  # answered only once committed to the monitor's store
    assert public_monitor.store is not None
    stored = public_monitor.store.page(EventQuery(conversation_id=conversation_id))
    assert "system.replica_joined" in {event.event_type for event in stored}

    [record] = public_monitor.store.created("conversation")
    assert record.resource_id == conversation_id
    assert record.callback_url == public_monitor.callback_url
    assert record.name == "Demo call"
    assert record.response["conversation_url"] == f"https://tavus.daily.co/{conversation_id}"


async def test_create_json_prints_taviss_answer(
    public_monitor: Monitor, standin: StandinTavus
) -> None:
    ran = await run_cli(
        standin, "conversation", "create", "--replica", "r1", "--test-mode", "--json"
    )
    assert ran.code == 0, ran.err
    answer = json.loads(ran.out)
    assert answer["status"] == "ended"  # test mode: created ended, nothing joins
    assert answer["callback_url"] == public_monitor.callback_url
    assert standin.requests_to("POST", "/conversations")[0].json()["test_mode"] is True


async def test_a_refused_key_is_one_sentence_naming_where_the_key_goes(
    public_monitor: Monitor, standin: StandinTavus
) -> None:
    wrong = "wrong-key-9f8e7d6c5b4a"
    ran = await run_cli(standin, "conversation", "create", "--replica", "r1", api_key=wrong)
    assert ran.code == 1
    sentence = ran.sentence()
    assert "401" in sentence
    assert "Invalid access token" in sentence
    assert "TAVUS_API_KEY" in sentence
    assert ran.out == ""


async def test_no_key_at_all_is_a_usage_error(standin: StandinTavus) -> None:
    ran = await run_cli(standin, "conversation", "list", api_key="")
    assert ran.code == 2
    assert "TAVUS_API_KEY" in ran.sentence()
    assert standin.calls == []


async def test_the_concurrency_refusal_shows_taviss_own_words(
    public_monitor: Monitor,
) -> None:
    async with running_standin(Behaviour(max_concurrent=0)) as standin:
        ran = await run_cli(standin, "conversation", "create", "--replica", "r1")
    assert ran.code == 1
    sentence = ran.sentence()
    assert "400" in sentence
    assert "User has reached maximum concurrent conversations" in sentence
    assert public_monitor.store is not None
    assert public_monitor.store.created() == []


async def test_a_local_only_monitor_is_refused_unless_allow_local(
    monitor: Monitor, standin: StandinTavus
) -> None:
    assert monitor.local_only
    refused = await run_cli(standin, "conversation", "create", "--replica", "r1")
    assert refused.code == 1
    sentence = refused.sentence()
    assert "Tavus cannot reach" in sentence
    assert monitor.local_url in sentence
    assert "--allow-local" in sentence
    assert standin.calls == []  # refused before anything was created

    allowed = await run_cli(standin, "conversation", "create", "--replica", "r1", "--allow-local")
    assert allowed.code == 0, allowed.err
    assert standin.requests_to("POST", "/conversations")[0].json()["callback_url"] == (
        monitor.local_url
    )
    assert (await standin.delivered("system.pal_joined")).status == 200


async def test_without_a_monitor_it_says_to_start_one_or_pass_a_callback_url(
    isolated_dirs: Path,
) -> None:
    async with running_standin(Behaviour(join_events=())) as standin:
        ran = await run_cli(standin, "conversation", "create", "--replica", "r1")
        assert ran.code == 1
        sentence = ran.sentence()
        assert "start `tavus-monitor`" in sentence
        assert "--callback-url" in sentence

        local = await run_cli(
            standin, "conversation", "create", "--replica", "r1",
            "--callback-url", "http://localhost:3000/hook",
        )  # fmt: skip
        assert local.code == 1
        assert "Tavus cannot reach http://localhost:3000/hook" in local.sentence()

        given = "https://hooks.example.invalid/tavus"  # never called: no join is sent
        chosen = await run_cli(
            standin, "conversation", "create", "--replica", "r1", "--callback-url", given
        )
        assert chosen.code == 0, chosen.err
        assert standin.requests_to("POST", "/conversations")[0].json()["callback_url"] == given
    # With no monitor running, the command kept the record in the store itself.
    with ReadOnlyStore(isolated_dirs / "events.db") as store:
        [record] = store.created("conversation")
    assert record.resource_id == created_id(chosen)
    assert record.callback_url == given


# ------------------------------------------------------------ list, get, end


async def test_list_is_an_aligned_table_following_taviss_pages(
    public_monitor: Monitor,
) -> None:
    async with running_standin(Behaviour(join_events=())) as standin:
        async with TavusApi(standin.api_key, standin.tavus_base_url) as api:
            mine = await api.create_conversation(
                replica_id="r1", conversation_name="mine", callback_url=public_monitor.callback_url
            )
            await api.create_conversation(
                replica_id="r1", conversation_name="theirs", callback_url="https://x.example/h"
            )
            await api.create_conversation(replica_id="r1", test_mode=True, conversation_name="t")

        first = await run_cli(standin, "conversation", "list", "--limit", "2")
        assert first.code == 0, first.err
        lines = first.out.splitlines()
        assert lines[0].split() == ["ID", "STATUS", "CREATED", "CALLBACKS", "NAME"]
        assert len(lines) == 3
        for column in ("STATUS", "CREATED", "CALLBACKS", "NAME"):  # each starts at one offset
            at = lines[0].index(column)
            assert all(line[at - 2 : at] == "  " and line[at] != " " for line in lines), column
        assert "elsewhere (x.example)" in lines[2] or "elsewhere (x.example)" in lines[1]
        assert "Page 1 of 2 (3 conversations)" in first.sentence()
        assert standin.requests_to("GET", "/conversations")[0].query == {"limit": "2", "page": "1"}

        every = await run_cli(standin, "conversation", "list", "--all")
        assert len(every.out.splitlines()) == 4
        row = next(line for line in every.out.splitlines() if mine["conversation_id"] in line)
        assert "this monitor" in row

        ended = await run_cli(standin, "conversation", "list", "--status", "ended", "--json")
        listed = json.loads(ended.out)
        assert listed["total_count"] == 1
        assert [r["conversation_name"] for r in listed["data"]] == ["t"]


async def test_end_brings_the_shutdown_callback_and_get_verbose_shows_it(
    public_monitor: Monitor, standin: StandinTavus
) -> None:
    made = await run_cli(standin, "conversation", "create", "--replica", "r1")
    conversation_id = created_id(made)
    ended = await run_cli(standin, "conversation", "end", conversation_id)
    assert ended.code == 0, ended.err
    assert "end_conversation_endpoint_hit" in ended.out
    [request] = standin.requests_to("POST", f"/conversations/{conversation_id}/end")
    assert request.body == b""

    shutdown = await standin.delivered("system.shutdown")
    assert shutdown.status == 200
    assert shutdown.body["properties"]["shutdown_reason"] == "end_conversation_endpoint_hit"
    await standin.delivered("application.transcription_ready")
    assert public_monitor.store is not None
    stored = public_monitor.store.page(
        EventQuery(conversation_id=conversation_id, event_type="system.shutdown")
    )
    assert "end_conversation_endpoint_hit" in stored[0].summary
    [record] = public_monitor.store.created("conversation")
    assert record.ended_at is not None

    shown = await run_cli(standin, "conversation", "get", conversation_id, "--verbose")
    assert shown.code == 0, shown.err
    assert "system.shutdown  end_conversation_endpoint_hit" in shown.out
    assert "application.transcription_ready  3 turns" in shown.out

    again = await run_cli(standin, "conversation", "end", conversation_id)
    assert again.code == 0, again.err


async def test_ending_an_ended_call_that_tavus_refuses_says_it_had_ended(
    public_monitor: Monitor,
) -> None:
    async with running_standin(Behaviour(end_ended="invalid", join_events=())) as standin:
        made = await run_cli(standin, "conversation", "create", "--replica", "r1", "--test-mode")
        conversation_id = created_id(made)
        ran = await run_cli(standin, "conversation", "end", conversation_id)
    assert ran.code == 0, ran.err
    assert "had already ended" in ran.out
    assert "Invalid conversation_id" in ran.out


async def test_an_unknown_id_names_the_id(standin: StandinTavus) -> None:
    ran = await run_cli(standin, "conversation", "get", "cnope")
    assert ran.code == 1
    sentence = ran.sentence()
    assert "conversation cnope" in sentence
    assert "Invalid conversation_id" in sentence


async def test_tavus_out_of_reach_is_named(standin: StandinTavus) -> None:
    port = free_port()  # nothing listens there
    env = {
        **os.environ,
        **standin.env(),
        "TAVUS_PUBLIC_API_BASE_URL": f"http://127.0.0.1:{port}/v2",
    }
    done = await asyncio.to_thread(
        subprocess.run, tavus_monitor("conversation", "list"), capture_output=True, text=True,
        env=env, timeout=CLI_DEADLINE, check=False,
    )  # fmt: skip
    ran = Ran(done, standin.api_key)
    assert ran.code == 1
    assert f"Cannot reach 127.0.0.1:{port}" in ran.sentence()


# ------------------------------------------------------------ replicas and videos


async def test_replica_and_video_callbacks_come_to_the_monitor(
    public_monitor: Monitor, standin: StandinTavus
) -> None:
    replica = await run_cli(
        standin, "replica", "create", "--train-video-url", "https://example.invalid/t.mp4",
        "--name", "Rio",
    )  # fmt: skip
    assert replica.code == 0, replica.err
    replica_id = created_id_of(replica, "replica_id")
    assert standin.requests_to("POST", "/replicas")[0].json() == {
        "train_video_url": "https://example.invalid/t.mp4",
        "replica_name": "Rio",
        "callback_url": public_monitor.callback_url,
    }
    await standin.finish_replica(replica_id)

    video = await run_cli(
        standin, "video", "create", "--replica", replica_id, "--script", "Hello there", "--json"
    )
    assert video.code == 0, video.err
    video_id = json.loads(video.out)["video_id"]
    await standin.finish_video(video_id)

    assert [d.status for d in standin.deliveries] == [200, 200]
    assert public_monitor.store is not None
    events = public_monitor.store.page(EventQuery())
    assert {(e.family, e.subject_id) for e in events} >= {
        ("replica", replica_id),
        ("video", video_id),
    }
    kinds = {(c.kind, c.resource_id) for c in public_monitor.store.created()}
    assert kinds == {("replica", replica_id), ("video", video_id)}


def created_id_of(ran: Ran, key: str) -> str:
    return dict(line.split(None, 1) for line in ran.out.splitlines())[key]


# ------------------------------------------------------------ the client and the stand-in


async def test_withheld_callbacks_are_still_in_the_verbose_get() -> None:
    """What ``recover`` relies on: Tavus keeps the event log whether delivery worked or not."""
    async with (
        running_standin(Behaviour(withhold=True)) as standin,
        TavusApi(standin.api_key, standin.tavus_base_url) as api,
    ):
        made = await api.create_conversation(replica_id="r1", callback_url="http://127.0.0.1:9/x")
        conversation_id = made["conversation_id"]
        await standin.until(
            lambda s: len(s.conversations[conversation_id].events) == 2, what="the joins"
        )
        await api.end_conversation(conversation_id)
        await standin.until(
            lambda s: len(s.conversations[conversation_id].events) == 4, what="the end"
        )
        got = await api.get_conversation(conversation_id, verbose=True)
        plain = await api.get_conversation(conversation_id)
    assert standin.deliveries == []
    assert "events" not in plain
    assert got["status"] == "ended"
    assert [e["event_type"] for e in got["events"]] == [
        "system.pal_joined",
        "system.replica_joined",
        "system.shutdown",
        "application.transcription_ready",
    ]
    assert "properties" not in got["events"][0]
    assert got["events"][2]["properties"] == {"reason": "end_conversation_endpoint_hit"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", got["events"][2]["timestamp"])


async def test_the_client_reads_taviss_error_and_message_bodies() -> None:
    async with running_standin() as standin:
        async with TavusApi(standin.api_key, standin.tavus_base_url) as api:
            with pytest.raises(TavusApiError) as missing:
                await api.create_conversation(conversation_name="no replica")
            with pytest.raises(TavusApiError) as replica:
                await api.create_replica(replica_name="no video")
            page = await api.list_conversations()
        async with TavusApi("not-the-key", standin.tavus_base_url) as wrong:
            with pytest.raises(TavusApiError) as refused:
                await wrong.get_video("v1")
    assert missing.value.status == 400
    assert "Each request must have a replica_id" in str(missing.value)
    assert str(replica.value) == (
        "Tavus refused to create a replica (400: Either train_video_url or train_image_url "
        "must be provided)."
    )
    assert refused.value.status == 401
    assert refused.value.tavus_message == "Invalid access token"
    assert "not-the-key" not in str(refused.value)
    assert (page.data, page.total_count, page.page, page.limit) == ([], 0, 1, 10)
    assert standin.requests_to("GET", "/conversations")[0].query == {}


async def test_the_control_routes_need_the_monitors_key(public_monitor: Monitor) -> None:
    record = {"kind": "conversation", "resource_id": "c1", "response": {}}
    async with httpx.AsyncClient(base_url=public_monitor.base_url, timeout=10) as http:
        without = await http.post(control.CREATED_PATH, json=record)
        wrong = await http.post(
            control.CREATED_PATH, json=record, headers={control.KEY_HEADER: "guess"}
        )
        right = await http.post(
            control.CREATED_PATH,
            json=record,
            headers={control.KEY_HEADER: public_monitor.control_key},
        )
    assert (without.status_code, wrong.status_code, right.status_code) == (403, 403, 200)
    assert public_monitor.store is not None
    assert [c.resource_id for c in public_monitor.store.created()] == ["c1"]
