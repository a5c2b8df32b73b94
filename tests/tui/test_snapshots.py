"""SVG snapshots of every pane at 80x24 and 120x40, on fake instances (tests/tui/fakes.py).

The first run (or a deliberate change of look) needs ``pytest --snapshot-update``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from textual.pilot import Pilot

from emutui.tui.widgets.console_pane import ConsoleWidget
from emutui.tui.widgets.cpu import CpuPane
from emutui.tui.widgets.events import EventsPane
from emutui.tui.widgets.hexview import HexView
from emutui.tui.widgets.memory import MemoryPane
from emutui.tui.widgets.props import PropsPane
from tests.tui.helpers import until
from tests.tui.snapshot_app import build_app

SIZES = [(80, 24), (120, 40)]


async def ready(pilot: Pilot) -> None:
    app = pilot.app
    await until(
        pilot,
        lambda: len(app.links) == 4 and all(link.conn for link in app.links.values()),
        what="links",
    )
    await until(pilot, lambda: app.screen.current is not None, what="selection")
    # The console replays its log and attaches after its first layout; its
    # scrollbar comes and goes until then.
    await until(
        pilot,
        lambda: all(
            getattr(v, "state", "ATTACHED") == "ATTACHED" for v in app.screen.query(ConsoleWidget)
        ),
        what="console attached",
    )
    await pilot.pause(0.3)


async def show_console(pilot: Pilot) -> None:
    await ready(pilot)
    await pilot.press("2")
    await pilot.pause(0.5)


async def show_events(pilot: Pilot) -> None:
    await ready(pilot)
    await pilot.press("3")
    await until(pilot, lambda: len(pilot.app.screen.query_one(EventsPane).event_list.items) >= 6)
    await pilot.press("up", "enter")
    await pilot.pause(0.3)


async def show_props(pilot: Pilot) -> None:
    await ready(pilot)
    await pilot.press("4")
    props = pilot.app.screen.query_one(PropsPane)
    worker = props.jump("/machine/peripheral/edu0.type")
    await worker.wait()
    await until(pilot, lambda: worker.result is not None and worker.result.data.has_value)

    def all_values() -> bool:
        stack = [props.ptree.root]
        while stack:
            node = stack.pop()
            stack.extend(node.children)
            item = node.data
            pending = item is not None and item.prop is not None
            if pending and not (item.has_value or item.unreadable):  # type: ignore[union-attr]
                return False
        return True

    await until(pilot, all_values, what="every shown value read")
    await pilot.pause(0.3)


async def show_memory(pilot: Pilot) -> None:
    await ready(pilot)
    await pilot.press("5")
    mem = pilot.app.screen.query_one(MemoryPane)
    await until(pilot, lambda: len(mem.regions) == 2, what="regions")
    mem.select_region("ram")
    hv = pilot.app.screen.query_one(HexView)
    await until(pilot, lambda: hv.mem_region is not None and hv.mem_region.name == "ram")
    await hv.wait_loaded()
    await pilot.press("pagedown")
    await hv.wait_loaded()
    await pilot.pause(0.3)


async def show_mmio(pilot: Pilot) -> None:
    await ready(pilot)
    await pilot.press("5")
    mem = pilot.app.screen.query_one(MemoryPane)
    await until(pilot, lambda: len(mem.regions) == 2, what="regions")
    hv = pilot.app.screen.query_one(HexView)
    await until(pilot, lambda: hv.mem_region is not None)
    await hv.wait_loaded()
    await pilot.pause(0.3)


async def show_cpu(pilot: Pilot) -> None:
    await ready(pilot)
    await pilot.press("6")
    cpu = pilot.app.screen.query_one(CpuPane)
    await until(pilot, lambda: cpu.pc is not None and cpu.disasm.insns, what="cpu stop")
    await pilot.press("s")  # one step: the registers it changed are marked
    await until(pilot, lambda: cpu.prev_regs != {}, what="step shown")
    await pilot.pause(0.3)


async def show_help(pilot: Pilot) -> None:
    await ready(pilot)
    await pilot.press("question_mark")
    await pilot.pause(0.8)  # Markdown renders its blocks asynchronously


async def show_confirm(pilot: Pilot) -> None:
    await ready(pilot)
    await pilot.press("x")
    await pilot.pause(0.3)


PANES = {
    "instances": ready,
    "console": show_console,
    "events": show_events,
    "props": show_props,
    "memory": show_memory,
    "mmio": show_mmio,
    "cpu": show_cpu,
    "help": show_help,
    "confirm": show_confirm,
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("pane", list(PANES))
def test_pane(pane: str, size: tuple[int, int], snap_compare, tmp_path: Path) -> None:
    assert snap_compare(build_app(tmp_path), terminal_size=size, run_before=PANES[pane])


@pytest.mark.parametrize("theme", ["light", "high-contrast"])
def test_theme(theme: str, snap_compare, tmp_path: Path) -> None:
    assert snap_compare(
        build_app(tmp_path, theme=theme), terminal_size=(120, 40), run_before=show_memory
    )


def test_wide_layout(snap_compare) -> None:
    # 200x50: instances and the selected one's details in a sidebar. The details name
    # the instance's dir: a fixed one, not pytest's numbered tmp_path.
    import shutil
    import tempfile

    lab = Path(tempfile.gettempdir()) / f"emutui-snapshot-wide-{os.getuid()}"
    shutil.rmtree(lab, ignore_errors=True)
    lab.mkdir(mode=0o700)
    try:
        assert snap_compare(build_app(lab), terminal_size=(200, 50), run_before=show_props)
    finally:
        shutil.rmtree(lab, ignore_errors=True)
