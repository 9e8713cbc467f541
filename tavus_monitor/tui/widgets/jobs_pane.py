"""Replica & video jobs: one row per training or generation, its latest state.

Each row says the status first and in full, then the progress, the error and the
name (these two share what width is left), then the kind, id, time and links; a
detail strip under the table shows the selected job whole.
"""

from __future__ import annotations

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Static

from ...jobs import Job, job_from_event
from ...store import StoreError, StoreReader
from ..filtering import Filter
from ..keys import Scope, bindings
from ..panes import Batch, CopyText, InspectEvent
from ..text import SEVERITY_STYLES, clock, date_and_clock, safe
from .row_list import detail_lines, fit_lines

MAX_JOBS = 1_000
FIXED_WIDTHS = {"progress": 9, "kind": 8, "id": 13, "updated": 9}
"""Columns of a known width, each with one column of space after it (no cell padding)."""
LINKS_WIDTH = len("hosted stream download") + 1
MIN_FLEX = 6
"""The error and the name get at least this much, even in a narrow pane."""
ERROR_SHARE = 0.6
"""Of the width left for the error and the name, the error's part (when a job has one)."""


class JobsTable(DataTable[Text]):
    """Jobs keyed by kind and id; a new callback updates its job's row in place.

    A :class:`~tavus_monitor.tui.panes.Pane`: it loads the latest state of each job
    from the store (one query, bodies included: a job's state is in its payload)
    and then follows the jobs each batch reports on.

    It follows the newest as the event lists do: while the cursor is on the top row it
    stays on the job updated last; moved away, it stays on its job and the pane's border
    says how many jobs have news since (``paused · N new · f follows``); ``f`` follows again.
    """

    class Rebuilt(Message):
        """The rows were drawn again: the job under the cursor may be another one."""

    BINDINGS = bindings(Scope.JOBS)
    """Generated from the key table (``keys.py``), like the help and the README."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True, cell_padding=0)
        self.jobs: dict[str, Job] = {}
        self.text_filter = ""
        self._widths: dict[str, int] = {}
        self.following = True
        self.unseen: set[str] = set()
        """Jobs with a new state since following paused (shown on top, the cursor elsewhere)."""
        self._rebuilding = False

    def _column_widths(self, jobs: list[Job]) -> dict[str, int]:
        """Status as wide as the longest shown; error and name share what is left."""
        status = max([len("status"), *(len(job.status) for job in jobs)]) + 1
        available = self.size.width  # a scrollbar, when shown, covers the end of the name
        fixed = status + FIXED_WIDTHS["progress"]
        rest = FIXED_WIDTHS["kind"] + FIXED_WIDTHS["id"] + FIXED_WIDTHS["updated"]
        if available - fixed - rest >= 3 * MIN_FLEX:
            fixed += rest  # wide enough: kind, id and time stay in view too
        flexible = max(2 * MIN_FLEX, available - fixed)
        if any(_error(job) for job in jobs):
            error = max(MIN_FLEX, round(flexible * ERROR_SHARE))
            name = max(MIN_FLEX, flexible - error)
        else:
            error, name = len("error") + 1, max(MIN_FLEX, flexible - len("error") - 1)
        return {
            "status": status,
            "progress": FIXED_WIDTHS["progress"],
            "error": error,
            "name": name,
            "kind": FIXED_WIDTHS["kind"],
            "id": FIXED_WIDTHS["id"],
            "updated": FIXED_WIDTHS["updated"],
            "links": LINKS_WIDTH,
        }

    def _cells(self, job: Job) -> list[Text]:
        style = SEVERITY_STYLES[job.severity]
        error = _error(job)
        links = " ".join(job.links)
        cells = [
            safe(job.status, style),
            safe(job.progress or "—", "" if job.progress else "dim"),
            safe(error or "—", style if error else "dim"),
            safe(job.name or "—", "" if job.name else "dim"),
            Text(job.kind, style="blue" if job.kind == "replica" else "yellow"),
            safe(job.subject_id),
            Text(clock(job.received_at), style="dim"),
            Text(links or "—", style="dim"),
        ]
        for cell, key in zip(cells, self._widths, strict=True):
            cell.truncate(max(1, self._widths[key] - 1), overflow="ellipsis")
        return cells

    def _visible(self, job: Job) -> bool:
        if not self.text_filter:
            return True
        haystack = " ".join(
            filter(None, (job.kind, job.subject_id, job.name, job.status, job.message))
        ).lower()
        return self.text_filter.lower() in haystack

    def upsert(self, jobs: list[Job]) -> None:
        """Show these jobs' latest states: new jobs on top, known ones updated."""
        changed: set[str] = set()
        for job in jobs:
            previous = self.jobs.get(job.key)
            if previous is not None and previous.event_id > job.event_id:
                continue  # an older callback arriving late does not undo a newer state
            self.jobs[job.key] = job
            changed.add(job.key)
        if len(self.jobs) > MAX_JOBS:
            for job in sorted(self.jobs.values(), key=lambda j: j.event_id)[:-MAX_JOBS]:
                del self.jobs[job.key]
        if changed:
            self._rebuild()
            if not self.following:
                self.unseen |= {key for key in changed if key in self.rows}
                self._update_subtitle()

    def attach(self, store: StoreReader) -> None:
        self._load(store)

    @work(thread=True, group="jobs-load", name="jobs-load")
    def _load(self, store: StoreReader) -> None:
        try:
            events = store.jobs()
        except StoreError:  # closed: the app is quitting
            return
        jobs = [job for event in events if (job := job_from_event(event)) is not None]
        self.app.call_from_thread(self.upsert, jobs)

    def take(self, batch: Batch) -> None:
        if batch.jobs:
            self.upsert(list(batch.jobs))

    def apply_filter(self, parsed: Filter) -> None:
        """Jobs are filtered in memory, by every word of the filter."""
        self.set_filter(parsed.words)

    def set_filter(self, text: str) -> None:
        self.text_filter = text
        self._rebuild()

    def _rebuild(self) -> None:
        """Redraw newest first, the cursor on the newest while following, else on the job
        it was on.

        The columns are laid out again each time: their widths follow the pane's
        width and the statuses shown.
        """
        current = self.highlighted_job
        shown = [
            job
            for job in sorted(self.jobs.values(), key=lambda j: -j.event_id)
            if self._visible(job)
        ]
        widths = self._column_widths(shown)
        self._rebuilding = True  # the cursor moves here, not by the user: following holds
        try:
            if widths != self._widths:
                self.clear(columns=True)
                self._widths = widths
                for key, width in widths.items():
                    self.add_column(key, key=key, width=width)
            else:
                self.clear()
            for job in shown:
                self.add_row(*self._cells(job), key=job.key)
            if self.following:
                self.move_cursor(row=0, animate=False)
            elif current is not None and current.key in self.rows:
                self.move_cursor(row=self.get_row_index(current.key), animate=False)
        finally:
            self._rebuilding = False
        self.post_message(self.Rebuilt())

    def watch_cursor_coordinate(
        self, old_coordinate: Coordinate, new_coordinate: Coordinate
    ) -> None:
        super().watch_cursor_coordinate(old_coordinate, new_coordinate)
        at_top = new_coordinate.row == 0
        if not self._rebuilding and at_top != self.following:
            # The user moved: away from the top pauses following, back to it follows.
            self._set_following(at_top)

    def _set_following(self, following: bool) -> None:
        self.following = following
        if following:
            self.unseen.clear()
        self._update_subtitle()

    def _update_subtitle(self) -> None:
        """The pane's border (the table's parent draws it) says when following paused."""
        if self.following:
            subtitle = ""
        elif self.unseen:
            subtitle = f"paused · {len(self.unseen)} new · f follows"
        else:
            subtitle = "paused · f follows"
        if isinstance(self.parent, Widget):
            self.parent.border_subtitle = subtitle or None

    def action_follow(self) -> None:
        """Back to the newest job, and stay there as jobs arrive."""
        self._set_following(True)
        if self.row_count:
            self._rebuilding = True
            try:
                self.move_cursor(row=0, animate=False)
            finally:
                self._rebuilding = False
        self.scroll_home(animate=False)

    def on_resize(self, event: events.Resize) -> None:
        if self._column_widths(list(self.jobs.values())) != self._widths:
            self._rebuild()

    @property
    def highlighted_job(self) -> Job | None:
        if self.row_count == 0:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return self.jobs.get(key) if key is not None else None

    def action_open(self) -> None:
        job = self.highlighted_job
        if job is not None:
            self.post_message(InspectEvent(job.event_id))

    def action_copy_link(self, link: str) -> None:
        job = self.highlighted_job
        if job is None:
            return
        url = job.links.get(link)
        if url is None:
            self.notify(f"This job has no {link} URL.", severity="warning", markup=False)
        else:
            self.post_message(CopyText(url, f"the {link} URL"))


def _error(job: Job) -> str | None:
    """What went wrong, for a job that failed."""
    return job.message if job.severity.value == "error" else None


def job_detail(job: Job) -> Text:
    """The whole of a job, for the detail strip: status, progress, error, name, what
    it is, its links and time; nothing cut."""
    style = SEVERITY_STYLES[job.severity]
    text = Text()
    text.append_text(safe(job.status, style or "bold"))
    if job.progress:
        text.append_text(safe(f" {job.progress}"))
    error = _error(job)
    if error:
        text.append(" · ")
        text.append_text(safe(error, style))
    if job.name:
        text.append(" · ")
        text.append_text(safe(job.name))
    text.append(" · ")
    text.append(job.kind, style="blue" if job.kind == "replica" else "yellow")
    text.append(" ")
    text.append_text(safe(job.subject_id, "cyan"))
    if job.links:
        text.append(" · links: " + ", ".join(job.links) + " (h / s / d copy them)", style="dim")
    text.append(f" · #{job.event_id} {date_and_clock(job.received_at)}", style="dim")
    return text


class JobsPane(Vertical):
    """A :class:`~tavus_monitor.tui.panes.Pane`: the jobs table and, under it, the
    selected job in full (the detail strip)."""

    ALLOW_MAXIMIZE = True
    """``m`` maximises the table with its detail strip."""

    DEFAULT_CSS = """
    JobsPane > JobsTable { height: 1fr; overflow-x: hidden; }
    JobsPane > #jobs-detail {
        height: 2;
        padding: 0 1;
        background: $boost;
    }
    """

    detail_text = Text("")
    """What the detail strip shows (the selected job, cut to the strip's lines)."""

    def compose(self) -> ComposeResult:
        yield JobsTable(id="jobs-table")
        yield Static(id="jobs-detail", markup=False)

    @property
    def table(self) -> JobsTable:
        return self.query_one(JobsTable)

    def attach(self, store: StoreReader) -> None:
        self.table.attach(store)

    def take(self, batch: Batch) -> None:
        self.table.take(batch)

    def apply_filter(self, parsed: Filter) -> None:
        self.table.apply_filter(parsed)

    def on_mount(self) -> None:
        self._show_detail()

    def on_resize(self, event: events.Resize) -> None:
        # A short pane keeps most of its lines for the table.
        detail = self.query_one("#jobs-detail", Static)
        detail.styles.max_height = (
            1 if event.size.height < 8 else (2 if event.size.height < 14 else 4)
        )

    @on(DataTable.RowHighlighted)
    @on(JobsTable.Rebuilt)
    def _highlighted(self) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        job = self.table.highlighted_job
        detail = self.query_one("#jobs-detail", Static)
        if job is None:
            self.detail_text = Text("")
            detail.update(self.detail_text)
            return
        height = detail_lines(self.size.height)
        width = detail.content_region.width or self.size.width - 2
        lines = fit_lines(job_detail(job), self.app.console, width, height)
        self.detail_text = Text("\n").join(lines)
        detail.update(self.detail_text)
