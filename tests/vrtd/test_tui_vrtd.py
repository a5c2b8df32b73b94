"""The TUI's properties and memory panes on a vrtd daemon (the simulator), through Pilot."""

from __future__ import annotations

from pathlib import Path

from emutui.commands.attach import attach_vrtd
from emutui.config import Config
from emutui.core.model import InstanceState
from emutui.core.registry import Registry
from emutui.tui.app import EmutuiApp
from emutui.tui.widgets.hexview import HexView
from emutui.tui.widgets.memory import MemoryPane
from emutui.tui.widgets.props import PropsPane
from tests.tui.helpers import until
from tests.vrtd.conftest import SimProcess


def _state(app: EmutuiApp, name: str) -> InstanceState | None:
    link = app.links.get(name)
    return link.status.state if link is not None else None


async def test_props_and_memory_panes(sim: SimProcess, state_dir: Path) -> None:
    reg = Registry(state_dir)
    await attach_vrtd(reg, "card", sim.path)
    app = EmutuiApp(reg, Config(path=None))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: _state(app, "card") is InstanceState.RUNNING, what="running")
        await pilot.press("4")
        props = app.screen.query_one(PropsPane)
        worker = props.jump("/slash_ctl0/bar0.length")
        await worker.wait()
        node = worker.result
        assert node is not None and node.data.path == "/slash_ctl0/bar0"
        await until(pilot, lambda: node.data.has_value, what="value of bar0.length")
        assert node.data.value == 128 << 20

        await pilot.press("5")
        mem = app.screen.query_one(MemoryPane)
        await until(
            pilot, lambda: any(r.name == "slash_ctl0.bar0" for r in mem.regions), what="regions"
        )
        assert [r.name for r in mem.regions] == [
            "slash_ctl0.bar0",
            "slash_ctl0.bar2",
            "slash_ctl0.bar4",
        ]
        mem.select_region("slash_ctl0.bar0")
        hv = app.screen.query_one(HexView)
        await until(pilot, lambda: hv.mem_region is not None, what="region selected")
        hv.word_size = 1
        await hv.wait_loaded()
        await pilot.pause()
        assert hv.row_text(0).startswith("00000000  53 56 38 30 00 00 01 00")


async def test_daemon_gone_and_back(sim: SimProcess, state_dir: Path) -> None:
    reg = Registry(state_dir)
    await attach_vrtd(reg, "card", sim.path)
    app = EmutuiApp(reg, Config(path=None))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: _state(app, "card") is InstanceState.RUNNING, what="running")
        sim.kill()
        await until(
            pilot, lambda: _state(app, "card") is InstanceState.DISCONNECTED, what="disconnected"
        )
        sim.start()
        await until(pilot, lambda: _state(app, "card") is InstanceState.RUNNING, what="back")
