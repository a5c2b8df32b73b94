"""The Renode backend against the stand-in, as a separate process on real sockets."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from emutui.backends.renode import BACKEND, launcher
from emutui.backends.renode.connector import RenodeConnector
from emutui.config import Config
from emutui.control import connected, start_target, stop_instance
from emutui.core.errors import (
    BackendError,
    ConfigError,
    InstanceDeadError,
    NotFoundError,
    RangeError,
)
from emutui.core.instance import Instance
from emutui.core.model import InstanceState
from emutui.core.registry import Registry
from emutui.core.targets import TargetConfig

from .conftest import pid_gone, wait_for_file_text


async def read_until(stream: object, needle: bytes, limit: int = 200) -> bytes:
    buf = b""
    for _ in range(limit):
        chunk = await asyncio.wait_for(stream.read(), 15)  # type: ignore[attr-defined]
        if not chunk:
            break
        buf += chunk
        if needle in buf:
            return buf
    raise AssertionError(f"{needle!r} not received: {buf!r}")


async def test_launch_records_handles(board: Instance) -> None:
    h = board.handles
    assert h is not None and h.backend == "renode" and h.simulated
    assert board.alive()
    # The pid is Renode's own (from --pid-file). The stand-in serves robot and its
    # UARTs on private unix sockets (a real Renode's TCP path: tests/faults/
    # test_renode_private.py).
    assert int((board.wd / "renode.pid").read_text()) == h.pid
    assert h.channels["robot"].kind == "unix" and h.channels["robot"].path
    assert h.serial_channels() == ["uart0", "uart1"]
    assert h.channels["uart0"].kind == "unix"
    assert (h.channels["uart0"].upstream or "").endswith(".renode.sock")
    assert "--robot-server-socket" in h.command
    assert "stand-in" in (board.wd / "serial-uart0.log").read_text()


async def test_peripherals_tree(board: Instance) -> None:
    async with connected(board) as conn:
        top = {n.name: n for n in await conn.list_props("/")}
        assert top["uart0"].type == "PL011"
        assert top["uart0"].description == "<0x40004000, 0x40004FFF>"
        assert top["uart0"].path == "/uart0" and top["uart0"].has_children
        assert top["cpu"].description == "Slot: 0"
        assert set(top) == {"cpu", "flash", "nvic", "sram", "timer0", "uart0", "uart1"}
        members = {n.name: n for n in await conn.list_props("/uart0")}
        assert members["BaudRate"].value == 115200 and not members["BaudRate"].writable
        assert members["BaudRate"].path == "/uart0"
        assert members["Loopback"].writable
        assert "ReadDoubleWord" not in members  # methods are not properties
        # Monitor names work as paths too.
        assert {n.name for n in await conn.list_props("sysbus.uart0")} == set(members)
        with pytest.raises(NotFoundError):
            await conn.list_props("/sysbus.nosuch")


async def test_properties_get_and_set(board: Instance) -> None:
    async with connected(board) as conn:
        assert await conn.get_prop("/timer0", "Frequency") == 1_000_000
        await conn.set_prop("/sysbus.timer0", "Frequency", 32768)
        assert await conn.get_prop("sysbus.timer0", "Frequency") == 32768
        await conn.set_prop("/sysbus.uart0", "Loopback", True)
        assert await conn.get_prop("/sysbus.uart0", "Loopback") is True
        with pytest.raises(BackendError, match="setter"):
            await conn.set_prop("/sysbus.uart0", "BaudRate", 9600)
        with pytest.raises(NotFoundError):
            await conn.get_prop("/sysbus.uart0", "NoSuchProperty")


async def test_register_read_and_write(board: Instance) -> None:
    async with connected(board) as conn:
        regions = {r.name: r for r in await conn.regions()}
        assert regions["uart0"].base == 0x40004000 and regions["uart0"].size == 0x1000
        assert regions["uart0"].access_width == 4
        # The PL011 PrimeCell id registers, one dword each: 0x11, 0x10, 0x34, 0x00.
        ids = await conn.read("uart0", 0xFE0, 16)
        assert ids == bytes.fromhex("11000000 10000000 34000000 00000000")
        await conn.write("sram", 0x100, bytes.fromhex("efbeadde 01020304"))
        assert await conn.read("sram", 0x100, 8) == bytes.fromhex("efbeadde01020304")
        assert await conn.read("sram", 0x101, 2) == bytes.fromhex("bead")  # unaligned
        # A batched read longer than one ExecuteCommand batch.
        data = await conn.read("sram", 0, 4 * 150)
        assert len(data) == 600 and data[0x100:0x104] == bytes.fromhex("efbeadde")
        with pytest.raises(RangeError):
            await conn.write("sram", 2, b"\x00\x00\x00\x00")
        with pytest.raises(RangeError):
            await conn.read("uart0", 0xFFC, 8)
        with pytest.raises(NotFoundError):
            await conn.read("nosuch", 0, 4)


async def test_uart_write_register_reaches_terminal(board: Instance) -> None:
    async with connected(board) as conn:
        await conn.write("uart0", 0, (ord("Z")).to_bytes(4, "little"))
    await wait_for_file_text(board.serial_log("uart0"), b"Z")


async def test_uart_echo(board: Instance) -> None:
    async with connected(board) as conn:
        stream = await conn.serial("uart0")
        try:
            await stream.write(b"hello renode\r")
            assert b"hello renode\r\n" in await read_until(stream, b"hello renode\r\n")
        finally:
            await stream.close()
        with pytest.raises(NotFoundError):
            await conn.serial("uart7")
    # The file backend kept it, whether or not anyone was attached.
    await wait_for_file_text(board.serial_log("uart0"), b"hello renode\r\n")


async def test_two_serial_clients_at_once(board: Instance) -> None:
    """Renode's terminal serves one client; the hub lets the TUI and `term` share it."""
    async with connected(board) as conn:
        a = await conn.serial("uart0")
        b = await conn.serial("uart0")
        try:
            await a.write(b"from a\r")
            await read_until(a, b"from a\r\n")
            await read_until(b, b"from a\r\n")
            await b.write(b"from b\r")
            await read_until(a, b"from b\r\n")
        finally:
            await a.close()
            await b.close()


async def test_killed_hub_is_restarted_without_loss(board: Instance) -> None:
    assert board.handles is not None
    from emutui.core import supervisor
    from emutui.core.serialhub import SUPERVISOR_STATE

    # The hub and its supervisor both killed: the next client restarts them.
    hub_pid = supervisor.read_state(board.wd / SUPERVISOR_STATE)["serialhub"][0]
    assert isinstance(hub_pid, int)
    os.kill(board.handles.options["helpers"]["serialhub"][0], signal.SIGKILL)
    os.kill(hub_pid, signal.SIGKILL)
    for _ in range(500):
        if pid_gone(hub_pid):
            break
        await asyncio.sleep(0.01)
    async with connected(board) as conn:
        await conn.write("uart0", 0, ord("Q").to_bytes(4, "little"))  # sent while no hub
        stream = await conn.serial("uart0")  # restarts the hub
        try:
            await stream.write(b"back\r")
            await read_until(stream, b"back\r\n")
        finally:
            await stream.close()
    # Renode queued the byte sent while the hub was gone and delivered it on reconnect.
    await wait_for_file_text(board.serial_log("uart0"), b"Q")


async def test_pause_and_resume(board: Instance) -> None:
    async with connected(board) as conn:
        assert (await conn.status()).state is InstanceState.RUNNING
        await conn.pause()
        assert (await conn.status()).state is InstanceState.PAUSED
        stream = await conn.serial("uart0")
        try:
            await stream.write(b"queued\r")  # a paused CPU does not echo yet
            assert (await conn.status()).state is InstanceState.PAUSED
            await conn.resume()
            assert (await conn.status()).state is InstanceState.RUNNING
            await read_until(stream, b"queued\r\n")
        finally:
            await stream.close()


async def test_reset_keeps_the_emulation(board: Instance) -> None:
    async with connected(board) as conn:
        await conn.write("sram", 0, b"\x01\x00\x00\x00")
        await conn.reset()
        assert (await conn.status()).state is InstanceState.RUNNING
        assert await conn.read("sram", 0, 4) == b"\x00\x00\x00\x00"
        # Terminals survive a machine reset (ResetEmulation would destroy them).
        stream = await conn.serial("uart0")
        await stream.write(b"after\r")
        await read_until(stream, b"after\r\n")
        await stream.close()
    data = await wait_for_file_text(board.serial_log("uart0"), b"after")
    assert data.count(b"stand-in firmware") == 2


async def test_events_from_the_log(board: Instance) -> None:
    async with connected(board) as conn:
        seen: list[str] = []

        async def collect() -> None:
            async for ev in conn.events():
                seen.append(f"{ev.name} {ev.data.get('object', '')}: {ev.data['message']}")
                if "Machine paused." in ev.data["message"]:
                    return

        task = asyncio.create_task(collect())
        await conn.pause()
        await asyncio.wait_for(task, 15)
        assert "INFO board: Machine paused." in seen
    journal = [e.data["message"] for e in board.journal().read()]
    assert "Machine paused." in journal


async def test_raw_monitor_command(board: Instance) -> None:
    async with connected(board) as conn:
        out = await conn.command("version")
        assert out.startswith("Renode, version 1.16.1")
        assert "\r" not in await conn.command("peripherals")
        with pytest.raises(BackendError, match="No such command or device: frobnicate"):
            await conn.command("frobnicate")


async def test_start_paused(renode_config: Config, registry: Registry) -> None:
    inst = await start_target(renode_config, registry, "board", "held", paused=True)
    try:
        async with connected(inst) as conn:
            assert (await conn.status()).state is InstanceState.PAUSED
            await conn.resume()
        await wait_for_file_text(inst.serial_log("uart0"), b"stand-in firmware")
    finally:
        await stop_instance(registry, inst)


async def test_stop_leaves_no_process(renode_config: Config, registry: Registry) -> None:
    inst = await start_target(renode_config, registry, "board", "gone", paused=False)
    assert inst.handles is not None and inst.handles.pid is not None
    pid = inst.handles.pid
    tmpdir = inst.wd / "tmp" / f"renode-{pid}"
    assert tmpdir.is_dir()
    conn = RenodeConnector(inst)
    await conn.stop()
    assert pid_gone(pid)
    assert not tmpdir.exists()  # a clean exit removes Renode's temp dir
    assert not inst.alive()
    await stop_instance(registry, inst)


async def test_dead_renode_gives_clear_errors(board: Instance, registry: Registry) -> None:
    assert board.handles is not None and board.handles.pid is not None
    conn = RenodeConnector(board)
    await conn.connect()
    os.kill(board.handles.pid, signal.SIGKILL)
    for _ in range(500):
        if not board.alive():
            break
        await asyncio.sleep(0.01)
    assert (await conn.status()).state is InstanceState.DEAD
    with pytest.raises(InstanceDeadError, match="Renode is gone"):
        await conn.get_prop("/sysbus.uart0", "BaudRate")
    with pytest.raises(InstanceDeadError):
        async with connected(board):
            pass
    await conn.stop()  # nothing left to stop: no error


async def test_socket_terminal_port_in_use_is_retried(
    renode_like_config: Config, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    ports = [taken.getsockname()[1]]
    real = launcher.free_port
    monkeypatch.setattr(launcher, "free_port", lambda: ports.pop() if ports else real())
    try:
        inst = await start_target(renode_like_config, registry, "board", "retry", paused=False)
        assert inst.handles is not None
        upstream = inst.handles.channels["uart0"].upstream or ""
        assert upstream.startswith("tcp:127.0.0.1:")
        assert upstream != f"tcp:127.0.0.1:{taken.getsockname()[1]}"
        await stop_instance(registry, inst)
    finally:
        taken.close()


async def test_renode_that_exits_at_startup(tmp_path: Path) -> None:
    fake = tmp_path / "renode"
    fake.write_text("#!/bin/sh\necho 'Could not start the HTTP server on any port' >&2\nexit 3\n")
    fake.chmod(0o755)
    wd = tmp_path / "wd"
    wd.mkdir()
    t = TargetConfig("bad", "renode", {"binary": str(fake), "platform": str(fake)})
    with pytest.raises(BackendError, match=r"exited \(status 3\).*Could not start the HTTP"):
        await BACKEND.start(t, wd, "bad", False) if BACKEND.start else None


async def test_bad_platform_is_reported_and_cleaned_up(tmp_path: Path, standin: Path) -> None:
    repl = tmp_path / "broken.repl"
    repl.write_text("this is not a platform\n")
    wd = tmp_path / "wd"
    wd.mkdir()
    t = TargetConfig("b", "renode", {"binary": str(standin), "platform": str(repl)})
    assert BACKEND.start is not None
    with pytest.raises(BackendError, match="Renode refused 'machine LoadPlatformDescription"):
        await BACKEND.start(t, wd, "b", False)
    pid = int((wd / "renode.pid").read_text())
    assert pid_gone(pid)


def test_validation_messages(tmp_path: Path) -> None:
    repl = tmp_path / "x.repl"
    repl.write_text("")
    ok = TargetConfig(
        "t", "renode", {"platform": str(repl), "uarts": ["sysbus.uart0"]}, source="cfg.toml"
    )
    BACKEND.validate(ok)
    cases = [
        ({}, "set exactly one of 'platform'"),
        ({"platform": str(repl), "script": str(repl)}, "set exactly one"),
        ({"platform": str(repl), "uarts": "sysbus.uart0"}, "targets.t.uarts: expected a list"),
        ({"platform": str(tmp_path / "none.repl")}, "targets.t.platform: file not found"),
        ({"platform": str(repl), "terminal": "serial"}, 'targets.t.terminal: expected "socket"'),
        ({"platform": str(repl), "colour": 1}, "targets.t.colour: unknown key"),
    ]
    for options, message in cases:
        with pytest.raises(ConfigError, match=message):
            BACKEND.validate(TargetConfig("t", "renode", options, source="cfg.toml"))


def tiny_elf(path: Path, addr: int, payload: bytes, entry: int) -> Path:
    """An ELF32 little-endian file with one PT_LOAD segment, built by hand."""
    import struct

    ehsize, phentsize = 52, 32
    header = struct.pack(
        "<4sBBBB8sHHIIIIIHHHHHH",
        b"\x7fELF",
        1,
        1,
        1,
        0,
        b"\0" * 8,
        2,
        40,
        1,
        entry,
        ehsize,
        0,
        0,
        ehsize,
        phentsize,
        1,
        0,
        0,
        0,
    )
    off = ehsize + phentsize
    ph = struct.pack("<IIIIIIII", 1, off, addr, addr, len(payload), len(payload) + 4, 5, 4)
    path.write_bytes(header + ph + payload)
    return path


async def test_elf_and_pty_terminal(tmp_path: Path, standin: Path, registry: Registry) -> None:
    from emutui.sim.renode import demo_platform

    elf = tiny_elf(tmp_path / "fw.elf", 0x20000040, bytes.fromhex("11223344 55667788"), 0x41)
    cfg = tmp_path / "pty.toml"
    cfg.write_text(
        f'[targets.ptyboard]\nbackend = "renode"\nbinary = "{standin}"\n'
        f'platform = "{demo_platform()}"\nelf = "{elf}"\nuarts = ["sysbus.uart0"]\n'
        f'terminal = "pty"\ncommands = ["sysbus.timer0 Frequency 1000"]\n'
    )
    from emutui.config import parse_config

    inst = await start_target(parse_config(cfg), registry, "ptyboard", None, False)
    try:
        assert inst.handles is not None
        assert inst.handles.channels["uart0"].kind == "pty"
        async with connected(inst) as conn:
            assert await conn.read("sram", 0x40, 12) == bytes.fromhex("112233445566778800000000")
            assert await conn.get_prop("/sysbus.cpu", "PC") == 0x41
            assert await conn.get_prop("/sysbus.timer0", "Frequency") == 1000
            stream = await conn.serial("uart0")
            try:
                await stream.write(b"via pty\r")
                await read_until(stream, b"via pty\r\n")
            finally:
                await stream.close()
        log = (inst.wd / "renode.log").read_text()
        assert "[INFO] sysbus: Loading segment of 12 bytes length at 0x20000040." in log
    finally:
        await stop_instance(registry, inst)
    assert not (inst.wd / "pty-uart0").exists()


async def test_stopped_renode_is_busy_and_still_stoppable(board: Instance) -> None:
    from emutui.core.errors import BusyError

    assert board.handles is not None and board.handles.pid is not None
    pid = board.handles.pid
    conn = RenodeConnector(board)
    os.kill(pid, signal.SIGSTOP)
    try:
        from emutui.core import proc

        for _ in range(1000):  # the stop is delivered asynchronously
            if proc.is_stopped(pid):
                break
            await asyncio.sleep(0.01)
        with pytest.raises(BusyError, match="SIGSTOP"):
            await conn.status()
        await conn.stop()  # SIGCONT, then SIGINT: no robot call that would hang
        assert pid_gone(pid)
    finally:
        if not pid_gone(pid):
            os.kill(pid, signal.SIGKILL)


async def test_path_the_monitor_cannot_take(tmp_path: Path, standin: Path) -> None:
    spaced = tmp_path / "my board.repl"
    spaced.write_text("")
    wd = tmp_path / "wd"
    wd.mkdir()
    t = TargetConfig("s", "renode", {"binary": str(standin), "platform": str(spaced)})
    assert BACKEND.start is not None
    with pytest.raises(ConfigError, match="cannot take this path"):
        await BACKEND.start(t, wd, "s", False)
    assert not (wd / "renode.pid").exists()  # nothing was started


async def test_events_resume_after_the_journal(board: Instance) -> None:
    """A second tail yields only what the journal does not have yet, once."""

    async def until_message(conn: RenodeConnector, text: str) -> list[str]:
        seen: list[str] = []
        async for ev in conn.events():
            seen.append(ev.data["message"])
            if text in ev.data["message"]:
                return seen
        return seen

    async with connected(board) as conn:
        assert isinstance(conn, RenodeConnector)
        task = asyncio.create_task(until_message(conn, "Machine paused."))
        await conn.pause()
        first = await asyncio.wait_for(task, 15)
    assert "Machine started." in first  # history on the first tail
    async with connected(board) as conn:
        assert isinstance(conn, RenodeConnector)
        task = asyncio.create_task(until_message(conn, "Machine started."))
        await conn.resume()
        second = await asyncio.wait_for(task, 15)
    assert second == ["Machine started."]  # only the new entry
    messages = [e.data["message"] for e in board.journal().read()]
    assert messages.count("Machine paused.") == 1
    assert messages.count("Machine started.") == 2
