"""The client against the spec's byte layouts, written without the simulator or wire.py.

A scripted peer (a thread on a real SEQPACKET socket) answers with frames
typed in as hex from specs/vrtd-protocol.md and records the exact bytes the
client sent. Nothing here packs a struct with the project's own code, so the
client and the simulator cannot agree on a mistake.
"""

from __future__ import annotations

import array
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emutui.backends.vrtd.client import VrtdClient
from emutui.core.errors import (
    BackendError,
    DisconnectedError,
    EmutuiError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
)
from tests.vrtd.conftest import open_fds

Reply = bytes | tuple[bytes, list[int]] | None  # None: send nothing, close


class ScriptedPeer:
    """Accepts one client; for each request, records it and sends the next scripted reply.

    A reply may be a callable of the request, so the seqno can be echoed."""

    def __init__(self, path: str, script: list[Reply | Callable[[bytes], Reply]]) -> None:
        self.path = path
        self.script = list(script)
        self.requests: list[bytes] = []
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.lsock.bind(path)
        self.lsock.listen(1)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self._serve()
        except OSError:
            pass  # the client left early (it rejected a reply): nothing to report

    def _serve(self) -> None:
        conn, _ = self.lsock.accept()
        with conn:
            for step in self.script:
                data = conn.recv(65536)
                if not data:
                    return
                self.requests.append(data)
                reply = step(data) if callable(step) else step
                if isinstance(reply, str):
                    reply = bytes.fromhex(reply.replace(" ", "").replace("|", ""))
                if reply is None:
                    return
                if isinstance(reply, tuple):
                    frame, fds = reply
                    conn.sendmsg(
                        [frame], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
                    )
                else:
                    conn.send(reply)
            conn.recv(1)  # wait for the client to go

    def close(self) -> None:
        self.lsock.close()
        self.thread.join(5)


@pytest.fixture
def peer_path(sock_dir: Path) -> Iterator[str]:
    yield str(sock_dir / "peer.sock")


def echo(reply_hex: str) -> Callable[[bytes], bytes]:
    """The reply with the request's seqno (bytes 4-7) copied in, as the daemon does."""
    raw = bytes.fromhex(reply_hex.replace(" ", "").replace("|", ""))

    def f(req: bytes) -> bytes:
        return raw[:4] + req[4:8] + raw[8:]

    return f


async def run(path: str, script: list, coro: Callable) -> tuple[object, ScriptedPeer]:
    peer = ScriptedPeer(path, script)
    client = VrtdClient(path, timeout=3)
    try:
        await client.connect()
        result = await coro(client)
    finally:
        await client.close()
        peer.close()
    return result, peer


async def test_get_num_devices_bytes(peer_path: str) -> None:
    n, peer = await run(
        peer_path, ["04 00 00 00 01 00 00 00 01 00 00 00"], lambda c: c.get_num_devices()
    )
    n_bytes = bytes.fromhex("04000000 01000000 01000000".replace(" ", ""))
    assert n == 1 and n_bytes[8] == 1
    # spec §3.1: the first request carries seqno 1 and the 1-byte zero body
    assert peer.requests == [bytes.fromhex("010000000100000000")]


async def test_seqno_counts_up(peer_path: str) -> None:
    script = [echo("04 00 00 00 00000000 03 00 00 00")] * 3

    async def three(c: VrtdClient) -> list[int]:
        return [await c.get_num_devices() for _ in range(3)]

    got, peer = await run(peer_path, script, three)
    assert got == [3, 3, 3]
    assert [r[4:8] for r in peer.requests] == [b"\1\0\0\0", b"\2\0\0\0", b"\3\0\0\0"]


async def test_device_info_by_length(peer_path: str) -> None:
    name = b"slash_ctl0".ljust(128, b"\0")
    v0 = b"\x80\x00\x00\x00" + b"\1\0\0\0" + name
    pci = b"0000:c4:00".ljust(32, b"\0") + bytes.fromhex("ee10 c250 ee10 0e00")
    v1 = b"\xa8\x00\x00\x00" + b"\2\0\0\0" + name + pci
    v2 = b"\xaa\x00\x00\x00" + b"\3\0\0\0" + name + pci + b"\x02\x01"
    stale = b"\x80\x00\x00\x00" + b"\4\0\0\0" + b"slash_ctl1\0garbage".ljust(128, b"\xff")

    async def four(c: VrtdClient) -> list:
        return [await c.get_device_info(i) for i in range(4)]

    (i0, i1, i2, i3), peer = await run(peer_path, [v0, v1, v2, stale], four)
    assert i0.name == "slash_ctl0" and i0.pci is None and i0.shell_type is None
    assert i1.pci is not None and i1.pci.bdf == "0000:c4:00"
    assert (i1.pci.vendor_id, i1.pci.device_id) == (0x10EE, 0x50C2)
    assert (i1.pci.subsystem_vendor_id, i1.pci.subsystem_device_id) == (0x10EE, 0x000E)
    assert i1.shell_type is None
    assert i2.shell_type == 2 and i2.jtag is True
    assert i3.name == "slash_ctl1"  # seed servers leave stale bytes after the NUL
    assert peer.requests[1] == bytes.fromhex("04000100 02000000 01000000".replace(" ", ""))


async def test_bar_info_layout(peer_path: str) -> None:
    body = bytes.fromhex(
        "18000000"  # size 24
        "04 01 00 00"  # bar 4, usable, not in use, pad
        "00000000 80030000"  # start 0x380_0000_0000
        "00000008 00000000".replace(" ", "")  # length 128 MiB
    )
    frame = bytes.fromhex("1800 0000 0100 0000".replace(" ", "")) + body
    info, peer = await run(peer_path, [frame], lambda c: c.get_bar_info(0, 4))
    assert info.bar_number == 4 and info.usable and not info.in_use
    assert info.start_address == 0x380_0000_0000 and info.length == 128 << 20
    assert peer.requests == [bytes.fromhex("05000200 01000000 0000000004".replace(" ", ""))]


async def test_get_bar_fd_with_scm_rights(peer_path: str) -> None:
    fd = os.memfd_create("hand-built-bar")
    os.ftruncate(fd, 1 << 20)
    os.pwrite(fd, b"\x11\x22\x33\x44", 8)
    frame = bytes.fromhex(
        "0800 0000 0100 0000 | 0000 1000 0000 0000".replace(" ", "").replace("|", "")
    )

    async def go(c: VrtdClient) -> bytes:
        m = await c.open_bar(0, 4)
        with m:
            assert m.length == 1 << 20
            data = m.read(8, 4, width=4)
            m.write(12, b"\xaa\xbb\xcc\xdd", width=4)
        return data

    data, peer = await run(peer_path, [(frame, [fd])], go)
    assert data == b"\x11\x22\x33\x44"
    assert os.pread(fd, 4, 12) == b"\xaa\xbb\xcc\xdd"  # MAP_SHARED: the write reached the file
    os.close(fd)
    # spec's example: GET_BAR_FD dev 0 BAR 4
    assert peer.requests[0][:4] + peer.requests[0][8:] == bytes.fromhex("05000300 0000000004")


@pytest.mark.parametrize(
    ("ret", "exc"),
    [
        (3, BackendError),  # BAD_REQUEST
        (4, BackendError),  # INVALID_ARGUMENT
        (5, NotFoundError),  # NOEXIST
        (6, BackendError),  # INTERNAL_ERROR
        (7, PermissionDeniedError),  # AUTH_ERROR
        (8, BackendError),  # BUSY
        (9, BackendError),  # SHELL_LOCKED
        (1, ProtocolError),  # BAD_LIB_CALL is client-local: never valid on the wire
        (2, ProtocolError),  # BAD_CONN likewise
        (10, ProtocolError),  # RESPONSE_MISMATCH likewise
        (11, ProtocolError),
        (0xFFFF, ProtocolError),
    ],
)
async def test_every_ret_code(peer_path: str, ret: int, exc: type[Exception]) -> None:
    frame = bytes([0, 0, ret & 0xFF, ret >> 8, 1, 0, 0, 0])
    with pytest.raises(exc) as ei:
        await run(peer_path, [frame], lambda c: c.get_num_devices())
    assert "GET_NUM_DEVICES" in str(ei.value)
    if ret == 7:
        assert "permission denied" in str(ei.value) and "AUTH_ERROR" in str(ei.value)


async def test_denied_reply_from_spec(peer_path: str) -> None:
    # "Any denied request, seqno 7": 00 00 07 00 07 00 00 00 -- our 1st request has seqno 1
    with pytest.raises(ProtocolError, match="sequence number 7 does not match request 1"):
        await run(peer_path, ["0000 0700 0700 0000"], lambda c: c.get_num_devices())


async def test_seqno_mismatch_drops_connection_and_fd(peer_path: str) -> None:
    fd = os.memfd_create("leak-check")
    before = open_fds()
    frame = bytes.fromhex("0800 0000 0900 0000 0000 0001 0000 0000".replace(" ", ""))
    peer = ScriptedPeer(peer_path, [(frame, [fd])])
    c = VrtdClient(peer_path, timeout=3)
    await c.connect()
    with pytest.raises(ProtocolError, match="RESPONSE_MISMATCH"):
        await c.get_bar_fd(0, 0)
    assert not c.connected
    await c.close()
    peer.close()
    os.close(fd)
    extra = open_fds() - (before - {fd})
    assert not extra, [os.readlink(f"/proc/self/fd/{x}") for x in extra]


async def test_unexpected_fd_is_closed(peer_path: str) -> None:
    fd = os.memfd_create("unasked")
    frame = bytes.fromhex("0400 0000 0100 0000 0200 0000".replace(" ", ""))
    before = open_fds()
    n, _ = await run(peer_path, [(frame, [fd])], lambda c: c.get_num_devices())
    os.close(fd)
    assert n == 2
    assert open_fds() <= before - {fd}


@pytest.mark.parametrize(
    "frame",
    [
        "0400 0000 0100 0000 01",  # size says 4, carries 1
        "0000 0000 01",  # shorter than a header
        "0100 0000 0100 0000 0200 0000",  # size says 1, carries 4
        "0200 0000 0100 0000 0100",  # OK but a 2-byte body for a u32
    ],
)
async def test_bad_reply_framing(peer_path: str, frame: str) -> None:
    with pytest.raises(ProtocolError):
        await run(peer_path, [frame], lambda c: c.get_num_devices())


async def test_oversized_reply_is_truncated_and_rejected(peer_path: str) -> None:
    frame = b"\x00\x10\x00\x00\x01\x00\x00\x00" + b"\0" * 4096  # 4104 bytes > 4096
    with pytest.raises(ProtocolError, match="MSG_TRUNC"):
        await run(peer_path, [frame], lambda c: c.get_num_devices())


async def test_daemon_hangs_up(peer_path: str) -> None:
    with pytest.raises(DisconnectedError, match=peer_path):
        await run(peer_path, [None], lambda c: c.get_num_devices())


async def test_oversized_request_refused_locally(peer_path: str) -> None:
    peer = ScriptedPeer(peer_path, [])
    c = VrtdClient(peer_path)
    await c.connect()
    with pytest.raises(ProtocolError, match="4088"):
        await c.request(1, b"\0" * 4089)
    await c.close()
    peer.close()
    assert peer.requests == []


async def test_missing_socket_is_clear(sock_dir: Path) -> None:
    path = str(sock_dir / "nothing.sock")
    with pytest.raises(DisconnectedError, match=f"no vrtd daemon at {path}"):
        await VrtdClient(path).connect()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(garbage=st.binary(min_size=0, max_size=5000))
async def test_garbage_replies_never_escape_as_raw_errors(sock_dir: Path, garbage: bytes) -> None:
    path = str(sock_dir / f"g{os.getpid()}.sock")
    if os.path.exists(path):
        os.unlink(path)
    try:
        n, _ = await run(path, [garbage or None], lambda c: c.get_num_devices())
    except EmutuiError:
        return
    # it parsed: then it was a well-formed OK reply to our seqno 1
    assert garbage[2:4] == b"\0\0" and garbage[4:8] == b"\1\0\0\0"
    assert isinstance(n, int)


async def test_later_opcode_layouts(peer_path: str) -> None:
    """Opcodes 4-19 where the spec gives layouts (dev wire.h), from hand-typed bytes."""
    sensors = (
        "02 00 00 00"  # two sensors
        + b"fpga_temp".hex().ljust(128, "0")
        + "01 01 fd 00 c8af0000"  # type 1, status 1, unit_mod -3, pad, value 45000
        + b"vccint".hex().ljust(128, "0")
        + "02 01 fd 00 20030000"  # 800
    ).replace(" ", "")
    cfg = (
        "0700000000000000"  # job_id 7
        "02000000 03000000"  # state 2, phase 3
        "0010000000000000 0020000000000000"  # 4096 of 8192 bytes
        "e803000000000000 0000"  # 1000 ms, result 0
    ).replace(" ", "")
    qdma = "1400000000010000 08000000 00000000 01000000".replace(" ", "")
    script = [
        echo(f"{len(sensors) // 2:02x}00 0000 00000000 {sensors}"),
        echo("0400 0000 00000000 00d01213"),  # CLOCK_OP -> 0x1312d000 = 320 MHz
        echo("0400 0000 00000000 02000000"),  # GET_DEVICE_BY_BDF -> 2
        echo(f"2a00 0000 00000000 {cfg}"),
        echo(f"1400 0000 00000000 {qdma}"),
        echo("0100 0000 00000000 00"),  # SET_SHELL_STATE
    ]

    async def go(c: VrtdClient) -> list:
        return [
            await c.get_sensors(0),
            await c.clock_op(0, op=0, region=1),
            await c.get_device_by_bdf("c6:00.2"),
            await c.cfgmem_status(7),
            await c.qdma_info(0),
            await c.set_shell_state(0, 1, True),
        ]

    (sens, rate, idx, cfgst, qinfo, _), peer = await run(peer_path, script, go)
    assert [(s.name, s.type, s.unit_mod, s.value) for s in sens] == [
        ("fpga_temp", 1, -3, 45000),
        ("vccint", 2, -3, 800),
    ]
    assert rate == 320_000_000 and idx == 2
    assert (cfgst.job_id, cfgst.state, cfgst.phase) == (7, 2, 3)
    assert (cfgst.bytes_written, cfgst.bytes_total, cfgst.elapsed_msec) == (4096, 8192, 1000)
    assert (qinfo.size, qinfo.qsets_max, qinfo.msix_qvecs, qinfo.caps) == (20, 256, 8, 1)
    reqs = [r[:4].hex() + "|" + r[8:].hex() for r in peer.requests]
    assert reqs == [
        "04000e00|00000000",
        "0a000900|00000000000000000001",  # dev 0, rate 0, GET, USER
        "20000c00|" + b"c6:00.2".hex().ljust(64, "0"),
        "08001200|0700000000000000",
        "04000400|00000000",
        "06001300|000000000101",
    ]


def test_qpair_add_layout_break() -> None:
    from emutui.backends.vrtd.wire import dec_qpair_add

    old = bytes.fromhex(
        "1c000000 01000000 03000000 00040000 00040000 00000000 05000000".replace(" ", "")
    )
    q = dec_qpair_add(old)
    assert (q.size, q.mode, q.dir_mask, q.h2c_ring_sz, q.qid, q.mm_channel) == (
        28,
        1,
        3,
        1024,
        5,
        None,
    )
    new = bytes.fromhex(
        "24000000 01000000 03000000 02000000 00040000 00040000 00000000 05000000 00100000".replace(
            " ", ""
        )
    )
    q = dec_qpair_add(new)
    assert (q.mm_channel, q.h2c_ring_sz, q.qid, q.aperture_size) == (2, 1024, 5, 4096)


def test_dma_buf_sync_bracket(monkeypatch: pytest.MonkeyPatch) -> None:
    """SYNC as libslash issues it: request 0x40086200, u64 flags 1/5 around reads and
    2/6 around writes; ENOTTY (not a dma-buf) is tolerated and then skipped."""
    import fcntl

    from emutui.backends.vrtd.client import BarMapping

    calls: list[tuple[int, bytes]] = []
    fail = {"errno": 0}

    def fake_ioctl(fd: int, req: int, arg: bytes) -> bytes:
        calls.append((req, arg))
        if fail["errno"]:
            raise OSError(fail["errno"], os.strerror(fail["errno"]))
        return arg

    monkeypatch.setattr(fcntl, "ioctl", fake_ioctl)
    fd = os.memfd_create("sync", os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, 4096)
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK)  # mapped like the simulator's
    m = BarMapping.from_fd(fd, 4096, "t.bar0")
    m.read(0, 4, 4)
    m.write(4, b"abcd", 4)
    assert calls == [
        (0x40086200, bytes.fromhex("0100000000000000")),
        (0x40086200, bytes.fromhex("0500000000000000")),
        (0x40086200, bytes.fromhex("0200000000000000")),
        (0x40086200, bytes.fromhex("0600000000000000")),
    ]
    calls.clear()
    fail["errno"] = 25  # ENOTTY
    assert m.read(4, 4, 4) == b"abcd"
    m.read(0, 4)
    assert len(calls) == 1  # tried once, then treated as a mock BAR
    m.close()
    m.close()  # idempotent
    with pytest.raises(DisconnectedError):
        m.read(0, 4)


async def test_bar_fd_shorter_than_claimed_is_refused(peer_path: str) -> None:
    fd = os.memfd_create("short-bar")
    os.ftruncate(fd, 4096)
    # claims 1 MiB: mapping it and touching the tail would SIGBUS the client
    frame = bytes.fromhex("0800 0000 0100 0000 0000 1000 0000 0000".replace(" ", ""))
    before = open_fds()
    with pytest.raises(ProtocolError, match="claims 1048576 bytes"):
        await run(peer_path, [(frame, [fd])], lambda c: c.open_bar(0, 0))
    os.close(fd)
    assert open_fds() <= before - {fd}


async def test_connector_tolerates_vanishing_devices_and_bars(
    peer_path: str, tmp_path: Path
) -> None:
    from emutui.backends.vrtd import make_handles
    from emutui.backends.vrtd.connector import VrtdConnector
    from emutui.core.instance import Instance

    name = b"slash_ctl0".hex().ljust(256, "0")
    bar = "18000000 {n:02x}010000 00000000 80030000 00000008 00000000".replace(" ", "")
    unusable = "18000000 {n:02x}000000 00000000 00000000 00000000 00000000".replace(" ", "")
    script = [
        echo("0400 0000 00000000 02000000"),  # two devices...
        echo(f"8000 0000 00000000 {name}"),
        echo("1800 0000 00000000 " + bar.format(n=0)),
        echo("1800 0000 00000000 " + unusable.format(n=1)),
        echo("1800 0000 00000000 " + bar.format(n=2)),
        echo("0000 0500 00000000"),  # BAR3: NOEXIST (its ioctl failed at startup)
        echo("1800 0000 00000000 " + unusable.format(n=4)),
        echo("1800 0000 00000000 " + unusable.format(n=5)),
        echo("0000 0500 00000000"),  # ...but device 1 is gone by now (hotplug)
    ]
    peer = ScriptedPeer(peer_path, script)
    inst = Instance(name="c", wd=tmp_path, handles=make_handles("c", peer_path))
    conn = VrtdConnector(inst)
    try:
        await conn.connect()
        (dev,) = conn._devices
        assert dev.name == "slash_ctl0" and dev.info.pci is None  # a seed-era 128-byte reply
        assert [b.usable for b in dev.bars] == [True, False, True, False, False, False]
    finally:
        await conn.close()
        peer.close()
