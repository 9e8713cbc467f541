"""What the dashboard asks Tavus: create a conversation, end one, recover one's callbacks.

The dashboard runs the monitor, the store's one writer, in its own loop, so unlike the
command line it needs no hand-over: what it creates and ends is recorded with
``Store.record_created`` / ``record_ended`` and what it recovers goes through
:func:`~tavus_monitor.recover.recover_into`, the function the monitor's control route calls,
against the same store. Every call here is a coroutine for a worker: nothing blocks the UI.

Every failure is one sentence (:class:`CallFailed`): Tavus's refusal as the API client words
it, a missing key, a callback URL Tavus could not reach. The key is never part of one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..callback_target import CallbackUrlRefused, choose_callback_url
from ..monitor import Monitor
from ..recover import Outcome, recover_into
from ..settings import Settings
from ..state import RunningState
from ..store import Store, StoreError
from ..tavus_api import WHERE_THE_KEY_GOES, TavusApi, TavusApiError

ALREADY_ENDED_STATUSES = (400, 404, 409)
"""What Tavus may answer to ending an ended call (undocumented): then its status is asked."""


class CallFailed(Exception):
    """A call to Tavus from the dashboard failed; ``str()`` is the one sentence to show."""


@dataclass(frozen=True, slots=True)
class NewConversation:
    """What the create form asks for (the callback URL is the monitor's, not asked)."""

    replica_id: str = ""
    persona_id: str = ""
    name: str = ""
    test_mode: bool = False
    max_call_duration: int | None = None

    def body(self, callback_url: str) -> dict[str, Any]:
        """The ``POST /conversations`` body."""
        body: dict[str, Any] = {"callback_url": callback_url}
        for key, value in (
            ("replica_id", self.replica_id),
            ("persona_id", self.persona_id),
            ("conversation_name", self.name),
        ):
            if value:
                body[key] = value
        if self.test_mode:
            body["test_mode"] = True
        if self.max_call_duration is not None:
            body["properties"] = {"max_call_duration": self.max_call_duration}
        return body


@dataclass(frozen=True, slots=True)
class Made:
    """A conversation created: its id and the URL to join it."""

    conversation_id: str
    conversation_url: str | None
    callback_url: str
    status: str | None


class TavusCalls:
    """The dashboard's calls to Tavus, with its settings and its running monitor."""

    def __init__(self, settings: Settings, monitor: Monitor) -> None:
        self.settings = settings
        self.monitor = monitor

    def missing_key(self) -> str | None:
        """The sentence that says how to set the key, or None when one is set."""
        if self._key():
            return None
        return f"No Tavus API key is set; {WHERE_THE_KEY_GOES}, then start the dashboard again."

    def callback_url(self) -> str:
        """The callback URL a conversation created here gets, as the command line chooses it
        (:func:`choose_callback_url`): the public one, never a local one Tavus cannot reach."""
        monitor = self.monitor
        if monitor.port is None:
            raise CallFailed("The server is not running, so nothing Tavus sends could arrive.")
        state = RunningState(
            pid=os.getpid(),
            local_url=monitor.local_url,
            callback_url=monitor.callback_url,
            healthz_url=monitor.base_url + "/healthz",
            db=None,
            started_at=0.0,
            public_url=None if monitor.local_only else monitor.callback_url,
        )
        try:
            return choose_callback_url(state)
        except CallbackUrlRefused:
            raise CallFailed(
                f"This monitor has only a local callback URL ({monitor.local_url}), which "
                "Tavus cannot reach: fix the tunnel (the header says how) or restart with "
                "--public-url, then create the conversation."
            ) from None

    async def create(self, form: NewConversation) -> Made:
        """Create the conversation with the monitor's callback URL, and remember it."""
        if not form.replica_id and not form.persona_id:
            raise CallFailed("Tavus needs a replica or a persona with one; fill in either.")
        url = self.callback_url()
        store = self._store()
        async with self._api() as api:
            answer = await _asking(api.create_conversation(**form.body(url)))
        conversation_id = answer.get("conversation_id")
        if not isinstance(conversation_id, str) or not conversation_id:
            raise CallFailed("Tavus answered the create without a conversation_id.")
        name = _text(answer.get("conversation_name")) or form.name or None
        try:
            await store.record_created(
                "conversation", conversation_id, name=name, callback_url=url, response=answer
            )
        except StoreError as exc:
            raise CallFailed(
                f"Created {conversation_id}, but the store did not remember it ({exc})."
            ) from None
        return Made(
            conversation_id, _text(answer.get("conversation_url")), url, _text(answer.get("status"))
        )

    async def end(self, conversation_id: str) -> str:
        """End the call; the sentence for the toast (Tavus then sends the shutdown)."""
        store = self._store()
        async with self._api() as api:
            try:
                await api.end_conversation(conversation_id)
            except TavusApiError as exc:
                if exc.status not in ALREADY_ENDED_STATUSES:
                    raise CallFailed(str(exc)) from None
                now = await _asking(api.get_conversation(conversation_id))
                if now.get("status") != "ended":
                    raise CallFailed(str(exc)) from None
                said = f"{exc.status}: {exc.tavus_message or 'no reason'}"
                sentence = f"{conversation_id} had already ended (Tavus answered the end {said})."
            else:
                sentence = (
                    f"Ended {conversation_id}: Tavus sends the shutdown "
                    "(end_conversation_endpoint_hit) to its callback URL."
                )
        try:
            await store.record_ended("conversation", conversation_id)
        except StoreError as exc:
            sentence += f" The store did not note the end ({exc})."
        return sentence

    async def recover(self, conversation_id: str) -> Outcome:
        """Store what Tavus's log of the conversation holds and the store lacks."""
        store = self._store()
        async with self._api() as api:
            answer = await _asking(api.get_conversation(conversation_id, verbose=True))
        try:
            return await recover_into(store, conversation_id, answer, now=time.time())
        except StoreError as exc:
            raise CallFailed(f"The recovered events were not stored ({exc}).") from None

    # ------------------------------------------------------------------ helpers

    def _key(self) -> str | None:
        return self.settings.tavus_api_key or None

    def _api(self) -> TavusApi:
        key = self._key()
        if key is None:
            raise CallFailed(self.missing_key() or "No Tavus API key is set.")
        return TavusApi(key, self.settings.tavus_api_base_url)

    def _store(self) -> Store:
        store = self.monitor.store
        if store is None:
            raise CallFailed(
                "The server is not running (its error is in the header), so nothing could be "
                "recorded; fix it and start the dashboard again."
            )
        return store


async def _asking(request: Any) -> Mapping[str, Any]:
    """Await one request to Tavus; its refusal as :class:`CallFailed`."""
    try:
        answer: Mapping[str, Any] = await request
    except TavusApiError as exc:
        raise CallFailed(str(exc)) from None
    return answer


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
