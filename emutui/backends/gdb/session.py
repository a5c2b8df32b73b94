"""CpuSession: what the CLI and the TUI use to look at a CPU.

It talks to the instance's gdb hub (emutui/core/gdbhub.py), never to the stub
itself, and adds what needs the ELF: symbols both ways and disassembly.
"""

from __future__ import annotations

import contextlib
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emutui.backends.gdb.disasm import Insn, disassemble, insn_align, mode_for
from emutui.backends.gdb.symbols import Symbols, parse_address
from emutui.core.errors import EmutuiError, NotFoundError, RangeError
from emutui.core.gdbhub import CLIENT_TIMEOUT, STEP_TIMEOUT, HubClient
from emutui.core.instance import Instance

DIS_BACK = 64  # bytes read before PC on x86 to show the lines that lead to it


@dataclass
class CpuState:
    running: bool
    seq: int
    why: str = ""
    reason: str | None = None
    address: int | None = None
    thread: str | None = None
    exited: bool = False

    @classmethod
    def from_reply(cls, r: dict[str, Any]) -> CpuState:
        stop = r.get("stop") or {}
        return cls(
            running=bool(r.get("running")),
            seq=int(r.get("seq", 0)),
            why=str(stop.get("why", "")),
            reason=stop.get("reason"),
            address=stop.get("address"),
            thread=stop.get("thread"),
            exited=stop.get("kind") in ("exited", "killed"),
        )


@dataclass
class Registers:
    values: dict[str, int]
    pc: int
    state: CpuState
    order: list[str] = field(default_factory=list)
    bits: dict[str, int] = field(default_factory=dict)
    points: list[dict[str, Any]] = field(default_factory=list)


def elf_for(inst: Instance) -> Path | None:
    """The target's ELF: the ``elf`` key, else QEMU's ``-kernel``."""
    h = inst.handles
    if h is None:
        return None
    elf = h.options.get("elf")
    if isinstance(elf, str) and elf:
        return Path(elf)
    cmd = h.command
    for i, a in enumerate(cmd[:-1]):
        if a == "-kernel":
            p = Path(cmd[i + 1])
            with contextlib.suppress(OSError):
                if p.read_bytes()[:4] == b"\x7fELF":
                    return p
    return None


class CpuSession:
    def __init__(self, inst: Instance, elf: Path | None = None) -> None:
        self.inst = inst
        self.hub = HubClient(inst.wd, inst.name)
        self.elf = elf if elf is not None else elf_for(inst)
        self._symbols: Symbols | None = None
        self.info: dict[str, Any] = {}
        self.last_regs: dict[str, int] = {}
        self._watcher: HubClient | None = None

    @property
    def symbols(self) -> Symbols:
        if self._symbols is None:
            self._symbols = Symbols(self.elf) if self.elf else Symbols()
        return self._symbols

    async def connect(self) -> None:
        await self.hub.connect()
        self.info = await self.hub.call("info")

    async def close(self) -> None:
        await self.hub.close()
        if self._watcher is not None:
            await self._watcher.close()

    async def watch(self, after: int, timeout: float) -> CpuState:
        """Long-poll for a stop after ``after`` on a connection of its own, so
        commands on the main one are never queued behind it."""
        if self._watcher is None:
            self._watcher = HubClient(self.inst.wd, self.inst.name)
        r = await self._watcher.call("wait", timeout + 10, after=after, limit=timeout)
        return CpuState.from_reply(r)

    @property
    def reg_order(self) -> list[str]:
        return [x[0] for x in self.info.get("registers", [])]

    def reg_bits(self, name: str) -> int:
        for x in self.info.get("registers", []):
            if x[0] == name:
                return int(x[1])
        return 32

    async def __aenter__(self) -> CpuSession:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- addresses -----------------------------------------------------------

    def address(self, text: str) -> int:
        return parse_address(text, self.symbols)

    def describe(self, addr: int) -> str:
        return self.symbols.describe(addr)

    def where(self, addr: int) -> str:
        d = self.describe(addr)
        return f"0x{addr:x} ({d})" if d else f"0x{addr:x}"

    def explain(self, st: CpuState, pc: int | None) -> str:
        """Why the CPU stopped. QEMU reports a breakpoint as a plain trap: say
        "breakpoint" when PC is on one of ours."""
        if st.why == "trap" and pc is not None and pc in self._breaks:
            return "breakpoint"
        return st.why

    _breaks: set[int] = set()

    # -- state -------------------------------------------------------------

    @property
    def cpus(self) -> int:
        return int(self.info.get("cpus", 1))

    @property
    def pc_bits(self) -> int:
        for name, bits, _n, _g in self.info.get("registers", []):
            if name == self.info.get("pc"):
                return int(bits)
        return 32

    async def state(self) -> CpuState:
        return CpuState.from_reply(await self.hub.call("state"))

    async def regs(self, cpu: int | None = None) -> Registers:
        r = await self.hub.call("regs", cpu=cpu)
        self._breaks = {p["addr"] for p in r.get("points") or [] if p["kind"] == "break"}
        values = {k: int(v) for k, v in r["values"].items()}
        self.last_regs = values
        regs = self.info.get("registers", [])
        return Registers(
            values=values,
            pc=int(r["pc"] or 0),
            state=CpuState.from_reply(r),
            order=[x[0] for x in regs if x[0] in values],
            bits={x[0]: int(x[1]) for x in regs},
            points=list(r.get("points") or []),
        )

    async def read(self, addr: int, length: int, cpu: int | None = None) -> bytes:
        r = await self.hub.call("mem", addr=addr, len=length, cpu=cpu)
        return bytes.fromhex(r["hex"])

    async def write(self, addr: int, data: bytes, cpu: int | None = None) -> None:
        await self.hub.call("wmem", addr=addr, hex=data.hex(), cpu=cpu)

    async def step(self, n: int = 1, cpu: int | None = None) -> CpuState:
        deadline = n * (STEP_TIMEOUT + 1) + 10
        return CpuState.from_reply(await self.hub.call("step", deadline, n=n, cpu=cpu))

    async def cont(self, wait: bool = True, timeout: float | None = None) -> tuple[CpuState, bool]:
        """Resume; with ``wait``, return when the guest stops (or after ``timeout`` s).
        Returns the state and whether the timeout passed first."""
        deadline = CLIENT_TIMEOUT if not wait else None if timeout is None else timeout + 10
        r = await self.hub.call("cont", deadline, wait=wait, limit=timeout)
        return CpuState.from_reply(r), bool(r.get("timeout"))

    async def wait(self, after: int, timeout: float) -> CpuState:
        r = await self.hub.call("wait", timeout + 10, after=after, limit=timeout)
        return CpuState.from_reply(r)

    async def stop(self) -> CpuState:
        return CpuState.from_reply(await self.hub.call("stop"))

    async def points(self) -> list[dict[str, Any]]:
        r = await self.hub.call("state")
        return list(r.get("points") or [])

    async def set_point(self, kind: str, addr: int, length: int = 1) -> list[dict[str, Any]]:
        r = await self.hub.call("point", kind=kind, addr=addr, len=length)
        return list(r["points"])

    async def remove_point(self, addr: int) -> list[dict[str, Any]]:
        """Every point at ``addr``, whatever its kind."""
        found = [p for p in await self.points() if p["addr"] == addr]
        if not found:
            raise NotFoundError(f"no breakpoint or watchpoint at {self.where(addr)}")
        pts: list[dict[str, Any]] = []
        for p in found:
            r = await self.hub.call(
                "point", kind=p["kind"], addr=p["addr"], len=p["len"], remove=True
            )
            pts = list(r["points"])
        return pts

    async def toggle_break(self, addr: int) -> bool:
        """True when a breakpoint is now set at ``addr``."""
        if any(p["addr"] == addr and p["kind"] == "break" for p in await self.points()):
            await self.hub.call("point", kind="break", addr=addr, len=1, remove=True)
            return False
        await self.set_point("break", addr)
        return True

    async def clear_points(self) -> None:
        await self.hub.call("clear")

    async def run_to(self, addr: int, timeout: float | None = None) -> CpuState:
        """A temporary breakpoint at ``addr``, continue, remove it when the guest stops."""
        had = any(p["addr"] == addr and p["kind"] == "break" for p in await self.points())
        if not had:
            await self.set_point("break", addr)
        try:
            r = await self.hub.call(
                "cont", None if timeout is None else timeout + 10, wait=True, limit=timeout
            )
        finally:
            if not had:
                with contextlib.suppress(EmutuiError):
                    await self.hub.call("point", kind="break", addr=addr, len=1, remove=True)
        return CpuState.from_reply(r)

    async def step_over(self, cpu: int | None = None, timeout: float | None = None) -> CpuState:
        regs = await self.regs(cpu)
        insns = await self.disassemble(regs.pc, 1, regs=regs, cpu=cpu)
        if insns and insns[0].is_call:
            return await self.run_to(insns[0].addr + insns[0].size, timeout)
        return await self.step(1, cpu)

    # -- code ----------------------------------------------------------------

    def mode(self, regs: dict[str, int]) -> str:
        return mode_for(str(self.info.get("family")), regs, self.pc_bits)

    async def disassemble(
        self,
        addr: int,
        count: int,
        regs: Registers | None = None,
        cpu: int | None = None,
        before: int = 0,
    ) -> list[Insn]:
        """``count`` instructions from ``addr``; with ``before``, up to that many
        leading to it (from the enclosing symbol on x86, where lengths vary)."""
        if regs is None:
            regs = await self.regs(cpu)
        mode = self.mode(regs.values)
        align = insn_align(mode)
        start = addr
        if before:
            if align > 1:
                start = addr - before * 4
            else:
                sym = self.symbols.start_of(addr)
                start = sym if sym is not None and addr - DIS_BACK <= sym <= addr else addr
        start = max(0, start)
        length = (addr - start) + count * 16
        code = await self._read_code(start, length, cpu)
        insns = disassemble(code, start, mode, count + (before * 4 if before else 0))
        if before:
            if not any(i.addr == addr for i in insns):  # misaligned walk: restart at addr
                insns = disassemble(code[addr - start :], addr, mode, count)
            idx = next((k for k, i in enumerate(insns) if i.addr == addr), 0)
            insns = insns[max(0, idx - before) : idx + count]
        return insns

    async def _read_code(self, addr: int, length: int, cpu: int | None) -> bytes:
        try:
            return await self.read(addr, length, cpu)
        except RangeError:
            # The tail may run off mapped memory: take what there is.
            for n in (length // 2, 64, 16):
                with contextlib.suppress(RangeError):
                    return await self.read(addr, n, cpu)
            raise

    # -- gdb handover ----------------------------------------------------------

    def gdb_command(self, gdb: str) -> list[str]:
        h = self.inst.handles
        assert h is not None
        ch = h.channels.get("gdb")
        if ch is None:
            raise NotFoundError(f"{self.inst.name}: no gdb stub")
        target = ch.path if ch.kind == "unix" else f"{ch.host or '127.0.0.1'}:{ch.port}"
        cmd = [gdb, "-q"]
        if self.elf:
            cmd.append(str(self.elf))
        arch = str(self.info.get("arch") or "")
        if arch and self.elf:
            # The stub's architecture, not the ELF's: a 32-bit kernel under
            # qemu-system-x86_64 comes with a 64-bit register set.
            cmd += ["-ex", f"set architecture {arch}"]
        cmd += ["-ex", f"target remote {shlex.quote(str(target))}"]
        return cmd

    async def release(self) -> None:
        await self.hub.call("release")

    async def reclaim(self) -> None:
        await self.hub.call("reclaim")
        self.info = await self.hub.call("info")
