"""The vrtd Connector: a daemon as an instance; its cards as properties, its BARs as regions.

Property paths: ``/`` lists the devices (``/slash_ctl0``, ...) plus daemon
leaves; ``/slash_ctl0`` lists its six BAR slots (``/slash_ctl0/bar0``, ...)
plus the device's leaves (name, index, PCI info and shell state where the
server sends them); ``/slash_ctl0/bar0`` has ``usable``, ``in_use``, ``start``
and ``length``. Regions are the usable BARs, ``slash_ctl0.bar0``.

A daemon can go away and come back (systemd restarts it, a simulator is
restarted). Every operation first checks the connection (a poll, no round
trip); a dead one is dropped with its BAR mappings -- memory of a daemon that
is gone must not be shown as live -- and one reconnect is tried. If that
fails, DisconnectedError names the socket and ``status()`` reads
``disconnected``; the next call tries again.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from emutui.backends.base import BaseConnector
from emutui.backends.vrtd import wire
from emutui.backends.vrtd.client import BarMapping, VrtdClient, default_socket_path
from emutui.backends.vrtd.wire import Opcode
from emutui.core.errors import (
    DisconnectedError,
    EmutuiError,
    NotFoundError,
    ProtocolError,
    RangeError,
    UnsupportedError,
)
from emutui.core.model import (
    Capability,
    Event,
    InstanceState,
    InstanceStatus,
    MemoryRegion,
    PropertyNode,
)

if TYPE_CHECKING:
    from emutui.core.instance import Instance

# BAR0/BAR2 are uncached device memory holding AXI-Lite registers: 32-bit accesses.
ACCESS_WIDTH = 4
MIB = 1 << 20
LIVENESS_INTERVAL = 0.02  # seconds between liveness polls on the read fast path
RESET_TIMEOUT = 120.0  # a reset_with_ami runs SBR, PCIe remove and rescan


@dataclass
class DeviceView:
    index: int
    info: wire.DeviceInfo
    bars: list[wire.BarInfo] = field(default_factory=list)
    label: str = ""  # unique among the daemon's devices (see unique_labels)

    @property
    def name(self) -> str:
        return self.label or self.info.name or f"dev{self.index}"


def unique_labels(names: list[str]) -> list[str]:
    """Device names need not be unique (every libslash mock card is ``@mock``):
    a name shared by several devices gets its index, ``@mock#0``, ``@mock#1``,
    so region and tree names stay unique. A nameless device is ``devN``."""
    labels = [n or f"dev{i}" for i, n in enumerate(names)]
    dup = {n for n in labels if labels.count(n) > 1}
    return [f"{n}#{i}" if n in dup else n for i, n in enumerate(labels)]


# The slash driver binds PCI function 2 of a V80 (PF2); vrtd reports the board.
SLASH_CTL_FUNCTION = 2
SENSOR_UNITS = {
    1: ("temperature", "°C"),
    2: ("current", "A"),
    4: ("voltage", "V"),
    8: ("power", "W"),
}
SENSOR_STATUS = {0: "not present", 1: "ok", 2: "no data", 3: "ok (cached)", 0x7F: "n/a"}
SHELLS = {"service": 1, "compute": 2}
HOTPLUG_RESET_SEQUENCE = 4


def format_sensor(s: wire.Sensor) -> str:
    """``46.25 °C`` from value 46250, unit_mod -3: AMI's base units scaled by 10**unit_mod."""
    _kind, unit = SENSOR_UNITS.get(s.type, (f"type {s.type}", ""))
    if s.unit_mod < 0:
        digits = -s.unit_mod
        text = f"{s.value / 10**digits:.{digits}f}".rstrip("0").rstrip(".")
    else:
        text = str(s.value * 10**s.unit_mod)
    return f"{text} {unit}".strip()


def sensor_key(s: wire.Sensor) -> str:
    kind = SENSOR_UNITS.get(s.type, (f"type{s.type}", ""))[0]
    return f"{s.name}.{kind}"


def pci_function_bdf(board: str) -> str:
    """The slash_ctl function's full address, ``0000:c4:00.2``, from vrtd's board-level BDF."""
    return f"{board}.{SLASH_CTL_FUNCTION}" if board else ""


def socket_of(instance: Instance) -> str:
    h = instance.handles
    if h is not None:
        ch = h.channels.get("vrtd")
        if ch is not None and ch.path:
            return ch.path
        sock = h.options.get("socket")
        if isinstance(sock, str) and sock:
            return sock
    return default_socket_path()


def _size(n: int) -> str:
    if n and n % MIB == 0:
        return f"{n // MIB} MiB"
    if n and n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} bytes"


def _int(text: str, what: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise EmutuiError(f"{what}: expected a number, got {text!r}") from None


class VrtdConnector(BaseConnector):
    capabilities = frozenset(
        {
            Capability.PROPERTIES,
            Capability.MEMORY,
            Capability.MEMORY_WRITE,
            Capability.COMMANDS,
            Capability.EVENTS,
            Capability.RESET,
        }
    )
    backend_name = "vrtd"

    def __init__(self, instance: Instance, aux: bool = True, timeout: float = 5.0) -> None:
        super().__init__(instance)
        # vrtd serves any number of clients, so the primary/aux distinction is moot.
        self.socket_path = socket_of(instance)
        opt = instance.handles.options.get("timeout") if instance.handles else None
        self.timeout = float(opt) if isinstance(opt, int | float) and opt > 0 else timeout
        self._client: VrtdClient | None = None
        self._devices: list[DeviceView] = []
        self._maps: dict[str, BarMapping] = {}
        self._map_regions: dict[str, MemoryRegion] = {}  # bounds of each mapped BAR
        self._checked = 0.0  # last liveness poll, for the read/write fast path
        cfg = instance.handles.options.get("config") if instance.handles else None
        self.config_path = cfg if isinstance(cfg, str) and cfg else None
        self._events: asyncio.Queue[Event | None] = asyncio.Queue()
        self._was_connected = False
        self._guard = asyncio.Lock()

    # ------------------------------------------------------------------ connection

    async def connect(self) -> None:
        await self._ensure()

    async def close(self) -> None:
        self._drop()
        self._events.put_nowait(None)

    def _drop(self, why: str | None = None) -> None:
        for m in self._maps.values():
            m.close()
        self._maps.clear()
        self._map_regions.clear()
        client, self._client = self._client, None
        if client is not None:
            client._abort()
        if why is not None and self._was_connected:
            self._was_connected = False
            self._emit("vrtd.disconnected", {"socket": self.socket_path, "reason": why})

    def _emit(self, name: str, data: dict[str, Any]) -> None:
        self._events.put_nowait(Event(name=name, data=data, source=self.name))

    async def _ensure(self) -> VrtdClient:
        """A live client: the current one if the daemon is still there, else a new one."""
        async with self._guard:
            client = self._client
            if client is not None and not client.peer_gone():
                return client
            if client is not None:
                self._drop("the daemon closed the connection")
            client = VrtdClient(self.socket_path, self.timeout, config=self.config_path)
            await client.connect()
            try:
                self._devices = await self._enumerate(client)
            except BaseException:
                client._abort()
                raise
            self._client = client
            self._was_connected = True
            self._emit(
                "vrtd.connected",
                {"socket": self.socket_path, "devices": [d.name for d in self._devices]},
            )
            return client

    async def _run(self, fn: Any) -> Any:
        """Run ``fn(client)``; on a lost daemon drop everything and retry once on a new one."""
        client = await self._ensure()
        try:
            return await fn(client)
        except (DisconnectedError, ProtocolError) as e:
            self._drop(str(e))
        client = await self._ensure()
        return await fn(client)

    async def _enumerate(self, client: VrtdClient) -> list[DeviceView]:
        n = await client.get_num_devices()
        out = []
        for i in range(n):
            try:
                info = await client.get_device_info(i)
            except wire.VrtdNoExistError:
                break  # the list shrank under us (dev vrtd rediscovers after hotplug)
            bars = []
            for b in range(wire.NUM_BAR_SLOTS):
                try:
                    bars.append(await client.get_bar_info(i, b))
                except wire.VrtdNoExistError:
                    # the daemon's BAR-info ioctl failed at startup: no such BAR
                    bars.append(wire.BarInfo(b, False, False, 0, 0))
            out.append(DeviceView(i, info, bars))
        for d, label in zip(out, unique_labels([d.info.name for d in out]), strict=True):
            d.label = label
        return out

    async def _refresh(self) -> list[DeviceView]:
        async def fn(client: VrtdClient) -> list[DeviceView]:
            return await self._enumerate(client)

        devices: list[DeviceView] = await self._run(fn)
        self._devices = devices
        return devices

    # ------------------------------------------------------------------ status and events

    async def status(self) -> InstanceStatus:
        try:
            devices = await self._refresh()
        except DisconnectedError as e:
            self._drop(str(e))
            return InstanceStatus(InstanceState.DISCONNECTED, str(e))
        gen = devices[0].info.generation if devices else None
        proto = f", protocol v{gen}" if gen is not None else ""
        return InstanceStatus(
            InstanceState.RUNNING, f"{len(devices)} device(s){proto} at {self.socket_path}"
        )

    async def _event_stream(self) -> AsyncIterator[Event]:
        while True:
            ev = await self._events.get()
            if ev is None:
                return
            yield ev

    def events(self) -> AsyncIterator[Event]:
        """Daemon notices: connected (with its devices) and disconnected (with why)."""
        return self._event_stream()

    # ------------------------------------------------------------------ properties

    def _device(self, devices: list[DeviceView], name: str) -> DeviceView:
        for d in devices:
            if d.name == name:
                return d
        known = ", ".join(d.name for d in devices) or "none"
        raise NotFoundError(f"{self.name}: no device {name!r} (devices: {known})")

    def _split(self, path: str) -> list[str]:
        parts = [p for p in path.strip().split("/") if p]
        if len(parts) > 2:
            raise NotFoundError(f"{self.name}: no property node {path!r}")
        return parts

    def _bar_index(self, text: str, path: str) -> int:
        if text.startswith("bar") and text[3:].isdigit():
            n = int(text[3:])
            if n < wire.NUM_BAR_SLOTS:
                return n
        raise NotFoundError(f"{self.name}: no BAR {text!r} at {path!r} (bar0 .. bar5)")

    def _device_leaves(self, d: DeviceView) -> list[PropertyNode]:
        """Values as a person reads them: ids and addresses in hex, the BDF of the
        slash_ctl function (``.2``), the shell by name."""
        p = f"/{d.name}"
        leaves = [
            PropertyNode("name", p, "str", value=d.info.name, description="vrtd device name"),
            PropertyNode("index", p, "int", value=d.index, description="vrtd device number"),
        ]
        pci = d.info.pci
        if pci is not None:
            bdf = pci_function_bdf(pci.bdf)
            leaves += [
                PropertyNode(
                    "bdf",
                    p,
                    "str",
                    value=bdf or "none",
                    description="PCI address of the slash_ctl function (PF2)"
                    if bdf
                    else "no PCI address (a libslash mock card)",
                ),
                PropertyNode(
                    "board", p, "str", value=pci.bdf or "none", description="board address (vrtd)"
                ),
            ]
            for key, val in (
                ("vendor_id", pci.vendor_id),
                ("device_id", pci.device_id),
                ("subsystem_vendor_id", pci.subsystem_vendor_id),
                ("subsystem_device_id", pci.subsystem_device_id),
            ):
                leaves.append(
                    PropertyNode(key, p, "hex", value=f"0x{val:04x}", description=str(val))
                )
        if d.info.shell_type is not None:
            shell = wire.SHELL_TYPES.get(d.info.shell_type, str(d.info.shell_type))
            leaves += [
                PropertyNode("shell", p, "str", value=shell, description="running shell"),
                PropertyNode("jtag", p, "bool", value=bool(d.info.jtag), description="JTAG-booted"),
            ]
        return leaves

    def _bar_leaves(self, d: DeviceView, b: wire.BarInfo) -> list[PropertyNode]:
        p = f"/{d.name}/bar{b.bar_number}"
        return [
            PropertyNode("usable", p, "bool", value=b.usable, description="present and MMIO"),
            PropertyNode("in_use", p, "bool", value=b.in_use, description="always false on vrtd"),
            PropertyNode(
                "start",
                p,
                "hex",
                value=f"0x{b.start_address:x}",
                description="host physical address",
            ),
            PropertyNode("length", p, "int", value=b.length, description=_size(b.length)),
        ]

    async def sensors(self, d: DeviceView) -> list[wire.Sensor]:
        async def fn(client: VrtdClient) -> list[wire.Sensor]:
            return await client.get_sensors(d.index)

        got: list[wire.Sensor] = await self._run(fn)
        return got

    async def _sensor_leaves(self, d: DeviceView) -> list[PropertyNode]:
        p = f"/{d.name}/sensors"
        try:
            got = await self.sensors(d)
        except (wire.VrtdRetError, NotFoundError) as e:
            return [PropertyNode("status", p, "str", value="not available", description=str(e))]
        out = []
        for s in got:
            status = SENSOR_STATUS.get(s.status, f"status {s.status}")
            out.append(
                PropertyNode(
                    sensor_key(s),
                    p,
                    "str",
                    value=format_sensor(s) if s.status in (1, 3) else status,
                    description=f"{status}; raw {s.value} x 10^{s.unit_mod}",
                )
            )
        return out

    async def list_props(self, path: str) -> list[PropertyNode]:
        parts = self._split(path)
        devices = await self._refresh()
        if not parts:
            nodes = [
                PropertyNode(
                    d.name,
                    f"/{d.name}",
                    "device",
                    has_children=True,
                    description=f"device {d.index}"
                    + (f", {d.info.pci.bdf}" if d.info.pci and d.info.pci.bdf else ""),
                )
                for d in devices
            ]
            return [
                *nodes,
                PropertyNode(
                    "socket", "/", "str", value=self.socket_path, description="vrtd socket"
                ),
                PropertyNode("num_devices", "/", "int", value=len(devices)),
            ]
        d = self._device(devices, parts[0])
        if len(parts) == 2 and parts[1] == "sensors":
            return await self._sensor_leaves(d)
        if len(parts) == 1:
            bars = [
                PropertyNode(
                    f"bar{b.bar_number}",
                    f"/{d.name}/bar{b.bar_number}",
                    "bar",
                    has_children=True,
                    description=f"{_size(b.length)} at {b.start_address:#x}"
                    if b.usable
                    else "not usable",
                )
                for b in d.bars
            ]
            if d.info.generation >= 1:  # GET_SENSOR_INFO exists from v1
                bars.append(
                    PropertyNode(
                        "sensors",
                        f"/{d.name}/sensors",
                        "sensors",
                        has_children=True,
                        description="AMI sensors, scaled to their units",
                    )
                )
            return bars + self._device_leaves(d)
        b = d.bars[self._bar_index(parts[1], path)]
        return self._bar_leaves(d, b)

    async def get_prop(self, path: str, name: str) -> Any:
        for node in await self.list_props(path):
            if node.name == name and not node.has_children:
                return node.value
        raise NotFoundError(f"{self.name}: no property {name!r} at {path or '/'!r}")

    async def set_prop(self, path: str, name: str, value: Any) -> None:
        raise UnsupportedError(
            f"{self.name}: vrtd properties are read-only (they describe hardware)"
        )

    # ------------------------------------------------------------------ memory

    async def regions(self) -> list[MemoryRegion]:
        devices = await self._refresh()
        out = []
        for d in devices:
            for b in d.bars:
                if b.usable and b.length > 0:
                    out.append(
                        MemoryRegion(
                            name=f"{d.name}.bar{b.bar_number}",
                            base=b.start_address,
                            size=b.length,
                            writable=True,
                            access_width=ACCESS_WIDTH,
                            description=f"{d.name} BAR{b.bar_number}, {_size(b.length)}",
                        )
                    )
        self._regions = out
        return out

    def _parse_region(self, region: str) -> tuple[str, int]:
        dev, sep, bar = region.rpartition(".")
        if not sep or not bar.startswith("bar") or not bar[3:].isdigit():
            raise NotFoundError(
                f"{self.name}: region {region!r} is not of the form DEVICE.barN (slash_ctl0.bar0)"
            )
        return dev, int(bar[3:])

    async def _mapping(self, region: str) -> tuple[BarMapping, MemoryRegion]:
        """The region's mapping, opened on first use (GET_BAR_FD + mmap) and cached
        for as long as the daemon stays connected."""
        dev_name, bar = self._parse_region(region)

        async def fn(client: VrtdClient) -> tuple[BarMapping, MemoryRegion]:
            m = self._maps.get(region)
            r = self._map_regions.get(region)
            if m is not None and r is not None and not m.closed:
                return m, r
            d = self._device(self._devices, dev_name)
            if bar >= wire.NUM_BAR_SLOTS or not d.bars[bar].usable:
                known = ", ".join(x.name for x in await self.regions()) or "none"
                raise NotFoundError(f"{self.name}: {region} is not a usable BAR (regions: {known})")
            b = d.bars[bar]
            r = MemoryRegion(region, b.start_address, b.length, True, ACCESS_WIDTH)
            m = await client.open_bar(d.index, bar, region)
            if m.length != b.length:
                # vrtd says len = bar_file->len; trust the fd's length for bounds
                r = MemoryRegion(region, b.start_address, m.length, True, ACCESS_WIDTH)
            old = self._maps.pop(region, None)
            if old is not None:
                old.close()
            self._maps[region] = m
            self._map_regions[region] = r
            return m, r

        result: tuple[BarMapping, MemoryRegion] = await self._run(fn)
        return result

    def _cached(self, region: str) -> tuple[BarMapping, MemoryRegion] | None:
        """Fast path for the hex view and bulk reads: a cached mapping, with the
        daemon's liveness polled at most every LIVENESS_INTERVAL seconds (a
        stale read within that window shows memory the dead daemon left)."""
        m = self._maps.get(region)
        if m is None or m.closed:
            return None
        now = time.monotonic()
        if now - self._checked > LIVENESS_INTERVAL:
            client = self._client
            if client is None or client.peer_gone():
                return None
            self._checked = now
        return m, self._map_regions[region]

    async def read(self, region: str, offset: int, length: int) -> bytes:
        # BarMapping checks bounds (against the fd's length) and alignment
        m, r = self._cached(region) or await self._mapping(region)
        return m.read(offset, length, r.access_width)

    async def write(self, region: str, offset: int, data: bytes) -> None:
        m, r = self._cached(region) or await self._mapping(region)
        m.write(offset, bytes(data), r.access_width)

    # ------------------------------------------------------------------ card reset

    def _reset_shell_name(self, d: DeviceView) -> str:
        # the shell it runs; vrtd does not know it after a restart (UNKNOWN): compute
        return "service" if d.info.shell_type == 1 else "compute"

    async def reset_card(self, d: DeviceView, shell: str | None = None) -> None:
        """A card reset as vrtd does it (reset_with_ami: SBR, remove, rescan) back into
        ``shell``: DEVICE_HOTPLUG_OP op RESET_SEQUENCE, function 0, the shell type.
        The daemon answers once the card is back; its mappings are gone then."""
        shell_type = SHELLS[shell or self._reset_shell_name(d)]
        body = struct.pack("<IBBB", d.index, HOTPLUG_RESET_SEQUENCE, 0, shell_type)

        async def fn(client: VrtdClient) -> None:
            await client.call(Opcode.DEVICE_HOTPLUG_OP, body, f"reset {d.name}")

        # the reset can take a while: no retry on a new connection if it times out
        client = await self._ensure()
        saved, client.timeout = client.timeout, max(client.timeout, RESET_TIMEOUT)
        try:
            await fn(client)
        finally:
            client.timeout = saved
        for region in [r for r in self._maps if r.startswith(f"{d.name}.bar")]:
            self._maps.pop(region).close()
            self._map_regions.pop(region, None)
        self._emit("vrtd.reset", {"device": d.name, "shell": shell or self._reset_shell_name(d)})

    def reset_prompt(self) -> str:
        """What ``reset`` will do, for the TUI's confirmation."""
        cards = ", ".join(f"{d.name} into {self._reset_shell_name(d)}" for d in self._devices)
        return (
            f"Resets every card of this vrtd ({cards or 'none known yet'}): secondary bus "
            f"reset, PCIe remove and rescan (DEVICE_HOTPLUG_OP RESET_SEQUENCE). Anything "
            f"running on them stops; every client's BAR mappings become invalid."
        )

    async def reset(self) -> None:
        """The TUI's reset (behind its confirmation): every card of the daemon."""
        devices = await self._refresh()
        if not devices:
            raise NotFoundError(f"{self.name}: the daemon has no card to reset")
        for d in devices:
            await self.reset_card(d)

    # ------------------------------------------------------------------ shell verbs

    async def command(self, line: str) -> Any:
        """vrtd shell verbs: devices | bar DEV N | read REGION OFF LEN | write REGION OFF HEX |
        sensors DEV | raw OPCODE [HEXBODY] | help."""
        try:
            argv = shlex.split(line)
        except ValueError as e:
            raise EmutuiError(f"cannot parse {line!r}: {e}") from None
        if not argv:
            return None
        verb, args = argv[0], argv[1:]
        if verb == "help":
            return {
                "devices": "list devices with their BARs",
                "bar DEV N": "BAR N of device DEV (name or index)",
                "read REGION OFFSET LENGTH": "bytes from a BAR, as hex",
                "write REGION OFFSET HEX": "write hex bytes to a BAR",
                "sensors DEV": "GET_SENSOR_INFO (protocol v1+), scaled to units",
                "reset DEV [service|compute]": "reset the card (DEVICE_HOTPLUG_OP RESET_SEQUENCE)",
                "raw OPCODE [HEXBODY]": "send one request, show ret and body",
            }
        if verb == "devices" and not args:
            devices = await self._refresh()
            return [self._device_json(d) for d in devices]
        if verb == "bar" and len(args) == 2:
            d = self._device_arg(await self._refresh(), args[0])
            n = _int(args[1], "bar")
            if not 0 <= n < wire.NUM_BAR_SLOTS:
                raise RangeError(f"bar: {n} is not a BAR slot (0-5)")
            return self._bar_json(d, d.bars[n])
        if verb == "read" and len(args) == 3:
            off, n = _int(args[1], "offset"), _int(args[2], "length")
            data = await self.read(args[0], off, n)
            return {"region": args[0], "offset": off, "hex": data.hex()}
        if verb == "write" and len(args) == 3:
            off = _int(args[1], "offset")
            try:
                data = bytes.fromhex(args[2].removeprefix("0x"))
            except ValueError:
                raise EmutuiError(f"write: {args[2]!r} is not hex bytes") from None
            await self.write(args[0], off, data)
            return {"region": args[0], "offset": off, "written": len(data)}
        if verb == "sensors" and len(args) == 1:
            d = self._device_arg(await self._refresh(), args[0])

            async def sensors(client: VrtdClient) -> list[wire.Sensor]:
                return await client.get_sensors(d.index)

            got: list[wire.Sensor] = await self._run(sensors)
            return [
                {
                    "name": s.name,
                    "type": s.type,
                    "status": s.status,
                    "value": s.value,
                    "unit_mod": s.unit_mod,
                    "reading": format_sensor(s),
                }
                for s in got
            ]
        if verb == "reset" and 1 <= len(args) <= 2:
            d = self._device_arg(await self._refresh(), args[0])
            shell = args[1] if len(args) == 2 else None
            if shell is not None and shell not in SHELLS:
                raise EmutuiError(f"reset: shell must be service or compute, not {shell!r}")
            await self.reset_card(d, shell)
            return {"reset": d.name, "shell": shell or self._reset_shell_name(d)}
        if verb == "raw" and 1 <= len(args) <= 2:
            op = _int(args[0], "opcode")
            if not 0 <= op <= 0xFFFF:
                raise RangeError("raw: opcode must fit in 16 bits")
            try:
                body = bytes.fromhex(args[1]) if len(args) == 2 else b""
            except ValueError:
                raise EmutuiError(f"raw: {args[1]!r} is not hex bytes") from None

            async def raw(client: VrtdClient) -> dict[str, Any]:
                reply = await client.request(op, body)
                for fd in reply.fds:  # the shell has no use for a descriptor
                    os.close(fd)
                return {
                    "opcode": wire.opcode_name(op),
                    "ret": wire.ret_name(reply.ret),
                    "seqno": reply.seqno,
                    "body": reply.body.hex(),
                    "fds": len(reply.fds),
                }

            return await self._run(raw)
        raise EmutuiError(
            f"unknown vrtd command {line!r} (try: devices, bar DEV N, read REGION OFF LEN, "
            f"write REGION OFF HEX, sensors DEV, raw OPCODE [HEX], help)"
        )

    def _device_arg(self, devices: list[DeviceView], text: str) -> DeviceView:
        if text.isdigit():
            i = int(text)
            if i < len(devices):
                return devices[i]
            raise NotFoundError(f"{self.name}: no device {i} ({len(devices)} device(s))")
        return self._device(devices, text)

    def _bar_json(self, d: DeviceView, b: wire.BarInfo) -> dict[str, Any]:
        out: dict[str, Any] = {
            "bar": b.bar_number,
            "usable": b.usable,
            "in_use": b.in_use,
            "start": hex(b.start_address),
            "length": b.length,
        }
        if b.usable:
            out["region"] = f"{d.name}.bar{b.bar_number}"
        return out

    def _device_json(self, d: DeviceView) -> dict[str, Any]:
        out: dict[str, Any] = {"index": d.index, "name": d.name}
        if d.info.pci is not None:
            p = d.info.pci
            out["pci"] = {
                "bdf": p.bdf,
                "vendor_id": hex(p.vendor_id),
                "device_id": hex(p.device_id),
                "subsystem_vendor_id": hex(p.subsystem_vendor_id),
                "subsystem_device_id": hex(p.subsystem_device_id),
            }
        if d.info.shell_type is not None:
            out["shell"] = wire.SHELL_TYPES.get(d.info.shell_type, str(d.info.shell_type))
            out["jtag"] = bool(d.info.jtag)
        out["bars"] = [self._bar_json(d, b) for b in d.bars]
        return out
