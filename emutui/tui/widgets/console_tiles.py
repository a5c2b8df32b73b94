"""Consoles side by side (issue 15, wish A): the console area split into 1-4 tiles.

Keys (outside a console, in the Console pane): ``s`` splits (a new tile showing the
selected instance's channel), ``w`` closes the active tile, ``o`` moves to the next
tile, ``z`` zooms the active tile (again: back to all tiles), ``Left``/``Right`` change
the active tile's channel, and picking an instance in the table shows it in the
active tile. ``Enter`` types into the active tile; the escape key leaves it. The
layout follows the window: two tiles side by side when each gets 60 columns, else
above each other; three or four in a 2x2 grid when wide enough.

Each tile is its own ConsoleView with its own connection to the channel (QEMU's
serial hub fans a channel out to any number of clients), so two tiles may show the
same channel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.widgets import Static

if TYPE_CHECKING:
    from emutui.tui.console_settings import ConsoleSettings
    from emutui.tui.links import InstanceLink

MAX_TILES = 4
SIDE_BY_SIDE = 60  # columns a tile needs before tiles go side by side


def _channels(link: InstanceLink) -> list[str]:
    if link.conn is not None:
        return list(link.conn.serial_channels())
    h = link.inst.handles
    return list(h.serial_channels()) if h is not None else []


class ConsoleTile(Vertical, can_focus=True):
    """One console in the tiled layout: a title line and a ConsoleView."""

    BINDINGS = [
        Binding("left", "channel(-1)", "Channel", show=False),
        Binding("right", "channel(1)", "Channel", show=False),
    ]
    DEFAULT_CSS = """
    ConsoleTile { border: round $panel-lighten-2; height: 1fr; width: 1fr; padding: 0; }
    ConsoleTile.-active { border: round $accent; }
    ConsoleTile.-typing { border: heavy $accent; }
    ConsoleTile > .tile-title { height: 1; }
    ConsoleTile.-typing > .tile-title { background: $accent; color: $text; text-style: bold; }
    ConsoleTile ConsoleView { height: 1fr; border-left: none; }
    """

    def __init__(self, link: InstanceLink, channel: str, settings: ConsoleSettings) -> None:
        super().__init__()
        self.link = link
        self.channel = channel
        self.settings = settings
        self.view: Any = None
        self._serial = 0

    def compose(self) -> ComposeResult:
        yield Static("", classes="tile-title")

    async def on_mount(self) -> None:
        await self._build()

    async def _build(self) -> None:
        from emutui.tui.widgets.console_pane import ConsoleWidget

        if self.view is not None:
            await self.view.remove()
        st = self.settings
        self._serial += 1
        view = ConsoleWidget(
            self.link.inst,
            self.channel,
            self.link.conn,
            scrollback=st.scrollback,
            escape_key=st.escape_key,
            escape_display=st.escape_display,
        )
        view.leave_focus = lambda: self
        self.view = view
        await self.mount(view)
        self.update_title()

    async def show_source(self, link: InstanceLink, channel: str | None = None) -> None:
        chans = _channels(link)
        if not chans:
            self.app.notify(f"{link.name} has no serial channels", severity="warning")
            return
        channel = channel if channel in chans else chans[0]
        if link is self.link and channel == self.channel and self.view is not None:
            return
        self.link, self.channel = link, channel
        await self._build()

    async def action_channel(self, step: int) -> None:
        chans = _channels(self.link)
        if len(chans) < 2:
            return
        i = chans.index(self.channel) if self.channel in chans else 0
        await self.show_source(self.link, chans[(i + step) % len(chans)])

    def update_title(self) -> None:
        typing = self.view is not None and self.view.has_focus
        self.set_class(typing, "-typing")
        name = f"{escape(self.link.name)}/{escape(self.channel)}"
        esc = escape(self.settings.escape_display)
        if typing:
            text = f" TYPING ▸ {name} · {esc} leaves"
        else:
            text = f"[b]{name}[/]  [dim]Enter types · ←/→ channel[/]"
        self.query_one(".tile-title", Static).update(text, layout=False)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        parent = self.parent
        if isinstance(parent, ConsoleTiles):
            parent.activate(self)
        self.update_title()

    def on_descendant_blur(self, event: events.DescendantBlur) -> None:
        self.update_title()

    def on_focus(self, event: events.Focus) -> None:
        parent = self.parent
        if isinstance(parent, ConsoleTiles):
            parent.activate(self)


class ConsoleTiles(Grid):
    """The tiles and which one is active (keys and instance picks go to it)."""

    DEFAULT_CSS = """
    ConsoleTiles { height: 1fr; grid-gutter: 0; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.tiles: list[ConsoleTile] = []
        self.active: ConsoleTile | None = None
        self.zoomed = False

    async def add_tile(self, link: InstanceLink, channel: str, settings: ConsoleSettings) -> bool:
        if len(self.tiles) >= MAX_TILES:
            return False
        tile = ConsoleTile(link, channel, settings)
        self.tiles.append(tile)
        self.zoomed = False
        await self.mount(tile)
        self.activate(tile)
        self.relayout()
        return True

    async def close_active(self) -> None:
        tile = self.active
        if tile is None:
            return
        i = self.tiles.index(tile)
        self.tiles.remove(tile)
        await tile.remove()
        self.active = None
        self.zoomed = False
        if self.tiles:
            self.activate(self.tiles[min(i, len(self.tiles) - 1)])
        self.relayout()

    def activate(self, tile: ConsoleTile) -> None:
        if tile is self.active:
            return
        self.active = tile
        for t in self.tiles:
            t.set_class(t is tile, "-active")
        if self.zoomed:
            self.relayout()

    def next_tile(self) -> ConsoleTile | None:
        if not self.tiles:
            return None
        i = self.tiles.index(self.active) if self.active in self.tiles else -1
        tile = self.tiles[(i + 1) % len(self.tiles)]
        self.activate(tile)
        return tile

    def toggle_zoom(self) -> None:
        self.zoomed = not self.zoomed and len(self.tiles) > 1
        self.relayout()

    def on_resize(self, event: events.Resize) -> None:
        self.relayout()

    def relayout(self) -> None:
        """Grid shape from the number of tiles and the space (the layout follows the window)."""
        shown = [self.active] if self.zoomed and self.active is not None else self.tiles
        for t in self.tiles:
            was = t.display
            t.display = t in shown
            t.styles.column_span = 1
            if t.display and not was and t.view is not None:
                t.view.wake()
        n = len(shown)
        wide = self.size.width >= 2 * SIDE_BY_SIDE or self.size.width == 0
        if n <= 1:
            cols, rows = 1, 1
        elif n == 2:
            cols, rows = (2, 1) if wide else (1, 2)
        else:
            cols, rows = (2, 2) if wide else (1, n)
            if wide and n == 3:
                shown[2].styles.column_span = 2
        self.styles.grid_size_columns = cols
        self.styles.grid_size_rows = rows
