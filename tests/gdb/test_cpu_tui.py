"""The CPU pane through Pilot on real QEMU: the stop the CLI made shows in the tab,
keys step and continue, breakpoints toggle at the cursor."""

from __future__ import annotations

from pathlib import Path

from emutui.core.model import InstanceState
from emutui.tui.app import EmutuiApp
from emutui.tui.widgets.cpu import CpuPane
from tests.conftest import needs_qemu
from tests.gdb.test_cpu_qemu import gconfig, nm, ok, vm  # noqa: F401  (fixtures)
from tests.tui.helpers import until, widget_text

pytestmark = needs_qemu


async def test_cpu_tab_shows_the_cli_stop_and_steps(vm, registry, gconfig, guest_elf: Path):  # noqa: F811
    addr = nm(guest_elf)["isr_timer"]
    ok("cpu", "guest", "break", "isr_timer")
    ok("cpu", "guest", "cont", "--timeout", "30")
    app = EmutuiApp(registry, gconfig)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(
            pilot,
            lambda: (
                (link := app.links.get("guest")) is not None
                and link.conn is not None
                and link.status.state is not InstanceState.STARTING
            ),
            what="connected",
            timeout=30,
        )
        await pilot.press("6")
        pane = app.screen.query_one(CpuPane)
        await until(pilot, lambda: pane.pc == addr, what="the stop at isr_timer", timeout=30)
        state = widget_text(pane.query_one("#cpu-state"))
        assert "stopped" in state and "isr_timer" in state and "breakpoint" in state
        assert "push" in widget_text(pane.disasm) and "<isr_timer>" in widget_text(pane.disasm)
        assert "eip" in widget_text(pane.query_one("#cpu-regs"))
        # s: one instruction (push eax is one byte); the changed registers are marked
        await pilot.press("s")
        await until(pilot, lambda: pane.pc == addr + 1, what="one step", timeout=30)
        assert pane.prev_regs and pane.prev_regs != pane.regs
        # b on the cursor (PC) sets a breakpoint; c runs to the isr_timer one again
        await pilot.press("b")
        await until(
            pilot, lambda: any(p["addr"] == addr + 1 for p in pane.points), what="break set"
        )
        await pilot.press("c")
        await until(pilot, lambda: pane.pc == addr, what="back at isr_timer", timeout=30)
        await pilot.press("D")
        await until(pilot, lambda: not pane.points, what="points cleared")
        await pilot.press("c")
        await until(pilot, lambda: pane.running, what="running", timeout=30)
        assert "running" in widget_text(pane.query_one("#cpu-state"))
        await pilot.press("p")
        await until(pilot, lambda: not pane.running and pane.pc, what="stopped", timeout=30)


async def test_cpu_tab_snapshots_and_virtual_memory(vm, registry, gconfig, guest_elf: Path):  # noqa: F811
    from emutui.tui.screens.vmem import VirtualMemoryScreen
    from emutui.tui.widgets.hexview import HexView

    app = EmutuiApp(registry, gconfig)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(
            pilot,
            lambda: (link := app.links.get("guest")) is not None and link.conn is not None,
            what="connected",
            timeout=30,
        )
        await pilot.press("6")
        pane = app.screen.query_one(CpuPane)
        await until(pilot, lambda: pane.session is not None, what="attached", timeout=30)
        await pilot.press("p")
        await until(pilot, lambda: pane.pc is not None, what="stopped", timeout=30)
        # S: save under a tag typed in the prompt; it appears in the pane's list
        await pilot.press("S", *"s1", "enter")
        await until(pilot, lambda: pane.snaps == ["s1"], what="snapshot listed", timeout=60)
        assert "s1" in widget_text(pane.query_one("#cpu-points"))
        # L: load it back (picked from the list)
        await pilot.press("L")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(
            pilot,
            lambda: any("load done" in str(n.message) for n in app._notifications),
            what="loaded",
            timeout=60,
        )
        # m: memory as the CPU sees it, at jiffies
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, VirtualMemoryScreen), what="vmem")
        await pilot.press("g", *"jiffies", "enter")
        hv = app.screen.query_one(HexView)
        await until(pilot, lambda: hv.cursor == nm(guest_elf)["jiffies"], what="goto jiffies")
        await hv.wait_loaded(20)
        assert "jiffies" in widget_text(app.screen.query_one("#vmem-status"))
        await pilot.press("escape")
