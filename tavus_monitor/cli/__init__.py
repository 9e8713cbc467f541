"""Command line: ``tavus-monitor`` opens the dashboard; sub-commands do one job each.

Exit codes: 0 fine, 1 a sub-command's target failed, 2 bad usage or a setting
that cannot work (such as a busy ``--port``), always as one sentence on stderr.

The group is click's (as in uvicorn, posting and harlequin). Each command lives in its own
module and declares only the settings it uses (``options.use``), so a new command is one module
plus one ``add_command`` line here, and a bad setting it does not read cannot stop it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from .. import __version__
from ..settings import SettingsError
from . import (
    check,
    conversation,
    dashboard,
    export,
    history,
    options,
    recover,
    replay,
    replica,
    trigger,
    video,
)
from .exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "cli", "main", "run"]

PROG = "tavus-monitor"


class DefaultGroup(click.Group):
    """A group that runs its default command when none is named: bare ``tavus-monitor`` and
    ``tavus-monitor --headless --port 0`` run ``run``, while ``tavus-monitor history`` runs
    ``history`` (posting's ``DefaultGroup`` pattern, without the extra dependency).

    Options the group does not know are left for the default command (``ignore_unknown_options``),
    and the group's ``--help`` lists them too, so it reads as one command.
    """

    def __init__(self, *args: Any, default: str, **kwargs: Any) -> None:
        kwargs.setdefault("invoke_without_command", True)
        super().__init__(*args, **kwargs)
        self.context_settings.setdefault("ignore_unknown_options", True)
        self.default = default

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0].startswith("-"):  # an option of the default command
            return self.default, self.commands[self.default], args
        return super().resolve_command(ctx, args)

    def invoke_default(self, ctx: click.Context) -> Any:
        """Run the default command with no arguments of its own (``tavus-monitor``,
        ``tavus-monitor --data-dir X``)."""
        command = self.commands[self.default]
        with command.make_context(self.default, [], parent=ctx) as sub:
            return command.invoke(sub)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_options(ctx, formatter)
        default = self.commands[self.default]
        own = {param.name for param in self.get_params(ctx)}
        records = [
            record
            for param in default.get_params(ctx)
            if param.name not in own and (record := param.get_help_record(ctx)) is not None
        ]
        with formatter.section(f"Options of `{self.default}` (the default command)"):
            formatter.write_dl(records)


@click.group(
    cls=DefaultGroup,
    default=dashboard.run.name or "run",
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Receive, inspect and keep Tavus callbacks (conversations, replicas, videos).",
)
@click.version_option(__version__, prog_name=PROG, message="%(prog)s %(version)s")
@options.use(*options.SHARED)
@click.pass_context
def cli(ctx: click.Context, /, **shared: Any) -> Any:
    if ctx.invoked_subcommand is None:
        assert isinstance(ctx.command, DefaultGroup)
        return ctx.command.invoke_default(ctx)
    return None


cli.add_command(dashboard.run)
cli.add_command(trigger.trigger)
cli.add_command(history.history)
cli.add_command(conversation.conversation)
cli.add_command(replica.replica)
cli.add_command(video.video)
cli.add_command(check.check)
cli.add_command(export.export)
cli.add_command(replay.replay)
cli.add_command(recover.recover)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    try:
        code = cli.main(
            args=list(sys.argv[1:] if argv is None else argv),
            prog_name=PROG,
            standalone_mode=False,
        )
    except SettingsError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except click.UsageError as exc:
        print(f"{PROG}: {usage_sentence(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except click.ClickException as exc:
        print(f"{PROG}: {' '.join(exc.format_message().split())}", file=sys.stderr)
        return exc.exit_code
    except click.Abort:
        return 130  # interrupted while a sub-command ran (the shell's code for Ctrl+C)
    return code if isinstance(code, int) else EXIT_OK


def usage_sentence(exc: click.UsageError) -> str:
    """click's usage error as one sentence with the way to the help, instead of its usage
    block and ``Error:`` line (every refusal of this program is one sentence)."""
    command = exc.ctx.command_path if exc.ctx is not None else PROG
    if isinstance(exc, click.NoSuchOption):
        problem = f"`{command}` has no option {exc.option_name}"
        if exc.possibilities:
            problem += f" (did you mean {' or '.join(sorted(exc.possibilities))}?)"
    else:
        # "No such command 'x'. Did you mean 'y'?" → "No such command 'x' (did you mean 'y'?)"
        problem, _, hint = " ".join(exc.format_message().split()).partition(". ")
        problem = problem.rstrip(".")
        if hint:
            problem += f" ({hint[:1].lower()}{hint[1:]})"
    return f"{problem}; `{command} --help` lists what it takes."


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
