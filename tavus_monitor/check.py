"""The cases ``tavus-monitor check`` sends: every documented callback and its known quirks.

Tavus's docs contradict themselves in places (a field with two names, a reason with and
without `` reached``, a join sent twice under two names), and a handler written from one
page breaks on a delivery shaped by another. Each :class:`Case` is one such shape, with a
one-line ``why`` naming where Tavus documents (or shows) it, so a failing row tells the
developer what to fix and that Tavus really sends it. (The team's sources are in the callback
notes, docs/tavus-callbacks.md, which list every quirk below.)

Bodies are built from the shipped samples (:mod:`tavus_monitor.samples`), changed only
where the quirk differs, so the check and ``trigger`` send the same Tavus; the canvas
interaction is assembled here from the notes only while it has no sample.

Cases that belong to one call share its conversation id (the joins, the shutdown and its
redelivery, the transcript that arrives before that shutdown): the main call. A variant of
an event the main call already has (the shutdown with ``reason``, the other transcripts) is
another call with its own id, so a handler that keeps one shutdown per conversation parses
each variant instead of answering "already seen". Every id is new per run (``c`` + hex,
as Tavus's are), so a handler's idempotency store never confuses two runs.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from . import samples

TRANSCRIPT_BYTES = 5 * 1024 * 1024
"""Size of the long-call transcript: a long call's transcript is several MB."""


@dataclass(frozen=True, slots=True)
class Case:
    """One body to send, what it is called in the report and why it is worth sending."""

    name: str
    why: str
    """One line: the quirk, and where Tavus documents or shows it."""
    body: bytes
    conversation_id: str | None = None
    """The conversation it belongs to; None for replica and video callbacks."""


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Call:
    """One conversation: its id, and bodies from the samples with that id and ``webhook_url``."""

    def __init__(self, webhook_url: str, start: datetime) -> None:
        self.id = samples.new_conversation_id()
        self.webhook_url = webhook_url
        self.start = start

    def body(self, name: str, at: float) -> dict[str, Any]:
        """Sample ``name`` as this call's event ``at`` seconds after the join."""
        rendered = samples.render(
            name,
            conversation_id=self.id,
            webhook_url=self.webhook_url,
            at=self.start + timedelta(seconds=at),
            salt="",
        )
        data: dict[str, Any] = json.loads(rendered)
        return data

    def case(self, name: str, why: str, data: dict[str, Any]) -> Case:
        return Case(name, why, _encode(data), self.id)


def _encode(data: dict[str, Any]) -> bytes:
    return json.dumps(data, indent=2).encode("utf-8")


def _job(name: str, now: datetime, **changes: Any) -> bytes:
    """A replica or video sample with an id of its own (each case is another job, and two
    runs are never the same job)."""
    salt = secrets.token_hex(3)
    data = json.loads(samples.render(name, conversation_id="", webhook_url="", at=now, salt=salt))
    data.update(changes)
    return _encode(data)


def _turns(data: dict[str, Any]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = data["properties"]["transcript"]
    return turns


def _with_timestamps(turns: list[dict[str, Any]], start: datetime, *, iso: bool) -> None:
    """Every turn's ``timestamp`` as a Unix float, or as an ISO string (both are seen)."""
    for turn in turns:
        if "seconds_from_start" not in turn:
            continue
        at = start + timedelta(seconds=float(turn["seconds_from_start"]))
        turn["timestamp"] = _iso(at) if iso else round(at.timestamp(), 2)


def _long_transcript(call: _Call) -> dict[str, Any]:
    """The sample transcript's spoken turns repeated, a minute apart, until the body holds
    :data:`TRANSCRIPT_BYTES` or more."""
    data = call.body("application.transcription_ready", 7200.0)
    turns = _turns(data)
    prompt, spoken = turns[:1], [turn for turn in turns if "seconds_from_start" in turn]
    grown: list[dict[str, Any]] = []
    rounds = TRANSCRIPT_BYTES // len(_encode({"properties": {"transcript": spoken}})) + 1
    while True:
        for round_ in range(len(grown) // len(spoken), rounds):
            for turn in spoken:
                copy = dict(turn)
                copy["seconds_from_start"] = round(round_ * 60.0 + turn["seconds_from_start"], 2)
                copy["inference_id"] = f"inf-{round_:05d}-{turn.get('inference_id', '')}"
                grown.append(copy)
        _with_timestamps(grown, call.start, iso=False)
        data["properties"]["transcript"] = prompt + grown
        size = len(_encode(data))
        if size >= TRANSCRIPT_BYTES:
            return data
        rounds += (TRANSCRIPT_BYTES - size) * rounds // size + 1


CANVAS = "canvas.interaction"


def _canvas(call: _Call, at: float) -> dict[str, Any]:
    """A ``canvas.interaction`` with a new interaction id and a millisecond timestamp.

    From its sample once the type is registered; until then assembled as the notes do
    (tavus-api.md §1.7), from the List Canvas Interactions example.
    """
    tool_call = "call_" + secrets.token_hex(3)
    if CANVAS in samples.ALL_SAMPLES:
        data = call.body(CANVAS, at)
    else:
        data = {
            "message_type": "canvas",
            "event_type": CANVAS,
            "conversation_id": call.id,
            "properties": {
                "component": "canvas.question",
                "component_version": "v1",
                "type": "submit",
                "value": {"selected_option_ids": ["opt_2"], "skipped": False},
                "metadata": {"client": "kiosk-web"},
            },
        }
    moment = (call.start + timedelta(seconds=at)).astimezone(UTC)
    data["timestamp"] = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    properties = data["properties"]
    properties["tool_call_id"] = tool_call
    properties["interaction_id"] = f"ci_{tool_call}_{properties['type']}_{secrets.token_hex(4)}"
    properties["created_at"] = moment.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return data


def cases(webhook_url: str, *, now: datetime | None = None) -> list[Case]:
    """Every case, in the order they are sent, with new ids and ``webhook_url`` echoed."""
    now = now or datetime.now(UTC)
    start = now - timedelta(minutes=10)
    main, by_reason, bare, long = (_Call(webhook_url, start) for _ in range(4))

    shutdown = main.body("system.shutdown", 170.0)
    shutdown["properties"]["shutdown_reason"] = "max_call_duration reached"
    shutdown_bytes = _encode(shutdown)

    with_reason = by_reason.body("system.shutdown", 170.0)
    del with_reason["properties"]["shutdown_reason"]
    with_reason["properties"]["reason"] = "max_call_duration reached"

    bare_reason = bare.body("system.shutdown", 170.0)
    bare_reason["properties"]["shutdown_reason"] = "max_call_duration"

    floats = by_reason.body("application.transcription_ready", 170.001)
    _with_timestamps(_turns(floats), start, iso=False)
    isos = bare.body("application.transcription_ready", 170.001)
    _with_timestamps(_turns(isos), start, iso=True)

    old_recording = main.body("application.recording_ready", 190.0)
    for key in ("storage_provider", "storage_uri"):
        del old_recording["properties"][key]
    old_recording["properties"]["s3_key"] = f"recordings/{main.id}/{int(now.timestamp())}.mp4"
    new_recording = by_reason.body("application.recording_ready", 190.0)
    key = f"recordings/{by_reason.id}/{int(now.timestamp())}.mp4"
    new_recording["properties"]["s3_key"] = key
    new_recording["properties"]["storage_uri"] = (
        f"s3://{new_recording['properties']['bucket_name']}/{key}"
    )

    as_string = by_reason.body("application.post_call_action_executed", 474.0)
    as_object = main.body("application.post_call_action_executed", 474.0)
    request = as_object["properties"]["request"]
    request["body"] = json.loads(request["body"])

    future = main.body("application.perception_unavailable", 480.0)
    future["event_type"] = "application.check_future_event"
    future["properties"] = {"note": "a type Tavus may add later", "score": 0.5}

    return [
        main.case(
            "replica_joined",
            "the join as system.replica_joined with properties.replica_id (Tavus's Webhooks page)",
            main.body("system.replica_joined", 0.0),
        ),
        main.case(
            "pal_joined twin",
            "the same join again as system.pal_joined with face_id: newer accounts get both "
            "(the newer Webhooks page)",
            main.body("system.pal_joined", 0.001),
        ),
        main.case(
            "transcript before shutdown",
            "the transcript before its call's shutdown: Tavus documents no delivery order",
            main.body("application.transcription_ready", 169.999),
        ),
        Case(
            "shutdown_reason, reached",
            'shutdown_reason "max_call_duration reached", as the Webhooks page lists reasons',
            shutdown_bytes,
            main.id,
        ),
        Case(
            "redelivery (same bytes)",
            "the shutdown again, byte for byte: Tavus documents no event id and no retry policy",
            shutdown_bytes,
            main.id,
        ),
        by_reason.case(
            "shutdown with reason",
            "properties.reason instead of shutdown_reason, the name GET "
            "/v2/conversations/{id}?verbose=true gives it",
            with_reason,
        ),
        bare.case(
            "reason without reached",
            'shutdown_reason "max_call_duration" without " reached", as in the OpenAPI example',
            bare_reason,
        ),
        by_reason.case(
            "transcript, float times",
            "every transcript turn's timestamp a Unix float (1779475657.84), as some "
            "deliveries have",
            floats,
        ),
        bare.case(
            "transcript, ISO times",
            "every transcript turn's timestamp an ISO-8601 string, as other deliveries have",
            isos,
        ),
        long.case(
            "5 MB transcript",
            f"a long call's transcript, {TRANSCRIPT_BYTES // (1024 * 1024)} MB in one body "
            "(the system prompt and hours of turns)",
            _long_transcript(long),
        ),
        main.case(
            "recording, old fields",
            "recording_ready with only bucket_name, s3_key and duration (the older Webhooks page)",
            old_recording,
        ),
        by_reason.case(
            "recording, new fields",
            "recording_ready adding storage_provider and storage_uri (the newer Webhooks page)",
            new_recording,
        ),
        main.case(
            "post-call body object",
            "post_call_action_executed whose properties.request.body is a JSON object",
            as_object,
        ),
        by_reason.case(
            "post-call body string",
            "post_call_action_executed whose properties.request.body is a JSON string "
            "(both are seen)",
            as_string,
        ),
        main.case(
            "canvas.interaction",
            'message_type "canvas" (a fourth value), millisecond timestamp (Magic Canvas docs)',
            _canvas(main, 120.0),
        ),
        main.case(
            "unknown future type",
            "an event_type no doc lists yet: the Webhooks page says "
            '"additional webhooks coming soon"',
            future,
        ),
        Case(
            "replica ready",
            'replica training callback: flat {"replica_id", "status": "ready"}, no envelope',
            _job("replica.ready", now),
        ),
        Case(
            "replica completed",
            'replica training done as "completed", the word GET /v2/replicas/{id} uses',
            _job("replica.ready", now, status="completed"),
        ),
        Case(
            "replica error",
            'replica training failed: status "error" with error_message',
            _job("replica.error", now),
        ),
        Case(
            "video ready",
            "video generation callback: flat body with download_url, stream_url and hosted_url",
            _job("video.ready", now),
        ),
        Case(
            "video error, null URLs",
            'video failed: status "error", download_url and stream_url null',
            _job("video.error", now),
        ),
    ]
