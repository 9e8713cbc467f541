"""The inspector follows the keyboard: driven like a user drives it (real server, store, HTTP).

Each test opens an event in the inspector and asserts what a user notices: which widget
has the keys, what lands on the clipboard, the match counter, where the JSON is
scrolled, and what the Headers tab says.
"""

from __future__ import annotations

import json

from test_tui import Dashboard, dash, encode, sample, settle, widget_lines
from textual.widget import Widget
from textual.widgets import Input, Static, TextArea

from tavus_monitor.tui.screens.inspector import LONG_JSON_CHARS, InspectorScreen
from tavus_monitor.tui.widgets.json_lines import JsonLines
from tavus_monitor.tui.widgets.json_tree import JsonTree

__all__ = ["dash"]  # the fixture, imported for pytest


def shutdown(conversation_id: str, **properties: object) -> bytes:
    data = sample("system.shutdown", conversation_id=conversation_id)
    data["properties"] = {**data.get("properties", {}), **properties}
    return encode(data)


async def inspect(dash: Dashboard, body: bytes, **headers: bytes) -> InspectorScreen:
    """Post ``body`` and open it in the inspector from the Events pane."""
    await dash.post(body, headers={k.replace("_", "-").encode(): v for k, v in headers.items()})
    dash.pane("events").focus()
    await dash.press("enter")
    inspector = dash.app.screen
    assert isinstance(inspector, InspectorScreen)
    return inspector


def has_keys(dash: Dashboard, widget: Widget) -> bool:
    return dash.app.focused is widget


def within(widget: Widget | None, container: Widget) -> bool:
    while widget is not None:
        if widget is container:
            return True
        widget = widget.parent if isinstance(widget.parent, Widget) else None
    return False


def counter(inspector: InspectorScreen) -> str:
    count = inspector.query_one("#search-count", Static)
    return str(count.render()) if count.display else ""


async def test_the_selected_tabs_content_takes_the_keys(dash: Dashboard) -> None:
    inspector = await inspect(dash, shutdown("cfocus000001"))
    app = dash.app
    assert within(app.focused, inspector.query_one("#summary"))
    await dash.press("2")
    assert has_keys(dash, inspector.query_one("#json-text", TextArea))
    await dash.press("3")
    tree = inspector.query_one(JsonTree)
    assert has_keys(dash, tree)
    await dash.press("down")  # at once, no tab key first
    assert tree.cursor_line == 1
    await dash.press("4")
    assert within(app.focused, inspector.query_one("#headers"))
    await dash.press("5")
    assert has_keys(dash, inspector.query_one("#raw-text", TextArea))
    # A click on a tab does the same.
    await dash.pilot.click("#--content-tab-tree")
    await settle(dash.pilot)
    assert inspector.active_tab == "tree"
    assert has_keys(dash, tree)
    await dash.pilot.click("#--content-tab-json")
    await settle(dash.pilot)
    assert has_keys(dash, inspector.query_one("#json-text", TextArea))


async def test_v_copies_the_value_under_the_tree_cursor_not_the_root(dash: Dashboard) -> None:
    body = shutdown("cvalue000001")
    inspector = await inspect(dash, body)
    app = dash.app
    payload = json.loads(body)
    await dash.press("3", "down")  # the root, then its first key: properties
    await dash.press("v")
    assert app.clipboard == json.dumps(payload["properties"], indent=2, ensure_ascii=False)
    await dash.press("enter", "down", "down")  # open properties, its second key
    tree = inspector.query_one(JsonTree)
    assert tree.cursor_node is not None
    assert tree.path(tree.cursor_node) == "properties.shutdown_reason"
    await dash.press("v")
    assert app.clipboard == payload["properties"]["shutdown_reason"]


async def test_enter_searches_and_n_steps_through_matches_from_the_json(dash: Dashboard) -> None:
    body = shutdown("csearch00001", notes=["zebra one", "a zebra two", "zebra three"])
    inspector = await inspect(dash, body)
    app = dash.app
    area = inspector.query_one("#json-text", TextArea)
    search = inspector.query_one("#search", Input)
    await dash.press("slash", *"zebra", "enter")
    assert has_keys(dash, area)
    assert area.selected_text == "zebra"
    assert counter(inspector).startswith("1 of 3 matches for zebra")
    await dash.press("n")
    assert counter(inspector).startswith("2 of 3")
    assert area.selection.start[0] == area.document.lines.index('      "a zebra two",')
    await dash.press("n", "N", "N")
    assert counter(inspector).startswith("1 of 3")
    assert search.value == "zebra"  # n and N never typed into the search box
    await dash.press("escape")  # closes the search box, the counter stays
    assert not search.display
    assert app.screen is inspector
    assert has_keys(dash, area)
    await dash.press("N")
    assert counter(inspector).startswith("3 of 3")
    assert "3 of 3 matches for zebra" in dash.text()


async def test_a_match_already_in_view_does_not_scroll_the_json_sideways(dash: Dashboard) -> None:
    body = shutdown(
        "csideway0001",
        long="x" * 400,
        note="the word sits well inside the first screen width: giraffe",
        tail="far away " * 40 + "okapi",
    )
    inspector = await inspect(dash, body)
    await dash.press("2")
    area = inspector.query_one("#json-text", TextArea)
    assert area.max_scroll_x > 0
    await dash.press("slash", *"giraffe", "enter")
    assert area.selected_text == "giraffe"
    assert area.scroll_x == 0
    # A match out of view is scrolled to, and drawn.
    await dash.press("slash", *"okapi", "enter")  # the new word replaces the old
    assert area.selected_text == "okapi"
    assert area.scroll_x > 0
    assert any("okapi" in line for line in dash.text().splitlines())


async def test_w_wraps_long_strings_in_the_json(dash: Dashboard) -> None:
    body = shutdown("cwrap0000001", long="wrapped " * 40 + "THE-END")
    inspector = await inspect(dash, body)
    await dash.press("2")
    area = inspector.query_one("#json-text", TextArea)
    assert not area.soft_wrap
    assert "THE-END" not in dash.text()
    await dash.press("w")
    assert area.soft_wrap
    assert "THE-END" in dash.text()
    await dash.press("w")
    assert not area.soft_wrap
    assert "THE-END" not in dash.text()


async def test_w_wraps_the_light_view_of_a_very_long_json(dash: Dashboard) -> None:
    filler = ["lorem ipsum " * 20] * (LONG_JSON_CHARS // 200)
    body = shutdown("cwraplong001", filler=filler, long="wrapped " * 40 + "THE-END")
    inspector = await inspect(dash, body)
    await dash.press("2")
    view = inspector.query_one(JsonLines)
    assert has_keys(dash, view)
    await dash.press("slash", *"THE-END", "enter")
    assert view.scroll_x > 0  # the match is far right on its line: scrolled to
    assert "THE-END" in "".join(widget_lines(view))
    await dash.press("w")
    assert view.wrap
    assert view.scroll_x == 0
    await dash.press("n")  # the match again, now on a wrapped row
    assert view.scroll_x == 0
    shown = "".join(widget_lines(view))
    assert '"long": "wrapped wrapped' in shown
    assert "THE-END" in shown


async def test_headers_that_are_utf8_read_as_text(dash: Dashboard) -> None:
    await inspect(
        dash,
        shutdown("cheader00001"),
        x_greeting="café ☕ 東京".encode(),
        x_latin="caf\xe9".encode("latin-1"),
        x_hidden="\u202eevil".encode(),
    )
    await dash.press("4")
    text = dash.text()
    assert "x-greeting: café ☕ 東京" in text
    assert "x-latin: café" in text  # not UTF-8: read as Latin-1, as it arrived
    assert "x-hidden: <U+202E>evil" in text
    assert "\u202e" not in text
