"""A fake CpuSession for the CPU pane's snapshots and benches: the test guest's code
(bytes of tests/guest/guest.S from 0x100200) and symbols, stopped at isr_timer."""

from __future__ import annotations

import asyncio
from typing import Any

from emutui.backends.gdb.disasm import disassemble, mode_for
from emutui.backends.gdb.session import CpuState, Registers
from emutui.backends.gdb.symbols import Symbol, Symbols, parse_address
from emutui.core.errors import RangeError

BASE = 0x100200
CODE = bytes.fromhex(
    "00ff05dc03100066baf803be60031000e85500000066bafd03eca80174d466baf803ecc3526683c201"
    "b000ee6683c202b080ee6683ea03b001ee6642b000ee6683c202b003ee664ab0c7ee6683c202b00bee"
    "5a526642b001ee5ac350526683c205eca82074fb5a58eec3ac84c07407e8e7ffffffebf4c3528d7e05"
    "a1d8031000e8030000005aebe2b908000000c1c00489c383e30f8a9b2b031000881f47e2edc350ff05"
    "d0031000b020e62058cf50b020e6a0e62058cf66baf803be03031000e8a5fffffffaf4ebfc"
)
SYMS = {
    "uart_init": 0x100224,
    "putc": 0x10025B,
    "puts": 0x10026A,
    "put_tick": 0x100277,
    "hex8": 0x100288,
    "isr_timer": 0x1002A1,
    "isr_default": 0x1002AE,
    "isr_exception": 0x1002B7,
    "jiffies": 0x1003D0,
}
REGS = [
    ("rax", 64), ("rbx", 64), ("rcx", 64), ("rdx", 64), ("rsi", 64), ("rdi", 64),
    ("rbp", 64), ("rsp", 64), *[(f"r{i}", 64) for i in range(8, 16)], ("rip", 64),
    ("eflags", 32), ("cs", 32), ("ss", 32), ("ds", 32), ("es", 32), ("fs", 32), ("gs", 32),
    ("fs_base", 64), ("gs_base", 64), ("k_gs_base", 64), ("cr0", 64), ("cr2", 64),
    ("cr3", 64), ("cr4", 64), ("cr8", 64), ("efer", 64), ("st0", 80), ("xmm0", 128),
]  # fmt: skip


def fake_symbols() -> Symbols:
    s = Symbols()
    for name, addr in SYMS.items():
        s.by_name[name] = Symbol(name, addr, 0, "NOTYPE")
    s._sorted = sorted(s.by_name.values(), key=lambda x: x.addr)
    s._addrs = [x.addr for x in s._sorted]
    return s


class FakeCpu:
    """Steps through isr_timer; continue stops at the next breakpoint in the code."""

    def __init__(self, link: Any = None) -> None:
        self.symbols = fake_symbols()
        self.info = {
            "arch": "i386:x86-64",
            "family": "x86",
            "pc": "rip",
            "registers": [[n, b, i, ""] for i, (n, b) in enumerate(REGS)],
            "cpus": 2,
        }
        self.pc = SYMS["isr_timer"]
        self.seq = 1
        self.running = False
        self.why = "breakpoint"
        self.pts: list[dict[str, Any]] = [
            {"kind": "break", "addr": SYMS["isr_timer"], "len": 1},
            {"kind": "watch", "addr": SYMS["jiffies"], "len": 4},
        ]
        self.values = {n: 0 for n, _ in REGS}
        self.values.update(
            rax=0x2A, rbx=0x31, rcx=0x30, rdx=0x3F8, rsi=0x1002E6, rdi=0x1000, rsp=0x101564,
            eflags=0x86, cs=8, ss=0x10, ds=0x10, es=0x10, fs=0x10, gs=0x10, cr0=0x11,
        )  # fmt: skip
        self.last_regs: dict[str, int] = {}
        self.pc_bits = 64
        self.cpus = 2

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    # addresses
    def address(self, text: str) -> int:
        return parse_address(text, self.symbols)

    def describe(self, addr: int) -> str:
        return self.symbols.describe(addr)

    def where(self, addr: int) -> str:
        d = self.describe(addr)
        return f"0x{addr:x} ({d})" if d else f"0x{addr:x}"

    def mode(self, regs: dict[str, int]) -> str:
        return mode_for("x86", regs or self.values, 64)

    @property
    def reg_order(self) -> list[str]:
        return [n for n, _ in REGS]

    def reg_bits(self, name: str) -> int:
        return dict(REGS).get(name, 32)

    # state
    def _state(self) -> CpuState:
        return CpuState(running=self.running, seq=self.seq, why=self.why)

    async def state(self) -> CpuState:
        return self._state()

    async def watch(self, after: int, timeout: float) -> CpuState:
        if self.seq <= after:
            await asyncio.sleep(timeout)
        return self._state()

    async def points(self) -> list[dict[str, Any]]:
        return list(self.pts)

    async def regs(self, cpu: int | None = None) -> Registers:
        v = dict(self.values, rip=self.pc)
        self.last_regs = v
        return Registers(values=v, pc=self.pc, state=self._state(), points=list(self.pts))

    async def read(self, addr: int, length: int, cpu: int | None = None) -> bytes:
        if not BASE <= addr < BASE + len(CODE):
            raise RangeError(f"cannot read memory at 0x{addr:x} (not mapped)")
        return CODE[addr - BASE : addr - BASE + length]

    async def disassemble(
        self, addr: int, count: int, regs: Any = None, cpu: int | None = None, before: int = 0
    ) -> list[Any]:
        start = self.symbols.start_of(addr) if before else addr
        start = start if start is not None and addr - 64 <= start <= addr else addr
        code = await self.read(start, min(len(CODE) - (start - BASE), (addr - start) + 16 * count))
        insns = disassemble(code, start, "x86-32", count + before * 4)
        idx = next((k for k, i in enumerate(insns) if i.addr == addr), 0)
        return insns[max(0, idx - before) : idx + count]

    # control
    async def step(self, n: int = 1, cpu: int | None = None) -> CpuState:
        for _ in range(n):
            ins = disassemble(await self.read(self.pc, 16), self.pc, "x86-32", 1)[0]
            self.pc += ins.size
            self.values["rax"] += 1
        self.seq += 1
        self.why = "trap"
        return self._state()

    async def cont(self, wait: bool = True, timeout: float | None = None) -> tuple[CpuState, bool]:
        self.pc = SYMS["isr_timer"]
        self.seq += 1
        self.why = "breakpoint"
        return self._state(), False

    async def stop(self) -> CpuState:
        self.running = False
        return self._state()

    async def set_point(self, kind: str, addr: int, length: int = 1) -> list[dict[str, Any]]:
        self.pts.append({"kind": kind, "addr": addr, "len": length})
        return self.pts

    async def toggle_break(self, addr: int) -> bool:
        for p in self.pts:
            if p["addr"] == addr and p["kind"] == "break":
                self.pts.remove(p)
                return False
        self.pts.append({"kind": "break", "addr": addr, "len": 1})
        return True

    async def remove_point(self, addr: int) -> list[dict[str, Any]]:
        self.pts = [p for p in self.pts if p["addr"] != addr]
        return self.pts

    async def clear_points(self) -> None:
        self.pts = []

    def gdb_command(self, gdb: str) -> list[str]:
        return [gdb, "--version"]

    async def release(self) -> None:
        return None

    async def reclaim(self) -> None:
        return None
