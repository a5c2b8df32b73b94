"""What a value typed for a memory write means, in the CLI and in the hex view alike.

``0x12345678`` is a number: it is written as one word of the given width (the hex
view's word size, at least as wide as the number's digits) in the target's byte
order, so it reads back as 0x12345678. Plain hex digits (``78 56 34 12``,
``deadbeef``) are bytes, written in memory order as typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

WIDTHS = (1, 2, 4, 8)
_NUMBER = re.compile(r"0[xX]([0-9a-fA-F_]+)")


@dataclass(frozen=True)
class WriteValue:
    data: bytes
    words: int  # how many numbers were given (0: plain bytes)
    width: int  # bytes per number (1 for plain bytes)
    byte_order: str

    def describe(self) -> str:
        """What will be written, in words a person checks before saying yes."""
        if not self.words:
            return f"{len(self.data)} bytes in memory order: {self.data.hex(' ')}"
        order: Literal["little", "big"] = "big" if self.byte_order == "big" else "little"
        nums = ", ".join(
            f"0x{int.from_bytes(self.data[i : i + self.width], order):0{self.width * 2}x}"
            for i in range(0, len(self.data), self.width)
        )
        return (
            f"{nums} as {self.width * 8}-bit {order}-endian "
            f"word{'s' if self.words > 1 else ''} (bytes {self.data.hex(' ')})"
        )


def _width_for(digits: str) -> int:
    need = max(1, (len(digits) + 1) // 2)
    for w in WIDTHS:
        if w >= need:
            return w
    raise ValueError(f"0x{digits} is wider than 64 bits")


def parse_write_value(text: str, width: int = 1, byte_order: str = "little") -> WriteValue:
    """``0x…`` numbers (each one word of ``width`` bytes or wider, if its digits need
    it), or plain hex bytes in memory order. Raises ValueError with a message to show."""
    tokens = text.replace(",", " ").split()
    if not tokens:
        raise ValueError("type a value: 0x12345678 (a number) or 78 56 34 12 (bytes)")
    numbers = [_NUMBER.fullmatch(t) for t in tokens]
    if any(numbers):
        if not all(numbers):
            raise ValueError("mix of numbers and bytes: type 0x-numbers only, or hex bytes only")
        digits = [m.group(1).replace("_", "") for m in numbers if m is not None]
        w = max([width, *(_width_for(d) for d in digits)])
        if w not in WIDTHS:
            raise ValueError(f"{w * 8}-bit words are not supported")
        order: Literal["little", "big"] = "big" if byte_order == "big" else "little"
        data = b"".join(int(d, 16).to_bytes(w, order) for d in digits)
        return WriteValue(data, len(digits), w, order)
    cleaned = "".join(tokens).replace(":", "")
    if len(cleaned) % 2:
        raise ValueError(
            f"{text.strip()!r}: an odd number of hex digits (bytes are two digits each; "
            "a number needs 0x)"
        )
    try:
        data = bytes.fromhex(cleaned)
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not hex bytes (e.g. 78 56 34 12)") from None
    return WriteValue(data, 0, 1, byte_order)
