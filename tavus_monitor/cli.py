"""Command line: arguments → settings → the monitor, or a sub-command.

Exit codes: 0 fine, 1 a sub-command's target failed, 2 bad usage or a setting
that cannot work (such as a busy ``--port``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__, samples
from .logs import configure_logging
from .settings import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_BODY_MB,
    DEFAULT_PORT,
    Settings,
    SettingsError,
    resolve,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def _add_location_options(parser: argparse.ArgumentParser, *, sub: bool = False) -> None:
    # On a sub-command, an option not given must not overwrite one given before it.
    default = argparse.SUPPRESS if sub else None
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default,
        help="where the token, database, state and log files live "
        "(default: the user data directory; env TAVUS_MONITOR_DATA_DIR)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=default,
        help="a TOML config file (default: user config dir)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tavus-monitor",
        description="Receive, inspect and keep Tavus callbacks (conversations, replicas, videos).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--headless",
        action="store_true",
        default=None,
        help="no TUI: JSON lines on stdout, status on stderr",
    )
    parser.add_argument(
        "--port",
        type=int,
        help=f"port to listen on (default {DEFAULT_PORT}, or a free one if that is busy; "
        "0 = any free port)",
    )
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    token = parser.add_mutually_exclusive_group()
    token.add_argument(
        "--token", help="the secret path segment (default: one made on first run and kept)"
    )
    token.add_argument(
        "--no-token",
        action="store_true",
        default=None,
        help="serve plain /webhook as in Tavus's guide (anyone who learns the URL can post)",
    )
    parser.add_argument(
        "--max-body-mb",
        type=float,
        help=f"largest accepted body in MB (default {DEFAULT_MAX_BODY_MB:g}); larger gets 413",
    )
    parser.add_argument(
        "--header-timeout",
        type=float,
        metavar="SECONDS",
        help="seconds a connection has to send its request line and headers "
        f"(default {DEFAULT_HEADER_TIMEOUT:g}); a slower one is closed",
    )
    store = parser.add_mutually_exclusive_group()
    store.add_argument("--db", type=Path, help="SQLite file (default: events.db in the data dir)")
    store.add_argument(
        "--ephemeral", action="store_true", default=None, help="keep events in memory only"
    )
    parser.add_argument(
        "--no-tunnel", action="store_true", default=None, help="do not open a public tunnel"
    )
    parser.add_argument(
        "--public-url",
        help="base URL of a tunnel you run yourself (e.g. cloudflared), "
        "announced as the callback URL",
    )
    tunnel = parser.add_argument_group("tunnel (ngrok, opened automatically)")
    tunnel.add_argument(
        "--ngrok-domain", help="a reserved ngrok domain, so the public URL survives restarts"
    )
    tunnel.add_argument("--ngrok-region", help="ngrok region (us, eu, ap, au, sa, jp, in)")
    tunnel.add_argument(
        "--ngrok-path", help="an installed ngrok binary (default: PYNGROK_NGROK_PATH or PATH)"
    )
    tunnel.add_argument(
        "--ngrok-authtoken", help="ngrok authtoken (default: NGROK_AUTHTOKEN or ngrok's config)"
    )
    _add_location_options(parser)

    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    trigger = commands.add_parser(
        "trigger",
        help="send sample callbacks to the running monitor (or any URL)",
        description="Send realistic sample callbacks. With no EVENT, sends one whole "
        "conversation in order; --all sends every sample of every family.",
    )
    trigger.add_argument("events", nargs="*", metavar="EVENT", help="sample names (see --list)")
    trigger.add_argument("--all", action="store_true", help="send every sample")
    trigger.add_argument("--list", action="store_true", help="list the sample names and exit")
    trigger.add_argument("--url", help="where to send (default: the running monitor's local URL)")
    trigger.add_argument("--conversation-id", help="conversation id to use (default: a new one)")
    trigger.add_argument("--timeout", type=float, default=10.0, help="seconds to wait per answer")
    _add_location_options(trigger, sub=True)

    history = commands.add_parser("history", help="show stored events")
    history.add_argument(
        "--db",
        type=Path,
        default=argparse.SUPPRESS,
        help="SQLite file (default: events.db in the data dir)",
    )
    history.add_argument("--family", help="only this family (conversation, replica, video, ...)")
    history.add_argument(
        "--type", dest="event_type", help="only this event type, e.g. system.shutdown"
    )
    history.add_argument("--conversation", help="only this conversation id")
    history.add_argument("--search", help="only events whose summary or body contains TEXT")
    history.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    history.add_argument("--format", choices=("table", "jsonl"), default="table")
    history.add_argument(
        "--rejected", action="store_true", help="show refused requests instead of events"
    )
    _add_location_options(history, sub=True)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    flags: dict[str, Any] = {
        name: getattr(args, name, None)
        for name in (
            "host",
            "port",
            "token",
            "no_token",
            "max_body_mb",
            "header_timeout",
            "data_dir",
            "db",
            "ephemeral",
            "headless",
            "no_tunnel",
            "public_url",
            "ngrok_path",
            "ngrok_authtoken",
            "ngrok_domain",
            "ngrok_region",
        )
    }
    return resolve(flags, config_file=args.config)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = _settings(args)
    except SettingsError as exc:
        print(f"tavus-monitor: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "trigger":
        return _trigger(args, settings)
    if args.command == "history":
        return _history(args, settings)
    return _run(settings)


def _run(settings: Settings) -> int:
    from .monitor import MonitorError

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
            from .tui import run_tui

            return run_tui(settings)
        return _run_event_loop(settings)
    except MonitorError as exc:
        print(f"tavus-monitor: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK


def _run_event_loop(settings: Settings) -> int:
    from .headless import run_headless

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is absent on Windows
        return asyncio.run(run_headless(settings))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run_headless(settings))


def _trigger(args: argparse.Namespace, settings: Settings) -> int:
    from .state import read_state
    from .trigger import TargetUnreachable, format_answer, send

    if args.list:
        for name in samples.ALL_SAMPLES:
            print(name)
        return EXIT_OK
    unknown = [name for name in args.events if name not in samples.ALL_SAMPLES]
    if unknown:
        print(
            f"tavus-monitor trigger: unknown sample(s) {', '.join(unknown)}; "
            "`tavus-monitor trigger --list` shows the names.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.all:
        names = list(samples.ALL_SAMPLES)
    elif args.events:
        names = list(args.events)
    else:
        names = [name for name, _ in samples.CONVERSATION_SEQUENCE]
    url = args.url
    if url is None:
        state = read_state(settings.data_dir)
        if state is None:
            print(
                "tavus-monitor trigger: no running monitor found; start `tavus-monitor` "
                "(or pass --url to send somewhere else).",
                file=sys.stderr,
            )
            return EXIT_FAILED
        url = state.local_url
    print(f"Sending {len(names)} sample(s) to {url}", file=sys.stderr)
    try:
        answers = send(
            names,
            url,
            conversation_id=args.conversation_id,
            timeout=args.timeout,
            report=lambda answer: print(format_answer(answer), flush=True),
        )
    except TargetUnreachable:
        print(
            f"tavus-monitor trigger: nothing is listening at {url}; "
            "start `tavus-monitor` or check --url.",
            file=sys.stderr,
        )
        return EXIT_FAILED
    failed = sum(not answer.ok for answer in answers)
    print(f"{len(answers) - failed} accepted, {failed} failed", file=sys.stderr)
    return EXIT_OK if failed == 0 else EXIT_FAILED


def _history(args: argparse.Namespace, settings: Settings) -> int:
    """Print what is stored. The store is only read: ``history`` works on a read-only
    file or mount, and never migrates, changes or creates anything (see ReadOnlyStore)."""
    import sqlite3

    from .history import event_lines, event_table, rejection_table
    from .store import EventQuery, ReadOnlyStore, StoreError

    path = settings.db_path
    try:
        missing = path is None or not path.exists()
    except OSError:  # e.g. a directory on the way that this user may not enter
        missing = False  # ReadOnlyStore says what is wrong
    if path is None or missing:
        print(f"No events stored yet{f' at {path}' if path else ''}.", file=sys.stderr)
        return EXIT_OK
    try:
        with ReadOnlyStore(path) as store:
            if store.is_empty:
                print(f"No events stored yet at {path}.", file=sys.stderr)
                return EXIT_OK
            if args.rejected:
                lines = rejection_table(store.rejections(args.limit))
            else:
                events = store.page(
                    EventQuery(
                        family=args.family,
                        event_type=args.event_type,
                        conversation_id=args.conversation,
                        search=args.search,
                        limit=args.limit,
                    )
                )
                lines = event_lines(events) if args.format == "jsonl" else event_table(events)
    except StoreError as exc:
        print(f"tavus-monitor history: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except sqlite3.Error as exc:  # damage found while reading, past the file's header
        print(
            f"tavus-monitor history: cannot read the event store {path} ({exc}); "
            "it may be damaged: pass --db with another file.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    for line in lines:
        print(line)
    return EXIT_OK


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
