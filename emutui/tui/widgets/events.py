"""Events pane: live events (time, name, compact data), filter, pause/follow, JSON detail,
and a command line for the monitor with history and completion.

The list is a Line-API view over a bounded list of events: ingesting is an
append plus one refresh, so 10k events/s cost a few list operations per
batch, and a frame renders only the visible rows (specs/tui-notes.md 2.2:
RichLog costs ~0.65 ms per write and ~2.9 KB per line; this costs neither).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from rich.json import JSON
from rich.markup import escape
from rich.segment import Segment
from rich.style import Style
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.suggester import Suggester, SuggestFromList
from textual.widgets import Input, Static

from emutui.core.errors import EmutuiError
from emutui.core.model import Capability, Event
from emutui.tui.links import InstanceLink

MAX_EVENTS = 10_000
NAME_WIDTH = 18
REPLY = "⇐ reply"
ERROR = "⇐ error"


def event_time(ts: float, frozen: bool = False) -> str:
    lt = time.gmtime(ts) if frozen else time.localtime(ts)  # frozen: snapshots in any TZ
    return f"{lt.tm_hour:02d}:{lt.tm_min:02d}:{lt.tm_sec:02d}.{int(ts * 1000) % 1000:03d}"


def event_data_text(ev: Event) -> str:
    if not ev.data:
        return ""
    return json.dumps(ev.data, separators=(",", ":"), default=str)


def matches(ev: Event, needle: str) -> bool:
    if not needle:
        return True
    n = needle.lower()
    return n in ev.name.lower() or n in event_data_text(ev).lower()


class EventList(ScrollView, can_focus=True):
    """Rows ``time  NAME  {compact data}``; a cursor row whose event the detail shows."""

    DEFAULT_CSS = "EventList { scrollbar-size-vertical: 1; }"

    BINDINGS = [
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("pagedown", "move_page(1)", "PgDn", show=False),
        Binding("pageup", "move_page(-1)", "PgUp", show=False),
        Binding("home", "first", show=False),
        Binding("end", "last", show=False),
        Binding("enter", "toggle_detail", "JSON"),
    ]

    cursor: reactive[int] = reactive(-1)

    class Selected(Message):
        def __init__(self, event: Event | None) -> None:
            super().__init__()
            self.event = event

    class ToggleDetail(Message):
        pass

    class UserMoved(Message):
        """The user moved off the last row: stop following."""

    def __init__(self, *, id: str | None = None, frozen_time: bool = False) -> None:
        super().__init__(id=id)
        self.items: list[Event] = []
        self.follow = True
        self.frozen_time = frozen_time

    def set_items(self, items: list[Event]) -> None:
        self.items = items
        self._resize()
        self.cursor = len(items) - 1 if self.follow else min(self.cursor, len(items) - 1)
        if self.follow:
            self.scroll_end(animate=False, immediate=True)
        self.refresh()

    def extend(self, new: Iterable[Event]) -> None:
        before = len(self.items)
        self.items.extend(new)
        dropped = 0
        if len(self.items) > MAX_EVENTS:
            dropped = len(self.items) - MAX_EVENTS
            del self.items[:dropped]
        if len(self.items) == before and not dropped:
            return
        self._resize()
        if self.follow:
            self.cursor = len(self.items) - 1
            self.scroll_end(animate=False, immediate=True)
        elif dropped:
            self.cursor = max(-1, self.cursor - dropped)
        self.refresh()

    def _resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.items))

    def on_resize(self) -> None:
        self._resize()

    def selected(self) -> Event | None:
        if 0 <= self.cursor < len(self.items):
            return self.items[self.cursor]
        return None

    def watch_cursor(self, old: int, new: int) -> None:
        top = int(self.scroll_offset.y)
        for row in (old, new):
            self.refresh(Region(0, row - top, self.size.width, 1))
        self.post_message(self.Selected(self.selected()))

    def _keep_visible(self) -> None:
        top = int(self.scroll_offset.y)
        h = max(1, self.scrollable_content_region.height)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + h:
            self.scroll_to(y=self.cursor - h + 1, animate=False, immediate=True)

    def action_move(self, delta: int) -> None:
        if not self.items:
            return
        self.cursor = max(0, min(len(self.items) - 1, self.cursor + delta))
        if self.cursor < len(self.items) - 1:
            self.post_message(self.UserMoved())
        self._keep_visible()

    def action_move_page(self, direction: int) -> None:
        self.action_move(direction * max(1, self.scrollable_content_region.height))

    def action_first(self) -> None:
        self.action_move(-len(self.items))

    def action_last(self) -> None:
        self.action_move(len(self.items))

    def action_toggle_detail(self) -> None:
        self.post_message(self.ToggleDetail())

    def on_click(self, event: events.Click) -> None:
        row = int(self.scroll_offset.y) + event.y
        if 0 <= row < len(self.items):
            self.cursor = row
            if row < len(self.items) - 1:
                self.post_message(self.UserMoved())

    def render_line(self, y: int) -> Strip:
        base = self.rich_style
        width = self.size.width
        row = int(self.scroll_offset.y) + y
        if row >= len(self.items):
            return Strip.blank(width, base)
        ev = self.items[row]
        if row == self.cursor and self.has_focus:
            base = base + Style(reverse=True)
        elif row == self.cursor:
            base = base + Style(underline=True)
        name_style = base + Style(bold=True, color=_name_color(ev.name))
        segs = [
            Segment(event_time(ev.timestamp, self.frozen_time) + " ", base + Style(dim=True)),
            Segment(f"{ev.name[:NAME_WIDTH]:<{NAME_WIDTH}} ", name_style),
            Segment(event_data_text(ev)[: max(0, width)], base),
        ]
        return Strip(segs).crop_extend(0, width, base)


def _name_color(name: str) -> str:
    if name == ERROR or "PANIC" in name or name in ("SHUTDOWN", "GUEST_CRASHLOADED"):
        return "red"
    if name == REPLY:
        return "magenta"
    if name in ("STOP", "RESET", "SUSPEND"):
        return "yellow"
    if name in ("RESUME", "WAKEUP"):
        return "green"
    return "cyan"


class EngineSuggester(Suggester):
    """Inline completion from the shell's completion engine (emutui/shell/completion.py),
    so the TUI's command line and ``emutui shell`` complete the same way."""

    def __init__(self, engine: Any) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.engine = engine

    async def get_suggestion(self, value: str) -> str | None:
        if not value.strip():
            return None
        try:
            cands = await asyncio.wait_for(self.engine.complete_async(value), 1.0)
        except Exception:  # a completion problem must never break typing
            return None
        for c in cands:
            line = value[: c.start] + c.text
            if line.startswith(value) and line != value:
                return line
        return None


async def completion_engine(conn: Any) -> Any:
    """The shared QMP completion engine for a connector, or None (other backends)."""
    if getattr(conn, "execute", None) is None:
        return None
    try:
        from emutui.shell.completion import QmpCompleter
    except ImportError:
        return None
    try:
        return await asyncio.wait_for(QmpCompleter.for_connector(conn), 5.0)
    except Exception:
        return None


class CommandInput(Input):
    """The monitor command line: Up/Down walk the history, Right accepts a completion."""

    BINDINGS = [
        Binding("up", "history(-1)", "Prev", show=False),
        Binding("down", "history(1)", "Next", show=False),
    ]

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.history: list[str] = []
        self._pos = 0

    def remember(self, line: str) -> None:
        if line and (not self.history or self.history[-1] != line):
            self.history.append(line)
        self._pos = len(self.history)

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        self._pos = max(0, min(len(self.history), self._pos + step))
        self.value = self.history[self._pos] if self._pos < len(self.history) else ""
        self.cursor_position = len(self.value)


class EventsPane(Vertical):
    BINDINGS = [
        Binding("f", "follow", "Follow"),
        Binding("space", "pause", "Pause"),
        Binding("slash", "filter", "Filter"),
        Binding("colon", "command", "Command"),
        Binding("escape", "close_inputs", "Close", show=False),
    ]

    def __init__(self, *, id: str | None = None, frozen_time: bool = False) -> None:
        super().__init__(id=id)
        self.link: InstanceLink | None = None
        self.stores: dict[str, deque[Event]] = {}
        self.filter_text = ""
        self.paused = False
        self.pending = 0
        self.frozen_time = frozen_time
        self.detail_open = False

    def compose(self) -> ComposeResult:
        yield Input(
            placeholder="filter by name or text (Esc closes)", id="ev-filter", classes="hidden"
        )
        yield EventList(id="ev-list", frozen_time=self.frozen_time)
        with VerticalScroll(id="ev-detail", classes="hidden"):
            yield Static("", id="ev-detail-text")
        yield Static("", id="ev-status", classes="status-line")
        yield CommandInput(
            placeholder=": monitor command (e.g. query-status, !info pci)",
            id="ev-cmd",
            classes="hidden",
        )

    @property
    def event_list(self) -> EventList:
        return self.query_one(EventList)

    # -- data -------------------------------------------------------------------------

    def store(self, name: str) -> deque[Event]:
        st = self.stores.get(name)
        if st is None:
            st = self.stores[name] = deque(maxlen=MAX_EVENTS)
        return st

    def ingest(self, name: str, evs: list[Event], history: bool = False) -> None:
        st = self.store(name)
        if history:
            # History from events.jsonl goes before anything already live.
            merged = [*evs, *st]
            st.clear()
            st.extend(merged[-MAX_EVENTS:])
            if self.link is not None and self.link.name == name:
                self._rebuild()
            return
        st.extend(evs)
        if self.link is None or self.link.name != name:
            return
        if self.paused:
            self.pending += len(evs)
            self._update_status()
            return
        f = self.filter_text
        self.event_list.extend(evs if not f else (e for e in evs if matches(e, f)))
        self._update_status()

    def show(self, link: InstanceLink | None) -> None:
        self.link = link
        self._rebuild()
        cmd = self.query_one(CommandInput)
        cmd.suggester = SuggestFromList(self._command_names(), case_sensitive=False)
        backend = link.inst.backend if link else ""
        cmd.placeholder = {
            "qemu": ": QMP command (query-status, qom-list path=/machine, !info pci for HMP)",
            "renode": ": Renode monitor command (version, sysbus.uart0 WriteChar 65)",
        }.get(backend, f": {backend} monitor command")

    def refresh_commands(self) -> None:
        self.query_one(CommandInput).suggester = SuggestFromList(
            self._command_names(), case_sensitive=False
        )

    def _command_names(self) -> list[str]:
        return list(self.link.commands) if self.link else []

    def _rebuild(self) -> None:
        st = self.stores.get(self.link.name, ()) if self.link else ()
        f = self.filter_text
        self.pending = 0
        self.event_list.set_items([e for e in st if matches(e, f)] if f else list(st))
        self._update_status()

    def _update_status(self) -> None:
        lst = self.event_list
        parts = [f"{len(lst.items)} events"]
        if self.paused:
            parts.append(f"[b yellow]paused[/] ({self.pending} new)")
        elif lst.follow:
            parts.append("following")
        if self.filter_text:
            parts.append(f"filter: [b]{escape(self.filter_text)}[/]")
        parts.append("[dim]/ filter  : command  space pause  f follow  enter JSON[/]")
        self.query_one("#ev-status", Static).update("  ".join(parts), layout=False)

    # -- list interaction -----------------------------------------------------------------

    @on(EventList.UserMoved)
    def _user_moved(self) -> None:
        if self.event_list.follow:
            self.event_list.follow = False
            self._update_status()

    @on(EventList.ToggleDetail)
    def _toggle_detail(self) -> None:
        self.detail_open = not self.detail_open
        self.query_one("#ev-detail").set_class(not self.detail_open, "hidden")
        self._show_detail(self.event_list.selected())

    @on(EventList.Selected)
    def _selected(self, event: EventList.Selected) -> None:
        if self.detail_open:
            self._show_detail(event.event)

    def _show_detail(self, ev: Event | None) -> None:
        if not self.detail_open:
            return
        text = self.query_one("#ev-detail-text", Static)
        if ev is None:
            text.update("")
            return
        body = {"time": ev.timestamp, "name": ev.name, "source": ev.source, "data": ev.data}
        text.update(JSON(json.dumps(body, default=str)))

    # -- actions ----------------------------------------------------------------------

    def action_follow(self) -> None:
        lst = self.event_list
        lst.follow = not lst.follow
        if lst.follow:
            if self.paused:
                self.paused = False
                self._rebuild()
            lst.action_last()
            lst.follow = True
        self._update_status()

    def action_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            self._rebuild()
        self._update_status()

    def action_filter(self) -> None:
        box = self.query_one("#ev-filter", Input)
        box.remove_class("hidden")
        box.focus()

    def action_command(self) -> None:
        if self.link is None or Capability.COMMANDS not in self.link.capabilities:
            self.app.notify("this instance has no monitor to send commands to", severity="warning")
            return
        box = self.query_one(CommandInput)
        box.remove_class("hidden")
        box.focus()
        if not isinstance(box.suggester, EngineSuggester):
            self._load_engine(self.link)

    @work(group="ev-engine", exclusive=True, exit_on_error=False)
    async def _load_engine(self, link: InstanceLink) -> None:
        engine = await completion_engine(link.conn)
        if engine is not None and link is self.link:
            self.query_one(CommandInput).suggester = EngineSuggester(engine)

    def action_close_inputs(self) -> None:
        for w in self.query("#ev-filter, #ev-cmd"):
            w.add_class("hidden")
        self.event_list.focus()

    @on(Input.Changed, "#ev-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self._rebuild()

    @on(Input.Submitted, "#ev-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            event.input.add_class("hidden")
        self.event_list.focus()

    @on(Input.Submitted, "#ev-cmd")
    def _command_submitted(self, event: Input.Submitted) -> None:
        line = event.value.strip()
        box = self.query_one(CommandInput)
        box.remember(line)
        box.value = ""
        if line:
            self.run_command(line)

    @work(group="ev-cmd", exit_on_error=False)
    async def run_command(self, line: str) -> None:
        link = self.link
        if link is None:
            return
        try:
            result = await link.require().command(line)
            ev = Event(REPLY, {"command": line, "return": result}, source=link.name)
        except EmutuiError as e:
            ev = Event(ERROR, {"command": line, "error": str(e)}, source=link.name)
        self.ingest(link.name, [ev])
        lst = self.event_list
        if ev in lst.items:
            lst.cursor = len(lst.items) - 1 if lst.follow else lst.items.index(ev)
        if not self.detail_open:
            self._toggle_detail()
        else:
            self._show_detail(ev)

    def detail_text(self) -> str:
        """The detail panel as plain text (tests)."""
        st = self.query_one("#ev-detail-text", Static)
        r = st.renderable if hasattr(st, "renderable") else st.render()
        return r.text.plain if isinstance(r, JSON) else str(r)

    def visible_names(self) -> list[str]:
        return [e.name for e in self.event_list.items]
