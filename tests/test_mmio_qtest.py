"""MMIO through the qtest side channel: pipelined reads, IRQ lines, deadlines, and
on real QEMU the same words as HMP ``xp``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from emutui.backends.qemu.connector import QemuConnector
from emutui.backends.qemu.qtest import QtestClient
from emutui.control import connected
from emutui.core.errors import BackendError, BusyError, DisconnectedError
from emutui.core.instance import Instance
from emutui.core.model import Capability
from emutui.core.registry import Registry
from tests.conftest import needs_qemu, run_cli


async def fake_qtest(path: Path, answer) -> asyncio.Server:  # type: ignore[no-untyped-def]
    """A qtest stand-in: ``answer(line) -> bytes`` for each request line."""

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while line := await r.readline():
            out = answer(line.decode().strip())
            if out:
                w.write(out)
                await w.drain()

    return await asyncio.start_unix_server(handle, path=str(path))


async def test_pipelined_reads_skip_irq_lines(tmp_path: Path) -> None:
    sock = tmp_path / "qt.sock"
    seen: list[str] = []

    def answer(line: str) -> bytes:
        seen.append(line)
        _op, addr = line.split()
        value = int(addr, 16) & 0xFFFF
        irq = b"IRQ raise 5\n" if len(seen) % 7 == 0 else b""  # asynchronous notices
        return irq + f"OK 0x{value:016x}\n".encode() + (b"IRQ lower 5\n" if irq else b"")

    server = await fake_qtest(sock, answer)
    try:
        async with asyncio.timeout(20), QtestClient(str(sock)) as q:
            data = await q.read_words(0x1000, 3000, 4)
            assert await q.readl(0x1234) == 0x1234
            q64 = await q.read_words(0x2000, 2, 8)
    finally:
        server.close()
    words = [int.from_bytes(data[i : i + 4], "little") for i in range(0, len(data), 4)]
    assert words == [(0x1000 + 4 * i) & 0xFFFF for i in range(3000)]
    assert seen[0] == "readl 0x1000" and seen[2999] == f"readl 0x{0x1000 + 4 * 2999:x}"
    assert q64 == (0x2000).to_bytes(8, "little") + (0x2008).to_bytes(8, "little")
    assert seen[-1] == "readq 0x2008"


async def test_a_silent_channel_hits_the_deadline(tmp_path: Path) -> None:
    sock = tmp_path / "qt.sock"
    server = await fake_qtest(sock, lambda line: b"")  # a stopped QEMU: never answers
    try:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        async with QtestClient(str(sock), deadline=0.3) as q:
            with pytest.raises(BusyError, match="no reply within"):
                await q.read_words(0, 100)
        assert loop.time() - t0 < 5
    finally:
        server.close()


async def test_fail_and_hang_up_are_one_line_errors(tmp_path: Path) -> None:
    sock = tmp_path / "qt.sock"
    server = await fake_qtest(sock, lambda line: b"FAIL unknown command\n")
    try:
        async with QtestClient(str(sock)) as q:
            with pytest.raises(BackendError, match="qtest: unknown command"):
                await q.read_words(0, 4)
    finally:
        server.close()
    with pytest.raises(DisconnectedError):
        async with QtestClient(str(tmp_path / "none.sock")):
            pass


@needs_qemu
async def test_edu_bar0_through_qtest_equals_xp(guest: Instance) -> None:
    async with connected(guest) as conn:
        assert isinstance(conn, QemuConnector) and conn.qtest_path
        # A value that is not the reset value: edu's liveness register inverts writes.
        await conn.write("edu0.bar0", 4, (0x12345678).to_bytes(4, "little"))
        fast = await conn.read("edu0.bar0", 0, 0x400)
        fast_odd = await conn.read("edu0.bar0", 0x3, 0x2A)  # unaligned edges
        conn.qtest_path = None  # what an attached QEMU without qtest gets
        slow = await conn.read("edu0.bar0", 0, 0x400)
    assert fast[:4] == b"\xed\x00\x00\x01"  # edu's id register
    assert fast[4:8] == (0xEDCBA987).to_bytes(4, "little")
    words = [fast[i : i + 4] for i in range(0, 0x400, 4)]
    assert words == [slow[i : i + 4] for i in range(0, 0x400, 4)]
    assert fast_odd == fast[0x3 : 0x3 + 0x2A]


@needs_qemu
def test_every_instance_has_qtest_but_writes_need_the_key(
    config_file: Path, state_dir: Path
) -> None:
    # `plain` has no `qtest = true`: it reads MMIO through qtest, and refuses writes.
    assert run_cli("start", "plain").rc == 0
    r = run_cli("mem", "read", "plain", "edu0.bar0", "0", "8", "--json")
    assert r.rc == 0, r.err
    inst = Registry(state_dir).get("plain")
    assert inst.handles is not None and "qtest" in inst.handles.channels
    assert inst.handles.options["qtest"] is False
    conn = QemuConnector(inst)
    assert Capability.MEMORY_WRITE not in conn.capabilities
    assert json.loads(r.out)["hex"].startswith("ed000001")


@needs_qemu
async def test_concurrent_readers_take_turns(guest: Instance) -> None:
    # QEMU serves one qtest client with a listen backlog of one: without the lock,
    # the third concurrent client read from a socket that never connected (EINVAL).
    def read() -> tuple[int, str, str]:
        r = run_cli("mem", "read", guest.name, "edu0.bar0", "0", "4096", "--json")
        return r.rc, r.out, r.err

    results = await asyncio.gather(*(asyncio.to_thread(read) for _ in range(5)))
    assert all(rc == 0 and not err for rc, _, err in results), results
    hexes = {json.loads(out)["hex"] for _, out, _ in results}
    assert len(hexes) == 1 and next(iter(hexes)).startswith("ed000001")


async def test_the_lock_sits_beside_the_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import emutui.backends.qemu.qtest as qt

    monkeypatch.setattr(qt, "LOCK_WAIT", 0.1)
    sock = tmp_path / "qt.sock"
    server = await fake_qtest(sock, lambda line: b"OK 0x0000000000000001\n")
    try:
        async with QtestClient(str(sock)) as q:
            lock = tmp_path / "qt.lock"
            assert lock.exists() and lock.stat().st_mode & 0o777 == 0o600
            other = QtestClient(str(sock))
            with pytest.raises(BusyError, match="busy"):
                await other.__aenter__()
            assert await q.readl(0) == 1
        async with QtestClient(str(sock)) as q:  # released on exit
            assert await q.readl(0) == 1
    finally:
        server.close()
