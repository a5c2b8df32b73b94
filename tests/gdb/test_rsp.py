"""The GDB remote protocol client against fake stubs: framing, and hostile peers
(garbage, a dropped connection, silence) giving one clear line, never a hang."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from emutui.backends.gdb import tdesc
from emutui.backends.gdb.rsp import (
    RspClient,
    checksum,
    escape,
    frame,
    parse_stop,
    unescape,
)
from emutui.core.errors import BusyError, DisconnectedError, EmutuiError, ProtocolError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def test_framing_round_trip() -> None:
    payload = b"a#b$c}d*e"
    f = frame(payload)
    body = f[1 : f.index(b"#", len(f) - 3)]
    assert int(f[-2:], 16) == checksum(body)
    assert unescape(escape(payload)) == payload


def test_run_length_decoding() -> None:
    # "0* " = '0' repeated 1 + (32 - 29) = 4 times in all
    assert unescape(b"0* ") == b"0000"
    with pytest.raises(ProtocolError):
        unescape(b"*")


def test_stop_replies() -> None:
    s = parse_stop("T05thread:01;watch:1003d0;")
    assert s.thread == "01" and s.reason == "watch" and s.address == 0x1003D0
    assert "write" in s.describe()
    assert parse_stop("T02thread:02;").describe() == "interrupt"
    assert parse_stop("W01").exited
    assert parse_stop("T05hwbreak:;thread:p1.2;").reason == "hwbreak"
    with pytest.raises(ProtocolError):
        parse_stop("T")


async def test_target_description_with_includes() -> None:
    files = {
        "target.xml": b'<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd">'
        b"<target><architecture>riscv:rv32</architecture>"
        b'<xi:include href="core.xml"/></target>',
        "core.xml": b'<feature name="org.gnu.gdb.riscv.cpu">'
        b'<reg name="zero" bitsize="32" type="int"/><reg name="ra" bitsize="32"/>'
        b'<reg name="pc" bitsize="32" type="code_ptr" regnum="32"/></feature>',
    }

    async def fetch(name: str) -> bytes:
        return files[name]

    td = await tdesc.load(fetch)
    assert td.family == "riscv" and td.pc_name == "pc"
    assert [(r.name, r.regnum) for r in td.registers] == [("zero", 0), ("ra", 1), ("pc", 32)]
    regs = td.decode_g(bytes.fromhex("010000000200000000100000"))
    assert regs == {"zero": 1, "ra": 2, "pc": 0x1000}


@pytest.fixture
async def stub(tmp_path: Path) -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> str:
        path = str(tmp_path / f"s{len(servers)}.sock")
        servers.append(await asyncio.start_unix_server(handler, path=path))
        return path

    yield start
    for s in servers:
        s.close()


async def read_packet(r: asyncio.StreamReader) -> bytes:
    while (b := await r.readexactly(1)) != b"$":
        if b == b"\x03":
            return b"\x03"
    body = await r.readuntil(b"#")
    await r.readexactly(2)
    return body[:-1]


async def minimal_stub(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    """Acks, qSupported, '?', g with run-length encoding, m with an error."""
    try:
        while True:
            pkt = await read_packet(r)
            w.write(b"+")
            if pkt.startswith(b"qSupported"):
                reply = b"PacketSize=1000;QStartNoAckMode+"
            elif pkt == b"QStartNoAckMode":
                reply = b"OK"
            elif pkt == b"?":
                reply = b"T05thread:01;"
            elif pkt == b"g":
                # run-length encoded, so raw: "12" then '2' three more times
                w.write(b"$12* 3#" + f"{checksum(b'12* 3'):02x}".encode())
                await w.drain()
                continue
            elif pkt.startswith(b"m"):
                reply = b"E14"
            elif pkt == b"vCont?":
                reply = b"vCont;c;C;s;S"
            elif pkt == b"vCont;c":
                await asyncio.sleep(0.05)
                reply = b"T05thread:01;swbreak:;"
            else:
                reply = b""
            w.write(frame(reply))
            await w.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass


async def test_a_minimal_stub(stub: Callable[[Handler], Awaitable[str]]) -> None:
    path = await stub(minimal_stub)
    c = RspClient("fake", timeout=2.0)
    await c.connect_unix(path)
    try:
        assert (await c.query_stop()).thread == "01"
        assert await c.read_registers() == bytes.fromhex("122223")
        with pytest.raises(EmutuiError, match="not mapped"):
            await c.read_memory(0x1000, 4)
        seq = c.stop_seq
        await c.cont()
        stop = await c.wait_stop(seq, 5.0)
        assert stop is not None and stop.reason == "swbreak"
    finally:
        await c.close()


async def test_garbage_is_one_clear_line(stub: Callable[[Handler], Awaitable[str]]) -> None:
    async def garbage(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(os.urandom(64).replace(b"$", b"x").replace(b"%", b"y") * 200)
        await w.drain()
        await asyncio.sleep(5)

    c = RspClient("fake", timeout=2.0)
    with pytest.raises((ProtocolError, BusyError)) as e:
        await c.connect_unix(await stub(garbage))
    assert "\n" not in str(e.value)


async def test_dropped_connection(stub: Callable[[Handler], Awaitable[str]]) -> None:
    async def drop(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.close()

    c = RspClient("fake", timeout=2.0)
    with pytest.raises(DisconnectedError, match=r"closed|lost"):
        await c.connect_unix(await stub(drop))


async def test_silent_stub_is_busy(stub: Callable[[Handler], Awaitable[str]]) -> None:
    async def silent(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    c = RspClient("fake", timeout=0.5)
    with pytest.raises(BusyError, match="does not answer"):
        await c.connect_unix(await stub(silent))


async def test_drop_mid_session(stub: Callable[[Handler], Awaitable[str]]) -> None:
    async def once(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await read_packet(r)
        w.write(b"+" + frame(b"PacketSize=1000"))
        await w.drain()
        await read_packet(r)
        w.close()

    c = RspClient("fake", timeout=2.0)
    await c.connect_unix(await stub(once))
    with pytest.raises(DisconnectedError):
        await c.read_registers()
    with pytest.raises(DisconnectedError):  # and stays so, at once
        await c.read_registers()


async def test_bad_checksums_are_nacked(stub: Callable[[Handler], Awaitable[str]]) -> None:
    """A corrupted reply is answered with '-'; the stub resends and we go on."""
    nacks = []

    async def flaky(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await read_packet(r)
        w.write(b"+$PacketSize=1000#00")  # wrong checksum
        await w.drain()
        nacks.append(await r.readexactly(1))
        w.write(frame(b"PacketSize=1000"))
        await w.drain()
        await asyncio.sleep(5)

    c = RspClient("fake", timeout=2.0)
    await c.connect_unix(await stub(flaky))
    assert nacks == [b"-"] and c.packet_size == 0x1000
    await c.close()


async def test_no_socket() -> None:
    c = RspClient("fake")
    with pytest.raises(DisconnectedError, match="no socket"):
        await c.connect_unix("/nonexistent/gdb.sock")
