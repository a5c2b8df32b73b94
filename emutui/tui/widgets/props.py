"""Properties pane: a property tree loaded lazily, values fetched with bounded concurrency.

A node's children are listed when it is first expanded (one qom-list round
trip); its leaf values are then read with at most VALUE_CONCURRENCY requests
in flight (more buys nothing: QEMU serves one monitor's commands one at a
time, specs/qemu.md (c)). A property that cannot be read is shown as such,
dimmed, not as an error.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

from emutui.core.errors import EmutuiError
from emutui.core.model import Capability, PropertyNode
from emutui.tui.links import InstanceLink
from emutui.tui.screens.dialogs import ConfirmScreen, PromptScreen

VALUE_CONCURRENCY = 4
MAX_VALUE_WIDTH = 60


@dataclass
class Item:
    """What a tree node stands for."""

    path: str  # the object's path (for leaves: the owning object)
    prop: PropertyNode | None = None  # None for an object node
    loaded: bool = False
    value: Any = None
    has_value: bool = False
    unreadable: str = ""  # why the value could not be read
    children_names: list[str] = field(default_factory=list)

    @property
    def full(self) -> str:
        return f"{self.path}.{self.prop.name}" if self.prop else self.path


def compact(value: Any, width: int = MAX_VALUE_WIDTH) -> str:
    text = json.dumps(value, separators=(",", ":"), default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def _join(path: str, name: str) -> str:
    return f"{path.rstrip('/')}/{name}"


class PropTree(Tree[Item]):
    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]


class PropsPane(Vertical):
    BINDINGS = [
        Binding("e", "edit", "Edit"),
        Binding("r", "refresh", "Refresh"),
        Binding("g", "jump", "Jump"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.link: InstanceLink | None = None
        self._sem = asyncio.Semaphore(VALUE_CONCURRENCY)
        self._loads: dict[str, asyncio.Future[None]] = {}

    def compose(self) -> ComposeResult:
        tree: PropTree = PropTree("/", data=Item("/"), id="prop-tree")
        tree.show_root = True
        tree.guide_depth = 2
        yield tree
        yield Static("", id="prop-detail", classes="status-line")

    @property
    def ptree(self) -> PropTree:
        return self.query_one(PropTree)

    def show(self, link: InstanceLink | None) -> None:
        self.link = link
        self._loads.clear()
        tree = self.ptree
        tree.clear()
        tree.root.data = Item("/")
        tree.root.set_label("/")
        self._detail("")
        if link is not None and link.conn is not None:
            tree.root.expand()

    def _detail(self, text: str | Text) -> None:
        self.query_one("#prop-detail", Static).update(text)

    # -- loading ------------------------------------------------------------------------

    @on(Tree.NodeExpanded)
    def _expanded(self, event: Tree.NodeExpanded[Item]) -> None:
        item = event.node.data
        if item is not None and item.prop is None and not item.loaded:
            self._load(event.node)

    def _load(self, node: TreeNode[Item]) -> asyncio.Future[None]:
        assert node.data is not None
        path = node.data.path
        fut = self._loads.get(path)
        if fut is None or (fut.done() and not node.data.loaded):
            fut = asyncio.get_running_loop().create_future()
            self._loads[path] = fut
            node.data.loaded = True
            node.add_leaf(Text("loading…", style="dim italic"))
            self.run_worker(self._load_children(node, fut), group="props", exit_on_error=False)
        return fut

    async def _load_children(self, node: TreeNode[Item], fut: asyncio.Future[None]) -> None:
        link = self.link
        assert node.data is not None
        path = node.data.path
        try:
            props = await link.require().list_props(path) if link else []
        except EmutuiError as e:
            node.remove_children()
            node.add_leaf(Text(f"cannot list: {e}", style="dim"))
            node.data.loaded = False
            if not fut.done():
                fut.set_result(None)
            return
        if link is not self.link:
            return
        node.remove_children()
        children = sorted((p for p in props if p.has_children), key=lambda p: p.name)
        leaves = sorted((p for p in props if not p.has_children), key=lambda p: p.name)
        node.data.children_names = [p.name for p in children]
        for p in children:
            node.add(
                Text.assemble((p.name, "bold"), ("  " + _short_type(p.type), "dim")),
                data=Item(_join(path, p.name) if p.path == path else p.path),
            )
        leaf_nodes = []
        for p in leaves:
            item = Item(path, prop=p)
            leaf_nodes.append(node.add_leaf(self._leaf_label(item), data=item))
        if not fut.done():
            fut.set_result(None)
        await asyncio.gather(*(self._fetch_value(n) for n in leaf_nodes))

    async def _fetch_value(self, node: TreeNode[Item]) -> None:
        item = node.data
        link = self.link
        if item is None or item.prop is None or link is None:
            return
        if not item.prop.readable:
            item.unreadable = "not readable"
        else:
            async with self._sem:
                if link is not self.link:
                    return
                try:
                    item.value = await link.require().get_prop(item.path, item.prop.name)
                    item.has_value = True
                    item.unreadable = ""
                except EmutuiError as e:
                    item.unreadable = str(e)
        node.set_label(self._leaf_label(item))
        if self.ptree.cursor_node is node:
            self._show_detail(node)

    @staticmethod
    def _leaf_label(item: Item) -> Text:
        assert item.prop is not None
        label = Text.assemble((item.prop.name, ""), ("  " + _short_type(item.prop.type), "dim"))
        if item.has_value:
            label.append(" = ")
            label.append(compact(item.value), "bold")
        elif item.unreadable:
            label.append("  ‹unreadable›", "dim italic")
        else:
            label.append("  …", "dim")
        return label

    # -- selection detail -----------------------------------------------------------------

    @on(Tree.NodeHighlighted)
    def _highlighted(self, event: Tree.NodeHighlighted[Item]) -> None:
        self._show_detail(event.node)

    def _show_detail(self, node: TreeNode[Item]) -> None:
        item = node.data
        if item is None:
            return
        if item.prop is None:
            self._detail(Text(item.path, "bold"))
            return
        t = Text.assemble((item.full, "bold"), f"  {item.prop.type}")
        if item.prop.writable:
            t.append("  writable", "green")
        if item.has_value:
            t.append("\n" + compact(item.value, 400))
        elif item.unreadable:
            t.append(f"\nunreadable: {item.unreadable}", "dim")
        if item.prop.description:
            t.append(f"\n{item.prop.description}", "dim italic")
        self._detail(t)

    # -- actions ------------------------------------------------------------------------

    def action_refresh(self) -> None:
        node = self.ptree.cursor_node
        if node is None or node.data is None:
            return
        if node.data.prop is not None:
            self.run_worker(self._fetch_value(node), group="props", exit_on_error=False)
            return
        self._loads.pop(node.data.path, None)
        node.remove_children()
        node.data.loaded = False
        node.expand()
        self._load(node)

    def action_jump(self) -> None:
        def done(path: str | None) -> None:
            if path:
                self.jump(path)

        self.app.push_screen(
            PromptScreen("Jump to path", "/machine/peripheral/", placeholder="/machine/…"), done
        )

    @work(group="props-jump", exclusive=True, exit_on_error=False)
    async def jump(self, path: str) -> TreeNode[Item] | None:
        """Expand the tree along ``path`` (``/a/b`` or ``/a/b.prop``) and select it."""
        obj, _, prop = path.strip().partition(".")
        parts = [p for p in obj.split("/") if p]
        tree = self.ptree
        node = tree.root
        node.expand()
        for part in parts:
            await self._load(node)
            nxt = next(
                (
                    c
                    for c in node.children
                    if c.data and c.data.prop is None and c.data.path.rsplit("/", 1)[-1] == part
                ),
                None,
            )
            if nxt is None:
                self.app.notify(
                    f"no {part!r} under {node.data.path if node.data else '?'}",
                    severity="warning",
                    markup=False,
                )
                return None
            node = nxt
            node.expand()
        await self._load(node)
        if prop:
            leaf = next(
                (c for c in node.children if c.data and c.data.prop and c.data.prop.name == prop),
                None,
            )
            if leaf is None:
                self.app.notify(
                    f"no property {prop!r} on {node.data.path if node.data else '?'}",
                    severity="warning",
                    markup=False,
                )
            else:
                node = leaf
        tree.move_cursor(node)
        tree.scroll_to_node(node, animate=False)
        tree.focus()
        return node

    def action_edit(self) -> None:
        node = self.ptree.cursor_node
        link = self.link
        if node is None or node.data is None or node.data.prop is None or link is None:
            self.app.notify("select a property to edit", severity="warning")
            return
        item = node.data
        assert item.prop is not None
        if Capability.PROPERTY_WRITE not in link.capabilities or not item.prop.writable:
            self.app.notify(f"{item.full} is not writable", severity="warning", markup=False)
            return
        current = json.dumps(item.value) if item.has_value else ""

        def check(text: str) -> str | None:
            return None if text.strip() else 'type a value (JSON: 5, true, "text")'

        def entered(text: str | None) -> None:
            if text is None:
                return
            value = _parse_value(text)

            def confirmed(ok: bool | None) -> None:
                if ok:
                    self._set(node, value)

            self.app.push_screen(
                ConfirmScreen(
                    f"Set {item.full} ({item.prop.type}) to {json.dumps(value)}?\n"  # type: ignore[union-attr]
                    "Some devices do not survive a change at run time.",
                    yes="Set",
                ),
                confirmed,
            )

        self.app.push_screen(
            PromptScreen(f"New value for {item.full}", current, validate=check), entered
        )

    @work(group="props-set", exit_on_error=False)
    async def _set(self, node: TreeNode[Item], value: Any) -> None:
        item = node.data
        if item is None or item.prop is None or self.link is None:
            return
        try:
            await self.link.require().set_prop(item.path, item.prop.name, value)
        except EmutuiError as e:
            self.app.notify(str(e), title="set failed", severity="error", markup=False)
            return
        self.app.notify(f"{item.full} set", markup=False)
        await self._fetch_value(node)


def _short_type(t: str) -> str:
    return t if len(t) <= 40 else t[:39] + "…"


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
