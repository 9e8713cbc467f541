"""The package as a user gets it: built, installed into a fresh environment, run from elsewhere.

Everything else in the suite imports whatever ``tavus_monitor`` the test
environment has (an editable install during development). Here the sdist is
built from this checkout and the wheel from the unpacked sdist (as ``python -m
build`` does, through the PEP 517 hooks); the wheel is installed with pip into
a new virtual environment, and its ``tavus-monitor`` command runs from a
directory that holds a decoy ``tavus_monitor`` package which raises on import.
A file missing from the wheel, or a process that imports anything but the
installed package, fails a test here.

The fresh environment gets only the wheel (``--no-deps``); the libraries it
needs come from this environment's site-packages through a ``.pth`` file
(appended after the new environment's own site-packages, so the wheel's copy
of ``tavus_monitor`` always wins). That keeps the module offline and a few
seconds long.
"""

from __future__ import annotations

import fcntl
import importlib
import json
import os
import re
import select
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import sysconfig
import tarfile
import termios
import time
import tomllib
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from headless_process import HeadlessProcess

from tavus_monitor import samples

CHECKOUT = Path(__file__).resolve().parents[1]
PACKAGE = "tavus_monitor"
DEADLINE = 60.0
"""Seconds any one step (a build, an install, a start, a stop) may take."""
DECOY = "raise ImportError('a decoy tavus_monitor was imported instead of the installed one')\n"
CALLBACK_URL = re.compile(r"http://127\.0\.0\.1:\d+/webhook/\S+")
UNBLOCKED = (
    sys.executable,
    "-c",
    "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); "
    "os.execvp(sys.argv[1], sys.argv[1:])",
)
"""Runs the command after it with no signal blocked."""


def package_files(root: Path) -> set[str]:
    """Every file of the package tree under ``root``, as wheel paths (no bytecode caches)."""
    return {
        path.relative_to(root).as_posix()
        for path in (root / PACKAGE).rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.suffix not in {".pyc", ".pyo"}
    }


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run ``command`` to completion; its stdout, or the test fails with its stderr."""
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=DEADLINE, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"{shlex.join(command)} exited {result.returncode}:\n{result.stderr}")
    return result.stdout


def build(hook: str, source: Path, into: Path) -> Path:
    """Call the project's PEP 517 ``hook`` in ``source``, as build front ends do; its file.

    No build isolation (nothing is downloaded): the backend named in pyproject.toml must be
    installed here, which the ``test`` extra takes care of.
    """
    backend = tomllib.loads((source / "pyproject.toml").read_text())["build-system"][
        "build-backend"
    ]
    try:
        importlib.import_module(backend)
    except ImportError:
        pytest.fail(f'the build backend {backend} is not installed: pip install ".[test]"')
    into.mkdir(parents=True, exist_ok=True)
    program = (
        f"import importlib, sys; print(importlib.import_module({backend!r}).{hook}(sys.argv[1]))"
    )
    name = run([sys.executable, "-c", program, str(into)], cwd=source).strip().splitlines()[-1]
    return into / name


@dataclass(frozen=True)
class Built:
    sdist: Path
    wheel: Path


@dataclass(frozen=True)
class Installed:
    """A virtual environment holding the wheel, and a directory full of decoys to run it in."""

    python: Path
    command: Path
    package: Path
    """The installed ``tavus_monitor`` directory."""
    cwd: Path
    """Holds a ``tavus_monitor`` package that raises on import."""
    decoy_path: Path
    """Another such package, for ``PYTHONPATH``."""

    def env(self, *, decoy_path: bool = False) -> dict[str, str]:
        """This test's environment, with the decoy directory on ``PYTHONPATH`` if asked."""
        env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        env.update(PYTHONIOENCODING="utf-8", LANG="C.UTF-8")
        if decoy_path:
            env["PYTHONPATH"] = str(self.decoy_path)
        return env

    def monitor(self) -> list[str]:
        """``tavus-monitor`` for a process that must ignore the decoy on ``PYTHONPATH``.

        ``-E`` keeps the monitor itself from reading ``PYTHONPATH``, so the decoy there can
        only be reached by a child process (the store writer) that looks ``tavus_monitor`` up
        on its own path instead of loading its parent's package.
        """
        return [str(self.python), "-E", str(self.command)]


def decoy(directory: Path) -> Path:
    (directory / PACKAGE).mkdir(parents=True)
    (directory / PACKAGE / "__init__.py").write_text(DECOY)
    return directory


def library_paths() -> list[str]:
    """Where this interpreter finds installed libraries: its site-packages and what follows.

    What follows covers a site-packages that names another one in a ``.pth`` file; the
    checkout itself is left out, whichever way it got on ``sys.path``.
    """
    site = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    first = min(index for index, path in enumerate(sys.path) if path in site)
    return [
        path
        for path in dict.fromkeys(sys.path[first:])
        if path and Path(path).is_dir() and Path(path).resolve() != CHECKOUT
    ]


def install(wheel: Path, where: Path) -> Installed:
    """A new virtual environment with ``wheel`` installed by pip (and this one's libraries)."""
    venv = where / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=where)
    python = venv / "bin" / "python"
    run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--disable-pip-version-check", str(wheel)],
        cwd=where,
    )  # fmt: skip
    where_libraries_go = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = Path(run([str(python), "-c", where_libraries_go], cwd=where).strip())
    # A .pth file's lines go on sys.path after the directory holding it.
    (purelib / "zz-test-dependencies.pth").write_text(
        "".join(f"{path}\n" for path in library_paths())
    )
    return Installed(
        python=python,
        command=venv / "bin" / "tavus-monitor",
        package=purelib / PACKAGE,
        cwd=decoy(where / "cwd"),
        decoy_path=decoy(where / "decoy-path"),
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The sdist built from the checkout, and the wheel built from the unpacked sdist."""
    where = tmp_path_factory.mktemp("built")
    sdist = build("build_sdist", CHECKOUT, where / "dist")
    with tarfile.open(sdist) as archive:
        archive.extractall(where / "unpacked", filter="data")
    [source] = (where / "unpacked").iterdir()
    return Built(sdist=sdist, wheel=build("build_wheel", source, where / "dist"))


@pytest.fixture(scope="module")
def installed(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    return install(built.wheel, tmp_path_factory.mktemp("installed"))


# --------------------------------------------------------------- what ships


def test_the_wheel_and_the_sdist_ship_every_file_of_the_package(built: Built) -> None:
    tree = package_files(CHECKOUT)
    assert {"tavus_monitor/tui/app.tcss", "tavus_monitor/py.typed"} <= tree
    assert any(name.startswith("tavus_monitor/samples/") for name in tree)
    with zipfile.ZipFile(built.wheel) as wheel:
        in_wheel = {name for name in wheel.namelist() if name.startswith(f"{PACKAGE}/")}
    assert sorted(tree - in_wheel) == [], "missing from the wheel"
    with tarfile.open(built.sdist) as sdist:
        in_sdist = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert sorted(tree - in_sdist) == [], "missing from the sdist"


def test_the_installed_command_prints_its_version(installed: Installed) -> None:
    version = re.search(
        r'__version__ = "([^"]+)"', (CHECKOUT / PACKAGE / "__init__.py").read_text()
    )
    assert version is not None
    output = run([str(installed.command), "--version"], cwd=installed.cwd, env=installed.env())
    assert output == f"tavus-monitor {version.group(1)}\n"


# ---------------------------------------------------------- the round trip


@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_installed_monitor_stores_and_streams_a_triggered_conversation(
    installed: Installed, tmp_path: Path, stop_with: signal.Signals
) -> None:
    data_dir = tmp_path / "data"
    with HeadlessProcess(
        "--no-tunnel", "--port", "0", "--data-dir", str(data_dir),
        program=installed.monitor(), cwd=installed.cwd, env=installed.env(decoy_path=True),
    ) as monitor:  # fmt: skip
        monitor.wait_for_callback_url()
        # `trigger` finds the running monitor through the state file in the data dir.
        trigger = subprocess.run(
            [str(installed.command), "trigger", "--data-dir", str(data_dir)],
            cwd=installed.cwd,
            env=installed.env(),
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
        )
        sent = len(samples.CONVERSATION_SEQUENCE)
        assert trigger.returncode == 0, trigger.stderr + monitor.stderr
        assert f"{sent} accepted, 0 failed" in trigger.stderr
        for _ in range(sent):
            monitor.wait_for("out", lambda line: line.startswith("{"), "a JSON line")
        assert monitor.stop(stop_with) == 0
    events = [json.loads(line) for line in monitor.out]
    assert [event["event_type"] for event in events] == [
        name for name, _ in samples.CONVERSATION_SEQUENCE
    ]
    assert len({event["conversation_id"] for event in events}) == 1
    assert "Traceback" not in monitor.stderr
    assert "decoy" not in (data_dir / "tavus-monitor.log").read_text()


# ------------------------------------------------------------ the dashboard


class Tmux:
    """A tmux server of our own (its own socket, no config) with one 120×35 session."""

    def __init__(self, where: Path, env: dict[str, str]) -> None:
        self.socket = where / "tmux.sock"
        self.status = where / "exit-status"
        """Written by the pane's shell once the command has exited."""
        self.env = env

    def __call__(self, *args: str, timeout: float = DEADLINE, launcher: Sequence[str] = ()) -> str:
        result = subprocess.run(
            [*launcher, "tmux", "-S", str(self.socket), "-f", os.devnull, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"tmux {shlex.join(args)} failed: {result.stderr}")
        return result.stdout

    def start(self, command: list[str], cwd: Path) -> None:
        """Run ``command`` in the pane; when it exits, its status is written and announced.

        The pane's shell reaps the command, writes its exit status and signals the
        ``exited`` channel, which :meth:`exit_status` waits on: tmux's own notice of a
        dead pane comes late or never when a parent has blocked SIGCHLD (as some CI
        runners do), so the server is also started with no signal blocked, like a
        terminal a user opens.
        """
        script = f'"$@"; echo $? > {shlex.quote(str(self.status))}; tmux wait-for -S exited'
        self(
            "start-server", ";",
            "set-option", "-g", "remain-on-exit", "on", ";",
            "new-session", "-d", "-s", "monitor", "-x", "120", "-y", "35", "-c", str(cwd),
            shlex.join(["sh", "-c", script, "sh", *command]),
            launcher=UNBLOCKED,
        )  # fmt: skip

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "monitor")

    def wait_for_screen(self, pattern: re.Pattern[str], what: str) -> str:
        """The screen once ``pattern`` is on it.

        tmux has no event for "this text is drawn", so the pane is read every 50 ms until
        the deadline.
        """
        deadline = time.monotonic() + DEADLINE
        while (match := pattern.search(screen := self.screen())) is None:
            if self.status.exists():
                pytest.fail(f"the dashboard exited before {what}:\n{screen}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} within {DEADLINE:g} s:\n{screen}")
            time.sleep(0.05)
        return match.group(0)

    def exit_status(self) -> int:
        """Wait for the pane's command to exit; its exit status."""
        try:
            self("wait-for", "exited", timeout=DEADLINE / 2)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the dashboard did not exit within {DEADLINE / 2:g} s:\n{self.screen()}")
        return int(self.status.read_text())

    def kill(self) -> None:
        subprocess.run(
            ["tmux", "-S", str(self.socket), "kill-server"],
            capture_output=True,
            timeout=DEADLINE,
            check=False,
        )


@pytest.fixture
def tmux(tmp_path: Path, installed: Installed) -> Iterator[Tmux]:
    """A tmux server for one test; fails in CI when tmux is missing (.ci/run installs it)."""
    if shutil.which("tmux") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("tmux is not installed, and CI must drive the dashboard in a terminal")
        pytest.skip("tmux is not installed (apt-get install tmux) to drive the dashboard")
    server = Tmux(tmp_path, installed.env(decoy_path=True))
    try:
        yield server
    finally:
        server.kill()


def test_the_installed_dashboard_shows_the_callback_url_and_q_exits_0(
    installed: Installed, tmux: Tmux, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    tmux.start(
        [*installed.monitor(), "--no-tunnel", "--port", "0", "--data-dir", str(data_dir)],
        cwd=installed.cwd,
    )
    url = tmux.wait_for_screen(CALLBACK_URL, "callback URL on the screen")
    token = (data_dir / "token").read_text().strip()
    assert url.endswith(f"/webhook/{token}")
    tmux("send-keys", "-t", "monitor", "q")
    assert tmux.exit_status() == 0, tmux.screen()
    assert "Traceback" not in tmux.screen()


# -------------------------------------------------------- a broken install


def test_a_dashboard_that_cannot_start_says_so_in_one_sentence(
    built: Built, tmp_path: Path
) -> None:
    broken = install(built.wheel, tmp_path)
    (broken.package / "tui" / "app.tcss").unlink(missing_ok=True)
    data_dir = tmp_path / "data"
    result = subprocess.run(
        [str(broken.command), "--no-tunnel", "--port", "0", "--data-dir", str(data_dir)],
        cwd=broken.cwd,
        env=broken.env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    [sentence] = [line for line in result.stderr.splitlines() if line.strip()]
    assert sentence.startswith("tavus-monitor: the dashboard could not start (")
    assert "app.tcss" in sentence
    assert "--headless" in sentence
    assert sentence.endswith(".")
    log = (data_dir / "tavus-monitor.log").read_text()
    assert "Traceback" in log
    assert "app.tcss" in log


def test_the_installed_dashboard_stops_when_its_terminal_goes_away(
    installed: Installed, tmp_path: Path
) -> None:
    """A pseudo-terminal closed without a SIGHUP (it is not the monitor's controlling one)
    left the dashboard reading end-of-file in a loop at 60-80 % of a core, for ever."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    data_dir = tmp_path / "data"
    command = [*installed.monitor(), "--no-tunnel", "--port", "0", "--data-dir", str(data_dir)]
    env = {**installed.env(), "TERM": "xterm-256color"}
    process = subprocess.Popen(
        command, stdin=slave, stdout=slave, stderr=slave, cwd=installed.cwd, env=env
    )
    os.close(slave)
    try:
        seen = b""
        deadline = time.monotonic() + DEADLINE
        while b"Callback URL" not in seen and b"Local URL only" not in seen:
            assert time.monotonic() < deadline, f"the dashboard did not start: {seen[-2000:]!r}"
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                seen += os.read(master, 65536)
            assert process.poll() is None, seen[-2000:]
        os.close(master)
        assert process.wait(timeout=DEADLINE) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
