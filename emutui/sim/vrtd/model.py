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

import contextlib
import fcntl
import logging
import mmap
import os
import struct
import tempfile
import time
from dataclasses import dataclass, field

from emutui.backends.vrtd import wire
from emutui.backends.vrtd.wire import Opcode, Ret
from emutui.sim.vrtd.perms import Effective, Permissions
from emutui.sim.vrtd.udmabuf import dmabuf_over

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
    fd: int | None = None  # memfd (or udmabuf, or a mock file), shared with every client
    mem: mmap.mmap | None = None  # the simulator's own view of it
    path: str | None = None  # a mock BAR's backing file, removed at close
    own_fd: int | None = None  # the memfd under a udmabuf ``fd``

    def info(self) -> wire.BarInfo:
        return wire.BarInfo(self.number, self.usable, False, self.start, self.length)

    def close(self) -> None:
        if self.mem is not None:
            self.mem.close()
            self.mem = None
        for fd in (self.fd, self.own_fd):
            if fd is not None:
                os.close(fd)
        self.fd = self.own_fd = None
        if self.path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            self.path = None


@dataclass
class SimCard:
    index: int  # number, as in the name slash_ctl<N>
    name: str
    bdf: str
    bars: list[SimBar]
    shell_type: int = 0  # UNKNOWN: what vrtd assumes at startup (device.c)
    jtag: bool = False
    mock: bool = False  # a libslash "@mock" card: no PCI info, clocks, AMI or QDMA
    clocks_hz: list[int] = field(default_factory=lambda: [250_000_000, 200_000_000])
    status: int = 0  # last STATUS value published
    scratch_seen: tuple[int, ...] = (0, 0, 0, 0)
    last_tick_s: int = 0

    @property
    def pci_bdf(self) -> str:
        return "" if self.mock else self.bdf

    def device_info(self) -> wire.DeviceInfo:
        if self.mock:  # the PCI-info ioctl fails on a mock card: all zeros
            pci = wire.PciInfo("", 0, 0, 0, 0)
        else:
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
    # vrtd receives every request into the same 4096-byte buffer (``client->inb``,
    # calloc'd at accept) and its handlers read fixed offsets from it: bytes a
    # short request does not carry are whatever the previous request left there.
    inb: bytearray = field(default_factory=lambda: bytearray(wire.MSG_MAX_SIZE))


@dataclass(frozen=True, slots=True)
class Reply:
    data: bytes
    fd: int | None = None  # borrowed: the network layer sends it and must not close it
    delay: float = 0.0  # an asynchronous operation: the reply is held back this long


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


MOCK_BAR_SIZE = 64 * MIB  # SLASH_MOCK_BAR_SIZE


def _memfd_bar(name: str, bar: int, size: int) -> int:
    fd = os.memfd_create(f"vrtd-sim-{name}-bar{bar}", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, size)  # sparse: pages exist only once touched
    # Sealed like a dma-buf cannot be resized: a client that ftruncate()s the
    # fd it was given must not SIGBUS every other client's mapping.
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
    return fd


def _mock_bar_file(size: int) -> tuple[int, str]:
    """libslash's mock BAR (ctldev_mock.c): a sparse 0600 file
    ``$XDG_RUNTIME_DIR|/tmp/slash.mock.<random>``, kept until the card closes."""
    base = os.environ.get("XDG_RUNTIME_DIR") or "/tmp"
    fd, path = tempfile.mkstemp(prefix="slash.mock.", dir=base)
    os.set_inheritable(fd, False)
    os.ftruncate(fd, size)
    return fd, path


def _card_names(n: int) -> list[str]:
    # vrtd globs /dev/slash_ctl*: lexicographic, so slash_ctl10 sorts before slash_ctl2.
    return sorted(f"slash_ctl{i}" for i in range(n))


class VrtdModel:
    def __init__(self, options: SimOptions | None = None, perms: Permissions | None = None):
        self.options = options or SimOptions()
        self.perms = perms or Permissions.everyone()
        self.t0 = time.monotonic_ns()
        self.cards: list[SimCard] = []
        if self.options.mock:
            # the real daemon's test patch opens N libslash "@mock" cards, all so named
            for i in range(self.options.cards):
                self.cards.append(self._make_card(i, "@mock"))
        else:
            for name in _card_names(self.options.cards):
                num = int(name.removeprefix("slash_ctl"))
                self.cards.append(self._make_card(num, name))
        self._all_cards = list(self.cards)  # what a rescan rediscovers
        self._next_conn = 1
        self.epoch = 0  # bumped by reload(), so cached roles are resolved again
        self.busy_until = 0.0  # an async device op (cfgmem, reset) runs until then
        self.job: CfgmemJob | None = None
        self._next_job = 1

    # ------------------------------------------------------------------ construction

    def _make_card(self, num: int, name: str) -> SimCard:
        mock = self.options.mock
        bars = []
        for b in range(wire.NUM_BAR_SLOTS):
            if mock:
                usable, size, pref = b == 0, MOCK_BAR_SIZE, False
            else:
                usable, size, pref = b in (0, 2, 4), self.options.bar_size, b == 4
            if not usable:
                bars.append(SimBar(b, False))
                continue
            # Invented, 4 GiB-aligned host addresses (none appear in the real source).
            start = 0 if mock else (0x38 + num) << 36 | b << 32
            fd, path = _mock_bar_file(size) if mock else (_memfd_bar(name, b, size), None)
            mem = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            bar = SimBar(b, True, start, size, pref, fd, mem, path)
            if not mock:
                # a dma-buf over the memfd where /dev/udmabuf exists: SYNC then works
                dmabuf = dmabuf_over(fd, size)
                if dmabuf is not None:
                    bar.own_fd, bar.fd = fd, dmabuf
            bars.append(bar)
        card = SimCard(num, name, f"0000:{(0xC4 + num) & 0xFF:02x}:00", bars, mock=mock)
        if not mock:  # a libslash mock BAR is plain zeroed memory
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
            if mem is None or card.mock:
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
        # recvmsg() lands in the connection's buffer before any check (serve.c
        # client_handle_in), so even a rejected frame overwrites its first n bytes.
        client.inb[:n] = frame[: wire.MSG_MAX_SIZE]
        if n < wire.HEADER_SIZE:
            return Malformed(f"{n}-byte datagram is shorter than the 8-byte header")
        size, opcode, seqno = struct.unpack_from("<HHI", frame)
        if size + wire.HEADER_SIZE != n:
            return Malformed(f"header size {size} does not match the {n - 8}-byte body")
        if size > wire.MAX_BODY_SIZE:  # unreachable with a 4096-byte buffer; kept as in serve.c
            return Malformed(f"body size {size} exceeds {wire.MAX_BODY_SIZE}")
        ret, out, fd, delay = self._dispatch(opcode, size, fds_in == 1, client)
        if ret != Ret.OK:
            out, fd = b"", None  # error replies carry no body and no descriptor
        return Reply(wire.encode_response(ret, seqno, out), fd, delay)

    # Each handler mirrors its client_handle_request_* in vrtd's serve.c (dev,
    # 6a4cc11e), check for check: the line numbers below are that file's.

    def _dispatch(self, opcode: int, size: int, has_fd: bool, client: ClientState) -> _Result:
        if opcode > wire.GENERATION_MAX_OPCODE.get(self.options.generation, 19):
            return _err(Ret.BAD_REQUEST)  # the switch's default: no auth at all
        op = Opcode(opcode)
        req = _Req(bytes(client.inb[wire.HEADER_SIZE :]), size, has_fd, op)
        role = self._role(client)
        return _HANDLERS[op](self, req, role, client)

    def _need(self, op: Opcode) -> int:
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

    def _dev(self, dev: int) -> SimCard | None:
        return self.cards[dev] if dev < len(self.cards) else None

    def _may(self, role: Effective, key: str, dev: int) -> bool:
        """auth_check_device_permission: query, then the device's policy; an index
        that names no device is denied (AUTH_ERROR, not NOEXIST: auth.c:302)."""
        card = self._dev(dev)
        if card is None:
            # the seed daemon's rule (query, device=any, bar-access=full) names no
            # device, so a bad index got through to NOEXIST there
            return (
                self.options.generation == 0
                and not role.per_device
                and (role.allow_all or role.device_may(key, "any"))
            )
        return role.device_may(key, card.pci_bdf)

    def _query_then_size(self, op: Opcode, req: _Req, role: Effective) -> int | None:
        """The common head: query permission, then the body length."""
        if not role.query:
            return Ret.AUTH_ERROR
        if req.size < self._need(op):
            return Ret.BAD_REQUEST
        return None

    def _device_then_size(self, op: Opcode, req: _Req, role: Effective, key: str) -> int | None:
        """Device-permission auth (reading dev_number from the buffer), then the length."""
        if not self._may(role, key, req.u32(0)):
            return Ret.AUTH_ERROR
        if req.size < self._need(op):
            return Ret.BAD_REQUEST
        return None

    def h_get_num_devices(self, req: _Req, role: Effective, client: ClientState) -> _Result:
        if (e := self._query_then_size(Opcode.GET_NUM_DEVICES, req, role)) is not None:
            return _err(e)
        return _ok(struct.pack("<I", len(self.cards)))

    def h_get_device_info(self, req: _Req, role: Effective, client: ClientState) -> _Result:
        if (e := self._query_then_size(Opcode.GET_DEVICE_INFO, req, role)) is not None:
            return _err(e)
        card = self._dev(req.u32(0))
        if card is None:
            return _err(Ret.NOEXIST)
        return _ok(wire.enc_device_info(card.device_info(), self.options.generation))

    def h_get_bar_info(self, req: _Req, role: Effective, client: ClientState) -> _Result:
        if (e := self._query_then_size(Opcode.GET_BAR_INFO, req, role)) is not None:
            return _err(e)
        card = self._dev(req.u32(0))
        if card is None:
            return _err(Ret.NOEXIST)
        bar = req.u8(4)
        if bar >= wire.NUM_BAR_SLOTS:
            return _err(Ret.BAD_REQUEST)
        return _ok(card.bars[bar].info().pack())

    def h_get_bar_fd(self, req: _Req, role: Effective, client: ClientState) -> _Result:
        if (e := self._device_then_size(Opcode.GET_BAR_FD, req, role, "bar-access")) is not None:
            return _err(e)
        card = self._dev(req.u32(0))
        if card is None:
            return _err(Ret.NOEXIST)
        bar = req.u8(4)
        if bar >= wire.NUM_BAR_SLOTS:
            return _err(Ret.BAD_REQUEST)
        b = card.bars[bar]
        if b.fd is None:
            return _err(Ret.NOEXIST)
        return Ret.OK, struct.pack("<Q", b.length), b.fd, 0.0

    def h_qdma(self, req: _Req, role: Effective, client: ClientState) -> _Result:
        """QDMA_QPAIR_ADD/OP/GET_FD (device ``qdma``); QDMA_GET_INFO needs only query
        (auth.c:524). No simulated card has a QDMA engine: NOEXIST (serve.c d->qdma)."""
        op = req.opcode
        if op is Opcode.QDMA_GET_INFO:
            e = self._query_then_size(op, req, role)
        else:
            e = self._device_then_size(op, req, role, "qdma")
        if e is not None:
            return _err(e)
        if self._dev(req.u32(0)) is None:
            return _err(Ret.NOEXIST)
        return _err(Ret.NOEXIST)  # d->qdma == NULL

    def h_design_write(self, req: _Req, role: Effective, client: ClientState) -> _Result:
        e = self._device_then_size(Opcode.DESIGN_WRITE, req, role, "design-write")
        if e is not None:
            return _err(e)
        if self._dev(req.u32(0)) is None:
            return _err(Ret.NOEXIST)
        return _err(Ret.NOEXIST)  # no design writer without QDMA

    def h_buffer(self, req: _Req, role: Effective, client: ClientState) -> _Result:
        """BUFFER_OPEN (buffer), BUFFER_OPEN_RAW (raw-mem-access), BUFFER_CLOSE (buffer):
        argument checks as serve.c:2820/2825/2972/3091, then NOEXIST (no QDMA)."""
        op = req.opcode
        key = "raw-mem-access" if op is Opcode.BUFFER_OPEN_RAW else "buffer"
        if (e := self._device_then_size(op, req, role, key)) is not None:
            return _err(e)
        if self._dev(req.u32(0)) is None:
            return _err(Ret.NOEXIST)
        gen1 = self.options.generation == 1
        if op is Opcode.BUFFER_OPEN:
            # dev, alloc_type, alloc_dir, mm_channel, alloc_arg, size (v1: no mm_channel)
            size = req.u64(20 if gen1 else 24)
            channel = None if gen1 else req.u32(12)
        elif op is Opcode.BUFFER_OPEN_RAW:
            # dev, alloc_dir, mm_channel, phys_addr, size (v1: no mm_channel)
            size = req.u64(16 if gen1 else 20)
            channel = None if gen1 else req.u32(8)
        else:  # BUFFER_CLOSE: dev, phys_addr, size
            size, channel = req.u64(12), None
        if size == 0:
            return _err(Ret.INVALID_ARGUMENT)
        if channel is not None and channel > MM_CHANNEL_MAX:
            return _err(Ret.INVALID_ARGUMENT)
        return _err(Ret.NOEXIST)  # d->qdma == NULL (CLOSE: no such buffer)

    def h_clock_op(self, req: _Req, role: Effective, client: ClientState) -> _Result:
        if (e := self._device_then_size(Opcode.CLOCK_OP, req, role, "clock")) is not None:
            return _err(e)
        card = self._dev(req.u32(0))
        if card is None or card.mock:  # a mock card has no clock driver
            return _err(Ret.NOEXIST)
        rate, cop, region = req.u32(4), req.u8(8), req.u8(9)
        if region > CLOCK_REGION_USER:
            return _err(Ret.INVALID_ARGUMENT)
        if cop == CLOCK_OP_GET:
            return _ok(struct.pack("<I", card.clocks_hz[region]))
        allowed = (CLOCK_OP_SET,) if region == CLOCK_REGION_SERVICE else (1, 2)
        if cop not in allowed:
            return _err(Ret.INVALID_ARGUMENT)  # SET_ROUND_DOWN only for USER (serve.c:3248)
        if rate == 0:
            return _err(Ret.INVALID_ARGUMENT)  # serve.c:3225/3266
        achieved = clock_achievable(rate, round_down=cop == CLOCK_OP_SET_ROUND_DOWN)
        card.clocks_hz[region] = achieved
        return _ok(struct.pack("<I", achieved))

    def h_get_device_by_bdf(self, req: _Req, role: Effective, client: ClientState) -> _Result:
        if (e := self._query_then_size(Opcode.GET_DEVICE_BY_BDF, req, role)) is not None:
            return _err(e)
        raw = req.body[:31].split(b"\0", 1)[0]
        if not raw:
            return _err(Ret.INVALID_ARGUMENT)
        dot = raw.rfind(b".")
        if dot >= 0:
            raw = raw[:dot]
        if raw.count(b":") == 1 and len(raw) + 5 < 32:
            raw = b"0000:" + raw
        for i, card in enumerate(self.cards):
            pci = card.device_info().pci
            if pci is not None and pci.bdf.encode() == raw:  # strcmp: case and syntax as sent
                return _ok(struct.pack("<I", i))
        return _err(Ret.NOEXIST)

    def h_hotplug(self, req: _Req, role: Effective, client: ClientState) -> _Result:
        if req.size < self._need(Opcode.DEVICE_HOTPLUG_OP):  # before auth (serve.c:2274)
            return _err(Ret.BAD_REQUEST)
        op, function = req.u8(4), req.u8(5)
        shell = req.u8(6) if self.options.generation >= 2 else 0
        hotplug = not self.options.mock  # /dev/slash_hotplug: only where a V80 is
        if op == HOTPLUG_RESCAN:  # handled before any authorization (serve.c:2278)
            if not hotplug:
                return _err(Ret.INVALID_ARGUMENT)  # g_hotplug NULL: EINVAL
            self._rescan()
            return _ok(b"\0")
        if not self._may(role, "pcie-hotplug", req.u32(0)):
            return _err(Ret.AUTH_ERROR)
        card = self._dev(req.u32(0))
        if card is None:
            return _err(Ret.NOEXIST)
        if op in (HOTPLUG_REMOVE, HOTPLUG_TOGGLE_SBR, HOTPLUG_HOTPLUG):
            if function == HOTPLUG_FUNCTION_ALL:
                if op == HOTPLUG_TOGGLE_SBR:
                    return _err(Ret.INVALID_ARGUMENT)  # serve.c:2333
                if card.mock:
                    return _err(Ret.INTERNAL_ERROR)  # no BDF to build PF BDFs from
                self.cards.remove(card)
                if op == HOTPLUG_HOTPLUG:
                    self._rescan()
                return _ok(b"\0")
            if function > 7:
                return _err(Ret.INVALID_ARGUMENT)  # serve.c:2387
            if card.mock:
                return _err(Ret.INTERNAL_ERROR)  # pci_bdf_set_function("") fails
            if op == HOTPLUG_REMOVE:
                self.cards.remove(card)
            return _ok(b"\0")
        if op == HOTPLUG_RESET_SEQUENCE:
            if shell not in (SHELL_SERVICE, SHELL_COMPUTE):
                return _err(Ret.INVALID_ARGUMENT)  # serve.c:2427
            if self.busy_until > time.monotonic():
                return _err(Ret.BUSY)
            self.busy_until = time.monotonic() + RESET_SECONDS
            if card.mock:  # the worker's reset_with_ami finds no AMI
                return Ret.INTERNAL_ERROR, b"", None, RESET_SECONDS
            # reset_with_ami: the card comes back in the requested shell; the reply
            # is held back while the reset runs, as vrtd defers it.
            card.shell_type = shell
            return Ret.OK, b"\0", None, RESET_SECONDS
        return _err(Ret.INVALID_ARGUMENT)  # serve.c:2435

    def _rescan(self) -> None:
        """devices_discover_and_open: removed cards come back, in glob order."""
        self.cards = list(self._all_cards)

    def h_sensors(self, req: _Req, role: Effective, client: ClientState) -> _Result:
        if (e := self._query_then_size(Opcode.GET_SENSOR_INFO, req, role)) is not None:
            return _err(e)
        card = self._dev(req.u32(0))
        if card is None:
            return _err(Ret.NOEXIST)
        if card.mock:
            return _err(Ret.INTERNAL_ERROR)  # no PF0 BDF, no AMI
        return _ok(wire.enc_sensors(self.sensors(card)))

    def sensors(self, card: SimCard) -> list[wire.Sensor]:
        """What AMI would report, per sensor and type in vrtd's order (temp,
        current, voltage, power); values in milli-units, unit_mod -3."""
        secs = (time.monotonic_ns() - self.t0) // 1_000_000_000
        temp = 46_250 + secs % 8 * 125 + card.index * 500
        ok = 1  # AMI_SENSOR_STATUS_OK
        return [
            wire.Sensor("fpga", SENSOR_TEMP, ok, -3, temp),
            wire.Sensor("vccint", SENSOR_CURRENT, ok, -3, 5_200),
            wire.Sensor("vccint", SENSOR_VOLTAGE, ok, -3, 800),
            wire.Sensor("vccint", SENSOR_POWER, ok, -3, 4_160),
            wire.Sensor("12v_pex", SENSOR_CURRENT, ok, -3, 2_100),
            wire.Sensor("12v_pex", SENSOR_VOLTAGE, ok, -3, 12_050),
            wire.Sensor("12v_pex", SENSOR_POWER, ok, -3, 25_305),
        ]

    def h_set_shell_state(self, req: _Req, role: Effective, client: ClientState) -> _Result:
        if req.size < self._need(Opcode.SET_SHELL_STATE):  # before auth (serve.c:1878)
            return _err(Ret.BAD_REQUEST)
        if not self._may(role, "pcie-hotplug", req.u32(0)):
            return _err(Ret.AUTH_ERROR)
        card = self._dev(req.u32(0))
        if card is None:
            return _err(Ret.NOEXIST)
        shell, jtag = req.u8(4), req.u8(5)
        if shell not in (SHELL_SERVICE, SHELL_COMPUTE):
            return _err(Ret.INVALID_ARGUMENT)  # serve.c:1907
        if card.shell_type != SHELL_UNKNOWN and card.shell_type != shell:
            return _err(Ret.BUSY)  # serve.c:1914
        if jtag == 0 and card.jtag:
            return _err(Ret.BUSY)  # serve.c:1921
        card.shell_type, card.jtag = shell, jtag != 0  # any nonzero value sets it
        return _ok(b"\0")

    def h_cfgmem_program(self, req: _Req, role: Effective, client: ClientState) -> _Result:
        """CFGMEM_PROGRAM (reply held until the job ends) and CFGMEM_PROGRAM_START
        (job id at once): length before auth (serve.c:2068/2110), then serve.c:1960-2000."""
        op = req.opcode
        if req.size < self._need(op):
            return _err(Ret.BAD_REQUEST)
        dev = req.u32(0)
        if not self._may(role, "cfgmem-program", dev):
            return _err(Ret.AUTH_ERROR)
        card = self._dev(dev)
        if card is None:
            return _err(Ret.NOEXIST)
        if not req.has_fd:
            return _err(Ret.BAD_REQUEST)
        boot_device, reserved, partition = req.u8(4), req.body[5:8], req.u32(8)
        if boot_device >= BOOT_DEVICES_MAX or partition > CFGMEM_MAX_PARTITION:
            return _err(Ret.INVALID_ARGUMENT)
        if reserved != b"\0\0\0":
            return _err(Ret.INVALID_ARGUMENT)
        now = time.monotonic()
        if self.busy_until > now:
            return _err(Ret.BUSY)
        # a mock card has no PF0 BDF: the worker fails at once (OPENING_AMI -> FAILED)
        job = CfgmemJob(self._next_job, client.conn_id, now, card.mock, 0.0 if card.mock else 2.0)
        self._next_job = self._next_job % 0xFFFF_FFFF_FFFF_FFFF + 1
        self.job = job
        self.busy_until = now + job.duration
        if op is Opcode.CFGMEM_PROGRAM_START:
            return _ok(struct.pack("<Q", job.job_id))
        if job.fails:
            return Ret.INTERNAL_ERROR, b"", None, job.duration
        return Ret.OK, b"\0", None, job.duration

    def h_cfgmem_status(self, req: _Req, role: Effective, client: ClientState) -> _Result:
        # No authorization at all here (serve.c:2143-2152): only the job's owner.
        if req.size < self._need(Opcode.CFGMEM_PROGRAM_STATUS):
            return _err(Ret.BAD_REQUEST)
        job = self.job
        job_id = req.u64(0)
        if job is None or job_id == 0 or job_id != job.job_id:
            return _err(Ret.NOEXIST)
        if job.owner != client.conn_id:
            return _err(Ret.AUTH_ERROR)
        return _ok(job.status(time.monotonic()))


# --------------------------------------------------------------------------- helpers

SHELL_UNKNOWN, SHELL_SERVICE, SHELL_COMPUTE = 0, 1, 2
HOTPLUG_RESCAN, HOTPLUG_REMOVE, HOTPLUG_TOGGLE_SBR, HOTPLUG_HOTPLUG = 0, 1, 2, 3
HOTPLUG_RESET_SEQUENCE = 4
HOTPLUG_FUNCTION_ALL = 255
CLOCK_OP_GET, CLOCK_OP_SET, CLOCK_OP_SET_ROUND_DOWN = 0, 1, 2
CLOCK_REGION_SERVICE, CLOCK_REGION_USER = 0, 1
MM_CHANNEL_MAX = 2  # SLASH_QDMA_MM_CHANNEL_1
BOOT_DEVICES_MAX = 2  # AMI_BOOT_DEVICES_MAX
CFGMEM_MAX_PARTITION = 15
SENSOR_TEMP, SENSOR_CURRENT, SENSOR_VOLTAGE, SENSOR_POWER = 1, 2, 4, 8  # AMI, wire.h
RESET_SECONDS = 0.5
CLOCK_STEP_HZ = 1_000_000 // 8  # simulated MMCM granularity: 125 kHz


def clock_achievable(rate_hz: int, round_down: bool) -> int:
    """A clock wizard cannot hit any rate: the simulated one steps by 125 kHz (the
    real answer depends on the MMCM; only hardware knows). SET picks the nearest
    step, SET_ROUND_DOWN the nearest that does not exceed the request."""
    step = CLOCK_STEP_HZ
    lo = rate_hz // step * step
    if round_down:
        return max(lo, step)
    hi = lo + step
    best = lo if rate_hz - lo <= hi - rate_hz else hi
    return max(best, step)


@dataclass
class CfgmemJob:
    """The flash worker's one job: queued, running through its phases, done or failed."""

    job_id: int
    owner: int
    started: float
    fails: bool = False  # a mock card has no AMI: the job fails while opening it
    duration: float = 2.0

    def status(self, now: float) -> bytes:
        elapsed = now - self.started  # counts on after the end, as vrtd's does
        total = 0 if self.fails else 64 << 20
        if self.fails:
            state, phase, written, result = 3, 10, 0, int(Ret.INTERNAL_ERROR)
        elif elapsed >= self.duration:
            state, phase, written, result = 2, 9, total, 0
        else:
            frac = elapsed / self.duration
            phase = 1 + min(7, int(frac * 8))
            state, written, result = 1, int(total * min(1.0, frac * 2)), 0
        return struct.pack(
            "<QIIQQQH", self.job_id, state, phase, written, total, int(elapsed * 1000), result
        )


@dataclass(frozen=True, slots=True)
class _Req:
    """A request as a handler sees it: the connection's whole 4088-byte body buffer
    (stale bytes past ``size`` included) and the size the header declared."""

    body: bytes
    size: int
    has_fd: bool = False
    opcode: Opcode = Opcode.GET_NUM_DEVICES

    def u8(self, off: int) -> int:
        return self.body[off]

    def u32(self, off: int) -> int:
        v: int = struct.unpack_from("<I", self.body, off)[0]
        return v

    def u64(self, off: int) -> int:
        v: int = struct.unpack_from("<Q", self.body, off)[0]
        return v


_Result = tuple[int, bytes, int | None, float]


def _ok(body: bytes) -> _Result:
    return Ret.OK, body, None, 0.0


def _err(ret: int) -> _Result:
    return ret, b"", None, 0.0


_HANDLERS = {
    Opcode.GET_NUM_DEVICES: VrtdModel.h_get_num_devices,
    Opcode.GET_DEVICE_INFO: VrtdModel.h_get_device_info,
    Opcode.GET_BAR_INFO: VrtdModel.h_get_bar_info,
    Opcode.GET_BAR_FD: VrtdModel.h_get_bar_fd,
    Opcode.QDMA_GET_INFO: VrtdModel.h_qdma,
    Opcode.QDMA_QPAIR_ADD: VrtdModel.h_qdma,
    Opcode.QDMA_QPAIR_OP: VrtdModel.h_qdma,
    Opcode.QDMA_QPAIR_GET_FD: VrtdModel.h_qdma,
    Opcode.DESIGN_WRITE: VrtdModel.h_design_write,
    Opcode.CLOCK_OP: VrtdModel.h_clock_op,
    Opcode.BUFFER_OPEN: VrtdModel.h_buffer,
    Opcode.BUFFER_CLOSE: VrtdModel.h_buffer,
    Opcode.GET_DEVICE_BY_BDF: VrtdModel.h_get_device_by_bdf,
    Opcode.DEVICE_HOTPLUG_OP: VrtdModel.h_hotplug,
    Opcode.GET_SENSOR_INFO: VrtdModel.h_sensors,
    Opcode.BUFFER_OPEN_RAW: VrtdModel.h_buffer,
    Opcode.CFGMEM_PROGRAM: VrtdModel.h_cfgmem_program,
    Opcode.CFGMEM_PROGRAM_START: VrtdModel.h_cfgmem_program,
    Opcode.CFGMEM_PROGRAM_STATUS: VrtdModel.h_cfgmem_status,
    Opcode.SET_SHELL_STATE: VrtdModel.h_set_shell_state,
}
