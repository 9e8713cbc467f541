"""The inspector: one event, every way to look at it.

Summary first (it opens instantly), then pretty JSON (read-only code editor
with highlighting, search and a wrap toggle), a lazily built tree (fold, copy
one value), the request headers and the raw body. Heavy tabs are filled the
first time they are shown, so a 5 MB transcript opens at once and pays for
pretty printing only when the JSON tab is opened. The Handler tab lists every
attempt to send the event to the developer's handler (forwarded, replayed,
edited) with what was sent and what came back (see ``handler_tab.py``).

The keyboard follows what is shown: the selected tab's content has focus (so
after ``3`` the arrows move in the tree), Enter in the search box hands focus
back to the JSON with the match selected, and ``n`` / ``N`` step from there.
"""

from __future__ import annotations

import asyncio
import json

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Input, Static, TabbedContent, TabPane, TextArea
from textual.widgets.text_area import Selection

from ...attempts import StoredAttempt
from ...events import Event
from ...redact import redact_path
from ...sanitize import printable
from ...store import StoreReader
from ..keys import Scope, bindings
from ..panes import ResendEvent
from ..text import FAMILY_STYLES, SEVERITY_STYLES, day_and_clock, header_text, safe
from ..widgets.json_lines import JsonLines
from ..widgets.json_tree import JsonTree, value_text
from .handler_tab import EMPTY, attempt_detail, attempt_row

LONG_JSON_CHARS = 256 * 1024
"""Longer pretty JSON goes to a light line view: a TextArea takes seconds per MB to load."""
HEX_LIMIT = 1024 * 1024
"""Bytes shown in the hex dump of a body that is not UTF-8."""


def pretty_json(event: Event) -> str:
    """The payload pretty-printed, made safe for the screen; the raw text if unparsed."""
    if event.payload is None and event.error is not None:
        return printable(event.body.decode("utf-8", errors="replace"), keep_newlines=True)
    try:
        text = json.dumps(event.payload, indent=2, ensure_ascii=False)
    except (RecursionError, ValueError):
        text = event.body.decode("utf-8", errors="replace")
    return printable(text, keep_newlines=True)


def hex_dump(data: bytes) -> str:
    lines = []
    for offset in range(0, min(len(data), HEX_LIMIT), 16):
        chunk = data[offset : offset + 16]
        hexes = " ".join(f"{byte:02x}" for byte in chunk)
        shown = "".join(chr(byte) if 32 <= byte < 127 else "." for byte in chunk)
        lines.append(f"{offset:08x}  {hexes:<47}  {shown}")
    if len(data) > HEX_LIMIT:
        lines.append(
            f"… {len(data) - HEX_LIMIT:,} more bytes (export with `tavus-monitor history`)"
        )
    return "\n".join(lines)


def copy_payload_text(event: Event) -> str:
    """What "copy payload" gives: the body exactly as received (decoded as UTF-8)."""
    return event.body.decode("utf-8", errors="replace")


class InspectorScreen(Screen[None]):
    BINDINGS = bindings(Scope.INSPECTOR)
    """Generated from the key table (``keys.py``), like the help and the README's paragraph."""

    DEFAULT_CSS = """
    InspectorScreen #search-count {
        height: 1;
        padding: 0 1;
        background: $panel;
    }
    InspectorScreen #attempts { height: auto; max-height: 8; }
    InspectorScreen #attempt-scroll { height: 1fr; }
    InspectorScreen #handler-empty { padding: 1 1; }
    """

    def __init__(self, store: StoreReader, event_id: int) -> None:
        super().__init__()
        self.store = store
        self.event_id = event_id
        self.event: Event | None = None
        self._filled: set[str] = set()
        self._matches: list[tuple[int, int]] = []
        self._match_index = -1
        self._needle = ""
        self._search_owns_focus = False
        """Set while ``/`` switches to the JSON tab: the search box keeps the focus."""
        self._wrap = False
        self._attempts: list[StoredAttempt] = []

    def compose(self) -> ComposeResult:
        yield Static(Text("loading…", style="dim"), id="inspector-title")
        with TabbedContent(initial="summary", id="inspector-tabs"):
            with TabPane("Summary", id="summary"), VerticalScroll():
                yield Static(id="summary-body")
            with TabPane("JSON", id="json"), Vertical():
                yield TextArea.code_editor(
                    "", language="json", read_only=True, id="json-text", soft_wrap=False
                )
            with TabPane("Tree", id="tree"):
                yield Static(Text("loading…", style="dim"), id="tree-placeholder")
            with TabPane("Headers", id="headers"), VerticalScroll():
                yield Static(id="headers-body")
            with TabPane("Raw", id="raw"):
                yield TextArea("", read_only=True, id="raw-text", soft_wrap=True)
            with TabPane("Handler", id="handler"), Vertical():
                yield Static(Text("loading…", style="dim"), id="handler-empty")
                yield DataTable(id="attempts", cursor_type="row")
                with VerticalScroll(id="attempt-scroll"):
                    yield Static(id="attempt-body")
        yield Static(id="search-count")
        yield Input(
            placeholder="search the JSON (Enter: find, then n / N: next / previous; Esc: close)",
            id="search",
        )
        yield Footer()

    async def on_mount(self) -> None:
        self.query_one("#search", Input).display = False
        self.query_one("#search-count", Static).display = False
        self._focus_content("summary")
        self.event = await asyncio.to_thread(self.store.get, self.event_id)
        if self.event is None:
            self.query_one("#inspector-title", Static).update(
                Text(f"Event #{self.event_id} is not in the store.", style="bold red")
            )
            return
        self._fill_title(self.event)
        self._fill_summary(self.event)
        self._fill("summary")

    # --------------------------------------------------------- filling

    def _fill_title(self, event: Event) -> None:
        title = Text()
        title.append(f"#{event.id} ", style="bold")
        title.append(event.family.value, style=FAMILY_STYLES[event.family])
        title.append_text(safe(f"  {event.event_type}  ", "bold"))
        title.append_text(safe(event.summary, SEVERITY_STYLES[event.severity]))
        self.query_one("#inspector-title", Static).update(title)

    def _fill_summary(self, event: Event) -> None:
        rows: list[tuple[str, str, str]] = [
            ("received", day_and_clock(event.received_at), ""),
            ("family", event.family.value, FAMILY_STYLES[event.family]),
            ("type", event.event_type, ""),
            ("conversation", event.conversation_id or "—", ""),
            ("subject", event.subject_id or "—", ""),
            ("summary", event.summary, SEVERITY_STYLES[event.severity]),
            ("size", f"{event.size:,} bytes", ""),
            ("from", event.remote_addr or "unknown", ""),
            ("path", redact_path(event.path), ""),
        ]
        if event.occurred_at is not None:
            rows.insert(1, ("payload time", day_and_clock(event.occurred_at), ""))
        if event.duplicate_of is not None:
            rows.append(("duplicate of", f"#{event.duplicate_of}", "yellow"))
        if event.error:
            rows.append(("parse error", event.error, "bold red"))
        text = Text()
        for label, value, style in rows:
            text.append(f"{label:>14}  ", style="dim")
            text.append_text(safe(value, style))
            text.append("\n")
        self.query_one("#summary-body", Static).update(text)

    def _fill(self, tab: str) -> None:
        event = self.event
        if event is None or tab in self._filled:
            return
        self._filled.add(tab)
        if tab == "json":
            pretty = pretty_json(event)
            area = self.query_one("#json-text", TextArea)
            if len(pretty) <= LONG_JSON_CHARS:
                area.load_text(pretty)
            else:
                area.remove()
                self.query_one("#json", TabPane).query_one(Vertical).mount(
                    JsonLines(pretty.splitlines(), wrap=self._wrap, id="json-lines")
                )
        elif tab == "tree":
            placeholder = self.query_one("#tree-placeholder", Static)
            if event.payload is None:
                placeholder.update(Text("No tree: the body is not valid JSON.", style="dim"))
            else:
                placeholder.remove()
                self.query_one("#tree", TabPane).mount(JsonTree(event.payload, id="json-tree"))
        elif tab == "headers":
            text = Text()
            for name, value in event.headers:
                text.append_text(safe(header_text(name), "bold"))
                text.append(": ")
                text.append_text(safe(header_text(value)))
                text.append("\n")
            self.query_one("#headers-body", Static).update(text or Text("no headers", "dim"))
        elif tab == "handler":
            self.query_one("#attempts", DataTable).add_columns(
                "kind", "when", "answer", "target", "why"
            )
            self.attempts_changed()
        elif tab == "raw":
            try:
                raw = printable(event.body.decode("utf-8"), keep_newlines=True)
            except UnicodeDecodeError:
                raw = hex_dump(event.body)
            self.query_one("#raw-text", TextArea).load_text(raw)

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, message: TabbedContent.TabActivated) -> None:
        tab = message.pane.id
        if tab is None:
            return
        self._fill(tab)
        if self._search_owns_focus:
            self._search_owns_focus = False
        else:
            self._focus_content(tab)

    def _content(self, tab: str) -> Widget | None:
        """What a tab shows that takes the keys: its scroll, editor, line view or tree."""
        if tab == "json" and self.query("#json-lines"):
            return self.query_one(JsonLines)  # the editor it replaces may not be gone yet
        pane = self.query_one(f"#{tab}", TabPane)
        return next(
            (widget for widget in pane.query("*") if widget.can_focus and widget.display), None
        )

    # ------------------------------------------------------ handler tab

    def attempts_changed(self) -> None:
        """Read the event's attempts again (a replay, a forwarding try), if the tab is filled."""
        if "handler" in self._filled:
            self.run_worker(self._load_attempts(), group="inspector-attempts", exclusive=True)

    async def _load_attempts(self) -> None:
        attempts = await asyncio.to_thread(self.store.attempts, self.event_id)
        self._attempts = attempts
        table = self.query_one("#attempts", DataTable)
        empty = self.query_one("#handler-empty", Static)
        empty.display = not attempts
        table.display = self.query_one("#attempt-scroll").display = bool(attempts)
        if not attempts:
            empty.update(EMPTY)
            return
        table.clear()
        for stored in reversed(attempts):  # newest first: the answer just sent is on top
            table.add_row(*attempt_row(stored), key=str(stored.id))
        table.move_cursor(row=0)
        self._show_attempt(0)
        if self.active_tab == "handler" and self.focused is None:
            self._focus_content("handler")

    @on(DataTable.RowHighlighted, "#attempts")
    def _attempt_highlighted(self, message: DataTable.RowHighlighted) -> None:
        self._show_attempt(message.cursor_row)

    def _show_attempt(self, row: int) -> None:
        newest_first = list(reversed(self._attempts))
        if 0 <= row < len(newest_first):
            self.query_one("#attempt-body", Static).update(attempt_detail(newest_first[row]))

    def action_resend(self, edit: bool) -> None:
        """Send this event to the handler again (``edit``: an edited copy); the app does it."""
        self.post_message(ResendEvent(self.event_id, edit=edit))

    def _focus_content(self, tab: str | None = None) -> None:
        content = self._content(tab or self.active_tab)
        if content is not None:
            content.focus()

    @property
    def active_tab(self) -> str:
        return self.query_one(TabbedContent).active

    # --------------------------------------------------------- actions

    def action_close(self) -> None:
        search = self.query_one("#search", Input)
        if search.display:
            search.display = False
            self._focus_content()
            return
        self.dismiss()

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def _copy(self, text: str, what: str) -> None:
        copy = getattr(self.app, "copy_with_fallback", None)
        if copy is not None:
            copy(text, what)
        else:
            self.app.copy_to_clipboard(text)

    def action_copy_payload(self) -> None:
        if self.event is not None:
            self._copy(copy_payload_text(self.event), f"payload of #{self.event.id}")

    def action_copy_value(self) -> None:
        if self.active_tab != "tree" or not self.query("#json-tree"):
            self.notify("Open the Tree tab (3) and pick a value to copy it.", markup=False)
            return
        tree = self.query_one("#json-tree", JsonTree)
        node = tree.cursor_node
        if node is None or not tree.holds_value(node):
            self.notify("Move the cursor to a value to copy it.", markup=False)
            return
        self._copy(value_text(node.data), f"the value at {tree.path(node)}")

    def action_fold(self) -> None:
        if self.query("#json-tree"):
            tree = self.query_one("#json-tree", JsonTree)
            for child in tree.root.children:
                child.collapse_all()
            self.action_tab("tree")

    def action_search(self) -> None:
        if self.active_tab != "json":
            self._search_owns_focus = True
            self.action_tab("json")
        search = self.query_one("#search", Input)
        search.display = True
        search.focus()
        search.select_all()  # typing replaces the last search, Enter repeats it

    def action_wrap(self) -> None:
        """Wrap long lines in the JSON tab, or stop wrapping them."""
        self._wrap = not self._wrap
        for area in self.query("#json-text").results(TextArea):
            area.soft_wrap = self._wrap
        for lines in self.query(JsonLines):
            lines.wrap = self._wrap
        if self.active_tab != "json":
            self.action_tab("json")
        state = "wrapped" if self._wrap else "not wrapped"
        self.notify(f"Long JSON lines {state} (w toggles).", markup=False, timeout=2)

    @on(Input.Submitted, "#search")
    def _search_submitted(self, message: Input.Submitted) -> None:
        if message.value != self._needle:
            self._find_all(message.value)
        self.action_next_match(1)
        self._focus_content("json")

    def _find_all(self, needle: str) -> None:
        self._needle = needle
        self._matches = []
        self._match_index = -1
        if not needle:
            return
        wanted = needle.lower()
        for row, line in enumerate(self._json_lines()):
            lowered = line.lower()
            start = lowered.find(wanted)
            while start != -1:
                self._matches.append((row, start))
                start = lowered.find(wanted, start + 1)

    def action_next_match(self, step: int) -> None:
        if not self._matches:
            if self._needle:
                self.notify(f"No match for {printable(self._needle)!r}.", markup=False)
                self._show_count()
            else:
                self.notify("Search the JSON first (/).", markup=False)
            return
        if self.active_tab != "json":
            self.action_tab("json")
        self._match_index = (self._match_index + step) % len(self._matches)
        row, column = self._matches[self._match_index]
        if self.query("#json-lines"):
            self.query_one(JsonLines).show_match(row, column, len(self._needle))
        else:
            self._select_match(row, column)
        self._show_count()

    def _select_match(self, row: int, column: int) -> None:
        """Select a match in the editor: centred vertically, scrolled sideways only if cut."""
        area = self.query_one("#json-text", TextArea)
        end = column + len(self._needle)
        # Setting the selection scrolls to its end; the scroll below replaces that.
        area.selection = Selection((row, column), (row, end))
        start_x, y = area.wrapped_document.location_to_offset((row, column))
        end_x, _ = area.wrapped_document.location_to_offset((row, end))
        view = area.scrollable_content_region
        width = max(1, view.width - area.gutter_width)
        x = area.scroll_x
        if start_x < x or end_x > x + width:
            x = max(0, min(start_x, end_x - width + 1))
        area.scroll_to(x=x, y=max(0, y - view.height // 2), animate=False)

    def _show_count(self) -> None:
        """The "k of N" line: it stays while the matches do, search box open or not."""
        count = self.query_one("#search-count", Static)
        search = self.query_one("#search", Input)
        count.display = bool(self._needle)
        needle = safe(self._needle, "bold")
        if not self._matches:
            search.border_subtitle = "no match"
            count.update(Text.assemble("no match for ", needle))
            return
        position = f"{self._match_index + 1} of {len(self._matches)}"
        search.border_subtitle = position
        count.update(
            Text.assemble(
                (position, "bold"),
                " matches for ",
                needle,
                ("   n / N: next / previous   / : search again", "dim"),
            )
        )

    def _json_lines(self) -> list[str]:
        if self.query("#json-lines"):
            return self.query_one(JsonLines).lines
        return self.query_one("#json-text", TextArea).document.lines
