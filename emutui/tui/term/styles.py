"""Interned cell styles and SGR.

A cell's style is a small int (a "style id") into a StyleTable; the table holds
``(fg, bg, flags)`` tuples. Interning keeps each cell at one machine word, lets a
row's styles live in a list (or an ``array('H')`` in scrollback) and makes the
renderer's style cache a plain dict lookup. No Textual or Rich import here: the
engine is benchmarked and unit-tested on its own.

Colours: -1 is the terminal default, 0..255 the xterm palette, and
``TRUECOLOR | 0xRRGGBB`` a 24-bit colour.
"""

from __future__ import annotations

from typing import NamedTuple

DEFAULT = -1
TRUECOLOR = 1 << 24

BOLD = 1
DIM = 2
ITALIC = 4
UNDERLINE = 8
BLINK = 16
REVERSE = 32
HIDDEN = 64
STRIKE = 128
OVERLINE = 256

# A guest could print millions of distinct truecolour styles; past this many the
# table stops growing and new styles fall back to their palette approximation,
# then to the default style, so memory stays bounded.
MAX_STYLES = 8192


class Style(NamedTuple):
    fg: int = DEFAULT
    bg: int = DEFAULT
    flags: int = 0


_SGR_SET = {
    1: BOLD,
    2: DIM,
    3: ITALIC,
    4: UNDERLINE,
    5: BLINK,
    6: BLINK,
    7: REVERSE,
    8: HIDDEN,
    9: STRIKE,
    21: UNDERLINE,
    53: OVERLINE,
}
_SGR_CLEAR = {
    22: BOLD | DIM,
    23: ITALIC,
    24: UNDERLINE,
    25: BLINK,
    27: REVERSE,
    28: HIDDEN,
    29: STRIKE,
    55: OVERLINE,
}


def _to_palette(rgb: int) -> int:
    """Nearest colour of the 6x6x6 cube (good enough when the table is full)."""
    r, g, b = (rgb >> 16) & 255, (rgb >> 8) & 255, rgb & 255

    def q(v: int) -> int:
        return 0 if v < 48 else 1 if v < 115 else (v - 35) // 40

    return 16 + 36 * q(r) + 6 * q(g) + q(b)


class StyleTable:
    """Style id <-> Style. Id 0 is the default style."""

    def __init__(self) -> None:
        self.styles: list[Style] = [Style()]
        self._ids: dict[Style, int] = {Style(): 0}
        # (style id, SGR parameter string) -> style id: systemd-style output repeats
        # the same few SGR sequences, so this turns nearly every SGR into one lookup.
        self._sgr_cache: dict[tuple[int, str], int] = {}
        # style id -> the style erase operations fill with (background colour kept).
        self._erase: dict[int, int] = {0: 0}

    def __len__(self) -> int:
        return len(self.styles)

    def intern(self, style: Style) -> int:
        sid = self._ids.get(style)
        if sid is not None:
            return sid
        if len(self.styles) >= MAX_STYLES:
            fg, bg = style.fg, style.bg
            if fg >= TRUECOLOR or bg >= TRUECOLOR:
                if fg >= TRUECOLOR:
                    fg = _to_palette(fg)
                if bg >= TRUECOLOR:
                    bg = _to_palette(bg)
                return self.intern(Style(fg, bg, style.flags))
            return 0
        sid = len(self.styles)
        self.styles.append(style)
        self._ids[style] = sid
        return sid

    def erase_id(self, sid: int) -> int:
        """The style of blanks made by erase/scroll: only the background survives (xterm BCE)."""
        e = self._erase.get(sid)
        if e is None:
            bg = self.styles[sid].bg
            e = 0 if bg == DEFAULT else self.intern(Style(DEFAULT, bg, 0))
            self._erase[sid] = e
        return e

    def sgr(self, sid: int, params: str) -> int:
        key = (sid, params)
        out = self._sgr_cache.get(key)
        if out is None:
            out = self._apply_sgr(sid, params)
            if len(self._sgr_cache) > 4096:
                self._sgr_cache.clear()
            self._sgr_cache[key] = out
        return out

    def _apply_sgr(self, sid: int, params: str) -> int:
        fg, bg, flags = self.styles[sid]
        # Colon sub-parameters (38:2::r:g:b) and semicolon lists (38;2;r;g;b) both occur.
        items: list[list[int]] = []
        for part in params.split(";"):
            sub = [_num(s) for s in part.split(":")]
            items.append(sub)
        i = 0
        n = len(items)
        while i < n:
            sub = items[i]
            p = sub[0]
            i += 1
            if p == 0:
                fg, bg, flags = DEFAULT, DEFAULT, 0
            elif 30 <= p <= 37:
                fg = p - 30
            elif 40 <= p <= 47:
                bg = p - 40
            elif 90 <= p <= 97:
                fg = p - 90 + 8
            elif 100 <= p <= 107:
                bg = p - 100 + 8
            elif p == 39:
                fg = DEFAULT
            elif p == 49:
                bg = DEFAULT
            elif p == 4 and len(sub) > 1:
                # 4:0 is "no underline"; 4:1..4:5 (single, double, curly, dotted,
                # dashed) are all drawn as an underline here.
                if sub[1] == 0:
                    flags &= ~UNDERLINE
                else:
                    flags |= UNDERLINE
            elif p in (38, 48, 58):
                # colon form (38:5:n, 38:2:[cs]:r:g:b) carries its own sub-parameters;
                # the semicolon form eats the parameters that follow.
                rest = sub[1:] if len(sub) > 1 else [x[0] for x in items[i : i + 4]]
                colour, used = _ext_colour(rest, len(sub) > 1)
                if len(sub) == 1:
                    i += used
                if colour is not None:
                    if p == 38:
                        fg = colour
                    elif p == 48:
                        bg = colour
            elif p in _SGR_SET:
                flags |= _SGR_SET[p]
            elif p in _SGR_CLEAR:
                flags &= ~_SGR_CLEAR[p]
            # anything else (fonts, frames, ...) is ignored
        return self.intern(Style(fg, bg, flags))


def _num(s: str) -> int:
    if not s:
        return 0
    if s[0] == "0" and s.isdigit():
        s = s.lstrip("0") or "0"  # leading zeros are just zeros
    if len(s) > 5 or not s.isdigit():  # malformed or huge: clamp, never raise
        return 65535 if s.isdigit() else 0
    return int(s)


def _ext_colour(rest: list[int], colon: bool) -> tuple[int | None, int]:
    """Parse the tail of 38/48/58: returns (colour or None, parameters consumed)."""
    if not rest:
        return None, 0
    kind = rest[0]
    if kind == 5:
        if len(rest) >= 2:
            return min(rest[1], 255), 2
        return None, len(rest)
    if kind == 2:
        vals = rest[1:]
        if colon and len(vals) >= 4:  # 38:2:colour-space:r:g:b
            vals = vals[1:]
        if len(vals) >= 3:
            r, g, b = (min(v, 255) for v in vals[:3])
            return TRUECOLOR | (r << 16) | (g << 8) | b, 4
        return None, len(rest)
    return None, 1
