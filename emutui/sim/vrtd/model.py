"""The pure device model behind ``emutui sim vrtd``: V80 cards and vrtd's request handling.

No sockets here. ``VrtdModel.handle(frame, client)`` takes one received
datagram (plus the receive flags the network layer saw) and returns what the
real daemon would do with it: a reply datagram with an optional descriptor, or
"malformed" (the daemon sends nothing and drops or disables the connection).
``tick()`` advances the registers. Tests drive both directly.

Handlers follow spec §3.2 to the order of checks: authorization, then body
length, then arguments. BAR memory is a memfd per usable BAR, created once and
shared by every client (the real daemon likewise hands out one long-lived fd
per BAR), so writes by one client are visible to all.

BAR0 register map (32-bit little-endian words; documented in docs/vrtd.md):

    0x000 ID          RO   0x30385653, the bytes "SV80"
    0x004 VERSION     RO   0x00010000 (major << 16 | minor)
    0x008 CARD        RO   card index
    0x00C BAR_SIZE_MB RO   BAR0 size in MiB
    0x010 SCRATCH0    RW   \
    0x014 SCRATCH1    RW    | plain memory
    0x018 SCRATCH2    RW    |
    0x01C SCRATCH3    RW   /
    0x020 COUNTER_LO  RO   free-running microseconds since the simulator started
    0x024 COUNTER_HI  RO
    0x028 STATUS      W1C  bit0 TICK (set every second), bit1 SCRATCH (a scratch
                           register changed), bit2 RO_WRITE (a read-only word
                           was overwritten and has been restored)
    0x02C UPTIME_S    RO   seconds since the simulator started
    0x100 BANNER      RO   64 bytes of ASCII, NUL-padded

Clients mmap the memfd, so no access traps into the simulator: "read-only" and
"write-1-to-clear" are applied by polling (``tick``, every 10 ms by default).
A write to a RO word lands and is undone at the next tick. A write to STATUS
is seen as the word changing from the value the simulator last published; the
written value is taken as the clear mask. Writing back exactly the value just
read is therefore invisible -- write 0xFFFFFFFF to clear everything (status
bits live in bits 0-2, so that value always differs).
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import struct
import time
from dataclasses import dataclass, field

from emutui.backends.vrtd import wire
from emutui.backends.vrtd.wire import Opcode, Ret
from emutui.sim.vrtd.perms import Effective, Permissions, normalise_selector

log = logging.getLogger("emutui.sim.vrtd")

MIB = 1 << 20
DEFAULT_BAR_SIZE = 128 * MIB

# BAR0 registers
REG_ID = 0x000
REG_VERSION = 0x004
REG_CARD = 0x008
REG_BAR_SIZE_MB = 0x00C
REG_SCRATCH = (0x010, 0x014, 0x018, 0x01C)
REG_COUNTER_LO = 0x020
REG_COUNTER_HI = 0x024
REG_STATUS = 0x028
REG_UPTIME_S = 0x02C
REG_BANNER = 0x100
BANNER_LEN = 64
ID_VALUE = 0x30385653  # b"SV80" little-endian
VERSION_VALUE = 0x00010000
STATUS_TICK = 1 << 0
STATUS_SCRATCH = 1 << 1
STATUS_RO_WRITE = 1 << 2
BUILD_ID_OFFSET = 0x2_0000  # BAR4 build-ID GPIO, as on the real static shell

PCI_VENDOR_XILINX = 0x10EE
PCI_DEVICE_PF2 = 0x50C2  # slash_ctl function, current shells
PCI_SUBSYS_DEVICE = 0x000E

_W = struct.Struct("<I")


@dataclass
class SimBar:
    number: int
    usable: bool
    start: int = 0
    length: int = 0
    prefetchable: bool = False
    fd: int | None = None  # memfd, shared with every client
    mem: mmap.mmap | None = None  # the simulator's own view of it

    def info(self) -> wire.BarInfo:
        return wire.BarInfo(self.number, self.usable, False, self.start, self.length)

    def close(self) -> None:
        if self.mem is not None:
            self.mem.close()
            self.mem = None
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


@dataclass
class SimCard:
    index: int  # number, as in the name slash_ctl<N>
    name: str
    bdf: str
    bars: list[SimBar]
    shell_type: int = 2  # compute
    jtag: bool = False
    clocks_hz: list[int] = field(default_factory=lambda: [250_000_000, 200_000_000])
    status: int = 0  # last STATUS value published
    scratch_seen: tuple[int, ...] = (0, 0, 0, 0)
    last_tick_s: int = 0

    def device_info(self) -> wire.DeviceInfo:
        pci = wire.PciInfo(
            self.bdf, PCI_VENDOR_XILINX, PCI_DEVICE_PF2, PCI_VENDOR_XILINX, PCI_SUBSYS_DEVICE
        )
        return wire.DeviceInfo(self.name, pci, self.shell_type, self.jtag)


@dataclass
class ClientState:
    """One connection, as vrtd keeps it: peer credentials and the cached role."""

    uid: int
    gid: int
    pid: int
    gids: list[int]
    conn_id: int = 0
    role: Effective | None = None  # resolved on the first request
    role_epoch: int = -1  # config generation the cached role came from


@dataclass(frozen=True, slots=True)
class Reply:
    data: bytes
    fd: int | None = None  # borrowed: the network layer sends it and must not close it


@dataclass(frozen=True, slots=True)
class Malformed:
    reason: str


Outcome = Reply | Malformed


@dataclass
class SimOptions:
    cards: int = 1
    generation: int = 2  # 0 seed (128-byte device info, opcodes 0-3), 1 (168), 2 (170)
    bar_size: int = DEFAULT_BAR_SIZE
    mock: bool = False  # libslash mock profile: BAR0 only, 64 MiB
    hang_on_malformed: bool = False  # seed/v1/dev behaviour instead of the hardened disconnect


def _card_names(n: int) -> list[str]:
    # vrtd globs /dev/slash_ctl*: lexicographic, so slash_ctl10 sorts before slash_ctl2.
    return sorted(f"slash_ctl{i}" for i in range(n))


class VrtdModel:
    def __init__(self, options: SimOptions | None = None, perms: Permissions | None = None):
        self.options = options or SimOptions()
        self.perms = perms or Permissions.everyone()
        self.t0 = time.monotonic_ns()
        self.cards: list[SimCard] = []
        for name in _card_names(self.options.cards):
            num = int(name.removeprefix("slash_ctl"))
            self.cards.append(self._make_card(num, name))
        self._next_conn = 1
        self.epoch = 0  # bumped by reload(), so cached roles are resolved again

    # ------------------------------------------------------------------ construction

    def _make_card(self, num: int, name: str) -> SimCard:
        bars = []
        for b in range(wire.NUM_BAR_SLOTS):
            if self.options.mock:
                usable, size, pref = b == 0, 64 * MIB, False
            else:
                usable, size, pref = b in (0, 2, 4), self.options.bar_size, b == 4
            if not usable:
                bars.append(SimBar(b, False))
                continue
            # Invented, 4 GiB-aligned host addresses (none appear in the real source).
            start = 0 if self.options.mock else (0x38 + num) << 36 | b << 32
            fd = os.memfd_create(f"vrtd-sim-{name}-bar{b}", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
            os.ftruncate(fd, size)  # sparse: pages exist only once touched
            # Sealed like a dma-buf cannot be resized: a client that ftruncate()s the
            # fd it was given must not SIGBUS every other client's mapping.
            fcntl.fcntl(
                fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL
            )
            mem = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            bars.append(SimBar(b, True, start, size, pref, fd, mem))
        card = SimCard(num, name, f"0000:{(0xC4 + num) & 0xFF:02x}:00", bars)
        self._init_registers(card)
        return card

    def _ro_words(self, card: SimCard) -> dict[int, int]:
        bar0 = card.bars[0]
        return {
            REG_ID: ID_VALUE,
            REG_VERSION: VERSION_VALUE,
            REG_CARD: card.index,
            REG_BAR_SIZE_MB: bar0.length // MIB,
        }

    def _banner(self, card: SimCard) -> bytes:
        text = f"emutui vrtd simulator {card.name} BAR0".encode()
        return text[: BANNER_LEN - 1].ljust(BANNER_LEN, b"\0")

    def _init_registers(self, card: SimCard) -> None:
        mem = card.bars[0].mem
        if mem is None:
            return
        for off, val in self._ro_words(card).items():
            _W.pack_into(mem, off, val)
        mem[REG_BANNER : REG_BANNER + BANNER_LEN] = self._banner(card)
        bar4 = card.bars[4].mem if len(card.bars) > 4 else None
        if bar4 is not None:
            # build-ID GPIO: +0 low 32 bits of a (made-up) commit hash, +8 the rest
            _W.pack_into(bar4, BUILD_ID_OFFSET, 0x5EED0E80)
            struct.pack_into("<Q", bar4, BUILD_ID_OFFSET + 8, 0x0000_0001_C0FFEE00 + card.index)

    def close(self) -> None:
        for card in self.cards:
            for bar in card.bars:
                bar.close()

    # ------------------------------------------------------------------ registers

    def tick(self, now_ns: int | None = None) -> None:
        """Advance the counter, apply W1C and restore RO words. Polling is all
        shared memory allows: nothing traps a client's access."""
        now = time.monotonic_ns() if now_ns is None else now_ns
        us = max(0, now - self.t0) // 1000
        secs = int(us // 1_000_000)
        for card in self.cards:
            mem = card.bars[0].mem
            if mem is None:
                continue
            new_bits = 0
            for off, val in self._ro_words(card).items():
                if _W.unpack_from(mem, off)[0] != val:
                    _W.pack_into(mem, off, val)
                    new_bits |= STATUS_RO_WRITE
            banner = self._banner(card)
            if mem[REG_BANNER : REG_BANNER + BANNER_LEN] != banner:
                mem[REG_BANNER : REG_BANNER + BANNER_LEN] = banner
                new_bits |= STATUS_RO_WRITE
            scratch = tuple(_W.unpack_from(mem, off)[0] for off in REG_SCRATCH)
            if scratch != card.scratch_seen:
                card.scratch_seen = scratch
                new_bits |= STATUS_SCRATCH
            if secs != card.last_tick_s:
                card.last_tick_s = secs
                new_bits |= STATUS_TICK
            seen = _W.unpack_from(mem, REG_STATUS)[0]
            status = card.status
            if seen != status:  # a client wrote the word: that value is the clear mask
                status &= ~seen & 0xFFFFFFFF
            status |= new_bits
            if status != seen or status != card.status:
                _W.pack_into(mem, REG_STATUS, status)
            card.status = status
            struct.pack_into("<Q", mem, REG_COUNTER_LO, us & 0xFFFFFFFFFFFFFFFF)
            _W.pack_into(mem, REG_UPTIME_S, secs & 0xFFFFFFFF)

    # ------------------------------------------------------------------ protocol

    def new_client(self, uid: int, gid: int, pid: int, gids: list[int]) -> ClientState:
        c = ClientState(uid, gid, pid, gids, self._next_conn)
        self._next_conn += 1
        return c

    def reload(self, perms: Permissions) -> None:
        """SIGHUP: new config; each client's cached role is resolved again on its next request."""
        self.perms = perms
        self.epoch += 1

    def _role(self, client: ClientState) -> Effective:
        if client.role is None or client.role_epoch != self.epoch:
            client.role = self.perms.resolve(client.uid, client.gids)
            client.role_epoch = self.epoch
        return client.role

    def handle(
        self,
        frame: bytes,
        client: ClientState,
        *,
        truncated: bool = False,
        ctruncated: bool = False,
        fds_in: int = 0,
    ) -> Outcome:
        """One received datagram -> what vrtd does. ``truncated``/``ctruncated`` are the
        MSG_TRUNC/MSG_CTRUNC flags; ``fds_in`` how many descriptors came with it."""
        if truncated:
            return Malformed(f"datagram larger than {wire.MSG_MAX_SIZE} bytes (MSG_TRUNC)")
        if ctruncated:
            return Malformed("control data truncated (MSG_CTRUNC): unexpected descriptors")
        if fds_in > 1:
            return Malformed(f"{fds_in} descriptors attached; at most 1 is accepted")
        n = len(frame)
        if n < wire.HEADER_SIZE:
            return Malformed(f"{n}-byte datagram is shorter than the 8-byte header")
        size, opcode, seqno = struct.unpack_from("<HHI", frame)
        if size + wire.HEADER_SIZE != n:
            return Malformed(f"header size {size} does not match the {n - 8}-byte body")
        if size > wire.MAX_BODY_SIZE:  # unreachable with a 4096-byte buffer; kept as in serve.c
            return Malformed(f"body size {size} exceeds {wire.MAX_BODY_SIZE}")
        body = frame[wire.HEADER_SIZE :]
        ret, out, fd = self._dispatch(opcode, body, client)
        if ret != Ret.OK:
            out, fd = b"", None  # error replies carry no body and no descriptor
        return Reply(wire.encode_response(ret, seqno, out), fd)

    def _dispatch(
        self, opcode: int, body: bytes, client: ClientState
    ) -> tuple[int, bytes, int | None]:
        if opcode > wire.GENERATION_MAX_OPCODE.get(self.options.generation, 19):
            return Ret.BAD_REQUEST, b"", None
        role = self._role(client)
        op = Opcode(opcode)
        if op is Opcode.GET_BAR_FD:
            return self._get_bar_fd(body, role)
        if not role.query:
            return Ret.AUTH_ERROR, b"", None
        need = self._request_size(op)
        if op in (Opcode.GET_NUM_DEVICES, Opcode.GET_DEVICE_INFO, Opcode.GET_BAR_INFO):
            if len(body) < need:
                return Ret.BAD_REQUEST, b"", None
            if op is Opcode.GET_NUM_DEVICES:
                return Ret.OK, struct.pack("<I", len(self.cards)), None
            dev = _u32(body, 0)
            if dev >= len(self.cards):
                return Ret.NOEXIST, b"", None
            card = self.cards[dev]
            if op is Opcode.GET_DEVICE_INFO:
                gen = self.options.generation
                return Ret.OK, wire.enc_device_info(card.device_info(), gen), None
            bar = body[4]
            if bar >= wire.NUM_BAR_SLOTS:
                return Ret.BAD_REQUEST, b"", None
            return Ret.OK, card.bars[bar].info().pack(), None
        return self._later(op, body, role, need)

    def _request_size(self, op: Opcode) -> int:
        if self.options.generation == 1:
            v1 = {
                Opcode.DESIGN_WRITE: 4,
                Opcode.BUFFER_OPEN: 28,
                Opcode.DEVICE_HOTPLUG_OP: 6,
                Opcode.BUFFER_OPEN_RAW: 24,
                Opcode.QDMA_QPAIR_ADD: 32,
            }
            if op in v1:
                return v1[op]
        return wire.REQUEST_SIZES[op]

    def _bdf_of(self, dev: int) -> str | None:
        return self.cards[dev].bdf if dev < len(self.cards) else None

    def _get_bar_fd(self, body: bytes, role: Effective) -> tuple[int, bytes, int | None]:
        # The auth code reads dev_number before the length check (missing bytes read as 0).
        dev = _u32(body.ljust(4, b"\0"), 0)
        if not role.query or not role.device_may("bar-access", self._bdf_of(dev)):
            return Ret.AUTH_ERROR, b"", None
        if len(body) < 5:
            return Ret.BAD_REQUEST, b"", None
        if dev >= len(self.cards):
            return Ret.NOEXIST, b"", None
        bar = body[4]
        if bar >= wire.NUM_BAR_SLOTS:
            return Ret.BAD_REQUEST, b"", None
        b = self.cards[dev].bars[bar]
        if b.fd is None:
            return Ret.NOEXIST, b"", None
        return Ret.OK, struct.pack("<Q", b.length), b.fd

    def _later(
        self, op: Opcode, body: bytes, role: Effective, need: int
    ) -> tuple[int, bytes, int | None]:
        """Opcodes 4-19. The simulated card has no QDMA engine, DDR buffers or config
        memory: those answer NOEXIST after the same auth and length checks."""
        if op is Opcode.GET_DEVICE_BY_BDF:
            if len(body) < need:
                return Ret.BAD_REQUEST, b"", None
            text = body[:32].split(b"\0", 1)[0].decode("ascii", "replace")
            try:
                bdf = normalise_selector(text)
            except Exception:
                return Ret.INVALID_ARGUMENT, b"", None
            for i, card in enumerate(self.cards):
                if card.bdf == bdf:
                    return Ret.OK, struct.pack("<I", i), None
            return Ret.NOEXIST, b"", None
        if op is Opcode.CFGMEM_PROGRAM_STATUS:
            if len(body) < need:
                return Ret.BAD_REQUEST, b"", None
            return Ret.NOEXIST, b"", None
        key = {
            Opcode.QDMA_GET_INFO: "qdma",
            Opcode.QDMA_QPAIR_ADD: "qdma",
            Opcode.QDMA_QPAIR_OP: "qdma",
            Opcode.QDMA_QPAIR_GET_FD: "qdma",
            Opcode.DESIGN_WRITE: "design-write",
            Opcode.CLOCK_OP: "clock",
            Opcode.BUFFER_OPEN: "buffer",
            Opcode.BUFFER_CLOSE: "buffer",
            Opcode.DEVICE_HOTPLUG_OP: "pcie-hotplug",
            Opcode.GET_SENSOR_INFO: None,
            Opcode.BUFFER_OPEN_RAW: "raw-mem-access",
            Opcode.CFGMEM_PROGRAM: "cfgmem-program",
            Opcode.CFGMEM_PROGRAM_START: "cfgmem-program",
            Opcode.SET_SHELL_STATE: "pcie-hotplug",
        }[op]
        dev = _u32(body.ljust(4, b"\0"), 0)
        if key is not None and not role.device_may(key, self._bdf_of(dev)):
            return Ret.AUTH_ERROR, b"", None
        if len(body) < need:
            return Ret.BAD_REQUEST, b"", None
        if dev >= len(self.cards):
            return Ret.NOEXIST, b"", None
        card = self.cards[dev]
        if op is Opcode.CLOCK_OP:
            rate, cop, region = struct.unpack_from("<IBB", body, 4)
            if cop > 2 or region > 1:
                return Ret.INVALID_ARGUMENT, b"", None
            if cop != 0:
                card.clocks_hz[region] = rate
            return Ret.OK, struct.pack("<I", card.clocks_hz[region]), None
        if op is Opcode.GET_SENSOR_INFO:
            temp = 45_000 + (time.monotonic_ns() // 1_000_000_000) % 7 * 250
            sensors = [
                wire.Sensor("fpga_temp", 1, 1, -3, int(temp)),
                wire.Sensor("vccint", 2, 1, -3, 800),
                wire.Sensor("board_power", 4, 1, -3, 42_000),
            ]
            return Ret.OK, wire.enc_sensors(sensors), None
        if op is Opcode.SET_SHELL_STATE:
            shell, jtag = body[4], body[5]
            if shell > 2 or jtag > 1:
                return Ret.INVALID_ARGUMENT, b"", None
            card.shell_type, card.jtag = shell, bool(jtag)
            return Ret.OK, b"\0", None
        if op is Opcode.DEVICE_HOTPLUG_OP:
            return Ret.OK, b"\0", None
        log.info("%s on %s: not simulated, answering NOEXIST", op.name, card.name)
        return Ret.NOEXIST, b"", None


def _u32(b: bytes, off: int) -> int:
    v: int = struct.unpack_from("<I", b, off)[0]
    return v
