"""Client, connector and simulator together: the simulator as a separate process, real sockets."""

from __future__ import annotations

import array
import asyncio
import os
import re
import socket
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emutui.backends.vrtd import make_handles
from emutui.backends.vrtd.client import VrtdClient
from emutui.backends.vrtd.connector import VrtdConnector
from emutui.backends.vrtd.wire import Opcode, Ret
from emutui.core.errors import (
    DisconnectedError,
    NotFoundError,
    PermissionDeniedError,
    RangeError,
    UnsupportedError,
)
from emutui.core.instance import Instance
from emutui.core.model import InstanceState
from emutui.sim.vrtd import model as regs
from tests.vrtd.conftest import SimProcess, open_fds

MIB = 1 << 20


def instance(path: str, tmp: Path, name: str = "card") -> Instance:
    return Instance(name=name, wd=tmp, handles=make_handles(name, path))


def raw_socket(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(10)
    s.connect(path)
    return s


def frame(opcode: int, body: bytes, seq: int = 1) -> bytes:
    return struct.pack("<HHI", len(body), opcode, seq) + body


# ----------------------------------------------------------------------------- client


async def test_core_opcodes(client: VrtdClient) -> None:
    assert await client.get_num_devices() == 1
    info = await client.get_device_info(0)
    assert info.name == "slash_ctl0" and info.generation == 2
    assert info.pci is not None and info.pci.vendor_id == 0x10EE
    bars = [await client.get_bar_info(0, b) for b in range(6)]
    assert [b.usable for b in bars] == [True, False, True, False, True, False]
    assert all(b.length == 128 * MIB for b in bars if b.usable)
    assert all(b.start_address == b.length == 0 for b in bars if not b.usable)
    assert not any(b.in_use for b in bars)
    fd, length = await client.get_bar_fd(0, 4)
    try:
        assert length == 128 * MIB
        assert os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:vrtd-sim-slash_ctl0-bar4")
        assert os.fstat(fd).st_size == length
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("opcode", "body", "ret"),
    [
        (Opcode.GET_NUM_DEVICES, b"", Ret.BAD_REQUEST),
        (Opcode.GET_DEVICE_INFO, b"\1\0\0\0", Ret.NOEXIST),
        (Opcode.GET_BAR_INFO, b"\0\0\0\0\6", Ret.BAD_REQUEST),
        (Opcode.GET_BAR_FD, b"\0\0\0\0\3", Ret.NOEXIST),
        (Opcode.GET_DEVICE_BY_BDF, b"x".ljust(32, b"\0"), Ret.NOEXIST),  # strcmp, no syntax
        (Opcode.QDMA_GET_INFO, b"\0\0\0\0", Ret.NOEXIST),
        (42, b"", Ret.BAD_REQUEST),
    ],
)
async def test_error_codes_keep_connection(
    client: VrtdClient, opcode: int, body: bytes, ret: int
) -> None:
    r = await client.request(opcode, body)
    assert (r.ret, r.body, r.fds) == (ret, b"", ())
    assert await client.get_num_devices() == 1  # still usable


async def test_later_opcodes_raw(client: VrtdClient) -> None:
    r = await client.request(Opcode.CLOCK_OP, struct.pack("<IIBB", 0, 0, 0, 0))
    assert r.ret == Ret.OK and struct.unpack("<I", r.body)[0] == 250_000_000
    sensors = await client.get_sensors(0)
    assert (sensors[0].name, sensors[0].type) == ("fpga", 1)
    r = await client.request(Opcode.SET_SHELL_STATE, struct.pack("<IBB", 0, 1, 0))
    assert r.ret == Ret.OK and r.body == b"\0"
    assert (await client.get_device_info(0)).shell_type == 1


@pytest.mark.parametrize(("gen", "size"), [("0", None), ("1", 168)])
async def test_older_generations(
    sim_factory: Callable[..., SimProcess], gen: str, size: int | None
) -> None:
    sim = sim_factory("--generation", gen)
    c = VrtdClient(sim.path)
    info = await c.get_device_info(0)
    assert info.name == "slash_ctl0"
    assert (info.pci is None) == (size is None) and info.shell_type is None
    r = await c.request(Opcode.GET_SENSOR_INFO, b"\0\0\0\0")
    assert r.ret == (Ret.BAD_REQUEST if gen == "0" else Ret.OK)
    await c.close()


def test_pipelined_requests_answered_in_order(sim: SimProcess) -> None:
    s = raw_socket(sim.path)
    for seq in range(1, 41):
        s.send(frame(Opcode.GET_BAR_INFO, struct.pack("<IB", 0, seq % 6), seq))
    for seq in range(1, 41):
        data = s.recv(4096)
        size, ret, echoed = struct.unpack_from("<HHI", data)
        assert (size, ret, echoed) == (24, 0, seq) and data[12] == seq % 6
    s.close()


# ----------------------------------------------------------------------------- malformed input


def test_oversized_and_truncated_requests_close(sim: SimProcess) -> None:
    for bad in (
        frame(0, b"\0" * 4090),  # 4098 bytes > VRTD_MSG_MAX_SIZE
        b"\1\0\0\0\1\0",  # shorter than a header
        struct.pack("<HHI", 4, 1, 1) + b"\0",  # truncated body
    ):
        s = raw_socket(sim.path)
        s.send(bad)
        assert s.recv(4096) == b""  # no reply: the hardened daemon disconnects
        s.close()
    assert sim.log_text().count("malformed message") == 3
    s = raw_socket(sim.path)  # and the daemon serves others
    s.send(frame(0, b"\0"))
    assert s.recv(4096) == bytes.fromhex("040000000100000001000000")
    s.close()


def test_request_fds(sim: SimProcess) -> None:
    r, w = os.pipe()
    s = raw_socket(sim.path)
    # one fd with a core opcode: v1+ accept it, close it and answer
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [r]))]
    s.sendmsg([frame(0, b"\0")], anc)
    assert s.recv(4096)[2:4] == b"\0\0"
    # two fds: malformed ancillary data, connection closed
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [r, w]))]
    s.sendmsg([frame(0, b"\0")], anc)
    assert s.recv(4096) == b""
    s.close()
    os.close(r)
    os.close(w)


def test_seed_generation_rejects_any_fd(sim_factory: Callable[..., SimProcess]) -> None:
    sim = sim_factory("--generation", "0")
    r, w = os.pipe()
    s = raw_socket(sim.path)
    s.sendmsg([frame(0, b"\0")], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [r]))])
    assert s.recv(4096) == b""  # MSG_CTRUNC on a server with no control buffer
    s.close()
    os.close(r)
    os.close(w)


def test_hang_on_malformed(sim_factory: Callable[..., SimProcess]) -> None:
    sim = sim_factory("--hang-on-malformed")
    s = raw_socket(sim.path)
    s.settimeout(0.5)
    s.send(b"junk")
    with pytest.raises(TimeoutError):
        s.recv(4096)  # older vrtd: no reply, no EOF -- the source is just disabled
    s.send(frame(0, b"\0"))
    with pytest.raises(TimeoutError):
        s.recv(4096)
    s.close()
    assert "left hanging" in sim.log_text()


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.one_of(
        st.binary(max_size=64),
        st.builds(
            lambda op, body, seq, lie: struct.pack("<HHI", max(0, len(body) + lie), op, seq) + body,
            st.integers(0, 0xFFFF),
            st.binary(max_size=40),
            st.integers(0, 0xFFFFFFFF),
            st.sampled_from([0, 0, 0, 1, -1, 100]),
        ),
        st.binary(min_size=4089, max_size=6000),
    )
)
def test_fuzzed_requests(sim: SimProcess, data: bytes) -> None:
    s = raw_socket(sim.path)
    try:
        s.send(data)
        reply = s.recv(4096)
    finally:
        s.close()
    well_framed = len(data) >= 8 and struct.unpack_from("<H", data)[0] + 8 == len(data)
    if not well_framed or len(data) > 4096:
        assert reply == b""
        return
    size, ret, seq = struct.unpack_from("<HHI", reply)
    assert seq == struct.unpack_from("<I", data, 4)[0]
    assert size + 8 == len(reply) and ret in (0, 3, 4, 5)
    if ret:
        assert size == 0


# ----------------------------------------------------------------------------- connector


async def test_connector_props_and_regions(sim: SimProcess, tmp_path: Path) -> None:
    conn = VrtdConnector(instance(sim.path, tmp_path))
    await conn.connect()
    try:
        top = await conn.list_props("/")
        assert [(n.name, n.path, n.has_children) for n in top if n.has_children] == [
            ("slash_ctl0", "/slash_ctl0", True)
        ]
        dev = await conn.list_props("/slash_ctl0")
        assert [n.path for n in dev if n.has_children] == [
            *(f"/slash_ctl0/bar{i}" for i in range(6)),
            "/slash_ctl0/sensors",
        ]
        assert await conn.get_prop("/slash_ctl0", "bdf") == "0000:c4:00.2"  # PF2, the slash_ctl
        assert await conn.get_prop("/slash_ctl0", "board") == "0000:c4:00"
        assert await conn.get_prop("/slash_ctl0", "vendor_id") == "0x10ee"
        temp = await conn.get_prop("/slash_ctl0/sensors", "fpga.temperature")
        assert re.fullmatch(r"4\d\.\d+ °C", temp), temp  # 46250 x 10^-3 shown as 46.25 °C
        assert await conn.get_prop("/slash_ctl0", "shell") == "unknown"  # until SET_SHELL_STATE
        leaves = {n.name: n.value for n in await conn.list_props("/slash_ctl0/bar2")}
        assert leaves["usable"] is True and leaves["in_use"] is False
        assert leaves["length"] == 128 * MIB and re.fullmatch(r"0x[0-9a-f]{9,}", leaves["start"])
        assert await conn.get_prop("/slash_ctl0/bar1", "usable") is False
        with pytest.raises(NotFoundError):
            await conn.list_props("/slash_ctl9")
        with pytest.raises(NotFoundError):
            await conn.list_props("/slash_ctl0/bar6")
        with pytest.raises(UnsupportedError):
            await conn.set_prop("/slash_ctl0/bar0", "length", 1)
        regions = await conn.regions()
        assert [r.name for r in regions] == [
            "slash_ctl0.bar0",
            "slash_ctl0.bar2",
            "slash_ctl0.bar4",
        ]
        assert all(r.size == 128 * MIB and r.writable for r in regions)
        st_ = await conn.status()
        assert st_.state is InstanceState.RUNNING and "1 device" in st_.detail
    finally:
        await conn.close()


async def test_read_write_and_checks(sim: SimProcess, tmp_path: Path) -> None:
    conn = VrtdConnector(instance(sim.path, tmp_path))
    await conn.connect()
    try:
        assert (await conn.read("slash_ctl0.bar0", 0, 16))[:4] == b"SV80"
        await conn.write("slash_ctl0.bar0", regs.REG_SCRATCH[0], b"\x78\x56\x34\x12")
        assert await conn.read("slash_ctl0.bar0", regs.REG_SCRATCH[0], 4) == b"\x78\x56\x34\x12"
        last = 128 * MIB - 4
        await conn.write("slash_ctl0.bar4", last, b"\1\2\3\4")
        assert await conn.read("slash_ctl0.bar4", last, 4) == b"\1\2\3\4"
        with pytest.raises(RangeError):
            await conn.read("slash_ctl0.bar0", last, 8)
        with pytest.raises(RangeError, match="aligned"):
            await conn.read("slash_ctl0.bar0", 2, 4)
        with pytest.raises(RangeError, match="aligned"):
            await conn.write("slash_ctl0.bar0", 0x10, b"\1\2\3")
        with pytest.raises(RangeError):
            await conn.read("slash_ctl0.bar0", -4, 4)
        with pytest.raises(NotFoundError):
            await conn.read("slash_ctl0.bar1", 0, 4)
        with pytest.raises(NotFoundError):
            await conn.read("nonsense", 0, 4)
        with pytest.raises(NotFoundError):
            await conn.read("slash_ctl7.bar0", 0, 4)
    finally:
        await conn.close()


async def test_registers_come_alive(sim: SimProcess, tmp_path: Path) -> None:
    conn = VrtdConnector(instance(sim.path, tmp_path))
    await conn.connect()
    try:

        async def word(off: int) -> int:
            v: int = struct.unpack("<I", await conn.read("slash_ctl0.bar0", off, 4))[0]
            return v

        first = await word(regs.REG_COUNTER_LO)
        while await word(regs.REG_COUNTER_LO) == first:
            await asyncio.sleep(0.005)
        await conn.write("slash_ctl0.bar0", regs.REG_SCRATCH[2], b"\1\0\0\0")
        while not await word(regs.REG_STATUS) & regs.STATUS_SCRATCH:
            await asyncio.sleep(0.005)
        await conn.write("slash_ctl0.bar0", regs.REG_STATUS, struct.pack("<I", 0xFFFFFFFF))
        while await word(regs.REG_STATUS) & regs.STATUS_SCRATCH:
            await asyncio.sleep(0.005)
        await conn.write("slash_ctl0.bar0", regs.REG_ID, b"\0\0\0\0")
        while await word(regs.REG_ID) != regs.ID_VALUE:
            await asyncio.sleep(0.005)
    finally:
        await conn.close()


async def test_two_clients_share_a_bar(sim: SimProcess, tmp_path: Path) -> None:
    a = VrtdConnector(instance(sim.path, tmp_path, "a"))
    b = VrtdConnector(instance(sim.path, tmp_path, "b"))
    await a.connect()
    await b.connect()
    try:
        await a.write("slash_ctl0.bar2", 0x1000, b"from a!!")
        assert await b.read("slash_ctl0.bar2", 0x1000, 8) == b"from a!!"
        await b.write("slash_ctl0.bar0", regs.REG_SCRATCH[3], b"\xef\xbe\xad\xde")
        assert await a.read("slash_ctl0.bar0", regs.REG_SCRATCH[3], 4) == b"\xef\xbe\xad\xde"
    finally:
        await a.close()
        await b.close()
    # and a third client in another process sees it too
    s = raw_socket(sim.path)
    s.send(frame(Opcode.GET_BAR_FD, struct.pack("<IB", 0, 2)))
    _, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(4))
    fd = array.array("i", anc[0][2])[0]
    assert os.pread(fd, 8, 0x1000) == b"from a!!"
    os.close(fd)
    s.close()


async def test_descriptors_and_mappings_closed(sim: SimProcess, tmp_path: Path) -> None:
    before = open_fds()
    conn = VrtdConnector(instance(sim.path, tmp_path))
    await conn.connect()
    for r in ("slash_ctl0.bar0", "slash_ctl0.bar2", "slash_ctl0.bar4"):
        await conn.read(r, 0, 4)
    assert len(open_fds() - before) >= 4  # socket + three BAR fds
    maps = list(conn._maps.values())
    await conn.close()
    assert all(m.closed for m in maps)
    assert open_fds() <= before


async def test_permission_denied(sim_factory: Callable[..., SimProcess], tmp_path: Path) -> None:
    conf = tmp_path / "vrtd.conf"
    conf.write_text("[role:info]\nquery-devices = yes\n[user:*]\nrole = info\n")
    sim = sim_factory("--config", str(conf))
    conn = VrtdConnector(instance(sim.path, tmp_path))
    await conn.connect()  # query is allowed
    try:
        assert len(await conn.regions()) == 3
        with pytest.raises(PermissionDeniedError, match="AUTH_ERROR") as ei:
            await conn.read("slash_ctl0.bar0", 0, 4)
        assert "permission denied" in str(ei.value) and "GET_BAR_FD" in str(ei.value)
        assert (await conn.status()).state is InstanceState.RUNNING
    finally:
        await conn.close()


async def test_nothing_granted(sim_factory: Callable[..., SimProcess], tmp_path: Path) -> None:
    conf = tmp_path / "vrtd.conf"
    conf.write_text("[role:none]\nquery-devices = no\n[user:*]\nrole = none\n")
    sim = sim_factory("--config", str(conf), name="deny.sock")
    conn = VrtdConnector(instance(sim.path, tmp_path))
    with pytest.raises(PermissionDeniedError, match="GET_NUM_DEVICES"):
        await conn.connect()
    await conn.close()


async def test_missing_daemon(sock_dir: Path, tmp_path: Path) -> None:
    path = str(sock_dir / "absent.sock")
    conn = VrtdConnector(instance(path, tmp_path))
    with pytest.raises(DisconnectedError, match=f"no vrtd daemon at {path}"):
        await conn.connect()
    st_ = await conn.status()
    assert st_.state is InstanceState.DISCONNECTED and path in st_.detail
    await conn.close()


async def test_daemon_killed_and_restarted(sim: SimProcess, tmp_path: Path) -> None:
    conn = VrtdConnector(instance(sim.path, tmp_path))
    events = conn.events()
    await conn.connect()
    try:
        await conn.write("slash_ctl0.bar0", regs.REG_SCRATCH[0], b"\xaa\xaa\xaa\xaa")
        assert (await anext(events)).name == "vrtd.connected"
        sim.kill()  # SIGKILL mid-session: no goodbye
        st_ = await conn.status()
        assert st_.state is InstanceState.DISCONNECTED
        assert (await anext(events)).name == "vrtd.disconnected"
        with pytest.raises(DisconnectedError, match=sim.path):
            await conn.read("slash_ctl0.bar0", 0, 4)
        assert conn._maps == {}  # the dead daemon's memory is not shown as live
        sim.start()
        assert (await conn.status()).state is InstanceState.RUNNING
        assert (await anext(events)).name == "vrtd.connected"
        # a new daemon, new memory: the scratch register starts from zero again
        assert await conn.read("slash_ctl0.bar0", regs.REG_SCRATCH[0], 4) == b"\0\0\0\0"
        # killed while a mapping is cached: the next read notices and reconnects
        sim.kill()
        sim.start()
        assert (await conn.read("slash_ctl0.bar0", 0, 4)) == b"SV80"
    finally:
        await conn.close()


async def test_shell_verbs(sim: SimProcess, tmp_path: Path) -> None:
    conn = VrtdConnector(instance(sim.path, tmp_path))
    await conn.connect()
    try:
        devs = await conn.command("devices")
        assert devs[0]["name"] == "slash_ctl0" and len(devs[0]["bars"]) == 6
        bar = await conn.command("bar slash_ctl0 4")
        assert bar["usable"] and bar["region"] == "slash_ctl0.bar4"
        assert (await conn.command("bar 0 1"))["usable"] is False
        assert (await conn.command("write slash_ctl0.bar0 0x14 01020304"))["written"] == 4
        assert (await conn.command("read slash_ctl0.bar0 0x14 4"))["hex"] == "01020304"
        raw = await conn.command("raw 0 00")
        assert raw["ret"] == "OK" and raw["body"] == "01000000"
        assert (await conn.command("raw 3 0000000000"))["fds"] == 1
        assert (await conn.command("raw 99"))["ret"] == "BAD_REQUEST"
        assert len(await conn.command("sensors 0")) == 7
        assert "devices" in await conn.command("help")
        with pytest.raises(Exception, match="unknown vrtd command"):
            await conn.command("frobnicate")
    finally:
        await conn.close()


# every opcode of the current generation, minimal valid body, over the real socket
ALL_OPCODES = {
    Opcode.GET_NUM_DEVICES: (b"\0", Ret.OK, 4),
    Opcode.GET_DEVICE_INFO: (b"\0" * 4, Ret.OK, 170),
    Opcode.GET_BAR_INFO: (b"\0" * 5, Ret.OK, 24),
    Opcode.GET_BAR_FD: (b"\0" * 5, Ret.OK, 8),
    Opcode.QDMA_GET_INFO: (b"\0" * 4, Ret.NOEXIST, 0),
    Opcode.QDMA_QPAIR_ADD: (b"\0" * 40, Ret.NOEXIST, 0),
    Opcode.QDMA_QPAIR_OP: (b"\0" * 12, Ret.NOEXIST, 0),
    Opcode.QDMA_QPAIR_GET_FD: (b"\0" * 12, Ret.NOEXIST, 0),
    Opcode.DESIGN_WRITE: (b"\0" * 5, Ret.NOEXIST, 0),
    Opcode.CLOCK_OP: (b"\0" * 10, Ret.OK, 4),
    Opcode.BUFFER_OPEN: (b"\0" * 32, Ret.INVALID_ARGUMENT, 0),  # size 0
    Opcode.BUFFER_CLOSE: (b"\0" * 20, Ret.INVALID_ARGUMENT, 0),
    Opcode.GET_DEVICE_BY_BDF: (b"c4:00".ljust(32, b"\0"), Ret.OK, 4),
    Opcode.DEVICE_HOTPLUG_OP: (b"\0" * 7, Ret.OK, 1),
    Opcode.GET_SENSOR_INFO: (b"\0" * 4, Ret.OK, 4 + 7 * 72),
    Opcode.BUFFER_OPEN_RAW: (b"\0" * 28, Ret.INVALID_ARGUMENT, 0),
    Opcode.CFGMEM_PROGRAM: (b"\0" * 12, Ret.BAD_REQUEST, 0),  # no PDI descriptor
    Opcode.CFGMEM_PROGRAM_START: (b"\0" * 12, Ret.BAD_REQUEST, 0),
    Opcode.CFGMEM_PROGRAM_STATUS: (b"\0" * 8, Ret.NOEXIST, 0),
    Opcode.SET_SHELL_STATE: (b"\0\0\0\0\2\0", Ret.OK, 1),
}


async def test_every_opcode(client: VrtdClient) -> None:
    assert len(ALL_OPCODES) == 20
    for op, (body, ret, size) in ALL_OPCODES.items():
        r = await client.request(op, body)
        assert (r.ret, len(r.body)) == (ret, size), op.name
        assert len(r.fds) == (1 if op is Opcode.GET_BAR_FD else 0)
        for fd in r.fds:
            os.close(fd)
        if len(body) > 1:  # one byte short is BAD_REQUEST, for every opcode
            short = await client.request(op, body[:-1])
            assert short.ret == Ret.BAD_REQUEST, op.name


async def test_sighup_reload(sim_factory: Callable[..., SimProcess], tmp_path: Path) -> None:
    import signal

    conf = tmp_path / "vrtd.conf"
    conf.write_text("[role:info]\nquery-devices = yes\n[user:*]\nrole = info\n")
    sim = sim_factory("--config", str(conf), name="hup.sock")
    c = VrtdClient(sim.path)
    with pytest.raises(PermissionDeniedError):
        await c.get_bar_fd(0, 0)
    conf.write_text(
        "[role:info]\nquery-devices = yes\n[role:info:any]\nbar-access = full\n"
        "[user:*]\nrole = info\n"
    )
    assert sim.proc is not None
    sim.proc.send_signal(signal.SIGHUP)
    while "reloaded" not in sim.log_text():
        await asyncio.sleep(0.02)
    fd, _ = await c.get_bar_fd(0, 0)  # the same connection: its cached role was dropped
    os.close(fd)
    conf.write_text("[role:info]\nbogus = 1\n")  # a failed reload keeps the live config
    sim.proc.send_signal(signal.SIGHUP)
    while "reload failed" not in sim.log_text():
        await asyncio.sleep(0.02)
    fd, _ = await c.get_bar_fd(0, 0)
    os.close(fd)
    await c.close()


async def test_bar_fd_cannot_be_resized(client: VrtdClient) -> None:
    """One client must not be able to SIGBUS the others by truncating the shared BAR."""
    fd, length = await client.get_bar_fd(0, 0)
    try:
        with pytest.raises(PermissionError):
            os.ftruncate(fd, 4096)
        assert os.fstat(fd).st_size == length
    finally:
        os.close(fd)


async def test_bar_fd_is_a_dmabuf_where_udmabuf_exists(client: VrtdClient) -> None:
    """Issue 14.3: with /dev/udmabuf the BAR fd is a dma-buf and libslash's SYNC
    bracket succeeds; without it a memfd, and `sim vrtd --help` says so."""
    import fcntl

    from emutui.sim.vrtd import build_parser
    from emutui.sim.vrtd.udmabuf import udmabuf_available

    fd, _length = await client.get_bar_fd(0, 0)
    try:
        link = os.readlink(f"/proc/self/fd/{fd}")
        help_text = " ".join(build_parser().format_help().split())
        if udmabuf_available():
            assert "dmabuf" in link
            fcntl.ioctl(fd, 0x40086200, struct.pack("<Q", 1))  # SYNC_START|READ: no ENOTTY
            fcntl.ioctl(fd, 0x40086200, struct.pack("<Q", 5))
            assert "dma-bufs (udmabuf over a memfd)" in help_text
        else:
            assert link.startswith("/memfd:")
            assert "BAR descriptors are memfds: this machine has no /dev/udmabuf" in help_text
            with pytest.raises(OSError) as ei:
                fcntl.ioctl(fd, 0x40086200, struct.pack("<Q", 1))
            assert ei.value.errno == 25  # ENOTTY, as libslash sees it
    finally:
        os.close(fd)
