"""The screen model of emutui's terminal emulator: cells, cursor, scrollback.

Why not pyte: pyte spends one namedtuple ``_replace`` per printed character and
measured 0.28 MB/s here (0.07 MB/s with its HistoryScreen), below what one
flooding guest sends. This model keeps each row as two parallel lists (one
1-char string and one style id per cell) and writes a whole run of printable
text with one slice assignment, so the cost is per run and per line, not per
character (see docs/console.md).

Rows that scroll off the top of the main screen go to a bounded deque as
frozen ``HistoryLine`` tuples (a string plus one style id or packed ids), so
memory is bounded by ``scrollback`` lines whatever the guest prints.

Pure Python, no Textual import: unit-testable and benchmarkable alone.
"""

from __future__ import annotations

import unicodedata
from array import array
from collections import deque
from collections.abc import Iterator
from functools import lru_cache
from typing import NamedTuple

from emutui.tui.term.styles import StyleTable

# DEC special graphics ("ESC ( 0"): line drawing used by curses without UTF-8.
DEC_GRAPHICS = str.maketrans(
    {
        "`": "◆",
        "a": "▒",
        "b": "␉",
        "c": "␌",
        "d": "␍",
        "e": "␊",
        "f": "°",
        "g": "±",
        "h": "␤",
        "i": "␋",
        "j": "┘",
        "k": "┐",
        "l": "┌",
        "m": "└",
        "n": "┼",
        "o": "⎺",
        "p": "⎻",
        "q": "─",
        "r": "⎼",
        "s": "⎽",
        "t": "├",
        "u": "┤",
        "v": "┴",
        "w": "┬",
        "x": "│",
        "y": "≤",
        "z": "≥",
        "{": "π",
        "|": "≠",
        "}": "£",
        "~": "·",
        "_": " ",  # 0x5F is a blank in the DEC special graphics set
    }
)


@lru_cache(maxsize=4096)
def char_width(c: str) -> int:
    """Cells a character takes: 0 (combining), 1, or 2 (East Asian wide/fullwidth)."""
    if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


def _fit(c: list[str], a: list[int], cols: int) -> tuple[list[str], list[int]]:
    """A row cut or padded to ``cols`` cells (a wide character cut in half is blanked)."""
    n = len(c)
    if n == cols:
        return c, a
    if n < cols:
        return c + [" "] * (cols - n), a + [0] * (cols - n)
    c, a = c[:cols], a[:cols]
    last = c[-1]
    if last and char_width(last[0]) == 2:
        c[-1] = " "
    return c, a


def _unpack(
    cells: str | list[str], styles: int | bytes, wrapped: bool, cols: int
) -> tuple[list[str], list[int], bool]:
    """A scrollback line back into cell lists (fitted to ``cols`` unless it is 0)."""
    c = list(cells)
    if isinstance(styles, int):
        a = [styles] * len(c)
    else:
        arr = array("H")
        arr.frombytes(styles)
        a = arr.tolist()
    if cols:
        c, a = _fit(c, a, cols)
    return c, a, wrapped


# A row that scrolled off: (cells, styles, wrapped). Cells are a str (one char per
# cell) or, when the row holds wide or combining characters, a list; styles are one
# id for the whole row or the bytes of an array('H') with one id per cell (bytes,
# because an array object is GC-tracked and would keep its tuple tracked). A plain tuple on
# purpose: CPython's GC stops tracking exact tuples of atomic values, but never a
# NamedTuple subclass, and 10,000 tracked lines per console made every full
# collection (the p99 of key latency) tens of milliseconds longer.
HistoryLine = tuple[str | list[str], int | bytes, bool]


class Cursor(NamedTuple):
    x: int
    y: int
    sid: int
    wrap_next: bool
    origin: bool
    g0: bool  # G0 is DEC graphics
    g1: bool
    shift_out: bool


class Screen:
    """A VT100/xterm-subset screen of ``cols`` x ``rows`` cells with scrollback."""

    def __init__(self, cols: int = 80, rows: int = 24, scrollback: int = 10000) -> None:
        self.cols = max(1, cols)
        self.rows = max(1, rows)
        self.table = StyleTable()
        self.history: deque[HistoryLine] = deque(maxlen=max(0, scrollback))
        self._keep_history = scrollback > 0
        # Lines that ever entered the scrollback (including ones since dropped from
        # its front), so a viewer scrolled back can keep its place while it fills.
        self.history_pushed = 0
        # Bytes to send back to the guest (answers to DSR/DA queries).
        self.responses: list[bytes] = []
        self.title_changes = 0  # counted, never applied: the host terminal is not the guest's
        self.dirty: set[int] = set()
        self.all_dirty = True
        self._reset_state()

    # -- state ------------------------------------------------------------------------

    def _reset_state(self) -> None:
        cols, rows = self.cols, self.rows
        self.chars: list[list[str]] = [[" "] * cols for _ in range(rows)]
        self.attrs: list[list[int]] = [[0] * cols for _ in range(rows)]
        self.wrapped: list[bool] = [False] * rows
        self.x = 0
        self.y = 0
        self.sid = 0
        self.wrap_next = False
        self.top = 0
        self.bottom = rows - 1
        self.autowrap = True
        self.origin = False
        self.insert_mode = False
        self.newline_mode = False
        self.cursor_visible = True
        self.app_cursor_keys = False
        self.bracketed_paste = False
        self.sync_output = False
        self.g0_graphics = False
        self.g1_graphics = False
        self.shift_out = False
        self.tabstops = set(range(8, cols, 8))
        # One saved cursor (DECSC) per screen, as in xterm: [main, alternate].
        self._saved: list[Cursor | None] = [None, None]
        self.alt: tuple[list[list[str]], list[list[int]], list[bool]] | None = None
        self.all_dirty = True
        self._refresh_fancy()

    def reset(self) -> None:
        """RIS (ESC c): everything but the scrollback."""
        self._reset_state()

    @property
    def in_alt_screen(self) -> bool:
        return self.alt is not None

    @property
    def saved(self) -> Cursor | None:
        """The cursor saved by DECSC on the screen now shown."""
        return self._saved[self.alt is not None]

    @saved.setter
    def saved(self, value: Cursor | None) -> None:
        self._saved[self.alt is not None] = value

    def _blank(self, sid: int = 0) -> tuple[list[str], list[int]]:
        return [" "] * self.cols, [sid] * self.cols

    def _touch(self, y: int) -> None:
        self.dirty.add(y)

    def take_dirty(self) -> tuple[bool, set[int]]:
        """(everything changed?, changed rows) since the last call; then clears them."""
        all_dirty, dirty = self.all_dirty, self.dirty
        self.all_dirty = False
        self.dirty = set()
        return all_dirty, dirty

    # -- printing ---------------------------------------------------------------------

    def _refresh_fancy(self) -> None:
        # One flag for "draw needs the general path": kept up to date by every
        # setter of insert mode and the character sets, read once per run.
        self._fancy = self.insert_mode or self.g0_graphics or (self.shift_out and self.g1_graphics)

    def draw(self, text: str) -> None:
        """Print a run of printable characters (no controls) at the cursor."""
        if not self._fancy and text.isascii():
            # The hot path: the run fits in the rest of the row.
            x = self.x
            n = len(text)
            if not self.wrap_next and x + n < self.cols:
                y = self.y
                self.chars[y][x : x + n] = text
                self.attrs[y][x : x + n] = [self.sid] * n
                self.x = x + n
                self.dirty.add(y)
                return
            self._put_run(text)
            return
        if self.shift_out:
            if self.g1_graphics:
                text = text.translate(DEC_GRAPHICS)
        elif self.g0_graphics:
            text = text.translate(DEC_GRAPHICS)
        if not text.isascii():
            self._draw_wide(text)
            return
        if self.insert_mode:
            for c in text:
                self._insert_blanks(1)
                self._put_run(c)
            return
        self._put_run(text)

    def _put_run(self, text: str) -> None:
        # The hot path: one slice assignment per row the run touches.
        cols = self.cols
        autowrap = self.autowrap
        while text:
            if self.wrap_next:
                if autowrap:
                    self.wrapped[self.y] = True
                    self.x = 0
                    self.index()
                self.wrap_next = False
            x = self.x
            y = self.y
            space = cols - x
            n = len(text)
            if n < space:
                self.chars[y][x : x + n] = text
                self.attrs[y][x : x + n] = [self.sid] * n
                self.x = x + n
                self.dirty.add(y)
                return
            if not autowrap and n > space:
                # Without autowrap the tail overwrites the last column.
                text = text[: space - 1] + text[-1]
                n = space
            self.chars[y][x:cols] = text[:space]
            self.attrs[y][x:cols] = [self.sid] * space
            self.dirty.add(y)
            self.x = cols - 1
            self.wrap_next = True
            text = text[space:]

    def _draw_wide(self, text: str) -> None:
        # Slow path, only for runs with non-ASCII: per character, with widths.
        for c in text:
            w = char_width(c)
            if w == 0:
                self._combine(c)
                continue
            if self.wrap_next:
                if self.autowrap:
                    self.wrapped[self.y] = True
                    self.x = 0
                    self.index()
                self.wrap_next = False
            if w == 2 and self.x == self.cols - 1:
                if self.cols == 1:
                    continue  # a wide character cannot fit at all
                if self.autowrap:
                    self.chars[self.y][self.x] = " "
                    self.wrapped[self.y] = True
                    self.x = 0
                    self.index()
                else:
                    continue
            if self.insert_mode:
                self._insert_blanks(w)
            y, x = self.y, self.x
            row = self.chars[y]
            if row[x] == "" and x > 0:
                row[x - 1] = " "  # overwriting the right half of a wide character
            row[x] = c
            self.attrs[y][x] = self.sid
            if w == 2:
                row[x + 1] = ""
                self.attrs[y][x + 1] = self.sid
            self.dirty.add(y)
            nx = x + w
            if nx >= self.cols:
                self.x = self.cols - 1
                self.wrap_next = True
            else:
                self.x = nx

    def _combine(self, c: str) -> None:
        x, y = self.x, self.y
        if not self.wrap_next:
            x -= 1
        if x < 0:
            return
        row = self.chars[y]
        if row[x] == "" and x > 0:
            x -= 1
        if len(row[x]) < 8:  # bound the cluster: a guest cannot grow one cell forever
            row[x] += c
            self.dirty.add(y)

    def repeat(self, n: int) -> None:
        """REP (CSI b): repeat the character before the cursor."""
        x = self.x if self.wrap_next else self.x - 1
        if x < 0:
            return
        c = self.chars[self.y][x]
        if c:
            self.draw(c * min(n, self.cols * self.rows))

    # -- C0 controls --------------------------------------------------------------------

    def cr(self) -> None:
        self.x = 0
        self.wrap_next = False

    def lf(self) -> None:
        self.index()
        if self.newline_mode:
            self.x = 0
        self.wrap_next = False

    def crlf(self) -> None:
        """CR LF in one step: the most common pair in serial output."""
        self.x = 0
        self.wrap_next = False
        y = self.y
        if y == self.bottom:
            self.scroll_up(1)
        elif y < self.rows - 1:
            self.y = y + 1

    def bs(self) -> None:
        if self.x > 0:
            self.x -= 1
        self.wrap_next = False

    def tab(self) -> None:
        x = self.x
        for t in range(x + 1, self.cols):
            if t in self.tabstops:
                self.x = t
                return
        self.x = self.cols - 1

    def back_tab(self, n: int = 1) -> None:
        for _ in range(max(1, n)):
            x = self.x
            stops = [t for t in self.tabstops if t < x]
            self.x = max(stops) if stops else 0
        self.wrap_next = False

    def forward_tab(self, n: int = 1) -> None:
        for _ in range(max(1, min(n, self.cols))):
            self.tab()

    def set_tabstop(self) -> None:
        self.tabstops.add(self.x)

    def clear_tabstop(self, mode: int = 0) -> None:
        if mode == 0:
            self.tabstops.discard(self.x)
        elif mode == 3:
            self.tabstops.clear()

    def shift_in(self) -> None:
        self.shift_out = False
        self._refresh_fancy()

    def shift_out_(self) -> None:
        self.shift_out = True
        self._refresh_fancy()

    def designate(self, g0: bool, graphics: bool) -> None:
        """ESC ( 0 / ESC ) 0 select DEC line drawing for G0/G1; any other final, ASCII."""
        if g0:
            self.g0_graphics = graphics
        else:
            self.g1_graphics = graphics
        self._refresh_fancy()

    # -- scrolling ----------------------------------------------------------------------

    def index(self) -> None:
        """Move down one line, scrolling the region up at its bottom margin."""
        if self.y == self.bottom:
            self.scroll_up(1)
        elif self.y < self.rows - 1:
            self.y += 1

    def reverse_index(self) -> None:
        if self.y == self.top:
            self.scroll_down(1)
        elif self.y > 0:
            self.y -= 1

    def next_line(self) -> None:
        self.index()
        self.x = 0
        self.wrap_next = False

    def scroll_up(self, n: int = 1) -> None:
        top, bottom = self.top, self.bottom
        chars, attrs, wrapped = self.chars, self.attrs, self.wrapped
        cols = self.cols
        esid = self.table.erase_id(self.sid)
        if n == 1 and top == 0 and bottom == self.rows - 1:
            # The flood path: a whole-screen scroll by one line.
            c = chars.pop(0)
            a = attrs.pop(0)
            w = wrapped.pop(0)
            if self.alt is None and self._keep_history:
                text = "".join(c)
                a0 = a[0]
                self.history.append(
                    (
                        text if len(text) == cols else c,
                        a0 if a.count(a0) == cols else array("H", a).tobytes(),
                        w,
                    )
                )
                self.history_pushed += 1
            chars.append([" "] * cols)
            attrs.append([esid] * cols)
            wrapped.append(False)
            self.all_dirty = True
            return
        n = min(max(1, n), bottom - top + 1)
        keep = top == 0 and self.alt is None and self._keep_history
        for _ in range(n):
            c = chars.pop(top)
            a = attrs.pop(top)
            w = wrapped.pop(top)
            if keep:
                self._push_history(c, a, w)
            chars.insert(bottom, [" "] * cols)
            attrs.insert(bottom, [esid] * cols)
            wrapped.insert(bottom, False)
        if top == 0 and bottom == self.rows - 1:
            self.all_dirty = True
        else:
            self.dirty.update(range(top, bottom + 1))

    def _push_history(self, c: list[str], a: list[int], w: bool) -> None:
        text = "".join(c)
        cells: str | list[str] = text if len(text) == len(c) else c
        a0 = a[0]
        styles: int | bytes = a0 if a.count(a0) == len(a) else array("H", a).tobytes()
        self.history.append((cells, styles, w))
        self.history_pushed += 1

    def scroll_down(self, n: int = 1) -> None:
        top, bottom = self.top, self.bottom
        n = min(max(1, n), bottom - top + 1)
        esid = self.table.erase_id(self.sid)
        for _ in range(n):
            self.chars.pop(bottom)
            self.attrs.pop(bottom)
            self.wrapped.pop(bottom)
            self.chars.insert(top, [" "] * self.cols)
            self.attrs.insert(top, [esid] * self.cols)
            self.wrapped.insert(top, False)
        self.dirty.update(range(top, bottom + 1))

    def set_margins(self, top: int = 0, bottom: int = 0) -> None:
        """DECSTBM (1-based; 0 means the default)."""
        t = max(1, top) - 1
        b = (bottom or self.rows) - 1
        b = min(b, self.rows - 1)
        if b - t < 1:
            return  # xterm ignores a region of less than two lines
        self.top, self.bottom = t, b
        self.move_to(0, 0)

    # -- cursor movement ----------------------------------------------------------------

    def move_to(self, row: int, col: int) -> None:
        """Absolute move, 0-based, honouring origin mode."""
        if self.origin:
            row += self.top
            lo, hi = self.top, self.bottom
        else:
            lo, hi = 0, self.rows - 1
        self.y = min(max(row, lo), hi)
        self.x = min(max(col, 0), self.cols - 1)
        self.wrap_next = False

    def cup(self, row: int = 1, col: int = 1) -> None:
        self.move_to(max(row, 1) - 1, max(col, 1) - 1)

    def _vlimits(self) -> tuple[int, int]:
        # Relative vertical moves stop at the margins when the cursor is inside them.
        if self.top <= self.y <= self.bottom:
            return self.top, self.bottom
        return 0, self.rows - 1

    def cuu(self, n: int = 1) -> None:
        lo, _ = self._vlimits()
        self.y = max(self.y - max(n, 1), lo)
        self.wrap_next = False

    def cud(self, n: int = 1) -> None:
        _, hi = self._vlimits()
        self.y = min(self.y + max(n, 1), hi)
        self.wrap_next = False

    def cuf(self, n: int = 1) -> None:
        self.x = min(self.x + max(n, 1), self.cols - 1)
        self.wrap_next = False

    def cub(self, n: int = 1) -> None:
        self.x = max(self.x - max(n, 1), 0)
        self.wrap_next = False

    def cnl(self, n: int = 1) -> None:
        self.cud(n)
        self.x = 0

    def cpl(self, n: int = 1) -> None:
        self.cuu(n)
        self.x = 0

    def cha(self, col: int = 1) -> None:
        self.x = min(max(col, 1) - 1, self.cols - 1)
        self.wrap_next = False

    def vpa(self, row: int = 1) -> None:
        self.move_to(max(row, 1) - 1, self.x)

    def save_cursor(self) -> None:
        self.saved = Cursor(
            self.x,
            self.y,
            self.sid,
            self.wrap_next,
            self.origin,
            self.g0_graphics,
            self.g1_graphics,
            self.shift_out,
        )

    def restore_cursor(self) -> None:
        s = self.saved
        if s is None:
            self.origin = False
            self.move_to(0, 0)
            self.sid = 0
            return
        self.x = min(s.x, self.cols - 1)
        self.y = min(s.y, self.rows - 1)
        self.sid = s.sid
        self.wrap_next = s.wrap_next
        self.origin = s.origin
        self.g0_graphics, self.g1_graphics, self.shift_out = s.g0, s.g1, s.shift_out
        self._refresh_fancy()

    # -- erasing and editing ------------------------------------------------------------

    def _fill(self, y: int, x0: int, x1: int) -> None:
        if x1 <= x0:
            return
        esid = self.table.erase_id(self.sid)
        row = self.chars[y]
        if x0 > 0 and row[x0] == "":
            row[x0 - 1] = " "  # erasing the right half of a wide char erases it all
        row[x0:x1] = " " * (x1 - x0)
        self.attrs[y][x0:x1] = [esid] * (x1 - x0)
        self.dirty.add(y)

    def erase_in_line(self, mode: int = 0) -> None:
        if mode == 0:
            self._fill(self.y, self.x, self.cols)
        elif mode == 1:
            self._fill(self.y, 0, self.x + 1)
        elif mode == 2:
            self._fill(self.y, 0, self.cols)
        if mode in (0, 2):
            self.wrapped[self.y] = False
        if mode == 0:
            # xterm keeps a pending wrap through EL 1 and EL 2; EL 0 clears it.
            self.wrap_next = False

    def erase_in_display(self, mode: int = 0) -> None:
        if mode == 0:
            self.erase_in_line(0)
            for y in range(self.y + 1, self.rows):
                self._fill(y, 0, self.cols)
                self.wrapped[y] = False
        elif mode == 1:
            for y in range(self.y):
                self._fill(y, 0, self.cols)
            self._fill(self.y, 0, self.x + 1)
        elif mode == 2:
            for y in range(self.rows):
                self._fill(y, 0, self.cols)
                self.wrapped[y] = False
            self.all_dirty = True
        elif mode == 3:
            self.history.clear()
            self.all_dirty = True
        self.wrap_next = False

    def erase_chars(self, n: int = 1) -> None:
        self._fill(self.y, self.x, min(self.cols, self.x + max(n, 1)))
        self.wrap_next = False

    def _insert_blanks(self, n: int) -> None:
        y, x, cols = self.y, self.x, self.cols
        n = min(max(n, 1), cols - x)
        esid = self.table.erase_id(self.sid)
        row, attrs = self.chars[y], self.attrs[y]
        row[x:x] = " " * n
        attrs[x:x] = [esid] * n
        del row[cols:]
        del attrs[cols:]
        self.dirty.add(y)

    def insert_chars(self, n: int = 1) -> None:
        self._insert_blanks(n)
        self.wrap_next = False

    def delete_chars(self, n: int = 1) -> None:
        y, x, cols = self.y, self.x, self.cols
        n = min(max(n, 1), cols - x)
        esid = self.table.erase_id(self.sid)
        row, attrs = self.chars[y], self.attrs[y]
        del row[x : x + n]
        del attrs[x : x + n]
        row.extend(" " * n)
        attrs.extend([esid] * n)
        self.dirty.add(y)
        self.wrap_next = False

    def insert_lines(self, n: int = 1) -> None:
        if not self.top <= self.y <= self.bottom:
            return
        saved = self.top
        self.top = self.y
        self.scroll_down(n)
        self.top = saved
        self.x = 0
        self.wrap_next = False

    def delete_lines(self, n: int = 1) -> None:
        if not self.top <= self.y <= self.bottom:
            return
        saved_top = self.top
        self.top = self.y
        # Lines deleted inside the screen are gone, never scrollback.
        self._delete_no_history(n)
        self.top = saved_top
        self.x = 0
        self.wrap_next = False

    def _delete_no_history(self, n: int) -> None:
        top, bottom = self.top, self.bottom
        n = min(max(1, n), bottom - top + 1)
        esid = self.table.erase_id(self.sid)
        for _ in range(n):
            self.chars.pop(top)
            self.attrs.pop(top)
            self.wrapped.pop(top)
            self.chars.insert(bottom, [" "] * self.cols)
            self.attrs.insert(bottom, [esid] * self.cols)
            self.wrapped.insert(bottom, False)
        self.dirty.update(range(top, bottom + 1))

    def alignment_test(self) -> None:
        """DECALN (ESC # 8): fill the screen with E."""
        for y in range(self.rows):
            self.chars[y] = ["E"] * self.cols
            self.attrs[y] = [0] * self.cols
        self.all_dirty = True
        self.move_to(0, 0)

    # -- modes --------------------------------------------------------------------------

    def set_mode(self, modes: list[int], private: bool, on: bool) -> None:
        for m in modes:
            if not private:
                if m == 4:
                    self.insert_mode = on
                    self._refresh_fancy()
                elif m == 20:
                    self.newline_mode = on
                continue
            if m == 1:
                self.app_cursor_keys = on
            elif m == 6:
                self.origin = on
                self.move_to(0, 0)
            elif m == 7:
                self.autowrap = on
                if not on:
                    self.wrap_next = False
            elif m == 25:
                self.cursor_visible = on
                self.dirty.add(self.y)
            elif m in (47, 1047, 1049):
                self._alt_screen(on, save=m == 1049)
            elif m == 2004:
                self.bracketed_paste = on
            elif m == 2026:
                self.sync_output = on
            # mouse reporting, focus events etc. are not forwarded: ignored

    def _alt_screen(self, on: bool, save: bool) -> None:
        if on == (self.alt is not None):
            return
        if on:
            if save:
                self.save_cursor()  # into the main screen's slot
            self.alt = (self.chars, self.attrs, self.wrapped)
            self.chars = [[" "] * self.cols for _ in range(self.rows)]
            self.attrs = [[0] * self.cols for _ in range(self.rows)]
            self.wrapped = [False] * self.rows
        else:
            self.chars, self.attrs, self.wrapped = self.alt
            self.alt = None
            if save and self.saved is not None:
                self.restore_cursor()
        self.all_dirty = True

    # -- queries -------------------------------------------------------------------------

    def report(self, kind: int, private: bool) -> None:
        if private:
            return
        if kind == 5:
            self.responses.append(b"\x1b[0n")
        elif kind == 6:
            row = self.y - self.top + 1 if self.origin else self.y + 1
            self.responses.append(f"\x1b[{row};{self.x + 1}R".encode())

    def device_attributes(self, secondary: bool) -> None:
        self.responses.append(b"\x1b[>0;0;0c" if secondary else b"\x1b[?1;2c")

    def window_report(self, op: int) -> None:
        """CSI 18 t / CSI 19 t: the text area / screen size in characters, which
        shells and line editors ask for. No other window operation is answered or
        applied (titles, pixel sizes, moves: the host terminal is not the guest's)."""
        if op == 18:
            self.responses.append(f"\x1b[8;{self.rows};{self.cols}t".encode())
        elif op == 19:
            self.responses.append(f"\x1b[9;{self.rows};{self.cols}t".encode())

    # -- resizing ------------------------------------------------------------------------

    def resize(self, cols: int, rows: int) -> None:
        """Change the size. On the main screen, lines are reflowed as in VTE, kitty
        and alacritty: soft-wrapped lines (screen and scrollback) are re-wrapped to
        the new width, a taller window brings lines back from the scrollback, and a
        shorter one moves the lines above the cursor into it. The alternate screen
        (a full-screen program, which redraws itself) is cut or padded."""
        cols, rows = max(1, cols), max(1, rows)
        old_cols = self.cols
        if cols == old_cols and rows == self.rows:
            return
        if self.alt is None:
            self._reflow(cols, rows)
        else:
            self._cut_or_pad(cols, rows)
        self.cols, self.rows = cols, rows
        self.top, self.bottom = 0, rows - 1
        self.x = min(max(self.x, 0), cols - 1)
        self.y = min(max(self.y, 0), rows - 1)
        # Stops past the old width, computed from the old width.
        self.tabstops = {t for t in self.tabstops if t < cols}
        if cols > old_cols:
            self.tabstops |= set(range(((old_cols - 1) // 8 + 1) * 8, cols, 8))
        self.all_dirty = True

    def _row_blank(self, chars: list[str], attrs: list[int]) -> bool:
        return attrs.count(0) == len(attrs) and chars.count(" ") == len(chars)

    def _cut_or_pad(self, cols: int, rows: int) -> None:
        """Resize without reflow (alternate screen shown; the main one is kept as is)."""
        buffers = [(self.chars, self.attrs, self.wrapped)]
        if self.alt is not None:
            buffers.append(self.alt)
        new_buffers = []
        for i, (chars, attrs, wrapped) in enumerate(buffers):
            chars, attrs, wrapped = list(chars), list(attrs), list(wrapped)
            if rows < len(chars):
                excess = len(chars) - rows
                from_top = min(excess, self.y) if i == 0 else excess
                del chars[:from_top], attrs[:from_top], wrapped[:from_top]
                del chars[rows:], attrs[rows:], wrapped[rows:]
                if i == 0:
                    self.y -= from_top
            while len(chars) < rows:
                chars.append([" "] * cols)
                attrs.append([0] * cols)
                wrapped.append(False)
            for y in range(rows):
                chars[y], attrs[y] = _fit(chars[y], attrs[y], cols)
            new_buffers.append((chars, attrs, wrapped))
        self.chars, self.attrs, self.wrapped = new_buffers[0]
        if self.alt is not None:
            self.alt = new_buffers[1]
        if cols > self.cols and self.wrap_next:
            self.x += 1  # the pending wrap now has room: the cursor follows the text
            self.wrap_next = False
        elif cols < self.cols and self.x >= cols:
            self.wrap_next = False

    def _reflow(self, cols: int, rows: int) -> None:
        old_rows = self.rows
        chars, attrs, wrapped = self.chars, self.attrs, self.wrapped
        # Screen rows that matter: down to the cursor or the last non-blank row.
        last = self.y
        for y in range(old_rows - 1, self.y, -1):
            if wrapped[y - 1] or not self._row_blank(chars[y], attrs[y]):
                last = y
                break
        hist = self.history
        nhist = len(hist)
        dropped = self.history_pushed - nhist  # lines that ever fell off its front
        out: list[tuple[list[str], list[int], bool]] = []
        if cols == self.cols:
            # Same width: no line changes shape; only the split between the
            # scrollback and the screen moves.
            screen_rows = [(chars[y], attrs[y], wrapped[y]) for y in range(last + 1)]
            need = rows - len(screen_rows)
            pull = min(max(0, need), nhist) if self._keep_history else 0
            for _ in range(pull):
                c, a, w = hist.pop()
                out.append(_unpack(c, a, w, cols))
            out.reverse()
            out.extend(screen_rows)
            cursor_row = pull + self.y
            cx, wrap_next = self.x, self.wrap_next
        else:
            # Logical lines: runs of soft-wrapped rows, history first, then the screen.
            logical: list[tuple[list[str], list[int]]] = []
            cur_c: list[str] = []
            cur_a: list[int] = []
            cursor_line, cursor_off = 0, 0
            total = nhist + last + 1
            for i in range(total):
                if i < nhist:
                    c0, a0, w = hist[i]
                    c, a, _ = _unpack(c0, a0, w, 0)
                else:
                    y = i - nhist
                    c, a, w = chars[y], attrs[y], wrapped[y]
                    if y == self.y:
                        cursor_line = len(logical)
                        cursor_off = len(cur_c) + self.x + (1 if self.wrap_next else 0)
                cur_c.extend(c)
                cur_a.extend(a)
                if not w or i == total - 1:
                    logical.append((cur_c, cur_a))
                    cur_c, cur_a = [], []
            hist.clear()
            cursor_row, cx, wrap_next = 0, 0, False
            for li, (c, a) in enumerate(logical):
                n = len(c)
                keep = cursor_off if li == cursor_line else 0
                while n > keep and c[n - 1] == " " and a[n - 1] == 0:
                    n -= 1
                pos = 0
                start_row = len(out)
                while True:
                    end = min(pos + cols, n)
                    if end < n and c[end] == "" and end - 1 > pos:
                        end -= 1  # never split a wide character from its right half
                    out.append((c[pos:end], a[pos:end], end < n))
                    if li == cursor_line and pos <= cursor_off < end:
                        cursor_row, cx = len(out) - 1, cursor_off - pos
                    pos = end
                    if pos >= n:
                        break
                if li == cursor_line and cursor_off >= n:
                    # The cursor is past the end of its line.
                    off = cursor_off - (sum(len(r[0]) for r in out[start_row:-1]))
                    cursor_row = len(out) - 1
                    if off >= cols:
                        cx, wrap_next = cols - 1, True
                    else:
                        cx = off
        # Split into scrollback and screen, keeping the cursor on the screen.
        start = max(0, len(out) - rows)
        start = min(start, cursor_row)
        kept = len(hist)
        if self._keep_history:
            for c, a, w in out[:start]:
                c, a = _fit(c, a, cols)
                self._push_history(c, a, w)
            dropped += max(0, kept + start - (hist.maxlen or 0))
        screen = out[start : start + rows]
        self.chars = []
        self.attrs = []
        self.wrapped = []
        for c, a, w in screen:
            c, a = _fit(c, a, cols)
            self.chars.append(c)
            self.attrs.append(a)
            self.wrapped.append(w)
        while len(self.chars) < rows:
            self.chars.append([" "] * cols)
            self.attrs.append([0] * cols)
            self.wrapped.append(False)
        # A viewer keeps its place by "lines dropped from the front"
        # (history_pushed - len(history)): only what overflowed counts as dropped.
        self.history_pushed = dropped + len(hist)
        self.y = cursor_row - start
        self.x = cx
        self.wrap_next = wrap_next

    # -- reading the screen and the scrollback ------------------------------------------

    @property
    def line_count(self) -> int:
        """Scrollback lines plus screen rows; lines are numbered 0..line_count-1."""
        return len(self.history) + self.rows

    def line_cells(self, i: int) -> tuple[str | list[str], int | list[int] | memoryview, bool]:
        """(cells, styles, wrapped) of line i (history first, then the screen); styles
        is one id for the whole line or indexable per cell."""
        h = len(self.history)
        if i < h:
            cells, styles, wrapped = self.history[i]
            if isinstance(styles, bytes):
                return cells, memoryview(styles).cast("H"), wrapped
            return cells, styles, wrapped
        y = i - h
        return self.chars[y], self.attrs[y], self.wrapped[y]

    def line_text(self, i: int) -> str:
        cells = self.line_cells(i)[0]
        return cells if isinstance(cells, str) else "".join(cells)

    def line_runs(self, i: int) -> list[tuple[str, int]]:
        """Line i as (text, style id) runs of equal style, for the renderer."""
        cells, styles, _ = self.line_cells(i)
        if isinstance(styles, int):
            return [(cells if isinstance(cells, str) else "".join(cells), styles)]
        runs: list[tuple[str, int]] = []
        start = 0
        cur = styles[0]
        n = len(styles)
        for x in range(1, n):
            s = styles[x]
            if s != cur:
                runs.append(("".join(cells[start:x]), cur))
                start = x
                cur = s
        runs.append(("".join(cells[start:n]), cur))
        return runs

    def display(self) -> list[str]:
        """The screen as text rows (tests, debugging)."""
        return ["".join(r) for r in self.chars]

    def iter_text(self) -> Iterator[str]:
        for i in range(self.line_count):
            yield self.line_text(i)

    def find(
        self,
        needle: str,
        start: int | None = None,
        backwards: bool = True,
        ignore_case: bool = True,
    ) -> tuple[int, int] | None:
        """The next line (and column) containing ``needle``, from line ``start``
        (exclusive) in the given direction; None when there is none."""
        if not needle:
            return None
        n = self.line_count
        if ignore_case:
            needle = needle.casefold()
        if start is None:
            start = n if backwards else -1
        rng = range(start - 1, -1, -1) if backwards else range(start + 1, n)
        for i in rng:
            text = self.line_text(i)
            if ignore_case:
                text = text.casefold()
            col = text.find(needle)
            if col >= 0:
                return i, col
        return None
