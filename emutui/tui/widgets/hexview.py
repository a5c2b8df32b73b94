"""A hex view over a remote memory region that reads only what is on screen.

Line API (``render_line``): the cost of a frame is the number of visible
rows, never the size of the region, so 128 MiB scrolls like 4 KiB. Not a
ScrollView: scrolling a ScrollView makes the screen re-arrange every widget
(``_refresh_layout(scroll=True)``), which in the full app cost more than the
hex rows themselves; here a page-down only changes ``top`` and repaints this
widget, and the scrollbar is drawn in the last column.
Bytes come through a small page cache filled by a worker; ``render_line``
never waits on I/O and draws ``..`` until a page arrives. Rows are built as
Segment runs per byte category (hexyl's colours) with per-frame constants
hoisted into ``render_lines`` (see specs/tui-notes.md 2.4: per-byte Text
objects cost 2.6x more per frame).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from emutui.core.errors import EmutuiError
from emutui.core.model import MemoryRegion

ROW = 16
CACHE_PAGES = 256
FOLLOW_PERIOD = 0.5  # ~2 Hz re-read of the visible window in follow mode

Reader = Callable[[str, int, int], Awaitable[bytes]]

# hexyl's five categories: NULL, printable ASCII, ASCII whitespace, other ASCII, non-ASCII
_NULL, _PRINT, _SPACE, _OTHER, _HIGH = range(5)
_CAT = bytes(
    _NULL
    if b == 0
    else _PRINT
    if 0x21 <= b <= 0x7E
    else _SPACE
    if b in (0x20, 0x09, 0x0A, 0x0B, 0x0C, 0x0D)
    else _OTHER
    if b < 0x80
    else _HIGH
    for b in range(256)
)
_CAT_COLOR = ("bright_black", "cyan", "green", "green", "yellow")
_HEX = [f"{b:02x}" for b in range(256)]
_CHAR = [
    "⋄"
    if b == 0
    else chr(b)
    if 0x20 <= b <= 0x7E
    else "_"
    if b in (0x09, 0x0A, 0x0B, 0x0C, 0x0D)
    else "•"
    if b < 0x80
    else "×"
    for b in range(256)
]


def _runs(pages: list[int]) -> list[list[int]]:
    """Sorted page numbers cut into runs of consecutive pages."""
    out: list[list[int]] = []
    for p in sorted(pages):
        if out and out[-1][-1] + 1 == p:
            out[-1].append(p)
        else:
            out.append([p])
    return out


def parse_offset(text: str, size: int) -> int:
    """``0x1f0``, ``1f0h``, ``496`` or ``+0x10`` style input → offset inside ``size``.

    Raises ValueError with a message meant for the user.
    """
    t = text.strip().lower().replace("_", "")
    if not t:
        raise ValueError("type an offset, e.g. 0x1000 or 4096")
    if not t.isascii():  # int() would take other scripts' digits
        raise ValueError(f"{text.strip()!r} is not a number (use 0x… for hex)")
    try:
        if t.startswith("0x"):
            value = int(t[2:], 16)
        elif t.endswith("h"):
            value = int(t[:-1], 16)
        else:
            value = int(t, 10)
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a number (use 0x… for hex)") from None
    if value < 0 or value >= size:
        raise ValueError(f"0x{value:x} is outside the region (size 0x{size:x})")
    return value


class HexView(Widget, can_focus=True):
    """Rows of ``offset  hex bytes  ascii`` over one region of a connector."""

    COMPONENT_CLASSES = {"hexview--scrollbar", "hexview--thumb"}
    DEFAULT_CSS = """
    HexView > .hexview--scrollbar { background: $panel; }
    HexView > .hexview--thumb { background: $primary 60%; }
    HexView.-following {
        border-top: heavy $warning;
        border-title-color: $warning;
        border-title-style: bold;
    }
    """

    BINDINGS = [
        Binding("pagedown", "page(1)", "PgDn", show=False),
        Binding("pageup", "page(-1)", "PgUp", show=False),
        Binding("down,j", "move(16)", "Down", show=False),
        Binding("up,k", "move(-16)", "Up", show=False),
        Binding("right,l", "move(1)", "Right", show=False),
        Binding("left,h", "move(-1)", "Left", show=False),
        Binding("home", "jump_start", "Start", show=False),
        Binding("end", "jump_end", "End", show=False),
    ]

    word_size: reactive[int] = reactive(1)
    cursor: reactive[int] = reactive(0)

    class CursorMoved(Message):
        def __init__(self, offset: int) -> None:
            super().__init__()
            self.offset = offset

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, HexView.CursorMoved)

    class ReadFailed(Message):
        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.mem_region: MemoryRegion | None = None
        self.reader: Reader | None = None
        self._pages: OrderedDict[int, bytes | None] = OrderedDict()  # None = unreadable
        self._inflight: set[int] = set()
        self._wanted: set[int] = set()
        self._fetch_scheduled = False
        self._changed: set[int] = set()
        self._generation = 0  # bumped on region change: late reads are dropped
        self.page_size = 4096
        self.follow = False
        self._follow_timer = None
        self.last_error = ""
        self._frame: tuple | None = None
        self.top = 0  # first row on screen
        self.total_rows = 0
        self._bar = (0, 0)
        self._bar_styles = (Style(), Style())

    # -- region ------------------------------------------------------------------------

    def set_region(
        self, region: MemoryRegion | None, reader: Reader | None, follow: bool = False
    ) -> None:
        """Show ``region``. Follow mode is per region: the caller says whether it is on
        (re-reading MMIO has side effects, so nothing carries it from one region to the next)."""
        self._generation += 1
        self.mem_region = region
        self.reader = reader
        self._pages.clear()
        self._inflight.clear()
        self._wanted.clear()
        self._changed.clear()
        self.last_error = ""
        # MMIO is read one word per command: keep pages small so only the window is read.
        self.page_size = 4096 if region is None or region.access_width <= 1 else 256
        rows = 0 if region is None else (region.size + ROW - 1) // ROW
        self.total_rows = rows
        self.top = 0
        self.cursor = 0
        self.set_follow(follow and region is not None)
        self.refresh()

    def invalidate(self, offset: int | None = None) -> None:
        """Forget cached bytes (all, or the page holding ``offset``) so they are read again."""
        if offset is None:
            self._pages.clear()
        else:
            self._pages.pop(offset // self.page_size, None)
        self.refresh()

    # -- geometry ----------------------------------------------------------------------

    @property
    def _addr_digits(self) -> int:
        size = self.mem_region.size if self.mem_region else 0
        return max(8, len(f"{max(size - 1, 0):x}"))

    def _row_width(self) -> int:
        w = self.word_size
        words = ROW // w
        hex_width = words * (2 * w + 1) + 1
        ascii_width = ROW + 3
        return self._addr_digits + 2 + hex_width + ascii_width

    def watch_word_size(self) -> None:
        self.refresh()

    def visible_rows(self) -> range:
        return range(self.top, self.top + self.size.height)

    def visible_window(self) -> tuple[int, int]:
        """(offset, length) of the bytes on screen."""
        if self.mem_region is None:
            return 0, 0
        rows = self.visible_rows()
        start = rows.start * ROW
        end = min(self.mem_region.size, rows.stop * ROW)
        return start, max(0, end - start)

    # -- data --------------------------------------------------------------------------

    def _page_bytes(self, page: int) -> bytes | bool | None:
        """Bytes of a page; None when unreadable; False when not loaded yet."""
        if page in self._pages:
            self._pages.move_to_end(page)
            return self._pages[page]
        self._wanted.add(page)
        if not self._fetch_scheduled:
            self._fetch_scheduled = True
            self.call_after_refresh(self._start_fetch)
        return False

    def _start_fetch(self) -> None:
        self._fetch_scheduled = False
        wanted = sorted(p for p in self._wanted if p not in self._inflight)
        self._wanted.clear()
        if not wanted or self.mem_region is None or self.reader is None:
            return
        self._inflight.update(wanted)
        self.run_worker(
            self._fetch(wanted, self._generation), group="hex-fetch", exit_on_error=False
        )

    async def _fetch(self, pages: list[int], generation: int, compare: bool = False) -> None:
        region, reader = self.mem_region, self.reader
        if region is None or reader is None:
            return
        ps = self.page_size
        try:
            # Contiguous pages in one read: one round trip (one qtest batch) per run.
            for run in _runs(pages):
                start = run[0] * ps
                length = min(len(run) * ps, region.size - start)
                if length <= 0:
                    continue
                try:
                    got: bytes | None = await reader(region.name, start, length)
                except EmutuiError as e:
                    got = None
                    if generation == self._generation and str(e) != self.last_error:
                        self.last_error = str(e)
                        self.post_message(self.ReadFailed(str(e)))
                if generation != self._generation:
                    return
                for k, page in enumerate(run):
                    data = None if got is None else got[k * ps : (k + 1) * ps]
                    if data == b"":
                        continue
                    pstart = page * ps
                    if compare and data is not None:
                        old = self._pages.get(page)
                        if old:
                            self._changed.update(
                                pstart + i
                                for i, (a, b) in enumerate(zip(old, data, strict=False))
                                if a != b
                            )
                    self._pages[page] = data
                while len(self._pages) > CACHE_PAGES:
                    self._pages.popitem(last=False)
                self.refresh()
        finally:
            self._inflight.difference_update(pages)

    # -- follow mode -------------------------------------------------------------------

    def set_follow(self, on: bool) -> None:
        """Re-read the visible window every FOLLOW_PERIOD; shown on the view's top edge."""
        self.follow = on
        if self._follow_timer is not None:
            self._follow_timer.stop()
            self._follow_timer = None
        self._changed.clear()
        if on:
            self._follow_timer = self.set_interval(FOLLOW_PERIOD, self._follow_tick)
        self.set_class(on, "-following")
        mmio = self.mem_region is not None and self.mem_region.access_width > 1
        self.border_title = (
            f"following: re-reads {'these registers' if mmio else 'the window'} "
            f"every {FOLLOW_PERIOD:g} s (f stops)"
            if on
            else None
        )
        self.refresh()

    def _follow_tick(self) -> None:
        if self.mem_region is None or self._inflight:
            return  # a slow backend: skip a beat rather than queue reads
        start, length = self.visible_window()
        if length == 0:
            return
        pages = list(range(start // self.page_size, (start + length - 1) // self.page_size + 1))
        self._changed.clear()
        self._inflight.update(pages)
        self.run_worker(
            self._fetch(pages, self._generation, compare=True),
            group="hex-fetch",
            exit_on_error=False,
        )

    # -- navigation --------------------------------------------------------------------

    def _rows_per_page(self) -> int:
        return max(1, self.size.height)

    def scroll_to_row(self, row: int) -> None:
        row = max(0, min(row, self.total_rows - self._rows_per_page()))
        if row != self.top:
            self.top = row
            self.refresh()

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self.scroll_to_row(self.top + 3)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self.scroll_to_row(self.top - 3)

    def goto(self, offset: int) -> None:
        if self.mem_region is None:
            return
        offset = max(0, min(offset, self.mem_region.size - 1))
        self.cursor = offset
        self._scroll_to_cursor(center=True)

    def _scroll_to_cursor(self, center: bool = False) -> None:
        row = self.cursor // ROW
        rows = self.visible_rows()
        if center and row not in rows:
            self.scroll_to_row(row - self._rows_per_page() // 2)
        elif row < rows.start:
            self.scroll_to_row(row)
        elif row >= rows.stop:
            self.scroll_to_row(row - self._rows_per_page() + 1)

    def action_page(self, direction: int) -> None:
        if self.mem_region is None:
            return
        step = self._rows_per_page() * ROW * direction
        self.cursor = max(0, min(self.mem_region.size - 1, self.cursor + step))
        # No animation: an animated page-down renders ~15 frames (tui-notes 2.4).
        self.scroll_to_row(self.top + self._rows_per_page() * direction)
        self._scroll_to_cursor()

    def action_move(self, delta: int) -> None:
        if self.mem_region is None:
            return
        if abs(delta) == 1:
            delta *= self.word_size
        self.cursor = max(0, min(self.mem_region.size - 1, self.cursor + delta))
        self._scroll_to_cursor()

    def action_jump_start(self) -> None:
        self.goto(0)

    def action_jump_end(self) -> None:
        if self.mem_region is not None:
            self.goto(self.mem_region.size - 1)

    def watch_cursor(self, old: int, new: int) -> None:
        top = self.top
        for off in (old, new):
            y = off // ROW - top
            self.refresh(Region(0, y, self.size.width, 1))
        self.post_message(self.CursorMoved(new))

    def on_click(self, event: events.Click) -> None:
        if self.mem_region is None:
            return
        row = self.top + event.y
        self.cursor = max(0, min(self.mem_region.size - 1, row * ROW + self.cursor % ROW))

    # -- rendering ---------------------------------------------------------------------

    def render_lines(self, crop: Region) -> list[Strip]:
        # Per-frame constants, read once instead of once per row.
        base = self.rich_style
        cats = tuple(base + Style(color=c) for c in _CAT_COLOR)
        self._frame = (
            base,
            cats,
            base + Style(dim=True),
            base + Style(color="bright_black"),
            base + Style(reverse=True, bold=True),
            base + Style(bgcolor="red", color="bright_white", bold=True),
            self.size.width,
            self.top,
            self._addr_digits,
        )
        h, total = self.size.height, self.total_rows
        if total > h > 0:
            start = self.top * h // total
            self._bar = (start, start + max(1, h * h // total))
        else:
            self._bar = (0, 0)
        self._bar_styles = (
            self.get_component_rich_style("hexview--scrollbar"),
            self.get_component_rich_style("hexview--thumb"),
        )
        return super().render_lines(crop)

    def _line(self, segs: list[Segment], y: int, width: int, base: Style) -> Strip:
        """The row cropped to the width, plus this row's cell of the scrollbar."""
        body = Strip(segs).crop_extend(0, width - 1, base)
        lo, hi = self._bar
        bar = self._bar_styles[1] if lo <= y < hi else self._bar_styles[0]
        return Strip([*body, Segment(" ", bar)], width)

    def render_line(self, y: int) -> Strip:
        if self._frame is None:
            self.render_lines(Region(0, 0, self.size.width, self.size.height))
        assert self._frame is not None
        base, cats, dim, addr_style, cursor_style, changed_style, width, top, digits = self._frame
        region = self.mem_region
        row = top + y
        if region is None or row * ROW >= region.size:
            return self._line([], y, width, base)
        off = row * ROW
        page = off // self.page_size
        got = self._page_bytes(page)
        n = min(ROW, region.size - off)
        segs: list[Segment] = [Segment(f"{off:0{digits}x}", addr_style), Segment("  ", base)]
        if got is False or got is None:
            mark = ".." if got is False else "??"
            w = self.word_size
            cell = (mark * w) + " "
            text = "".join(cell + (" " if (i + 1) * w == 8 else "") for i in range(n // w))
            segs.append(Segment(text, dim))
            return self._line(segs, y, width, base)
        pstart = off - page * self.page_size
        data = got[pstart : pstart + n]
        cursor = self.cursor
        changed = self._changed
        if self.word_size == 1:
            self._hex_bytes(
                segs, data, off, cats, cursor, cursor_style, changed, changed_style, base
            )
        else:
            self._hex_words(
                segs, data, off, cats, cursor, cursor_style, changed, changed_style, base
            )
        segs.append(Segment(" │", addr_style))
        self._ascii(segs, data, off, cats, cursor, cursor_style, changed, changed_style)
        segs.append(Segment("│", addr_style))
        return self._line(segs, y, width, base)

    @staticmethod
    def _hex_bytes(segs, data, off, cats, cursor, cursor_style, changed, changed_style, base):
        run: list[str] = []
        run_style = None
        for i, b in enumerate(data):
            o = off + i
            if o == cursor:
                st = cursor_style
            elif changed and o in changed:
                st = changed_style
            else:
                st = cats[_CAT[b]]
            if st is not run_style and run:
                segs.append(Segment("".join(run), run_style))
                run = []
            run_style = st
            if st is cursor_style or st is changed_style:
                # keep the highlight on the two digits, not the gap after them
                if run:
                    segs.append(Segment("".join(run), run_style))
                    run = []
                segs.append(Segment(_HEX[b], st))
                segs.append(Segment("  " if i == 7 else " ", base))
                run_style = None
                continue
            run.append(_HEX[b])
            run.append("  " if i == 7 else " ")
        if run:
            segs.append(Segment("".join(run), run_style))

    @staticmethod
    def _ascii(segs, data, off, cats, cursor, cursor_style, changed, changed_style):
        run: list[str] = []
        run_style = None
        for i, b in enumerate(data):
            o = off + i
            if o == cursor:
                st = cursor_style
            elif changed and o in changed:
                st = changed_style
            else:
                st = cats[_CAT[b]]
            if st is not run_style and run:
                segs.append(Segment("".join(run), run_style))
                run = []
            run_style = st
            run.append(_CHAR[b])
        if run:
            segs.append(Segment("".join(run), run_style))

    def _hex_words(self, segs, data, off, cats, cursor, cursor_style, changed, changed_style, base):
        w = self.word_size
        little = self.mem_region is None or self.mem_region.byte_order != "big"
        for i in range(0, len(data) - len(data) % w, w):
            word = data[i : i + w]
            o = off + i
            if o <= cursor < o + w:
                st = cursor_style
            elif changed and any(o + k in changed for k in range(w)):
                st = changed_style
            else:
                st = cats[_NULL] if not any(word) else base
            # the register value as a driver reads it, in the target's byte order
            shown = reversed(word) if little else word
            segs.append(Segment("".join(_HEX[b] for b in shown), st))
            segs.append(Segment("  " if i + w == 8 else " ", base))

    def row_text(self, row: int) -> str:
        """The plain text of one row (for tests and copy)."""
        strip = self.render_line(row - self.top)
        return "".join(seg.text for seg in strip)

    async def wait_loaded(self, timeout: float = 10.0) -> None:
        """Until the visible pages are in the cache (tests and benches)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            start, length = self.visible_window()
            pages = range(
                start // self.page_size, (start + max(length, 1) - 1) // self.page_size + 1
            )
            if all(p in self._pages for p in pages):
                return
            for p in pages:
                self._page_bytes(p)
            await asyncio.sleep(0.02)
        raise TimeoutError("memory window not loaded")
