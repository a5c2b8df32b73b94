"""ELF symbols (pyelftools): name → address and address → name+offset."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path

from emutui.core.errors import ConfigError, NotFoundError


@dataclass(frozen=True, slots=True)
class Symbol:
    name: str
    addr: int
    size: int
    kind: str  # FUNC, OBJECT, NOTYPE


class Symbols:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.by_name: dict[str, Symbol] = {}
        self._sorted: list[Symbol] = []
        self._addrs: list[int] = []
        self.text_ranges: list[tuple[int, int]] = []
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        from elftools.common.exceptions import ELFError
        from elftools.elf.elffile import ELFFile
        from elftools.elf.sections import SymbolTableSection

        try:
            with open(path, "rb") as f:
                elf = ELFFile(f)
                for sec in elf.iter_sections():
                    if sec["sh_flags"] & 0x4 and sec["sh_addr"]:  # SHF_EXECINSTR
                        self.text_ranges.append((sec["sh_addr"], sec["sh_addr"] + sec["sh_size"]))
                    if not isinstance(sec, SymbolTableSection):
                        continue
                    for s in sec.iter_symbols():
                        kind = s["st_info"]["type"]
                        if not s.name or kind in ("STT_SECTION", "STT_FILE"):
                            continue
                        if s["st_shndx"] in ("SHN_UNDEF", "SHN_ABS"):
                            continue
                        sym = Symbol(s.name, int(s["st_value"]), int(s["st_size"]), kind[4:])
                        # a global wins over a local of the same name
                        if sym.name not in self.by_name or s["st_info"]["bind"] == "STB_GLOBAL":
                            self.by_name[sym.name] = sym
        except OSError as e:
            raise ConfigError(f"{path}: cannot read the ELF ({e.strerror})") from None
        except ELFError as e:
            raise ConfigError(f"{path}: not an ELF file ({e})") from None
        self._sorted = sorted(self.by_name.values(), key=lambda s: (s.addr, s.name))
        self._addrs = [s.addr for s in self._sorted]

    def __bool__(self) -> bool:
        return bool(self.by_name)

    def lookup(self, name: str) -> int:
        sym = self.by_name.get(name)
        if sym is None:
            where = f" in {self.path.name}" if self.path else " (the target has no ELF)"
            raise NotFoundError(f"unknown symbol {name!r}{where}")
        return sym.addr

    def resolve(self, addr: int, max_offset: int = 0x10000) -> tuple[str, int] | None:
        """The symbol at or before ``addr``, and the offset into it."""
        i = bisect.bisect_right(self._addrs, addr) - 1
        if i < 0:
            return None
        sym = self._sorted[i]
        off = addr - sym.addr
        if sym.size and off >= sym.size and sym.kind != "NOTYPE":
            return None
        if off > max_offset:
            return None
        return sym.name, off

    def describe(self, addr: int) -> str:
        r = self.resolve(addr)
        if r is None:
            return ""
        return r[0] if r[1] == 0 else f"{r[0]}+0x{r[1]:x}"

    def at(self, addr: int) -> str | None:
        """A symbol that starts exactly at ``addr``."""
        i = bisect.bisect_left(self._addrs, addr)
        if i < len(self._addrs) and self._addrs[i] == addr:
            return self._sorted[i].name
        return None

    def start_of(self, addr: int) -> int | None:
        i = bisect.bisect_right(self._addrs, addr) - 1
        return self._addrs[i] if i >= 0 else None


def parse_address(text: str, symbols: Symbols) -> int:
    """A number (0x.. or decimal), a symbol, or symbol+offset."""
    t = text.strip()
    base, plus, off = t.partition("+")
    try:
        return int(t, 0)
    except ValueError:
        pass
    addr = symbols.lookup(base.strip())
    if plus:
        try:
            addr += int(off.strip(), 0)
        except ValueError:
            raise NotFoundError(f"bad offset in {text!r}") from None
    return addr
