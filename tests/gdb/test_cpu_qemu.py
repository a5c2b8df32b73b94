"""The CPU commands on real QEMU with the test guest (isr_timer at 100 Hz bumps jiffies).

Everything goes through the CLI as a user types it: each command is a new
process, so these tests also show that the gdb hub keeps breakpoints between
commands and that the guest keeps running unless a command stops it.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from emutui.config import Config, parse_config
from emutui.control import start_target, stop_instance
from emutui.core.instance import Instance
from emutui.core.registry import Registry
from tests.conftest import needs_qemu, run_cli, wait_for_file_text

pytestmark = needs_qemu

CONFIG = """
[targets.guest]
backend = "qemu"
machine = "pc"
kernel = "{elf}"
serial = ["com1", "com2"]
snapshots = true

[targets.smp]
backend = "qemu"
machine = "pc"
kernel = "{elf}"
args = ["-smp", "2"]
"""


def nm(elf: Path) -> dict[str, int]:
    out = subprocess.run(["nm", str(elf)], capture_output=True, text=True, check=True).stdout
    syms = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            syms[parts[2]] = int(parts[0], 16)
    return syms


def text_range(elf: Path) -> tuple[int, int]:
    out = subprocess.run(["objdump", "-h", str(elf)], capture_output=True, text=True).stdout
    for line in out.splitlines():
        f = line.split()
        if len(f) > 4 and f[1] == ".text":
            size, vma = int(f[2], 16), int(f[3], 16)
            return vma, vma + size
    raise AssertionError("no .text")


@pytest.fixture
def gconfig(tmp_path: Path, guest_elf: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    p = tmp_path / "emutui.toml"
    p.write_text(CONFIG.format(elf=guest_elf))
    monkeypatch.setenv("EMUTUI_CONFIG", str(p))
    return parse_config(p)


@pytest.fixture
async def vm(gconfig: Config, registry: Registry) -> AsyncIterator[Instance]:
    inst = await start_target(gconfig, registry, "guest", None, False)
    await wait_for_file_text(inst.serial_log("com1"), b"ready (COM1)")
    yield inst
    await stop_instance(registry, inst)


def ok(*args: str) -> str:
    r = run_cli(*args)
    assert r.rc == 0, r.err
    return r.out


def fails(*args: str) -> str:
    r = run_cli(*args, timeout=60)
    assert r.rc == 1, (r.out, r.err)
    assert r.err.count("\n") == 1 and "Traceback" not in r.err, r.err
    return r.err


def regs(name: str = "guest") -> dict:
    return json.loads(ok("cpu", name, "regs", "--json"))


def jiffies(elf: Path) -> int:
    addr = nm(elf)["jiffies"]
    out = json.loads(ok("cpu", "guest", "mem", hex(addr), "4", "--json"))
    return int.from_bytes(bytes.fromhex(out["hex"]), "little")


async def test_regs_after_pause_show_pc_in_text(vm: Instance, guest_elf: Path) -> None:
    ok("pause", "guest")
    r = regs()
    lo, hi = text_range(guest_elf)
    assert lo <= r["pc"] < hi
    assert {"rax", "rip", "eflags", "cs"} <= set(r["registers"])
    assert r["pc"] == r["registers"]["rip"]


async def test_break_cont_regs_stops_at_isr_timer(vm: Instance, guest_elf: Path) -> None:
    """The issue's "done when": break isr_timer && cont && regs --json."""
    addr = nm(guest_elf)["isr_timer"]
    assert "isr_timer" in ok("cpu", "guest", "break", "isr_timer")
    out = json.loads(ok("cpu", "guest", "cont", "--timeout", "30", "--json"))
    assert out["running"] is False and out["pc"] == addr and out["symbol"] == "isr_timer"
    assert regs()["pc"] == addr
    # the breakpoint is still there for the next command: it stops there again
    out = json.loads(ok("cpu", "guest", "cont", "--timeout", "30", "--json"))
    assert out["pc"] == addr
    points = json.loads(ok("cpu", "guest", "points", "--json"))
    assert points == [{"kind": "break", "addr": addr, "len": 1}]
    ok("cpu", "guest", "delete", "isr_timer")
    assert json.loads(ok("cpu", "guest", "points", "--json")) == []


def objdump(elf: Path, start: int, stop: int) -> list[tuple[int, str, str]]:
    """(address, hex bytes, mnemonic) of each instruction objdump -d shows in [start, stop)."""
    out = subprocess.run(
        [
            "objdump",
            "-d",
            "-M",
            "intel",
            f"--start-address={start}",
            f"--stop-address={stop}",
            str(elf),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"^\s*([0-9a-f]+):\t([0-9a-f ]+?)\s*\t(\S+)", line)
        if m:
            rows.append((int(m.group(1), 16), m.group(2).replace(" ", ""), m.group(3)))
    return rows


async def test_step_and_disassembly_match_objdump(vm: Instance, guest_elf: Path) -> None:
    syms = nm(guest_elf)
    addr = syms["isr_timer"]
    want = objdump(guest_elf, addr, syms["isr_default"])
    assert len(want) == 6
    ok("cpu", "guest", "break", "isr_timer")
    ok("cpu", "guest", "cont", "--timeout", "30")
    ok("cpu", "guest", "delete", "--all")
    got = json.loads(ok("cpu", "guest", "dis", "isr_timer", "-n", str(len(want)), "--json"))
    assert [(g["addr"], g["bytes"], g["text"].split()[0]) for g in got] == [
        (a, b, m.replace("iret", "iretd")) if m == "iret" else (a, b, m) for a, b, m in want
    ]
    # one step = exactly one instruction
    pc = regs()["pc"]
    assert pc == addr
    for a, b, _m in want[:3]:
        assert pc == a
        out = json.loads(ok("cpu", "guest", "step", "--json"))
        pc = out["pc"]
        assert pc == a + len(b) // 2
    out = json.loads(ok("cpu", "guest", "step", "-n", "2", "--json"))
    assert out["pc"] == want[5][0]


async def test_write_watchpoint_on_jiffies(vm: Instance, guest_elf: Path) -> None:
    syms = nm(guest_elf)
    ok("cpu", "guest", "watch", "jiffies")
    out = json.loads(ok("cpu", "guest", "cont", "--timeout", "30", "--json"))
    assert out["reason"] == "watch" and out["address"] == syms["jiffies"]
    # the store is in isr_timer: the stop is right after it
    assert syms["isr_timer"] < out["pc"] < syms["isr_default"]


async def test_snapshot_round_trip(vm: Instance, guest_elf: Path) -> None:
    ok("cpu", "guest", "stop")
    before = jiffies(guest_elf)
    assert "saved s1" in ok("snap", "guest", "save", "s1")
    assert "s1" in ok("snap", "guest", "ls")
    r = run_cli("cpu", "guest", "cont", "--timeout", "0.5")
    assert "still running" in r.out
    ok("cpu", "guest", "stop")
    assert jiffies(guest_elf) > before
    assert "loaded s1" in ok("snap", "guest", "load", "s1")
    assert jiffies(guest_elf) == before
    ok("snap", "guest", "rm", "s1")
    assert json.loads(ok("snap", "guest", "ls", "--json")) == []
    assert "no snapshot 'nope'" in fails("snap", "guest", "load", "nope")


@pytest.mark.skipif(
    not (shutil.which("gdb-multiarch") or shutil.which("gdb")), reason="no gdb installed"
)
async def test_gdb_handover_and_back(vm: Instance, guest_elf: Path) -> None:
    addr = nm(guest_elf)["isr_timer"]
    ok("cpu", "guest", "break", "isr_timer")
    ok("cpu", "guest", "cont", "--timeout", "30")
    r = run_cli("gdb", "guest", "--", "-batch", "-ex", "info registers rip", timeout=60)
    assert r.rc == 0, r.err
    assert f"{addr:#x}" in r.out or f"0x{addr:x}" in r.out, r.out
    # the hub has the stub back, and its breakpoint armed again
    out = json.loads(ok("cpu", "guest", "cont", "--timeout", "30", "--json"))
    assert out["pc"] == addr


async def test_bad_input(vm: Instance, guest_elf: Path) -> None:
    assert "unknown symbol 'no_such_symbol'" in fails("cpu", "guest", "break", "no_such_symbol")
    ok("cpu", "guest", "stop")
    assert "not mapped" in fails("cpu", "guest", "mem", "0xfffffffff0000000", "16")
    assert "no cpu 3" in fails("cpu", "guest", "regs", "--cpu", "3")
    ok("cpu", "guest", "cont", "--no-wait")
    assert "running" in fails("cpu", "guest", "regs")
    assert "running" in fails("cpu", "guest", "step")


async def test_stub_held_by_someone_else(vm: Instance) -> None:
    """Another debugger on the stub: one line saying so, not a hang."""
    assert vm.handles is not None
    path = vm.handles.channels["gdb"].path
    assert path is not None
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.connect(path)
    other.sendall(b"$qSupported#37")
    try:
        err = fails("cpu", "guest", "regs")
        assert "another debugger" in err
    finally:
        other.close()


async def test_attached_qemu_gets_a_stub_through_hmp(
    state_dir: Path, guest_elf: Path, tmp_path: Path
) -> None:
    """A QEMU emutui did not start has no -gdb: the first CPU command asks for one."""
    qmp = Path(str(state_dir)) / "foreign-qmp.sock"
    p = subprocess.Popen(
        ["qemu-system-x86_64", "-display", "none", "-nodefaults", "-M", "pc", "-accel", "tcg",
         "-kernel", str(guest_elf), "-qmp", f"unix:{qmp},server=on,wait=off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await wait_for_path(qmp)
        ok("attach", "qemu", "foreign", "--qmp", str(qmp))
        out = json.loads(ok("cpu", "foreign", "stop", "--json"))
        lo, hi = text_range(guest_elf)
        assert out["running"] is False and lo <= out["pc"] < hi
        h = json.loads((Path(str(state_dir)) / "foreign" / "handles.json").read_text())
        assert h["channels"]["gdb"]["kind"] == "unix"
        ok("cpu", "foreign", "cont", "--no-wait")
        ok("detach", "foreign")
    finally:
        p.kill()
        p.wait()


async def wait_for_path(path: Path, timeout: float = 10.0) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not path.exists():
        if loop.time() > deadline:
            raise AssertionError(f"{path} did not appear")
        await asyncio.sleep(0.02)


async def test_qmp_pause_and_resume_behind_the_hubs_back(vm: Instance) -> None:
    """QEMU's stub reports a QMP stop but not a QMP cont: the next request still
    answers (QEMU takes it as an interrupt; the client sends it again)."""
    ok("cpu", "guest", "stop")
    ok("resume", "guest")
    r = json.loads(ok("cpu", "guest", "regs", "--json"))
    assert r["pc"] > 0
    ok("cpu", "guest", "cont", "--no-wait")
    ok("pause", "guest")
    assert json.loads(ok("cpu", "guest", "regs", "--json"))["pc"] > 0


async def test_threads_are_cpus(gconfig: Config, registry: Registry, guest_elf: Path) -> None:
    inst = await start_target(gconfig, registry, "smp", None, False)
    try:
        await wait_for_file_text(inst.serial_log("com1"), b"ready (COM1)")
        ok("cpu", "smp", "stop")
        boot = json.loads(ok("cpu", "smp", "regs", "--json"))
        ap = json.loads(ok("cpu", "smp", "regs", "--cpu", "1", "--json"))
        lo, hi = text_range(guest_elf)
        assert lo <= boot["pc"] < hi and boot["cpu"] == 0
        assert ap["cpu"] == 1 and ap["pc"] != boot["pc"]  # the AP still waits for its SIPI
        assert "no cpu 2 (it has 2)" in fails("cpu", "smp", "regs", "--cpu", "2")
        # the first CPU again, after reading the second
        assert json.loads(ok("cpu", "smp", "regs", "--json"))["pc"] == boot["pc"]
    finally:
        await stop_instance(registry, inst)


async def test_a_killed_hub_is_restarted_and_knows_its_points(
    vm: Instance, guest_elf: Path
) -> None:
    import os
    import signal

    addr = nm(guest_elf)["isr_timer"]
    ok("cpu", "guest", "break", "isr_timer")
    h = json.loads((vm.wd / "handles.json").read_text())
    os.kill(h["options"]["helpers"]["gdbhub"][0], signal.SIGKILL)
    # QEMU keeps the breakpoint armed; the next command starts a hub that knows it
    out = json.loads(ok("cpu", "guest", "cont", "--timeout", "30", "--json"))
    assert out["pc"] == addr and out["why"] == "breakpoint"
    assert json.loads(ok("cpu", "guest", "points", "--json")) == [
        {"kind": "break", "addr": addr, "len": 1}
    ]
    ok("cpu", "guest", "delete", "--all")
    r = run_cli("cpu", "guest", "cont", "--timeout", "1")
    assert "still running" in r.out  # armed once, deleted once: nothing left in QEMU
