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
import re
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from rich.json import JSON
from rich.markup import escape
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
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
TIME_WIDTH = 12  # hh:mm:ss.mmm
DATA_CHARS = 1000  # of an event's compact data in its row (wider than any terminal)
DETAIL_LINES = 500  # the detail shows at most this many lines of one event
DETAIL_JSON_CHARS = 32_000  # above this, the JSON is shown without highlighting


def _more(n: int) -> str:
    return f"\n… {n} more lines (all of it: emutui shell, or the CLI with --json)"


REPLY = "⇐ reply"
ERROR = "⇐ error"


def event_time(ts: float, frozen: bool = False) -> str:
    lt = time.gmtime(ts) if frozen else time.localtime(ts)  # frozen: snapshots in any TZ
    return f"{lt.tm_hour:02d}:{lt.tm_min:02d}:{lt.tm_sec:02d}.{int(ts * 1000) % 1000:03d}"


def event_data_text(ev: Event) -> str:
    if not ev.data:
        return ""
    return json.dumps(ev.data, separators=(",", ":"), default=str)


def event_time_long(ts: float, frozen: bool = False) -> str:
    """The detail's time: date, time to the millisecond, and the zone."""
    lt = time.gmtime(ts) if frozen else time.localtime(ts)
    zone = "UTC" if frozen else time.strftime("%Z", lt)
    return time.strftime("%Y-%m-%d %H:%M:%S", lt) + f".{int(ts * 1000) % 1000:03d} {zone}"


def reply_lines(ev: Event) -> list[str] | None:
    """A monitor's text answer (HMP ``!info registers``, Renode ``peripherals``) as lines;
    None for anything else (JSON answers, events)."""
    if ev.name != REPLY or not isinstance(ev.data, dict):
        return None
    text = ev.data.get("return")
    if not isinstance(text, str) or not text.strip():
        return None
    lines = [ln.rstrip() for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    while lines and not lines[0]:
        del lines[0]
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) == 1 and len(lines[0]) < 60:
        return None  # a one-word answer reads fine inline
    return [_CONTROLS.sub("", ln.expandtabs(8)) for ln in lines]


_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")  # a reply is shown, never let at the terminal


def compile_filter(text: str) -> tuple[re.Pattern[str] | None, str]:
    """The filter as a case-insensitive regular expression (``stop|resume``); text that is
    not a valid one is matched literally. Returns (pattern, note for the status line)."""
    if not text:
        return None, ""
    try:
        return re.compile(text, re.IGNORECASE), ""
    except re.error:
        return re.compile(re.escape(text), re.IGNORECASE), "literal: not a valid regex"


def matches(ev: Event, needle: str | re.Pattern[str] | None) -> bool:
    if not needle:
        return True
    pat = needle if isinstance(needle, re.Pattern) else compile_filter(needle)[0]
    assert pat is not None
    if pat.search(ev.name):
        return True
    if ev.name == REPLY and isinstance(ev.data, dict):
        # a text answer is searched as text, not as its JSON-escaped form
        ret = ev.data.get("return")
        if isinstance(ret, str) and pat.search(ret):
            return True
    return pat.search(event_data_text(ev)) is not None


class EventList(ScrollView, can_focus=True):
    """Rows ``time  NAME  {compact data}``; a cursor row whose event the detail shows.

    A text answer from the monitor takes one row for its command and one per line
    of text below it (``rows`` holds ``(event, line)``, line -1 for the event's own row).
    """

    # no horizontal scrollbar: rows are cut at the width (the detail shows all)
    DEFAULT_CSS = "EventList { scrollbar-size-vertical: 1; overflow-x: hidden; }"

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
        self.rows: list[tuple[Event, int]] = []
        self._lines: dict[int, list[str]] = {}  # id(event) -> its text lines
        self._data_cache: dict[int, str] = {}
        self._data_cache_ev: dict[int, Event] = {}  # the event the id was of (ids get reused)
        self.follow = True
        self.frozen_time = frozen_time

    def _add_rows(self, evs: Iterable[Event]) -> None:
        rows = self.rows
        for ev in evs:
            rows.append((ev, -1))
            lines = reply_lines(ev)
            if lines:
                self._lines[id(ev)] = lines
                rows.extend((ev, i) for i in range(len(lines)))

    def set_items(self, items: list[Event]) -> None:
        self.items = items
        self.rows = []
        self._lines = {}
        self._add_rows(items)
        self._resize()
        n = len(self.rows)
        self.cursor = n - 1 if self.follow else min(self.cursor, n - 1)
        if self.follow:
            self.scroll_end(animate=False, immediate=True)
        self.refresh()

    def extend(self, new: Iterable[Event]) -> None:
        new = list(new)
        if not new:
            return
        self.items.extend(new)
        self._add_rows(new)
        dropped = 0
        if len(self.items) > MAX_EVENTS:
            gone = self.items[: len(self.items) - MAX_EVENTS]
            del self.items[: len(gone)]
            for ev in gone:
                dropped += 1 + len(self._lines.pop(id(ev), ()))
            del self.rows[:dropped]
        self._resize()
        if self.follow:
            self.cursor = len(self.rows) - 1
            self.scroll_end(animate=False, immediate=True)
        elif dropped:
            self.cursor = max(-1, self.cursor - dropped)
        self.refresh()

    def _resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.rows))

    def on_resize(self) -> None:
        self._resize()

    def selected(self) -> Event | None:
        if 0 <= self.cursor < len(self.rows):
            return self.rows[self.cursor][0]
        return None

    def _data_text(self, ev: Event) -> str:
        """The row's compact data, at most a row's worth; big ones made once, not per frame."""
        key = id(ev)
        text = self._data_cache.get(key)
        if text is None or self._data_cache_ev.get(key) is not ev:
            text = event_data_text(ev)[:DATA_CHARS]
            if len(self._data_cache) > 4096:
                self._data_cache.clear()
                self._data_cache_ev.clear()
            self._data_cache[key] = text
            self._data_cache_ev[key] = ev
        return text

    def row_of(self, ev: Event) -> int:
        """The row of an event's own line (-1 if it is not shown)."""
        for i in range(len(self.rows) - 1, -1, -1):
            if self.rows[i][0] is ev and self.rows[i][1] == -1:
                return i
        return -1

    def show_row_at_top(self, row: int) -> None:
        self.cursor = row
        self.scroll_to(y=row, animate=False, immediate=True)

    def row_text(self, row: int) -> str:
        """The plain text of one row (tests)."""
        strip = self.render_line(row - int(self.scroll_offset.y))
        return "".join(seg.text for seg in strip).rstrip()

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
        if not self.rows:
            return
        self.cursor = max(0, min(len(self.rows) - 1, self.cursor + delta))
        if self.cursor < len(self.rows) - 1:
            self.post_message(self.UserMoved())
        self._keep_visible()

    def action_move_page(self, direction: int) -> None:
        self.action_move(direction * max(1, self.scrollable_content_region.height))

    def action_first(self) -> None:
        self.action_move(-len(self.rows))

    def action_last(self) -> None:
        self.action_move(len(self.rows))

    def action_toggle_detail(self) -> None:
        self.post_message(self.ToggleDetail())

    def on_click(self, event: events.Click) -> None:
        row = int(self.scroll_offset.y) + event.y
        if 0 <= row < len(self.rows):
            self.cursor = row
            if row < len(self.rows) - 1:
                self.post_message(self.UserMoved())

    def render_line(self, y: int) -> Strip:
        base = self.rich_style
        width = self.size.width
        row = int(self.scroll_offset.y) + y
        if not 0 <= row < len(self.rows):
            return Strip.blank(width, base)
        ev, part = self.rows[row]
        if row == self.cursor and self.has_focus:
            base = base + Style(reverse=True)
        elif row == self.cursor:
            base = base + Style(underline=True)
        if part >= 0:
            # one line of a text answer, under its command
            line = self._lines.get(id(ev), [""])[part]
            segs = [Segment(" " * (TIME_WIDTH + 1 + NAME_WIDTH + 1), base), Segment(line, base)]
            return Strip(segs).crop_extend(0, width, base)
        name_style = base + Style(bold=True, color=_name_color(ev.name))
        if id(ev) in self._lines and isinstance(ev.data, dict):
            data = str(ev.data.get("command", ""))
        else:
            data = self._data_text(ev)
        segs = [
            Segment(event_time(ev.timestamp, self.frozen_time) + " ", base + Style(dim=True)),
            Segment(f"{ev.name[:NAME_WIDTH]:<{NAME_WIDTH}} ", name_style),
            Segment(data[: max(0, width)], base),
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
    """The monitor command line: Up/Down walk the history, Right accepts a completion.

    Enter takes the line and clears it right away, in the same key handler: keys typed
    after Enter (even in the same read from the terminal) start the next line, and the
    reply, whenever it comes, never touches what is being typed.
    """

    BINDINGS = [
        Binding("up", "history(-1)", "Prev", show=False),
        Binding("down", "history(1)", "Next", show=False),
    ]

    class Run(Message):
        def __init__(self, line: str) -> None:
            super().__init__()
            self.line = line

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.history: list[str] = []
        self._pos = 0

    async def _on_key(self, event: events.Key) -> None:
        # Enter here, in the widget's own key order, not as a binding: a binding is
        # only looked up after the key has gone round the message queues, by which
        # time the keys typed after it are already in the line.
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.action_run()
            return
        await super()._on_key(event)

    def action_run(self) -> None:
        line = self.value.strip()
        self.remember(line)
        self.value = ""
        self.post_message(self.Run(line))

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


class FilterInput(Input):
    """The filter box. Enter and Esc are priority bindings, run by the App before it
    forwards the next key: Textual forwards each key to the focused widget as it
    leaves the App's queue, so with ordinary bindings (reached only when the key has
    bubbled back up) the keys typed right behind Enter, in the same read or before
    the next frame, went into the filter too. The pane moves focus synchronously."""

    BINDINGS = [
        Binding("enter", "done", "Done", show=False, priority=True),
        Binding("escape", "clear", "Clear", show=False, priority=True),
    ]

    def action_done(self) -> None:
        self.query_ancestor(EventsPane).filter_done()

    def action_clear(self) -> None:
        self.query_ancestor(EventsPane).action_close_inputs()


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
        self._filter: re.Pattern[str] | None = None
        self._filter_note = ""
        self.paused = False
        self.pending = 0
        self.frozen_time = frozen_time
        self.detail_open = False

    def compose(self) -> ComposeResult:
        yield FilterInput(
            placeholder="filter: regex over name and data, e.g. stop|resume (Esc clears)",
            id="ev-filter",
            classes="hidden",
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
        f = self._filter
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
        f = self._filter
        self.pending = 0
        self.event_list.set_items([e for e in st if matches(e, f)] if f else list(st))
        self._update_status()

    def _update_status(self) -> None:
        lst = self.event_list
        n = len(lst.items)
        parts = [f"{n} event{'' if n == 1 else 's'}"]
        if self.paused:
            parts.append(f"[b yellow]paused[/] ({self.pending} new)")
        elif lst.follow:
            parts.append("following")
        if self.filter_text:
            note = f" [dim]({self._filter_note})[/]" if self._filter_note else ""
            parts.append(f"filter: [b]{escape(self.filter_text)}[/]{note}  [dim]Esc clears[/]")
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
        when = event_time_long(ev.timestamp, self.frozen_time)
        lines = reply_lines(ev)
        if lines is not None and isinstance(ev.data, dict):
            # a text answer reads as text: the command, then its lines
            head = Text.assemble(
                (ev.name, "bold magenta"), "  ", (str(ev.data.get("command", "")), "bold")
            )
            head.append(f"\n{when}  {ev.source}\n\n", "dim")
            head.append("\n".join(lines[:DETAIL_LINES]))
            if len(lines) > DETAIL_LINES:
                head.append(_more(len(lines) - DETAIL_LINES), "dim italic")
            text.update(head)
            return
        body = {"time": when, "name": ev.name, "source": ev.source, "data": ev.data}
        raw = json.dumps(body, default=str)
        if len(raw) <= DETAIL_JSON_CHARS:
            text.update(JSON(raw))
            return
        # A big answer (query-qmp-schema is ~200 KB): highlighting and laying out all
        # of it froze the app for seconds; the first lines, plainly, and how to get all.
        pretty = json.dumps(body, indent=2, default=str).splitlines()
        shown = Text("\n".join(pretty[:DETAIL_LINES]))
        if len(pretty) > DETAIL_LINES:
            shown.append(_more(len(pretty) - DETAIL_LINES), "dim italic")
        text.update(shown)

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
        self.screen.set_focus(box)  # at once: keys right behind "/" are the filter's

    def action_command(self) -> None:
        if self.link is None or Capability.COMMANDS not in self.link.capabilities:
            self.app.notify("this instance has no monitor to send commands to", severity="warning")
            return
        box = self.query_one(CommandInput)
        box.remove_class("hidden")
        self.screen.set_focus(box)  # at once: keys right behind ":" are the command's
        if not isinstance(box.suggester, EngineSuggester):
            self._load_engine(self.link)

    @work(group="ev-engine", exclusive=True, exit_on_error=False)
    async def _load_engine(self, link: InstanceLink) -> None:
        engine = await completion_engine(link.conn)
        if engine is not None and link is self.link:
            self.query_one(CommandInput).suggester = EngineSuggester(engine)

    def action_close_inputs(self) -> None:
        """Esc: close the command line; in the filter box, or with a filter on, clear it."""
        box = self.query_one("#ev-filter", Input)
        cmd = self.query_one(CommandInput)
        if cmd.has_focus:
            cmd.add_class("hidden")
        elif self.filter_text or box.has_focus:
            self._clear_filter()
            # Keys typed before this Esc in the same read are still queued for the box
            # and land after it: clear again once they are in.
            box.call_later(self._clear_filter)
        else:
            cmd.add_class("hidden")
        # set_focus, not focus(): focus() is deferred, and keys already queued behind
        # the Esc would still go to the box.
        self.screen.set_focus(self.event_list)

    def _clear_filter(self) -> None:
        box = self.query_one("#ev-filter", Input)
        box.value = ""
        self.set_filter("")
        box.add_class("hidden")

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip()
        self._filter, self._filter_note = compile_filter(self.filter_text)
        self._rebuild()

    @on(Input.Changed, "#ev-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.set_filter(event.value)

    def filter_done(self) -> None:
        """Enter in the filter box: keep the filter (an empty one closes the box) and
        give the keyboard back to the list now, for the very next key."""
        box = self.query_one("#ev-filter", Input)
        self.screen.set_focus(self.event_list)
        # Keys typed before this Enter in the same read are still queued for the box:
        # whether the filter is empty is known once they are in.
        box.call_later(self._close_empty_filter)

    def _close_empty_filter(self) -> None:
        box = self.query_one("#ev-filter", Input)
        if not box.value.strip():
            box.add_class("hidden")

    @on(CommandInput.Run)
    def _command_submitted(self, event: CommandInput.Run) -> None:
        event.stop()
        if event.line:
            self.run_command(event.line)

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
        row = lst.row_of(ev)
        if row >= 0:
            if reply_lines(ev):
                lst.show_row_at_top(row)  # a text answer: from its first line
            else:
                lst.cursor = len(lst.rows) - 1 if lst.follow else row
        if not self.detail_open:
            self._toggle_detail()
        else:
            self._show_detail(ev)

    def detail_text(self) -> str:
        """The detail panel as plain text (tests)."""
        st = self.query_one("#ev-detail-text", Static)
        r = st.renderable if hasattr(st, "renderable") else st.render()
        if isinstance(r, JSON):
            return r.text.plain
        return r.plain if isinstance(r, Text) else str(r)

    def visible_names(self) -> list[str]:
        return [e.name for e in self.event_list.items]
