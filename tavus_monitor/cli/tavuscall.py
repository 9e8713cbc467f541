"""What the commands that call Tavus share: the key, one event loop, the callback URL, the
record of what was created, and how they print.

``conversation``, ``replica`` and ``video`` each declare :data:`API_SETTINGS` (the key, the base
URL and where the store is) and run their work through :func:`run_api`, which turns every
failure into the one sentence and exit code the rest of the command line gives.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from ..callback_target import CallbackUrlRefused, choose_callback_url
from ..sanitize import printable
from ..state import RunningState, read_state
from ..tavus_api import WHERE_THE_KEY_GOES, TavusApi, TavusApiError
from . import options
from .exits import EXIT_FAILED, EXIT_USAGE

API_SETTINGS = ("tavus_api_key", "tavus_api_base_url", "db", "data_dir")
"""The settings of every command that calls Tavus."""

F = TypeVar("F", bound=Callable[..., Any])


class Failed(Exception):
    """A command stops with one sentence and an exit code."""

    def __init__(self, sentence: str, code: int = EXIT_FAILED) -> None:
        super().__init__(sentence)
        self.code = code


def callback_options(function: F) -> F:
    """``--callback-url`` and ``--allow-local``, for a command that creates a resource."""
    function = click.option(
        "--allow-local",
        is_flag=True,
        help="send a callback URL Tavus cannot reach all the same (a local stand-in)",
    )(function)
    return click.option(
        "--callback-url",
        metavar="URL",
        help="send this callback URL instead of the running monitor's public one",
    )(function)


def json_option(function: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="print Tavus's answer as JSON")(
        function
    )


def data_dir(ctx: click.Context) -> Path:
    path: Path = options.shared(ctx, "data_dir")
    return path


def running_monitor(ctx: click.Context) -> RunningState | None:
    return read_state(data_dir(ctx))


def choose_url(ctx: click.Context, override: str | None, allow_local: bool) -> str:
    """The callback URL for a new resource (:func:`choose_callback_url`), or :class:`Failed`."""
    try:
        return choose_callback_url(running_monitor(ctx), override=override, allow_local=allow_local)
    except CallbackUrlRefused as exc:
        raise Failed(str(exc)) from None


def run_api(ctx: click.Context, work: Callable[[TavusApi], Awaitable[int]]) -> int:
    """Run ``work`` with a client for the configured key and base URL, on its own loop; a
    failure is printed as one sentence and its exit code returned."""
    key: str | None = ctx.params.get("tavus_api_key")
    base_url: str = ctx.params["tavus_api_base_url"]
    if not key:
        return fail(ctx, f"No Tavus API key is set; {WHERE_THE_KEY_GOES}.", EXIT_USAGE)

    async def with_client() -> int:
        async with TavusApi(key, base_url) as api:
            return await work(api)

    try:
        return asyncio.run(with_client())
    except TavusApiError as exc:
        return fail(ctx, str(exc), EXIT_FAILED)
    except Failed as exc:
        return fail(ctx, str(exc), exc.code)


def fail(ctx: click.Context, sentence: str, code: int) -> int:
    print(f"{ctx.command_path}: {sentence}", file=sys.stderr)
    return code


def given_into(body: dict[str, Any], given: Iterable[tuple[str, object]]) -> None:
    """Set each field a flag gave (not None) in ``body``, over what ``--field`` said."""
    for key, value in given:
        if value is not None:
            body[key] = value


def created_id(answer: dict[str, Any], *keys: str) -> str:
    """The id Tavus's answer to a create gives under the first of ``keys`` it has."""
    value = next((answer[key] for key in keys if key in answer), None)
    if not isinstance(value, str) or not value:
        raise Failed(f"Tavus answered the create without a {keys[0]}.")
    return value


def warn(sentence: str) -> None:
    print(f"warning: {sentence}", file=sys.stderr)


def pairs(values: Iterable[str], flag: str) -> dict[str, Any]:
    """``KEY=VALUE`` options as a dict; a value that parses as JSON (``60``, ``true``,
    ``["a"]``, ``{"k": 1}``) is that JSON, any other is the text itself."""
    parsed: dict[str, Any] = {}
    for pair in values:
        key, equals, text = pair.partition("=")
        if not equals or not key.strip():
            raise Failed(f"{flag} {pair!r} is not KEY=VALUE.", EXIT_USAGE)
        try:
            parsed[key.strip()] = json.loads(text)
        except ValueError:
            parsed[key.strip()] = text
    return parsed


async def remember(
    ctx: click.Context,
    kind: str,
    resource_id: str,
    *,
    name: str | None,
    url: str | None,
    response: Mapping[str, Any],
) -> None:
    """Keep what was created (:func:`remember_created`); a failure is a warning, not an error:
    the resource exists at Tavus all the same, and running the command again would make a
    second one."""
    from ..remember import RememberError, remember_created

    try:
        await remember_created(
            data_dir(ctx),
            kind,
            resource_id,
            name=name,
            callback_url=url,
            response=response,
            db=ctx.params.get("db"),
        )
    except RememberError as exc:
        warn(f"{kind} {resource_id} was created but not remembered: {exc}")


def print_json(value: Any) -> None:
    """Tavus's answer as JSON (ASCII escapes: nothing in it can act on the terminal)."""
    print(json.dumps(value, indent=2))


def print_fields(fields: Sequence[tuple[str, Any]]) -> None:
    """``key  value`` lines, aligned; values made safe for the terminal."""
    width = max((len(key) for key, _ in fields), default=0)
    for key, value in fields:
        print(f"{key.ljust(width)}  {shown(value)}")


def shown(value: Any) -> str:
    """A value from Tavus as one safe line."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return printable(value)
    return printable(json.dumps(value))


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Aligned columns; the last one is not padded."""
    cells = [[printable(cell) for cell in row] for row in (header, *rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header) - 1)]
    return [
        "  ".join(
            [*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]
        ).rstrip()
        for row in cells
    ]
