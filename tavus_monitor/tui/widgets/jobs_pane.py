"""Replica & video jobs: one row per training or generation, its latest state."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.widgets import DataTable

from ...jobs import Job, job_from_event
from ...store import StoreError, StoreReader
from ..filtering import Filter
from ..keys import Scope, bindings
from ..panes import Batch, CopyText, InspectEvent
from ..text import SEVERITY_STYLES, clock, safe, short_id

MAX_JOBS = 1_000


class JobsTable(DataTable[Text]):
    """Jobs keyed by kind and id; a new callback updates its job's row in place.

    A :class:`~tavus_monitor.tui.panes.Pane`: it loads the latest state of each job
    from the store (one query, bodies included: a job's state is in its payload)
    and then follows the jobs each batch reports on.
    """

    BINDINGS = bindings(Scope.JOBS)
    """Generated from the key table (``keys.py``), like the help and the README."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.jobs: dict[str, Job] = {}
        self.text_filter = ""

    def on_mount(self) -> None:
        self.add_column("kind", key="kind", width=7)
        self.add_column("id", key="id", width=12)
        self.add_column("name", key="name", width=14)
        self.add_column("status", key="status", width=9)
        self.add_column("progress", key="progress", width=8)
        self.add_column("updated", key="updated", width=8)
        self.add_column("detail / links", key="detail")

    def _cells(self, job: Job) -> list[Text]:
        style = SEVERITY_STYLES[job.severity]
        detail = job.message if job.severity.value == "error" else ""
        links = " ".join(f"[{name}]" for name in job.links)
        return [
            Text(job.kind, style="blue" if job.kind == "replica" else "yellow"),
            safe(short_id(job.subject_id, 12)),
            safe(short_id(job.name, 14) if job.name else "—", "" if job.name else "dim"),
            safe(job.status, style),
            safe(job.progress or "—", "" if job.progress else "dim"),
            Text(clock(job.received_at), style="dim"),
            safe(" ".join(part for part in (detail, links) if part), style if detail else "dim"),
        ]

    def _visible(self, job: Job) -> bool:
        if not self.text_filter:
            return True
        haystack = " ".join(
            filter(None, (job.kind, job.subject_id, job.name, job.status, job.message))
        ).lower()
        return self.text_filter.lower() in haystack

    def upsert(self, jobs: list[Job]) -> None:
        """Show these jobs' latest states: new jobs on top, known ones updated."""
        changed = False
        for job in jobs:
            previous = self.jobs.get(job.key)
            if previous is not None and previous.event_id > job.event_id:
                continue  # an older callback arriving late does not undo a newer state
            self.jobs[job.key] = job
            changed = True
        if len(self.jobs) > MAX_JOBS:
            for job in sorted(self.jobs.values(), key=lambda j: j.event_id)[:-MAX_JOBS]:
                del self.jobs[job.key]
        if changed:
            self._rebuild()

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
        """Redraw newest first, keeping the cursor on the job it was on."""
        current = self.highlighted_job
        self.clear()
        for job in sorted(self.jobs.values(), key=lambda j: -j.event_id):
            if self._visible(job):
                self.add_row(*self._cells(job), key=job.key)
        if current is not None and current.key in self.rows:
            self.move_cursor(row=self.get_row_index(current.key), animate=False)

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
