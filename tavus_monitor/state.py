"""Files the monitor keeps in its data directory besides the database.

- ``token``: the secret path segment of the callback URL, made once so the
  URL stays the same across restarts (and so Tavus resources created with it
  keep reaching this monitor).
- ``state.json``: where the running monitor listens, so ``tavus-monitor
  trigger`` can find it without being told.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from .private import PRIVATE_FILE, private_dir

TOKEN_FILE = "token"
STATE_FILE = "state.json"


def load_or_create_token(data_dir: Path) -> str:
    """The kept token, creating a random 192-bit URL-safe one on first use."""
    path = data_dir / TOKEN_FILE
    try:
        token = path.read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        token = ""
    if len(token) >= 16:
        return token
    token = secrets.token_urlsafe(24)
    _write_private(path, token + "\n")
    return token


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only, replacing the file atomically."""
    private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)


@dataclass(frozen=True, slots=True)
class RunningState:
    pid: int
    local_url: str
    """The local callback URL (``http://127.0.0.1:PORT/webhook/TOKEN``)."""
    callback_url: str
    """The URL to give Tavus: the public one when a tunnel is up, else the local one."""
    healthz_url: str
    db: str | None
    started_at: float
    public_url: str | None = None
    """The public callback URL while a tunnel is up, else None (Tavus cannot reach it)."""
    forward_to: str | None = None
    """Where the monitor forwards each delivery (``--forward-to``), if anywhere."""
    control_key: str | None = None
    """The key of the monitor's control routes (:mod:`tavus_monitor.control`): how another
    ``tavus-monitor`` process hands it a record instead of opening a second store writer."""


def write_state(data_dir: Path, state: RunningState) -> None:
    _write_private(data_dir / STATE_FILE, json.dumps(asdict(state), indent=2) + "\n")


def read_state(data_dir: Path) -> RunningState | None:
    """The running monitor's state, or None when none is running (or the file is stale)."""
    try:
        data = json.loads((data_dir / STATE_FILE).read_text(encoding="utf-8"))
        state = RunningState(**data)
    except (FileNotFoundError, ValueError, TypeError):
        return None
    if not _alive(state.pid):
        return None
    return state


def clear_state(data_dir: Path, pid: int) -> None:
    """Remove the state file if it is still ours (another monitor may have replaced it)."""
    path = data_dir / STATE_FILE
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == pid:
            path.unlink()
    except (FileNotFoundError, ValueError, AttributeError):
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
