"""Parsers for the Renode Monitor's human-oriented output (spec 3.3, 3.4).

Renode ends written lines with ``\\r\\n\\r`` and value results with
``\\r\\r\\n``; after XML parsing a client usually sees doubled ``\\n``
instead. Every parser here first normalises both forms, so it works on the
raw capture, on what an XML parser delivers, and on a telnet transcript.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from emutui.core.errors import ProtocolError

_ANSI = re.compile(r"(?:\x1B[@-_]|[\x80-\x9F])[0-?]*[ -/]*[@-~]")


def lines(text: str) -> list[str]:
    """Non-empty lines, whatever mix of CR and LF separated them (Renode's own tests do this)."""
    text = _ANSI.sub("", text)
    return [ln for ln in re.split(r"\r\n|\r|\n", text) if ln.strip()]


def raw_lines(text: str) -> list[str]:
    """All lines, with the noise collapsed: CR-LF-CR and CR-CR-LF each count as one break."""
    text = _ANSI.sub("", text)
    text = text.replace("\r\n\r", "\n").replace("\r\r\n", "\n").replace("\r\n", "\n")
    text = text.replace("\r", "\n")
    text = re.sub(r"\n\n", "\n", text)  # what an XML parser makes of one CR-LF-CR
    return text.split("\n")


def clean(text: str) -> str:
    """Monitor output as plain text with single newlines."""
    return "\n".join(ln.rstrip() for ln in lines(text))


def parse_scalar(text: str) -> Any:
    """A value result: ``0x0001C200`` -> int, ``True`` -> bool, otherwise the stripped text."""
    s = clean(text).strip()
    if "\nPossible values are:" in s:
        s = s.split("\n", 1)[0].strip()  # an enum: its name, then the list of its values
    if s in ("True", "False"):
        return s == "True"
    m = re.fullmatch(r"(0x[0-9A-Fa-f]+)(?:\s*\((-?\d+)\))?", s)
    if m:
        return int(m.group(1), 16)
    if re.fullmatch(r"-?\d+", s):
        return int(s)
    return s


def parse_int(text: str, what: str = "value") -> int:
    v = parse_scalar(text)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ProtocolError(f"expected a number for {what}, Renode printed {text.strip()[:80]!r}")
    return v


def parse_hex_values(text: str, count: int, what: str = "values") -> list[int]:
    """The results of ``count`` ``;``-joined reads, in order."""
    vals = [int(x, 16) for x in re.findall(r"\b0x([0-9A-Fa-f]+)\b", _ANSI.sub("", text))]
    if len(vals) != count:
        raise ProtocolError(f"expected {count} {what} from Renode, got {len(vals)}")
    return vals


def parse_list(text: str) -> list[str]:
    """An enumerable result: ``[`` items separated by ``, `` ``]``."""
    body = " ".join(lines(text)).strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    return [x.strip() for x in body.split(",") if x.strip()]


@dataclass
class Peripheral:
    """One node of the ``peripherals`` tree."""

    name: str  # full Monitor name, e.g. ``sysbus.uart0``
    type: str
    depth: int
    ranges: list[tuple[int, int]] = field(default_factory=list)  # (start, end inclusive)
    notes: list[str] = field(default_factory=list)  # registration lines that are not ranges

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    def describe(self) -> str:
        parts = [f"<0x{s:08X}, 0x{e:08X}>" for s, e in self.ranges] + self.notes
        return "; ".join(parts)


_NODE = re.compile(
    r"^(?P<prefix>[ │]*?)(?P<branch>[├└]── )?(?P<name>[^\s()│├└]+) \((?P<type>[^()]*)\)$"
)
_RANGE = re.compile(r"<\s*0x([0-9A-Fa-f]+)\s*,\s*0x([0-9A-Fa-f]+)\s*>")


def parse_peripherals(text: str) -> list[Peripheral]:
    """The box-drawing tree of ``peripherals`` as a flat list with full dotted names.

    Depth comes from the column a node's name starts at, 4 columns a level,
    relative to the root (Renode prints two leading spaces; its docs do not).
    """
    out: list[Peripheral] = []
    stack: list[Peripheral] = []
    base: int | None = None
    for ln in lines(text):
        s = ln.rstrip()
        if s.endswith("peripherals:") or not s.strip(" │"):
            continue  # the header, or an indentation-only line
        node = _NODE.match(s)
        if node:
            col = len(node.group("prefix")) + (4 if node.group("branch") else 0)
            if base is None:
                base = col
            depth = max(0, (col - base) // 4)
            while stack and stack[-1].depth >= depth:
                stack.pop()
            name = node.group("name")
            full = f"{stack[-1].name}.{name}" if stack else name
            p = Peripheral(name=full, type=node.group("type"), depth=depth)
            out.append(p)
            stack.append(p)
            continue
        if not stack:
            raise ProtocolError(f"peripherals: unexpected line before any node: {s.strip()[:80]!r}")
        note = s.strip(" │")
        rng = _RANGE.search(note)
        if rng:
            stack[-1].ranges.append((int(rng.group(1), 16), int(rng.group(2), 16)))
        else:
            stack[-1].notes.append(note)
    if not out:
        raise ProtocolError("peripherals: Renode printed no tree (is a machine loaded?)")
    return out


@dataclass
class Member:
    name: str
    type: str
    kind: str  # "property", "field", "method", "indexer"
    readable: bool = True
    writable: bool = False
    signature: str = ""


_SECTION = re.compile(r"The following (methods|properties|indexers|fields) are available:")


def parse_members(text: str) -> list[Member]:
    """The help listing printed for an object named without arguments."""
    out: list[Member] = []
    section: str | None = None
    for ln in lines(text):
        m = _SECTION.search(ln)
        if m:
            section = {
                "methods": "method",
                "properties": "property",
                "indexers": "indexer",
                "fields": "field",
            }[m.group(1)]
            continue
        s = ln.strip()
        if s.startswith("Usage:") or section is None:
            if s.startswith("Usage:"):
                section = None if section != "method" else "method-usage"
            continue
        if section == "method-usage":
            continue
        if s.startswith("- ") and not s.startswith("- get:") and not s.startswith("- set:"):
            decl = s[2:].strip()
            if section == "method":
                mm = re.match(r"^(\S+(?:<[^>]*>)?)\s+(\w+)\s*\(", decl)
                if mm:
                    out.append(Member(mm.group(2), mm.group(1), "method", signature=decl))
                continue
            ro = "(read only)" in decl
            decl = decl.replace("(read only)", "").strip()
            parts = decl.rsplit(" ", 1)
            if len(parts) == 2:
                out.append(
                    Member(parts[1], parts[0], section, writable=section == "field" and not ro)
                )
            continue
        if s.startswith("available for") and out and out[-1].kind in ("property", "indexer"):
            out[-1].readable = "'get'" in s
            out[-1].writable = "'set'" in s
    return out


def format_arg(value: Any) -> str:
    """A Python value as a Monitor argument."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    s = str(value)
    if s and re.fullmatch(r"[\w.+\-:/@]+", s):
        return s
    return '"' + s.replace('"', '\\"') + '"'
