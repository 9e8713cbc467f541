"""Run the real ``tavus-monitor`` in a terminal and watch what it draws, as a user's terminal does.

Two terminals, one interface (:class:`Terminal`):

* :class:`PtyTerminal`: a pseudo-terminal this process opens (``pty.openpty``,
  sized with ``TIOCSWINSZ``); a thread reads everything the program writes,
  as fast as a terminal emulator would, and hands it to an :class:`OutputTap`.
* :class:`TmuxTerminal`: the program runs in a detached tmux session of the
  same size (tmux parses and draws every byte, as a user's terminal does) and
  ``tmux pipe-pane -O`` copies its output into a FIFO the tap reads.

The tap strips escape sequences from the stream and stamps (``time.monotonic``)
the first moment each awaited text appears in it. Textual rewrites whole lines
of a widget's region when the widget changes, so a row's text arrives in one
piece between escape sequences: finding it in the stream is finding the frame
that drew it, with no polling interval (``capture-pane`` polling costs a few
ms of CPU per capture and its interval bounds the resolution).
"""

from __future__ import annotations

import codecs
import contextlib
import fcntl
import os
import pty
import re
import shlex
import signal
import struct
import subprocess
import tempfile
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

ESCAPE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[PX^_][^\x1b]*\x1b\\|.)"
)
"""CSI, OSC, DCS/SOS/PM/APC strings and two-byte escapes."""
CSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
CARRY = 256
"""Characters of stripped text kept from one chunk to the next (a needle may straddle them)."""


class OutputTap:
    """Receives a terminal's output stream; stamps when patterns first appear in it.

    ``watch(pattern)`` registers a regex; every match's text (group 0) is
    stamped the first time it is seen. Stamps are read from ``seen``.
    """

    def __init__(self) -> None:
        self.bytes = 0
        self.seen: dict[str, float] = {}
        self._patterns: list[re.Pattern[str]] = []
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        """Raw text after the last escape character, until it is known to be complete."""
        self._tail = ""
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.closed = False

    def watch(self, pattern: str) -> None:
        with self._lock:
            self._patterns.append(re.compile(pattern))

    def feed(self, data: bytes, now: float) -> None:
        self.bytes += len(data)
        with self._lock:
            if not self._patterns:
                return
            text = self._pending + self._decoder.decode(data)
            cut = text.rfind("\x1b")
            if cut >= 0 and len(text) - cut < 4096 and not _complete(text[cut:]):
                text, self._pending = text[:cut], text[cut:]
            else:
                self._pending = ""
            plain = self._tail + ESCAPE.sub("", text)
            for pattern in self._patterns:
                for match in pattern.finditer(plain):
                    self.seen.setdefault(match.group(0), now)
            self._tail = plain[-CARRY:]
            self._changed.notify_all()

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self._changed.notify_all()

    def wait_for(self, found: Callable[[dict[str, float]], bool], timeout: float) -> bool:
        """Block until ``found(seen)`` (checked after each chunk) or ``timeout`` s pass."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not found(self.seen):
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    return found(self.seen)
                self._changed.wait(left)
            return True


def _complete(sequence: str) -> bool:
    """Whether ``sequence`` (starting at ESC) holds a whole escape sequence."""
    if len(sequence) < 2:
        return False
    if sequence[1] == "[":
        return CSI.match(sequence) is not None
    if sequence[1] in "]PX^_":
        return "\x07" in sequence  # an ESC \ terminator would be the last ESC itself
    return True


class Terminal:
    """A program running in a terminal of ``size``, its output going to ``tap``."""

    pid: int

    def __init__(
        self, argv: list[str], size: tuple[int, int], env: dict[str, str], tap: OutputTap
    ) -> None:
        self.argv, self.size, self.env = argv, size, env
        self.tap = tap

    def keys(self, data: str) -> None:
        raise NotImplementedError

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        with contextlib.suppress(OSError):
            state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            return state != "Z"
        return True

    def quit(self, keys: str = "q", timeout: float = 30.0) -> float:
        """Send ``keys``; seconds until the program is gone (terminated after ``timeout``)."""
        started = time.monotonic()
        self.keys(keys)
        while self.alive() and time.monotonic() - started < timeout:
            time.sleep(0.02)
        took = time.monotonic() - started
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not self.alive():
                break
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)
            time.sleep(1)
        self.close()
        return took

    def close(self) -> None:
        self.tap.close()

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self.close()


def _read_into(fd: int, tap: OutputTap) -> None:
    while True:
        try:
            data = os.read(fd, 1 << 16)
        except OSError:
            break
        if not data:
            break
        tap.feed(data, time.monotonic())
    tap.close()


class PtyTerminal(Terminal):
    """This process is the terminal: a pseudo-terminal whose output a thread reads."""

    name = "pty"

    def __init__(
        self, argv: list[str], size: tuple[int, int], env: dict[str, str], tap: OutputTap
    ) -> None:
        super().__init__(argv, size, env, tap)
        master, slave = pty.openpty()
        width, height = size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
        self.process = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**env, "TERM": "xterm-256color", "COLUMNS": str(width), "LINES": str(height)},
            start_new_session=True,
            cwd=tempfile.gettempdir(),
        )
        os.close(slave)
        self.master = master
        self.pid = self.process.pid
        self._reader = threading.Thread(target=_read_into, args=(master, self.tap), daemon=True)
        self._reader.start()

    def keys(self, data: str) -> None:
        with contextlib.suppress(OSError):
            os.write(self.master, data.encode())

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        with contextlib.suppress(OSError):
            os.close(self.master)
        self._reader.join(timeout=5)
        super().close()


class TmuxTerminal(Terminal):
    """tmux is the terminal (it parses and draws every byte); its pane output is tapped."""

    name = "tmux"

    def __init__(
        self, argv: list[str], size: tuple[int, int], env: dict[str, str], tap: OutputTap
    ) -> None:
        super().__init__(argv, size, env, tap)
        self._dir = Path(tempfile.mkdtemp(prefix="tavus-monitor-bench-tmux-"))
        self.socket = f"tavus-monitor-bench-{os.getpid()}-{id(self)}"
        fifo = self._dir / "output"
        os.mkfifo(fifo)
        width, height = size
        # The session starts with a shell that waits, so the pipe is in place before the
        # program writes its first byte; then the program replaces the shell.
        self._tmux(
            "new-session", "-d", "-x", str(width), "-y", str(height), "-s", "bench",
            "exec sleep 3600",
        )  # fmt: skip
        # Read-write, so the FIFO never reads as ended while cat has yet to open it.
        self._fd = os.open(fifo, os.O_RDWR)
        self._tmux("pipe-pane", "-O", "-t", "bench", f"exec cat > {shlex.quote(str(fifo))}")
        self._reader = threading.Thread(target=_read_into, args=(self._fd, self.tap), daemon=True)
        self._reader.start()
        self._tmux("respawn-pane", "-k", "-t", "bench", "-c", tempfile.gettempdir(),
                   "exec " + shlex.join(argv))  # fmt: skip
        self.pid = int(self._tmux("display-message", "-p", "-t", "bench", "#{pane_pid}").strip())

    def _tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True, text=True, env=self.env, timeout=10, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"tmux {args[0]} failed: {done.stderr.strip()}")
        return done.stdout

    def keys(self, data: str) -> None:
        with contextlib.suppress(RuntimeError):
            self._tmux("send-keys", "-t", "bench", "-l", data)

    def capture(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "bench")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._tmux("kill-server")
        self._reader.join(timeout=5)
        with contextlib.suppress(OSError):
            os.close(self._fd)
        with contextlib.suppress(OSError):
            (self._dir / "output").unlink()
            self._dir.rmdir()
        super().close()


TERMINALS: dict[str, type[Terminal]] = {"pty": PtyTerminal, "tmux": TmuxTerminal}
