"""``tavus-monitor video create``: generate a video whose callback comes to this monitor.

The video's callback (the whole video object, ``ready`` or ``error``) goes to the
``callback_url`` chosen as for conversations (the running monitor's public URL).
"""

from __future__ import annotations

from typing import Any

import click

from ..tavus_api import TavusApi
from . import options
from .exits import EXIT_OK, EXIT_USAGE
from .tavuscall import (
    API_SETTINGS,
    Failed,
    callback_options,
    choose_url,
    created_id,
    fail,
    given_into,
    json_option,
    pairs,
    print_fields,
    print_json,
    remember,
    run_api,
)


@click.group(help="Generate Tavus videos whose callbacks come to this monitor.")
@options.use("data_dir")
def video(**_: Any) -> None:
    """The group; each sub-command declares the settings it reads."""


@video.command(
    help="Generate a video of a replica saying a script (or an audio file); its callback "
    "comes to the running monitor.",
    short_help="generate a video that calls back this monitor",
)
@click.option("--replica", required=True, metavar="ID", help="replica_id")
@click.option("--script", metavar="TEXT", help="what the replica says")
@click.option("--audio-url", metavar="URL", help="an audio file instead of a script")
@click.option("--name", metavar="NAME", help="video_name")
@click.option("--background-url", metavar="URL", help="a website to show behind the replica")
@click.option(
    "--field",
    "fields",
    multiple=True,
    metavar="K=V",
    help="any other field of the request (repeatable; V as JSON when it parses)",
)
@callback_options
@json_option
@options.use(*API_SETTINGS)
@click.pass_context
def create(
    ctx: click.Context,
    /,
    replica: str,
    script: str | None,
    audio_url: str | None,
    name: str | None,
    background_url: str | None,
    fields: tuple[str, ...],
    callback_url: str | None,
    allow_local: bool,
    as_json: bool,
    **_: Any,
) -> int:
    if (script is None) == (audio_url is None):
        return fail(ctx, "pass one of --script or --audio-url.", EXIT_USAGE)
    try:
        body = pairs(fields, "--field")
        url = choose_url(ctx, callback_url, allow_local)
    except Failed as exc:
        return fail(ctx, str(exc), exc.code)
    given_into(
        body,
        (
            ("replica_id", replica),
            ("script", script),
            ("audio_url", audio_url),
            ("video_name", name),
            ("background_url", background_url),
            ("callback_url", url),
        ),
    )

    async def work(api: TavusApi) -> int:
        answer = await api.create_video(**body)
        video_id = created_id(answer, "video_id")
        if as_json:
            print_json(answer)
        else:
            print_fields(
                [
                    ("video_id", video_id),
                    ("status", answer.get("status")),
                    ("hosted_url", answer.get("hosted_url")),
                    ("callback_url", url),
                ]
            )
        remembered_name = answer.get("video_name")
        await remember(
            ctx,
            "video",
            video_id,
            name=remembered_name if isinstance(remembered_name, str) else name,
            url=url,
            response=answer,
        )
        return EXIT_OK

    return run_api(ctx, work)
