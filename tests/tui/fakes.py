"""Deterministic instances and connectors for snapshots and benches: no processes, no clocks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from emutui.backends.base import BaseConnector
from emutui.core.errors import BackendError, NotFoundError
from emutui.core.handles import Channel, Handles
from emutui.core.instance import Instance
from emutui.core.model import (
    Capability,
    Event,
    InstanceState,
    InstanceStatus,
    MemoryRegion,
    PropertyNode,
)

T0 = 1_790_000_000.0  # a fixed "now" for uptimes
ALL_CAPS = frozenset(Capability)


class FakeInstance(Instance):
    """An instance whose process is 'alive' until ``dead`` is set."""

    dead: bool = False

    def alive(self) -> bool:
        return self.handles is not None and not self.dead


def make_instance(
    wd: Path,
    name: str,
    backend: str = "qemu",
    target: str = "pc",
    pid: int = 4242,
    simulated: bool = False,
    age: float = 754.0,
    channels: tuple[str, ...] = ("com1", "com2"),
    attached: bool = False,
    banner: bool = True,
) -> FakeInstance:
    d = wd / name
    d.mkdir(parents=True, exist_ok=True)
    chans = {
        c: Channel(
            role="serial", kind="unix", path=str(d / f"{c}.sock"), log=str(d / f"serial-{c}.log")
        )
        for c in channels
    }
    for c in channels:
        text = f"emutui-guest: ready ({c.upper()})\r\n" if banner else ""
        (d / f"serial-{c}.log").write_bytes(text.encode())
    h = Handles(
        name=name,
        backend=backend,
        target=target,
        pid=None if attached else pid,
        channels=chans,
        created=T0 - age,
        simulated=simulated,
        options={"attached": True} if attached else {},
    )
    return FakeInstance(name=name, wd=d, handles=h)


class FakeSerial:
    def __init__(self, echo: bool = True) -> None:
        self.q: asyncio.Queue[bytes] = asyncio.Queue()
        self.echo = echo

    async def read(self, n: int = 65536) -> bytes:
        return await self.q.get()

    async def write(self, data: bytes) -> None:
        if self.echo:
            self.q.put_nowait(data.replace(b"\r", b"\r\n"))

    async def close(self) -> None:
        self.q.put_nowait(b"")


QOM: dict[str, list[PropertyNode]] = {
    "/": [
        PropertyNode("machine", "/machine", "child<pc-i440fx-machine>", True),
        PropertyNode("objects", "/objects", "child<container>", True),
        PropertyNode("type", "/", "string"),
    ],
    "/machine": [
        PropertyNode("peripheral", "/machine/peripheral", "child<container>", True),
        PropertyNode("unattached", "/machine/unattached", "child<container>", True),
        PropertyNode("type", "/machine", "string"),
        PropertyNode("hpet", "/machine", "bool", writable=True),
        PropertyNode("kernel", "/machine", "string", writable=True),
        PropertyNode("legacy-memory", "/machine", "link<memory-region>"),
    ],
    "/machine/peripheral": [
        PropertyNode("edu0", "/machine/peripheral/edu0", "child<edu>", True),
    ],
    "/machine/peripheral/edu0": [
        PropertyNode("type", "/machine/peripheral/edu0", "string"),
        PropertyNode("addr", "/machine/peripheral/edu0", "int32", writable=True),
        PropertyNode("dma_mask", "/machine/peripheral/edu0", "uint64", writable=True),
        PropertyNode("realized", "/machine/peripheral/edu0", "bool", writable=True),
    ],
    "/machine/unattached": [],
    "/objects": [],
}
VALUES: dict[tuple[str, str], Any] = {
    ("/", "type"): "container",
    ("/machine", "type"): "pc-i440fx-7.2-machine",
    ("/machine", "hpet"): True,
    ("/machine", "kernel"): "/usr/share/emutui/guest.elf",
    ("/machine/peripheral/edu0", "type"): "edu",
    ("/machine/peripheral/edu0", "addr"): 16,
    ("/machine/peripheral/edu0", "dma_mask"): 268435455,
    ("/machine/peripheral/edu0", "realized"): True,
}


# What QEMU's HMP and Renode's monitor answer: text, with CRLF line ends.
INFO_REGISTERS = (
    "\r\nCPU#0\r\n"
    "EAX=00000000 EBX=00000000 ECX=00000000 EDX=00000663\r\n"
    "ESI=00000000 EDI=00000000 EBP=00000000 ESP=00000000\r\n"
    "EIP=0000fff0 EFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0\r\n"
)
PERIPHERALS = (
    "Available peripherals:\n"
    "  sysbus (SystemBus)\n"
    "  ├── cpu (CortexM)\n"
    "  │     Slot: 0\n"
    "  └── uart0 (PL011)\n"
    "        <0x40000000, 0x40000FFF>\n"
)


def pattern(offset: int, length: int) -> bytes:
    """Memory contents: edu's ID at 0, then a mix of every hexyl category."""
    out = bytearray()
    for o in range(offset, offset + length):
        if o < 4:
            out.append((0xED, 0x00, 0x00, 0x01)[o])
        elif 0x40 <= o % 0x200 < 0x60:
            out.append(b"emutui hex view: 16 bytes a row. "[o % 32])
        elif o % 0x200 >= 0x180:
            out.append(0)
        else:
            out.append((o * 37 + (o >> 8)) & 0xFF)
    return bytes(out)


class FakeConnector(BaseConnector):
    backend_name = "fake"

    def __init__(
        self,
        instance: Instance,
        caps: frozenset[Capability] = ALL_CAPS,
        events: list[Event] | None = None,
        ram_size: int = 128 << 20,
    ) -> None:
        super().__init__(instance)
        self.capabilities = caps
        self.state = InstanceState.RUNNING
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()
        for ev in events or []:
            self.queue.put_nowait(ev)
        self.ram_size = ram_size
        self.reads = 0
        self.serials: dict[str, FakeSerial] = {}
        self.written: dict[tuple[str, int], bytes] = {}
        self.values = dict(VALUES)  # per connector: a test that sets one must not leak

    async def status(self) -> InstanceStatus:
        return InstanceStatus(self.state, self.state.value)

    async def pause(self) -> None:
        self.state = InstanceState.PAUSED
        self.queue.put_nowait(Event("STOP", {}, T0, self.name))

    async def resume(self) -> None:
        self.state = InstanceState.RUNNING
        self.queue.put_nowait(Event("RESUME", {}, T0, self.name))

    async def reset(self) -> None:
        self.queue.put_nowait(
            Event("RESET", {"guest": False, "reason": "host-qmp-system-reset"}, T0, self.name)
        )

    async def _events(self) -> AsyncIterator[Event]:
        while True:
            ev = await self.queue.get()
            if ev is None:
                return
            yield ev

    def events(self) -> AsyncIterator[Event]:
        return self._events()

    async def serial(self, channel: str) -> FakeSerial:
        s = self.serials.get(channel)
        if s is None:
            s = self.serials[channel] = FakeSerial()
        return s

    async def list_props(self, path: str) -> list[PropertyNode]:
        if path not in QOM:
            raise NotFoundError(f"Device '{path}' not found")
        return QOM[path]

    async def get_prop(self, path: str, name: str) -> Any:
        if name.startswith("legacy-"):
            raise BackendError(f"qom-get: Property '{name}' is not readable")
        return self.values.get((path, name), "")

    async def set_prop(self, path: str, name: str, value: Any) -> None:
        self.values[(path, name)] = value

    async def regions(self) -> list[MemoryRegion]:
        return [
            MemoryRegion("edu0.bar0", 0xFEB00000, 1 << 20, True, 4, "PCI device 1234:11e8"),
            MemoryRegion("ram", 0, self.ram_size, True, 1, "guest RAM (base memory)"),
        ]

    async def read(self, region: str, offset: int, length: int) -> bytes:
        r = await self.find_region(region)
        r.check(offset, length)
        self.reads += 1
        data = bytearray(pattern(offset, length))
        for (name, off), chunk in self.written.items():
            for i, b in enumerate(chunk):
                if name == region and offset <= off + i < offset + length:
                    data[off + i - offset] = b
        return bytes(data)

    async def write(self, region: str, offset: int, data: bytes) -> None:
        r = await self.find_region(region)
        r.check(offset, len(data))
        self.written[(region, offset)] = data

    async def command(self, line: str) -> Any:
        if line.strip() == "!info registers":
            return INFO_REGISTERS
        if line.strip() == "peripherals":
            return PERIPHERALS
        if line.strip() == "query-status":
            return {"status": self.state.value, "running": self.state is InstanceState.RUNNING}
        raise NotFoundError(f"The command {line.split()[0]} has not been found")

    async def execute(self, cmd: str, args: dict[str, Any] | None = None) -> Any:
        if cmd == "query-commands":
            return [
                {"name": n}
                for n in (
                    "query-status",
                    "query-pci",
                    "qom-list",
                    "qom-get",
                    "stop",
                    "cont",
                    "system_reset",
                )
            ]
        return await self.command(cmd)


def sample_events(name: str) -> list[Event]:
    return [
        Event("RESUME", {}, T0 - 60, name),
        Event("STOP", {}, T0 - 50, name),
        Event("RESUME", {}, T0 - 40, name),
        Event("RESET", {"guest": False, "reason": "host-qmp-system-reset"}, T0 - 30, name),
        Event("RESET", {"guest": True, "reason": "guest-reset"}, T0 - 30, name),
        Event(
            "DEVICE_TRAY_MOVED", {"device": "cd0", "tray-open": True, "id": "cdrom"}, T0 - 20, name
        ),
    ]
