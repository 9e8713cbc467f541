"""Logging to a file, never to the terminal.

uvicorn, pyngrok and our own modules log through ``logging``. With no handler
configured, Python prints warnings to stderr, which paints over a TUI and
mixes into headless status lines. Everything goes to ``tavus-monitor.log`` in
the data directory instead.
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

LOG_FILE = "tavus-monitor.log"


def configure_logging(data_dir: Path, level: int = logging.INFO) -> Path:
    """Send all logging to a rotating file in ``data_dir``; return its path."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOG_FILE
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=5 * 1024 * 1024, backupCount=2, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "pyngrok"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return path
