"""``tavus-monitor replica create``: train a replica whose callback comes to this monitor.

Training takes hours; its one callback (``{"replica_id", "status": "ready"}`` or ``"error"``)
goes to the ``callback_url`` chosen as for conversations (the running monitor's public URL).
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


@click.group(help="Train Tavus replicas whose callbacks come to this monitor.")
@options.use("data_dir")
def replica(**_: Any) -> None:
    """The group; each sub-command declares the settings it reads."""


@replica.command(
    help="Start training a replica from a video (or an image and a voice); its callback "
    "comes to the running monitor.",
    short_help="train a replica that calls back this monitor",
)
@click.option("--train-video-url", metavar="URL", help="the training video")
@click.option("--train-image-url", metavar="URL", help="a training image (needs --voice-name)")
@click.option("--voice-name", metavar="NAME", help="a stock voice, with --train-image-url")
@click.option("--name", metavar="NAME", help="replica_name")
@click.option("--model-name", metavar="NAME", help="phoenix-4 (Tavus's default) or phoenix-3")
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
    train_video_url: str | None,
    train_image_url: str | None,
    voice_name: str | None,
    name: str | None,
    model_name: str | None,
    fields: tuple[str, ...],
    callback_url: str | None,
    allow_local: bool,
    as_json: bool,
    **_: Any,
) -> int:
    if (train_video_url is None) == (train_image_url is None):
        return fail(ctx, "pass one of --train-video-url or --train-image-url.", EXIT_USAGE)
    try:
        body = pairs(fields, "--field")
        url = choose_url(ctx, callback_url, allow_local)
    except Failed as exc:
        return fail(ctx, str(exc), exc.code)
    given_into(
        body,
        (
            ("train_video_url", train_video_url),
            ("train_image_url", train_image_url),
            ("voice_name", voice_name),
            ("replica_name", name),
            ("model_name", model_name),
            ("callback_url", url),
        ),
    )

    async def work(api: TavusApi) -> int:
        answer = await api.create_replica(**body)
        replica_id = created_id(answer, "replica_id", "face_id")
        if as_json:
            print_json(answer)
        else:
            print_fields(
                [
                    ("replica_id", replica_id),
                    ("status", answer.get("status")),
                    ("callback_url", url),
                ]
            )
        await remember(ctx, "replica", replica_id, name=name, url=url, response=answer)
        return EXIT_OK

    return run_api(ctx, work)
