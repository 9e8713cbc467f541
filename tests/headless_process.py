"""``tavus-monitor --headless ...`` as a user runs it, for tests that need the process.

The command is the console script installed next to this interpreter, run from
a directory outside the checkout: ``python -m tavus_monitor`` from the
repository root would import the checkout (``-m`` puts the working directory
first on ``sys.path``), so a file missing from the installed package would
never be noticed.

Both pipes are read by threads the whole time (headless mode writes stdout as
it goes, and a full pipe would stall it): kept byte for byte for the final
checks, and offered line by line to :meth:`HeadlessProcess.wait_for` while
the process runs.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Literal

import pytest

Stream = Literal["out", "err"]
CALLBACK_URL = re.compile(r"Callback URL: (http://127\.0\.0\.1:\d+/webhook\S*)")
TIMEOUT = 30.0
CONSOLE_SCRIPT = Path(sys.executable).parent / "tavus-monitor"
"""The ``tavus-monitor`` command of the environment running the tests (what pip installed)."""


def tavus_monitor(*args: str) -> list[str]:
    """The command line ``tavus-monitor *args``, through this environment's console script."""
    if not CONSOLE_SCRIPT.exists():
        pytest.fail(f"{CONSOLE_SCRIPT} does not exist: install the project (pip install '.[test]')")
    return [str(CONSOLE_SCRIPT), *args]


class HeadlessProcess:
    """``tavus-monitor --headless *args``; leaving ``with`` kills it if still running.

    ``cwd`` defaults to a new empty directory, so nothing in the checkout can be imported by
    accident. ``program`` replaces this environment's ``tavus-monitor`` (another installation's).
    """

    def __init__(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        program: Sequence[str] | None = None,
    ) -> None:
        environment = dict(os.environ if env is None else env)
        environment.setdefault("PYTHONIOENCODING", "utf-8")
        self._scratch = (
            tempfile.TemporaryDirectory(prefix="tavus-monitor-cwd-") if cwd is None else None
        )
        self.process = subprocess.Popen(
            [*program, "--headless", *args] if program else tavus_monitor("--headless", *args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
            cwd=cwd if self._scratch is None else self._scratch.name,
        )
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self._raw: dict[Stream, list[bytes]] = {"out": [], "err": []}
        self._lines: queue.Queue[tuple[Stream, str] | None] = queue.Queue()
        self._ended = 0
        """How many of the two pipes ``wait_for`` has seen reach their end."""
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, "out"), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, "err"), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, pipe: IO[bytes], stream: Stream) -> None:
        for raw in pipe:
            self._raw[stream].append(raw)
            self._lines.put((stream, raw.decode("utf-8", errors="replace").rstrip("\n")))
        self._lines.put(None)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def stdout(self) -> str:
        """Everything written to stdout, strictly UTF-8 (complete once the process has ended)."""
        return b"".join(self._raw["out"]).decode("utf-8")

    @property
    def stderr(self) -> str:
        return b"".join(self._raw["err"]).decode("utf-8", errors="replace")

    @property
    def out(self) -> list[str]:
        """The stdout lines so far."""
        return self.stdout.splitlines()

    @property
    def err(self) -> list[str]:
        """The stderr lines so far."""
        return self.stderr.splitlines()

    def wait_for(
        self, stream: Stream, match: Callable[[str], bool], what: str, timeout: float = TIMEOUT
    ) -> str:
        """The first line of ``stream`` from now on that ``match``es; fails the test if none."""
        deadline = time.monotonic() + timeout
        while True:
            if self._ended == 2:
                pytest.fail(
                    f"the monitor ended (code {self.process.wait()}) before {what}:\n{self.stderr}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no {what} within {timeout} s:\n{self.stderr}")
            try:
                item = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if item is None:
                self._ended += 1
            elif item[0] == stream and match(item[1]):
                return item[1]

    def wait_for_callback_url(self) -> str:
        """The local callback URL, once the process says it is listening."""
        line = self.wait_for("err", lambda text: "Callback URL: " in text, "'Callback URL' line")
        match = CALLBACK_URL.search(line)
        assert match is not None
        return match.group(1)

    def finish(self, timeout: float = TIMEOUT * 3) -> int:
        """Wait for the process to end and for both pipes to be read to the end."""
        code = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=timeout)
        return code

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.process.send_signal(signum)
        return self.finish()

    def __enter__(self) -> HeadlessProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.finish()
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
        if self._scratch is not None:
            self._scratch.cleanup()
