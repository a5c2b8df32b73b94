"""Console pane: one tab per serial channel of the focused instance.

The terminal itself is ``ConsoleView`` (emutui/tui/widgets/console.py, the
console widget's own module). Until that module exists, ``SerialLogView``
stands in: it shows the channel's log file and sends typed keys to the guest.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from rich.markup import escape
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Log, Static, TabbedContent, TabPane

from emutui.backends.base import SerialStream
from emutui.core.errors import EmutuiError
from emutui.core.instance import Instance
from emutui.tui.links import InstanceLink

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


class ConsolePane(Vertical):
    # These apply while the console is not focused (after Ctrl+]): inside it every
    # key belongs to the guest. "/" searches the scrollback here, as in less.
    BINDINGS = [
        Binding("enter", "enter_console", "Enter console"),
        Binding("slash", "search", "Search", key_display="/"),
        Binding("n", "search_next", "Next match", show=False),
        Binding("N", "search_prev", "Previous match", show=False),
        Binding("c", "copy", "Copy"),
        Binding("end", "live", "Live", show=False),
    ]

    class Left(Message):
        """The user left a console with Ctrl+]."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.link: InstanceLink | None = None
        self._shown: tuple[str, int] | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="console-note", classes="status-line")
        yield TabbedContent(id="console-tabs")

    async def show(self, link: InstanceLink | None, force: bool = False) -> None:
        """Tabs for ``link``'s serial channels; kept as they are if nothing changed."""
        # Consoles are built once the connector exists (or the instance is dead:
        # then they show the log only), not once before and again after connecting.
        if link is not None and link.conn is None and link.inst.alive():
            return
        key = (link.name, id(link.conn)) if link else None
        if key == self._shown and not force:
            return
        self._shown = key
        self.link = link
        tabs = self.query_one("#console-tabs", TabbedContent)
        await tabs.clear_panes()
        note = self.query_one("#console-note", Static)
        if link is None:
            note.update("no instance selected", layout=False)
            return
        channels = (
            link.conn.serial_channels()
            if link.conn
            else (link.inst.handles.serial_channels() if link.inst.handles else [])
        )
        if not channels:
            note.update(f"{escape(link.name)} has no serial channels", layout=False)
            return
        if link.conn is None:
            note.update(
                f"[b]{escape(link.name)}[/]  log only: the instance is not connected", layout=False
            )
        else:
            note.update(
                f"[b]{escape(link.name)}[/]  Enter: type into the console  "
                "[dim]Ctrl+] leaves it[/]",
                layout=False,
            )
        for ch in channels:
            view = ConsoleWidget(link.inst, ch, link.conn, id=f"con-{_safe(link.name)}-{_safe(ch)}")
            await tabs.add_pane(TabPane(ch, view, id=f"tab-{_safe(ch)}"))

    def active_view(self) -> Any:
        tabs = self.query_one("#console-tabs", TabbedContent)
        pane = tabs.active_pane
        if pane is None:
            return None
        views = list(pane.query(ConsoleWidget))
        return views[0] if views else None

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

    def action_search_prev(self) -> None:
        view = self.active_view()
        if view is not None and hasattr(view, "search_next") and not view.search_next(False):
            self.notify("no later match", severity="warning")

    def action_copy(self) -> None:
        view = self.active_view()
        if view is not None and hasattr(view, "copy_text"):
            text = view.copy_text()
            self.notify(f"copied {len(text or '')} characters to the clipboard", markup=False)

    def action_live(self) -> None:
        view = self.active_view()
        if view is not None and hasattr(view, "scroll_to_live"):
            view.scroll_to_live()

    def action_enter_console(self) -> None:
        view = self.active_view()
        if view is not None:
            view.focus()

    @on(ConsoleWidget.Leave)
    def _leave(self, event: Message) -> None:
        event.stop()
        self.post_message(self.Left())


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", s)
