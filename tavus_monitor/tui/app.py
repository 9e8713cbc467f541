"""The dashboard: callback URL on top, four live panes, inspector on Enter.

The app is one consumer of the monitor's bus. The monitor (store, server)
runs in the app's event loop from a worker in its own group; stored events
arrive as bus messages, which are applied in batches at most ~30 times a
second, so a burst of a thousand callbacks is one screen update, not a
thousand.

The panes are whatever ``layout.PANES`` declares: the app routes each batch,
the store and the filter to every pane through the :class:`~.panes.Pane`
protocol and never asks which pane is which.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections import deque
from collections.abc import Iterable

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Grid
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Footer, Input
from textual.worker import Worker, WorkerCancelled, WorkerFailed, WorkerState, get_current_worker

from .. import event_types
from ..attention import Concern, ConcernKind, find_concerns
from ..bus import (
    DEFAULT_QUEUE_SIZE,
    EventStored,
    Forwarded,
    Message,
    RequestRejected,
    StatusChanged,
    StatusKind,
    Subscription,
    TunnelChanged,
)
from ..events import Event
from ..logs import LOG_FILE
from ..monitor import Monitor, MonitorError
from ..sanitize import printable
from ..settings import Settings
from ..store import EventQuery, ReadOnlyStore, SearchHit, StoreReader
from ..tunnel import TunnelError, TunnelState, TunnelStatus
from . import _one_line, layout
from .announcements import Announcements, Notable, Toast
from .attention_watch import AttentionWatch
from .clipboard import copy_text
from .filtering import parse_filter
from .formatters import short_type
from .handler_cells import Cell
from .hangup import terminal_hung_up
from .keys import Scope, actions, bindings, palette_entries
from .layout import MAIN_PANE
from .layout import SYSTEM_TYPES as SYSTEM_TYPES
from .pacing import Pacing
from .panes import Batch, CopyText, InspectEvent, Pane, PaneSpec, ResendEvent
from .quiet_gc import QuietCollector
from .reading import read_store
from .resend import Resender
from .screens.attention import AttentionScreen
from .screens.authtoken import AuthtokenChoice, AuthtokenScreen
from .screens.inspector import InspectorScreen
from .screens.search import SearchScreen
from .screens.simple import ConversationsScreen, HelpScreen, LogScreen, RejectedScreen
from .tavus_calls import TavusCalls
from .tunnel_header import tunnel_header
from .widgets.row_list import RowList
from .widgets.transcript_pane import TranscriptPane
from .widgets.transcript_view import TranscriptView
from .widgets.url_bar import UrlBar

URGENT_CONCERNS = frozenset({ConcernKind.TUNNEL, ConcernKind.FAILED_JOB, ConcernKind.ERROR_END})
"""Concerns that colour the header's counter red (the rest: yellow)."""
HANGUP_CHECK_INTERVAL = 1.0
"""Seconds between checks that the terminal is still there (see hangup)."""
QUIET_GC_INTERVAL = 1.0
"""Seconds between checks whether the callbacks paused long enough for a full collection."""
TOAST_FLUSH_INTERVAL = 1.0
"""Seconds between checks for a burst's summary and a free toast slot (held-back count)."""
STRANDED_TOAST_SECONDS = 120.0
"""How long the toast naming the calls a URL change left behind stays up (the ``!`` list
keeps them after it)."""
TOAST_WINDOW = 5.0
"""Seconds a toast stays up (Textual's default timeout)."""
MAX_TOASTS_PER_WINDOW = 4
"""Toasts shown per window; the rest are counted into one "…and N more" toast."""
FAILURE_NOTICE_WINDOW = 30.0
"""Seconds in which the same task failing again is logged but not shown again.

The transcripts pane reloads every second while callbacks arrive: a store that
fails every query would otherwise put up a new error toast each second."""
FOLLOW_RETRY_WINDOW = 10.0
"""Following the bus is started again after a failure, unless it failed this recently
(a failure that repeats at once would only repeat its notification)."""
RESYNC_DEADLINE = 10.0
"""Seconds a reload from the store may take before the panes go on without it."""
TASKS = {
    "server": "Starting the server",
    "authtoken": "Using the pasted authtoken",
    "follow": "Updating the panes",
    "jobs-load": "Loading the jobs pane",
    "row-list-load": "Loading a pane",
    "row-list-older": "Loading older events",
    "transcript-list": "Loading the conversation list",
    "transcript-refresh": "Refreshing the transcripts pane",
    "resend": "Sending the event to your handler again",
}
"""What each worker (by name, else by group) does, in the words a failure notification uses."""

log = logging.getLogger(__name__)


class MonitorApp(App[int]):
    """``tavus-monitor`` with no arguments."""

    CSS_PATH = "app.tcss"
    TITLE = "tavus-monitor"
    BUS_QUEUE_SIZE = DEFAULT_QUEUE_SIZE
    """How many bus messages may wait for the panes; beyond it they reload from the store."""
    PANES: tuple[PaneSpec, ...] = layout.PANES
    """The panes, as ``layout.PANES`` declares them (the stylesheet places them)."""

    BINDINGS = bindings(Scope.APP, Scope.DASHBOARD)
    """Generated from the key table (``keys.py``), like the help, the palette and the README."""
    DASHBOARD_ACTIONS = actions(Scope.DASHBOARD)
    """Actions that act on the dashboard only: :meth:`check_action` disables them elsewhere."""
    REPLACED_SYSTEM_COMMANDS = frozenset({"Keys", "Maximize", "Minimize"})
    """Textual's palette commands the key table replaces on the dashboard ("Keys" opens
    the full key list; "Maximise or restore pane" maximises the pane, not the inner widget):
    without this the palette listed both."""

    def __init__(self, settings: Settings, monitor: Monitor | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.monitor = monitor or Monitor(settings)
        self._filter_target: Widget | None = None
        self._rejections_seen = 0
        self._history_store: ReadOnlyStore | None = None
        self._tunnel_state = TunnelState.STARTING
        self.ready = asyncio.Event()
        """Set once the server listens (or failed to): tests and benchmarks await it."""
        self.last_shown_id = 0
        """The newest event id applied to the panes."""
        self._batch_applied = asyncio.Event()
        self._toast_times: deque[float] = deque()
        self._toasts_held = 0
        self._announcements = Announcements()
        # Everything teardown touches exists from here on: a start-up failure (a missing
        # stylesheet, say) unmounts an app whose on_mount never ran.
        self._toast_flush: Timer | None = None
        self.started = False
        """True once on_mount has finished: a failure before that is a start-up failure."""
        self.failure: BaseException | None = None
        """The unhandled error that ended the app, if one did (its traceback is logged)."""
        self._subscription: Subscription | None = None
        self._follow_failed_at: float | None = None
        self._store_replaced = False
        """The store file was made anew: the panes reload before the next batch."""
        self._failures_shown: dict[str, float] = {}
        """When each task's failure was last notified (see FAILURE_NOTICE_WINDOW)."""
        self._quiet_gc = QuietCollector()
        """Full garbage collections wait for a pause in the callbacks (see quiet_gc)."""
        self._pacing = Pacing()
        """How often the panes take a batch: less often during a burst (see pacing)."""
        self._attention = AttentionWatch()
        self.concerns: list[Concern] = []
        """What needs attention, as last counted (the header's counter, the ``!`` list)."""
        self._rejected_before: int | None = None
        """Refused requests stored before this run (the concern counts this run's)."""
        self.resender = Resender(self, settings, lambda: self.monitor.store, self.show_cell)
        """Replay and edit-and-send (``R`` / ``E``): see ``resend.py``."""
        self._url_changes: list[tuple[str, str | None]] = []
        """Each change of the public URL this run, (old, new): the ``!`` list names the
        conversations created with an old one that are still active."""

    # ------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield UrlBar(id="url-bar")
        with Grid(id="panes"):
            for spec in self.PANES:
                yield spec.build()
        yield Input(placeholder="filter: words, family:…, type:…, conv:… (Esc clears)", id="filter")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        self.query_one(f"#{MAIN_PANE}").focus()
        self._run_monitor()
        self._toast_flush = self.set_interval(TOAST_FLUSH_INTERVAL, self._tick_toasts)
        self.set_interval(QUIET_GC_INTERVAL, self._quiet_gc.tick)
        self.set_interval(1.0, self._tick_attention)
        if not self.is_headless and sys.__stdin__ is not None and sys.__stdin__.isatty():
            self._terminal_fd = sys.__stdin__.fileno()
            self.set_interval(HANGUP_CHECK_INTERVAL, self._check_terminal)
        self.started = True

    def _handle_exception(self, error: Exception) -> None:
        """Keep the error that ends the app, and its traceback in the log file.

        Textual's own report (a traceback drawn on stderr) is meant for developers;
        ``run_tui`` tells the user in one sentence instead.

        A failed worker is no reason to end the app, which would take the server (and
        Tavus's callbacks) down with it: the panes' workers keep Textual's default
        ``exit_on_error`` and their failure arrives here, so it is reported like the
        app's own workers' (see ``_worker_state_changed``) and the app goes on.
        """
        if isinstance(error, WorkerFailed):
            try:
                worker: Worker[object] | None = get_current_worker()
            except Exception:  # NoActiveWorker: raised from a handler awaiting a worker
                worker = None
            self._report_failure(worker, error.error)
            return
        if self.failure is None:
            self.failure = error
            stage = "running" if self.started else "starting"
            log.error("the dashboard failed while %s", stage, exc_info=error)
        super()._handle_exception(error)

    @property
    def panes(self) -> list[Widget]:
        """The panes' widgets, in the order :attr:`PANES` declares them."""
        return [self.query_one(f"#{spec.id}") for spec in self.PANES]

    def _each_pane(self) -> list[Pane]:
        """The panes as :class:`Pane` (``PaneSpec.build`` made sure each is one)."""
        return [pane for pane in self.panes if isinstance(pane, Pane)]

    # ------------------------------------------------------- the monitor

    @work(group="server", exclusive=True, exit_on_error=False, name="server")
    async def _run_monitor(self) -> None:
        monitor = self.monitor
        subscription = monitor.bus.subscribe(self.BUS_QUEUE_SIZE)
        self._subscription = subscription
        bar = self.query_one(UrlBar)
        try:
            await monitor.start()
        except MonitorError as exc:
            bar.state.server = str(exc)
            bar.state.server_ok = False
            bar.show()
            self.notify(
                str(exc),
                title="The server could not start",
                severity="error",
                timeout=30,
                markup=False,
            )
            await self._browse_history_only()
            self.ready.set()
            return
        assert monitor.store is not None
        self._show_urls()
        self._attach_store(monitor.store)
        self._apply(subscription.drain())
        self._tick_attention()  # the first count at once: history can hold failures
        self.ready.set()
        self._quiet_gc.started()
        self._follow_bus(subscription, resync=False)

    @work(group="server", exit_on_error=False, name="follow")
    async def _follow_bus(self, subscription: Subscription, *, resync: bool) -> None:
        """Apply the bus's messages to the panes, a batch per frame, until the bus closes.

        A worker of its own (in the long-running "server" group, which the tests' settling
        does not wait for), apart from the one that starts the server, so that after a
        failure it can start again (``resync``: from the store, since the batch that
        failed was never fully shown) without starting the server twice. When the panes
        fell so far behind that the bus dropped messages for them, they reload from the
        store: every event is there, so none goes missing from the screen.
        """
        if resync:
            subscription.take_missed()
            await self._resync(
                "The panes stopped updating after an error and were reloaded from the store: "
                "nothing was lost."
            )
        while True:
            if self._store_replaced:
                # The store file was made anew (see _status); the error already said so.
                self._store_replaced = False
                await self._resync(None)
            if not subscription.pending:
                self._pacing.idle()
            if (message := await subscription.get()) is None:
                return
            batch = [message, *subscription.drain()]
            self._apply(batch)
            missed = subscription.take_missed()
            if missed:
                await self._resync(
                    f"The dashboard fell behind a burst of callbacks ({missed} updates "
                    "skipped); the panes were reloaded from the store: nothing was lost."
                )
            await asyncio.sleep(self._pacing.after(len(batch), time.monotonic()))

    async def _resync(self, sentence: str | None) -> None:
        """Reload every pane from the store, wait for it, and say so (unless ``sentence``
        is None: the cause was already told).

        Messages the bus still holds may repeat what the reload read; each pane's
        ``take`` skips what it already shows (see ``Pane.take``), so nothing shows twice.
        Batches wait until the reload is done, so none is compared with the rows it
        replaces.
        """
        store = self.store
        if store is None:
            return
        newest = await read_store(store.rows, EventQuery(limit=1))
        if newest is None:  # closed: the app is quitting
            return
        if sentence is not None:
            log.warning("%s", sentence)
        self._attach_store(store)
        loads = [w for w in self.workers if w.group != "server" and not w.is_finished]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(RESYNC_DEADLINE):
                for worker in loads:
                    # A failed load is reported by its own worker (see _handle_exception).
                    with contextlib.suppress(WorkerCancelled, WorkerFailed):
                        await worker.wait()
        if newest:
            self.last_shown_id = max(self.last_shown_id, newest[0].id)
        if sentence is not None:
            self.notify(sentence, title="Panes reloaded", severity="warning", markup=False)
        self._batch_applied.set()
        self._batch_applied = asyncio.Event()

    @on(Worker.StateChanged)
    def _worker_state_changed(self, message: Worker.StateChanged) -> None:
        """Report the app's failed workers (each has ``exit_on_error=False``), as harlequin does.

        Following the bus is started again (once per FOLLOW_RETRY_WINDOW), reloading
        the panes from the store, so one bad batch does not freeze them for good.
        """
        worker = message.worker
        if message.state is not WorkerState.ERROR or worker.error is None:
            return
        self._report_failure(worker, worker.error)
        if worker.name == "follow" and self._subscription is not None:
            now = time.monotonic()
            if self._follow_failed_at is None or now - self._follow_failed_at > FOLLOW_RETRY_WINDOW:
                self._follow_failed_at = now
                self._follow_bus(self._subscription, resync=True)
            else:
                self.notify(
                    "The panes stopped updating (the same error again). Callbacks are still "
                    "received and stored: restart the dashboard to see them.",
                    title="Panes stopped",
                    severity="error",
                    timeout=60,
                    markup=False,
                )

    def _report_failure(self, worker: Worker[object] | None, error: BaseException) -> None:
        """A log line with the traceback, and a notification unless this task just had one.

        The server runs on, so the notification says callbacks are still being stored.
        """
        what = "A dashboard task"
        if worker is not None:
            what = TASKS.get(worker.name) or TASKS.get(worker.group) or what
        log.error("%s failed (worker %s)", what, worker.name if worker else "?", exc_info=error)
        now = time.monotonic()
        shown = self._failures_shown.get(what)
        if shown is not None and now - shown < FAILURE_NOTICE_WINDOW:
            return
        self._failures_shown[what] = now
        self.notify(
            printable(
                f"{what} failed ({_one_line(error)}). Callbacks are still received and "
                "stored; the details are in the log (l)."
            ),
            title="Something went wrong in the dashboard",
            severity="error",
            timeout=30,
            markup=False,
        )

    async def _browse_history_only(self) -> None:
        """With no server, still show what is stored, so history stays browsable."""
        path = self.settings.db_path
        if path is None or not path.exists():
            return
        try:
            self._history_store = await asyncio.to_thread(ReadOnlyStore, path)
        except Exception:  # a broken or newer database: the error line already says why
            return
        self._attach_store(self._history_store)

    @property
    def store(self) -> StoreReader | None:
        """The store the panes read: the running monitor's, or history alone."""
        return self.monitor.store or self._history_store

    def _attach_store(self, store: StoreReader) -> None:
        for pane in self._each_pane():
            if isinstance(pane, RowList) and pane.cells is not None:
                pane.cells.queued_after = self._forwarded_through
            pane.attach(store)

    def _forwarded_through(self) -> int | None:
        """The newest event forwarding is done with; None when not forwarding."""
        forwarder = self.monitor.forwarder
        return None if forwarder is None else forwarder.cursor

    def show_cell(self, event_id: int, cell: Cell) -> None:
        """A new attempt to send ``event_id`` to the handler: on its row, and in its
        inspector if one is open."""
        for pane in self.query(RowList):
            pane.show_cell(event_id, cell)
        for screen in self.screen_stack:
            if isinstance(screen, InspectorScreen) and screen.event_id == event_id:
                screen.attempts_changed()

    def _show_urls(self) -> None:
        monitor = self.monitor
        bar = self.query_one(UrlBar)
        bar.state.callback_url = monitor.callback_url
        bar.state.local_url = monitor.local_url
        bar.state.server = f"listening on {monitor.base_url.removeprefix('http://')}"
        self._show_tunnel(monitor.tunnel_status)
        bar.state.events = monitor.stats.events_total
        bar.state.rejected = monitor.stats.rejected_total
        bar.state.last_event_at = monitor.stats.last_event_at
        if self._rejected_before is None:
            self._rejected_before = monitor.stats.rejected_total
        bar.show()

    def _apply(self, messages: Iterable[Message]) -> None:
        """Apply one batch of bus messages to every pane."""
        events: list[Event] = []
        rejected = 0
        forwarded: list[Forwarded] = []
        for message in messages:
            if isinstance(message, EventStored):
                events.append(message.event)
            elif isinstance(message, RequestRejected):
                rejected += 1
            elif isinstance(message, StatusChanged):
                self._status(message)
            elif isinstance(message, TunnelChanged):
                self._tunnel_changed(message.status)
            elif isinstance(message, Forwarded):
                forwarded.append(message)
        bar = self.query_one(UrlBar)
        stats = self.monitor.stats
        bar.state.events = stats.events_total
        bar.state.rejected = stats.rejected_total
        bar.state.last_event_at = stats.last_event_at or bar.state.last_event_at
        if events:
            bar.state.events = max(bar.state.events, events[-1].id)
            bar.state.last_event_at = events[-1].received_at
            batch = Batch.of(events)
            for pane in self._each_pane():
                pane.take(batch)
            touched = {event.conversation_id for event in events if event.conversation_id}
            for screen in self.screen_stack:
                if isinstance(screen, ConversationsScreen):
                    screen.events_stored(touched)
            self._announce(events)
        if rejected:
            self._announce_rejections(rejected)
        for message in forwarded:  # after the events: a row is there before its answer
            self.show_cell(message.event_id, Cell(message.attempt, retrying=not message.done))
        if events or rejected:
            self._quiet_gc.busy()
            self._attention.changed()
        bar.show()
        if events:
            self.last_shown_id = max(self.last_shown_id, events[-1].id)
        self._batch_applied.set()
        self._batch_applied = asyncio.Event()

    async def wait_until_shown(self, event_id: int) -> None:
        """Return once the event with ``event_id`` (or a newer one) is on the panes."""
        while self.last_shown_id < event_id:
            await self._batch_applied.wait()

    def _toast(self, text: str, severity: str = "information", callbacks: int = 1) -> None:
        """Notify, at most MAX_TOASTS_PER_WINDOW per TOAST_WINDOW; count the rest.

        ``callbacks``: how many callbacks the toast tells of (a burst's summary tells of
        several), so that "…and N more" counts callbacks, not toasts.
        """
        now = time.monotonic()
        while self._toast_times and now - self._toast_times[0] > TOAST_WINDOW:
            self._toast_times.popleft()
        if len(self._toast_times) >= MAX_TOASTS_PER_WINDOW:
            self._toasts_held += callbacks
            return
        self._toast_times.append(now)
        self.notify(text, severity=severity, markup=False)  # type: ignore[arg-type]

    def _tick_toasts(self) -> None:
        """Every second: a burst's summary once it paused, then what the window held back."""
        for toast in self._announcements.tick(time.monotonic()):
            self._show_toast(toast)
        self._flush_held_toasts()

    def _flush_held_toasts(self) -> None:
        """Once a slot frees up, say how many toasts were held back."""
        if self._toasts_held and len(self._toast_times) < MAX_TOASTS_PER_WINDOW:
            held, self._toasts_held = self._toasts_held, 0
            self._toast(f"…and {held} more (see Events)")

    def _show_tunnel(self, status: TunnelStatus) -> None:
        """The header's URL and tunnel rows: local only and why, advice until it works."""
        bar = self.query_one(UrlBar)
        bar.state.callback_url = self.monitor.callback_url
        header = tunnel_header(
            status, local_only=self.monitor.local_only, previous_advice=bar.state.advice
        )
        bar.state.local_only = header.local_only
        bar.state.tunnel = printable(header.tunnel)
        bar.state.tunnel_style = header.style
        bar.state.advice = printable(header.advice) if header.advice else None

    def _tunnel_changed(self, status: TunnelStatus) -> None:
        previous = self._tunnel_state
        if status.state is not TunnelState.STARTING:
            # A retry after a failure passes through STARTING: remember the failure.
            self._tunnel_state = status.state
        if status.state is TunnelState.UP and status.previous_url:
            self._url_changes.append((status.previous_url, status.public_url))
        self._show_tunnel(status)
        self._attention.changed()
        if status.state is TunnelState.FAILED:
            self.notify(
                printable(f"{status.problem} What to do stays in the header until it works."),
                title="Tunnel failed: Tavus cannot reach the local URL",
                severity="error",
                timeout=10,
                markup=False,
            )
        elif status.state is TunnelState.RECONNECTING and previous is TunnelState.UP:
            self.notify(
                printable(status.problem or "The tunnel dropped."),
                title="Tunnel reconnecting",
                severity="warning",
                markup=False,
            )
        elif status.state is TunnelState.UP:
            if status.previous_url:
                self.notify(
                    printable(
                        f"The public URL changed from {status.previous_url} to "
                        f"{status.public_url}. Tavus resources created with the old URL will "
                        "not reach this monitor; use the new callback URL (c copies it)."
                    ),
                    title="New public URL",
                    severity="warning",
                    timeout=60,
                    markup=False,
                )
            elif previous in (TunnelState.RECONNECTING, TunnelState.FAILED):
                self.notify("The tunnel is up again.", markup=False)

    def action_retry_tunnel(self) -> None:
        """Try the tunnel again now (after a failure, or to skip a backoff wait)."""
        if self.monitor.retry_tunnel():
            self.notify("Retrying the tunnel…", markup=False)
        elif self.settings.public_url:
            self.notify("The tunnel is yours (--public-url): nothing to retry here.", markup=False)
        else:
            self.notify(
                "No tunnel is managed here (--no-tunnel); restart without it to open one.",
                markup=False,
            )

    def _status(self, message: StatusChanged) -> None:
        bar = self.query_one(UrlBar)
        if message.kind is StatusKind.WARNING and message.topic in ("server", "token"):
            self.notify(message.text, severity="warning", timeout=10, markup=False)
        elif message.kind is StatusKind.WARNING and message.topic == "tunnel-url-stranded":
            self.notify(
                printable(message.text),
                title="Calls left on the old URL (! lists them)",
                severity="warning",
                timeout=STRANDED_TOAST_SECONDS,
                markup=False,
            )
            self._attention.changed()
        elif message.kind is StatusKind.ERROR:
            bar.state.server = message.text
            bar.state.server_ok = False
            self.notify(message.text, severity="error", timeout=30, markup=False)
            if message.topic == "store":
                # The store file was made again: its ids start anew, so the panes
                # reload from the new file (_follow_bus, before the next batch)
                # instead of comparing its ids with the old file's rows.
                self.last_shown_id = 0
                self._store_replaced = True

    def _announce(self, events: list[Event]) -> None:
        """Toasts for what a developer waits for: ends of calls, transcripts, failures.

        Which types notify, and how, is each type's ``notify`` in the event-type
        registry; :mod:`announcements` shows each at once while they are rare and one
        summary per burst (see :meth:`_tick_toasts`).
        """
        notable = [
            Notable(short_type(event.event_type), text, severity)
            for event in events
            if (worth := event_types.toast(event)) is not None
            for text, severity in [worth]
        ]
        for toast in self._announcements.take(notable, time.monotonic()):
            self._show_toast(toast)

    def _show_toast(self, toast: Toast) -> None:
        # Payload text: markup=False keeps it from being parsed (see _toast), printable()
        # keeps escape sequences and bidi overrides from reaching the terminal.
        self._toast(printable(toast.text), toast.severity, callbacks=toast.callbacks)

    def _announce_rejections(self, count: int) -> None:
        first = self._rejections_seen == 0
        self._rejections_seen += count
        if first:
            self.notify(
                "A request was refused (wrong token, unknown path or too large); r lists them.",
                severity="warning",
                markup=False,
            )

    # ----------------------------------------------------------- actions

    def copy_with_fallback(self, text: str, what: str) -> None:
        """Copy and say so; used by every copy action in the app."""
        self.notify(copy_text(self, text, what, self.settings.data_dir), markup=False)

    def action_copy_url(self) -> None:
        state = self.query_one(UrlBar).state
        url = state.callback_url
        if url is None:
            self.notify("There is no callback URL yet.", severity="warning", markup=False)
            return
        if state.local_only is None:
            self.copy_with_fallback(url, "the callback URL")
            return
        what = f"the LOCAL URL: Tavus cannot reach it ({state.local_only}; the header says why)"
        self.notify(
            copy_text(self, url, what, self.settings.data_dir),
            title="Local URL only",
            severity="warning",
            markup=False,
        )

    def action_paste_authtoken(self) -> None:
        """Take an ngrok authtoken in a masked input; retry the tunnel with it at once."""
        if self.monitor.tunnel is None:
            self.action_retry_tunnel()  # says why no tunnel is managed here
            return
        self.push_screen(AuthtokenScreen(), self._authtoken_chosen)

    def _authtoken_chosen(self, choice: AuthtokenChoice | None) -> None:
        if choice is not None:
            self._use_authtoken(choice)

    @work(group="tunnel", exit_on_error=False, name="authtoken")
    async def _use_authtoken(self, choice: AuthtokenChoice) -> None:
        if not self.monitor.use_authtoken(choice.token):
            return
        self.notify("Retrying the tunnel with the authtoken…", markup=False)
        if not choice.save:
            return
        try:
            await self.monitor.save_authtoken(choice.token)
        except TunnelError as error:
            self.notify(
                printable(f"{error.problem} {error.advice}"),
                title="Authtoken not saved",
                severity="warning",
                timeout=15,
                markup=False,
            )
        else:
            self.notify(
                "Saved the authtoken to ngrok's config file: later runs use it too.",
                markup=False,
            )

    def _pane_of(self, widget: Widget | None) -> Widget | None:
        panes = self.panes
        while widget is not None:
            if widget in panes:
                return widget
            parent = widget.parent
            widget = parent if isinstance(parent, Widget) else None
        return None

    def action_toggle_maximize(self) -> None:
        screen = self.screen
        if screen.maximized is not None:
            screen.minimize()
            return
        pane = self._pane_of(self.focused) or self.query_one(f"#{MAIN_PANE}")
        screen.maximize(pane, container=False)

    def action_filter(self) -> None:
        self._filter_target = self._pane_of(self.focused) or self.query_one(f"#{MAIN_PANE}")
        field = self.query_one("#filter", Input)
        field.border_title = f"filter {self._filter_target.border_title or ''}"
        field.display = True
        field.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, message: Input.Changed) -> None:
        self._apply_filter(message.value)

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, message: Input.Submitted) -> None:
        self._apply_filter(message.value)
        if self._filter_target is not None:
            self._filter_target.focus()

    def _apply_filter(self, source: str) -> None:
        """Each pane reads the parsed filter as it can (see ``Pane.apply_filter``)."""
        if isinstance(self._filter_target, Pane):
            self._filter_target.apply_filter(parse_filter(source))

    def action_escape(self) -> None:
        field = self.query_one("#filter", Input)
        if field.display or field.value:
            field.value = ""
            self._apply_filter("")
            field.display = False
            if self._filter_target is not None:
                self._filter_target.focus()
            return
        if self.screen.maximized is not None:
            self.screen.minimize()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    # ------------------------------------------------------- attention

    def _tick_attention(self) -> None:
        store = self.store
        if store is None or not self._attention.due(time.monotonic(), self._pacing.rate):
            return
        # A tunnel the user turned off (--no-tunnel) is no news; one that failed is.
        unreachable = self.query_one(UrlBar).state.local_only
        if not self.settings.tunnel_wanted:
            unreachable = None
        rejected = self.monitor.stats.rejected_total - (self._rejected_before or 0)
        self.run_worker(
            lambda: self._count_concerns(store, unreachable, max(0, rejected)),
            thread=True,
            exclusive=True,
            group="attention",
            exit_on_error=False,
        )

    def _count_concerns(self, store: StoreReader, local_only: str | None, rejected: int) -> None:
        """On a worker thread: count, then show the count on the loop."""
        concerns = find_concerns(
            store,
            now=time.time(),
            local_only=local_only,
            rejected=rejected,
            url_changes=tuple(self._url_changes),
        )
        self.call_from_thread(self._show_concerns, concerns)

    def _show_concerns(self, concerns: list[Concern]) -> None:
        self.concerns = concerns
        bar = self.query_one(UrlBar)
        bar.state.attention = len(concerns)
        bar.state.attention_urgent = any(concern.kind in URGENT_CONCERNS for concern in concerns)
        bar.show()

    def action_attention(self) -> None:
        """List what needs attention; Enter goes to it."""

        async def chosen(concern: Concern | None) -> None:
            if concern is not None:
                await self._go_to(concern)

        self.push_screen(AttentionScreen(self.concerns), chosen)

    async def _go_to(self, concern: Concern) -> None:
        if concern.kind is ConcernKind.TUNNEL:
            self.action_retry_tunnel()
        elif concern.kind is ConcernKind.REJECTED:
            self.action_rejected()
        elif concern.kind is ConcernKind.STRANDED and concern.conversation_id:
            self.action_conversations(concern.conversation_id)
        elif concern.kind is ConcernKind.OVERDUE and concern.conversation_id:
            pane = self.query_one(TranscriptPane)
            await pane.select(concern.conversation_id)
            pane.query_one(TranscriptView).focus()
        elif concern.event_id is not None:
            self.open_inspector(concern.event_id)

    def action_rejected(self) -> None:
        if self.store is not None:
            self.push_screen(RejectedScreen(self.store))

    def action_log(self) -> None:
        self.push_screen(LogScreen(self.settings.data_dir / LOG_FILE))

    def action_conversations(self, conversation_id: str = "") -> None:
        """The Conversations screen (filtered to ``conversation_id``, from the ``!`` list);
        with the monitor running it can create, end and recover conversations too."""
        if self.store is None:
            return

        async def chosen(conversation_id: str | None) -> None:
            if conversation_id:
                pane = self.query_one(TranscriptPane)
                await pane.select(conversation_id)
                pane.query_one(TranscriptView).focus()

        calls = TavusCalls(self.settings, self.monitor) if self.monitor.store is not None else None
        screen = ConversationsScreen(self.store, calls=calls, initial_filter=conversation_id)
        self.push_screen(screen, chosen)

    def action_search(self) -> None:
        """Search every stored transcript turn and payload; Enter opens the match."""
        if self.store is None:
            return

        async def chosen(hit: SearchHit | None) -> None:
            if hit is None:
                return
            conversation_id = hit.event.conversation_id
            if hit.turn and conversation_id:
                pane = self.query_one(TranscriptPane)
                await pane.open_at(conversation_id, hit.turn, self._search_words)
            else:
                self.open_inspector(hit.event.id)

        screen = SearchScreen(self.store, self._search_words)
        self._search_screen = screen
        self.push_screen(screen, chosen)

    _search_screen: SearchScreen | None = None

    @property
    def _search_words(self) -> str:
        """The words last searched (the search screen opens with them again)."""
        return self._search_screen.words if self._search_screen is not None else ""

    def open_inspector(self, event_id: int) -> None:
        if self.store is not None:
            self.push_screen(InspectorScreen(self.store, event_id))

    @on(InspectEvent)
    def _inspect_event(self, message: InspectEvent) -> None:
        self.open_inspector(message.event_id)

    @on(ResendEvent)
    def _resend_event(self, message: ResendEvent) -> None:
        self.resender.start(message.event_id, edit=message.edit)

    def _resend_selected(self, edit: bool) -> None:
        """The palette's replay: the focused list's selected row, else the Events pane's."""
        pane = self._pane_of(self.focused)
        rows = pane if isinstance(pane, RowList) else self.query_one("#events", RowList)
        row = rows.highlighted
        if row is None:
            self.notify("Select an event first.", markup=False)
        else:
            self.resender.start(row.id, edit=edit)

    @on(CopyText)
    def _copy_text(self, message: CopyText) -> None:
        self.copy_with_fallback(message.text, message.what)

    _terminal_fd: int | None = None
    _hung_up = False

    async def _check_terminal(self) -> None:
        """Quit as ``q`` does once the terminal is gone (see :mod:`.hangup`)."""
        if self._terminal_fd is None or self._hung_up:
            return
        if terminal_hung_up(self._terminal_fd):
            self._hung_up = True
            log.warning("the terminal closed: stopping the monitor")
            await self.action_quit()

    async def action_quit(self) -> None:
        """Stop the server (finishing open requests, flushing the store), then exit."""
        self.query_one(UrlBar).state.server = "stopping…"
        self.query_one(UrlBar).show()
        self._stop_readers()
        await self.monitor.stop()
        if self._history_store is not None:
            await asyncio.to_thread(self._history_store.close)
        self.exit(0)

    def _stop_readers(self) -> None:
        """Stop the app's timer and the panes' loads before the store closes."""
        if self._toast_flush is not None:
            self._toast_flush.stop()
        # A query already running finishes before the store closes (it holds the reader
        # lock); one that starts later (a pane's refresh timer may still fire) gets
        # nothing back (see reading.read_store).
        self.workers.cancel_all()

    async def on_unmount(self) -> None:
        """However the app ends, leave no server, agent or open database behind."""
        self._quiet_gc.stopped()
        self._stop_readers()
        await self.monitor.stop()
        if self._history_store is not None:
            await asyncio.to_thread(self._history_store.close)

    # ---------------------------------------------------- command palette

    def on_dashboard(self, screen: Screen[object]) -> bool:
        """Whether ``screen`` is the dashboard (the first screen), not one pushed on it."""
        return bool(self.screen_stack) and screen is self.screen_stack[0]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys act only on the screen they belong to, and the footer shows only those.

        The dashboard's keys are bound on the app (they must work whichever pane has focus),
        so without this ``m`` on the Conversations screen or in the inspector maximised a
        pane of the dashboard underneath and left a hatched screen.
        """
        if action in self.DASHBOARD_ACTIONS and not self.on_dashboard(self.screen):
            return False
        return super().check_action(action, parameters)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Textual's commands, then the key table's for ``screen``, each title once."""
        dashboard = self.on_dashboard(screen)
        ours = list(palette_entries(Scope.APP, *([Scope.DASHBOARD] if dashboard else [])))
        replaced = {key.palette for key in ours}
        if dashboard:
            replaced |= self.REPLACED_SYSTEM_COMMANDS
        for command in super().get_system_commands(screen):
            if command.title not in replaced:
                yield command
        for key in ours:
            assert key.palette is not None  # palette_entries yields only those with a title
            yield SystemCommand(
                key.palette, key.palette_help, getattr(self, f"action_{key.action}")
            )
        if isinstance(screen, InspectorScreen):
            inspector = screen
            yield SystemCommand(
                "Replay event to handler",
                "Send this event again (R)",
                lambda: inspector.action_resend(False),
            )
            yield SystemCommand(
                "Edit and send event",
                "Send an edited copy of this event (E)",
                lambda: inspector.action_resend(True),
            )
        if not dashboard:
            return
        yield SystemCommand(
            "Follow newest events",
            "Jump to the newest event and keep following",
            self.query_one("#events", RowList).action_follow,
        )
        yield SystemCommand("Inspect newest event", "Open the newest event", self._inspect_newest)
        yield SystemCommand(
            "Replay event to handler",
            "Send the selected event again (R on a row)",
            lambda: self._resend_selected(False),
        )
        yield SystemCommand(
            "Edit and send event",
            "Send an edited copy of the selected event (E on a row)",
            lambda: self._resend_selected(True),
        )

    def _inspect_newest(self) -> None:
        row = self.query_one("#events", RowList).rows[:1]
        if row:
            self.open_inspector(row[0].id)
        else:
            self.notify("No events yet.", markup=False)
