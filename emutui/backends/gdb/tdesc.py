"""Target descriptions (``qXfer:features:read:target.xml``): registers and architecture.

Register numbers follow the description order (``regnum`` attributes reset the
count), across included files (``xi:include``), as gdb numbers them; the ``g``
packet carries the registers in that order.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from emutui.core.errors import ProtocolError

MAX_INCLUDES = 32


@dataclass(slots=True)
class Register:
    name: str
    bitsize: int
    regnum: int
    type: str = "int"
    group: str = ""
    feature: str = ""

    @property
    def size(self) -> int:
        return (self.bitsize + 7) // 8


@dataclass
class TargetDescription:
    architecture: str = ""
    registers: list[Register] = field(default_factory=list)
    features: list[str] = field(default_factory=list)
    big_endian: bool = False

    def by_name(self, name: str) -> Register | None:
        for r in self.registers:
            if r.name == name:
                return r
        return None

    @property
    def family(self) -> str:
        """x86, arm, aarch64, riscv or the architecture string itself."""
        a = self.architecture.lower()
        if a.startswith("i386") or "x86" in a:
            return "x86"
        if a.startswith("aarch64"):
            return "aarch64"
        if a.startswith("arm"):
            return "arm"
        if a.startswith("riscv"):
            return "riscv"
        for f in self.features:
            if f.startswith("org.gnu.gdb.i386"):
                return "x86"
            if f.startswith("org.gnu.gdb.aarch64"):
                return "aarch64"
            if f.startswith("org.gnu.gdb.arm"):
                return "arm"
            if f.startswith("org.gnu.gdb.riscv"):
                return "riscv"
        return a or "unknown"

    @property
    def pc_name(self) -> str:
        fam = self.family
        names = {
            "x86": ("rip", "eip", "pc"),
            "arm": ("pc", "r15"),
            "aarch64": ("pc",),
            "riscv": ("pc",),
        }.get(fam, ("pc",))
        for n in names:
            if self.by_name(n) is not None:
                return n
        for r in self.registers:
            if r.type == "code_ptr":
                return r.name
        return names[0]

    @property
    def sp_name(self) -> str:
        for n in ("rsp", "esp", "sp", "r13"):
            if self.by_name(n) is not None:
                return n
        return "sp"

    def decode_g(self, data: bytes) -> dict[str, int]:
        """Register values from a ``g`` reply: those it covers, in regnum order."""
        out: dict[str, int] = {}
        off = 0
        order: Literal["big", "little"] = "big" if self.big_endian else "little"
        for r in sorted(self.registers, key=lambda r: r.regnum):
            if off + r.size > len(data):
                break
            out[r.name] = int.from_bytes(data[off : off + r.size], order)
            off += r.size
        return out

    def decode_one(self, data: bytes) -> int:
        return int.from_bytes(data, "big" if self.big_endian else "little")


Fetch = Callable[[str], Awaitable[bytes]]


async def load(fetch: Fetch, annex: str = "target.xml") -> TargetDescription:
    """Read ``annex`` and every file it includes through ``fetch`` (a qXfer reader)."""
    td = TargetDescription()
    state = {"regnum": 0, "includes": 0}

    async def parse(name: str) -> None:
        raw = await fetch(name)
        # QEMU writes <xi:include> without declaring the xi prefix; drop prefixes.
        raw = re.sub(rb"<(/?)[A-Za-z_][\w.-]*:", rb"<\1", raw)
        raw = re.sub(rb"\sxmlns:[A-Za-z_][\w.-]*=(\"[^\"]*\"|'[^']*')", b"", raw)
        try:
            root = ET.fromstring(raw)
        except ET.ParseError as e:
            raise ProtocolError(f"target description {name}: not XML ({e})") from None
        if root.tag.rsplit("}", 1)[-1] == "feature":
            td.features.append(root.get("name", ""))
            await walk(root, root.get("name", ""))
        else:
            await walk(root, "")

    async def walk(el: ET.Element, feature: str) -> None:
        for child in el:
            tag = child.tag.rsplit("}", 1)[-1]
            if tag == "architecture" and child.text:
                td.architecture = child.text.strip()
            elif tag == "include":
                href = child.get("href")
                if href:
                    state["includes"] += 1
                    if state["includes"] > MAX_INCLUDES:
                        raise ProtocolError("target description: too many includes")
                    await parse(href)
            elif tag == "feature":
                fname = child.get("name", "")
                td.features.append(fname)
                await walk(child, fname)
            elif tag == "reg":
                name = child.get("name")
                try:
                    bits = int(child.get("bitsize", "0"))
                    if child.get("regnum") is not None:
                        state["regnum"] = int(child.get("regnum", "0"))
                except ValueError:
                    raise ProtocolError(f"target description: bad register {name!r}") from None
                if not name or bits <= 0 or bits > 4096:
                    raise ProtocolError(f"target description: bad register {name!r}")
                td.registers.append(
                    Register(
                        name=name,
                        bitsize=bits,
                        regnum=state["regnum"],
                        type=child.get("type", "int"),
                        group=child.get("group", ""),
                        feature=feature,
                    )
                )
                state["regnum"] += 1
            elif tag == "target":
                await walk(child, feature)

    await parse(annex)
    if not td.registers:
        raise ProtocolError("target description has no registers")
    return td
