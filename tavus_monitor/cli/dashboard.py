"""``tavus-monitor [run]``: the server with the dashboard, or headless with ``--headless``.

The default command, so every server setting is declared here and nowhere else: sub-commands
never read (or trip over) ``--port``, ``--max-body-mb`` and the rest.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click
from click.core import ParameterSource

from ..logs import configure_logging
from ..settings import Settings, SettingsError, validate
from . import options
from .exits import EXIT_OK, EXIT_USAGE

SERVER_SETTINGS = tuple(name for name in options.SETTINGS if name not in options.SHARED)


@click.command(
    help="Open the dashboard (the default command), or run headless with --headless.",
    short_help="open the dashboard (the default; --headless for JSON lines)",
)
@options.use(*options.SETTINGS)
@click.pass_context
def run(ctx: click.Context, /, **values: Any) -> int:
    return serve(settings_from(ctx))


def settings_from(ctx: click.Context) -> Settings:
    """The :class:`Settings` this command line, environment and config file make."""
    both = options.given_on_command_line(ctx, ("db", "ephemeral"))
    if len(both) == 2:  # as argparse's exclusive group did; from the file, --ephemeral wins
        raise SettingsError("--db and --ephemeral contradict each other; choose one.")
    values = {name: ctx.params[name] for name in SERVER_SETTINGS}
    settings = Settings(
        **values,
        data_dir=options.shared(ctx, "data_dir"),
        # A port the user chose, anywhere, is an error when busy; the default falls back.
        port_explicit=ctx.get_parameter_source("port") is not ParameterSource.DEFAULT,
        config_file=options.config_file(ctx),
    )
    validate(settings)
    return settings


def serve(settings: Settings) -> int:
    """Run the monitor until it is stopped; the exit code."""
    from ..monitor import MonitorError, check_port

    try:
        configure_logging(settings.data_dir)
    except OSError as exc:
        # Before anything else starts, so the one sentence is all the user sees.
        print(
            f"tavus-monitor: cannot write the log in {settings.data_dir} "
            f"({exc.strerror or exc}); choose a writable --data-dir.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        if not settings.headless:
            from ..tui import run_tui

            if settings.port_explicit:
                # A busy --port ends here, before the dashboard takes the terminal, with
                # headless mode's sentence and exit code (not a dashboard without a server).
                check_port(settings)

            return run_tui(settings)
        return _run_event_loop(settings)
    except MonitorError as exc:
        print(f"tavus-monitor: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK


def _run_event_loop(settings: Settings) -> int:
    from ..headless import run_headless

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is absent on Windows
        return asyncio.run(run_headless(settings))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run_headless(settings))
