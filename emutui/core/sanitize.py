"""Make guest output safe for the host terminal.

A guest must not retitle, recolour the palette of, or write the clipboard of
the user's terminal. This streaming filter keeps printable text, C0 controls
that lay out text (BS, TAB, LF, CR, BEL is dropped), well-formed CSI sequences
(SGR colours, cursor movement, erase), and drops OSC (titles, OSC 52
clipboard, palette), DCS, APC, PM, SOS, and any malformed or over-long
sequence. State carries across chunks, so a sequence split over two reads is
still recognised.
"""

from __future__ import annotations

_ESC = 0x1B
_CSI_MAX = 64  # longer "CSI" runs are garbage, not sequences

# CSI final bytes we pass: cursor moves, erase, SGR, scroll region, insert/delete.
_CSI_ALLOWED_FINALS = frozenset(b"ABCDEFGHJKSTXZ@LMPdfhlmrsu`abeq")
# Private modes a guest may set (cursor visibility, autowrap); others (mouse,
# alternate screen, bracketed paste) change how the host terminal behaves.
_ALLOWED_PRIVATE = {b"?25", b"?7"}

_GROUND, _ESCAPE, _CSI, _STRING, _STRING_ESC = range(5)


class TerminalSanitizer:
    def __init__(self) -> None:
        self._state = _GROUND
        self._buf = bytearray()

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        state = self._state
        buf = self._buf
        for b in data:
            if state == _GROUND:
                if b == _ESC:
                    state = _ESCAPE
                elif (b >= 0x20 and b != 0x7F) or b in (0x08, 0x09, 0x0A, 0x0D):
                    out.append(b)
                elif b == 0x9B or b == 0x9D or b == 0x90:
                    # C1 CSI/OSC/DCS in 8-bit form are UTF-8 continuation bytes
                    # too; pass them as text (terminals in UTF-8 mode ignore C1).
                    out.append(b)
                # other C0 controls (BEL, SO/SI, ...) are dropped
            elif state == _ESCAPE:
                if b == ord("["):
                    state = _CSI
                    buf.clear()
                elif b in (ord("]"), ord("P"), ord("_"), ord("^"), ord("X")):
                    state = _STRING
                elif b in (ord("7"), ord("8"), ord("M"), ord("D"), ord("E")):
                    out += bytes((_ESC, b))  # save/restore cursor, index
                    state = _GROUND
                elif b == _ESC:
                    state = _ESCAPE
                else:
                    state = _GROUND  # charset selection, RIS (ESC c) etc.: dropped
            elif state == _CSI:
                if 0x40 <= b <= 0x7E:
                    params = bytes(buf)
                    if self._csi_ok(params, b):
                        out += b"\x1b[" + params + bytes((b,))
                    state = _GROUND
                    buf.clear()
                elif 0x20 <= b <= 0x3F and len(buf) < _CSI_MAX:
                    buf.append(b)
                else:
                    state = _GROUND  # malformed: drop the sequence
                    buf.clear()
                    if b == _ESC:
                        state = _ESCAPE
            elif state == _STRING:
                if b == 0x07:
                    state = _GROUND
                elif b == _ESC:
                    state = _STRING_ESC
            elif state == _STRING_ESC:
                state = _GROUND if b == ord("\\") else _STRING
        self._state = state
        return bytes(out)

    @staticmethod
    def _csi_ok(params: bytes, final: int) -> bool:
        if final not in _CSI_ALLOWED_FINALS:
            return False
        if params.startswith((b"?", b">", b"<", b"=")):
            return final in (ord("h"), ord("l")) and params in _ALLOWED_PRIVATE
        return final != ord("t")  # window ops: resize, title stack, reports


def sanitize(data: bytes) -> bytes:
    return TerminalSanitizer().feed(data)
