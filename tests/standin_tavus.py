"""A stand-in Tavus API, for real, on a loopback port: the documented protocol, no mocks.

A Starlette app served by uvicorn in the test's own loop (as ``handler.py``), mounted under
``/v2`` so ``TAVUS_PUBLIC_API_BASE_URL`` means what it means to Tavus's CLI. It follows
``docs/tavus-api.md`` §7 ("What a faithful fake must do"):

- ``x-api-key`` on every request, else ``401 {"message": "Invalid access token"}``;
- conversations: create (persona/replica or pal/face, ``test_mode`` created ``ended``, an
  optional limit of active calls answered with the real ``400 {"message": "User has reached
  maximum concurrent conversations"}``), list (1-indexed ``page``, ``limit`` default 10,
  ``status``, ``total_count`` after filtering, newest first), get (``?verbose=true`` adds
  ``events`` as ``{event_type, timestamp, properties}``, whole-second timestamps, a join
  without properties, the shutdown reason as ``properties.reason``), end, delete;
- replicas (``{replica_id, status: "started"}``) and videos (``status: "queued"``), finished
  when the test says (:meth:`StandinTavus.finish_replica`, :meth:`StandinTavus.finish_video`);
- callbacks POSTed like Tavus's to each resource's ``callback_url`` after the answer: the
  joins after create, ``system.shutdown`` (``end_conversation_endpoint_hit``) then
  ``application.transcription_ready`` after end, the flat replica and video bodies.

Where Tavus's behaviour is undocumented, a switch says which way this stand-in goes (see
:class:`Behaviour`). ``withhold`` keeps callbacks from being sent while the verbose GET still
logs them: the situation ``recover`` exists for. Every request and every callback attempt is
recorded, so a test asserts on exactly what the client sent and what was delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any, Literal

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

WAIT = 10.0
INVALID_TOKEN = {"message": "Invalid access token"}
CONCURRENCY = {"message": "User has reached maximum concurrent conversations"}
JOIN_EVENTS = ("system.pal_joined", "system.replica_joined")
"""What newer accounts get for one join: both, with identical payloads (GETCONV-NEW)."""


@dataclass(slots=True)
class Behaviour:
    """The choices Tavus's documentation leaves open, each switchable by a test."""

    join_events: tuple[str, ...] = JOIN_EVENTS
    """Sent shortly after a (non-test) create; () sends no join at all."""
    test_mode_events: tuple[str, ...] = ()
    """Sent after a ``test_mode`` create. Undocumented; the replica never joins, so none."""
    end_ended: Literal["ok", "invalid"] = "ok"
    """Ending an ended call: ``200`` and no callback, or ``400 {"error": "Invalid
    conversation_id"}``. Undocumented."""
    unknown_id_status: Literal[400, 404] = 400
    """An unknown id: ``400 {"error": "Invalid conversation_id"}`` as documented, or 404."""
    max_concurrent: int | None = None
    """Active conversations allowed at once (None: no limit)."""
    echo_missing_callback_url: Literal["null", "omit"] = "null"
    """A create without ``callback_url`` answers ``callback_url: null`` or leaves it out."""
    verbose_shutdown_key: Literal["reason", "shutdown_reason"] = "reason"
    """How the verbose GET names the shutdown reason (the OAS example: ``reason``)."""
    withhold: bool | frozenset[str] = False
    """Callbacks not sent (True: none; or these event types), still logged for verbose GET."""


@dataclass(frozen=True, slots=True)
class Called:
    """One request the stand-in got."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    """Lower-case names."""
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One callback POSTed (or tried) to a ``callback_url``."""

    url: str
    body: dict[str, Any]
    status: int | None
    """The receiver's answer; None when none came (``error`` says why)."""
    error: str | None = None

    @property
    def event_type(self) -> str | None:
        kind = self.body.get("event_type")
        return kind if isinstance(kind, str) else None


@dataclass(slots=True)
class LoggedEvent:
    """An event as verbose GET returns it (and as it was, or would have been, sent)."""

    event_type: str
    at: float
    properties: dict[str, Any] | None


@dataclass(slots=True)
class Conversation:
    record: dict[str, Any]
    events: list[LoggedEvent] = field(default_factory=list)


def _iso_micro(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _iso_seconds(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _callback_time(at: float) -> str:
    """Replica and video callbacks: ``2024-08-28 15:27:40.824457`` (no zone)."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


_Endpoint = Callable[["Called", list[str], dict[str, Any]], Awaitable[Response]]
"""An endpoint: the request, its path's parts under /v2, its JSON body."""


def _error(status: int, body: dict[str, str]) -> JSONResponse:
    return JSONResponse(body, status_code=status)


class StandinTavus:
    """The stand-in API on ``tavus_base_url``; :meth:`env` points a client at it."""

    def __init__(self, behaviour: Behaviour | None = None, *, api_key: str | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        self.api_key = api_key or "standin-" + secrets.token_hex(12)
        self.calls: list[Called] = []
        self.deliveries: list[Delivery] = []
        self.conversations: dict[str, Conversation] = {}
        self.replicas: dict[str, dict[str, Any]] = {}
        self.videos: dict[str, dict[str, Any]] = {}
        self._changed = asyncio.Condition()
        self._sending = asyncio.Lock()
        """Callbacks go out one at a time, in order, as one conversation's do."""
        self._http = httpx.AsyncClient(timeout=WAIT)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ for tests

    @property
    def tavus_base_url(self) -> str:
        """``TAVUS_PUBLIC_API_BASE_URL`` for this stand-in (``/v2`` included, as Tavus's)."""
        return f"http://127.0.0.1:{self.port}/v2"

    def env(self, *, api_key: str | None = None) -> dict[str, str]:
        """The variables that point a client (ours or Tavus's CLI) here."""
        return {
            "TAVUS_API_KEY": self.api_key if api_key is None else api_key,
            "TAVUS_PUBLIC_API_BASE_URL": self.tavus_base_url,
        }

    def requests_to(self, method: str, path: str) -> list[Called]:
        """The requests made to ``path`` (under ``/v2``) with ``method``."""
        return [c for c in self.calls if c.method == method and c.path == "/v2" + path]

    async def until(
        self, done: Callable[[StandinTavus], bool], within: float = WAIT, what: str = "it"
    ) -> None:
        """Wait until ``done(self)`` holds (checked at each request and delivery)."""

        async def holds() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: done(self))

        try:
            await asyncio.wait_for(holds(), within)
        except TimeoutError:
            raise AssertionError(
                f"the stand-in Tavus never saw {what} within {within:g} s"
            ) from None

    async def delivered(self, event_type: str, within: float = WAIT) -> Delivery:
        """The first delivery of ``event_type`` (waiting for it)."""
        await self.until(
            lambda s: any(d.event_type == event_type for d in s.deliveries), within, event_type
        )
        return next(d for d in self.deliveries if d.event_type == event_type)

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """Callbacks wait while the block runs, then go in order: what a client shows
        "before any callback" is asserted without racing them."""
        async with self._sending:
            yield

    async def finish_replica(self, replica_id: str, *, error: str | None = None) -> None:
        """Training ends: GET says ``completed`` (or ``error``), the callback says ``ready``."""
        replica = self.replicas[replica_id]
        replica.update(
            status="error" if error else "completed",
            training_progress="100/100" if not error else replica["training_progress"],
            error_message=error,
            updated_at=_iso_micro(time.time()),
        )
        body: dict[str, Any] = {"replica_id": replica_id, "status": "error" if error else "ready"}
        if error:
            body["error_message"] = error
        await self._send(replica.get("callback_url"), body, "replica")

    async def finish_video(self, video_id: str, *, error: str | None = None) -> None:
        """Generation ends: ``ready`` with URLs, or ``error``; the callback is the whole video."""
        video = self.videos[video_id]
        now = time.time()
        video.update(
            status="error" if error else "ready",
            generation_progress="100/100" if not error else "0/100",
            download_url=None if error else f"https://cdn.example.invalid/{video_id}.mp4",
            stream_url=None if error else f"https://stream.example.invalid/{video_id}.m3u8",
            status_details=error or "Your request has processed successfully!",
            updated_at=_callback_time(now),
        )
        body = {k: v for k, v in video.items() if k != "callback_url"}
        if error:
            body["error_details"] = None
        await self._send(video.get("callback_url"), body, "video")

    # ------------------------------------------------------------ the API

    async def _route(self, request: Request) -> Response:
        body = await request.body()
        called = Called(
            request.method,
            request.url.path,
            dict(request.query_params),
            {k.lower(): v for k, v in request.headers.items()},
            body,
        )
        self.calls.append(called)
        await self._notify()
        if called.headers.get("x-api-key") != self.api_key:
            return _error(401, INVALID_TOKEN)
        parts = called.path.removeprefix("/v2/").strip("/").split("/")
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            return _error(400, {"error": "Request body is not valid JSON"})
        if body and not isinstance(payload, dict):
            return _error(400, {"error": "Request body must be a JSON object"})
        handler = self._handler(request.method, parts)
        if handler is None:
            return _error(404, {"message": "Not Found"})
        return await handler(called, parts, payload)

    def _handler(self, method: str, parts: list[str]) -> _Endpoint | None:
        table: dict[tuple[str, str, int], _Endpoint] = {
            ("POST", "conversations", 1): self._create_conversation,
            ("GET", "conversations", 1): self._list_conversations,
            ("GET", "conversations", 2): self._get_conversation,
            ("DELETE", "conversations", 2): self._delete_conversation,
            ("POST", "conversations", 3): self._end_conversation,
            ("POST", "replicas", 1): self._create_replica,
            ("GET", "replicas", 2): self._get_replica,
            ("POST", "videos", 1): self._create_video,
            ("GET", "videos", 2): self._get_video,
        }
        if len(parts) == 3 and parts[2] != "end":
            return None
        return table.get((method, parts[0], len(parts)))

    def _unknown(self, kind: str) -> JSONResponse:
        if self.behaviour.unknown_id_status == 404:
            return _error(404, {"error": f"{kind.capitalize()} not found"})
        return _error(400, {"error": f"Invalid {kind}_id"})

    async def _create_conversation(
        self, called: Called, parts: list[str], body: dict[str, Any]
    ) -> Response:
        replica = body.get("replica_id") or body.get("face_id")
        persona = body.get("persona_id") or body.get("pal_id")
        if not replica and not persona:
            return _error(
                400, {"error": "Each request must have a replica_id, or a persona with one"}
            )
        test_mode = body.get("test_mode") is True
        active = sum(c.record["status"] == "active" for c in self.conversations.values())
        limit = self.behaviour.max_concurrent
        if not test_mode and limit is not None and active >= limit:
            return _error(400, CONCURRENCY)
        conversation_id = "c" + secrets.token_hex(6)[:11]
        now = time.time()
        record: dict[str, Any] = {
            "conversation_id": conversation_id,
            "conversation_name": body.get("conversation_name")
            or f"New Conversation {int(now * 1000)}",
            "conversation_url": f"https://tavus.daily.co/{conversation_id}",
            "status": "ended" if test_mode else "active",
            "callback_url": body.get("callback_url"),
            "replica_id": replica,
            "persona_id": persona,
            "created_at": _iso_micro(now),
            "updated_at": _iso_micro(now),
            "request": body,
        }
        conversation = self.conversations[conversation_id] = Conversation(record)
        answer = {
            key: record[key]
            for key in (
                "conversation_id",
                "conversation_name",
                "conversation_url",
                "status",
                "callback_url",
                "created_at",
            )
        }
        if record["callback_url"] is None and self.behaviour.echo_missing_callback_url == "omit":
            del answer["callback_url"]
        if body.get("require_auth") or (body.get("properties") or {}).get("require_auth"):
            answer["meeting_token"] = "eyJhbGciOi." + secrets.token_urlsafe(16)
        events = self.behaviour.test_mode_events if test_mode else self.behaviour.join_events
        return JSONResponse(answer, background=self._after(conversation, events))

    async def _list_conversations(
        self, called: Called, parts: list[str], body: dict[str, Any]
    ) -> Response:
        try:
            limit = int(called.query.get("limit", "10"))
            page = int(called.query.get("page", "1"))
        except ValueError:
            return _error(400, {"error": "limit and page must be integers"})
        status = called.query.get("status")
        rows = [
            c.record
            for c in reversed(self.conversations.values())
            if status is None or c.record["status"] == status
        ]
        start = (max(page, 1) - 1) * limit
        data = [_listed(row) for row in rows[start : start + limit]]
        return JSONResponse({"data": data, "total_count": len(rows)})

    async def _get_conversation(
        self, called: Called, parts: list[str], body: dict[str, Any]
    ) -> Response:
        conversation = self.conversations.get(parts[1])
        if conversation is None:
            return self._unknown("conversation")
        answer = _listed(conversation.record)
        if called.query.get("verbose", "").lower() in ("true", "1"):
            answer["events"] = [self._verbose(event) for event in conversation.events]
        return JSONResponse(answer)

    async def _end_conversation(
        self, called: Called, parts: list[str], body: dict[str, Any]
    ) -> Response:
        conversation = self.conversations.get(parts[1])
        if conversation is None:
            return self._unknown("conversation")
        if conversation.record["status"] == "ended":
            if self.behaviour.end_ended == "invalid":
                return _error(400, {"error": "Invalid conversation_id"})
            return Response(status_code=200)
        return Response(
            status_code=200,
            background=self._after(
                conversation,
                ("system.shutdown", "application.transcription_ready"),
                reason="end_conversation_endpoint_hit",
            ),
        )

    async def _delete_conversation(
        self, called: Called, parts: list[str], body: dict[str, Any]
    ) -> Response:
        if self.conversations.pop(parts[1], None) is None:
            return self._unknown("conversation")
        return Response(status_code=204)

    async def _create_replica(
        self, called: Called, parts: list[str], body: dict[str, Any]
    ) -> Response:
        if not body.get("train_video_url") and not body.get("train_image_url"):
            return _error(
                400, {"error": "Either train_video_url or train_image_url must be provided."}
            )
        replica_id = "r" + secrets.token_hex(6)[:11]
        now = _iso_micro(time.time())
        self.replicas[replica_id] = {
            "replica_id": replica_id,
            "replica_name": body.get("replica_name"),
            "thumbnail_video_url": None,
            "training_progress": "0/100",
            "status": "started",
            "created_at": now,
            "updated_at": now,
            "error_message": None,
            "model_name": body.get("model_name", "phoenix-4"),
            "callback_url": body.get("callback_url"),
        }
        return JSONResponse({"replica_id": replica_id, "status": "started"})

    async def _get_replica(
        self, called: Called, parts: list[str], body: dict[str, Any]
    ) -> Response:
        replica = self.replicas.get(parts[1])
        if replica is None:
            return self._unknown("replica")
        return JSONResponse({k: v for k, v in replica.items() if k != "callback_url"})

    async def _create_video(
        self, called: Called, parts: list[str], body: dict[str, Any]
    ) -> Response:
        if not body.get("replica_id"):
            return _error(400, {"error": "Invalid replica_id"})
        if bool(body.get("script")) == bool(body.get("audio_url")):
            return _error(400, {"error": "Provide exactly one of script or audio_url"})
        video_id = secrets.token_hex(5)
        now = time.time()
        self.videos[video_id] = {
            "video_id": video_id,
            "video_name": body.get("video_name") or f"Video {video_id}",
            "status": "queued",
            "data": {"script": body.get("script")},
            "replica_id": body["replica_id"],
            "generation_progress": "0/100",
            "download_url": None,
            "stream_url": None,
            "hosted_url": f"https://tavus.video/{video_id}",
            "status_details": None,
            "created_at": _callback_time(now),
            "updated_at": _callback_time(now),
            "callback_url": body.get("callback_url"),
        }
        return JSONResponse(
            {
                "video_id": video_id,
                "video_name": self.videos[video_id]["video_name"],
                "status": "queued",
                "hosted_url": f"https://tavus.video/{video_id}",
                "created_at": formatdate(now, usegmt=True),
            }
        )

    async def _get_video(self, called: Called, parts: list[str], body: dict[str, Any]) -> Response:
        video = self.videos.get(parts[1])
        if video is None:
            return self._unknown("video")
        return JSONResponse({k: v for k, v in video.items() if k != "callback_url"})

    # ------------------------------------------------------------ callbacks

    def _after(
        self, conversation: Conversation, events: Iterable[str], *, reason: str | None = None
    ) -> BackgroundTask:
        """What happens once the answer is sent: the call's state changes and its events are
        logged and (unless withheld) POSTed, in order."""
        return BackgroundTask(self._happen, conversation, tuple(events), reason)

    async def _happen(
        self, conversation: Conversation, events: tuple[str, ...], reason: str | None
    ) -> None:
        record = conversation.record
        for event_type in events:
            now = time.time()
            properties: dict[str, Any] = {"replica_id": record["replica_id"]}
            if event_type == "system.shutdown":
                record["status"] = "ended"
                record["updated_at"] = _iso_micro(now)
                properties["shutdown_reason"] = reason or "participant_left_timeout"
            elif event_type == "application.transcription_ready":
                properties["transcript"] = _transcript(now)
            conversation.events.append(LoggedEvent(event_type, now, properties))
            await self._notify()
            envelope = {
                "properties": properties,
                "conversation_id": record["conversation_id"],
                "webhook_url": record["callback_url"],
                "event_type": event_type,
                "message_type": event_type.split(".", 1)[0],
                "timestamp": _iso_micro(now),
            }
            await self._send(record["callback_url"], envelope, event_type)

    def _verbose(self, event: LoggedEvent) -> dict[str, Any]:
        """An event as ``GET …?verbose=true`` shows it: thinner than the callback."""
        shown: dict[str, Any] = {
            "event_type": event.event_type,
            "timestamp": _iso_seconds(event.at),
        }
        if event.event_type.endswith("_joined") or event.properties is None:
            return shown
        properties = {k: v for k, v in event.properties.items() if k != "replica_id"}
        if "shutdown_reason" in properties:
            properties[self.behaviour.verbose_shutdown_key] = properties.pop("shutdown_reason")
        shown["properties"] = properties
        return shown

    async def _send(self, url: object, body: dict[str, Any], kind: str) -> None:
        withhold = self.behaviour.withhold
        if not isinstance(url, str) or not url or withhold is True:
            return
        if isinstance(withhold, frozenset) and kind in withhold:
            return
        async with self._sending:
            try:
                answer = await self._http.post(
                    url,
                    content=json.dumps(body).encode(),
                    headers={"content-type": "application/json"},
                )
                delivery = Delivery(url, body, answer.status_code)
            except httpx.HTTPError as exc:
                delivery = Delivery(url, body, None, f"{type(exc).__name__}: {exc}")
            self.deliveries.append(delivery)
        await self._notify()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------ serving

    async def start(self) -> None:
        app = Starlette(
            routes=[Route("/{path:path}", self._route, methods=["GET", "POST", "DELETE", "PATCH"])]
        )
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="critical", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        deadline = time.monotonic() + WAIT
        while not self._server.started:
            assert time.monotonic() < deadline, "the stand-in Tavus did not start"
            assert not self._task.done(), "the stand-in Tavus could not start"
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait_for(self._task, WAIT)
            self._server = self._task = None
        await self._http.aclose()


def _listed(record: dict[str, Any]) -> dict[str, Any]:
    """A conversation as list and get show it (what was asked for is not echoed)."""
    return {key: value for key, value in record.items() if key != "request"}


def _transcript(now: float) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "You are a helpful assistant. " * 20},
        {"role": "assistant", "content": "Hi, welcome. What brought you here today?",
         "timestamp": now - 30, "seconds_from_start": 0.0, "duration": 2.15},
        {"role": "user", "content": "Just testing.", "timestamp": now - 3,
         "seconds_from_start": 27.04, "duration": 1.84},
    ]  # fmt: skip


@contextlib.asynccontextmanager
async def running_standin(
    behaviour: Behaviour | None = None, *, api_key: str | None = None
) -> AsyncIterator[StandinTavus]:
    standin = StandinTavus(behaviour, api_key=api_key)
    await standin.start()
    try:
        yield standin
    finally:
        await standin.stop()
