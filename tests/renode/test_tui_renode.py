"""Every TUI pane on a Renode instance: console, run state, events, properties, memory."""

from __future__ import annotations

import pytest

pytest.importorskip("emutui.tui.app")
pytest.importorskip("tests.tui.helpers")

from emutui.config import Config
from emutui.core.instance import Instance
from emutui.core.model import InstanceState
from emutui.core.registry import Registry
from emutui.tui.app import EmutuiApp
from emutui.tui.widgets.console_pane import ConsolePane
from emutui.tui.widgets.events import EventsPane
from emutui.tui.widgets.hexview import HexView
from emutui.tui.widgets.memory import MemoryPane
from emutui.tui.widgets.props import PropsPane
from tests.tui.helpers import until, widget_text


def _connected(app: EmutuiApp, name: str) -> bool:
    link = app.links.get(name)
    return link is not None and link.conn is not None and link.status.state is InstanceState.RUNNING


async def test_all_panes(board: Instance, registry: Registry, renode_config: Config) -> None:
    app = EmutuiApp(registry, renode_config)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: _connected(app, board.name), what="connected")
        await pilot.press("2")
        pane = app.screen.query_one(ConsolePane)
        await until(pilot, lambda: pane.active_view() is not None, what="console tab")
        await pilot.press("enter")
        view = pane.active_view()
        assert view is not None
        # Keys typed before the socket terminal is attached are dropped by design.
        await until(pilot, lambda: view.state == "ATTACHED", what="console attached")
        await pilot.press(*"hello tui", "enter")
        try:
            await until(pilot, lambda: "hello tui" in widget_text(view), what="echo on screen")
        except AssertionError:
            print("SCREEN", widget_text(view)[-500:], "STATE", view.state)
            print("LOG", board.serial_log("uart0").read_bytes()[-300:])
            raise
        await pilot.press("ctrl+right_square_bracket")
        await pilot.press("1", "p")
        await until(
            pilot, lambda: app.links[board.name].status.state is InstanceState.PAUSED, what="paused"
        )
        await pilot.press("3")
        events = app.screen.query_one(EventsPane)
        await until(
            pilot,
            lambda: "Machine paused." in widget_text(events.event_list),
            what="event on screen",
        )
        await pilot.press("1", "u")
        await pilot.press("4")
        props = app.screen.query_one(PropsPane)
        worker = props.jump("/uart0.BaudRate")
        await worker.wait()
        node = worker.result
        assert node is not None
        await until(pilot, lambda: node.data.has_value, what="value")
        assert node.data.value == 115200
        await pilot.press("5")
        mem = app.screen.query_one(MemoryPane)
        await until(pilot, lambda: any(r.name == "uart0" for r in mem.regions), what="regions")
        mem.select_region("uart0")
        hv = app.screen.query_one(HexView)
        await until(pilot, lambda: hv.mem_region is not None, what="region selected")
        hv.word_size = 1
        await hv.wait_loaded()
        # The data register reads 0 (the row shows dots until the page is painted).
        await until(pilot, lambda: hv.row_text(0).startswith("00000000  00"), what="hex row")
