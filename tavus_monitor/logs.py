"""Logging to a file, never to the terminal.

uvicorn, pyngrok and our own modules log through ``logging``. With no handler
configured, Python prints warnings to stderr, which paints over a TUI and
mixes into headless status lines. Everything goes to ``tavus-monitor.log`` in
the data directory instead.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
from pathlib import Path

from .private import open_private, private_dir

LOG_FILE = "tavus-monitor.log"


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log whose every file (rotated ones too) is readable by its owner only.

    The log holds request paths and library messages that may carry the token.
    """

    def _open(self) -> io.TextIOWrapper:
        return open_private(Path(self.baseFilename), "a", encoding=self.encoding or "utf-8")


def configure_logging(data_dir: Path, level: int = logging.INFO) -> Path:
    """Send all logging to a rotating file in ``data_dir``; return its path."""
    private_dir(data_dir)
    path = data_dir / LOG_FILE
    handler = PrivateRotatingFileHandler(
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
