"""The public tunnel: an ngrok agent driven through pyngrok, watched and explained.

Tavus can only call a public HTTPS URL. This module opens one to the local
server and keeps it honest: a small state machine (starting → up | failed →
reconnecting → up), a health check that notices when the agent dies or the
public URL stops answering, reconnection with backoff, and for every failure
one plain sentence saying what happened plus one saying what to do.

pyngrok blocks (process start, agent API calls, the first-use download), so
every call into it runs in a thread; nothing here touches the event loop's
thread for longer than a status update. pyngrok's download progress (printed
to stdout) is captured, and its logs go to the ``pyngrok`` logger, which the
monitor sends to the log file.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

log = logging.getLogger(__name__)

HEALTH_INTERVAL = 10.0
"""Seconds between health checks of an open tunnel."""
HEALTH_TIMEOUT = 8.0
FAILURES_BEFORE_RECONNECT = 2
"""Failed public-URL checks in a row before the tunnel is reopened (a blip is no outage)."""
BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
"""Waits between reconnection attempts; the last one repeats."""
STARTUP_TIMEOUT = 15
"""Seconds pyngrok waits for the agent to start."""


class TunnelState(StrEnum):
    OFF = "off"
    STARTING = "starting"
    UP = "up"
    FAILED = "failed"
    RECONNECTING = "reconnecting"


@dataclass(frozen=True, slots=True)
class TunnelStatus:
    """Where the tunnel stands, in words a user can act on."""

    state: TunnelState
    public_url: str | None = None
    problem: str | None = None
    """What went wrong, one sentence (None when nothing did)."""
    advice: str | None = None
    """What to do about it, one sentence."""
    previous_url: str | None = None
    """Set when the public URL changed: the URL Tavus resources may still be calling."""
    needs_authtoken: bool = False
    """The failure is a missing or refused authtoken: a new one (``use_authtoken``) fixes it."""

    @property
    def text(self) -> str:
        """One line for a header or a status line."""
        if self.state is TunnelState.UP:
            return f"up: {self.public_url}"
        if self.state is TunnelState.STARTING:
            return "starting ngrok…"
        if self.state is TunnelState.OFF and self.problem:
            return self.problem  # "off (--no-tunnel)", "your own (https://…)"
        detail = " ".join(part for part in (self.problem, self.advice) if part)
        return f"{self.state.value}: {detail}" if detail else self.state.value


@dataclass(frozen=True, slots=True)
class TunnelOptions:
    ngrok_path: str | None = None
    """An ngrok binary to use; default: ``PYNGROK_NGROK_PATH``, ``ngrok`` on PATH, or
    pyngrok's own (downloaded on first use)."""
    authtoken: str | None = None
    """Default: ``NGROK_AUTHTOKEN``, else what the ngrok config file holds."""
    domain: str | None = None
    region: str | None = None
    config_path: str | None = None
    startup_timeout: int = STARTUP_TIMEOUT


@dataclass(frozen=True, slots=True)
class TunnelTiming:
    """How patient the supervisor is; tests shorten these."""

    health_interval: float = HEALTH_INTERVAL
    backoff: tuple[float, ...] = BACKOFF
    start_grace: float = 10.0
    """Seconds beyond pyngrok's own start-up timeout before an agent that prints
    nothing is killed."""


class TunnelError(Exception):
    """A tunnel failure explained: ``problem`` and ``advice`` are sentences for the user."""

    def __init__(
        self, problem: str, advice: str, *, permanent: bool, needs_authtoken: bool = False
    ) -> None:
        super().__init__(problem)
        self.problem = problem
        self.advice = advice
        self.permanent = permanent
        """True when retrying without a change (token, binary, domain) cannot help."""
        self.needs_authtoken = needs_authtoken
        """True when an authtoken (a missing or a valid one) is what it takes."""


# ------------------------------------------------------------ explaining


def explain(exc: BaseException, options: TunnelOptions) -> TunnelError:
    """Turn whatever pyngrok raised into one sentence and a next step."""
    from pyngrok.exception import PyngrokNgrokHTTPError, PyngrokNgrokInstallError

    if isinstance(exc, TunnelError):
        return exc
    text = redact(_error_text(exc), options.authtoken)
    if isinstance(exc, PyngrokNgrokInstallError):
        return TunnelError(
            "The ngrok agent could not be downloaded (no network, a proxy or a certificate "
            "problem).",
            "Install ngrok and pass --ngrok-path /path/to/ngrok (or set PYNGROK_NGROK_PATH), "
            "or run your own tunnel and pass --public-url; the local URL keeps working.",
            permanent=True,
        )
    if "ERR_NGROK_4018" in text or "ERR_NGROK_105" in text:
        missing = "ERR_NGROK_4018" in text
        return TunnelError(
            "ngrok refused to start: it needs an authtoken."
            if missing
            else "ngrok refused the authtoken: it is not valid.",
            "Get one at https://dashboard.ngrok.com/get-started/your-authtoken and paste it "
            "in the dashboard (a), or restart with NGROK_AUTHTOKEN set (or --ngrok-authtoken), "
            "or save it with `ngrok config add-authtoken <token>` and restart.",
            permanent=True,
            needs_authtoken=True,
        )
    if "ERR_NGROK_108" in text:
        return TunnelError(
            "Another ngrok agent is already running on this ngrok account "
            "(free accounts allow one at a time).",
            "Stop the other agent (for example `pkill ngrok`) and retry (t in the dashboard), "
            "or pass --public-url with the tunnel you already have.",
            permanent=True,
        )
    domain_error = any(code in text for code in ("ERR_NGROK_320", "ERR_NGROK_313", "ERR_NGROK_319"))
    if domain_error or (options.domain and isinstance(exc, PyngrokNgrokHTTPError)):
        return TunnelError(
            f"ngrok refused the domain {options.domain or '(none)'}: it is not reserved for "
            "this account or not valid.",
            "Check --ngrok-domain against https://dashboard.ngrok.com/domains, or drop it to "
            "get a random URL.",
            permanent=True,
        )
    if "failed to dial" in text or "failed to reconnect session" in text or "lookup" in text:
        return TunnelError(
            "ngrok cannot reach its servers (offline, firewall or proxy).",
            "Check the network; the monitor retries by itself and keeps serving locally.",
            permanent=False,
        )
    if "unable to start" in text.lower() or "errored on start" in text.lower():
        agent_error = redact(_last_agent_error(exc) or "", options.authtoken)
        return TunnelError(
            "The ngrok agent could not start" + (f": {agent_error}." if agent_error else "."),
            "The monitor retries by itself; the log file has the agent's output.",
            permanent=False,
        )
    if isinstance(exc, FileNotFoundError | PermissionError) or "not found" in text.lower():
        return TunnelError(
            f"The ngrok binary at {options.ngrok_path} cannot be run.",
            "Point --ngrok-path (or PYNGROK_NGROK_PATH) at an executable ngrok.",
            permanent=True,
        )
    return TunnelError(
        f"The tunnel failed: {_first_line(text)}.",
        "The monitor retries by itself; the log file has the details.",
        permanent=False,
    )


def _error_text(exc: BaseException) -> str:
    parts = [str(exc)]
    for attribute in ("ngrok_error", "body", "details"):
        value = getattr(exc, attribute, None)
        if value:
            parts.append(str(value))
    return " ".join(parts)


def _last_agent_error(exc: BaseException) -> str | None:
    """The agent's last error log line, as pyngrok collected it."""
    for entry in reversed(getattr(exc, "ngrok_logs", None) or []):
        err = getattr(entry, "err", None)
        if err and err != "<nil>":
            return _first_line(str(err))
    return None


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "unknown error"
    return line.rstrip(".")[:200]


# ---------------------------------------------------------------- agent


class NgrokAgent:
    """The blocking side: one ngrok agent process and one tunnel, through pyngrok.

    Every method blocks and is meant to run in a thread.
    """

    def __init__(self, options: TunnelOptions, on_log: Callable[[str], None] | None = None) -> None:
        from pyngrok import conf, process

        self.options = options
        if options.authtoken:
            _REDACT.secrets.add(options.authtoken)
        path = options.ngrok_path or _installed_ngrok()
        self._process: Any = None
        """pyngrok's NgrokProcess for this agent, kept so that :meth:`close` can close its
        output pipe even after pyngrok forgot a process that failed to start."""

        def log_event(entry: Any) -> None:
            if self._process is None:  # the first line: the process is registered by now
                self._process = process._current_processes.get(self.config.ngrok_path)
            if on_log is not None:
                # ngrok quotes a refused authtoken in its error ("Your authtoken: …").
                on_log(redact(entry.line, options.authtoken))

        config_kwargs: dict[str, Any] = {
            "auth_token": options.authtoken,
            "region": options.region,
            "startup_timeout": options.startup_timeout,
            "log_event_callback": log_event,
        }
        if path is not None:
            config_kwargs["ngrok_path"] = path
        if options.config_path is not None:
            config_kwargs["config_path"] = options.config_path
        self.config = conf.PyngrokConfig(**config_kwargs)
        process.subprocess = _AGENT_SUBPROCESS  # type: ignore[assignment,attr-defined]
        self.options = replace(options, ngrok_path=self.config.ngrok_path)
        self.public_url: str | None = None

    def open(self, port: int) -> str:
        """Start the agent (downloading it first if needed) and open the tunnel."""
        from pyngrok import ngrok

        # The first-use installer prints progress to stdout, which would corrupt a TUI
        # or a JSON-lines stream: install explicitly, with stdout captured.
        with contextlib.redirect_stdout(io.StringIO()) as captured:
            ngrok.install_ngrok(self.config)
        if captured.getvalue().strip():
            log.info("ngrok install: %s", captured.getvalue().strip().replace("\r", " "))
        options: dict[str, Any] = {"inspect": False}
        if self.options.domain:
            domain = self.options.domain
            options["url"] = domain if "://" in domain else f"https://{domain}"
        tunnel = ngrok.connect(f"http://127.0.0.1:{port}", pyngrok_config=self.config, **options)
        public_url = tunnel.public_url
        assert public_url is not None  # pyngrok raises when it is missing
        if public_url.startswith("http://") and "127.0.0.1" not in public_url:
            public_url = "https://" + public_url.removeprefix("http://")
        self.public_url = public_url
        return public_url

    def running(self) -> bool:
        """Whether the agent process is alive."""
        from pyngrok import process

        current = process._current_processes.get(self.config.ngrok_path)
        return current is not None and current.proc.poll() is None

    def close(self) -> None:
        """Close the tunnel and end the agent process (no zombie left behind)."""
        from pyngrok import ngrok, process

        current = process._current_processes.get(self.config.ngrok_path) or self._process
        if current is not None:
            # End the process before asking pyngrok: a start-up blocked reading a silent
            # agent's output holds pyngrok's process lock (which ngrok.kill needs) until
            # the process ends.
            with contextlib.suppress(OSError):
                current.proc.kill()
            with contextlib.suppress(Exception):
                current.proc.wait(timeout=5)
        with contextlib.suppress(Exception):
            ngrok.kill(self.config)
        if current is not None:
            _close_output(current)
        self._process = None
        self.public_url = None


def _close_output(ngrok_process: Any) -> None:
    """Close the pipe pyngrok reads an ended agent's output from.

    pyngrok never closes it, and its atexit hook keeps the process object alive, so
    without this every agent started (each reconnection) would hold a descriptor
    until the monitor exits.
    """
    thread = ngrok_process._monitor_thread
    if thread is not None:
        thread.join(timeout=5)  # it reads the pipe until end of file
        if thread.is_alive():
            return
    if ngrok_process.proc.stdout is not None:
        with contextlib.suppress(Exception):
            ngrok_process.proc.stdout.close()


class _AgentSubprocess:
    """``subprocess`` as pyngrok.process sees it: the agent's stderr joins its stdout.

    ngrok prints fatal errors (a refused authtoken, say) to stderr as well as in its log;
    inherited, they would land on the dashboard or among headless status lines. Joined
    to stdout, pyngrok reads them with the log, which goes to the log file (and
    ``ngrok config add-authtoken``'s answer, which pyngrok reads with ``check_output``).
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)

    @staticmethod
    def Popen(*args: Any, **kwargs: Any) -> subprocess.Popen[Any]:
        kwargs.setdefault("stderr", subprocess.STDOUT)
        return subprocess.Popen(*args, **kwargs)

    @staticmethod
    def check_output(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("stderr", subprocess.STDOUT)
        return subprocess.check_output(*args, **kwargs)


def redact(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` (an authtoken) replaced, for logs and messages."""
    return text.replace(secret, "<authtoken>") if secret else text


class _RedactAuthtokens(logging.Filter):
    """Keeps the authtokens in use out of the agent's log lines, as pyngrok logs them.

    ngrok quotes a refused authtoken in its error ("Your authtoken: …"), and pyngrok logs
    every line of the agent (logger ``pyngrok.process.ngrok``), which goes to the log file.
    """

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            text = record.getMessage()
            for secret in self.secrets:
                text = redact(text, secret)
            record.msg, record.args = text, None
        return True


_REDACT = _RedactAuthtokens()
logging.getLogger("pyngrok.process.ngrok").addFilter(_REDACT)


def save_authtoken(options: TunnelOptions, token: str) -> None:
    """Save ``token`` in ngrok's config file, as ``ngrok config add-authtoken`` does (blocking).

    pyngrok's ``set_auth_token`` runs the agent's own ``config add-authtoken`` (into
    ``options.config_path``, else the file the agent reads by default), so later runs find
    it. Raises :class:`TunnelError`; no message or log line holds the token.
    """
    from pyngrok import conf, ngrok, process

    path = options.ngrok_path or _installed_ngrok()
    config_kwargs: dict[str, Any] = {"config_path": options.config_path}
    if path is not None:
        config_kwargs["ngrok_path"] = path
    config = conf.PyngrokConfig(**config_kwargs)
    process.subprocess = _AGENT_SUBPROCESS  # type: ignore[assignment,attr-defined]
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # a first-use download's progress
            ngrok.set_auth_token(token, pyngrok_config=config)
    except Exception as exc:
        output = getattr(exc, "output", None)
        detail = _first_line(redact(str(output or exc), token))
        log.warning("saving the ngrok authtoken failed: %s", detail)
        raise TunnelError(
            f"ngrok could not save the authtoken: {detail}.",
            "It is still used until the monitor stops; save it yourself with "
            "`ngrok config add-authtoken <token>`.",
            permanent=True,
        ) from None


_AGENT_SUBPROCESS = _AgentSubprocess()


def _installed_ngrok() -> str | None:
    """A real ``ngrok`` agent on PATH, unless PYNGROK_NGROK_PATH says otherwise.

    pyngrok installs a console script called ``ngrok`` that wraps itself (and
    downloads the agent on first use); that one is not an agent, so it is skipped.
    """
    if os.environ.get("PYNGROK_NGROK_PATH"):
        return None
    found = shutil.which("ngrok")
    if found is None:
        return None
    try:
        with open(found, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return None
    return None if b"pyngrok" in head else found


def public_url_answers(public_url: str, path: str = "/healthz") -> bool:
    """Whether a request through the tunnel reaches the monitor (blocking)."""
    request = urllib.request.Request(
        public_url.rstrip("/") + path,
        headers={"ngrok-skip-browser-warning": "1", "User-Agent": "tavus-monitor-health"},
    )
    try:
        with urllib.request.urlopen(request, timeout=HEALTH_TIMEOUT) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


# ----------------------------------------------------------- supervisor


class TunnelSupervisor:
    """Keeps one tunnel open for the monitor, reporting every state change."""

    def __init__(
        self,
        options: TunnelOptions,
        port: int,
        publish: Callable[[TunnelStatus], None],
        *,
        agent_factory: Callable[[TunnelOptions], NgrokAgent] | None = None,
        timing: TunnelTiming | None = None,
    ) -> None:
        self.options = options
        self.port = port
        self.publish = publish
        self.timing = timing or TunnelTiming()
        self.status = TunnelStatus(TunnelState.STARTING)
        self._agent_factory = agent_factory or (
            lambda opts: NgrokAgent(opts, on_log=lambda line: log.info("ngrok: %s", line))
        )
        self._agent: NgrokAgent | None = None
        self._retry = asyncio.Event()
        self._closing = False
        self._last_public_url: str | None = None

    def _set(self, status: TunnelStatus) -> None:
        self.status = status
        log.info("tunnel %s", status.text)
        self.publish(status)

    def retry(self) -> None:
        """Try again now (after a failure, or to skip a backoff wait)."""
        self._retry.set()

    def use_authtoken(self, token: str) -> None:
        """Open the tunnel again now, with ``token`` (pasted in the dashboard, say)."""
        self.options = replace(self.options, authtoken=token)
        self.retry()

    async def run(self) -> None:
        """Open the tunnel and keep it open until :meth:`close`."""
        attempt = 0
        state = TunnelState.STARTING
        while not self._closing:
            self._set(TunnelStatus(state, previous_url=None))
            try:
                public_url = await self._open()
            except TunnelError as error:
                await self._close_agent()
                if self._closing:
                    return
                if error.permanent:
                    self._set(
                        TunnelStatus(
                            TunnelState.FAILED,
                            problem=error.problem,
                            advice=error.advice,
                            needs_authtoken=error.needs_authtoken,
                        )
                    )
                    await self._wait_for_retry(None)
                    attempt = 0
                    state = TunnelState.STARTING
                    continue
                wait = self.timing.backoff[min(attempt, len(self.timing.backoff) - 1)]
                attempt += 1
                self._set(
                    TunnelStatus(
                        TunnelState.RECONNECTING,
                        problem=error.problem,
                        advice=f"Retrying in {wait:g} s; the local URL keeps working.",
                    )
                )
                await self._wait_for_retry(wait)
                state = TunnelState.RECONNECTING
                continue
            attempt = 0
            previous = self._last_public_url
            changed = previous is not None and previous != public_url
            self._last_public_url = public_url
            self._set(
                TunnelStatus(
                    TunnelState.UP,
                    public_url=public_url,
                    previous_url=previous if changed else None,
                )
            )
            problem = await self._watch()
            if self._closing:
                return
            await self._close_agent()
            self._set(
                TunnelStatus(
                    TunnelState.RECONNECTING,
                    public_url=None,
                    problem=problem,
                    advice="Reopening the tunnel; the local URL keeps working.",
                )
            )
            state = TunnelState.RECONNECTING

    async def _open(self) -> str:
        agent = self._agent_factory(self.options)
        self._agent = agent
        deadline = agent.options.startup_timeout + self.timing.start_grace
        task = asyncio.ensure_future(asyncio.to_thread(agent.open, self.port))
        try:
            public_url = await asyncio.wait_for(asyncio.shield(task), deadline)
        except TimeoutError:
            # An agent that prints nothing leaves pyngrok blocked reading its output:
            # ending the process unblocks it.
            await asyncio.to_thread(agent.close)
            with contextlib.suppress(Exception):
                await task
            raise TunnelError(
                f"The ngrok agent did not start within {deadline:g} s.",
                "The monitor retries by itself; the log file has the agent's output.",
                permanent=False,
            ) from None
        except Exception as exc:
            log.warning("tunnel failed: %s", redact(str(exc), agent.options.authtoken))
            raise explain(exc, agent.options) from exc
        if self._closing:
            # close() came while the agent was starting, perhaps before its process
            # existed: this agent is nobody else's to end.
            await asyncio.to_thread(agent.close)
            raise TunnelError("The tunnel was closed.", "Nothing to do.", permanent=True)
        return public_url

    async def _watch(self) -> str:
        """Return the problem sentence once the tunnel stops working."""
        failures = 0
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._retry.wait(), self.timing.health_interval)
            if self._closing:
                return "closing"
            if self._retry.is_set():
                self._retry.clear()
                return "Reopening the tunnel as asked."
            agent = self._agent
            if agent is None or not await asyncio.to_thread(agent.running):
                return "The ngrok agent exited unexpectedly."
            url = agent.public_url
            if url is None or await asyncio.to_thread(public_url_answers, url):
                failures = 0
                continue
            failures += 1
            if failures >= FAILURES_BEFORE_RECONNECT:
                return "The public URL stopped answering."
        return "closing"

    async def _wait_for_retry(self, seconds: float | None) -> None:
        self._retry.clear()
        if seconds is None:
            await self._retry.wait()
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._retry.wait(), seconds)
        self._retry.clear()

    async def _close_agent(self) -> None:
        agent, self._agent = self._agent, None
        if agent is not None:
            await asyncio.to_thread(agent.close)

    async def close(self) -> None:
        """Close the tunnel and the agent; safe to call twice."""
        self._closing = True
        self._retry.set()
        await self._close_agent()
