"""Bytes in, screen operations out: the parser of emutui's terminal emulator.

Speed comes from working on runs, not characters: each chunk is decoded once
(incremental UTF-8, so a character split across reads survives), split by one
compiled regex into alternating printable runs and control/escape sequences,
and each run is drawn with one call. Parsed sequences are memoised (a systemd
boot repeats the same dozen SGR and CSI sequences), so most sequences cost a
dict lookup and a bound-method call.

Safety: OSC, DCS, APC, PM and SOS strings (titles, OSC 52 clipboard writes,
palette changes, sixel, tmux passthrough) are parsed and dropped, including
when split across chunks; nothing the guest sends is ever written to the host
terminal, and malformed or over-long sequences are discarded.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from functools import partial
from typing import Any

from emutui.tui.term.screen import Screen

# One alternative per kind of non-text token; everything between matches is
# printable text (no C0, no DEL, no C1).
_SPLIT = re.compile(
    r"(\r\n"  # the commonest pair, dispatched as one token
    r"|\x1b\[[0-?]*[ -/]*[@-~]"  # complete CSI
    # A CSI with C0 controls (or DEL) inside: VT terminals execute the control and
    # carry on with the sequence; CAN and SUB abort it.
    r"|\x1b\[[0-?\x00-\x17\x19\x1c-\x1f\x7f]*[ -/\x00-\x17\x19\x1c-\x1f\x7f]*[@-~\x18\x1a]"
    r"|\x1b[\]P_^X][^\x07\x18\x1a\x1b\x9c]*(?:[\x07\x18\x1a\x9c]|\x1b\\)?"  # OSC/DCS/APC/PM/SOS
    r"|\x1b[ -/]*[0-~]"  # other escape sequences (charsets, DECSC, IND, ...)
    r"|[\x00-\x1a\x1c-\x1f\x7f-\x9f]"  # one C0/C1 control
    r"|\x1b)"  # ESC followed by something that starts no sequence
)
# What may still become a sequence when the next chunk arrives.
_INCOMPLETE = re.compile(
    r"\x1b(?:\[[0-?\x00-\x17\x19\x1c-\x1f\x7f]*[ -/\x00-\x17\x19\x1c-\x1f\x7f]*|[ -/]*)?"
)
_C0_IN_CSI = re.compile(r"[\x00-\x1f\x7f]")
# How a string (OSC/DCS/...) left open by the previous chunk ends.
_STRING_END = re.compile(r"[\x07\x18\x1a\x9c]|\x1b")

_MAX_PENDING = 256  # an unfinished CSI longer than this is garbage: dropped
_CACHE_MAX = 4096
_MISSING: Any = object()

# A parsed sequence: a ready-to-call action (a bound method or a partial), or None.
Handler = Callable[[], Any]


def _num(s: str, default: int) -> int:
    if not s:
        return default
    s = s.split(":", 1)[0]
    if not s.isdigit():
        return default
    s = s.lstrip("0") or "0"  # leading zeros are just zeros (vttest pads with them)
    if len(s) > 5:
        return 65535
    return int(s)


def _run_all(actions: tuple[Handler, ...]) -> None:
    for a in actions:
        a()


class Terminal:
    """A Screen plus the byte parser that drives it."""

    def __init__(self, cols: int = 80, rows: int = 24, scrollback: int = 10000) -> None:
        self.screen = Screen(cols, rows, scrollback)
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = ""
        self._in_string = False
        self.bytes_fed = 0
        self.dropped_strings = 0  # OSC/DCS/... sequences seen and discarded
        self._cache: dict[str, Handler | None] = {}
        self._init_cache()

    def _init_cache(self) -> None:
        s = self.screen
        noop: Handler | None = None
        self._cache = {
            "\r\n": s.crlf,
            "\r": s.cr,
            "\n": s.lf,
            "\x0b": s.lf,
            "\x0c": s.lf,
            "\x08": s.bs,
            "\t": s.tab,
            "\x0e": s.shift_out_,
            "\x0f": s.shift_in,
            "\x07": noop,
            "\x1b": noop,
        }

    # -- feeding ------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self.bytes_fed += len(data)
        self.feed_text(self._decoder.decode(data))

    def feed_text(self, text: str) -> None:
        if self._pending:
            text = self._pending + text
            self._pending = ""
        if not text:
            return
        if self._in_string:
            text = self._skip_string(text)
            if not text:
                return
        # Hold back a sequence cut off by the end of the chunk.
        i = text.rfind("\x1b")
        if i >= 0 and _INCOMPLETE.fullmatch(text, i):
            if len(text) - i <= _MAX_PENDING:
                self._pending = text[i:]
            text = text[:i]
        parts = _SPLIT.split(text)
        draw = self.screen.draw
        cache = self._cache
        # parts = [text, token, text, token, ..., text]; zip(it, it) walks the pairs
        # and leaves the final text for after the loop.
        it = iter(parts)
        for t, tok in zip(it, it, strict=False):
            if t:
                draw(t)
            h = cache.get(tok, _MISSING)
            if h is _MISSING:
                h = self._compile(tok)
            if h is not None:
                h()
        last = parts[-1]
        if last:
            draw(last)
        elif len(parts) > 1:
            # A string token with no terminator that reaches the end of the chunk
            # goes on in the next one (one that stops before an ESC was aborted).
            tok = parts[-2]
            if (
                len(tok) >= 2
                and tok[0] == "\x1b"
                and tok[1] in "]P_^X"
                and tok[-1] not in "\x07\x18\x1a\x9c"
                and not tok.endswith("\x1b\\")
            ):
                self._in_string = True

    def _skip_string(self, text: str) -> str:
        """Drop the rest of an OSC/DCS/... string; return what follows it."""
        pos = 0
        while True:
            m = _STRING_END.search(text, pos)
            if m is None:
                return ""
            if m.group() != "\x1b":
                self._in_string = False
                return text[m.end() :]
            j = m.start()
            if j + 1 >= len(text):
                self._pending = "\x1b"  # ESC at the very end: ST or a new sequence?
                return ""
            self._in_string = False
            if text[j + 1] == "\\":
                return text[j + 2 :]
            return text[j:]  # ESC starting something else aborts the string

    # -- sequence compilation -------------------------------------------------------------

    def _compile(self, tok: str) -> Handler | None:
        """Turn a token into (bound method, args); memoised unless it is a string."""
        s = self.screen
        h: Handler | None = None
        cacheable = True
        if tok.startswith("\x1b["):
            controls = _C0_IN_CSI.findall(tok, 2)
            if controls:
                h = self._compile_csi_with_controls(tok, controls)
            else:
                h = self._compile_csi(tok)
        elif len(tok) >= 2 and tok[0] == "\x1b" and tok[1] in "]P_^X":
            cacheable = False
            self.dropped_strings += 1
            if tok[1] == "]":
                s.title_changes += 1
        elif tok.startswith("\x1b") and len(tok) >= 2:
            h = self._compile_esc(tok)
        # other single controls: ignored (NUL, BEL, ENQ, C1, ...)
        if cacheable:
            if len(self._cache) > _CACHE_MAX:
                self._init_cache()
            self._cache[tok] = h
        return h

    def _compile_esc(self, tok: str) -> Handler | None:
        s = self.screen
        final = tok[-1]
        inter = tok[1:-1]
        if inter == "":
            table: dict[str, Handler] = {
                "7": s.save_cursor,
                "8": s.restore_cursor,
                "D": s.index,
                "E": s.next_line,
                "M": s.reverse_index,
                "H": s.set_tabstop,
                "c": s.reset,
            }
            return table.get(final)
        if inter == "#" and final == "8":
            return s.alignment_test
        if inter in ("(", ")"):
            return partial(s.designate, inter == "(", final == "0")
        return None

    def _compile_csi_with_controls(self, tok: str, controls: list[str]) -> Handler | None:
        """A CSI with C0 controls inside: the controls run first (where the terminal
        met them), then the sequence without them, unless CAN/SUB aborted it."""
        actions: list[Handler] = []
        for c in controls:
            if c in "\x18\x1a\x7f":
                continue
            h = self._cache.get(c, _MISSING)
            if h is _MISSING:
                h = self._compile(c)
            if h is not None:
                actions.append(h)
        if tok[-1] not in "\x18\x1a":
            clean = _C0_IN_CSI.sub("", tok[2:])
            h = self._compile_csi("\x1b[" + clean)
            if h is not None:
                actions.append(h)
        if not actions:
            return None
        if len(actions) == 1:
            return actions[0]
        return partial(_run_all, tuple(actions))

    def _compile_csi(self, tok: str) -> Handler | None:
        s = self.screen
        final = tok[-1]
        body = tok[2:-1]
        inter = ""
        while body and body[-1] in " !\"#$%&'()*+,-./":
            inter = body[-1] + inter
            body = body[:-1]
        prefix = ""
        if body and body[0] in "<=>?":
            prefix, body = body[0], body[1:]
        if inter:
            return None  # DECSCUSR (cursor shape), DECSTR etc.: not needed here
        if final == "m":
            if prefix:
                return None
            return partial(self._sgr, body)
        ps = body.split(";") if body else []

        def p(i: int, default: int = 1) -> int:
            return _num(ps[i], default) if i < len(ps) else default

        if prefix == "?":
            if final in "hl":
                return partial(s.set_mode, [_num(x, 0) for x in ps], True, final == "h")
            return None
        if prefix == ">":
            if final == "c":
                return partial(s.device_attributes, True)
            return None
        if prefix:
            return None
        one = p(0)
        simple: dict[str, Handler] = {
            "A": partial(s.cuu, one),
            "B": partial(s.cud, one),
            "e": partial(s.cud, one),
            "C": partial(s.cuf, one),
            "a": partial(s.cuf, one),
            "D": partial(s.cub, one),
            "E": partial(s.cnl, one),
            "F": partial(s.cpl, one),
            "G": partial(s.cha, one),
            "`": partial(s.cha, one),
            "d": partial(s.vpa, one),
            "H": partial(s.cup, p(0), p(1)),
            "f": partial(s.cup, p(0), p(1)),
            "J": partial(s.erase_in_display, p(0, 0)),
            "K": partial(s.erase_in_line, p(0, 0)),
            "X": partial(s.erase_chars, one),
            "@": partial(s.insert_chars, one),
            "P": partial(s.delete_chars, one),
            "L": partial(s.insert_lines, one),
            "M": partial(s.delete_lines, one),
            "S": partial(s.scroll_up, one),
            "T": partial(s.scroll_down, one),
            "I": partial(s.forward_tab, one),
            "Z": partial(s.back_tab, one),
            "b": partial(s.repeat, one),
            "g": partial(s.clear_tabstop, p(0, 0)),
            "r": partial(s.set_margins, p(0, 0), p(1, 0)),
            "s": s.save_cursor,
            "u": s.restore_cursor,
            "n": partial(s.report, p(0, 0), False),
            "c": partial(s.device_attributes, False),
            "t": partial(s.window_report, p(0, 0)),
        }
        if final in "hl":
            return partial(s.set_mode, [_num(x, 0) for x in ps], False, final == "h")
        return simple.get(final)  # q, p ...: ignored

    def _sgr(self, params: str) -> None:
        s = self.screen
        s.sid = s.table.sgr(s.sid, params)

    # -- convenience ------------------------------------------------------------------------

    def resize(self, cols: int, rows: int) -> None:
        self.screen.resize(cols, rows)

    def take_responses(self) -> bytes:
        """Answers the guest asked for (cursor position, device attributes)."""
        out = b"".join(self.screen.responses)
        self.screen.responses.clear()
        return out
