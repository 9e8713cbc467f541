"""Remembering what was created through Tavus's API, from any ``tavus-monitor`` process.

A created resource is kept with the callback URL it was given, so a later URL change (a new
tunnel) can be told apart from Tavus going quiet, and ``recover`` knows what to ask for. The
store has exactly one writer process: while a monitor runs (``state.json``), the record is
handed to it over loopback (:mod:`tavus_monitor.control`); with none running, the store is
opened here, written and closed. Both ways are decided in one place, :func:`_deliver`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from .control import CREATED_PATH, ENDED_PATH, KEY_HEADER
from .private import private_dir
from .state import RunningState, read_state
from .store import Store, StoreError

TIMEOUT = 10.0
"""Seconds the running monitor has to take a record (it commits it first)."""


class RememberError(Exception):
    """The record could not be kept; the message is one sentence saying why."""


async def remember_created(
    data_dir: Path,
    kind: str,
    resource_id: str,
    *,
    name: str | None,
    callback_url: str | None,
    response: Mapping[str, Any],
    db: Path | None = None,
) -> str:
    """Keep ``kind``/``resource_id`` as created with ``callback_url`` (Tavus's ``response``).

    ``data_dir`` finds the running monitor; ``db`` is the store to open when none runs
    (default ``events.db`` in ``data_dir``). Returns where it went, for a status line.
    """
    record = {
        "kind": kind,
        "resource_id": resource_id,
        "name": name,
        "callback_url": callback_url,
        "response": dict(response),
    }

    async def write(store: Store) -> None:
        await store.record_created(
            kind, resource_id, name=name, callback_url=callback_url, response=response
        )

    return await _deliver(data_dir, db, CREATED_PATH, record, write)


async def remember_ended(
    data_dir: Path, kind: str, resource_id: str, *, db: Path | None = None
) -> str:
    """Note that ``kind``/``resource_id`` was ended through the API (as
    :func:`remember_created`)."""

    async def write(store: Store) -> None:
        await store.record_ended(kind, resource_id)

    record = {"kind": kind, "resource_id": resource_id}
    return await _deliver(data_dir, db, ENDED_PATH, record, write)


async def _deliver(
    data_dir: Path,
    db: Path | None,
    path: str,
    record: Mapping[str, Any],
    write: Callable[[Store], Awaitable[None]],
) -> str:
    """To the running monitor if there is one, else into the store file itself."""
    state = read_state(data_dir)
    if state is not None:
        await _hand_over(state, path, record)
        return "the running monitor"
    store_path = db if db is not None else data_dir / "events.db"
    try:
        if db is None:
            private_dir(data_dir)
        store = await asyncio.to_thread(Store, store_path)
    except Exception as exc:  # a directory or file that cannot hold a store (StoreError, OSError…)
        raise RememberError(
            f"Cannot open the event store {store_path} to remember it ({exc})."
        ) from None
    try:
        await write(store)
    except StoreError as exc:
        raise RememberError(f"Could not write to the event store {store_path} ({exc}).") from None
    finally:
        await asyncio.to_thread(store.close)
    return str(store_path)


async def _hand_over(state: RunningState, path: str, record: Mapping[str, Any]) -> None:
    """POST ``record`` to the running monitor's control route ``path``."""
    if not state.control_key:
        raise RememberError(
            f"The running monitor (pid {state.pid}) is an older tavus-monitor that cannot take "
            "records; restart it with this version."
        )
    base = state.healthz_url.removesuffix("/healthz")
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            answer = await http.post(
                base + path,
                content=json.dumps(record).encode(),
                headers={KEY_HEADER: state.control_key, "content-type": "application/json"},
            )
    except httpx.HTTPError as exc:
        raise RememberError(
            f"The running monitor at {base} did not take the record ({exc or type(exc).__name__})."
        ) from None
    if not answer.is_success:
        try:
            reason = answer.json().get("error") or answer.text
        except (ValueError, AttributeError):
            reason = answer.text
        raise RememberError(
            f"The running monitor at {base} refused the record ({answer.status_code}: "
            f"{' '.join(str(reason).split())[:200]})."
        )
