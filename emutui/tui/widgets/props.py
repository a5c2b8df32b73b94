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
import re
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.suggester import Suggester
from textual.widgets import Input, Static, Tree
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


def _number(value: int, hex_: bool) -> str:
    if not hex_:
        return str(value)
    return f"-0x{-value:x}" if value < 0 else f"0x{value:x}"


def format_value(value: Any, hex_: bool = True) -> str:
    """A property value, compact; integers in hex (addresses, ids, masks, registers are
    read in hex here) or in decimal. Booleans and strings stay as they are."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return _number(value, hex_)
    if isinstance(value, list):
        return "[" + ",".join(format_value(v, hex_) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(f"{json.dumps(str(k))}:{format_value(v, hex_)}" for k, v in value.items())
            + "}"
        )
    return json.dumps(value, separators=(",", ":"), default=str)


def compact(value: Any, width: int = MAX_VALUE_WIDTH, hex_: bool = True) -> str:
    text = format_value(value, hex_)
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
        Binding("slash", "search", "Search", key_display="/"),
        Binding("n", "search_next(1)", "Next", show=False),
        Binding("N", "search_next(-1)", "Prev", show=False),
        Binding("e", "edit", "Edit"),
        Binding("r", "refresh", "Refresh"),
        Binding("g", "jump", "Jump"),
        Binding("d", "toggle_hex", "Dec/Hex"),
        Binding("escape", "close_search", "Close", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.link: InstanceLink | None = None
        self._sem = asyncio.Semaphore(VALUE_CONCURRENCY)
        self._loads: dict[str, asyncio.Future[None]] = {}
        self.hex_mode = True  # integers in hex; `d` shows them in decimal
        self.search_text = ""

    def compose(self) -> ComposeResult:
        yield Input(
            placeholder="search the loaded tree: names, paths, values (Enter: next, Esc closes)",
            id="prop-search",
            classes="hidden",
        )
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

    def _leaf_label(self, item: Item) -> Text:
        assert item.prop is not None
        label = Text.assemble((item.prop.name, ""), ("  " + _short_type(item.prop.type), "dim"))
        if item.has_value:
            label.append(" = ")
            label.append(compact(item.value, hex_=self.hex_mode), "bold")
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
            t.append("\n" + compact(item.value, 400, self.hex_mode))
            if isinstance(item.value, int) and not isinstance(item.value, bool):
                other = _number(item.value, not self.hex_mode)
                t.append(f"  ({other})", "dim")
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

    def action_toggle_hex(self) -> None:
        self.hex_mode = not self.hex_mode
        for node in self._walk(self.ptree.root):
            if node.data is not None and node.data.prop is not None:
                node.set_label(self._leaf_label(node.data))
        if self.ptree.cursor_node is not None:
            self._show_detail(self.ptree.cursor_node)
        self.app.notify("numbers in " + ("hex" if self.hex_mode else "decimal"))

    # -- search (over what is loaded) -------------------------------------------------------

    @staticmethod
    def _walk(node: TreeNode[Item]) -> list[TreeNode[Item]]:
        out: list[TreeNode[Item]] = []
        stack = [node]
        while stack:
            n = stack.pop()
            out.append(n)
            stack.extend(reversed(n.children))
        return out

    def _node_text(self, node: TreeNode[Item]) -> str:
        item = node.data
        if item is None:
            return ""
        if item.prop is None:
            return item.path
        value = compact(item.value, 400, self.hex_mode) if item.has_value else ""
        return f"{item.full} {item.prop.type} {value}"

    def action_search(self) -> None:
        box = self.query_one("#prop-search", Input)
        box.remove_class("hidden")
        box.focus()

    def action_close_search(self) -> None:
        box = self.query_one("#prop-search", Input)
        box.add_class("hidden")
        self.ptree.focus()

    @on(Input.Changed, "#prop-search")
    def _search_changed(self, event: Input.Changed) -> None:
        self.search_text = event.value.strip()
        if self.search_text:
            self.search(self.search_text, 0)

    @on(Input.Submitted, "#prop-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        # Enter keeps the match found while typing and goes back to the tree (n/N go on)
        self.search_text = event.value.strip()
        self.action_close_search()

    def action_search_next(self, step: int) -> None:
        if not self.search_text:
            self.action_search()
            return
        self.search(self.search_text, step)

    def search(self, text: str, step: int) -> TreeNode[Item] | None:
        """Move to the next (step 1), previous (-1) or first-from-here (0) loaded node
        whose path, name, type or value contains ``text`` (any case)."""
        tree = self.ptree
        nodes = [n for n in self._walk(tree.root) if n.data is not None]
        needle = text.lower()
        hits = [i for i, n in enumerate(nodes) if needle in self._node_text(n).lower()]
        status = self.query_one("#prop-detail", Static)
        if not hits:
            status.update(
                Text(f"no {text!r} in the {len(nodes)} loaded nodes (open more, or g to a path)")
            )
            return None
        cur = tree.cursor_node
        at = next((i for i, n in enumerate(nodes) if n is cur), -1)
        if step >= 0:
            after = [i for i in hits if i > at or (step == 0 and i == at)]
            idx, wrapped = (after[0], False) if after else (hits[0], at >= 0)
        else:
            before = [i for i in hits if i < at]
            idx, wrapped = (before[-1], False) if before else (hits[-1], True)
        node = nodes[idx]
        parent = node.parent
        while parent is not None:
            parent.expand()
            parent = parent.parent
        self.call_after_refresh(self._move_to, node)
        if wrapped:
            self.app.notify("search wrapped around", timeout=2)
        return node

    def _move_to(self, node: TreeNode[Item]) -> None:
        tree = self.ptree
        tree.move_cursor(node)
        tree.scroll_to_node(node, animate=False)

    # -- jump ----------------------------------------------------------------------------

    def action_jump(self) -> None:
        def done(path: str | None) -> None:
            if path:
                self.jump(path)

        self.app.push_screen(
            PromptScreen(
                "Jump to path (Right accepts a completion)",
                "/machine/peripheral/",
                placeholder="/machine/…",
                suggester=PathSuggester(self),
                continue_value=True,
            ),
            done,
        )

    async def complete_path(self, value: str) -> list[str]:
        """Completions for a partial path: child objects after ``/``, properties after ``.``."""
        link = self.link
        if link is None or link.conn is None or not value.startswith("/"):
            return []
        obj, dot, prop = value.partition(".")
        if dot:
            owner = obj.rstrip("/") or "/"  # "/a/b/.x" after a completed "/a/b/"
            names = [p.name for p in await link.require().list_props(owner) if not p.has_children]
            return [f"{obj}.{n}" for n in sorted(names) if n.startswith(prop)]
        parent, _, partial = obj.rpartition("/")
        nodes = await link.require().list_props(parent or "/")
        out = []
        for p in sorted(nodes, key=lambda p: p.name):
            if p.has_children and p.name.startswith(partial):
                out.append(f"{parent}/{p.name}/")
        return out

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
        # after the layout of what was just expanded, or the node may stay out of view
        self.call_after_refresh(tree.scroll_to_node, node, animate=False)
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
        current = format_value(item.value, self.hex_mode) if item.has_value else ""

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
                    f"Set {item.full} ({item.prop.type}) to {format_value(value, self.hex_mode)}?\n"  # type: ignore[union-attr]
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


class PathSuggester(Suggester):
    """Completes the jump prompt from the backend's tree (one list per level, cached)."""

    def __init__(self, pane: PropsPane) -> None:
        super().__init__(use_cache=True, case_sensitive=True)
        self.pane = pane

    async def get_suggestion(self, value: str) -> str | None:
        try:
            cands = await asyncio.wait_for(self.pane.complete_path(value), 2.0)
        except Exception:  # completion must never break typing
            return None
        return next((c for c in cands if c.startswith(value) and c != value), None)


def _short_type(t: str) -> str:
    return t if len(t) <= 40 else t[:39] + "…"


def _parse_value(text: str) -> Any:
    t = text.strip()
    if re.fullmatch(r"-?0[xX][0-9a-fA-F]+", t):
        return int(t, 16)  # numbers are shown in hex, so they can be typed in hex
    try:
        return json.loads(text)
    except ValueError:
        return text
