"""Copying that works even where the terminal ignores OSC 52.

Textual's ``copy_to_clipboard`` only emits OSC 52, which some terminals and
tmux (without ``set-clipboard on``) drop silently. So every copy also goes to
the system clipboard through pyperclip when it is installed and works, and
otherwise to a file in the data directory, and the user is told where.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from textual.app import App

from ..private import open_private, private_dir

CLIPBOARD_FILE = "clipboard.txt"


def _system_clipboard(text: str) -> bool:
    try:
        import pyperclip  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        return False
    try:
        pyperclip.copy(text)
    except Exception:  # pyperclip raises its own error class when no backend exists
        return False
    return True


def copy_text(app: App[Any], text: str, what: str, data_dir: Path) -> str:
    """Copy ``text`` every way available; return the sentence shown to the user."""
    app.copy_to_clipboard(text)
    if _system_clipboard(text):
        return f"Copied {what}."
    path = data_dir / CLIPBOARD_FILE
    with contextlib.suppress(OSError):
        private_dir(path.parent)
        with open_private(path) as handle:  # it may hold the token-bearing URL or a payload
            handle.write(text + "\n")
        return f"Copied {what} (if your terminal ignores OSC 52, it is also in {path})."
    return f"Copied {what} through the terminal (OSC 52)."
