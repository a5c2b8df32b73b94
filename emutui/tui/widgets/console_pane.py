"""Console pane: one tab per serial channel of the focused instance.

The terminal itself is ``ConsoleView`` (emutui/tui/widgets/console.py, the
console widget's own module). Until that module exists, ``SerialLogView``
stands in: it shows the channel's log file and sends typed keys to the guest.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

from rich.markup import escape
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import ContentSwitcher, Log, Static, TabbedContent, TabPane, Tabs

from emutui.backends.base import SerialStream
from emutui.core.errors import EmutuiError
from emutui.core.instance import Instance
from emutui.tui.console_settings import ConsoleSettings
from emutui.tui.links import InstanceLink
from emutui.tui.widgets.console_tiles import ConsoleTiles

_ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]|[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f]")
_KEYS = {
    "enter": b"\r",
    "tab": b"\t",
    "escape": b"\x1b",
    "backspace": b"\x7f",
    "up": b"\x1b[A",
    "down": b"\x1b[B",
    "right": b"\x1b[C",
    "left": b"\x1b[D",
}


class SerialLogView(Log, can_focus=True):
    """Stand-in console: tails the serial log; every key goes to the guest; Ctrl+] leaves."""

    class Leave(Message):
        pass

    def __init__(self, instance: Instance, channel: str, connector: Any = None, **kw: Any) -> None:
        super().__init__(max_lines=5000, highlight=False, auto_scroll=True, **kw)
        self.instance = instance
        self.channel = channel
        self.connector = connector
        self._pos = 0
        self._partial = b""
        self._stream: SerialStream | None = None

    def on_mount(self) -> None:
        path = self.instance.serial_log(self.channel)
        try:
            self._pos = max(0, path.stat().st_size - 64 * 1024)
        except OSError:
            self._pos = 0
        self._tail()
        self.set_interval(0.1, self._tail)

    def _tail(self) -> None:
        path: Path = self.instance.serial_log(self.channel)
        try:
            with path.open("rb") as f:
                f.seek(self._pos)
                data = f.read(256 * 1024)
        except OSError:
            return
        if not data:
            return
        self._pos += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        if lines:
            self.write_lines(
                _ANSI.sub(b"", ln.rstrip(b"\r")).decode("utf-8", "replace") for ln in lines
            )

    async def on_key(self, event: events.Key) -> None:
        event.stop()
        event.prevent_default()
        if event.key in ("ctrl+right_square_bracket", "ctrl+]"):
            self.post_message(self.Leave())
            return
        data = _KEYS.get(event.key)
        if data is None and event.character:
            data = event.character.encode()
        if data:
            await self._send(data)

    async def _send(self, data: bytes) -> None:
        try:
            if self._stream is None:
                if self.connector is None:
                    raise EmutuiError("not connected")
                self._stream = await self.connector.serial(self.channel)
            await self._stream.write(data)
        except EmutuiError as e:
            self._stream = None
            self.app.notify(
                str(e), title=f"{self.instance.name}/{self.channel}", severity="error", markup=False
            )

    async def on_unmount(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            try:
                await asyncio.wait_for(stream.close(), 1.0)
            except Exception:
                pass


try:  # the real terminal emulator, once its module exists
    from emutui.tui.widgets.console import ConsoleView as _View
except ImportError:  # pragma: no cover - depends on what is merged
    _View = SerialLogView  # type: ignore[misc,assignment]

ConsoleWidget = _View


class InstanceConsoles(TabbedContent):
    """One instance's consoles, one tab per serial channel; kept alive (and parsing)
    while another instance is shown, so switching back shows it at once."""

    def __init__(self, key: tuple[str, int], *, id: str) -> None:
        super().__init__(id=id, classes="console-tabs")
        self.key = key


class ConsolePane(Vertical):
    # These apply while the console is not focused (after the escape key): inside it
    # every key belongs to the guest. "/" searches the scrollback here, as in less.
    BINDINGS = [
        # Priority (run as the key arrives, refused while a console has focus): they
        # move focus, so the keys right behind them in the same read must find it moved.
        Binding("enter", "enter_console", "Type into console", priority=True),
        Binding("slash", "search", "Search", key_display="/"),
        Binding("n", "search_next", "Next match", show=False),
        Binding("N", "search_prev", "Previous match", show=False),
        Binding("c", "copy", "Copy"),
        Binding("C", "copy_all", "Copy all", show=False),
        Binding("end", "live", "Live", show=False),
        Binding("T", "screen.console_times", "Times", show=False),  # arrival times: timeline
        Binding("s", "split", "Split", show=False),
        Binding("w", "close_tile", "Close tile", show=False),
        Binding("o", "next_tile", "Next tile", show=False, priority=True),
        Binding("z", "zoom", "Zoom", show=False),
    ]
    DEFAULT_CSS = """
    ConsolePane #console-note { height: 1; }
    ConsolePane #console-note.-typing { background: $accent; color: $text; text-style: bold; }
    ConsolePane #console-stack { height: 1fr; }
    ConsolePane .console-tabs { height: 1fr; }
    ConsolePane .console-tabs TabPane { height: 1fr; padding: 0; }
    ConsolePane .console-tabs TabPane > * { height: 1fr; }
    ConsolePane ConsoleView { border-left: outer $panel; }
    ConsolePane ConsoleView.-typing { border-left: outer $accent; }
    """

    class Left(Message):
        """The user left a console with the escape key."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.link: InstanceLink | None = None
        self._shown: tuple[str, int] | None = None
        self._cache: OrderedDict[tuple[str, int], InstanceConsoles] = OrderedDict()
        self._serial = 0
        self.builds = 0  # consoles built (a switch to a cached instance builds none)

    @property
    def settings(self) -> ConsoleSettings:
        return getattr(self.app, "console_settings", None) or ConsoleSettings()

    def compose(self) -> ComposeResult:
        yield Static("", id="console-note", classes="status-line")
        yield ContentSwitcher(id="console-stack")
        tiles = ConsoleTiles(id="console-tiles")
        tiles.display = False
        yield tiles

    def _note(self, text: str) -> None:
        self.query_one("#console-note", Static).update(text, layout=False)

    async def show(self, link: InstanceLink | None, force: bool = False) -> None:
        """Show ``link``'s consoles: the kept ones if they are still current, else new
        ones (the least recently shown beyond ``[ui] console_cache`` are closed)."""
        # Consoles are built once the connector exists (or the instance is dead:
        # then they show the log only), not once before and again after connecting.
        if link is not None and link.conn is None and link.inst.alive():
            if self._shown is None or self._shown[0] != link.name:
                # Another instance was shown: never leave its consoles up under this
                # one's name while this one connects (issue 11: "the Console pane
                # shows another instance's serial output").
                self._shown = (link.name, -1)
                self.link = link
                await self.query_one("#console-tabs", TabbedContent).clear_panes()
                self.query_one("#console-note", Static).update(
                    f"[b]{escape(link.name)}[/]  connecting…", layout=False
                )
            return
        key = (link.name, id(link.conn)) if link else None
        if key == self._shown and not force:
            return
        self._shown = key
        self.link = link
        if self.tiled and link is not None:
            # Tiled: the instance picked goes into the active tile.
            tile = self.tiles.active
            if tile is not None:
                await tile.show_source(link)
            self._update_note()
            return
        stack = self.query_one("#console-stack", ContentSwitcher)
        if link is None:
            stack.current = None
            self._note("no instance selected")
            return
        assert key is not None
        channels = (
            link.conn.serial_channels()
            if link.conn
            else (link.inst.handles.serial_channels() if link.inst.handles else [])
        )
        if not channels:
            stack.current = None
            self._note(f"{escape(link.name)} has no serial channels")
            return
        entry = self._cache.get(key)
        if entry is None or not entry.is_attached:
            # Consoles of an older connection of this instance are stale.
            for old in [k for k in self._cache if k[0] == link.name]:
                await self._evict(old)
            self._serial += 1
            entry = InstanceConsoles(key, id=f"cons-{self._serial}")
            entry.display = False
            await stack.mount(entry)
            st = self.settings
            for ch in channels:
                view = ConsoleWidget(
                    link.inst,
                    ch,
                    link.conn,
                    id=f"con-{_safe(link.name)}-{_safe(ch)}-{self._serial}",
                    **(
                        {
                            "scrollback": st.scrollback,
                            "escape_key": st.escape_key,
                            "escape_display": st.escape_display,
                        }
                        if ConsoleWidget is not SerialLogView
                        else {}
                    ),
                )
                if hasattr(view, "leave_focus"):
                    view.leave_focus = self.tabs_widget
                await entry.add_pane(TabPane(ch, view, id=f"tab-{_safe(ch)}"))
            self._cache[key] = entry
            self.builds += 1
        self._display(key, entry)
        while len(self._cache) > self.settings.cache_size:
            oldest = next(iter(self._cache))
            if oldest == key:
                break
            await self._evict(oldest)

    def show_kept(self, link: InstanceLink) -> bool:
        """Show ``link``'s kept consoles at once (no await: the switch goes out in the
        frame that moves the table's cursor); False when ``show`` has work to do."""
        if link.conn is None or self.tiled:
            return False
        key = (link.name, id(link.conn))
        entry = self._cache.get(key)
        if entry is None or not entry.is_attached:
            return False
        self._shown = key
        self.link = link
        self._display(key, entry)
        return True

    def _display(self, key: tuple[str, int], entry: InstanceConsoles) -> None:
        """Make ``entry`` (kept under ``key``) the consoles shown, repainted in full."""
        self._cache.move_to_end(key)
        self.query_one("#console-stack", ContentSwitcher).current = entry.id
        for view in entry.query(ConsoleWidget):
            if hasattr(view, "wake"):
                view.wake()
        self._update_note()

    async def _evict(self, key: tuple[str, int]) -> None:
        entry = self._cache.pop(key, None)
        if entry is not None and entry.is_attached:
            await entry.remove()

    def kept(self) -> list[str]:
        """Names of the instances whose consoles are kept, least recent first."""
        return [k[0] for k in self._cache]

    @property
    def tiles(self) -> ConsoleTiles:
        return self.query_one("#console-tiles", ConsoleTiles)

    @property
    def tiled(self) -> bool:
        return bool(self.tiles.tiles)

    def _update_note(self) -> None:
        link = self.link
        if link is None:
            return
        if self.tiled:
            n = len(self.tiles.tiles)
            self._typing(False)
            zoom = "  [b]zoomed[/] (z: all tiles)" if self.tiles.zoomed else ""
            self._note(
                f"[b]{n} tile{'s' if n != 1 else ''}[/]{zoom}  [dim]the instance picked goes "
                "into the active tile · s split · w close · o next · z zoom · Enter types[/]"
            )
            return
        view = self.active_view()
        typing = view is not None and view.has_focus
        self._typing(typing)
        ch = escape(getattr(view, "channel", ""))
        esc = escape(getattr(view, "escape_display", "Ctrl+]"))
        name = escape(link.name)
        if link.conn is None:
            self._note(f"[b]{name}[/]  log only: the instance is not connected")
        elif typing:
            self._note(f" TYPING ▸ {name}/{ch}: every key goes to the guest · {esc} leaves")
        else:
            self._note(
                f"[b]{name}[/]/{ch}  [dim]Enter types into it · {esc} leaves · "
                "←/→ channel · / search · c copy[/]"
            )

    def _typing(self, typing: bool) -> None:
        # On the note, not on the pane: a class on the pane restyles every kept console
        # under it (~10 ms at each Enter and Ctrl+], keys typed meanwhile waited).
        self.query_one("#console-note", Static).set_class(typing, "-typing")

    @property
    def typing(self) -> bool:
        """Keys go to a guest (the note says so)."""
        return self.query_one("#console-note", Static).has_class("-typing")

    def current_tabs(self) -> InstanceConsoles | None:
        stack = self.query_one("#console-stack", ContentSwitcher)
        if stack.current is None:
            return None
        try:
            return stack.query_one(f"#{stack.current}", InstanceConsoles)
        except Exception:
            return None

    async def action_split(self) -> None:
        """Split the console area: the console shown becomes a tile, the new tile
        shows the selected instance's channel (the next channel when it is the same)."""
        link = self.link
        if link is None or (link.conn is None and link.inst.alive()):
            self.notify("no console to split", severity="warning")
            return
        tiles = self.tiles
        st = self.settings
        view = self.active_view()
        channel = getattr(view, "channel", None)
        from emutui.tui.widgets.console_tiles import MAX_TILES, _channels

        chans = _channels(link)
        if not chans:
            self.notify(f"{link.name} has no serial channels", severity="warning")
            return
        if not self.tiled:
            first = channel if channel in chans else chans[0]
            await tiles.add_tile(link, first, st)
            self.query_one("#console-stack", ContentSwitcher).display = False
            tiles.display = True
            nxt = chans[(chans.index(first) + 1) % len(chans)]
        else:
            if len(tiles.tiles) >= MAX_TILES:
                self.notify(f"at most {MAX_TILES} tiles", severity="warning")
                return
            active = tiles.active
            nxt = active.channel if active is not None and active.link is link else chans[0]
            if active is not None and active.link is link:
                nxt = chans[(chans.index(nxt) + 1) % len(chans)] if nxt in chans else chans[0]
        await tiles.add_tile(link, nxt, st)
        self._update_note()
        if tiles.active is not None:
            self.screen.set_focus(tiles.active)

    async def action_close_tile(self) -> None:
        if not self.tiled:
            return
        tiles = self.tiles
        await tiles.close_active()
        if len(tiles.tiles) <= 1:
            # Back to one console: the kept consoles of the instance picked.
            while tiles.tiles:
                tiles.active = tiles.tiles[0]
                await tiles.close_active()
            tiles.display = False
            self.query_one("#console-stack", ContentSwitcher).display = True
            self._shown = None
            await self.show(self.link)
            self.focus_tabs()
        elif tiles.active is not None:
            self.screen.set_focus(tiles.active)
        self._update_note()

    def action_next_tile(self) -> None:
        if self.tiled:
            tile = self.tiles.next_tile()
            if tile is not None:
                self.screen.set_focus(tile)

    def action_zoom(self) -> None:
        if self.tiled:
            self.tiles.toggle_zoom()
            self._update_note()

    def tabs_widget(self) -> Widget | None:
        """The current instance's channel tabs (focus goes there on leaving a console)."""
        tabs = self.current_tabs()
        if tabs is None:
            return None
        try:
            return tabs.query_one(Tabs)
        except Exception:
            return None

    def focus_tabs(self) -> None:
        if self.tiled and self.tiles.active is not None:
            self.screen.set_focus(self.tiles.active)
            return
        target = self.tabs_widget()
        if target is not None:
            self.screen.set_focus(target)

    def active_view(self) -> Any:
        if self.tiled:
            active = self.tiles.active
            return active.view if active is not None else None
        tabs = self.current_tabs()
        if tabs is None:
            return None
        pane = tabs.active_pane
        if pane is None:
            return None
        views = list(pane.query(ConsoleWidget))
        return views[0] if views else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # While typing, these keys are the guest's: keep them out of the footer.
        if isinstance(self.app.focused, ConsoleWidget):
            return False
        if action in ("close_tile", "next_tile", "zoom"):
            return self.tiled
        return True

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        self._update_note()

    def on_descendant_blur(self, event: events.DescendantBlur) -> None:
        self._update_note()

    @on(TabbedContent.TabActivated)
    def _tab(self, event: TabbedContent.TabActivated) -> None:
        view = self.active_view()
        if view is not None and hasattr(view, "wake"):
            self.call_after_refresh(view.wake)
        self._update_note()

    def action_search(self) -> None:
        view = self.active_view()
        if view is None or not hasattr(view, "search"):
            return
        from emutui.tui.screens.dialogs import PromptScreen

        def done(text: str | None) -> None:
            if text is None:
                return
            if not text:
                view.clear_search()
            elif not view.search(text):
                self.notify(f"{text!r} is not in the scrollback", severity="warning", markup=False)

        self.app.push_screen(PromptScreen("Search the scrollback (older first)", ""), done)

    def action_search_next(self) -> None:
        view = self.active_view()
        if view is not None and hasattr(view, "search_next") and not view.search_next():
            self.notify("no earlier match", severity="warning")
        elif getattr(view, "search_wrapped", False):
            self.notify("search wrapped: from the oldest back to the newest match", timeout=3)

    def action_search_prev(self) -> None:
        view = self.active_view()
        if view is not None and hasattr(view, "search_next") and not view.search_next(False):
            self.notify("no later match", severity="warning")
        elif getattr(view, "search_wrapped", False):
            self.notify("search wrapped: from the newest back to the oldest match", timeout=3)

    def _copy(self, everything: bool) -> None:
        view = self.active_view()
        if view is None or not hasattr(view, "copy_text"):
            return
        from emutui.tui.clipboard import describe

        text = view.copy_text(everything=everything)
        what = (
            "the whole scrollback"
            if everything
            else "the selection"
            if view.text_selection is not None
            else "the lines in view"
        )
        self.notify(
            f"copied {what}, {describe(text)}, {view.copied_to}"
            + ("" if everything else ". C copies the whole scrollback"),
            timeout=8,
            markup=False,
        )

    def action_copy(self) -> None:
        self._copy(False)

    def action_copy_all(self) -> None:
        self._copy(True)

    def action_live(self) -> None:
        view = self.active_view()
        if view is not None and hasattr(view, "scroll_to_live"):
            view.scroll_to_live()

    def action_enter_console(self) -> None:
        view = self.active_view()
        if view is not None:
            # At once: keys that came in the same read as Enter are the guest's.
            self.screen.set_focus(view)

    @on(ConsoleWidget.Leave)
    def _leave(self, event: Message) -> None:
        event.stop()
        self._update_note()
        self.post_message(self.Left())


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", s)
