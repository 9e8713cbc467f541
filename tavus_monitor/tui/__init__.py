"""The Textual dashboard. The only part of tavus-monitor that imports Textual."""

from __future__ import annotations

from ..settings import Settings


def run_tui(settings: Settings) -> int:
    """Run the dashboard until the user quits; return the exit code."""
    from .app import MonitorApp

    app = MonitorApp(settings)
    result = app.run()
    return result if isinstance(result, int) else 0
