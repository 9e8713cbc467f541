"""Tavus's REST API: create what the monitor watches, list it, read it, end it.

One async client (:class:`TavusApi`, over ``httpx.AsyncClient``) serves both the command line
(``asyncio.run``) and the dashboard (its own loop). It speaks the API as documented in
``docs/tavus-api.md``:

- every request carries ``x-api-key``; the key is never part of a sentence this module makes;
- the base URL has the same meaning as in Tavus's own CLI (``TAVUS_PUBLIC_API_BASE_URL``,
  which includes ``/v2``), so one stand-in or staging URL serves both tools;
- a refusal becomes :class:`TavusApiError`, one sentence with the status and Tavus's own words
  (``{"error": …}`` or ``{"message": …}``: Tavus uses both, even for one status), which the
  official CLI hides;
- conversation lists are paged 1-indexed (``page`` default 1, ``limit`` default 10, with
  ``total_count``); :meth:`TavusApi.conversations` follows the pages.

No retries: Tavus documents no rate limit for these endpoints, and creating twice on a timeout
would start two billed calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from . import __version__
from .sanitize import printable
from .settings import DEFAULT_TAVUS_API_BASE_URL as DEFAULT_BASE_URL

API_KEY_ENV = "TAVUS_API_KEY"
BASE_URL_ENV = "TAVUS_PUBLIC_API_BASE_URL"
TIMEOUT = 30.0
"""Seconds per request, as Tavus's CLI waits."""
WHERE_THE_KEY_GOES = (
    f"set {API_KEY_ENV} (or --tavus-api-key, or tavus_api_key in the config file) "
    "to a key from your Tavus account"
)
_MESSAGE_KEPT = 300
"""Characters of Tavus's message kept in a sentence."""


class TavusApiError(Exception):
    """A request to Tavus failed; ``str()`` is the one sentence to show."""

    def __init__(
        self, sentence: str, *, status: int | None = None, tavus_message: str | None = None
    ) -> None:
        super().__init__(sentence)
        self.status = status
        """The HTTP status, or None when no answer came."""
        self.tavus_message = tavus_message
        """What Tavus said (its ``error`` or ``message``), if anything."""


@dataclass(frozen=True, slots=True)
class Target:
    """What a request is about, for its failure's sentence."""

    action: str
    """``create a conversation``, ``end conversation c123``…"""
    kind: str | None = None
    resource_id: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: its rows and, when Tavus says, how many there are in all."""

    data: list[dict[str, Any]]
    total_count: int | None
    page: int
    limit: int

    @property
    def pages(self) -> int | None:
        """How many pages there are at this ``limit`` (None when Tavus gave no count)."""
        if self.total_count is None or self.limit <= 0:
            return None
        return max(1, -(-self.total_count // self.limit))


class TavusApi:
    """Tavus's API with one key: ``async with TavusApi(key) as api: await api.…``."""

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._key = api_key
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).netloc or self.base_url
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers={
                "x-api-key": api_key,
                "accept": "application/json",
                "user-agent": f"tavus-monitor/{__version__}",
            },
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    async def __aenter__(self) -> TavusApi:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------ conversations

    async def create_conversation(self, **fields: Any) -> dict[str, Any]:
        """``POST /conversations`` with ``fields`` as the body (``persona_id``,
        ``replica_id``, ``callback_url``, ``test_mode``, ``properties``…); Tavus's answer."""
        return await self._object("POST", "conversations", Target("create a conversation"), fields)

    async def list_conversations(
        self, status: str | None = None, *, limit: int | None = None, page: int | None = None
    ) -> Page:
        """One page of ``GET /conversations`` (``page`` is 1-indexed; Tavus's defaults are
        page 1 and 10 a page)."""
        params: dict[str, str | int] = {}
        if status is not None:
            params["status"] = status
        if limit is not None:
            params["limit"] = limit
        if page is not None:
            params["page"] = page
        answer = await self._object(
            "GET", "conversations", Target("list conversations"), params=params
        )
        rows = answer.get("data")
        total = answer.get("total_count")
        return Page(
            data=[row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else [],
            total_count=total if isinstance(total, int) and not isinstance(total, bool) else None,
            page=1 if page is None else page,
            limit=10 if limit is None else limit,
        )

    async def conversations(
        self, status: str | None = None, *, page_size: int = 100
    ) -> AsyncIterator[dict[str, Any]]:
        """Every conversation (with ``status``), page after page until ``total_count`` is
        reached, a page comes back short or empty."""
        page, seen = 1, 0
        while True:
            got = await self.list_conversations(status, limit=page_size, page=page)
            for row in got.data:
                yield row
            seen += len(got.data)
            if len(got.data) < page_size or (
                got.total_count is not None and seen >= got.total_count
            ):
                return
            page += 1

    async def get_conversation(
        self, conversation_id: str, *, verbose: bool = False
    ) -> dict[str, Any]:
        """``GET /conversations/{id}``; with ``verbose``, its ``events`` (the callbacks' log)."""
        params = {"verbose": "true"} if verbose else None
        target = Target(f"get conversation {conversation_id}", "conversation", conversation_id)
        return await self._object(
            "GET", f"conversations/{_segment(conversation_id)}", target, params=params
        )

    async def end_conversation(self, conversation_id: str) -> None:
        """``POST /conversations/{id}/end`` (no body); Tavus then sends ``system.shutdown``
        with ``end_conversation_endpoint_hit``."""
        target = Target(f"end conversation {conversation_id}", "conversation", conversation_id)
        await self._send("POST", f"conversations/{_segment(conversation_id)}/end", target)

    async def delete_conversation(self, conversation_id: str, *, hard: bool = False) -> None:
        """``DELETE /conversations/{id}`` (``hard``: its assets too, irrevocably)."""
        target = Target(f"delete conversation {conversation_id}", "conversation", conversation_id)
        params = {"hard": "true"} if hard else None
        await self._send(
            "DELETE", f"conversations/{_segment(conversation_id)}", target, params=params
        )

    # ------------------------------------------------------------ replicas, videos

    async def create_replica(self, **fields: Any) -> dict[str, Any]:
        """``POST /replicas`` (``train_video_url``, ``replica_name``, ``callback_url``…)."""
        return await self._object("POST", "replicas", Target("create a replica"), fields)

    async def get_replica(self, replica_id: str, *, verbose: bool = False) -> dict[str, Any]:
        """``GET /replicas/{id}``: ``status`` is ``started``, ``completed`` or ``error``."""
        target = Target(f"get replica {replica_id}", "replica", replica_id)
        params = {"verbose": "true"} if verbose else None
        return await self._object("GET", f"replicas/{_segment(replica_id)}", target, params=params)

    async def create_video(self, **fields: Any) -> dict[str, Any]:
        """``POST /videos`` (``replica_id``, ``script`` or ``audio_url``, ``callback_url``…)."""
        return await self._object("POST", "videos", Target("create a video"), fields)

    async def get_video(self, video_id: str, *, verbose: bool = False) -> dict[str, Any]:
        """``GET /videos/{id}``: ``status`` is ``queued``, ``generating``, ``ready``…"""
        target = Target(f"get video {video_id}", "video", video_id)
        params = {"verbose": "true"} if verbose else None
        return await self._object("GET", f"videos/{_segment(video_id)}", target, params=params)

    # ------------------------------------------------------------ the one way out

    async def _object(
        self,
        method: str,
        path: str,
        target: Target,
        body: Mapping[str, Any] | None = None,
        *,
        params: Mapping[str, str | int] | None = None,
    ) -> dict[str, Any]:
        """A request whose answer is a JSON object."""
        response = await self._send(method, path, target, body, params=params)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise TavusApiError(
                f"Tavus answered the request to {target.action} with {response.status_code} "
                f"but not a JSON object ({_shown(response.text) or 'an empty body'}).",
                status=response.status_code,
            )
        return answer

    async def _send(
        self,
        method: str,
        path: str,
        target: Target,
        body: Mapping[str, Any] | None = None,
        *,
        params: Mapping[str, str | int] | None = None,
    ) -> httpx.Response:
        """Send one request; a refusal or no answer becomes :class:`TavusApiError`."""
        try:
            response = await self._http.request(
                method, path, json=dict(body) if body is not None else None, params=params
            )
        except httpx.TimeoutException:
            raise TavusApiError(
                f"{self.host} did not answer within {self._http.timeout.read or TIMEOUT:g} s "
                f"while trying to {target.action}; try again."
            ) from None
        except httpx.HTTPError as exc:
            reason = self._scrub(str(exc)) or type(exc).__name__
            raise TavusApiError(
                f"Cannot reach {self.host} to {target.action} ({reason}); "
                f"check the network, or {BASE_URL_ENV} if you set it."
            ) from None
        if response.is_success:
            return response
        raise self._refusal(response, target)

    def _refusal(self, response: httpx.Response, target: Target) -> TavusApiError:
        status = response.status_code
        message = tavus_message(response)
        said = f"{status}: {self._scrub(message)}" if message else str(status)
        what = f"{target.kind} {target.resource_id}" if target.kind else None
        if status == 401:
            sentence = f"Tavus refused the API key ({said}); {WHERE_THE_KEY_GOES}."
        elif status == 404 and what is not None:
            sentence = f"Tavus has no {what} ({said}); check the id."
        elif status == 404:
            sentence = (
                f"Tavus answered {said} to the request to {target.action}; "
                f"check {BASE_URL_ENV} (it must end in /v2) if you set it."
            )
        elif (
            status == 400 and what is not None and message and message.lower().startswith("invalid")
        ):
            sentence = f"Tavus does not know {what} ({said}); check the id."
        elif status == 400 and message and "concurrent" in message.lower():
            sentence = (
                f"Tavus refused to {target.action} ({said}); end an active conversation "
                "first, or create it in test mode."
            )
        elif status == 429:
            wait = response.headers.get("retry-after")
            later = f"try again in {wait} s" if wait and wait.isdigit() else "try again later"
            sentence = f"Tavus is limiting requests ({said}); {later}."
        elif status >= 500:
            sentence = f"Tavus failed to {target.action} ({said}); try again later."
        else:
            sentence = f"Tavus refused to {target.action} ({said})."
        return TavusApiError(sentence, status=status, tavus_message=message)

    def _scrub(self, text: str) -> str:
        """``text`` without the API key, should anything ever echo it."""
        return text.replace(self._key, "<api key>") if self._key else text


def tavus_message(response: httpx.Response) -> str | None:
    """What Tavus said in a refusal: ``error``, else ``message``, else the text itself."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("error", "message", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return _shown(value)
    return _shown(response.text) or None


def _shown(text: str) -> str:
    """Untrusted text as part of a one-line sentence: one line, no terminal controls, short,
    and without a full stop of its own (the sentence has one)."""
    line = printable(" ".join(text.split()))
    if len(line) > _MESSAGE_KEPT:
        line = line[: _MESSAGE_KEPT - 1] + "…"
    return line.rstrip(".")


def _segment(resource_id: str) -> str:
    """An id as one path segment, whatever it holds (ids are never validated here)."""
    return quote(resource_id, safe="")
