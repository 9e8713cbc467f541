"""The Textual dashboard. The only part of tavus-monitor that imports Textual."""

from __future__ import annotations

import io
import logging
import re
import sys

from ..logs import LOG_FILE
from ..settings import Settings

log = logging.getLogger(__name__)

EXIT_FAILED = 1


def run_tui(settings: Settings) -> int:
    """Run the dashboard until the user quits; return the exit code.

    Whatever stops the dashboard from starting (a file missing from the
    installation, a module that does not import, an error while the app
    mounts) ends with one sentence on stderr and exit code 1, never a
    traceback over the terminal: the traceback goes to the log file.
    """
    try:
        from rich.console import Console

        from .app import MonitorApp

        app = MonitorApp(settings)
    except Exception as error:
        log.exception("the dashboard could not be loaded")
        return _failed(settings, error, started=False)
    # Textual draws the traceback of an unhandled error on stderr when it exits; the app
    # logs it instead (MonitorApp._handle_exception), so this only keeps stderr clean.
    report = io.StringIO()
    app.error_console = Console(file=report, color_system=None, width=120)
    try:
        result = app.run()
    except Exception as error:
        log.exception("the dashboard ended with an error")
        return _failed(settings, app.failure or error, started=app.started)
    if app.failure is not None or app.return_code not in (None, 0):
        if app.failure is None and report.getvalue():
            log.error("the dashboard ended with an error:\n%s", report.getvalue())
        return _failed(settings, app.failure, started=app.started)
    return result if isinstance(result, int) else 0


def _failed(settings: Settings, error: BaseException | None, *, started: bool) -> int:
    """Say in one sentence on stderr what failed and what to do; the exit code."""
    where = settings.data_dir / LOG_FILE
    what = f" ({_one_line(error)})" if error is not None else ""
    if started:
        sentence = (
            f"tavus-monitor: the dashboard stopped on an unexpected error{what}; "
            f"the details are in {where}."
        )
    else:
        sentence = (
            f"tavus-monitor: the dashboard could not start{what}; reinstall tavus-monitor "
            "(pip install --force-reinstall, from where you installed it) or run "
            f"tavus-monitor --headless, and see {where} for the details."
        )
    print(sentence, file=sys.stderr)
    return EXIT_FAILED


def _one_line(error: BaseException, limit: int = 300) -> str:
    """``Type: message`` on one line, short enough for a sentence."""
    text = re.sub(r"\s+", " ", f"{type(error).__name__}: {error}").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
