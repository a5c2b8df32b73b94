"""Disassembly with capstone; the architecture from the target description and
the CPU's own mode bits (x86 CR0.PE/EFER.LMA, ARM CPSR.T)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emutui.core.errors import UnsupportedError


@dataclass(frozen=True, slots=True)
class Insn:
    addr: int
    size: int
    raw: bytes
    mnemonic: str
    op_str: str
    is_call: bool = False
    is_branch: bool = False

    @property
    def text(self) -> str:
        return f"{self.mnemonic} {self.op_str}".rstrip()


def mode_for(family: str, regs: dict[str, int], pc_bits: int) -> str:
    """A short mode name: x86-16/32/64, arm, thumb, aarch64, riscv32/64."""
    if family == "x86":
        efer = regs.get("efer", 0)
        cr0 = regs.get("cr0", 1)
        if efer & (1 << 10) and pc_bits == 64:  # LMA (CS.L is not visible: assume 64)
            return "x86-64"
        if not cr0 & 1:
            return "x86-16"
        return "x86-32"
    if family == "arm":
        return "thumb" if regs.get("cpsr", 0) & (1 << 5) else "arm"
    if family == "aarch64":
        return "aarch64"
    if family == "riscv":
        return "riscv64" if pc_bits == 64 else "riscv32"
    raise UnsupportedError(f"no disassembler for architecture {family!r}")


_CACHE: dict[str, Any] = {}


def _engine(mode: str) -> Any:
    eng = _CACHE.get(mode)
    if eng is not None:
        return eng
    import capstone as cs

    table: dict[str, tuple[int, int]] = {
        "x86-16": (cs.CS_ARCH_X86, cs.CS_MODE_16),
        "x86-32": (cs.CS_ARCH_X86, cs.CS_MODE_32),
        "x86-64": (cs.CS_ARCH_X86, cs.CS_MODE_64),
        "arm": (cs.CS_ARCH_ARM, cs.CS_MODE_ARM),
        "thumb": (cs.CS_ARCH_ARM, cs.CS_MODE_THUMB),
        "aarch64": (cs.CS_ARCH_ARM64, cs.CS_MODE_ARM),
        "riscv32": (cs.CS_ARCH_RISCV, cs.CS_MODE_RISCV32 | cs.CS_MODE_RISCVC),
        "riscv64": (cs.CS_ARCH_RISCV, cs.CS_MODE_RISCV64 | cs.CS_MODE_RISCVC),
    }
    if mode not in table:
        raise UnsupportedError(f"no disassembler for mode {mode!r}")
    eng = cs.Cs(*table[mode])
    eng.detail = True
    _CACHE[mode] = eng
    return eng


def disassemble(code: bytes, addr: int, mode: str, count: int) -> list[Insn]:
    """Up to ``count`` instructions; undecodable bytes become ``.byte`` lines."""
    import capstone as cs

    eng = _engine(mode)
    out: list[Insn] = []
    off = 0
    while len(out) < count and off < len(code):
        got = False
        for i in eng.disasm(code[off:], addr + off):
            groups = set(i.groups)
            out.append(
                Insn(
                    i.address,
                    i.size,
                    bytes(i.bytes),
                    i.mnemonic,
                    i.op_str,
                    is_call=cs.CS_GRP_CALL in groups,
                    is_branch=bool(groups & {cs.CS_GRP_JUMP, cs.CS_GRP_CALL, cs.CS_GRP_RET}),
                )
            )
            off += i.size
            got = True
            if len(out) >= count:
                break
        if not got or (len(out) < count and off < len(code)):
            if off >= len(code):
                break
            step = 2 if mode in ("thumb",) or mode.startswith("riscv") else 1
            if mode in ("arm", "aarch64"):
                step = 4
            chunk = code[off : off + step]
            out.append(Insn(addr + off, len(chunk), chunk, ".byte", chunk.hex()))
            off += len(chunk)
    return out


def insn_align(mode: str) -> int:
    return {"arm": 4, "aarch64": 4, "thumb": 2, "riscv32": 2, "riscv64": 2}.get(mode, 1)
