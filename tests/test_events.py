"""classify() and the payload helpers: every callback family and quirk in tavus-callbacks.md."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pytest
from conftest import DOCUMENTED_EVENT_TYPES, FIXTURES, PROPERTY_KEYS, fixture_bytes, fixture_json
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tavus_monitor import callbacks as cb
from tavus_monitor import samples
from tavus_monitor.events import SUMMARY_LIMIT, Classification, Family, classify, one_line

ENVELOPE: dict[str, Any] = {
    "conversation_id": "c123456",
    "webhook_url": "https://example.ngrok-free.app/webhook/s3cret-token",
    "message_type": "application",
    "timestamp": "2025-07-11T06:45:47.472000Z",
}


def conversation_body(event_type: str, properties: Any = None, **extra: Any) -> bytes:
    """A conversation callback as Tavus sends it (envelope + event_type + properties)."""
    payload: dict[str, Any] = {**ENVELOPE, "event_type": event_type, **extra}
    if properties is not None:
        payload["properties"] = properties
    return json.dumps(payload).encode()


def classify_json(payload: Any) -> Classification:
    return classify(json.dumps(payload).encode(), [("Content-Type", "application/json")])


def sample_bytes(name: str) -> bytes:
    return resources.files(samples).joinpath(f"{name}.json").read_bytes()


def assert_one_line(summary: str) -> None:
    assert summary.strip() == summary
    assert len(summary.splitlines()) <= 1, f"summary spans lines: {summary!r}"
    assert len(summary) <= SUMMARY_LIMIT


ALL_BODIES: list[tuple[str, bytes]] = [
    *((f"sample {name}", sample_bytes(name)) for name in samples.ALL_SAMPLES),
    *((f"fixture {path.name}", path.read_bytes()) for path in sorted(FIXTURES.glob("*.json"))),
]


# ------------------------------------------------------------ samples and fixtures


@pytest.mark.parametrize("name", samples.ALL_SAMPLES)
def test_every_shipped_sample_classifies_as_its_name(name: str) -> None:
    """Each sample is named after the event type the monitor must show for it."""
    result = classify(sample_bytes(name))

    assert result.event_type == name
    assert result.error is None
    assert result.family not in (Family.UNKNOWN, Family.MALFORMED)
    assert_one_line(result.summary)


@pytest.mark.parametrize(
    ("fixture", "family", "event_type", "subject"),
    [
        ("conversation.system.replica_joined.json", "conversation", "system.replica_joined", "c"),
        ("conversation.system.shutdown.json", "conversation", "system.shutdown", "c"),
        (
            "conversation.application.transcription_ready.json",
            "conversation",
            "application.transcription_ready",
            "c",
        ),
        (
            "conversation.application.recording_ready.json",
            "conversation",
            "application.recording_ready",
            "c",
        ),
        (
            "conversation.application.perception_analysis.json",
            "conversation",
            "application.perception_analysis",
            "c",
        ),
        ("replica.ready.json", "replica", "replica.ready", "r5a1d2c3e4f"),
        ("replica.error.json", "replica", "replica.error", "r0b9c8d7e6f"),
        ("video.ready.json", "video", "video.ready", "1e30440cf9"),
        ("video.error.json", "video", "video.error", "c9b85a6d36"),
    ],
)
def test_shared_fixtures_classify(fixture: str, family: str, event_type: str, subject: str) -> None:
    result = classify(fixture_bytes(fixture), [("Content-Type", "application/json")])

    assert result.family == family
    assert result.event_type == event_type
    if subject == "c":
        assert result.conversation_id == "c7f3a91b2d04"
        assert result.subject_id == "c7f3a91b2d04"
    else:
        assert result.conversation_id is None
        assert result.subject_id == subject


@pytest.mark.parametrize(("label", "body"), ALL_BODIES, ids=[label for label, _ in ALL_BODIES])
def test_summaries_of_real_bodies_are_one_short_line(label: str, body: bytes) -> None:
    assert_one_line(classify(body).summary)


# ------------------------------------------------------------ telling families apart


def test_event_type_wins_over_video_and_replica_fields() -> None:
    result = classify_json(
        {**ENVELOPE, "event_type": "system.shutdown", "video_id": "v1", "status": "ready"}
    )
    assert result.family is Family.CONVERSATION
    assert result.event_type == "system.shutdown"


def test_video_id_wins_over_replica_id_and_status() -> None:
    body = fixture_json("video.ready.json")
    assert "replica_id" in body
    assert "status" in body
    result = classify_json(body)
    assert result.family is Family.VIDEO
    assert result.subject_id == "1e30440cf9"


def test_replica_needs_both_replica_id_and_status() -> None:
    assert classify_json({"replica_id": "r1", "status": "ready"}).family is Family.REPLICA
    assert classify_json({"replica_id": "r1"}).family is Family.UNKNOWN
    assert classify_json({"status": "ready"}).family is Family.UNKNOWN


@pytest.mark.parametrize(
    ("event_type", "family"),
    [
        ("conversation.objective.completed", Family.OBJECTIVE),
        ("conversation.objective.activated", Family.OBJECTIVE),
        ("conversation.objective.pending", Family.OBJECTIVE),
        ("conversation.guardrail.triggered", Family.GUARDRAIL),
        ("conversation.guardrails.violation", Family.GUARDRAIL),
        ("system.replica_joined", Family.CONVERSATION),
        ("application.transcription_ready", Family.CONVERSATION),
    ],
)
def test_objective_and_guardrail_are_told_apart_by_event_type(
    event_type: str, family: Family
) -> None:
    assert classify(conversation_body(event_type, {})).family is family


def test_message_type_conversation_is_accepted_for_any_event() -> None:
    body = conversation_body(
        "system.replica_joined", {"replica_id": "r79e1c033f"}, message_type="conversation"
    )
    result = classify(body)
    assert result.family is Family.CONVERSATION
    assert result.event_type == "system.replica_joined"
    assert result.summary == "replica r79e1c033f joined"


@pytest.mark.parametrize(
    "event_type", ["application.something_new", "system.new_thing", "conversation.whatever"]
)
def test_unknown_event_types_under_known_prefixes_are_kept_as_they_are(event_type: str) -> None:
    result = classify(conversation_body(event_type, {"alpha": 1, "beta": "two"}))

    assert result.family is not Family.UNKNOWN
    assert result.family is not Family.MALFORMED
    assert result.event_type == event_type
    assert result.conversation_id == "c123456"
    assert result.summary == f"{event_type} (alpha, beta)"


def test_unknown_event_type_without_properties_is_just_its_name() -> None:
    assert classify(conversation_body("application.brand_new")).summary == ("application.brand_new")


def test_occurred_at_comes_from_the_envelope_timestamp() -> None:
    with_fraction = classify(conversation_body("system.shutdown", {}))
    without_fraction = classify(
        conversation_body("system.shutdown", {}, timestamp="2025-07-11T06:45:47Z")
    )
    expected = datetime(2025, 7, 11, 6, 45, 47, tzinfo=UTC).timestamp()
    assert with_fraction.occurred_at == pytest.approx(expected + 0.472)
    assert without_fraction.occurred_at == expected


# ------------------------------------------------------------ unknown shapes


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"hello": "world"},
        {"data": {"id": 1}, "type": "ping"},
        {"conversation_id": "c1", "properties": {}},
    ],
)
def test_valid_json_objects_of_unknown_shape_are_unknown(payload: dict[str, Any]) -> None:
    result = classify_json(payload)

    assert result.family is Family.UNKNOWN
    assert result.event_type == "unknown"
    assert result.summary.startswith("unknown callback")
    for key in payload:
        assert key in result.summary


def test_unknown_shape_keeps_a_conversation_id_when_there_is_one() -> None:
    assert classify_json({"conversation_id": "c9", "x": 1}).conversation_id == "c9"


@pytest.mark.parametrize("event_type", ["", "   ", 5, None, ["system.shutdown"]])
def test_event_type_that_is_not_a_name_is_unknown_with_a_reason(event_type: Any) -> None:
    result = classify_json({**ENVELOPE, "event_type": event_type})

    assert result.family is Family.UNKNOWN
    assert result.error is not None
    assert "event_type" in result.error
    assert "event_type" in result.summary


# ------------------------------------------------------------ malformed bodies

DEEP = b"[" * 100_000 + b"]" * 100_000
HUGE_INT = b'{"conversation_id": ' + b"9" * 5000 + b"}"


@pytest.mark.parametrize(
    ("body", "content_type", "reason_part"),
    [
        (b"", None, "empty body"),
        (b" \r\n\t ", None, "empty body"),
        (b'{"event_type": "system.shutdown", "x": "\xff\xfe"}', None, "not UTF-8"),
        (b"\x00\x01\x02", None, "not JSON"),
        (b'{"duration": NaN}', None, "NaN"),
        (b'{"duration": -Infinity}', None, "Infinity"),
        (b'{"event_type": "system.shutdown", "properties": {', None, "truncated"),
        (b'{"event_type": "system.shut', None, "truncated"),
        (b'[{"event_type": "system.shutdown"}]', None, "array"),
        (b'"system.shutdown"', None, "string"),
        (b"null", None, "null"),
        (b"42", None, "number"),
        (b"true", None, "boolean"),
        (b'{"event_type": "system.shutdown", "x": "\\ud800"}', None, "surrogate"),
        (b'{"\\udfff": 1}', None, "surrogate"),
        (DEEP, None, "nested too deeply"),
        (HUGE_INT, None, "digits"),
        (b"event_type=system.shutdown&conversation_id=c1", None, "form-encoded"),
        (b"a=1", "application/x-www-form-urlencoded", "application/x-www-form-urlencoded"),
        (b'{"a": 1} {"b": 2}', None, "Extra data"),
    ],
    ids=[
        "empty",
        "whitespace",
        "not-utf8",
        "binary",
        "nan",
        "infinity",
        "truncated",
        "truncated-string",
        "array",
        "string",
        "null",
        "number",
        "boolean",
        "lone-surrogate",
        "lone-surrogate-key",
        "deep-nesting",
        "huge-int",
        "form-encoded",
        "form-content-type",
        "two-documents",
    ],
)
def test_malformed_bodies_say_why(body: bytes, content_type: str | None, reason_part: str) -> None:
    headers = [("content-type", content_type)] if content_type else []
    result = classify(body, headers)

    assert result.family is Family.MALFORMED
    assert result.event_type == "malformed"
    assert result.error is not None
    assert reason_part in result.error
    assert result.summary.startswith("malformed: ")
    assert_one_line(result.summary)
    assert result.conversation_id is None


def test_not_utf8_reason_says_where() -> None:
    result = classify(b'{"a": "caf\xe9"}')
    assert result.error == "not UTF-8: byte 0xe9 at offset 10"


def test_content_type_header_name_is_case_insensitive() -> None:
    result = classify(b"x=1", [("CONTENT-TYPE", "application/x-www-form-urlencoded; charset=x")])
    assert result.error is not None
    assert "application/x-www-form-urlencoded" in result.error


def test_utf8_byte_order_mark_is_accepted() -> None:
    result = classify(b"\xef\xbb\xbf" + sample_bytes("system.shutdown"))
    assert result.event_type == "system.shutdown"


def test_escaped_surrogate_pair_is_valid() -> None:
    result = classify(conversation_body("application.perception_analysis", {"analysis": "🙂 ok"}))
    escaped = classify(
        b'{"event_type": "application.perception_analysis", '
        b'"properties": {"analysis": "\\ud83d\\ude42 ok"}}'
    )
    assert result.family is escaped.family is Family.CONVERSATION
    assert escaped.summary == result.summary == "perception analysis: 🙂 ok"


# ------------------------------------------------------------ joins


def test_replica_joined() -> None:
    result = classify(sample_bytes("system.replica_joined"))
    assert result.summary == "replica r79e1c033f joined"
    assert result.is_join


def test_pal_joined_is_a_join_too_and_says_so() -> None:
    result = classify(sample_bytes("system.pal_joined"))
    assert result.event_type == "system.pal_joined"
    assert result.summary == "replica r79e1c033f joined (pal_joined)"
    assert result.is_join


def test_join_with_only_the_newer_face_id() -> None:
    result = classify(conversation_body("system.pal_joined", {"face_id": "r42"}))
    assert result.summary == "replica r42 joined (pal_joined)"


def test_join_without_any_replica_id() -> None:
    result = classify(conversation_body("system.replica_joined", {}))
    assert result.summary == "replica (unknown) joined"


def test_other_events_are_not_joins() -> None:
    assert not classify(sample_bytes("system.shutdown")).is_join


# ------------------------------------------------------------ shutdown

REASONS: list[tuple[str, str, cb.ShutdownKind]] = [
    ("max_call_duration", "maximum call duration reached", cb.ShutdownKind.TIMEOUT),
    ("participant_left_timeout", "participant left (timeout)", cb.ShutdownKind.NORMAL),
    (
        "participant_absent_timeout",
        "participant never joined (absent timeout)",
        cb.ShutdownKind.TIMEOUT,
    ),
    (
        "bot_could_not_join_meeting_it_was_probably_ended",
        "replica could not join (the meeting had probably ended)",
        cb.ShutdownKind.ERROR,
    ),
    ("daily_room_has_been_deleted", "the room was deleted", cb.ShutdownKind.NORMAL),
    (
        "exception_encountered_during_conversation_startup",
        "error while starting the conversation",
        cb.ShutdownKind.ERROR,
    ),
    ("end_conversation_endpoint_hit", "ended through the API (/end)", cb.ShutdownKind.NORMAL),
]


@pytest.mark.parametrize("key", ["shutdown_reason", "reason"])
@pytest.mark.parametrize("suffix", ["", " reached"])
@pytest.mark.parametrize(("code", "words", "kind"), REASONS, ids=[r[0] for r in REASONS])
def test_every_documented_shutdown_reason_gets_plain_words_and_a_kind(
    key: str, suffix: str, code: str, words: str, kind: cb.ShutdownKind
) -> None:
    raw = code + suffix
    reason = cb.shutdown_reason({key: raw})

    assert reason is not None
    assert (reason.raw, reason.code, reason.words, reason.kind) == (raw, code, words, kind)
    summary = classify(conversation_body("system.shutdown", {key: raw})).summary
    assert summary == f"shutdown: {words} ({raw})"


def test_shutdown_summary_as_the_sample_shows_it() -> None:
    assert classify(sample_bytes("system.shutdown")).summary == (
        "shutdown: participant left (timeout) (participant_left_timeout reached)"
    )


@pytest.mark.parametrize("step", ["3", "x", "12"])
def test_internal_error_template_names_the_step(step: str) -> None:
    raw = f"internal error occurred at step {step}"
    reason = cb.shutdown_reason({"shutdown_reason": raw})

    assert reason is not None
    assert reason.kind is cb.ShutdownKind.ERROR
    assert reason.words == f"internal error at step {step}"
    summary = classify(conversation_body("system.shutdown", {"shutdown_reason": raw})).summary
    assert summary == f"shutdown: internal error at step {step} ({raw})"


@pytest.mark.parametrize(
    "raw", ["replica_took_a_nap", "brand_new_timeout reached", "Something Else happened"]
)
def test_unknown_shutdown_reason_is_shown_verbatim(raw: str) -> None:
    reason = cb.shutdown_reason({"shutdown_reason": raw})
    assert reason is not None
    assert reason.kind is cb.ShutdownKind.UNKNOWN
    assert reason.words == raw
    summary = classify(conversation_body("system.shutdown", {"shutdown_reason": raw})).summary
    assert summary == f"shutdown: {raw}"


def test_shutdown_reason_field_wins_over_reason() -> None:
    reason = cb.shutdown_reason(
        {"shutdown_reason": "max_call_duration reached", "reason": "daily_room_has_been_deleted"}
    )
    assert reason is not None
    assert reason.code == "max_call_duration"


@pytest.mark.parametrize("properties", [{}, {"shutdown_reason": None}, None, "not-an-object"])
def test_shutdown_without_a_reason(properties: Any) -> None:
    result = classify(conversation_body("system.shutdown", properties))
    assert result.summary == "shutdown: no reason given"


def test_multiline_unknown_reason_stays_on_one_line() -> None:
    raw = "line one\nline two\r\n\tline three"
    summary = classify(conversation_body("system.shutdown", {"reason": raw})).summary
    assert summary == "shutdown: line one line two line three"


# ------------------------------------------------------------ transcripts


def test_transcript_turns_with_float_and_iso_timestamps() -> None:
    props = json.loads(sample_bytes("application.transcription_ready"))["properties"]
    turns = cb.transcript_turns(props)

    assert [turn.role for turn in turns] == [
        "system",
        "user",
        "assistant",
        "user",
        "tool",
        "assistant",
        "user",
        "assistant",
    ]
    system, first_user, _, iso_user, tool = turns[:5]
    assert system.at is None
    assert system.duration is None
    assert system.seconds_from_start is None
    assert system.content.startswith("You are in a live video call")
    assert first_user.at == pytest.approx(1752216350.12)
    assert (first_user.seconds_from_start, first_user.duration) == (2.6, 0.9)
    assert first_user.inference_id == "inf-01"
    assert iso_user.at == pytest.approx(datetime(2025, 7, 11, 6, 46, 0, 310000, UTC).timestamp())
    assert tool.role == "tool"
    assert tool.duration is None
    assert json.loads(tool.content)["city"] == "Lisbon"


def test_transcript_analysis_counts_turns_and_talk_time() -> None:
    props = json.loads(sample_bytes("application.transcription_ready"))["properties"]
    analysis = cb.analyse_transcript(cb.transcript_turns(props))

    assert (analysis.user_turns, analysis.assistant_turns, analysis.tool_turns) == (3, 3, 1)
    assert analysis.total_turns == 6
    assert analysis.talk_seconds is not None
    assert analysis.talk_seconds == pytest.approx({"user": 5.4, "assistant": 9.9})


def test_transcript_without_timings_has_no_talk_time() -> None:
    props = fixture_json("conversation.application.transcription_ready.json")["properties"]
    turns = cb.transcript_turns(props)
    analysis = cb.analyse_transcript(turns)

    assert all(turn.at is None and turn.duration is None for turn in turns)
    assert (analysis.user_turns, analysis.assistant_turns, analysis.total_turns) == (3, 3, 6)
    assert analysis.talk_seconds is None


def test_transcript_summaries() -> None:
    old = classify(fixture_bytes("conversation.application.transcription_ready.json"))
    new = classify(sample_bytes("application.transcription_ready"))
    assert old.summary == "transcript: 6 turns (3 user, 3 assistant)"
    assert new.summary == "transcript: 6 turns (3 user, 3 assistant, 1 tool)"


def test_transcript_tolerates_odd_turns() -> None:
    props = {
        "transcript": [
            "not a turn",
            {"content": "no role"},
            {"role": "user", "content": {"parts": ["hi"]}, "timestamp": "yesterday"},
            {"role": "assistant", "content": "ok", "duration": "2.0", "seconds_from_start": True},
            {"role": "user", "content": "x", "timestamp": "1752216350.5", "duration": 1},
        ]
    }
    turns = cb.transcript_turns(props)

    assert [turn.role for turn in turns] == ["unknown", "user", "assistant", "user"]
    assert json.loads(turns[1].content) == {"parts": ["hi"]}
    assert turns[1].at is None
    assert turns[2].duration is None
    assert turns[2].seconds_from_start is None
    assert turns[3].at == 1752216350.5
    assert turns[3].duration == 1.0
    assert cb.transcript_turns({"transcript": "not a list"}) == []
    assert classify(conversation_body("application.transcription_ready", {})).summary == (
        "transcript: 0 turns (0 user, 0 assistant)"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1779475657.84, 1779475657.84),
        (1779475657, 1779475657.0),
        ("1779475657.84", 1779475657.84),
        ("2025-07-11T06:45:47.472000Z", datetime(2025, 7, 11, 6, 45, 47, 472000, UTC).timestamp()),
        ("2025-07-11T06:45:47Z", datetime(2025, 7, 11, 6, 45, 47, tzinfo=UTC).timestamp()),
        ("2025-07-11T08:45:47+02:00", datetime(2025, 7, 11, 6, 45, 47, tzinfo=UTC).timestamp()),
        ("2024-08-28 15:27:40.824457", datetime(2024, 8, 28, 15, 27, 40, 824457, UTC).timestamp()),
        ("yesterday", None),
        ("", None),
        (None, None),
        (True, None),
        (float("nan"), None),
        ("inf", None),
        ({"t": 1}, None),
    ],
)
def test_parse_time_accepts_unix_and_iso_forms(value: Any, expected: float | None) -> None:
    result = cb.parse_time(value)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


# ------------------------------------------------------------ recordings


def test_recording_old_fields_make_an_s3_location() -> None:
    props = fixture_json("conversation.application.recording_ready.json")["properties"]
    rec = cb.recording(props)

    assert rec.location == "s3://acme-tavus-recordings/recordings/c7f3a91b2d04/1720680517.mp4"
    assert rec.provider == "s3"
    assert rec.duration == 170
    assert classify(fixture_bytes("conversation.application.recording_ready.json")).summary == (
        "recording ready: s3://acme-tavus-recordings/recordings/c7f3a91b2d04/1720680517.mp4 (170 s)"
    )


@pytest.mark.parametrize(
    ("provider", "uri"),
    [
        ("gcs", "gs://acme/recordings/c1.mp4"),
        ("azure_blob", "https://acme.blob.core.windows.net/rec/c1.mp4"),
        ("s3", "s3://acme/new/c1.mp4"),
    ],
)
def test_recording_new_fields_win_over_old_ones(provider: str, uri: str) -> None:
    props = {
        "bucket_name": "old-bucket",
        "s3_key": "old/key.mp4",
        "duration": 12.5,
        "storage_provider": provider,
        "storage_uri": uri,
    }
    rec = cb.recording(props)
    assert (rec.location, rec.provider, rec.duration) == (uri, provider, 12.5)
    summary = classify(conversation_body("application.recording_ready", props)).summary
    assert summary == f"recording ready: {uri} (12.5 s)"


def test_recording_with_key_only_or_nothing() -> None:
    assert cb.recording({"s3_key": "k.mp4"}).location == "k.mp4"
    empty = cb.recording({})
    assert (empty.location, empty.provider, empty.duration) == (None, None, None)
    assert classify(conversation_body("application.recording_ready", {})).summary == (
        "recording ready: (no location)"
    )


def test_recording_copy_failed() -> None:
    result = classify(sample_bytes("application.recording_copy_failed"))
    assert result.event_type == "application.recording_copy_failed"
    assert result.summary.startswith("recording copy failed: AccessDenied")
    bare = classify(conversation_body("application.recording_copy_failed", {}))
    assert bare.summary == "recording copy failed: no message"


# ------------------------------------------------------------ perception


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("no_vision_history", "no vision history"),
        ("empty_summary", "empty summary"),
        ("summary_error", "summary error"),
        ("something_new", "something new"),
    ],
)
def test_perception_unavailable_reasons(reason: str, words: str) -> None:
    result = classify(conversation_body("application.perception_unavailable", {"reason": reason}))
    assert result.family is Family.CONVERSATION
    assert result.summary == f"perception unavailable: {words}"


def test_perception_unavailable_without_reason() -> None:
    result = classify(conversation_body("application.perception_unavailable", {}))
    assert result.summary == "perception unavailable: no reason given"


def test_perception_analysis_markdown_gives_its_first_sentence_on_one_line() -> None:
    result = classify(fixture_bytes("conversation.application.perception_analysis.json"))
    assert result.summary == "perception analysis: Summary of visual observations during the call:"

    markdown = "**User** looked\nrelaxed.\n\n*   **Lighting:** dim\n*   more"
    summary = classify(
        conversation_body("application.perception_analysis", {"analysis": markdown})
    ).summary
    assert summary == "perception analysis: **User** looked relaxed."


def test_perception_analysis_long_text_is_cut() -> None:
    analysis = "word " * 2000
    summary = classify(
        conversation_body("application.perception_analysis", {"analysis": analysis})
    ).summary
    assert summary.startswith("perception analysis: word word")
    assert summary.endswith("…")
    assert_one_line(summary)


def test_perception_analysis_empty() -> None:
    summary = classify(conversation_body("application.perception_analysis", {})).summary
    assert summary == "perception analysis: (empty)"


# ------------------------------------------------------------ post-call actions


def post_call_properties(body: Any) -> dict[str, Any]:
    props: dict[str, Any] = json.loads(sample_bytes("application.post_call_action_executed"))[
        "properties"
    ]
    props = copy.deepcopy(props)
    props["request"]["body"] = body
    return props


@pytest.mark.parametrize(
    "body",
    [{"destination": "Lisbon", "month": "May"}, '{"destination": "Lisbon", "month": "May"}'],
    ids=["object", "json-string"],
)
def test_post_call_request_body_as_object_or_json_string(body: Any) -> None:
    action = cb.post_call_action(post_call_properties(body))

    assert action.request_body == {"destination": "Lisbon", "month": "May"}
    assert action.tool == "save_trip_plan"
    assert action.status == "success"
    assert action.response == {"status_code": 201, "body": {"trip_id": "t-4821"}}


def test_post_call_request_body_that_is_not_json_stays_text() -> None:
    assert cb.post_call_action(post_call_properties("name=Lisbon")).request_body == "name=Lisbon"


def test_post_call_action_tool_name_or_tool_id() -> None:
    by_id = classify(
        conversation_body(
            "application.post_call_action_executed", {"tool_id": "tool-77", "status": "failed"}
        )
    )
    assert by_id.summary == "post-call action tool-77: failed"
    sample = classify(sample_bytes("application.post_call_action_executed"))
    assert sample.summary == "post-call action save_trip_plan: success"
    bare = classify(conversation_body("application.post_call_action_executed", {}))
    assert bare.summary == "post-call action (unnamed): no status"


# ------------------------------------------------------------ objectives, guardrails


@pytest.mark.parametrize("state", ["completed", "activated", "pending"])
def test_objective_states_with_properties(state: str) -> None:
    body = conversation_body(
        f"conversation.objective.{state}",
        {"objective_name": "collect_dates", "output_variables": {"month": "May", "nights": 4}},
        message_type="conversation",
    )
    result = classify(body)

    assert result.family is Family.OBJECTIVE
    assert result.event_type == f"conversation.objective.{state}"
    assert result.conversation_id == "c123456"
    assert result.summary == f"objective collect_dates {state} (month=May, nights=4)"


def test_objective_with_hoisted_top_level_fields() -> None:
    payload = {
        **ENVELOPE,
        "event_type": "conversation.objective.completed",
        "message_type": "conversation",
        "objective_name": "collect_email",
        "output_variables": {"email": "sam@example.com"},
        "properties": {},
    }
    assert cb.objective_name(payload) == "collect_email"
    assert cb.objective_outputs(payload) == {"email": "sam@example.com"}
    assert classify_json(payload).summary == (
        "objective collect_email completed (email=sam@example.com)"
    )


def test_objective_properties_win_over_hoisted_fields() -> None:
    payload = {
        "objective_name": "top",
        "output_variables": {"a": 1},
        "properties": {"objective_name": "inner", "output_variables": {"b": 2}},
    }
    assert cb.objective_name(payload) == "inner"
    assert cb.objective_outputs(payload) == {"b": 2}


def test_objective_without_name_or_outputs() -> None:
    result = classify(conversation_body("conversation.objective.pending", {}))
    assert result.summary == "objective (unnamed) pending"


def test_objective_long_output_values_are_shortened() -> None:
    body = conversation_body(
        "conversation.objective.completed",
        {"objective_name": "notes", "output_variables": {"notes": "x" * 500}},
    )
    summary = classify(body).summary
    assert "notes=" + "x" * 29 + "…" in summary
    assert_one_line(summary)


@pytest.mark.parametrize("key", ["guardrail", "guardrail_name"])
def test_guardrail_name_under_either_key(key: str) -> None:
    body = conversation_body(
        "conversation.guardrail.triggered",
        {key: "no_medical_advice", "guardrail_uuid": "g1", "reason": "asked for a diagnosis"},
        message_type="conversation",
    )
    result = classify(body)
    assert result.family is Family.GUARDRAIL
    assert result.summary == "guardrail no_medical_advice triggered: asked for a diagnosis"


def test_guardrail_sample_and_bare_guardrail() -> None:
    assert classify(sample_bytes("conversation.guardrail.triggered")).summary == (
        "guardrail no_medical_advice triggered: The user asked for a diagnosis of a rash."
    )
    assert cb.guardrail_name({"guardrail": "top_level"}) == "top_level"
    bare = classify(conversation_body("conversation.guardrail.triggered", {}))
    assert bare.summary == "guardrail (unnamed) triggered"


# ------------------------------------------------------------ replica training


@pytest.mark.parametrize("status", ["ready", "completed"])
def test_replica_training_success(status: str) -> None:
    result = classify_json({"replica_id": "r5a1d2c3e4f", "status": status})

    assert result.family is Family.REPLICA
    assert result.event_type == f"replica.{status}"
    assert result.subject_id == "r5a1d2c3e4f"
    assert result.conversation_id is None
    assert result.summary == f"replica r5a1d2c3e4f training {status}"


def test_replica_training_error_shows_the_message() -> None:
    result = classify(fixture_bytes("replica.error.json"))
    assert result.event_type == "replica.error"
    assert result.subject_id == "r0b9c8d7e6f"
    assert result.summary.startswith(
        "replica r0b9c8d7e6f training failed: There was an issue processing your training video."
    )
    assert_one_line(result.summary)
    bare = classify_json({"replica_id": "r1", "status": "error"})
    assert bare.summary == "replica r1 training failed: no message"


def test_replica_with_other_status_is_kept_as_it_is() -> None:
    result = classify_json({"replica_id": "r1", "status": "started", "replica_name": "Anna"})
    assert result.event_type == "replica.started"
    assert result.summary == "replica r1 (Anna) training started"


# ------------------------------------------------------------ video generation


def test_video_ready() -> None:
    result = classify(fixture_bytes("video.ready.json"))
    assert result.family is Family.VIDEO
    assert result.event_type == "video.ready"
    assert result.subject_id == "1e30440cf9"
    assert result.conversation_id is None
    assert result.summary == "video 'welcome - Sam' ready"
    # "2024-08-28 15:29:19.802670": space separator and no zone, taken as UTC.
    assert result.occurred_at == pytest.approx(
        datetime(2024, 8, 28, 15, 29, 19, 802670, UTC).timestamp()
    )


def test_video_error_with_null_urls() -> None:
    body = fixture_json("video.error.json")
    assert body["download_url"] is None
    assert body["stream_url"] is None
    result = classify_json(body)

    assert result.event_type == "video.error"
    assert result.subject_id == "c9b85a6d36"
    assert result.summary.startswith(
        "video 'failing render' failed: An error occurred while generating this request."
    )


def test_video_error_details_when_no_status_details() -> None:
    result = classify_json({"video_id": "v1", "status": "error", "error_details": "bad script"})
    assert result.summary == "video v1 failed: bad script"


def test_video_api_status_shows_progress() -> None:
    result = classify_json(
        {
            "video_id": "v1",
            "video_name": "demo",
            "status": "generating",
            "generation_progress": "42/100",
        }
    )
    assert result.event_type == "video.generating"
    assert result.summary == "video 'demo' generating (42/100)"


def test_video_without_status() -> None:
    assert classify_json({"video_id": "v1"}).event_type == "video.unknown"


# ------------------------------------------------------------ summaries are one short line


HOSTILE_TEXT = "first line\nsecond\r\nthird\u2028fourth\u2029fifth\x85sixth\x0bseventh\x0c" + (
    "long " * 100
)


@pytest.mark.parametrize(
    "body",
    [
        conversation_body("system.shutdown", {"shutdown_reason": HOSTILE_TEXT}),
        conversation_body("application.perception_analysis", {"analysis": HOSTILE_TEXT}),
        conversation_body("application.perception_unavailable", {"reason": HOSTILE_TEXT}),
        conversation_body("application.recording_copy_failed", {"error_message": HOSTILE_TEXT}),
        conversation_body("application.recording_ready", {"storage_uri": HOSTILE_TEXT}),
        conversation_body(
            "application.post_call_action_executed", {"tool_name": HOSTILE_TEXT, "status": "x"}
        ),
        conversation_body("system.replica_joined", {"replica_id": HOSTILE_TEXT}),
        conversation_body(
            "conversation.objective.completed",
            {"objective_name": HOSTILE_TEXT, "output_variables": {HOSTILE_TEXT: HOSTILE_TEXT}},
        ),
        conversation_body("conversation.guardrail.x", {"guardrail": "g", "reason": HOSTILE_TEXT}),
        conversation_body("application.new_thing", {HOSTILE_TEXT: 1}),
        conversation_body(HOSTILE_TEXT, {}),
        json.dumps(
            {"replica_id": HOSTILE_TEXT, "status": "error", "error_message": HOSTILE_TEXT}
        ).encode(),
        json.dumps({"video_id": "v", "video_name": HOSTILE_TEXT, "status": HOSTILE_TEXT}).encode(),
        json.dumps({HOSTILE_TEXT: 1}).encode(),
        b"{" + HOSTILE_TEXT.encode(),
    ],
)
def test_summary_is_one_line_even_when_payload_text_is_not(body: bytes) -> None:
    assert_one_line(classify(body).summary)


def test_one_line_collapses_whitespace_and_cuts_with_an_ellipsis() -> None:
    assert one_line("  a\n\n b\t c  ") == "a b c"
    cut = one_line("x" * 500)
    assert len(cut) == SUMMARY_LIMIT
    assert cut.endswith("…")
    assert one_line("abc", limit=3) == "abc"


# ------------------------------------------------------------ classify never raises

JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=30,
)
KNOWN_KEYS = st.sampled_from(
    [
        "event_type",
        "conversation_id",
        "properties",
        "video_id",
        "replica_id",
        "status",
        "timestamp",
        "updated_at",
        "objective_name",
        "output_variables",
        "guardrail",
        "guardrail_name",
        "error_message",
        "video_name",
        "status_details",
        "error_details",
        "generation_progress",
        "replica_name",
    ]
)
EVENT_TYPES = st.sampled_from(DOCUMENTED_EVENT_TYPES) | st.text(max_size=20)
TURN = st.fixed_dictionaries(
    {},
    optional={
        "role": st.sampled_from(["system", "user", "assistant", "tool"]) | JSON_LEAVES,
        "content": JSON_VALUES,
        "timestamp": JSON_LEAVES,
        "seconds_from_start": JSON_LEAVES,
        "duration": JSON_LEAVES,
    },
)
PROPERTIES = st.dictionaries(
    st.sampled_from(PROPERTY_KEYS),
    JSON_VALUES | st.lists(TURN, max_size=4) | st.dictionaries(st.just("body"), JSON_VALUES),
    max_size=6,
)
CALLBACK_SHAPED = st.fixed_dictionaries(
    {"event_type": EVENT_TYPES},
    optional={
        "conversation_id": JSON_LEAVES,
        "timestamp": JSON_LEAVES,
        "properties": PROPERTIES | JSON_VALUES,
        "objective_name": JSON_VALUES,
        "output_variables": JSON_VALUES,
    },
) | st.dictionaries(KNOWN_KEYS | st.text(max_size=8), JSON_VALUES, max_size=8)


def check_classification(result: Classification) -> None:
    assert isinstance(result, Classification)
    assert isinstance(result.family, Family)
    assert isinstance(result.event_type, str)
    assert result.event_type
    assert_one_line(result.summary)
    if result.family is Family.MALFORMED:
        assert result.error


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_classify_never_raises_on_arbitrary_bytes(body: bytes) -> None:
    check_classification(classify(body))


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=40),
    st.sampled_from([b"", b"{", b'{"event_type": "', b'{"video_id": 1, "x": [', b"\xef\xbb\xbf"]),
)
def test_classify_never_raises_on_broken_json_prefixes(tail: bytes, head: bytes) -> None:
    check_classification(classify(head + tail))


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=8))
def test_classify_never_raises_on_arbitrary_json_objects(payload: dict[str, Any]) -> None:
    result = classify_json(payload)
    check_classification(result)
    assert result.family is not Family.MALFORMED


@hypothesis_settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CALLBACK_SHAPED)
def test_classify_never_raises_on_callback_shaped_objects(payload: dict[str, Any]) -> None:
    result = classify(json.dumps(payload).encode())
    check_classification(result)
    assert result.family is not Family.MALFORMED
    if isinstance(payload.get("event_type"), str) and payload["event_type"].strip():
        assert result.event_type == payload["event_type"].strip()
        assert result.family in (Family.CONVERSATION, Family.OBJECTIVE, Family.GUARDRAIL)


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_classify_never_raises_on_arbitrary_text(text: str) -> None:
    check_classification(classify(text.encode("utf-8", errors="surrogatepass")))
