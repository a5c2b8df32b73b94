"""ConsoleView: one serial channel of an instance, through emutui's terminal emulator.

Data path: a worker reads the SerialStream and appends to a byte backlog; the
backlog is parsed into ``emutui.tui.term.Terminal`` in slices with a CPU budget
(so a flooding guest cannot stall the UI), and the dirty rows are repainted at
most ``FPS`` times a second through the Line API (``render_line``), merging
same-style cells into Segments with a style cache. A repaint is never tied to a
chunk: a repaint per chunk would make the flood backpressure the whole app.

Guest bytes never reach the host terminal: they only ever become cells of the
emulator, and OSC/DCS/APC/PM/SOS strings are parsed and dropped there. The only
escape sequence emutui itself emits on the guest's behalf is none at all; copying
goes out through ``App.copy_to_clipboard`` (OSC 52 written by emutui).

Keys: while focused, every key goes to the guest (Esc and Ctrl+C too), mapped to
the bytes an xterm sends. Local exceptions, as in xterm and telnet:

- ``ctrl+]`` leaves the console (posts ``ConsoleView.Leave`` and blurs);
- ``shift+pageup`` / ``shift+pagedown`` / ``shift+home`` / ``shift+end`` scroll the
  scrollback (the mouse wheel too);
- the App's *priority* bindings (Textual's ``ctrl+q`` quit, the command palette's
  ``ctrl+p``) run before any widget sees the key: a host app should make
  ``check_action`` refuse ``command_palette`` while a ConsoleView has focus so
  that ``^P`` reaches the guest (the test app in tests/tui does this).

Search and copy are methods/actions (``search``, ``search_next``, ``copy_text``,
``scroll_to_live``) for the hosting pane or the command palette to call when the
console is not focused, since no key can be taken from the guest for them.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.color import Color
from rich.segment import Segment
from rich.style import Style as RichStyle
from textual import events, work
from textual.binding import Binding
from textual.color import Color as TColor
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.selection import Selection
from textual.strip import Strip

from emutui.core.errors import BusyError, DisconnectedError, EmutuiError, InstanceDeadError
from emutui.tui.term import Terminal
from emutui.tui.term.styles import (
    BLINK,
    BOLD,
    DIM,
    HIDDEN,
    ITALIC,
    OVERLINE,
    REVERSE,
    STRIKE,
    TRUECOLOR,
    UNDERLINE,
)

if TYPE_CHECKING:
    from textual.widget import Widget

    from emutui.backends.base import Connector, SerialStream
    from emutui.core.instance import Instance

REPLAY_BYTES = 256 * 1024  # serial log tail replayed into the scrollback on mount
FPS = 60  # repaint cap for edits (echo, prompts); Textual's compositor caps at 60 too
# Repaint cap while the whole view scrolls (a flood): every such frame repaints every
# row, ~10-20 ms of compositor time at 100x50, so 60 of them would leave the event
# loop no room for keys and the other panes. 20 fps of scrolling text reads fine.
SCROLL_FPS = 20
# While the user types into one console, flooding consoles elsewhere repaint at this
# rate: a whole-view repaint in progress is what an echo otherwise waits behind.
BACKGROUND_SCROLL_FPS = 5
TYPING_HOLD = 0.5  # seconds after a typed key
_typing_until = [0.0]  # shared by all consoles of the process
# A change of virtual size costs a full layout of the screen (~20 ms at 200x50 here);
# while following a growing scrollback, apply it at most this often.
VSIZE_INTERVAL = 2.0
# A console kept but not shown (another instance is shown) parses its backlog this
# often; what it cannot parse in time is skipped like any backlog (the log keeps it).
HIDDEN_PUMP_INTERVAL = 0.25
TYPING_ELSEWHERE_BREATH = 0.004
PARSE_BUDGET = 0.006  # seconds of parsing per slice before yielding to the loop
PARSE_SLICE = 16 * 1024
# Behind by more than this (the guest floods faster than we parse, or the loop was
# busy): skip to the tail. The chardev logfile keeps every byte, nothing is lost.
MAX_BACKLOG = 1024 * 1024
KEEP_ON_SKIP = 64 * 1024

# Keys an xterm sends (normal cursor-key mode); DECCKM swaps CSI for SS3 on arrows.
_CSI_KEYS = {"up": "A", "down": "B", "right": "C", "left": "D", "home": "H", "end": "F"}
_TILDE_KEYS = {
    "insert": 2,
    "delete": 3,
    "pageup": 5,
    "pagedown": 6,
    "f5": 15,
    "f6": 17,
    "f7": 18,
    "f8": 19,
    "f9": 20,
    "f10": 21,
    "f11": 23,
    "f12": 24,
}
_SS3_F = {"f1": "P", "f2": "Q", "f3": "R", "f4": "S"}
_MODS = {"shift": 1, "alt": 2, "ctrl": 4, "meta": 8}
_CTRL_PUNCT = {
    "ctrl+left_square_bracket": b"\x1b",
    "ctrl+backslash": b"\x1c",
    "ctrl+right_square_bracket": b"\x1d",
    "ctrl+circumflex_accent": b"\x1e",
    "ctrl+underscore": b"\x1f",
}
_LOCAL_SCROLL = {"shift+pageup", "shift+pagedown", "shift+home", "shift+end"}


def key_to_bytes(key: str, character: str | None, app_cursor: bool = False) -> bytes | None:
    """The bytes a terminal sends for a Textual key, or None for keys that send nothing."""
    if character and len(character) == 2 and character[0] == "\x1b":
        # Alt+key that Textual renamed (ESC f is "ctrl+right"): emutui's parser keeps
        # the bytes the terminal sent in the character (emutui/tui/keyinput.py).
        return character.encode("utf-8", "replace")
    parts = key.split("+")
    base = parts[-1]
    mods = 0
    for m in parts[:-1]:
        mods |= _MODS.get(m, 0)
    mod = f";{mods + 1}" if mods else ""
    if base in _CSI_KEYS:
        final = _CSI_KEYS[base]
        if mods:
            return f"\x1b[1{mod}{final}".encode()
        return (
            f"\x1bO{final}"
            if app_cursor and base in ("up", "down", "right", "left")
            else f"\x1b[{final}"
        ).encode()
    if base in _TILDE_KEYS:
        return f"\x1b[{_TILDE_KEYS[base]}{mod}~".encode()
    if base in _SS3_F:
        return (f"\x1b[1{mod}{_SS3_F[base]}" if mods else f"\x1bO{_SS3_F[base]}").encode()
    if key in ("enter", "ctrl+m"):
        return b"\r"
    if key == "backspace":
        return b"\x7f"
    if key in ("ctrl+h", "ctrl+backspace"):
        return b"\x08"
    if key == "tab":
        return b"\t"
    if key == "shift+tab":
        return b"\x1b[Z"
    if key == "escape":
        return b"\x1b"
    if key in ("ctrl+space", "ctrl+at"):
        return b"\x00"
    if character:
        data = character.encode("utf-8", "replace")
        if mods & _MODS["alt"] and not mods & _MODS["ctrl"] and len(character) == 1:
            return b"\x1b" + data
        return data
    if key.startswith("ctrl+") and len(base) == 1 and base.isalpha():
        return bytes((ord(base.lower()) & 0x1F,))
    if key in _CTRL_PUNCT:  # Ctrl+] etc. reach the guest when another key leaves
        return _CTRL_PUNCT[key]
    return None


def _color(c: int) -> Color | None:
    if c < 0:
        return None
    if c >= TRUECOLOR:
        return Color.from_rgb((c >> 16) & 255, (c >> 8) & 255, c & 255)
    return Color.from_ansi(c)


class ConsoleView(ScrollView, can_focus=True):
    """A live serial console: scrollback from the log, then the guest's stream."""

    DEFAULT_CSS = """
    ConsoleView {
        height: 1fr;
        width: 1fr;
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-gutter: stable;
        scrollbar-size-vertical: 1;
    }
    """

    class Leave(Message):
        """The user pressed Ctrl+] to leave the console."""

        def __init__(self, console: ConsoleView) -> None:
            super().__init__()
            self.console = console

        @property
        def control(self) -> ConsoleView:
            return self.console

    class StateChanged(Message):
        """Attached, busy, stopped...: ``state`` is one of ATTACHED/BUSY/STOPPED/ERROR/LOG."""

        def __init__(self, console: ConsoleView, state: str, detail: str = "") -> None:
            super().__init__()
            self.console = console
            self.state = state
            self.detail = detail

        @property
        def control(self) -> ConsoleView:
            return self.console

    # Every key belongs to the guest (see on_key): these are never run as bindings,
    # they only tell the footer what the console keeps for itself while typing.
    BINDINGS: ClassVar[list] = [
        Binding("ctrl+right_square_bracket", "leave", "Leave console", key_display="^]"),
        Binding("shift+pageup", "noop", "Scroll back", key_display="⇧PgUp"),
    ]
    escape_key = "ctrl+right_square_bracket"  # ConsoleSettings.escape_key
    escape_display = "Ctrl+]"

    def __init__(
        self,
        instance: Instance,
        channel: str,
        connector: Connector | None = None,
        *,
        id: str | None = None,
        scrollback: int = 10000,
        name: str | None = None,
        classes: str | None = None,
        escape_key: str | None = None,
        escape_display: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        if escape_key:
            self.escape_key = escape_key
            self.escape_display = escape_display or escape_key
        # Where focus goes when the console is left (set by the hosting pane).
        self.leave_focus: Callable[[], Widget | None] | None = None
        self.instance = instance
        self.channel = channel
        self.connector = connector
        self.terminal = Terminal(80, 24, scrollback)
        self.state = "LOG"
        self._stream: SerialStream | None = None
        self._backlog = bytearray()
        self._out: asyncio.Queue[bytes] = asyncio.Queue()
        self._follow = True
        self._paint_handle: asyncio.TimerHandle | None = None
        self._pump_handle: asyncio.Handle | None = None
        self._last_paint = 0.0
        self._scrolling = False  # the last paint was a whole-view repaint
        self._last_vsize = 0.0
        self._vsize_pending = False
        self._settle_handle: asyncio.TimerHandle | None = None
        self._last_lines = 0
        self._last_dropped = 0
        self._last_cursor: tuple[int, int] = (-1, -1)
        self._style_cache: dict[int, RichStyle] = {}
        self._style_base: RichStyle | None = None
        self._hl_style: RichStyle | None = None
        self._fit_pending = False
        self._match: tuple[int, int, int] | None = None  # (line, start, end) of the last search hit
        self._query = ""
        self.search_wrapped = False  # the last search went round the end (the pane says so)
        self.skipped_bytes = 0
        self.copied_to = ""  # where the last copy went, in words
        self.paints = 0
        # Hooks for benchmarks/tests: called with the monotonic time after each paint.
        self.on_paint: list[Callable[[float], None]] = []

    # -- lifecycle ------------------------------------------------------------------------

    def on_mount(self) -> None:
        self._fit_terminal()
        # Size is only known after the first layout; replay and attach after it.
        self.call_after_refresh(self._attach_serial)

    async def on_unmount(self) -> None:
        for h in (self._paint_handle, self._pump_handle, self._settle_handle):
            if h is not None:
                h.cancel()
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                await stream.close()
            except Exception:
                pass

    def on_resize(self, event: events.Resize) -> None:
        self._fit_terminal()

    def _fit_later(self) -> None:
        self._fit_pending = False
        self._fit_terminal()

    def _fit_terminal(self) -> None:
        region = self.scrollable_content_region
        cols, rows = region.width, region.height
        if cols < 2 or rows < 1:
            return  # hidden or not laid out yet: keep the current size
        scr = self.terminal.screen
        if (cols, rows) != (scr.cols, scr.rows):
            self.terminal.resize(cols, rows)
            self._style_cache.clear()
            self._update_virtual_size(time.monotonic(), force=True)
            self.refresh()

    # -- attaching ------------------------------------------------------------------------

    @work(exclusive=True, group="console-reader", exit_on_error=False)
    async def _attach_serial(self) -> None:
        try:
            await self._attach_and_read()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug, not the guest's doing: say so in the console
            self._set_state("ERROR", repr(e))
            self.notice(f"console stopped: {e!r}")
            raise

    async def _attach_and_read(self) -> None:
        log = self.instance.serial_log(self.channel)
        size0 = _file_size(log)
        stream: SerialStream | None = None
        problem = ""
        if self.connector is not None:
            try:
                stream = await self.connector.serial(self.channel)
            except BusyError:
                problem = f"serial {self.channel} is held by another client"
                self._set_state("BUSY", problem)
            except (DisconnectedError, InstanceDeadError) as e:
                problem = f"instance stopped ({e})"
                self._set_state("STOPPED", problem)
            except EmutuiError as e:
                problem = str(e)
                self._set_state("ERROR", problem)
        # History from before attaching: the tail of the chardev logfile.
        tail, end = await asyncio.to_thread(_read_tail, log, REPLAY_BYTES)
        await self._replay(tail)
        if stream is None:
            if problem:
                self.notice(problem)
            elif self.connector is None:
                self._set_state("LOG", "log only")
            return
        self._stream = stream
        self._set_state("ATTACHED")
        self.run_worker(self._writer(stream), group="console-writer", exit_on_error=False)
        gap = tail[len(tail) - (end - size0) :] if 0 < end - size0 <= len(tail) else b""
        first = True
        while True:
            try:
                chunk = await stream.read(65536)
            except Exception:
                chunk = b""
            if not chunk:
                break
            if first and gap:
                chunk = await self._dedupe(stream, gap, chunk)
            first = False
            self.feed(chunk)
        if self._stream is stream:
            self._stream = None
            self._set_state("STOPPED", "instance stopped")
            self.notice("instance stopped")

    async def _dedupe(self, stream: SerialStream, gap: bytes, chunk: bytes) -> bytes:
        """Drop what both the logfile tail and the socket delivered.

        Bytes the guest printed between our stat of the log and the socket
        connect are in the log only; bytes after the connect are in both. The
        socket's first bytes therefore equal a suffix of ``gap`` (the log bytes
        past the stat). Wait briefly for enough socket data to decide.
        """
        buf = bytearray(chunk)
        deadline = asyncio.get_running_loop().time() + 0.2
        while len(buf) < len(gap):
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            try:
                more = await asyncio.wait_for(stream.read(65536), remaining)
            except TimeoutError:
                break
            if not more:
                break
            buf += more
        return drop_overlap(gap, bytes(buf))

    async def _replay(self, data: bytes) -> None:
        if not data:
            return
        # A tail cut mid-file may start inside a sequence or character: start at a line.
        if len(data) >= REPLAY_BYTES:
            nl = data.find(b"\n")
            if 0 <= nl < 4096:
                data = data[nl + 1 :]
        for i in range(0, len(data), PARSE_SLICE):
            self.terminal.feed(data[i : i + PARSE_SLICE])
            await asyncio.sleep(0)
        self.terminal.take_responses()  # answers to old queries must not go to the guest
        self._schedule_paint()

    async def _writer(self, stream: SerialStream) -> None:
        while True:
            data = await self._out.get()
            try:
                await stream.write(data)
            except EmutuiError as e:
                self.notice(f"cannot write to the guest: {e}")
                return

    def _set_state(self, state: str, detail: str = "") -> None:
        self.state = state
        self.post_message(self.StateChanged(self, state, detail))

    def notice(self, text: str) -> None:
        """An inline message from emutui (not the guest), in reverse video."""
        self.terminal.feed_text(f"\r\n\x1b[0;7m[emutui] {text}\x1b[0m\r\n")
        self._schedule_paint()

    # -- feeding --------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Queue guest output; parsed in budgeted slices, painted on the next frame."""
        self._backlog += data
        if len(self._backlog) > MAX_BACKLOG:
            self._skip_to_tail()
        if self._pump_handle is None:
            if self._visible():
                self._pump()
            else:
                self._pump_handle = asyncio.get_running_loop().call_later(
                    HIDDEN_PUMP_INTERVAL, self._pump
                )

    def _visible(self) -> bool:
        """Shown on the active screen (not in a hidden tab, a switched-away console
        kept for later, or under a modal screen's ... it is still visible there)."""
        node = self
        while node is not None:
            if not node.display:
                return False
            node = node.parent  # type: ignore[assignment]
        return True

    def wake(self) -> None:
        """Shown again: repaint everything, and parse what came meanwhile right after.

        Not before: wake() runs in the switch to this console, and a flooding guest's
        backlog cost that switch a whole parse budget (6 ms, 11-13 ms measured) ahead
        of its frame. The first frame shows the screen as the last hidden pump left
        it (at most HIDDEN_PUMP_INTERVAL old); the next ones catch up."""
        if self._pump_handle is not None:
            self._pump_handle.cancel()
            self._pump_handle = None
        self.terminal.screen.all_dirty = True
        if self._backlog:
            self._pump_handle = asyncio.get_running_loop().call_soon(self._pump)
        self._schedule_paint()
        self._update_virtual_size(time.monotonic(), force=True)

    def _skip_to_tail(self) -> None:
        keep = bytes(self._backlog[-KEEP_ON_SKIP:])
        nl = keep.find(b"\n")
        if 0 <= nl < len(keep) - 1:
            keep = keep[nl + 1 :]
        skipped = len(self._backlog) - len(keep)
        self.skipped_bytes += skipped
        self._backlog = bytearray(keep)
        self.terminal.feed_text(
            f"\x1b[0m\r\n\x1b[2m[emutui] skipped {skipped} bytes to keep up; "
            f"the serial log has them]\x1b[0m\r\n"
        )

    def _pump(self) -> None:
        self._pump_handle = None
        t0 = time.perf_counter()
        term = self.terminal
        backlog = self._backlog
        while backlog:
            piece = bytes(backlog[:PARSE_SLICE])
            del backlog[:PARSE_SLICE]
            term.feed(piece)
            if time.perf_counter() - t0 > PARSE_BUDGET:
                break
        answers = term.take_responses()
        if answers:
            self.send(answers)
        if backlog:
            # Yield to the event loop (keys, other panes), then carry on: at once when
            # shown, after a breath when the user types elsewhere (a key needs several
            # turns of the loop, each behind a slice), rarely when hidden (kept alive,
            # but the screen wins).
            loop = asyncio.get_running_loop()
            if not self._visible():
                self._pump_handle = loop.call_later(HIDDEN_PUMP_INTERVAL, self._pump)
            elif not self.has_focus and _typing_until[0] > time.monotonic():
                self._pump_handle = loop.call_later(TYPING_ELSEWHERE_BREATH, self._pump)
            else:
                self._pump_handle = loop.call_soon(self._pump)
        self._schedule_paint()

    def send(self, data: bytes) -> None:
        """Bytes to the guest (typed keys, paste); dropped when not attached."""
        if self._stream is not None and data:
            self._out.put_nowait(data)

    # -- painting -------------------------------------------------------------------------

    def _schedule_paint(self) -> None:
        if self._paint_handle is not None:
            return
        if not self._visible():
            return  # repainted in full by wake() when shown again
        scr = self.terminal.screen
        if scr.all_dirty or self._scrolling:
            fps = SCROLL_FPS
            if _typing_until[0] > time.monotonic() and not self.has_focus:
                fps = BACKGROUND_SCROLL_FPS
            interval = 1 / fps
        else:
            interval = 1 / FPS
        delay = max(0.0, self._last_paint + interval - time.monotonic())
        self._paint_handle = asyncio.get_running_loop().call_later(delay, self._paint)

    def _paint(self) -> None:
        self._paint_handle = None
        now = time.monotonic()
        self._last_paint = now
        scr = self.terminal.screen
        all_dirty, rows = scr.take_dirty()
        self._scrolling = all_dirty
        moved = self._update_virtual_size(now)
        cursor = (scr.x, scr.y)
        if cursor != self._last_cursor:
            rows.add(cursor[1])
            if 0 <= self._last_cursor[1] < scr.rows:
                rows.add(self._last_cursor[1])
            self._last_cursor = cursor
        if all_dirty or moved:
            self.refresh()
        elif rows:
            base = len(scr.history) - self._view_top()
            width = self.size.width
            height = self.size.height
            regions = [Region(0, base + y, width, 1) for y in rows if 0 <= base + y < height]
            if regions:
                self.refresh(*regions)
        if self._vsize_pending and self._settle_handle is None:
            # Settle the scrollbar once the output pauses (a timer of its own: the
            # paint timer must stay free for the next frame).
            self._settle_handle = asyncio.get_running_loop().call_later(
                VSIZE_INTERVAL, self._settle
            )
        self.paints += 1
        for hook in self.on_paint:
            hook(now)

    def _settle(self) -> None:
        self._settle_handle = None
        if self._vsize_pending:
            self._update_virtual_size(time.monotonic())

    def _view_top(self) -> int:
        """Line number shown in the view's first row.

        While following, the view shows the tail whatever the scroll offset says:
        the virtual size (and so the offset) is only brought up to date every
        VSIZE_INTERVAL, because each change of it costs Textual a full layout."""
        if self._follow:
            return max(0, self.terminal.screen.line_count - self.scrollable_content_region.height)
        return self.scroll_offset.y

    def _update_virtual_size(self, now: float = 0.0, force: bool = False) -> bool:
        """Track scrollback growth; keep following the tail or keep the user's place.
        Returns True when the view's content moved."""
        scr = self.terminal.screen
        lines = scr.line_count
        dropped = scr.history_pushed - len(scr.history)
        if not force and lines == self._last_lines and dropped == self._last_dropped:
            self._vsize_pending = False
            return False
        if self._follow and not force and now - self._last_vsize < VSIZE_INTERVAL:
            self._vsize_pending = True
            return True  # the tail moved: _view_top() already shows it
        self._vsize_pending = False
        self._last_vsize = now
        shift = dropped - self._last_dropped
        self._last_lines = lines
        self._last_dropped = dropped
        self.virtual_size = Size(scr.cols, lines)
        # Scrolling has to wait for the layout that applies the new virtual size
        # (before it the view is not scrollable yet), hence immediate=False.
        if self._follow:
            self.scroll_end(animate=False, immediate=False, x_axis=False)
        elif shift:
            # Lines fell off the front of the scrollback: stay on the same text. At
            # once (the user scrolled here, so the view is scrollable): a deferred
            # scroll would read a stale offset if two paints came before it ran.
            self.scroll_to(y=max(0, self.scroll_offset.y - shift), animate=False, immediate=True)
        return True

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        follow = round(new_value) >= self.max_scroll_y
        if self._follow and not follow and self._vsize_pending:
            # The user scrolled away from a tail the scrollbar had not caught up
            # with: bring the virtual size up to date so offsets mean lines again.
            self._follow = False
            self._update_virtual_size(time.monotonic(), force=True)
        self._follow = follow

    def render_lines(self, crop: Region) -> list[Strip]:
        # The widget's base style costs a DOM walk; look it up once per frame, not per line.
        base = self.rich_style
        if base != self._style_base:
            self._style_cache.clear()
            self._hl_style = None  # the theme may have changed too
            self._style_base = base
        region = self.scrollable_content_region
        scr = self.terminal.screen
        if (region.width, region.height) != (scr.cols, scr.rows) and not self._fit_pending:
            # A size change that came while hidden (or before the first layout) and
            # no Resize since: fit the terminal once this frame is done.
            self._fit_pending = True
            self.call_later(self._fit_later)
        return super().render_lines(crop)

    def _rich_style(self, sid: int) -> RichStyle:
        base = self._style_base
        if base is None:
            base = self._style_base = self.rich_style
        st = self._style_cache.get(sid)
        if st is None:
            fg, bg, flags = self.terminal.screen.table.styles[sid]
            fgc, bgc = _color(fg), _color(bg)
            if flags & REVERSE:
                fgc, bgc = (bgc or base.bgcolor), (fgc or base.color)
            st = base + RichStyle(
                color=fgc,
                bgcolor=bgc,
                bold=bool(flags & BOLD) or None,
                dim=bool(flags & DIM) or None,
                italic=bool(flags & ITALIC) or None,
                underline=bool(flags & UNDERLINE) or None,
                blink=bool(flags & BLINK) or None,
                strike=bool(flags & STRIKE) or None,
                conceal=bool(flags & HIDDEN) or None,
                overline=bool(flags & OVERLINE) or None,
            )
            self._style_cache[sid] = st
        return st

    def render_line(self, y: int) -> Strip:
        scroll_x = self.scroll_offset.x
        idx = self._view_top() + y
        width = self.size.width
        scr = self.terminal.screen
        base = self._style_base
        if base is None:
            base = self._style_base = self.rich_style
        if idx >= scr.line_count or idx < 0:
            return Strip.blank(width, base)
        marks: list[tuple[int, int, RichStyle]] = []
        cursor_line = len(scr.history) + scr.y
        if idx == cursor_line and scr.cursor_visible and self.has_focus:
            marks.append((scr.x, scr.x + 1, RichStyle(reverse=True)))
        if self._match is not None and self._match[0] == idx:
            _, a, b = self._match
            marks.append((a, b, self._highlight_style()))
        selection = self.text_selection
        if selection is not None:
            span = selection.get_span(idx)
            if span is not None:
                a, b = span
                marks.append((a, scr.cols if b == -1 else b, self._highlight_style()))
        if marks:
            segments = self._marked_segments(idx, marks)
        else:
            rs = self._rich_style
            segments = [Segment(text, rs(sid)) for text, sid in scr.line_runs(idx)]
        cells = scr.line_cells(idx)[0]
        if scroll_x == 0 and len(cells) == scr.cols <= width and isinstance(cells, str):
            # The common case: one cell per character, so the length is known and a
            # pad to the widget width replaces crop_extend (one Strip instead of two).
            if width > scr.cols:
                segments.append(Segment(" " * (width - scr.cols), base))
            strip = Strip(segments, width)
        else:
            strip = Strip(segments).crop_extend(scroll_x, scroll_x + width, base)
        return strip.apply_offsets(scroll_x, idx)

    def _marked_segments(self, idx: int, marks: list[tuple[int, int, RichStyle]]) -> list[Segment]:
        # Per-cell path, only for the few lines with a cursor, match or selection.
        cells, styles, _ = self.terminal.screen.line_cells(idx)
        n = len(cells)
        segs: list[Segment] = []
        for x in range(n):
            c = cells[x]
            if not c:
                continue
            sid = styles if isinstance(styles, int) else styles[x]
            st = self._rich_style(sid)
            for a, b, extra in marks:
                if a <= x < b:
                    st = st + extra
            segs.append(Segment(c, st))
        return list(Segment.simplify(segs))

    def _highlight_style(self) -> RichStyle:
        """Search hits and the selection: the theme's accent behind text of the
        contrasting colour, bold, so the cells differ from the background in every
        theme, and in luminance too (NO_COLOR turns colours into greys)."""
        st = self._hl_style
        if st is None:
            try:
                variables = self.app.theme_variables
                bg = TColor.parse(variables.get("accent") or variables["primary"])
            except Exception:
                bg = TColor.parse("#ffa62b")
            if abs(bg.brightness - 0.5) < 0.2:  # mid grey: no contrast either way
                bg = bg.lighten(0.3) if bg.brightness >= 0.5 else bg.darken(0.3)
            fg = TColor(0, 0, 0) if bg.brightness >= 0.5 else TColor(255, 255, 255)
            st = self._hl_style = RichStyle(
                color=fg.rich_color, bgcolor=bg.rich_color, bold=True, reverse=False
            )
        return st

    # -- keys and paste -------------------------------------------------------------------

    def is_escape_key(self, key: str) -> bool:
        return key == self.escape_key

    def leave(self) -> None:
        """Stop typing into the guest: focus moves at once (not after a refresh), so
        the very next key, even one from the same read, is no longer the guest's."""
        target = self.leave_focus() if self.leave_focus is not None else None
        self.screen.set_focus(target)
        self.post_message(self.Leave(self))

    async def on_key(self, event: events.Key) -> None:
        key = event.key
        if self.is_escape_key(key):
            event.stop()
            event.prevent_default()
            self.leave()
            return
        if not self.has_focus:
            # Queued for us before the escape key moved focus away: not the guest's.
            event.stop()
            event.prevent_default()
            self.app.post_message(events.Key(key, event.character))
            return
        if key in _LOCAL_SCROLL:
            event.stop()
            event.prevent_default()
            if key == "shift+end":
                self.scroll_to_live()
                return
            action = {
                "shift+pageup": self.scroll_page_up,
                "shift+pagedown": self.scroll_page_down,
                "shift+home": self.scroll_home,
            }[key]
            # Offsets only mean lines once the virtual size is current (it lags
            # while following a flood), so scroll after the layout that applies it.
            self._update_virtual_size(time.monotonic(), force=True)
            self.call_after_refresh(action, animate=False)
            return
        data = key_to_bytes(key, event.character, self.terminal.screen.app_cursor_keys)
        # Every key belongs to the guest: nothing bubbles to the app's bindings.
        event.stop()
        event.prevent_default()
        if data:
            if not self._follow:
                self.scroll_to_live()
            _typing_until[0] = time.monotonic() + TYPING_HOLD
            self.send(data)

    def on_paste(self, event: events.Paste) -> None:
        event.stop()
        text = event.text.replace("\r\n", "\r").replace("\n", "\r")
        data = text.encode("utf-8", "replace")
        if self.terminal.screen.bracketed_paste:
            data = b"\x1b[200~" + data.replace(b"\x1b[201~", b"") + b"\x1b[201~"
        self.send(data)

    def on_focus(self, event: events.Focus) -> None:
        self.add_class("-typing")
        self.refresh_cursor()

    def on_blur(self, event: events.Blur) -> None:
        self.remove_class("-typing")
        self.refresh_cursor()

    def refresh_cursor(self) -> None:
        scr = self.terminal.screen
        vy = len(scr.history) + scr.y - self._view_top()
        if 0 <= vy < self.size.height:
            self.refresh(Region(0, vy, self.size.width, 1))

    # -- scrollback, search, copy ----------------------------------------------------------

    def scroll_to_live(self) -> None:
        """Back to the live screen (and follow it again)."""
        self._follow = True
        self.scroll_end(animate=False, immediate=False, x_axis=False)

    def action_scroll_to_live(self) -> None:
        self.scroll_to_live()

    def search(self, text: str, backwards: bool = True) -> bool:
        """Find ``text`` in scrollback and screen (case-insensitive), starting from the
        last hit (or the bottom), scroll it into view and highlight it."""
        if not text:
            self._match = None
            self.refresh()
            return False
        start = None if text != self._query or self._match is None else self._match[0]
        self._query = text
        hit = self.terminal.screen.find(text, start, backwards=backwards)
        self.search_wrapped = False
        if hit is None and start is not None:
            hit = self.terminal.screen.find(text, None, backwards=backwards)  # wrap around
            self.search_wrapped = hit is not None  # the pane says so
        if hit is None:
            self._match = None
            self.refresh()
            return False
        line, col = hit
        self._match = (line, col, col + len(text))
        height = self.scrollable_content_region.height
        self._follow = False
        self._update_virtual_size(time.monotonic(), force=True)
        # After the layout that applies the virtual size; watch_scroll_y then decides
        # whether the hit is close enough to the tail to follow it again.
        self.scroll_to(y=max(0, line - height // 2), animate=False, immediate=False)
        self.refresh()
        return True

    def search_next(self, backwards: bool = True) -> bool:
        return self.search(self._query, backwards) if self._query else False

    def clear_search(self) -> None:
        self._match = None
        self._query = ""
        self.refresh()

    @property
    def match(self) -> tuple[int, int, int] | None:
        """(line, start column, end column) of the current search hit."""
        return self._match

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        text = "\n".join(self.terminal.screen.iter_text())
        return selection.extract(text), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self.refresh()

    def screen_text(self) -> str:
        """The lines now in view, trailing blanks removed."""
        scr = self.terminal.screen
        top = self._view_top()
        lines = [
            scr.line_text(i).rstrip()
            for i in range(top, min(scr.line_count, top + self.size.height))
        ]
        return "\n".join(lines).rstrip("\n")

    def all_text(self) -> str:
        """Scrollback and screen, trailing blanks and blank last lines removed;
        soft-wrapped rows joined back into their lines."""
        scr = self.terminal.screen
        out: list[str] = []
        cur = ""
        for i in range(scr.line_count):
            cells, _styles, wrapped = scr.line_cells(i)
            text = cells if isinstance(cells, str) else "".join(cells)
            if wrapped:
                cur += text
                continue
            out.append((cur + text).rstrip())
            cur = ""
        if cur:
            out.append(cur.rstrip())
        return "\n".join(out).rstrip("\n")

    def copy_text(self, everything: bool = False) -> str:
        """Copy the selection, or else the lines in view (``everything``: the whole
        scrollback), to the host clipboard; returns the text. Where it went is
        ``emutui.tui.clipboard.copy_out``'s to say (OSC 52 written by emutui, never
        the guest; under tmux also tmux's paste buffer)."""
        from emutui.tui.clipboard import copy_out

        text = None
        if everything:
            text = self.all_text()
        elif self.text_selection is not None:
            got = self.get_selection(self.text_selection)
            text = got[0] if got else None
        if not text and not everything:
            text = self.screen_text()
        self.copied_to = copy_out(self.app, text or "")
        return text or ""

    def action_copy(self) -> None:
        self.copy_text()


def drop_overlap(gap: bytes, data: bytes) -> bytes:
    """``data`` without its longest prefix that is also a suffix of ``gap``.

    Candidates are found with ``bytes.find`` on a short probe, so a large gap costs
    a few C-level scans, not a quadratic walk."""
    probe = data[:32]
    if len(probe) == 32:
        p = gap.find(probe)
        while p != -1:
            k = len(gap) - p
            if k <= len(data) and data[:k] == gap[p:]:
                return data[k:]
            p = gap.find(probe, p + 1)
    for k in range(min(31, len(gap), len(data)), 0, -1):
        if gap[-k:] == data[:k]:
            return data[k:]
    return data


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_tail(path: Path, n: int) -> tuple[bytes, int]:
    """The last n bytes of a serial log and the size of the current file they end
    at. The log rotates (``serial-com1.log`` -> ``.log.1``): when the current file
    is shorter than n, the rest comes from the end of the previous generation."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - n))
            data = f.read(n)
            end = max(0, size - n) + len(data)
    except OSError:
        data, end = b"", 0
    if len(data) < n:
        older = path.with_name(path.name + ".1")
        try:
            with older.open("rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - (n - len(data))))
                data = f.read(n - len(data)) + data
        except OSError:
            pass
    return data, end
