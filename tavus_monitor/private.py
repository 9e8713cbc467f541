"""Files only their owner can read: the data directory and everything in it.

The store and the log hold the token (Tavus echoes the callback URL, token
included, in every conversation callback's ``webhook_url``) and whole
transcripts; ``clipboard.txt`` holds whatever was copied last (the callback
URL, a raw payload). So the data directory is 0700 and each file 0600,
whatever the umask, and files left 0644 by an older version are tightened on
start. SQLite gives its ``-wal`` and ``-shm`` files the mode of the database
file, so creating that one 0600 covers all three. An ``--ephemeral`` store
holds the same, in a temporary directory that is 0700 too.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import tempfile
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) owner-only, or tighten it to 0700 if it is ours to tighten.

    An existing directory is left alone when tightening it could break something
    else: a sticky one (``/tmp``), one owned by another user, the home directory
    or a filesystem root (``--data-dir`` may name any of those).
    """
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        info = path.stat()
        mode = stat.S_IMODE(info.st_mode)
        shared = mode & 0o077 and not mode & stat.S_ISVTX
        ours = info.st_uid == os.getuid()
        special = path.resolve() in (Path.home().resolve(), Path(path.resolve().anchor))
        if shared and ours and not special:
            path.chmod(PRIVATE_DIR)
    return path


def private_temporary_dir(prefix: str = "tavus-monitor-") -> Path:
    """A new directory in the system's temporary directory, usable by its owner only (0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(PRIVATE_DIR)  # mkdtemp asks for 0700, but the umask could take more away
    return path


def make_private(*paths: Path) -> None:
    """Tighten existing files to 0600 (a missing one is skipped)."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError, PermissionError):
            if stat.S_IMODE(path.stat().st_mode) != PRIVATE_FILE:
                path.chmod(PRIVATE_FILE)


def create_private(path: Path) -> None:
    """Make sure ``path`` exists as a 0600 file (created empty if missing)."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    os.close(descriptor)
    make_private(path)


def open_private(path: Path, mode: str = "w", *, encoding: str = "utf-8") -> io.TextIOWrapper:
    """``open(path, mode)`` for text, creating the file 0600 (and tightening an old one)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    descriptor = os.open(path, flags, PRIVATE_FILE)
    with contextlib.suppress(OSError):
        os.fchmod(descriptor, PRIVATE_FILE)
    handle = os.fdopen(descriptor, mode, encoding=encoding)
    assert isinstance(handle, io.TextIOWrapper)
    return handle
