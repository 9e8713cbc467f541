"""Store queries from the dashboard's workers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from ..store import StoreError

T = TypeVar("T")


async def read_store(query: Callable[..., T], *args: Any) -> T | None:
    """Run a store query in a thread; None when the store has closed (the app is quitting).

    A pane's load can be scheduled just before quitting and run just after the
    store closed; that is no error worth ending the app over.
    """
    try:
        return await asyncio.to_thread(query, *args)
    except StoreError:
        return None
