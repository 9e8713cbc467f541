"""The command line: trigger, history, the JSON-line format, terminal safety and settings."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import socket
import stat
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from headless_process import HeadlessProcess, tavus_monitor
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from resolve_settings import resolve

from tavus_monitor import jsonlines, samples
from tavus_monitor.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from tavus_monitor.cli.options import SETTINGS
from tavus_monitor.events import Event, Family
from tavus_monitor.jsonlines import event_line
from tavus_monitor.monitor import Monitor
from tavus_monitor.sanitize import printable
from tavus_monitor.settings import DEFAULT_MAX_BODY_MB, DEFAULT_PORT, Settings, SettingsError
from tavus_monitor.state import STATE_FILE, TOKEN_FILE, load_or_create_token
from tavus_monitor.store import Delivery, EventQuery, Store

SECRET = "SECRETtoken0123456789"
HOOK_URL = f"https://abc.ngrok-free.app/webhook/{SECRET}"

# Characters a terminal acts on that json.dumps(ensure_ascii=False) would leave raw.
TERMINAL_ACTIVE = "\x85\x9b\x9d\u061c\u200e\u200f\u2028\u2029\u202a\u202e\u2066\u2069"


def one_sentence(text: str) -> str:
    """``text`` must be exactly one line ending in a full stop; returns it stripped."""
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got {text!r}"
    assert lines[0].endswith("."), lines[0]
    return lines[0]


# ------------------------------------------------------------ trigger


def test_trigger_list_prints_every_sample_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trigger", "--list"]) == EXIT_OK
    assert capsys.readouterr().out.splitlines() == list(samples.ALL_SAMPLES)


def test_trigger_without_a_running_monitor_fails_with_one_sentence(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["trigger", "--all"]) == EXIT_FAILED
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no running monitor" in one_sentence(captured.err)


def test_trigger_ignores_a_stale_state_file(
    isolated_dirs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    isolated_dirs.mkdir(parents=True)
    (isolated_dirs / STATE_FILE).write_text(
        json.dumps(
            {
                "pid": 2**30,  # above any pid_max: no such process
                "local_url": "http://127.0.0.1:9/webhook/x",
                "callback_url": "http://127.0.0.1:9/webhook/x",
                "healthz_url": "http://127.0.0.1:9/healthz",
                "db": None,
                "started_at": 0,
            }
        )
    )
    assert main(["trigger"]) == EXIT_FAILED
    assert "no running monitor" in one_sentence(capsys.readouterr().err)


def test_trigger_unknown_sample_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trigger", "system.shutdown", "system.teleported"]) == EXIT_USAGE
    error = one_sentence(capsys.readouterr().err)
    assert "system.teleported" in error
    assert "--list" in error


async def test_trigger_all_sends_every_sample_to_the_running_monitor(
    monitor: Monitor, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await asyncio.to_thread(main, ["trigger", "--all"])

    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    answers = [line for line in captured.out.splitlines() if line.startswith("→")]
    assert len(answers) == len(samples.ALL_SAMPLES)
    assert all(" 200 " in line for line in answers)
    assert f"{len(samples.ALL_SAMPLES)} accepted, 0 failed" in captured.err

    assert monitor.store is not None
    events = monitor.store.page(EventQuery(limit=100))[::-1]
    assert [e.event_type for e in events] == list(samples.ALL_SAMPLES)
    assert all(e.family not in (Family.UNKNOWN, Family.MALFORMED) for e in events)
    conversation_ids = {e.conversation_id for e in events if e.conversation_id}
    assert len(conversation_ids) == 1
    by_type = {e.event_type: e for e in events}
    assert by_type["system.pal_joined"].duplicate_of == by_type["system.replica_joined"].id
    assert [e.duplicate_of for e in events if e.event_type != "system.pal_joined"] == [None] * (
        len(events) - 1
    )
    # The samples echo the URL they were sent to, token included, as Tavus does.
    payload = json.loads(by_type["system.shutdown"].body)
    assert payload["webhook_url"] == monitor.local_url


async def test_trigger_without_names_sends_one_conversation_in_order(
    monitor: Monitor, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await asyncio.to_thread(main, ["trigger"]) == EXIT_OK
    assert monitor.store is not None
    events = monitor.store.page(EventQuery(limit=100))[::-1]
    assert [e.event_type for e in events] == [name for name, _ in samples.CONVERSATION_SEQUENCE]
    assert len({e.conversation_id for e in events}) == 1


async def test_trigger_one_event_for_a_chosen_conversation(
    monitor: Monitor, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await asyncio.to_thread(main, ["trigger", "system.shutdown", "--conversation-id", "cX"])
    assert code == EXIT_OK
    assert monitor.store is not None
    stored = monitor.store.conversation("cX")
    assert [e.event_type for e in stored] == ["system.shutdown"]
    assert stored[0].summary.startswith("shutdown: participant left (timeout)")
    assert monitor.store.counts().events == 1


class Receiver:
    """A plain HTTP receiver on a loopback port that answers every POST the same way."""

    def __init__(self, status: int = 200) -> None:
        self.requests: list[tuple[str, str | None, bytes]] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(
                    (self.path, self.headers.get("Content-Type"), self.rfile.read(length))
                )
                answer = b'{"status": "success"}' if status == 200 else b'{"error": "boom"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/tavus"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,))

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def test_trigger_url_sends_to_any_receiver(capsys: pytest.CaptureFixture[str]) -> None:
    with Receiver() as receiver:
        code = main(
            ["trigger", "--url", receiver.url, "--conversation-id", "cURL", "system.shutdown",
             "replica.ready", "video.error"]
        )  # fmt: skip

    assert code == EXIT_OK
    assert [(path, kind) for path, kind, _ in receiver.requests] == [
        ("/hooks/tavus", "application/json")
    ] * 3
    shutdown, replica, video = (json.loads(body) for _, _, body in receiver.requests)
    assert shutdown["conversation_id"] == "cURL"
    assert shutdown["webhook_url"] == receiver.url
    assert shutdown["event_type"] == "system.shutdown"
    assert replica["status"] == "ready"
    assert video["status"] == "error"
    assert video["download_url"] is None
    assert "3 accepted, 0 failed" in capsys.readouterr().err


def test_trigger_reports_a_receiver_that_refuses(capsys: pytest.CaptureFixture[str]) -> None:
    with Receiver(status=500) as receiver:
        code = main(["trigger", "--url", receiver.url, "replica.ready", "replica.error"])
    captured = capsys.readouterr()
    assert code == EXIT_FAILED
    assert captured.out.count(" 500 ") == 2
    assert "0 accepted, 2 failed" in captured.err


def test_trigger_url_with_nothing_listening(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/webhook"

    assert main(["trigger", "--url", url, "replica.ready"]) == EXIT_FAILED
    error = capsys.readouterr().err.splitlines()[-1]
    assert "nothing is listening" in one_sentence(error)
    assert url in error


# ------------------------------------------------------------ history

HOSTILE_NAME = "evil\x1b[2J\x1b]52;c;SGVsbG8=\x07name\u202eabc"


def fill(data_dir: Path) -> list[Event]:
    """A stored history: one conversation, two jobs, a malformed body, a hostile name."""
    rendered = samples.render_many(
        [*(name for name, _ in samples.CONVERSATION_SEQUENCE), "replica.ready", "video.error"],
        conversation_id="cHIST",
        webhook_url=HOOK_URL,
    )
    bodies = [sample.body for sample in rendered]
    bodies.append(b'{"event_type": "system.shutdown", "properties": {')
    bodies.append(
        json.dumps(
            {
                "conversation_id": "cEVIL",
                "event_type": "conversation.objective.completed",
                "properties": {"objective_name": HOSTILE_NAME},
            }
        ).encode()
    )
    with Store(data_dir / "events.db") as store:
        return [store.submit(Delivery(body=body)).result(timeout=30) for body in bodies]


def table_ids(output: str) -> list[int]:
    lines = output.splitlines()
    assert lines[0].split() == ["ID", "RECEIVED", "FAMILY", "TYPE", "SUBJECT", "SUMMARY"]
    return [int(line.split()[0]) for line in lines[1:]]


def test_history_on_an_empty_data_dir_says_nothing_is_stored(
    isolated_dirs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history"]) == EXIT_OK
    captured = capsys.readouterr()
    assert captured.out == ""
    assert one_sentence(captured.err).startswith("No events stored yet")
    assert not (isolated_dirs / "events.db").exists()


def test_history_table_shows_newest_first(
    isolated_dirs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = fill(isolated_dirs)
    assert main(["history"]) == EXIT_OK
    output = capsys.readouterr().out

    assert table_ids(output) == [e.id for e in reversed(events)]
    lines = output.splitlines()
    shutdown = next(line for line in lines if " system.shutdown " in line and "cHIST" in line)
    assert "shutdown: participant left (timeout)" in shutdown
    pal = next(line for line in lines if "system.pal_joined" in line)
    assert f"[dup of #{events[0].id}]" in pal
    replica = next(line for line in lines if "replica.ready" in line)
    assert "training ready" in replica


def test_history_table_is_inert_on_a_terminal(
    isolated_dirs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(isolated_dirs)
    assert main(["history", "--conversation", "cEVIL"]) == EXIT_OK
    output = capsys.readouterr().out

    assert "\x1b" not in output
    assert "\x07" not in output
    assert "\u202e" not in output
    assert "evil␛[2J␛]52;c;SGVsbG8=␇name<U+202E>abc" in output


@pytest.mark.parametrize(
    ("args", "expected_types"),
    [
        (["--family", "replica"], ["replica.ready"]),
        (["--family", "malformed"], ["malformed"]),
        (["--type", "system.shutdown"], ["system.shutdown"]),
        (["--conversation", "cEVIL"], ["conversation.objective.completed"]),
        (["--search", "LISBON"], [
            "application.post_call_action_executed",
            "application.transcription_ready",
            "conversation.objective.completed",
        ]),
        (["--limit", "2"], ["conversation.objective.completed", "malformed"]),
        (["--family", "conversation", "--limit", "1"], ["application.post_call_action_executed"]),
        (["--family", "objective"], ["conversation.objective.completed"] * 2),
    ],
)  # fmt: skip
def test_history_filters(
    isolated_dirs: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    expected_types: list[str],
) -> None:
    fill(isolated_dirs)
    assert main(["history", "--format", "jsonl", *args]) == EXIT_OK
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["event_type"] for r in records] == expected_types


def test_history_conversation_filter_in_table_format(
    isolated_dirs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = fill(isolated_dirs)
    assert main(["history", "--conversation", "cHIST", "--limit", "100"]) == EXIT_OK
    expected = [e.id for e in reversed(events) if e.conversation_id == "cHIST"]
    assert table_ids(capsys.readouterr().out) == expected
    assert len(expected) == len(samples.CONVERSATION_SEQUENCE)


def test_history_jsonl_lines_are_redacted_json(
    isolated_dirs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = fill(isolated_dirs)
    assert main(["history", "--format", "jsonl", "--limit", "100"]) == EXIT_OK
    output = capsys.readouterr().out

    assert SECRET not in output
    records = [json.loads(line) for line in output.splitlines()]
    assert [r["id"] for r in records] == [e.id for e in reversed(events)]
    shutdown = next(r for r in records if r["event_type"] == "system.shutdown")
    assert shutdown["payload"]["webhook_url"] == "https://abc.ngrok-free.app/webhook/<token>"


def test_history_reads_another_database_with_db(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    events = fill(elsewhere)
    assert main(["history", "--db", str(elsewhere / "events.db"), "--limit", "3"]) == EXIT_OK
    assert table_ids(capsys.readouterr().out) == [e.id for e in reversed(events)][:3]


def test_history_data_dir_after_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    fill(elsewhere)
    assert main(["history", "--data-dir", str(elsewhere), "--family", "video"]) == EXIT_OK
    assert "video.error" in capsys.readouterr().out


def test_history_data_dir_before_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    fill(elsewhere)
    assert main(["--data-dir", str(elsewhere), "history", "--family", "video"]) == EXIT_OK
    assert "video.error" in capsys.readouterr().out


async def test_history_rejected_lists_refused_requests(
    isolated_dirs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Store(isolated_dirs / "events.db") as store:
        await store.reject(
            method="POST",
            path="/webhook/<token>",
            remote_addr="203.0.113.9",
            size=17,
            status=404,
            reason="wrong token",
        )
        await store.reject(
            method="GET", path="/", remote_addr="::1", size=None, status=404, reason="no such path"
        )
        await store.append(Delivery(body=b"{}"))

    assert await asyncio.to_thread(main, ["history", "--rejected"]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "RECEIVED", "STATUS", "METHOD", "PATH", "FROM", "BYTES",
                                "REASON"]  # fmt: skip
    assert len(lines) == 3
    assert lines[1].split()[0] == "2"
    assert lines[1].endswith("no such path")
    assert "/webhook/<token>" in lines[2]
    assert "203.0.113.9" in lines[2]
    assert lines[2].endswith("wrong token")


# ------------------------------------------------------------ the JSON-line format


def documented_keys() -> list[str]:
    """The keys of a JSON line as the format's documentation lists them, in order."""
    doc = jsonlines.__doc__ or ""
    block = doc.split("Keys::", 1)[1].strip().split("\n\n", 1)[0]
    return [re.sub(r"\(.*?\)", "", key).strip() for key in " ".join(block.split()).split(",")]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "events.db") as store:
        yield store


def stored(store: Store, body: bytes, received_at: float = 1_752_216_517.25) -> Event:
    return store.submit(Delivery(body=body, received_at=received_at)).result(timeout=30)


def test_event_line_keys_and_values(store: Store) -> None:
    body = samples.render_many(["system.shutdown"], conversation_id="cJ", webhook_url=HOOK_URL)[
        0
    ].body
    event = stored(store, body)
    line = event_line(event)

    assert "\n" not in line
    record = json.loads(line)
    assert list(record) == documented_keys()
    assert set(documented_keys()) >= {
        "id",
        "received_at",
        "family",
        "event_type",
        "conversation_id",
        "subject_id",
        "summary",
        "duplicate_of",
        "error",
        "size",
        "payload",
    }
    assert record["id"] == event.id
    assert record["received_at"] == "2025-07-11T06:48:37.250Z"
    assert datetime.fromisoformat(record["received_at"]) == datetime.fromtimestamp(
        1_752_216_517.25, UTC
    )
    assert record["family"] == "conversation"
    assert record["event_type"] == "system.shutdown"
    assert record["conversation_id"] == record["subject_id"] == "cJ"
    assert record["summary"] == event.summary
    assert record["duplicate_of"] is None
    assert record["error"] is None
    assert record["size"] == len(body)
    assert record["payload"]["properties"]["shutdown_reason"] == "participant_left_timeout reached"
    assert record["payload"]["webhook_url"] == "https://abc.ngrok-free.app/webhook/<token>"
    assert SECRET not in line


@pytest.mark.parametrize(
    "epoch",
    [0.0, 1e-7, 1.9999995, 1.9999994, 1_752_216_517.25, 1_752_216_517.9999996, 253_402_300_799.999],
)
def test_received_at_is_iso_utc_milliseconds_as_datetime_writes_it(epoch: float) -> None:
    """Same text as datetime's isoformat, also where microseconds round up into the next second."""
    expected = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
    assert jsonlines.iso_time(epoch) == expected.replace("+00:00", "Z")


def test_event_line_duplicate(store: Store) -> None:
    first = stored(store, b'{"replica_id": "r1", "status": "ready"}')
    again = stored(store, b'{"replica_id": "r1", "status": "ready"}')
    assert json.loads(event_line(again))["duplicate_of"] == first.id
    assert json.loads(event_line(first))["subject_id"] == "r1"


def test_event_line_malformed_text_body(store: Store) -> None:
    body = b'{"event_type": "system.shutdown", "properties": {'
    record = json.loads(event_line(stored(store, body)))

    assert record["family"] == "malformed"
    assert record["payload"] is None
    assert "truncated" in record["error"]
    assert record["body"] == body.decode()
    assert "body_base64" not in record


def test_event_line_malformed_binary_body(store: Store) -> None:
    body = b"\xff\xfe\x00binary\x9b"
    record = json.loads(event_line(stored(store, body)))

    assert record["payload"] is None
    assert "body" not in record
    assert base64.b64decode(record["body_base64"]) == body


def test_event_line_json_that_is_not_an_object(store: Store) -> None:
    record = json.loads(event_line(stored(store, b"[1, 2]")))
    assert record["family"] == "malformed"
    assert record["payload"] == [1, 2]
    assert "body" not in record


def test_event_line_escapes_terminal_controls_but_round_trips(store: Store) -> None:
    text = f"ok {TERMINAL_ACTIVE} esc\x1b[31m red \u00e9\U0001f642"
    payload = {
        "conversation_id": "c1",
        "event_type": "conversation.guardrail.triggered",
        "properties": {"guardrail": text, "reason": text, text: [text]},
    }
    line = event_line(stored(store, json.dumps(payload, ensure_ascii=False).encode()))

    for char in TERMINAL_ACTIVE + "\x1b":
        assert char not in line, f"raw U+{ord(char):04X} in the line"
    assert "\u00e9\U0001f642" in line  # ordinary non-ASCII stays readable
    record = json.loads(line)
    assert record["payload"] == payload
    assert record["payload"]["properties"][text] == [text]


def test_event_line_escapes_controls_in_raw_bodies(store: Store) -> None:
    body = "not json \u202e\x9b\x1b[2J".encode()
    line = event_line(stored(store, body))
    assert "\u202e" not in line
    assert "\x9b" not in line
    assert "\x1b" not in line
    assert json.loads(line)["body"] == body.decode()


def test_event_line_of_a_deeply_nested_payload(store: Store) -> None:
    depth = 900
    body = b'{"conversation_id": "c1", "x": ' + b"[" * depth + b"]" * depth + b"}"
    event = stored(store, body)
    record = json.loads(event_line(event))
    assert record["id"] == event.id


# ------------------------------------------------------------ sanitize.printable


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text, café 日本 🙂", "plain text, café 日本 🙂"),
        ("\x1b[2J", "␛[2J"),
        ("\x1b]52;c;SGVsbG8=\x07", "␛]52;c;SGVsbG8=␇"),
        ("\x00\x08\x7f", "␀␈␡"),
        ("a\rb", "a␍b"),
        ("a\nb", "a␊b"),
        ("tab\there", "tab\there"),
        ("\x9b31m", "<U+009B>31m"),
        ("\x85", "<U+0085>"),
        ("abc\u202edef", "abc<U+202E>def"),
        ("\u2066iso\u2069", "<U+2066>iso<U+2069>"),
        ("\u200f\u061c", "<U+200F><U+061C>"),
        ("line\u2028sep", "line<U+2028>sep"),
    ],
)
def test_printable_makes_active_characters_visible(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_printable_can_keep_newlines() -> None:
    assert printable("a\nb\x1b", keep_newlines=True) == "a\nb␛"


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.text(), st.booleans())
def test_printable_output_is_always_inert(text: str, keep_newlines: bool) -> None:
    shown = printable(text, keep_newlines=keep_newlines)
    allowed = {"\t", "\n"} if keep_newlines else {"\t"}
    for char in shown:
        code = ord(char)
        if char in allowed:
            continue
        assert code >= 0x20, repr(char)
        assert not 0x7F <= code <= 0x9F, repr(char)
        assert char not in "\u061c\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e"
        assert char not in "\u2066\u2067\u2068\u2069"


# ------------------------------------------------------------ settings


def write_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_when_nothing_is_set(tmp_path: Path) -> None:
    settings = resolve({}, env={})
    assert settings.port == DEFAULT_PORT
    assert settings.port_explicit is False
    assert settings.host == "127.0.0.1"
    assert settings.max_body_mb == DEFAULT_MAX_BODY_MB
    assert settings.token is None
    assert settings.no_token is False
    assert settings.ephemeral is False


def test_flags_beat_env_beat_config_file_beat_defaults(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.toml", 'port = 7001\nhost = "0.0.0.0"\nmax_body_mb = 3.5\nno_tunnel = true\n'
    )
    env = {"TAVUS_MONITOR_PORT": "7002", "TAVUS_MONITOR_HOST": "127.0.0.2"}

    from_config = resolve({}, env={}, config_file=config)
    from_env = resolve({}, env=env, config_file=config)
    from_flags = resolve({"port": 7003, "host": None}, env=env, config_file=config)

    assert (from_config.port, from_config.host, from_config.max_body_mb) == (7001, "0.0.0.0", 3.5)
    assert from_config.no_tunnel is True
    assert (from_env.port, from_env.host, from_env.max_body_mb) == (7002, "127.0.0.2", 3.5)
    assert (from_flags.port, from_flags.host) == (7003, "127.0.0.2")
    assert from_flags.port_explicit


def test_default_config_file_is_read_from_the_user_config_dir(tmp_path: Path) -> None:
    # isolated_dirs points XDG_CONFIG_HOME at tmp_path / "config".
    write_config(tmp_path / "config" / "tavus-monitor" / "config.toml", "port = 7100\n")
    assert resolve({}, env={}).port == 7100


def test_config_file_named_in_the_environment(tmp_path: Path) -> None:
    config = write_config(tmp_path / "elsewhere.toml", 'public_url = "https://x.example"\n')
    settings = resolve({}, env={"TAVUS_MONITOR_CONFIG": str(config)})
    assert settings.public_url == "https://x.example"
    assert settings.config_file == config


def test_env_booleans_and_paths(tmp_path: Path) -> None:
    settings = resolve(
        {},
        env={
            "TAVUS_MONITOR_EPHEMERAL": "yes",
            "TAVUS_MONITOR_HEADLESS": "1",
            "TAVUS_MONITOR_NO_TUNNEL": "off",
            "TAVUS_MONITOR_DATA_DIR": "~/tm-data",
        },
    )
    assert settings.ephemeral is True
    assert settings.db_path is None
    assert settings.headless is True
    assert settings.no_tunnel is False
    assert settings.data_dir == Path("~/tm-data").expanduser()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TAVUS_MONITOR_PORT": "abc"}, r"port in \$TAVUS_MONITOR_PORT must be a whole number"),
        ({"TAVUS_MONITOR_PORT": "70000"}, r"Port 70000 is out of range"),
        ({"TAVUS_MONITOR_PORT": "-1"}, r"out of range"),
        ({"TAVUS_MONITOR_MAX_BODY_MB": "0"}, r"max-body-mb"),
        ({"TAVUS_MONITOR_MAX_BODY_MB": "nan"}, r"max-body-mb"),
        ({"TAVUS_MONITOR_MAX_BODY_MB": "inf"}, r"max-body-mb"),
        ({"TAVUS_MONITOR_MAX_BODY_MB": "lots"}, r"must be a number"),
        ({"TAVUS_MONITOR_HEADLESS": "maybe"}, r"headless .* must be true or false"),
        ({"TAVUS_MONITOR_TOKEN": "short"}, r"token must be 8 to 200 characters"),
        ({"TAVUS_MONITOR_TOKEN": "has/slash/in/it"}, r"token must be"),
        ({"TAVUS_MONITOR_TOKEN": "abcdefgh12", "TAVUS_MONITOR_NO_TOKEN": "1"}, r"contradict"),
        ({"TAVUS_MONITOR_PUBLIC_URL": "ftp://x.example"}, r"not an http\(s\) URL"),
        ({"TAVUS_MONITOR_CONFIG": "/nonexistent/tavus.toml"}, r"does not exist"),
    ],
)
def test_bad_settings_are_one_sentence_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message) as caught:
        resolve({}, env=env)
    one_sentence(str(caught.value))


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("prot = 5000\n", r"unknown setting\(s\) prot"),
        ("port = 5000\ncolour = 'red'\n", r"unknown setting\(s\) colour"),
        ("port = \n", r"not valid TOML"),
        ("port = true\n", r"port in .* must be a whole number, not True"),
        ("port = 5000.7\n", r"port in .* must be a whole number"),
        ("max_body_mb = true\n", r"max_body_mb in .* must be a number"),
        ("port = 'eighty'\n", r"port in .*c\.toml must be a whole number"),
    ],
)
def test_bad_config_files_are_refused(tmp_path: Path, toml: str, message: str) -> None:
    config = write_config(tmp_path / "c.toml", toml)
    with pytest.raises(SettingsError, match=message):
        resolve({}, env={}, config_file=config)


def test_config_file_given_but_missing(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        resolve({}, env={}, config_file=tmp_path / "missing.toml")


def test_bad_setting_on_the_command_line_exits_2_with_the_sentence(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--port", "99999", "history"]) == EXIT_USAGE
    error = one_sentence(capsys.readouterr().err)
    assert error.startswith("tavus-monitor: Port 99999 is out of range")


def test_bad_setting_in_the_environment_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TAVUS_MONITOR_MAX_BODY_MB", "nan")
    assert main(["--headless", "--port", "0"]) == EXIT_USAGE
    assert "max-body-mb" in one_sentence(capsys.readouterr().err)


def test_sub_commands_check_only_the_settings_they_use(isolated_dirs: Path) -> None:
    """The server's settings are the dashboard's business: a value there that cannot work
    does not stop ``trigger`` or ``history`` (issue 10; it used to exit 2)."""
    config = write_config(isolated_dirs.parent / "c.toml", "port = 'eighty'\nmax_body_mb = 0\n")
    env = {
        **os.environ,
        "TAVUS_MONITOR_MAX_BODY_MB": "nan",
        "TAVUS_MONITOR_PORT": "abc",
        "TAVUS_MONITOR_HEADLESS": "maybe",
        "TAVUS_MONITOR_CONFIG": str(config),
    }
    listed = subprocess.run(
        tavus_monitor("trigger", "--list"), env=env, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == EXIT_OK, listed.stderr
    assert listed.stdout.splitlines() == list(samples.ALL_SAMPLES)
    shown = subprocess.run(
        tavus_monitor("history"), env=env, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == EXIT_OK, shown.stderr
    assert one_sentence(shown.stderr).startswith("No events stored yet")
    # The dashboard, which reads them, refuses the first one it reads.
    served = subprocess.run(
        tavus_monitor("--headless"), env=env, capture_output=True, text=True, timeout=60
    )
    assert served.returncode == EXIT_USAGE
    assert one_sentence(served.stderr).startswith("tavus-monitor: ")


def test_a_bad_config_file_still_stops_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unknown keys (a typo) and broken TOML are refused whichever command reads the file."""
    config = write_config(tmp_path / "c.toml", "port = \n")
    for argv in (["trigger", "--list"], ["history"], ["--headless"]):
        assert main(["--config", str(config), *argv]) == EXIT_USAGE
        assert "not valid TOML" in one_sentence(capsys.readouterr().err)


def test_bad_config_key_via_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "c.toml", "no_tunel = true\n")
    assert main(["trigger", "--list", "--config", str(config)]) == EXIT_USAGE
    assert "no_tunel" in one_sentence(capsys.readouterr().err)


def test_a_port_set_anywhere_is_explicit(tmp_path: Path) -> None:
    """A busy port the user chose is an error; only the default falls back to a free one."""
    config = write_config(tmp_path / "c.toml", "port = 7001\n")
    assert resolve({}, env={"TAVUS_MONITOR_PORT": "7002"}).port_explicit
    assert resolve({}, env={}, config_file=config).port_explicit
    assert not resolve({}, env={}).port_explicit


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--bogus"], "has no option --bogus"),
        (["--prot", "5000"], "did you mean --host or --port?"),
        (["histroy"], "No such command 'histroy'"),  # click 8.2+ adds "(did you mean …?)"
        (["history", "--format", "xml"], "'xml' is not one of 'table', 'jsonl'"),
        (["history", "--limit", "many"], "'many' is not a valid integer"),
        (["trigger", "--timeout"], "requires an argument"),
        (["--port", "abc"], "--port must be a whole number, not 'abc'"),
        (["--headless", "--max-body-mb", "0"], "--max-body-mb must be a number more than 0"),
        (["--token", "abcdefgh12", "--no-token"], "--token and --no-token contradict"),
        (["--db", "x.db", "--ephemeral"], "--db and --ephemeral contradict"),
    ],
)
def test_usage_errors_are_one_sentence_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    assert main(argv) == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    error = one_sentence(captured.err)
    assert error.startswith("tavus-monitor: ")
    assert expected in error


def test_help_lists_the_dashboard_options_and_the_commands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--help"]) == EXIT_OK
    shown = capsys.readouterr().out
    for setting in SETTINGS.values():
        assert setting.flag in shown
    for command in ("run", "trigger", "history"):
        assert f"  {command} " in shown


def test_run_is_the_default_command(isolated_dirs: Path) -> None:
    """``tavus-monitor run --headless`` is ``tavus-monitor --headless``; options of the group
    (``--data-dir``) may come before the command's name."""
    with HeadlessProcess(
        "--port", "0", "--no-tunnel",
        program=tavus_monitor("--data-dir", str(isolated_dirs / "here"), "run"),
    ) as named:  # fmt: skip
        named.wait_for_callback_url()
        assert named.stop() == 0
    assert (isolated_dirs / "here" / TOKEN_FILE).exists()


def test_trigger_data_dir_before_and_after_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Where the running monitor is comes from --data-dir wherever it is written; the one
    after the command wins."""
    (tmp_path / "stale").mkdir()
    (tmp_path / "stale" / STATE_FILE).write_text("{not json")
    for argv in (
        ["--data-dir", str(tmp_path / "stale"), "trigger"],
        ["trigger", "--data-dir", str(tmp_path / "stale")],
        ["--data-dir", str(tmp_path / "nowhere"), "trigger", "--data-dir", str(tmp_path / "stale")],
    ):
        assert main(argv) == EXIT_FAILED
        assert "no running monitor" in one_sentence(capsys.readouterr().err)


def readme_options() -> list[list[str]]:
    """The rows of the README's options table: flag, default, meaning (backticks removed)."""
    text = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = text.split("### Options\n", 1)[1].split("\n### ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("| ")]
    rows = [line.strip("|").split(" | ") for line in table[1:]]
    return [[cell.strip().replace("`", "") for cell in row] for row in rows]


def test_the_readme_options_table_is_the_declared_settings() -> None:
    """One row per declared setting, in order, with its metavar and (where it is a value)
    its default; then --config and --version."""
    rows = readme_options()
    declared = [
        f"{setting.flag} {setting.metavar}" if setting.metavar else setting.flag
        for setting in SETTINGS.values()
    ]
    assert [row[0] for row in rows] == [*declared, "--config FILE", "--version"]
    for (_, default, _), setting in zip(rows, SETTINGS.values(), strict=False):
        if setting.kind == "switch":
            assert default == "off", setting.name
        elif isinstance(setting.default, float):
            assert default == f"{setting.default:g}", setting.name
        elif isinstance(setting.default, int | str):
            assert default == str(setting.default), setting.name


def test_declared_defaults_are_the_settings_defaults() -> None:
    """Settings() (what tests and embedders build) and the command line agree on defaults."""
    built = Settings()
    for setting in SETTINGS.values():
        if not callable(setting.default):
            expected = bool(setting.default) if setting.kind == "switch" else setting.default
            assert getattr(built, setting.name) == expected, setting.name
    assert resolve({}, env={}).data_dir == built.data_dir


# ------------------------------------------------------------ the token file


def test_token_file_is_created_once_private_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "tokens"
    first = load_or_create_token(data_dir)
    path = data_dir / TOKEN_FILE

    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", first)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_token(data_dir) == first
    assert path.read_text().strip() == first


def test_a_damaged_token_file_is_replaced(tmp_path: Path) -> None:
    data_dir = tmp_path / "tokens"
    data_dir.mkdir()
    (data_dir / TOKEN_FILE).write_bytes(b"\xff\xfe")
    token = load_or_create_token(data_dir)
    assert len(token) >= 16
    assert load_or_create_token(data_dir) == token


def headless(*args: str) -> HeadlessProcess:
    """``tavus-monitor --headless`` on a free port, local only, in a real process."""
    return HeadlessProcess("--port", "0", "--no-tunnel", *args)


def test_callback_url_is_stable_across_runs(isolated_dirs: Path) -> None:
    with headless() as first:
        first_url = first.wait_for_callback_url()
        assert first.stop() == 0
    token_file = isolated_dirs / TOKEN_FILE
    token = token_file.read_text().strip()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert first_url.endswith(f"/webhook/{token}")
    assert not any(line.startswith("warning: Serving /webhook without") for line in first.err)

    with headless() as second:
        second_url = second.wait_for_callback_url()
        assert second.stop() == 0
    assert second_url.split("/webhook/")[1] == token
    assert token_file.read_text().strip() == token


def test_no_token_warns_and_serves_plain_webhook(isolated_dirs: Path) -> None:
    with headless("--no-token") as run:
        url = run.wait_for_callback_url()
        assert run.stop() == 0
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/webhook", url)
    warnings = [line for line in run.err if line.startswith("warning: ")]
    assert any("without a token" in line and "anyone" in line for line in warnings)
    assert not (isolated_dirs / TOKEN_FILE).exists()


@pytest.mark.parametrize("mode", [[], ["--headless"]], ids=["dashboard", "headless"])
def test_a_data_dir_that_cannot_be_made_is_one_sentence_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: list[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code = main([*mode, "--no-tunnel", "--port", "0", "--data-dir", str(blocker / "data")])
    assert code == EXIT_USAGE
    error = one_sentence(capsys.readouterr().err)
    assert str(blocker / "data") in error
    assert "--data-dir" in error
