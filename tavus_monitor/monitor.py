"""The running monitor: store + server + tunnel + bus, started and stopped as one.

Headless mode and the TUI both drive a :class:`Monitor`; neither knows how
the pieces are wired. Everything runs on the caller's event loop except the
store's writer (a child process, which this loop drives: see
:mod:`tavus_monitor.writerprocess`) and the tunnel's blocking pyngrok calls
(in threads).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time

from .bus import Bus, EventStored, RequestRejected, StatusChanged, StatusKind, TunnelChanged
from .events import Event
from .forward import Backoff, Forwarder
from .private import private_dir
from .server import EmbeddedServer, PortInUse, Stats, bind_with_fallback, create_app, make_server
from .settings import Settings
from .state import RunningState, clear_state, load_or_create_token, write_state
from .store import FILE_CHECK_INTERVAL, EventLines, EventQuery, Rejection, Store, StoreError
from .stranded import stranded, url_changed_sentence
from .tunnel import (
    STARTUP_TIMEOUT,
    TunnelOptions,
    TunnelState,
    TunnelStatus,
    TunnelSupervisor,
    TunnelTiming,
    save_authtoken,
)

log = logging.getLogger(__name__)

LOCAL_ONLY = "local only: Tavus cannot reach it"
"""How a ``Callback URL:`` line marks a URL that is not public."""


class MonitorError(Exception):
    """The monitor cannot start; the message says what happened and what to do."""


def bind(settings: Settings) -> tuple[socket.socket, bool]:
    """The listening socket for ``settings`` and whether it fell back to another port.

    Raises :class:`MonitorError` with the one sentence both modes give: an explicit port that
    is busy, or an address that cannot be listened on.
    """
    try:
        return bind_with_fallback(settings.host, settings.port, explicit=settings.port_explicit)
    except PortInUse:
        raise MonitorError(
            f"Port {settings.port} is already in use by another program; "
            f"stop it or choose another port with --port (--port 0 picks a free one)."
        ) from None
    except OSError as exc:
        raise MonitorError(
            f"Cannot listen on {settings.host}:{settings.port} ({exc.strerror or exc}); "
            "check --host and --port."
        ) from None


def check_port(settings: Settings) -> None:
    """Raise :class:`MonitorError` now if the server could not listen as ``settings`` ask:
    the dashboard checks before it takes over the terminal, so the sentence is printed as
    headless mode prints it. (The port is bound and let go: the server binds it again.)"""
    sock, _ = bind(settings)
    sock.close()


class Monitor:
    tunnel_timing = TunnelTiming()
    """Health-check and backoff timing of the tunnel (tests shorten it)."""
    tunnel_startup_timeout = STARTUP_TIMEOUT
    forward_backoff = Backoff()
    """Waits between forwarding tries of one event (tests shorten them)."""

    def __init__(self, settings: Settings, *, event_lines: EventLines | None = None) -> None:
        """``event_lines``: where the store writes each committed event's line, and how."""
        self.settings = settings
        self.event_lines = event_lines
        self.bus = Bus()
        self.stats = Stats()
        self.store: Store | None = None
        self.token: str | None = None
        self.host = settings.host
        self.port: int | None = None
        self._server: EmbeddedServer | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()
        self.tunnel: TunnelSupervisor | None = None
        self._tunnel_task: asyncio.Task[None] | None = None
        self._store_watch: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reseed: asyncio.Task[None] | None = None
        self.forwarder: Forwarder | None = None
        """Sends each stored delivery to ``--forward-to``; its attempts are published as
        :class:`~tavus_monitor.bus.Forwarded` messages on :attr:`bus`."""
        self.tunnel_status = self._initial_tunnel_status()
        self._started_at = time.time()
        self._announced_url: str | None = None
        """The last ``Callback URL:`` line: each change of the URL is announced once."""
        self.control_key = secrets.token_urlsafe(24)
        """The key of the control routes (:mod:`tavus_monitor.control`), in ``state.json``."""

    # ---------------------------------------------------------------- URLs

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"http://{host}:{self.port}"

    @property
    def webhook_path(self) -> str:
        return "/webhook" if self.token is None else f"/webhook/{self.token}"

    @property
    def local_url(self) -> str:
        return self.base_url + self.webhook_path

    @property
    def public_base_url(self) -> str | None:
        """The public base URL: ``--public-url``, or the tunnel's while it is up."""
        url = self.settings.public_url or self.tunnel_status.public_url
        return url.rstrip("/") if url else None

    @property
    def callback_url(self) -> str:
        """The URL to give Tavus as ``callback_url``."""
        public = self.public_base_url
        return public + self.webhook_path if public else self.local_url

    @property
    def local_only(self) -> bool:
        """Whether the callback URL is the local one, which Tavus cannot reach."""
        return self.public_base_url is None

    def _announce_url(self) -> None:
        """A ``Callback URL: …`` status line (plain, at line start) when the URL changed.

        Headless mode prints it as it is, so ``grep '^Callback URL:'`` finds every one;
        a local URL is marked, since Tavus cannot call it.
        """
        line = f"Callback URL: {self.callback_url}"
        if self.local_only:
            line += f" ({LOCAL_ONLY})"
        if line != self._announced_url:
            self._announced_url = line
            self._status(line, topic="url")

    # ----------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Open the store, bind the port and serve; return once listening."""
        settings = self.settings
        loop = self._loop = asyncio.get_running_loop()
        private_dir(settings.data_dir)
        if settings.no_token:
            self.token = None
            self._status(
                "Serving /webhook without a token: anyone who learns the URL can post to it.",
                StatusKind.WARNING,
                "token",
            )
        else:
            self.token = settings.token or load_or_create_token(settings.data_dir)
        try:
            # The store classifies and writes in a child process, on the second
            # core: this process's core is for receiving requests.
            if settings.db_path is None:  # --ephemeral
                self.store = await asyncio.to_thread(Store.temporary, lines=self.event_lines)
            else:
                self.store = await asyncio.to_thread(
                    Store, settings.db_path, lines=self.event_lines
                )
        except Exception as exc:
            where = settings.db_path or "a temporary directory (--ephemeral)"
            raise MonitorError(
                f"Cannot open the event store at {where} ({exc}); "
                "pass --db with a writable path or use --ephemeral."
            ) from exc
        counts = await asyncio.to_thread(self.store.counts)
        self.stats.events_total = counts.events
        self.stats.rejected_total = counts.rejected
        newest = await asyncio.to_thread(self.store.rows, EventQuery(limit=1))
        self.stats.last_event_at = newest[0].received_at if newest else None

        self.store.on_commit(self._publish_committed, loop=loop)
        self.store.on_notice(self._store_notice)
        try:
            sock = self._bind()
        except MonitorError:
            await asyncio.to_thread(self.store.close)
            self.store = None
            raise
        self.port = sock.getsockname()[1]
        if settings.forward_to:
            # Before the server listens: a first run starts after the newest event stored.
            await self._start_forwarding(settings.forward_to)
        app = create_app(
            self.store,
            token=self.token,
            max_body_bytes=settings.max_body_bytes,
            stats=self.stats,
        )
        app.state.control_key = self.control_key
        self._server = make_server(app, header_timeout=settings.header_timeout)
        self._serve_task = asyncio.create_task(self._serve(sock), name="tavus-monitor-server")
        await self._wait_listening()
        self._store_watch = asyncio.create_task(
            self._watch_store(self.store), name="tavus-monitor-store-watch"
        )
        if settings.db_path is None:
            self._status(
                f"Storing events in {self.store.path}, a temporary file deleted when the "
                "monitor stops (--ephemeral: nothing is kept after exit).",
                topic="store",
            )
        else:
            self._status(
                f"Storing events in {self.store.path} ({counts.events} stored so far).",
                topic="store",
            )
        self._status(f"Listening on {self.base_url}", topic="server")
        self._status(f"Local URL: {self.local_url}", topic="local-url")
        if self.forwarder is not None:
            await self._announce_forwarding(self.forwarder)
        if settings.tunnel_wanted:
            self._start_tunnel()
        else:
            kind = StatusKind.INFO if settings.public_url else StatusKind.WARNING
            self._status(f"Tunnel: {self.tunnel_status.text}", kind, "tunnel")
            self._announce_url()
        self._write_state()

    async def _start_forwarding(self, target: str) -> None:
        assert self.store is not None
        self.forwarder = Forwarder(
            self.store,
            target,
            timeout=self.settings.forward_timeout,
            retries=self.settings.forward_retries,
            publish=self.bus.publish,
            backoff=self.forward_backoff,
        )
        await self.forwarder.start()

    async def _announce_forwarding(self, forwarder: Forwarder) -> None:
        line = (
            f"Forwarding each delivery to {forwarder.target} "
            f"(timeout {forwarder.timeout:g} s, {forwarder.retries} retries)"
        )
        if forwarder.resumed:
            waiting = await forwarder.pending()
            line += f"; {waiting} stored while it was not running go first." if waiting else "."
        else:
            line += "; deliveries stored before now are not forwarded."
        self._status(line, topic="forward")

    def _initial_tunnel_status(self) -> TunnelStatus:
        if self.settings.public_url:
            return TunnelStatus(
                TunnelState.OFF,
                public_url=self.settings.public_url.rstrip("/"),
                problem=f"your own ({self.settings.public_url.rstrip('/')})",
            )
        if self.settings.no_tunnel:
            return TunnelStatus(
                TunnelState.OFF,
                problem="off (--no-tunnel)",
            )
        return TunnelStatus(TunnelState.STARTING)

    def _start_tunnel(self) -> None:
        settings = self.settings
        assert self.port is not None
        options = TunnelOptions(
            ngrok_path=settings.ngrok_path,
            authtoken=settings.ngrok_authtoken,
            domain=settings.ngrok_domain,
            region=settings.ngrok_region,
            startup_timeout=self.tunnel_startup_timeout,
        )
        self.tunnel = TunnelSupervisor(
            options, self.port, self._tunnel_changed, timing=self.tunnel_timing
        )
        self._tunnel_task = asyncio.create_task(self.tunnel.run(), name="tavus-monitor-tunnel")

    def _tunnel_changed(self, status: TunnelStatus) -> None:
        self.tunnel_status = status
        self.bus.publish(TunnelChanged(status))
        if status.state is TunnelState.UP:
            self._status(f"Tunnel: {status.text}", topic="tunnel")
            if status.previous_url:
                self._status(
                    f"The public URL changed from {status.previous_url} to {status.public_url}: "
                    "Tavus resources created with the old URL will not reach this monitor; "
                    "use the new callback URL for new ones.",
                    StatusKind.WARNING,
                    "tunnel-url-changed",
                )
                self._warn_stranded(status.previous_url, status.public_url)
        elif status.state in (TunnelState.FAILED, TunnelState.RECONNECTING):
            self._status(f"Tunnel {status.text}", StatusKind.WARNING, "tunnel")
        else:
            self._status(f"Tunnel: {status.text}", topic="tunnel")
        if status.state is not TunnelState.STARTING:  # starting: wait for what comes of it
            self._announce_url()
        self._write_state()

    def _warn_stranded(self, old_url: str, new_url: str | None) -> None:
        """Name the conversations created with ``old_url`` that are still active: their
        callbacks go to the old URL now (:mod:`tavus_monitor.stranded`)."""
        if self.store is None:
            return
        try:
            sentence = url_changed_sentence(stranded(self.store, old_url, new_url))
        except StoreError:
            log.exception("could not read which conversations the old URL leaves behind")
            return
        if sentence is not None:
            self._status(sentence, StatusKind.WARNING, "tunnel-url-stranded")

    def retry_tunnel(self) -> bool:
        """Ask the tunnel to try again now; False when no tunnel is managed here."""
        if self.tunnel is None:
            return False
        self.tunnel.retry()
        return True

    def use_authtoken(self, token: str) -> bool:
        """Open the tunnel again now with ``token``; False when no tunnel is managed here.

        The token is kept in memory only (see :meth:`save_authtoken`) and never logged.
        """
        if self.tunnel is None:
            return False
        self.tunnel.use_authtoken(token)
        return True

    async def save_authtoken(self, token: str) -> None:
        """Save ``token`` to ngrok's config file for later runs (``TunnelError`` if not)."""
        options = self.tunnel.options if self.tunnel is not None else TunnelOptions()
        await asyncio.to_thread(save_authtoken, options, token)

    def _write_state(self) -> None:
        write_state(
            self.settings.data_dir,
            RunningState(
                pid=os.getpid(),
                local_url=self.local_url,
                callback_url=self.callback_url,
                public_url=None if self.local_only else self.callback_url,
                healthz_url=self.base_url + "/healthz",
                db=str(self.settings.db_path) if self.settings.db_path else None,
                started_at=self._started_at,
                control_key=self.control_key,
                forward_to=self.settings.forward_to,
            ),
        )

    def _bind(self) -> socket.socket:
        settings = self.settings
        sock, fell_back = bind(settings)
        if fell_back:
            self._status(
                f"Port {settings.port} is busy, so the monitor listens on port "
                f"{sock.getsockname()[1]} instead (--port fixes it).",
                StatusKind.WARNING,
                "server",
            )
        return sock

    async def _serve(self, sock: socket.socket) -> None:
        assert self._server is not None
        try:
            await self._server.serve(sockets=[sock])
        except (Exception, SystemExit) as exc:
            # uvicorn calls sys.exit() on startup failure; it must not end the program.
            log.exception("the webhook server stopped")
            self._status(f"The webhook server stopped: {exc!r}.", StatusKind.ERROR, "server")
        finally:
            self._stopped.set()

    async def _wait_listening(self) -> None:
        assert self._server is not None
        assert self._serve_task is not None
        listening = asyncio.ensure_future(self._server.listening.wait())
        await asyncio.wait({listening, self._serve_task}, return_when=asyncio.FIRST_COMPLETED)
        if not self._server.listening.is_set():
            listening.cancel()
            raise MonitorError("The webhook server could not start; see the log file.")

    def _store_notice(self, text: str) -> None:
        """Something happened to the store file (from any thread): say it loudly."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._store_replaced, text)

    def _store_replaced(self, text: str) -> None:
        self._status(text, StatusKind.ERROR, "store")
        self._reseed = asyncio.create_task(self._count_stored(), name="tavus-monitor-recount")

    async def _count_stored(self) -> None:
        """The header's and /healthz's counts, from the new file (after this batch's answers)."""
        if self.store is not None:
            with contextlib.suppress(StoreError):
                counts = await asyncio.to_thread(self.store.counts)
                self.stats.events_total = counts.events
                self.stats.rejected_total = counts.rejected

    @staticmethod
    async def _watch_store(store: Store) -> None:
        """Notice, while no delivery comes, that the store file was deleted or replaced."""
        while True:
            await asyncio.sleep(FILE_CHECK_INTERVAL)
            await asyncio.to_thread(store.check_file)

    async def stop(self) -> None:
        """Close the tunnel, stop accepting, finish open requests, flush the store.

        Safe to call twice.
        """
        if self._store_watch is not None:
            self._store_watch.cancel()
            self._store_watch = None
        if self.tunnel is not None:
            await self.tunnel.close()
            if self._tunnel_task is not None:
                await self._tunnel_task
            self.tunnel = None
            self._tunnel_task = None
        if self._server is not None and self._serve_task is not None:
            self._server.should_exit = True
            await self._serve_task
            self._serve_task = None
        if self.forwarder is not None:
            await self.forwarder.stop()
        if self.store is not None:
            await asyncio.to_thread(self.store.close)
        clear_state(self.settings.data_dir, os.getpid())
        self.bus.close()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    # ------------------------------------------------------------- helpers

    def _publish_committed(self, events: list[Event], rejections: list[Rejection]) -> None:
        if events and self.forwarder is not None:
            self.forwarder.wake()
        if self.bus.wants_events:
            for event in events:
                self.bus.publish(EventStored(event))
        for rejection in rejections:
            self.bus.publish(RequestRejected(rejection))

    def _status(
        self, text: str, kind: StatusKind = StatusKind.INFO, topic: str = "monitor"
    ) -> None:
        log.info("%s", text)
        self.bus.publish(StatusChanged(text, kind, topic))
