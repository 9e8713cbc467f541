"""``tavus-monitor conversation create|list|get|end``: Tavus conversations from the terminal.

``create`` fills in ``callback_url`` with the running monitor's public callback URL (the one
thing Tavus's own CLI cannot set), so the call's callbacks land in this monitor, and remembers
what it created. ``end`` asks Tavus to end a call, which then sends ``system.shutdown`` with
``end_conversation_endpoint_hit``. Errors show Tavus's own words (Tavus's CLI hides them).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from ..state import RunningState
from ..tavus_api import TavusApi, TavusApiError
from . import options
from .exits import EXIT_OK, EXIT_USAGE
from .tavuscall import (
    API_SETTINGS,
    Failed,
    callback_options,
    choose_url,
    created_id,
    data_dir,
    fail,
    given_into,
    json_option,
    pairs,
    print_fields,
    print_json,
    remember,
    run_api,
    running_monitor,
    shown,
    table,
    warn,
)

STATUSES = ("active", "ended")


@click.group(
    help="Create, list, read and end Tavus conversations; created ones call back this monitor.",
    short_help="create, list, get and end Tavus conversations",
)
@options.use("data_dir")
def conversation(**_: Any) -> None:
    """The group; each sub-command declares the settings it reads."""


@conversation.command(
    help="Create a conversation whose callbacks come to the running monitor (its public "
    "callback URL). Prints conversation_id and conversation_url.",
    short_help="create a conversation that calls back this monitor",
)
@click.option("--persona", "--pal", "persona", metavar="ID", help="persona_id (a PAL id)")
@click.option("--replica", "--face", "replica", metavar="ID", help="replica_id (a face id)")
@click.option("--name", metavar="NAME", help="conversation_name")
@click.option("--context", metavar="TEXT", help="conversational_context")
@click.option("--greeting", metavar="TEXT", help="custom_greeting")
@click.option(
    "--test-mode",
    is_flag=True,
    help="created ended: the replica never joins, nothing is billed",
)
@click.option("--max-call-duration", type=int, metavar="S", help="properties.max_call_duration")
@click.option(
    "--participant-left-timeout", type=int, metavar="S", help="properties.participant_left_timeout"
)
@click.option(
    "--participant-absent-timeout",
    type=int,
    metavar="S",
    help="properties.participant_absent_timeout",
)
@click.option("--enable-recording", is_flag=True, help="properties.enable_recording")
@click.option(
    "--property",
    "properties",
    multiple=True,
    metavar="K=V",
    help="any other property (repeatable; V is read as JSON when it parses)",
)
@click.option(
    "--field",
    "fields",
    multiple=True,
    metavar="K=V",
    help="any other top-level field of the request (repeatable; V as JSON when it parses)",
)
@callback_options
@json_option
@options.use(*API_SETTINGS)
@click.pass_context
def create(
    ctx: click.Context,
    /,
    persona: str | None,
    replica: str | None,
    name: str | None,
    context: str | None,
    greeting: str | None,
    test_mode: bool,
    max_call_duration: int | None,
    participant_left_timeout: int | None,
    participant_absent_timeout: int | None,
    enable_recording: bool,
    properties: tuple[str, ...],
    fields: tuple[str, ...],
    callback_url: str | None,
    allow_local: bool,
    as_json: bool,
    **_: Any,
) -> int:
    try:
        body = pairs(fields, "--field")
        extra = pairs(properties, "--property")
        url = choose_url(ctx, callback_url, allow_local)
    except Failed as exc:
        return fail(ctx, str(exc), exc.code)
    given_into(
        body,
        (
            ("persona_id", persona),
            ("replica_id", replica),
            ("conversation_name", name),
            ("conversational_context", context),
            ("custom_greeting", greeting),
            ("test_mode", True if test_mode else None),
            ("callback_url", url),
        ),
    )
    if not any(body.get(key) for key in ("persona_id", "replica_id", "pal_id", "face_id")):
        print(
            f"{ctx.command_path}: Tavus needs a replica or a persona with one; "
            "pass --replica or --persona.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    settings: tuple[tuple[str, int | bool | None], ...] = (
        ("max_call_duration", max_call_duration),
        ("participant_left_timeout", participant_left_timeout),
        ("participant_absent_timeout", participant_absent_timeout),
        ("enable_recording", True if enable_recording else None),
    )
    given_into(extra, settings)
    if extra:
        given = body.get("properties")
        body["properties"] = {**(given if isinstance(given, dict) else {}), **extra}

    async def work(api: TavusApi) -> int:
        answer = await api.create_conversation(**body)
        conversation_id = created_id(answer, "conversation_id")
        if as_json:
            print_json(answer)
        else:
            print_fields(
                [
                    ("conversation_id", conversation_id),
                    ("conversation_url", answer.get("conversation_url")),
                    ("status", answer.get("status")),
                    ("callback_url", answer.get("callback_url", url)),
                ]
            )
        await remember(
            ctx,
            "conversation",
            conversation_id,
            name=_text(answer.get("conversation_name")) or name,
            url=url,
            response=answer,
        )
        return EXIT_OK

    return run_api(ctx, work)


@conversation.command(
    "list",
    help="List conversations, newest first as Tavus orders them, one page at a time.",
    short_help="list conversations",
)
@click.option("--status", type=click.Choice(STATUSES), help="only active or only ended ones")
@click.option("--limit", type=click.IntRange(min=1), default=25, show_default=True, help="a page")
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True, help="which page")
@click.option("--all", "every", is_flag=True, help="every page")
@json_option
@options.use(*API_SETTINGS)
@click.pass_context
def list_(
    ctx: click.Context,
    /,
    status: str | None,
    limit: int,
    page: int,
    every: bool,
    as_json: bool,
    **_: Any,
) -> int:
    monitor = running_monitor(ctx)

    async def work(api: TavusApi) -> int:
        total: int | None
        pages: int | None
        if every:
            rows = [row async for row in api.conversations(status, page_size=100)]
            total, pages = len(rows), 1
        else:
            got = await api.list_conversations(status, limit=limit, page=page)
            rows, total, pages = got.data, got.total_count, got.pages
        if as_json:
            print_json({"data": rows, "total_count": total})
            return EXIT_OK
        if not rows:
            print("No conversations" + (f" {status}" if status else "") + ".", file=sys.stderr)
            return EXIT_OK
        header = ("ID", "STATUS", "CREATED", "CALLBACKS", "NAME")
        lines = table(
            header,
            [
                (
                    shown(row.get("conversation_id")),
                    shown(row.get("status")),
                    shown(row.get("created_at")),
                    _callbacks_go(row.get("callback_url"), monitor),
                    shown(row.get("conversation_name")),
                )
                for row in rows
            ],
        )
        for line in lines:
            print(line)
        if not every and pages is not None and page < pages:
            print(
                f"Page {page} of {pages} ({total} conversations); --page {page + 1} "
                "shows the next, --all shows every one.",
                file=sys.stderr,
            )
        return EXIT_OK

    return run_api(ctx, work)


@conversation.command(
    help="Show one conversation; --verbose adds its events (what its callbacks said).",
    short_help="show one conversation",
)
@click.argument("conversation_id", metavar="ID")
@click.option("--verbose", is_flag=True, help="with its events, as Tavus logged them")
@json_option
@options.use(*API_SETTINGS)
@click.pass_context
def get(ctx: click.Context, /, conversation_id: str, verbose: bool, as_json: bool, **_: Any) -> int:
    monitor = running_monitor(ctx)

    async def work(api: TavusApi) -> int:
        answer = await api.get_conversation(conversation_id, verbose=verbose)
        if as_json:
            print_json(answer)
            return EXIT_OK
        fields = [
            (key, value)
            for key, value in answer.items()
            if key != "events" and not isinstance(value, dict | list)
        ]
        if "callback_url" in answer:
            fields.append(("callbacks", _callbacks_go(answer["callback_url"], monitor)))
        print_fields(fields)
        events = answer.get("events")
        if verbose:
            print(f"events ({len(events) if isinstance(events, list) else 0}):")
            for event in events if isinstance(events, list) else []:
                if isinstance(event, dict):
                    print(f"  {_event_line(event)}")
        return EXIT_OK

    return run_api(ctx, work)


@conversation.command(
    help="End a conversation; Tavus then sends system.shutdown (end_conversation_endpoint_hit) "
    "to its callback URL.",
    short_help="end a conversation",
)
@click.argument("conversation_id", metavar="ID")
@options.use(*API_SETTINGS)
@click.pass_context
def end(ctx: click.Context, /, conversation_id: str, **_: Any) -> int:
    from ..remember import RememberError, remember_ended

    async def work(api: TavusApi) -> int:
        try:
            await api.end_conversation(conversation_id)
        except TavusApiError as exc:
            # Ending an ended call: what Tavus answers is undocumented. Ask what it is now.
            if exc.status not in (400, 404, 409):
                raise
            now = await api.get_conversation(conversation_id)
            if now.get("status") != "ended":
                raise
            print(
                f"Conversation {conversation_id} had already ended "
                f"(Tavus answered the end with {exc.status}: {exc.tavus_message or 'no reason'})."
            )
        else:
            print(
                f"Ended conversation {conversation_id}; Tavus sends system.shutdown "
                "(end_conversation_endpoint_hit) to its callback URL."
            )
        try:
            await remember_ended(
                data_dir(ctx), "conversation", conversation_id, db=ctx.params.get("db")
            )
        except RememberError as exc:
            warn(f"the end of {conversation_id} was not remembered: {exc}")
        return EXIT_OK

    return run_api(ctx, work)


def _callbacks_go(url: object, monitor: RunningState | None) -> str:
    """Where a conversation's callbacks go, in a word: to this monitor, elsewhere, nowhere."""
    if not isinstance(url, str) or not url:
        return "none"
    if monitor is not None and url in (monitor.public_url, monitor.local_url, monitor.callback_url):
        return "this monitor"
    host = url.split("://", 1)[-1].split("/", 1)[0]
    return f"elsewhere ({host})"


def _event_line(event: dict[str, Any]) -> str:
    """One event of a verbose GET: when, what, and the reason of a shutdown."""
    properties = event.get("properties")
    detail = ""
    if isinstance(properties, dict):
        reason = properties.get("shutdown_reason", properties.get("reason"))
        if reason is not None:
            detail = f"  {shown(reason)}"
        elif isinstance(properties.get("transcript"), list):
            detail = f"  {len(properties['transcript'])} turns"
    return f"{shown(event.get('timestamp'))}  {shown(event.get('event_type'))}{detail}"


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
