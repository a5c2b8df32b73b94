"""Make guest and emulator bytes safe for the host terminal: one filter for every path.

A guest (or a peer quoted in an error) must not retitle the user's terminal, write
its clipboard (OSC 52), switch it to the alternate screen, lock its keyboard
(``ESC[2h``), wipe its scrollback (``ESC[3J``), make it answer (``ESC[6n``, DA) or
change any mode that outlives the session. This streaming filter is an allow-list;
everything not on it is dropped:

- text: printable ASCII and well-formed UTF-8, except C1 controls (U+0080..U+009F);
  invalid UTF-8 (raw 8-bit bytes, overlong forms, surrogates) is dropped;
- C0 controls that lay out text: BS, TAB, LF, CR (BEL and the rest are dropped);
- ``ESC 7`` / ``ESC 8`` (save, restore cursor), ``ESC D`` / ``ESC E`` / ``ESC M`` (index);
- CSI sequences with only digits, ``;`` and ``:`` as parameters (no private marker
  ``? > < =``, no intermediate bytes) and one of these finals: SGR ``m``; cursor
  ``A B C D E F G H f d ` a e``; erase ``J`` (0, 1, 2: never 3) and ``K``; edit
  ``@ P X L M``; scroll ``S T`` and region ``r``; save/restore ``s u``.

Dropped whole: every mode set/reset (``h``, ``l``: private or not), reports and
queries (``n``, ``c``, ``t`` window ops, ``q``), OSC, DCS, APC, PM and SOS strings up
to their terminator, charset designations and RIS. C1 controls are recognised in
both encodings (raw ``\\x9b`` and UTF-8 ``\\xc2\\x9b``): a C1 CSI is treated like
``ESC [`` (and re-emitted 7-bit if allowed), C1 string introducers swallow their
string, other C1 controls are dropped. State carries across chunks, so a sequence or
character split over two reads is still recognised.
"""

from __future__ import annotations

import re

_ESC = 0x1B
_CSI_MAX = 64  # longer "CSI" runs are garbage, not sequences

_CSI_FINALS = frozenset(b"mABCDEFGHfd`aeJK@PXLMSTrsu")
_PARAM_BYTES = frozenset(b"0123456789;:")
_ESC_SINGLE = frozenset(b"78DEM")
_STRING_INTRO = frozenset(b"]P_^X")  # OSC, DCS, APC, PM, SOS after ESC
_C1_STRING = frozenset((0x9D, 0x90, 0x9F, 0x9E, 0x98))
_C1_CSI = 0x9B

_GROUND, _ESCAPE, _CSI, _STRING, _STRING_ESC, _UTF8 = range(6)


class TerminalSanitizer:
    def __init__(self) -> None:
        self._state = _GROUND
        self._buf = bytearray()  # CSI parameters, or a UTF-8 character being read
        self._need = 0  # continuation bytes still expected in _UTF8
        self._csi_bad = False

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for b in data:
            self._byte(b, out)
        return bytes(out)

    def _byte(self, b: int, out: bytearray) -> None:
        state = self._state
        if state == _UTF8:
            if 0x80 <= b <= 0xBF:
                self._buf.append(b)
                self._need -= 1
                if self._need == 0:
                    self._state = _GROUND
                    self._char(bytes(self._buf), out)
                return
            self._state = _GROUND  # truncated character: dropped; b starts afresh
            state = _GROUND
        if state == _GROUND:
            if b == _ESC:
                self._state = _ESCAPE
            elif 0x20 <= b < 0x7F or b in (0x08, 0x09, 0x0A, 0x0D):
                out.append(b)
            elif 0xC2 <= b <= 0xF4:
                self._state = _UTF8
                self._buf = bytearray((b,))
                self._need = 1 if b < 0xE0 else 2 if b < 0xF0 else 3
            elif 0x80 <= b <= 0x9F:
                self._c1(b)  # a raw 8-bit C1 control
            # other C0 controls, DEL, stray continuation bytes: dropped
        elif state == _ESCAPE:
            if b == ord("["):
                self._enter_csi()
            elif b in _STRING_INTRO:
                self._state = _STRING
                self._buf = bytearray()
            elif b in _ESC_SINGLE:
                out += bytes((_ESC, b))
                self._state = _GROUND
            elif b == _ESC:
                pass
            elif 0x20 <= b <= 0x2F:
                self._state = _ESCAPE  # intermediates of nF sequences (charsets): skipped
            else:
                self._state = _GROUND  # RIS (ESC c), keypad modes and the rest: dropped
        elif state == _CSI:
            if 0x40 <= b <= 0x7E:
                params = bytes(self._buf)
                if not self._csi_bad and self._csi_ok(params, b):
                    out += b"\x1b[" + params + bytes((b,))
                self._state = _GROUND
            elif 0x20 <= b <= 0x3F and len(self._buf) < _CSI_MAX:
                if b not in _PARAM_BYTES:
                    self._csi_bad = True  # private marker or intermediate byte
                self._buf.append(b)
            else:
                self._state = _GROUND  # malformed: drop the sequence
                if b == _ESC:
                    self._state = _ESCAPE
        elif state == _STRING:
            if b == 0x07 or b == 0x9C:
                self._state = _GROUND
            elif b == _ESC:
                self._state = _STRING_ESC
                self._buf = bytearray()
            elif b == 0xC2:
                self._state = _STRING_ESC  # maybe UTF-8 ST (\xc2\x9c)
                self._buf = bytearray((0xC2,))
        elif state == _STRING_ESC:
            utf8 = self._buf[:1] == b"\xc2"  # after \xc2 (UTF-8 ST?) or after ESC
            if (utf8 and b == 0x9C) or (not utf8 and b == ord("\\")):
                self._state = _GROUND
            else:
                self._state = _STRING
            self._buf = bytearray()

    def _char(self, seq: bytes, out: bytearray) -> None:
        try:
            ch = seq.decode("utf-8")
        except UnicodeDecodeError:
            return  # overlong, surrogate or out of range: dropped
        cp = ord(ch)
        if 0x80 <= cp <= 0x9F:
            self._c1(cp)
        else:
            out += seq

    def _c1(self, cp: int) -> None:
        if cp == _C1_CSI:
            self._enter_csi()
        elif cp in _C1_STRING:
            self._state = _STRING
            self._buf = bytearray()
        # any other C1 control (IND, NEL, ST, ...) is dropped

    def _enter_csi(self) -> None:
        self._state = _CSI
        self._buf = bytearray()
        self._csi_bad = False

    @staticmethod
    def _csi_ok(params: bytes, final: int) -> bool:
        if final not in _CSI_FINALS:
            return False
        if final == ord("J"):
            return params in (b"", b"0", b"1", b"2")  # 3 wipes the user's scrollback
        return True


def sanitize(data: bytes) -> bytes:
    return TerminalSanitizer().feed(data)


def sanitize_text(text: str) -> str:
    """``sanitize`` for text already decoded (peer strings): same allow-list."""
    data = text.encode("utf-8", "surrogateescape")
    return sanitize(data).decode("utf-8", "replace")


_ANY_CSI = re.compile(r"\x1b\[[0-9;:]*[\x40-\x7e]|\x1b[78DEM]")
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def display_line(text: str) -> str:
    """One line of peer text for a table, an error message or a status: the filter,
    then no escape sequences and no controls at all (a tab becomes a space)."""
    data = text.encode("utf-8", "surrogateescape")
    clean = sanitize(data).decode("utf-8", "replace")
    clean = _ANY_CSI.sub("", clean)
    return _CONTROLS.sub("", clean).replace("\t", " ")
