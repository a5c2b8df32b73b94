"""Faults around real QEMU: killed and stopped emulators, a killed serial hub, floods,
corrupted and stale state, pid reuse, racing emutui processes. For each: a clear message,
the other instances go on, nothing already received is lost."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from emutui.control import connected, probe_status, start_target
from emutui.core import proc, supervisor
from emutui.core.handles import Handles
from emutui.core.model import InstanceState
from emutui.core.registry import Registry
from emutui.core.serialhub import SUPERVISOR_STATE
from tests.conftest import needs_qemu, run_cli, wait_for_file_text

pytestmark = needs_qemu
FLOOD_SECONDS = float(os.environ.get("EMUTUI_FLOOD_SECONDS", "120"))
FLOOD_LINE = re.compile(rb"flood ([0-9a-f]{8}) ")


def one_line_error(r) -> str:
    assert r.rc == 1 and "Traceback" not in r.err, r.err
    assert len(r.err.strip().splitlines()) == 1, r.err
    return r.err.strip()


def hub_pid(inst) -> int:
    """The serial hub itself (its supervisor records it), not the supervisor."""
    for _ in range(600):
        ids = supervisor.read_state(inst.wd / SUPERVISOR_STATE).get("serialhub")
        if ids and proc.exists(ids[0]):
            return int(ids[0])
        time.sleep(0.05)
    raise AssertionError("no serial hub recorded")


def supervisor_pid(inst) -> int:
    h = Handles.load(inst.wd)
    return int(h.options["helpers"]["serialhub"][0])


async def read_until(stream, needle: bytes, timeout: float = 5.0) -> bytes:
    got = b""
    async with asyncio.timeout(timeout):
        while needle not in got:
            chunk = await stream.read()
            assert chunk, f"EOF before {needle!r}: {got[-200:]!r}"
            got += chunk
    return got


def flood_numbers(data: bytes) -> list[int]:
    return [int(m.group(1), 16) for m in FLOOD_LINE.finditer(data)]


async def test_serial_has_many_clients_at_once(guest):
    async with connected(guest) as conn:
        a, b = await conn.serial("com1"), await conn.serial("com1")
        try:
            await a.write(b"from a\r")
            assert b"from a\r\n" in await read_until(b, b"from a\r\n")
            await b.write(b"from b\r")
            assert b"from b\r\n" in await read_until(a, b"from b\r\n")
        finally:
            await a.close()
            await b.close()


async def test_killed_serial_hub_is_restarted(guest):
    # Hub and supervisor both killed: the next client restarts them.
    old = hub_pid(guest)
    os.kill(supervisor_pid(guest), signal.SIGKILL)
    os.kill(old, signal.SIGKILL)
    for _ in range(200):
        if not proc.exists(old):
            break
        time.sleep(0.05)
    r = run_cli("term", guest.name, "com1", input="after hub death\r")
    assert r.rc == 0, r.err
    assert "after hub death" in r.out
    assert hub_pid(guest) != old
    assert (await probe_status(guest)).state is InstanceState.RUNNING


@pytest.mark.timeout(FLOOD_SECONDS + 120)
async def test_flood_loses_nothing_and_other_instances_go_on(config, registry, guest):
    """Minutes of flooding (EMUTUI_FLOOD_SECONDS, 120 by default) with one reading client
    and one stalled one: every line lands in the log in order, the other instance and the
    flooding one's monitor keep answering, the reader keeps up."""
    other = await start_target(config, registry, "plain", "calm", False)
    await wait_for_file_text(other.serial_log("com1"), b"ready (COM1)")
    first = last = None
    count = 0
    async with connected(guest) as conn:
        fast = await conn.serial("com1")
        slow = await conn.serial("com1")  # never read: the hub must not stall on it
        await fast.write(b"\x06")  # ^F: flood until the next byte
        carry = b""
        loop = asyncio.get_running_loop()
        end = loop.time() + FLOOD_SECONDS
        next_check = loop.time() + 5
        while loop.time() < end:
            data = carry + await asyncio.wait_for(fast.read(), 5)
            cut = data.rfind(b"\n") + 1
            for n in flood_numbers(data[:cut]):
                assert last is None or n == last + 1, f"client missed lines {last}..{n}"
                first = n if first is None else first
                last = n
                count += 1
            carry = data[cut:]
            if loop.time() > next_check:  # meanwhile everything else answers
                assert (await probe_status(other)).state is InstanceState.RUNNING
                assert (await conn.status()).state is InstanceState.RUNNING
                next_check = loop.time() + 5
        await fast.write(b"x")  # stops the flood
        await asyncio.sleep(0.5)
        await fast.close()
        await slow.close()
    assert count > 100

    # every line the guest printed is in the log (and its rotated generations), in
    # order, without a gap, including all the client saw
    def generation(p: Path) -> int:
        return int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0

    logs = sorted(guest.wd.glob("serial-com1.log*"), key=generation, reverse=True)  # oldest first
    logged_first = logged_last = None
    for path in logs:
        with path.open("rb") as f:
            carry = b""
            while chunk := f.read(1 << 20):
                data = carry + chunk
                cut = data.rfind(b"\n") + 1
                for n in flood_numbers(data[:cut]):
                    assert logged_last is None or n == logged_last + 1, (logged_last, n)
                    logged_first = n if logged_first is None else logged_first
                    logged_last = n
                carry = data[cut:]
    assert logged_first is not None and logged_first <= first and logged_last >= last


async def test_serial_logs_rotate_and_stay_bounded(tmp_path, guest_elf, state_dir):
    cfg = tmp_path / "rot.toml"
    cfg.write_text(
        f"[logs]\nmax_bytes = 65536\ngenerations = 2\n"
        f'[targets.r]\nbackend = "qemu"\nmachine = "pc"\nkernel = "{guest_elf}"\n'
    )
    from emutui.config import parse_config
    from emutui.core.registry import Registry

    inst = await start_target(parse_config(cfg), Registry(state_dir), "r", None, False)
    await wait_for_file_text(inst.serial_log("com1"), b"ready (COM1)")
    async with connected(inst) as conn:
        s = await conn.serial("com1")
        await s.write(b"\x06")
        total = 0
        while total < 400_000:
            total += len(await asyncio.wait_for(s.read(), 5))
        await s.write(b"x")
        await s.close()
    await asyncio.sleep(0.3)
    log = inst.serial_log("com1")
    files = sorted(p for p in log.parent.glob("serial-com1.log*") if p.suffix != ".tidx")
    assert [f.name for f in files] == ["serial-com1.log", "serial-com1.log.1", "serial-com1.log.2"]
    # each generation keeps its arrival times (core/timeindex.py)
    assert all(f.with_name(f.name + ".tidx").stat().st_size > 0 for f in files)
    assert all(f.stat().st_size <= 65536 for f in files)
    # the generations join without a gap
    joined = b"".join(f.read_bytes() for f in [files[2], files[1], files[0]])
    n = flood_numbers(joined)
    assert n == list(range(n[0], n[0] + len(n)))


async def test_sigstopped_qemu_is_busy_not_hung(guest):
    os.kill(guest.pid, signal.SIGSTOP)
    try:
        line = one_line_error(run_cli("pause", guest.name))
        assert "stopped" in line
        row = next(x for x in json.loads(run_cli("ls", "--json").out) if x["name"] == guest.name)
        assert row["state"] == "busy"
    finally:
        os.kill(guest.pid, signal.SIGCONT)
    assert run_cli("pause", guest.name).rc == 0


def test_corrupted_handles_shown_and_cleaned(state_dir):
    wd = Registry(state_dir).create("broken")  # emutui's own directory (its marker)...
    (wd / "handles.json").write_text('{"name": "broken", "backend": ')  # ...then corrupted
    row = next(x for x in json.loads(run_cli("ls", "--json").out) if x["name"] == "broken")
    assert row["state"] == "dead" and "corrupted" in row["error"]
    assert "corrupted" in one_line_error(run_cli("pause", "broken"))
    assert run_cli("stop", "broken").rc == 0
    assert not wd.exists()


def test_pid_reuse_is_not_our_process(state_dir):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        wd = state_dir / "reused"
        wd.mkdir(mode=0o700)
        # a record whose pid now belongs to an unrelated process (another start time)
        Handles(
            name="reused",
            backend="qemu",
            target="t",
            pid=sleeper.pid,
            pid_start=(proc.start_time(sleeper.pid) or 0) - 1,
        ).save(wd)
        row = next(x for x in json.loads(run_cli("ls", "--json").out) if x["name"] == "reused")
        assert row["state"] == "dead"
        assert run_cli("stop", "reused").rc == 0
        assert sleeper.poll() is None  # stop never signals a stranger
    finally:
        sleeper.kill()
        sleeper.wait()


async def test_stale_sockets_after_kill_9_then_restart(config, registry):
    inst = await start_target(config, registry, "plain", "stale", False)
    os.kill(inst.pid, signal.SIGKILL)
    proc.wait_gone(inst.pid, None, 5)
    assert (await probe_status(inst)).state is InstanceState.DEAD
    again = await start_target(config, registry, "plain", "stale", False)
    await wait_for_file_text(again.serial_log("com1"), b"ready (COM1)")
    assert (await probe_status(again)).state is InstanceState.RUNNING


def test_two_emutui_start_the_same_name_at_once(config_file, state_dir):
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: run_cli("start", "plain"), range(2)))
    assert sorted(r.rc for r in results) == [0, 1]
    loser = next(r for r in results if r.rc == 1)
    assert "already running" in one_line_error(loser)
    rows = json.loads(run_cli("ls", "--json").out)
    assert [r["state"] for r in rows] == ["running"]
    pids = subprocess.run(
        ["pgrep", "-f", f"{state_dir}/plain/qmp.qemu.sock"], capture_output=True, text=True
    ).stdout.split()
    assert len(pids) == 1


def test_two_emutui_on_one_state_dir_ls_and_control(config_file, state_dir):
    assert run_cli("start", "guest").rc == 0
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(
                lambda i: (
                    run_cli("ls", "--json")
                    if i % 2
                    else run_cli("prop", "get", "guest", "/machine", "type")
                ),
                range(8),
            )
        )
    # the QMP broker serves them all at once: nobody waits for a monitor or says busy
    for r in results:
        assert r.rc == 0, r.err
        assert "Traceback" not in r.err


@pytest.mark.parametrize("victim", ["qemu", "hub"])
async def test_kill_during_stop_leaves_nothing(config, registry, victim):
    inst = await start_target(config, registry, "plain", f"k{victim}", False)
    pid = inst.pid if victim == "qemu" else hub_pid(inst)
    os.kill(pid, signal.SIGKILL)
    assert run_cli("stop", inst.name).rc == 0
    assert not inst.wd.exists()
    assert not proc.is_alive(inst.pid, inst.handles.pid_start)
    assert not proc.exists(hub_pid_from(inst))


def hub_pid_from(inst) -> int:
    return int(inst.handles.options["helpers"]["serialhub"][0])
