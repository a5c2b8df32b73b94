"""The QEMU backend on real QEMU: boot, serial, status, control, events, reattach, death."""

from __future__ import annotations

import asyncio
import json
import os
import signal

from emutui.control import connected, probe_status, start_target, stop_instance
from emutui.core import proc
from emutui.core.model import InstanceState
from tests.conftest import needs_qemu, run_cli, wait_for_file_text

pytestmark = needs_qemu


async def test_boot_banner_in_serial_log(guest):
    data = guest.serial_log("com1").read_bytes()
    assert b"emutui-guest: ready (COM1)" in data
    await wait_for_file_text(guest.serial_log("com2"), b"ready (COM2)")


async def test_instance_dir_is_private_and_complete(guest):
    assert (guest.wd.stat().st_mode & 0o777) == 0o700
    h = json.loads((guest.wd / "handles.json").read_text())
    assert h["backend"] == "qemu" and h["target"] == "guest"
    assert h["pid"] == guest.pid and h["pid_start"] == proc.start_time(guest.pid)
    assert h["command"][0].endswith("qemu-system-x86_64") and "-S" in h["command"]
    assert {"qmp", "qmp-aux", "com1", "com2", "qtest"} <= set(h["channels"])


async def test_echo_through_serial_socket(guest):
    async with connected(guest) as conn:
        stream = await conn.serial("com1")
        try:
            await stream.write(b"hello emutui\r")
            got = b""
            while b"hello emutui\r\n" not in got:
                got += await asyncio.wait_for(stream.read(), 5)
        finally:
            await stream.close()
    # the log keeps what was echoed too
    await wait_for_file_text(guest.serial_log("com1"), b"hello emutui\r\n")


async def test_status_pause_resume_events(guest):
    async with connected(guest, aux=False) as conn:
        events = conn.events()
        assert (await conn.status()).state is InstanceState.RUNNING
        await conn.pause()
        assert (await conn.status()).state is InstanceState.PAUSED
        await conn.resume()
        assert (await conn.status()).state is InstanceState.RUNNING
        names = [(await asyncio.wait_for(anext(events), 5)).name for _ in range(2)]
    assert names == ["STOP", "RESUME"]
    journal = [e.name for e in guest.journal().read()]
    assert journal[-2:] == ["STOP", "RESUME"]


async def test_reattach_from_second_process(guest):
    r = run_cli("pause", guest.name)
    assert r.rc == 0, r.err
    assert "paused" in r.out
    r = run_cli("ls", "--json")
    row = next(x for x in json.loads(r.out) if x["name"] == guest.name)
    assert row["state"] == "paused"
    r = run_cli("resume", guest.name)
    assert r.rc == 0 and "running" in r.out


async def test_monitor_shared_while_another_client_holds_it(guest):
    # Both monitors' worth of clients at once: the QMP broker serves any number.
    async with connected(guest, aux=True), connected(guest, aux=False):
        r = run_cli("pause", guest.name)
        assert r.rc == 0, r.err
        r = run_cli("resume", guest.name)
    assert r.rc == 0 and "busy" not in r.err, r.err


async def test_three_instances_at_once(config, registry, guest):
    others = [await start_target(config, registry, "plain", f"p{i}", False) for i in range(2)]
    for inst in [guest, *others]:
        await wait_for_file_text(inst.serial_log("com1"), b"ready (COM1)")
    states = await asyncio.gather(*(probe_status(i) for i in [guest, *others]))
    assert [s.state for s in states] == [InstanceState.RUNNING] * 3
    for inst in others:
        await stop_instance(registry, inst)


async def test_kill_9_shows_dead_with_log(config, registry):
    inst = await start_target(config, registry, "plain", "victim", False)
    await wait_for_file_text(inst.serial_log("com1"), b"ready (COM1)")
    os.kill(inst.pid, signal.SIGKILL)
    proc.wait_gone(inst.pid, None, 5)
    r = run_cli("ls", "--json")
    row = next(x for x in json.loads(r.out) if x["name"] == "victim")
    assert row["state"] == "dead"
    assert any("ready (COM1)" in line for line in row["log_tail"])
    r = run_cli("pause", "victim")
    assert r.rc == 1 and "dead" in r.err
    # dead instances are never removed silently; stop cleans them
    assert inst.wd.exists()
    r = run_cli("stop", "victim")
    assert r.rc == 0 and not inst.wd.exists()


async def test_stop_leaves_no_qemu(config, registry):
    inst = await start_target(config, registry, "guest", "s1", False)
    pid, started = inst.pid, inst.handles.pid_start
    r = run_cli("stop", "s1")
    assert r.rc == 0, r.err
    assert not proc.is_alive(pid, started)
    assert not inst.wd.exists()


async def test_start_paused_then_resume_keeps_banner(config, registry):
    inst = await start_target(config, registry, "plain", "pz", True)
    async with connected(inst) as conn:
        assert (await conn.status()).detail == "prelaunch"
        await conn.resume()
    await wait_for_file_text(inst.serial_log("com1"), b"ready (COM1)")


async def test_guest_exit_marks_dead(guest):
    async with connected(guest) as conn:
        stream = await conn.serial("com1")
        await stream.write(b"\x18")  # ^X: isa-debug-exit
        await stream.close()
    assert proc.wait_gone(guest.pid, guest.handles.pid_start, 5)
    assert (await probe_status(guest)).state is InstanceState.DEAD
    # the serial hub leaves with the emulator: nothing lingers
    hub_pid, hub_start = guest.handles.options["helpers"]["serialhub"]
    assert proc.wait_gone(hub_pid, hub_start, 5)


async def test_reset_sends_reset_events(guest):
    async with connected(guest, aux=False) as conn:
        events = conn.events()
        await conn.reset()
        ev = await asyncio.wait_for(anext(events), 5)
    assert ev.name == "RESET" and ev.data.get("reason") == "host-qmp-system-reset"
    # the guest boots again: a second banner in the same log
    for _ in range(100):
        if guest.serial_log("com1").read_bytes().count(b"ready (COM1)") >= 2:
            break
        await asyncio.sleep(0.05)
    assert guest.serial_log("com1").read_bytes().count(b"ready (COM1)") >= 2
