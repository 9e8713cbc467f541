"""The running monitor's control routes: other ``tavus-monitor`` processes hand it records.

The store has exactly one writer process, the monitor's. So ``tavus-monitor conversation
create`` (another process) does not open the store while a monitor runs: it POSTs what it
created to ``/control/created`` on the monitor's loopback address, and the monitor records it
through its own store (``/control/ended`` likewise). See :mod:`tavus_monitor.remember`, the
other side.

The server may be reachable from the internet through the tunnel, and the webhook token is no
secret from whoever sees a callback URL (Tavus echoes it in every ``webhook_url``). So these
routes need their own key: a random one the monitor makes each run, puts on
``app.state.control_key`` and writes into ``state.json`` (readable by its user only). Without
it (``create_app`` used on its own) they answer 404 like any unknown path; with a wrong
one, 403. Refusals here are not recorded as rejected requests: nothing Tavus sent is lost.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .recover import RECOVER_PATH, handle_request
from .store import Store, StoreError

CREATED_PATH = "/control/created"
ENDED_PATH = "/control/ended"
KEY_HEADER = "x-tavus-monitor-control"
KINDS = ("conversation", "replica", "video")
MAX_BODY = 1024 * 1024
"""Bytes a record may take: Tavus's answer to a create is well under a kilobyte."""
RECOVER_MAX_BODY = 256 * 1024 * 1024
"""Bytes recovered events may take: a verbose GET's answer holds the whole transcript
(several MB for a long call). The server's --max-body-mb applies before this."""


def routes(store: Store) -> list[Route]:
    """The control routes over ``store``, to mount before the server's catch-all."""

    async def created(request: Request) -> Response:
        """Record a resource created through Tavus's API (:meth:`Store.record_created`)."""
        refused, body = await _admit(request)
        if refused is not None:
            return refused
        name, callback_url, response = (
            body.get("name"),
            body.get("callback_url"),
            body.get("response"),
        )
        if not (
            _optional_text(name) and _optional_text(callback_url) and isinstance(response, dict)
        ):
            return _error(400, "name and callback_url must be text or null, response an object")
        try:
            await store.record_created(
                body["kind"],
                body["resource_id"],
                name=name,
                callback_url=callback_url,
                response=response,
            )
        except StoreError as exc:
            return _error(503, f"not recorded: {exc}")
        return JSONResponse({"status": "recorded"})

    async def ended(request: Request) -> Response:
        """Note that a created resource was ended (:meth:`Store.record_ended`)."""
        refused, body = await _admit(request)
        if refused is not None:
            return refused
        try:
            known = await store.record_ended(body["kind"], body["resource_id"])
        except StoreError as exc:
            return _error(503, f"not recorded: {exc}")
        return JSONResponse({"status": "recorded", "known": known})

    async def recover(request: Request) -> Response:
        """Store what a verbose GET lists and the store lacks (:func:`recover.handle_request`):
        matched inside the monitor, so a callback arriving meanwhile is not stored twice."""
        refused, body = await _admit(request, limit=RECOVER_MAX_BODY)
        if refused is not None:
            return refused
        try:
            status, answer = await handle_request(store, body, now=time.time())
        except StoreError as exc:
            return _error(503, f"not recorded: {exc}")
        return JSONResponse(answer, status_code=status)

    return [
        Route(CREATED_PATH, created, methods=["POST"]),
        Route(ENDED_PATH, ended, methods=["POST"]),
        Route(RECOVER_PATH, recover, methods=["POST"]),
    ]


async def _admit(
    request: Request, *, limit: int = MAX_BODY
) -> tuple[Response | None, dict[str, Any]]:
    """The refusal for a request without the key or a usable body, else its body."""
    expected = getattr(request.app.state, "control_key", None)
    if not isinstance(expected, str) or not expected:
        return _error(404, "no such path"), {}
    given = request.headers.get(KEY_HEADER, "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return _error(403, "wrong control key"), {}
    length = request.headers.get("content-length")
    if length is None or not length.isdigit() or int(length) > limit:
        return _error(413, f"a record is sent with a Content-Length of at most {limit}"), {}
    try:
        body = json.loads(await request.body())
    except ValueError:
        return _error(400, "the body is not JSON"), {}
    if not (
        isinstance(body, dict)
        and body.get("kind") in KINDS
        and isinstance(body.get("resource_id"), str)
        and body["resource_id"]
    ):
        return _error(400, f"kind must be one of {', '.join(KINDS)} and resource_id text"), {}
    return None, body


def _optional_text(value: object) -> bool:
    return value is None or isinstance(value, str)


def _error(status: int, reason: str) -> Response:
    return JSONResponse({"status": "error", "error": reason}, status_code=status)
