"""The TUI shows kept runs under their name, read-only, and a timeline of the selected one."""

from __future__ import annotations

import json
from pathlib import Path

from textual.widgets import Input, TabbedContent

from emutui.core.handles import Channel, Handles
from emutui.core.registry import Registry
from emutui.core.runs import list_runs
from emutui.core.timeindex import TimedLog
from emutui.tui.app import EmutuiApp
from emutui.tui.widgets.events import EventsPane
from emutui.tui.widgets.instances import InstanceTable
from emutui.tui.widgets.timeline import TimelinePane, TimelineView
from tests.tui.helpers import until

T0 = 1_700_000_000.0


def kept_run(reg: Registry, name: str, t0: float, banner: str) -> None:
    wd = reg.create(name)
    h = Handles(name=name, backend="qemu", target="pc", created=t0)
    h.channels["com1"] = Channel(role="serial", kind="unix", log=str(wd / "serial-com1.log"))
    h.save(wd)
    now = [t0]
    log = TimedLog(wd / "serial-com1.log", clock=lambda: now[0])
    log.write(f"{banner}\r\n".encode())
    for i in range(1, 200):
        now[0] = t0 + i
        log.write(f"tick {i:08x}\r\n".encode())
    log.close()
    (wd / "events.jsonl").write_text(
        json.dumps({"time": t0 + 50.5, "name": "STOP", "data": {}})
        + "\n"
        + json.dumps({"time": t0 + 52.5, "name": "RESUME", "data": {}})
        + "\n"
    )
    reg.keep_run(reg.get(name), "found dead", by="test")


async def test_kept_runs_collapsed_under_their_name_with_a_timeline(tmp_path: Path) -> None:
    root = tmp_path / "state"
    reg = Registry(root)
    kept_run(reg, "guest", T0, "first banner")
    kept_run(reg, "guest", T0 + 1000, "second banner")
    app = EmutuiApp(reg, None, rescan=False)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.query_one(InstanceTable)
        await until(pilot, lambda: table.row_count == 1)  # collapsed: one row for the name
        newest, oldest = [r.id for r in reversed(list_runs(root, "guest"))]
        await until(pilot, lambda: app.screen.current is not None)
        assert app.screen.current.name == newest
        await pilot.press("h")  # expand
        await until(pilot, lambda: table.row_count == 2)
        await pilot.press("down")
        await until(pilot, lambda: app.screen.current.name == oldest)
        # read-only: no stop of a kept run
        await pilot.press("x")
        assert oldest in [r.id for r in list_runs(root, "guest")]
        # its events, from its journal
        pane = app.screen.query_one(EventsPane)
        await until(pilot, lambda: [e.name for e in pane.store(oldest)] == ["STOP", "RESUME"])
        # the timeline: serial lines and events in the order they happened
        await pilot.press("7")
        tabs = app.screen.query_one("#panes", TabbedContent)
        assert tabs.active == "timeline"
        view = app.screen.query_one(TimelineView)
        await until(pilot, lambda: bool(view.page))
        await pilot.press("g")
        texts = [ln.text.decode() for ln in view.page]
        assert "first banner" in texts[:2]  # with "run started", at the same time
        # jump to a time: the STOP sits between tick 50 and tick 51
        app.screen.query_one(TimelinePane).view.jump(T0 + 50)
        await pilot.pause()
        texts = [ln.text.decode() for ln in view.page[:4]]
        assert texts[:3] == ["tick 00000032", "STOP", "tick 00000033"], texts
        await pilot.press("pagedown")
        assert view.page[0].t > T0 + 50
        await pilot.press("pageup")
        assert view.page[0].text == b"tick 00000032"
        # filter by regex
        pane_tl = app.screen.query_one(TimelinePane)
        await pilot.press("slash")
        pane_tl.query_one("#tl-input", Input).value = "STOP|RESUME"
        await pilot.press("enter")
        await until(pilot, lambda: [ln.text for ln in view.page] == [b"STOP", b"RESUME"])
        assert pane_tl._grep == "STOP|RESUME"
        # T in a console: that channel's lines with their arrival times (the timeline)
        await pilot.press("escape", "2")
        await until(pilot, lambda: tabs.active == "console")
        await pilot.press("T")
        await until(pilot, lambda: tabs.active == "timeline")
        await until(pilot, lambda: pane_tl._sources == frozenset({"com1"}))
        await until(pilot, lambda: bool(view.page))
        assert {ln.source for ln in view.page} == {"com1"}
