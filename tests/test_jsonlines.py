"""JSON lines are strict JSON, always, and never too deep for jq (issue 9, item 8).

A delivery is valid JSON when it holds ``1e400`` or nests 200 levels, yet a
line that says ``Infinity`` is refused by ``JSON.parse``, Go and orjson, and a
line nested past jq 1.6's parser stack kills ``tavus-monitor --headless | jq``
for every event after it. Each line here is read by strict parsers and
measured against jq 1.6's stack; with jq installed, jq reads them too.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from headless_process import HeadlessProcess
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tavus_monitor.cli import EXIT_OK
from tavus_monitor.events import Event, classify
from tavus_monitor.jsonlines import event_line
from tavus_monitor.store import Delivery, Store

JQ_STACK_LIMIT = 256
"""jq 1.6's parser stack (MAX_PARSING_DEPTH in its jv_parse.c)."""
JQ = shutil.which("jq")
needs_jq = pytest.mark.skipif(JQ is None, reason="jq is not installed")
CONSOLE_SCRIPT = Path(sys.executable).parent / "tavus-monitor"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_record(line: str) -> dict[str, Any]:
    """``line`` read by two strict parsers (orjson; json refusing NaN and Infinity)."""
    assert "\n" not in line
    orjson.loads(line)
    record: dict[str, Any] = json.loads(line, parse_constant=_refuse_constant)
    return record


def jq_stack(line: str) -> int:
    """The most slots jq 1.6's parser stack needs to read ``line`` (jq stops above 256).

    jq 1.6 refuses to open ``[`` or ``{`` when 256 slots are in use; an open
    array holds one slot, an open object two (itself, and the key whose value
    is being read). Counted here from the text, independently of the code
    under test.
    """
    weights: list[int] = []
    used = deepest = 0
    in_string = escaped = False
    for char in line:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            deepest = max(deepest, used + 1)
            weights.append(1 if char == "[" else 2)
            used += weights[-1]
        elif char in "]}":
            used -= weights.pop()
    return deepest


def event_of(body: bytes, event_id: int = 1) -> Event:
    """The Event the writer makes of ``body`` (classified the same way, not stored)."""
    return Event.classified(
        classify(body), event_id=event_id, received_at=1_752_216_517.25, body=body
    )


def raw_body(record: dict[str, Any]) -> bytes:
    if "body" in record:
        return str(record["body"]).encode("utf-8")
    return base64.b64decode(record["body_base64"])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "events.db") as store:
        yield store


def stored(store: Store, body: bytes) -> Event:
    return store.submit(Delivery(body=body)).result(timeout=30)


def nested(levels: str, inner: bytes = b"1") -> bytes:
    """``inner`` in an array for each ``[`` and an object for each ``{`` of ``levels``."""
    opening = b"".join(b"[" if kind == "[" else b'{"k":' for kind in levels)
    closing = b"".join(b"]" if kind == "[" else b"}" for kind in reversed(levels))
    return opening + inner + closing


OUT_OF_RANGE = [
    b'{"v":1e400,"w":123456789012345678901234567890}',  # the example
    b'{"v":-1e400,"w":1.5}',
    b'{"a":[1E+999]}',
    b'{"n":1' + b"0" * 400 + b"}",  # an integer beyond a double
    b'{"n":-1' + b"0" * 330 + b".5}",
    b'{"conversation_id":"c1","event_type":"system.shutdown",'
    b'"properties":{"shutdown_reason":"done","duration":1e309}}',
]


# ------------------------------------------------------------ numbers


@pytest.mark.parametrize("body", OUT_OF_RANGE, ids=lambda body: body[:24].decode())
def test_a_number_beyond_a_double_is_given_as_body_text(store: Store, body: bytes) -> None:
    event = stored(store, body)
    line = event_line(event)

    assert "Infinity" not in line
    assert "NaN" not in line
    record = strict_record(line)
    assert record["payload"] is None
    assert record["body"] == body.decode()  # the raw body is the truth
    assert "beyond a double's range" in record["note"]
    assert list(record)[-3:] == ["payload", "body", "note"]
    # The event is still what it was: classified from the parsed body, not called malformed.
    assert record["family"] == str(event.family) != "malformed"
    assert record["error"] is None


def test_the_shutdown_with_an_infinite_duration_keeps_its_classification(
    store: Store,
) -> None:
    record = strict_record(event_line(stored(store, OUT_OF_RANGE[-1])))
    assert record["event_type"] == "system.shutdown"
    assert record["conversation_id"] == "c1"
    assert json.loads(record["body"])["properties"]["duration"] == float("inf")  # Python's reading


@pytest.mark.parametrize(
    "body",
    [
        b'{"w":123456789012345678901234567890}',
        b'{"w":-18446744073709551617,"big":1e308}',
        b'{"w":1' + b"0" * 300 + b"}",
    ],
    ids=lambda body: body[:24].decode(),
)
def test_numbers_a_double_holds_stay_numbers_digit_for_digit(store: Store, body: bytes) -> None:
    record = strict_record(event_line(stored(store, body)))
    assert record["payload"] == json.loads(body)
    assert "note" not in record
    assert "body" not in record


# ------------------------------------------------------------ nesting


@pytest.mark.parametrize(
    ("levels", "kept"),
    # Before "x" the line's object and key and the body's object take 4 of the 256 slots.
    [
        ("[" * 252, True),  # exactly 256 slots
        ("[" * 253, False),
        ("{" * 126, True),  # an object takes two slots: 4 + 2 * 125 + 1
        ("{" * 127, False),
        ("{" * 125 + "[", True),
        ("{" * 126 + "[", False),
        ("[{" * 84, True),  # three slots a pair: 4 + 3 * 83 + 1 + 2 (the last object's)
        ("[{" * 85, False),
        ("[" * 900, False),  # beyond what the standard library re-encodes
    ],
    ids=lambda value: (
        f"{value[0]}…{value[-1]}x{len(value)}"
        if isinstance(value, str)
        else "kept"
        if value
        else "text"
    ),
)
def test_a_payload_deeper_than_jq_reads_is_given_as_body_text(
    store: Store, levels: str, kept: bool
) -> None:
    body = b'{"conversation_id":"c1","x":' + nested(levels) + b"}"
    line = event_line(stored(store, body))

    record = strict_record(line)
    assert jq_stack(line) <= JQ_STACK_LIMIT
    if kept:
        assert record["payload"] == json.loads(body)
        assert "note" not in record
    else:
        assert record["payload"] is None
        assert record["body"] == body.decode()
        assert "deeper than jq 1.6 reads" in record["note"]
        assert record["conversation_id"] == "c1"


def test_a_long_transcript_is_written_in_full(store: Store) -> None:
    """The fast path (the depth check that costs no walk) on a realistic long body."""
    turns = [{"role": "user", "content": f"turn {n} " * 20} for n in range(400)]
    payload = {
        "conversation_id": "c1",
        "event_type": "application.transcription_ready",
        "properties": {"transcript": turns},
    }
    body = json.dumps(payload).encode()
    record = strict_record(event_line(stored(store, body)))
    assert record["payload"] == payload


# ------------------------------------------------------------ any body at all

NUMBER_TOKENS = [
    b"1e400",
    b"-1e400",
    b"1E+999",
    b"1e-400",
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"1" + b"0" * 400,
    b"123456789012345678901234567890",
    b"-0",
    b"1.7976931348623157e308",
    b"1.7976931348623159e308",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=()), max_size=12),  # lone surrogates too
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(st.characters(exclude_categories=()), max_size=6), children)
    ),
    max_leaves=16,
)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """Valid and invalid JSON of every awkward kind, or any bytes at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=64))
    value = draw(json_values)
    text = json.dumps(value, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    token = draw(st.sampled_from([b"", *NUMBER_TOKENS]))
    if token:
        text = b'{"v":' + token + b',"w":' + text + b"}"
    depth = draw(
        st.integers(0, 6)
        | st.integers(80, 300)
        | st.sampled_from([126, 127, 128, 252, 253, 254, 255, 256, 1100])
    )
    pattern = draw(st.text(st.sampled_from("[{"), min_size=1, max_size=3))
    return nested((pattern * depth)[:depth], text)


@hypothesis_settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_every_line_is_strict_json_that_jq_can_read(body: bytes) -> None:
    event = event_of(body)
    line = event_line(event)

    record = strict_record(line)
    assert jq_stack(line) <= JQ_STACK_LIMIT
    assert record["id"] == 1
    if record["payload"] is None:
        assert raw_body(record) == body  # nothing is lost: the bytes are there
        assert ("note" in record) == (event.payload is not None)
    else:
        assert record["payload"] == event.payload
        assert "note" not in record


# ------------------------------------------------------------ through jq itself

JQ_BODIES = [
    *OUT_OF_RANGE,
    b'{"conversation_id":"c1","x":' + nested("[" * 254) + b"}",
    b'{"conversation_id":"c1","x":' + nested("[" * 255) + b"}",
    b'{"conversation_id":"c1","x":' + nested("{" * 127) + b"}",
    b'{"conversation_id":"c1","x":' + nested("{" * 128) + b"}",
    b'{"conversation_id":"c1","x":' + nested("[" * 2000) + b"}",
    b'{"v":NaN}',
    b'{"s":"\\ud800"}',
    b"\xff\xfe not utf-8",
]


def jq_reads(text: str) -> subprocess.CompletedProcess[str]:
    assert JQ is not None
    return subprocess.run(
        [JQ, "-c", "."], input=text, capture_output=True, text=True, timeout=30, check=False
    )


def jq_version() -> str:
    assert JQ is not None
    done = subprocess.run([JQ, "--version"], capture_output=True, text=True, timeout=30)
    return done.stdout.strip()


@needs_jq
def test_jq_reads_every_line(store: Store) -> None:
    lines = [event_line(stored(store, body)) for body in JQ_BODIES]
    done = jq_reads("\n".join(lines) + "\n")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == len(lines)


@needs_jq
def test_the_depth_limit_is_jqs_own(store: Store) -> None:
    """At the limit jq reads the payload itself; one level more, re-nested, it would stop."""
    if jq_version() != "jq-1.6":
        pytest.skip(f"the limit is jq 1.6's; this is {jq_version()}")
    for deepest_kept, one_more in (("[" * 254, "[" * 255), ("{" * 127, "{" * 128)):
        kept = event_line(stored(store, nested(deepest_kept)))
        assert json.loads(kept)["payload"] is not None
        assert jq_reads(kept).returncode == 0
        too_deep = stored(store, nested(one_more))
        assert json.loads(event_line(too_deep))["payload"] is None
        as_before = json.dumps({"id": too_deep.id, "payload": too_deep.payload})
        assert "Exceeds depth limit" in jq_reads(as_before).stderr


# ------------------------------------------------------------ headless and history


def test_headless_stdout_and_history_jsonl_are_strict_json(
    isolated_dirs: Path, tmp_path: Path
) -> None:
    """What ``tavus-monitor --headless | jq`` and ``history --format jsonl | jq`` read."""
    with HeadlessProcess("--port", "0", "--no-tunnel") as monitor:
        url = monitor.wait_for_callback_url()
        with httpx.Client(timeout=30) as client:
            for body in JQ_BODIES:
                assert client.post(url, content=body).status_code == 200
        for number in range(1, len(JQ_BODIES) + 1):
            monitor.wait_for("out", lambda line: line.startswith("{"), f"JSON line {number}")
        assert monitor.stop() == 0
    history = subprocess.run(
        [str(CONSOLE_SCRIPT), "history", "--format", "jsonl", "--limit", "100"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert history.returncode == EXIT_OK, history.stderr

    for output in (monitor.stdout, history.stdout):
        lines = output.splitlines()
        assert len(lines) == len(JQ_BODIES)
        for line in lines:
            strict_record(line)
            assert jq_stack(line) <= JQ_STACK_LIMIT
        if JQ is not None:
            done = jq_reads(output)
            assert done.returncode == 0, done.stderr
    assert sorted(history.stdout.splitlines()) == sorted(monitor.stdout.splitlines())
