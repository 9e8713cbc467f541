"""A JSON tree that builds nodes only when they are expanded.

``Tree.add_json`` builds every node up front (seconds for a long transcript);
here a container gets its children the first time it opens, so folding and
unfolding a 5 MB payload stays instant.
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from ...sanitize import printable
from ..text import counted

PREVIEW = 80
MAX_CHILDREN = 5_000
"""Children shown per container; the rest are summarised in one line."""


def _preview(value: Any) -> Text:
    if isinstance(value, dict):
        return Text(f"{{…}} {counted(len(value), 'key')}", style="dim")
    if isinstance(value, list):
        return Text(f"[…] {counted(len(value), 'item')}", style="dim")
    if isinstance(value, str):
        shown = printable(value)
        if len(shown) > PREVIEW:
            shown = shown[: PREVIEW - 1] + "…"
        return Text(json.dumps(shown, ensure_ascii=False), style="green")
    if value is None or isinstance(value, bool):
        return Text(json.dumps(value), style="italic magenta")
    return Text(str(value), style="cyan")


def _label(key: str | int | None, value: Any) -> Text:
    label = Text()
    if key is not None:
        label.append(printable(str(key)), style="bold")
        label.append(": ")
    label.append_text(_preview(value))
    return label


def value_text(value: Any) -> str:
    """What "copy value" puts on the clipboard: strings bare, the rest as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False)


class JsonTree(Tree[Any]):
    """Lazy tree over a parsed payload; node data is the JSON value."""

    def __init__(self, value: Any, *, id: str | None = None) -> None:
        super().__init__(_label(None, value), data=value, id=id)
        self._filled: set[int] = set()
        self._keys: dict[int, str | int] = {}
        """Each node's key in its parent (the root has none), for :meth:`path`."""
        self._more: set[int] = set()
        """The "… N more" lines: they stand for values, they are not one."""
        self.show_root = True
        self.guide_depth = 3

    def on_mount(self) -> None:
        self._fill(self.root)
        self.root.expand()

    def _fill(self, node: TreeNode[Any]) -> None:
        if node.id in self._filled:
            return
        self._filled.add(node.id)
        value = node.data
        items: list[tuple[str | int, Any]]
        if isinstance(value, dict):
            items = list(value.items())
        elif isinstance(value, list):
            items = list(enumerate(value))
        else:
            return
        for key, child in items[:MAX_CHILDREN]:
            expandable = isinstance(child, dict | list) and bool(child)
            if expandable:
                added = node.add(_label(key, child), data=child)
            else:
                added = node.add_leaf(_label(key, child), data=child)
            self._keys[added.id] = key
        if len(items) > MAX_CHILDREN:
            more = node.add_leaf(
                Text(f"… {len(items) - MAX_CHILDREN:,} more (see the JSON tab)", style="dim")
            )
            self._more.add(more.id)

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[Any]) -> None:
        self._fill(event.node)

    @property
    def highlighted_value(self) -> Any:
        node = self.cursor_node
        return None if node is None else node.data

    def holds_value(self, node: TreeNode[Any]) -> bool:
        """Whether ``node`` is a JSON value (not a "… N more" line)."""
        return node.id not in self._more

    def path(self, node: TreeNode[Any]) -> str:
        """Where ``node`` is in the payload, e.g. ``properties.transcript[3].content``."""
        parts: list[str] = []
        current: TreeNode[Any] | None = node
        while current is not None and current.id in self._keys:
            key = self._keys[current.id]
            if isinstance(key, int):
                parts.append(f"[{key}]")
            else:
                parts.append(f".{printable(key)}")
            current = current.parent
        return "".join(reversed(parts)).lstrip(".") or "the root"
