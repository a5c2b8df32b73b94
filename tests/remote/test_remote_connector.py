"""The laptop's RemoteConnector over a real sshd: the TUI's path to a host's instances."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from emutui.backends.remote.connector import RemoteHosts, RemoteInstance
from emutui.backends.remote.ssh import SSHHost
from emutui.config import parse_config
from emutui.control import make_connector
from emutui.core.errors import DisconnectedError, EmutuiError, ProtocolError
from emutui.core.model import Capability, InstanceState
from tests.conftest import needs_qemu, wait_for_file_text
from tests.remote.conftest import Lab, Sshd, host_cli
from tests.vrtd.conftest import SimProcess, sim, sim_factory, sock_dir  # noqa: F401


def hosts_of(lab: Lab, tmp_path: Path) -> RemoteHosts:
    cfg = parse_config(lab.config, validate=False)
    mirror = tmp_path / "mirror"
    mirror.mkdir(mode=0o700)
    return RemoteHosts(cfg.hosts.values(), mirror)


async def instance(hosts: RemoteHosts, name: str) -> RemoteInstance:
    await hosts.refresh_now()
    found = {i.name: i for i in hosts()}
    assert name in found, (list(found), [h.error for h in hosts.hosts.values()])
    inst = found[name]
    assert isinstance(inst, RemoteInstance)
    return inst


async def read_until(stream: object, needle: bytes, timeout: float = 15.0) -> bytes:
    got = b""
    async with asyncio.timeout(timeout):
        while needle not in got:
            chunk = await stream.read(65536)  # type: ignore[attr-defined]
            assert chunk, got[-200:]
            got += chunk
    return got


@needs_qemu
async def test_qemu_on_two_hosts_through_the_connector(lab: Lab, tmp_path: Path) -> None:
    for h in ("lab1", "lab2"):
        r = host_cli(lab, h, "start", "guest")
        assert r.returncode == 0, r.stderr
    hosts = hosts_of(lab, tmp_path)
    try:
        insts = [await instance(hosts, f"guest@{h}") for h in ("lab1", "lab2")]
        a, b = (make_connector(i, aux=False) for i in insts)
        await a.connect()
        await b.connect()
        assert {Capability.PAUSE, Capability.EVENTS, Capability.MEMORY} <= a.capabilities
        assert (await a.status()).state is InstanceState.RUNNING
        events = a.events()
        await a.pause()
        ev = await asyncio.wait_for(anext(events), 10)
        assert ev.name == "STOP" and ev.source == "guest@lab1"
        assert (await a.status()).state is InstanceState.PAUSED
        assert (await b.status()).state is InstanceState.RUNNING  # the other host's own
        await a.resume()
        ev = await asyncio.wait_for(anext(events), 10)
        assert ev.name == "RESUME"
        await events.aclose()
        props = await a.list_props("/machine/peripheral/edu0")
        assert any(p.name == "type" for p in props)
        assert await a.get_prop("/machine/peripheral/edu0", "type") == "edu"
        regions = {r.name: r for r in await a.regions()}
        assert "edu0.bar0" in regions
        assert (await a.read("edu0.bar0", 0, 4)) == bytes.fromhex("ed000001")
        # The console: a streamlocal forward of the host's serial hub.
        stream = await a.serial("com1")
        await stream.write(b"over-the-forward\r")
        await read_until(stream, b"over-the-forward")
        await stream.close()
        # History came along into the mirror, so panes that read files work unchanged.
        log = insts[0].serial_log("com1")
        assert b"ready (COM1)" in log.read_bytes()
        with pytest.raises(EmutuiError, match="no memory region"):
            await a.read("nosuch", 0, 4)
    finally:
        await hosts.close()
        await hosts.close_masters()


@needs_qemu
async def test_connection_killed_mid_session_reconnects_and_loses_nothing(
    lab: Lab, tmp_path: Path
) -> None:
    assert host_cli(lab, "lab1", "start", "guest").returncode == 0
    hosts = hosts_of(lab, tmp_path)
    try:
        inst = await instance(hosts, "guest@lab1")
        conn = make_connector(inst, aux=False)
        await conn.connect()
        stream = await conn.serial("com1")
        await stream.write(b"before-cut\r")
        await read_until(stream, b"before-cut")
        # Kill the SSH connection itself (the ControlMaster), as a network cut would.
        ssh = hosts.host("lab1").ssh
        out = subprocess.run(
            [*ssh.base("-O", "check"), "--", ssh.cfg.ssh], capture_output=True, text=True
        )
        pid = int(re.search(r"pid=(\d+)", out.stderr).group(1))  # type: ignore[union-attr]
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(DisconnectedError):
            for _ in range(50):
                await conn.status()
                await asyncio.sleep(0.1)
        # Meanwhile the guest keeps printing on the host, into the host's log.
        host_inst_dir = lab.hosts["lab1"] / "guest"
        r = subprocess.run(
            [sys.executable, "-m", "emutui", "--state-dir", str(lab.hosts["lab1"]),
             "term", "guest", "com1"],
            input=b"while-cut\r", capture_output=True, timeout=30,
        )  # fmt: skip
        await wait_for_file_text(host_inst_dir / "serial-com1.log", b"while-cut")
        # Back: the next call reconnects (after the retry pause), and the console's
        # history fetches what it missed from the host's log.
        for _ in range(100):
            try:
                await conn.connect()
                break
            except DisconnectedError:
                await asyncio.sleep(0.2)
        assert (await conn.status()).state is InstanceState.RUNNING
        stream2 = await conn.serial("com1")
        mirror = inst.serial_log("com1").read_bytes()
        assert b"before-cut" in mirror and b"while-cut" in mirror
        await stream2.close()
        del r
    finally:
        await hosts.close()
        await hosts.close_masters()


async def test_vrtd_on_a_host_memory_stays_there(
    lab: Lab,
    tmp_path: Path,
    sim: SimProcess,  # noqa: F811
) -> None:
    r = host_cli(lab, "lab2", "attach", "vrtd", "card", "--socket", sim.path)
    assert r.returncode == 0, r.stderr
    hosts = hosts_of(lab, tmp_path)
    try:
        inst = await instance(hosts, "card@lab2")
        conn = make_connector(inst, aux=False)
        await conn.connect()
        regions = await conn.regions()
        assert regions, "the simulated card has BARs"
        region = regions[0].name
        await conn.write(region, 0x100, b"\x11\x22\x33\x44")
        assert await conn.read(region, 0x100, 4) == b"\x11\x22\x33\x44"
        nodes = await conn.list_props("/")
        assert nodes
    finally:
        await hosts.close()
        await hosts.close_masters()


async def test_agent_that_sends_garbage_is_one_clear_error(
    lab: Lab, sshd: Sshd, tmp_path: Path
) -> None:
    with lab.config.open("a") as f:
        f.write(sshd.host_toml("lab3", lab.hosts["lab1"], None, emutui="/bin/echo {garbage"))
    hosts = hosts_of(lab, tmp_path)
    try:
        with pytest.raises(DisconnectedError, match="garbage") as e:
            await hosts.host("lab3").client()
        assert "\n" not in str(e.value)
        await hosts.refresh_now()
        row = {i.name: i for i in hosts()}["@lab3"]
        assert "garbage" in (row.error or "")
    finally:
        await hosts.close()
        await hosts.close_masters()


async def test_protocol_version_mismatch_is_one_line(lab: Lab, tmp_path: Path) -> None:
    from emutui.backends.remote import rpc
    from emutui.backends.remote.client import AgentClient

    hosts = hosts_of(lab, tmp_path)
    agent = AgentClient(SSHHost(hosts.host("lab1").cfg))
    try:
        old = rpc.PROTOCOL
        await agent.start()
        with pytest.raises(ProtocolError, match="protocol mismatch"):
            await agent.call("hello", {"protocol": old + 1, "version": "9.9"})
    finally:
        await agent.close()
        await hosts.close_masters()
