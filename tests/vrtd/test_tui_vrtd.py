"""The TUI's properties and memory panes on a vrtd daemon (the simulator), through Pilot."""

from __future__ import annotations

import re
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


async def test_v80_sensors_and_card_reset(sim: SimProcess, state_dir: Path) -> None:
    """Issue 14.4: sensors scaled to their units, the BDF with its function, ids in
    hex, and a card reset that asks first and then sends vrtd's RESET_SEQUENCE."""
    from emutui.tui.screens.dialogs import ConfirmScreen
    from emutui.tui.widgets.instances import InstanceTable

    reg = Registry(state_dir)
    await attach_vrtd(reg, "card", sim.path)
    app = EmutuiApp(reg, Config(path=None))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: _state(app, "card") is InstanceState.RUNNING, what="running")
        await pilot.press("4")
        props = app.screen.query_one(PropsPane)
        for path, want in (
            ("/slash_ctl0/sensors.fpga.temperature", r"4\d(\.\d+)? °C"),
            ("/slash_ctl0/sensors.vccint.voltage", r"0\.8 V"),
            ("/slash_ctl0.bdf", r"0000:c4:00\.2"),
            ("/slash_ctl0.device_id", r"0x50c2"),
            ("/slash_ctl0/bar4.start", r"0x[0-9a-f]+"),
        ):
            worker = props.jump(path)
            await worker.wait()
            node = worker.result
            assert node is not None, path
            await until(pilot, lambda n=node: n.data.has_value, what=path)
            assert re.fullmatch(want, str(node.data.value)), (path, node.data.value)

        assert _shell_of(sim.path) == 0  # vrtd knows no shell yet: UNKNOWN
        await pilot.press("1")
        app.screen.query_one(InstanceTable).focus()
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation")
        question = app.screen.question  # type: ignore[attr-defined]
        assert "slash_ctl0 into compute" in question and "RESET_SEQUENCE" in question
        assert _shell_of(sim.path) == 0  # nothing sent before the answer
        await pilot.press("y")
        # the card was reset into compute, the shell it runs by default
        await until(pilot, lambda: _shell_of(sim.path) == 2, what="reset done", timeout=30)


def _shell_of(path: str) -> int:
    import socket
    import struct

    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    s.connect(path)
    try:
        s.send(struct.pack("<HHI", 4, 1, 1) + b"\0\0\0\0")
        body = s.recv(4096)[8:]
    finally:
        s.close()
    return body[168]
