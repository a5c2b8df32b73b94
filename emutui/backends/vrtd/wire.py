"""The vrtd wire protocol, to the byte (see /work/shared/specs/vrtd-protocol.md).

Pure data: struct layouts, opcode and return-code values, encoders and
decoders. No sockets here, so the client, the simulator and the tests share
one definition of every byte -- and the independent frame tests in
tests/vrtd/test_wire_bytes.py check this module against hand-written hex.

Everything is packed and little-endian (host order on every real deployment).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from emutui.core.errors import (
    BackendError,
    EmutuiError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
)

# Header plus body; wire.h VRTD_MSG_MAX_SIZE. Enforced by both sides.
MSG_MAX_SIZE = 4096
HEADER_SIZE = 8
MAX_BODY_SIZE = MSG_MAX_SIZE - HEADER_SIZE  # 4088

DEFAULT_SOCKET = "/run/vrtd.sock"  # VRTD_STANDARD_PATH (and the seed's VRTD_STANADRD_PATH)
NUM_BAR_SLOTS = 6  # PCI_STD_NUM_BARS: vrtd always reports six slots

# DMA_BUF_IOCTL_SYNC = _IOW('b', 0, struct dma_buf_sync { u64 flags; })
DMA_BUF_IOCTL_SYNC = 0x40086200
DMA_BUF_SYNC_READ = 1
DMA_BUF_SYNC_WRITE = 2
DMA_BUF_SYNC_START = 0
DMA_BUF_SYNC_END = 4
SYNC_START_READ = DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ  # 0x1
SYNC_END_READ = DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ  # 0x5
SYNC_START_WRITE = DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE  # 0x2
SYNC_END_WRITE = DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE  # 0x6

_HDR = struct.Struct("<HHI")  # request: size, opcode, seqno; response: size, ret, seqno


class Opcode(IntEnum):
    GET_NUM_DEVICES = 0
    GET_DEVICE_INFO = 1
    GET_BAR_INFO = 2
    GET_BAR_FD = 3
    # v0+QDMA (12a69a5f)
    QDMA_GET_INFO = 4
    QDMA_QPAIR_ADD = 5
    QDMA_QPAIR_OP = 6
    QDMA_QPAIR_GET_FD = 7
    # v1
    DESIGN_WRITE = 8
    CLOCK_OP = 9
    BUFFER_OPEN = 10
    BUFFER_CLOSE = 11
    GET_DEVICE_BY_BDF = 12
    DEVICE_HOTPLUG_OP = 13
    GET_SENSOR_INFO = 14
    BUFFER_OPEN_RAW = 15
    # v2 (dev)
    CFGMEM_PROGRAM = 16
    CFGMEM_PROGRAM_START = 17
    CFGMEM_PROGRAM_STATUS = 18
    SET_SHELL_STATE = 19


class Ret(IntEnum):
    OK = 0
    BAD_LIB_CALL = 1  # client-local, never on the wire
    BAD_CONN = 2  # client-local, never on the wire
    BAD_REQUEST = 3
    INVALID_ARGUMENT = 4
    NOEXIST = 5
    INTERNAL_ERROR = 6
    AUTH_ERROR = 7
    BUSY = 8  # v1+
    SHELL_LOCKED = 9  # v2
    RESPONSE_MISMATCH = 10  # client-local (hardening branch)


# What may legitimately arrive in a response header: {0} and [3, 9] (hardened client rule).
WIRE_RETS = frozenset({0, 3, 4, 5, 6, 7, 8, 9})

# Clearer than the vendor's what() strings ("Missing permission", "resouce"), but
# recognisably the same codes: the name is always in the message.
RET_TEXT: dict[int, str] = {
    Ret.OK: "success",
    Ret.BAD_LIB_CALL: "bad library call (client-side misuse)",
    Ret.BAD_CONN: "bad connection to the daemon",
    Ret.BAD_REQUEST: "the daemon rejected the request as malformed",
    Ret.INVALID_ARGUMENT: "invalid argument",
    Ret.NOEXIST: "the requested device or BAR does not exist (or is not usable)",
    Ret.INTERNAL_ERROR: "internal error in the daemon (see its log: journalctl -u vrtd)",
    Ret.AUTH_ERROR: "permission denied by the daemon's permission file",
    Ret.BUSY: "the requested resource is busy",
    Ret.SHELL_LOCKED: "the device is JTAG-booted; the daemon refuses an automatic shell reset",
    Ret.RESPONSE_MISMATCH: "reply sequence number does not match the request",
}


def ret_name(ret: int) -> str:
    try:
        return Ret(ret).name
    except ValueError:
        return f"ret {ret}"


def opcode_name(op: int) -> str:
    try:
        return Opcode(op).name
    except ValueError:
        return f"opcode {op}"


class VrtdRetError(BackendError):
    """A non-OK vrtd_ret that has no more specific typed error. ``ret`` keeps the code."""

    def __init__(self, message: str, ret: int) -> None:
        super().__init__(message)
        self.ret = ret


class VrtdPermissionError(PermissionDeniedError):
    ret = int(Ret.AUTH_ERROR)


class VrtdNoExistError(NotFoundError):
    ret = int(Ret.NOEXIST)


DEFAULT_CONFIG = "/etc/vrt/vrtd.conf"  # VRTD_DEFAULT_CONFIG_PATH


def error_for_ret(ret: int, what: str, config: str | None = None) -> EmutuiError:
    """The typed error for a vrtd_ret; ``what`` says which request failed, for the message.

    AUTH_ERROR names the permission file: ``config`` when known (recorded at
    attach, ``--config``), else the daemon's default and its override: emutui
    cannot ask a daemon which file it read."""
    text = RET_TEXT.get(ret, "unknown return code")
    if ret == Ret.AUTH_ERROR:
        where = config or f"{DEFAULT_CONFIG}, or the daemon's $VRTD_CONFIG / --config"
        text = f"{text}: {where}"
    msg = f"{what}: {ret_name(ret)} ({text})"
    if ret == Ret.AUTH_ERROR:
        return VrtdPermissionError(msg)
    if ret == Ret.NOEXIST:
        return VrtdNoExistError(msg)
    if ret in (Ret.BAD_CONN, Ret.RESPONSE_MISMATCH) or ret not in RET_TEXT:
        return ProtocolError(msg)
    return VrtdRetError(msg, ret)


# --------------------------------------------------------------------------- headers


@dataclass(frozen=True, slots=True)
class Header:
    """Either header: ``code`` is the opcode in a request, the ret in a response."""

    size: int
    code: int
    seqno: int


def pack_header(size: int, code: int, seqno: int) -> bytes:
    return _HDR.pack(size, code, seqno & 0xFFFFFFFF)


def unpack_header(data: bytes) -> Header:
    if len(data) < HEADER_SIZE:
        raise ProtocolError(f"vrtd: {len(data)}-byte message is shorter than the 8-byte header")
    size, code, seqno = _HDR.unpack_from(data)
    return Header(size, code, seqno)


def encode_request(opcode: int, seqno: int, body: bytes = b"") -> bytes:
    if len(body) > MAX_BODY_SIZE:
        # libvrtd refuses locally with EMSGSIZE; so do we, as a typed error.
        raise ProtocolError(
            f"vrtd: {opcode_name(opcode)} body of {len(body)} bytes exceeds the "
            f"{MAX_BODY_SIZE}-byte limit (VRTD_MSG_MAX_SIZE {MSG_MAX_SIZE})"
        )
    return pack_header(len(body), opcode, seqno) + body


def encode_response(ret: int, seqno: int, body: bytes = b"") -> bytes:
    if len(body) > MAX_BODY_SIZE:
        raise ValueError(f"response body of {len(body)} bytes exceeds {MAX_BODY_SIZE}")
    return pack_header(len(body), ret, seqno) + body


def check_frame(data: bytes) -> Header:
    """The framing rules both sides apply: >= 8 bytes, size == len - 8, <= 4096."""
    if len(data) > MSG_MAX_SIZE:
        raise ProtocolError(f"vrtd: {len(data)}-byte message exceeds {MSG_MAX_SIZE} bytes")
    h = unpack_header(data)
    if h.size + HEADER_SIZE != len(data):
        raise ProtocolError(
            f"vrtd: header says {h.size}-byte body but the message carries {len(data) - 8}"
        )
    return h


# --------------------------------------------------------------------------- core bodies

_U8 = struct.Struct("<B")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_DEV_BAR = struct.Struct("<IB")
_BAR_INFO = struct.Struct("<IBBBBQQ")  # struct slash_ioctl_bar_info, 24 bytes
_PCI_INFO = struct.Struct("<32sHHHH")  # struct vrtd_pci_info, 40 bytes
BAR_INFO_SIZE = _BAR_INFO.size
DEVICE_INFO_V0_SIZE = 128
DEVICE_INFO_V1_SIZE = 128 + _PCI_INFO.size  # 168
DEVICE_INFO_V2_SIZE = DEVICE_INFO_V1_SIZE + 2  # 170


def req_get_num_devices() -> bytes:
    # Always the 1-byte zero body: every server answers an empty body with BAD_REQUEST.
    return _U8.pack(0)


def req_get_device_info(dev: int) -> bytes:
    return _U32.pack(dev)


def req_dev_bar(dev: int, bar: int) -> bytes:
    """Body of GET_BAR_INFO and GET_BAR_FD."""
    return _DEV_BAR.pack(dev, bar)


def _need(body: bytes, n: int, what: str) -> None:
    if len(body) < n:
        raise ProtocolError(f"vrtd: {what} reply has {len(body)} bytes, expected at least {n}")


def _cstr(raw: bytes) -> str:
    # Seed-era servers leave stale bytes after the NUL: stop at the first one.
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def dec_num_devices(body: bytes) -> int:
    _need(body, 4, "GET_NUM_DEVICES")
    n: int = _U32.unpack_from(body)[0]
    return n


@dataclass(frozen=True, slots=True)
class PciInfo:
    bdf: str
    vendor_id: int
    device_id: int
    subsystem_vendor_id: int
    subsystem_device_id: int


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """GET_DEVICE_INFO, decoded by length: 128 (v0), 168 (v1, PCI) or 170 (v2, shell)."""

    name: str
    pci: PciInfo | None = None
    shell_type: int | None = None  # 0 unknown, 1 service, 2 compute
    jtag: bool | None = None

    @property
    def generation(self) -> int:
        return 2 if self.shell_type is not None else 1 if self.pci is not None else 0


SHELL_TYPES = {0: "unknown", 1: "service", 2: "compute"}


def dec_device_info(body: bytes) -> DeviceInfo:
    _need(body, DEVICE_INFO_V0_SIZE, "GET_DEVICE_INFO")
    name = _cstr(body[:128])
    pci = None
    shell = jtag = None
    if len(body) >= DEVICE_INFO_V1_SIZE:
        bdf, ven, dev, sven, sdev = _PCI_INFO.unpack_from(body, 128)
        pci = PciInfo(_cstr(bdf), ven, dev, sven, sdev)
    if len(body) >= DEVICE_INFO_V2_SIZE:
        shell, jtag_b = body[168], body[169]
        jtag = bool(jtag_b)
    return DeviceInfo(name=name, pci=pci, shell_type=shell, jtag=jtag)


def enc_device_info(info: DeviceInfo, generation: int) -> bytes:
    """Zero-padded (the dev server's behaviour), sized for the protocol generation."""
    name = info.name.encode()[:127]
    out = name + b"\0" * (128 - len(name))
    if generation >= 1:
        pci = info.pci or PciInfo("", 0, 0, 0, 0)
        bdf = pci.bdf.encode()[:31]
        out += _PCI_INFO.pack(
            bdf, pci.vendor_id, pci.device_id, pci.subsystem_vendor_id, pci.subsystem_device_id
        )
    if generation >= 2:
        out += bytes([info.shell_type or 0, 1 if info.jtag else 0])
    return out


@dataclass(frozen=True, slots=True)
class BarInfo:
    """struct slash_ioctl_bar_info."""

    bar_number: int
    usable: bool
    in_use: bool
    start_address: int
    length: int
    size: int = BAR_INFO_SIZE

    def pack(self) -> bytes:
        return _BAR_INFO.pack(
            self.size,
            self.bar_number,
            int(self.usable),
            int(self.in_use),
            0,
            self.start_address,
            self.length,
        )


def dec_bar_info(body: bytes) -> BarInfo:
    _need(body, BAR_INFO_SIZE, "GET_BAR_INFO")
    size, bar, usable, in_use, _pad, start, length = _BAR_INFO.unpack_from(body)
    return BarInfo(bar, bool(usable), bool(in_use), start, length, size)


def dec_bar_fd_len(body: bytes) -> int:
    _need(body, 8, "GET_BAR_FD")
    n: int = _U64.unpack_from(body)[0]
    return n


# --------------------------------------------------------------------------- later opcodes
# Decoded where the spec gives the layout (dev wire.h). Sizes differ between
# generations; each decoder takes the shortest known layout and ignores extra bytes.


@dataclass(frozen=True, slots=True)
class QdmaInfo:
    size: int
    qsets_max: int
    msix_qvecs: int
    vf_max: int
    caps: int
    bdf: str | None = None  # dev: 52-byte layout


def dec_qdma_info(body: bytes) -> QdmaInfo:
    _need(body, 20, "QDMA_GET_INFO")
    size, qsets, msix, vf, caps = struct.unpack_from("<5I", body)
    bdf = _cstr(body[20:52]) if len(body) >= 52 else None
    return QdmaInfo(size, qsets, msix, vf, caps, bdf)


@dataclass(frozen=True, slots=True)
class QpairAdd:
    """slash_qdma_qpair_add: 28 bytes (v0+QDMA), 36 on dev (``mm_channel`` inserted
    after ``dir_mask``, ``aperture_size`` appended: a layout break, not an append)."""

    size: int
    mode: int
    dir_mask: int
    h2c_ring_sz: int
    c2h_ring_sz: int
    cmpt_ring_sz: int
    qid: int
    mm_channel: int | None = None
    aperture_size: int | None = None


def dec_qpair_add(body: bytes) -> QpairAdd:
    _need(body, 28, "QDMA_QPAIR_ADD")
    if len(body) >= 36:
        size, mode, dmask, mm, h2c, c2h, cmpt, qid, ap = struct.unpack_from("<9I", body)
        return QpairAdd(size, mode, dmask, h2c, c2h, cmpt, qid, mm, ap)
    return QpairAdd(*struct.unpack_from("<7I", body))


def dec_u32(body: bytes, what: str) -> int:
    _need(body, 4, what)
    v: int = _U32.unpack_from(body)[0]
    return v


def dec_u64(body: bytes, what: str) -> int:
    _need(body, 8, what)
    v: int = _U64.unpack_from(body)[0]
    return v


@dataclass(frozen=True, slots=True)
class BufferInfo:
    size: int
    phys_addr: int
    qpair_count: int | None  # v2 only


def dec_buffer_open(body: bytes) -> BufferInfo:
    _need(body, 16, "BUFFER_OPEN")
    size, phys = struct.unpack_from("<QQ", body)
    qp = _U32.unpack_from(body, 16)[0] if len(body) >= 20 else None
    return BufferInfo(size, phys, qp)


@dataclass(frozen=True, slots=True)
class Sensor:
    name: str
    type: int
    status: int
    unit_mod: int
    value: int


_SENSOR = struct.Struct("<64sBBbBi")  # 72 bytes
MAX_SENSORS = 56


def enc_sensors(sensors: list[Sensor]) -> bytes:
    out = _U32.pack(len(sensors))
    for s in sensors[:MAX_SENSORS]:
        out += _SENSOR.pack(s.name.encode()[:63], s.type, s.status, s.unit_mod, 0, s.value)
    return out


def dec_sensors(body: bytes) -> list[Sensor]:
    n = dec_u32(body, "GET_SENSOR_INFO")
    if n > MAX_SENSORS or len(body) < 4 + n * _SENSOR.size:
        raise ProtocolError(f"vrtd: GET_SENSOR_INFO claims {n} sensors in {len(body)} bytes")
    out = []
    for i in range(n):
        name, typ, status, unit_mod, _pad, value = _SENSOR.unpack_from(body, 4 + i * _SENSOR.size)
        out.append(Sensor(_cstr(name), typ, status, unit_mod, value))
    return out


@dataclass(frozen=True, slots=True)
class CfgmemStatus:
    job_id: int
    state: int
    phase: int
    bytes_written: int
    bytes_total: int
    elapsed_msec: int
    result: int


_CFGMEM_STATUS = struct.Struct("<QIIQQQH")  # 42 bytes


def dec_cfgmem_status(body: bytes) -> CfgmemStatus:
    _need(body, _CFGMEM_STATUS.size, "CFGMEM_PROGRAM_STATUS")
    return CfgmemStatus(*_CFGMEM_STATUS.unpack_from(body))


def req_clock_op(dev: int, rate_hz: int, op: int, region: int) -> bytes:
    return struct.pack("<IIBB", dev, rate_hz, op, region)


def req_get_device_by_bdf(bdf: str) -> bytes:
    return struct.pack("<32s", bdf.encode()[:31])


def req_set_shell_state(dev: int, shell_type: int, jtag: bool) -> bytes:
    return struct.pack("<IBB", dev, shell_type, int(jtag))


def req_sensor_info(dev: int) -> bytes:
    return _U32.pack(dev)


# Minimum request body length per opcode in the current (dev) generation; the
# server answers a shorter body with BAD_REQUEST. Older generations are shorter
# for some (noted in the spec); the simulator uses this table for v2.
REQUEST_SIZES: dict[int, int] = {
    Opcode.GET_NUM_DEVICES: 1,
    Opcode.GET_DEVICE_INFO: 4,
    Opcode.GET_BAR_INFO: 5,
    Opcode.GET_BAR_FD: 5,
    Opcode.QDMA_GET_INFO: 4,
    Opcode.QDMA_QPAIR_ADD: 40,
    Opcode.QDMA_QPAIR_OP: 12,
    Opcode.QDMA_QPAIR_GET_FD: 12,
    Opcode.DESIGN_WRITE: 5,
    Opcode.CLOCK_OP: 10,
    Opcode.BUFFER_OPEN: 32,
    Opcode.BUFFER_CLOSE: 20,
    Opcode.GET_DEVICE_BY_BDF: 32,
    Opcode.DEVICE_HOTPLUG_OP: 7,
    Opcode.GET_SENSOR_INFO: 4,
    Opcode.BUFFER_OPEN_RAW: 28,
    Opcode.CFGMEM_PROGRAM: 12,
    Opcode.CFGMEM_PROGRAM_START: 12,
    Opcode.CFGMEM_PROGRAM_STATUS: 8,
    Opcode.SET_SHELL_STATE: 6,
}

# Opcodes whose successful reply carries one SCM_RIGHTS descriptor.
FD_REPLY_OPCODES = frozenset(
    {Opcode.GET_BAR_FD, Opcode.QDMA_QPAIR_GET_FD, Opcode.BUFFER_OPEN, Opcode.BUFFER_OPEN_RAW}
)

# The highest opcode each protocol generation knows (seed 0-3, v1 0-15, v2 0-19).
GENERATION_MAX_OPCODE = {0: 3, 1: 15, 2: 19}
