"""``tavus-monitor recover [ID]...``: store the events whose callbacks never arrived.

It asks Tavus for each conversation's own log of its events (``GET
/v2/conversations/{id}?verbose=true``) and stores those the store lacks, marked as recovered
(:mod:`tavus_monitor.recover` says how they are shaped and matched). With no ids it checks the
conversations that look incomplete: those the store knows without a shutdown or with a
transcript overdue, and those created through the monitor of which nothing arrived.

It reads the Tavus settings and where the store is (``tavuscall.API_SETTINGS``). While a
monitor runs, the events are handed to it, the store's one writer; else the store is opened.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from ..tavus_api import TavusApi, TavusApiError
from . import options
from .exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from .tavuscall import API_SETTINGS, Failed, data_dir, fail, run_api, running_monitor


@click.command(
    help="Store the events of conversations whose callbacks never arrived (the monitor was "
    "down, the tunnel's URL changed), from Tavus's own log of them (GET "
    "/v2/conversations/ID?verbose=true). They are marked recovered (source api); an event "
    "already stored is never stored again. With no ID, checks the conversations that look "
    "incomplete (no shutdown, or no transcript long after it) and those created here of "
    "which nothing arrived. Recordings and canvas interactions are not in Tavus's log.",
    short_help="store events whose callbacks never arrived, from Tavus's API",
)
@click.argument("conversation_ids", nargs=-1, metavar="[CONVERSATION_ID]...")
@click.option(
    "--since",
    metavar="WHEN",
    help="with no ID: only conversations active since WHEN (30m, 24h, 7d, or an ISO date)",
)
@options.use(*API_SETTINGS)
@click.pass_context
def recover(
    ctx: click.Context, /, conversation_ids: tuple[str, ...], since: str | None, **_: Any
) -> int:
    from ..export import ExportError, parse_since

    ids = list(dict.fromkeys(conversation_ids))
    if ids and since is not None:
        return fail(
            ctx,
            "--since limits which conversations are checked when no id is given; "
            "give ids or --since, not both.",
            EXIT_USAGE,
        )
    if not ids:
        try:
            cutoff = parse_since(since) if since is not None else None
        except ExportError as exc:
            return fail(ctx, str(exc), EXIT_USAGE)
        try:
            ids = _incomplete(ctx, cutoff)
        except Failed as exc:
            return fail(ctx, str(exc), exc.code)
        if not ids:
            return EXIT_OK

    async def work(api: TavusApi) -> int:
        return await _recover(ctx, api, ids)

    return run_api(ctx, work)


def _store_path(ctx: click.Context) -> Path:
    """The store: ``--db``, else the running monitor's, else ``events.db`` in the data dir."""
    db: Path | None = ctx.params.get("db")
    if db is not None:
        return db
    state = running_monitor(ctx)
    if state is not None and state.db:
        return Path(state.db)
    return data_dir(ctx) / "events.db"


def _incomplete(ctx: click.Context, cutoff: float | None) -> list[str]:
    """The ids to ask about with none given (printed with why on stderr); read-only."""
    import sqlite3

    from ..recover import candidates
    from ..store import ReadOnlyStore, StoreError

    path = _store_path(ctx)
    if not path.exists():
        print(f"No events stored yet at {path}: nothing to recover.", file=sys.stderr)
        return []
    try:
        with ReadOnlyStore(path) as store:
            found = candidates(store, now=time.time(), cutoff=cutoff)
    except (StoreError, sqlite3.Error) as exc:
        raise Failed(f"cannot read the event store {path} ({exc}).", EXIT_USAGE) from None
    if not found:
        print("No conversation looks incomplete: nothing to recover.", file=sys.stderr)
        return []
    print(f"Checking {len(found)} conversation(s) that look incomplete:", file=sys.stderr)
    for candidate in found:
        print(f"  {candidate.conversation_id}: {candidate.why}", file=sys.stderr)
    return [candidate.conversation_id for candidate in found]


async def _recover(ctx: click.Context, api: TavusApi, ids: list[str]) -> int:
    from ..recover import NOT_IN_THE_LOG, Outcome, RecoverError, destination

    outcomes: list[Outcome] = []
    try:
        async with destination(data_dir(ctx), ctx.params.get("db")) as recover_one:
            for conversation_id in ids:
                try:
                    conversation = await api.get_conversation(conversation_id, verbose=True)
                except TavusApiError as exc:
                    outcome = Outcome(conversation_id, error=str(exc))
                else:
                    outcome = await recover_one(conversation_id, conversation)
                outcomes.append(outcome)
                print(outcome.line, flush=True)
    except RecoverError as exc:
        raise Failed(str(exc)) from None
    failed = sum(outcome.error is not None for outcome in outcomes)
    recovered = sum(len(outcome.recovered) for outcome in outcomes)
    already = sum(outcome.already for outcome in outcomes)
    total = (
        f"{recovered} recovered in {len(outcomes)} conversation(s), {already} already here"
        + (f", {failed} failed" if failed else "")
        + f" ({NOT_IN_THE_LOG})."
    )
    print(total, flush=True)
    return EXIT_FAILED if failed else EXIT_OK
