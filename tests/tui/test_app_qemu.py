"""The TUI through Pilot against real QEMU guests (tests/conftest.py's ``guest``)."""

from __future__ import annotations

import os
import signal

from emutui.control import start_target
from emutui.core.model import InstanceState
from emutui.tui.app import EmutuiApp
from emutui.tui.widgets.console_pane import ConsolePane
from emutui.tui.widgets.events import EventsPane
from emutui.tui.widgets.hexview import HexView
from emutui.tui.widgets.memory import MemoryPane
from emutui.tui.widgets.props import PropsPane
from tests.conftest import needs_qemu
from tests.tui.helpers import until, widget_text

pytestmark = needs_qemu


def _connected(app: EmutuiApp, name: str) -> bool:
    link = app.links.get(name)
    return link is not None and link.conn is not None and link.status.state is InstanceState.RUNNING


async def test_console_shows_guest_echo(guest, registry, config):
    app = EmutuiApp(registry, config)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: _connected(app, guest.name), what="connected")
        await pilot.press("2")
        pane = app.screen.query_one(ConsolePane)
        await until(pilot, lambda: pane.active_view() is not None, what="console tab")
        await pilot.press("enter")
        view = pane.active_view()
        assert app.focused is view
        await pilot.press(*"hello tui", "enter")
        await until(pilot, lambda: "hello tui" in widget_text(view), what="echo on screen")
        # Ctrl+] leaves the console; keys are the app's again
        await pilot.press("ctrl+right_square_bracket")
        await until(pilot, lambda: app.focused is not view, what="left console")


async def test_pause_shows_stop_in_events(guest, registry, config):
    app = EmutuiApp(registry, config)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: _connected(app, guest.name), what="connected")
        await pilot.press("1", "p")
        await until(
            pilot,
            lambda: app.links[guest.name].status.state is InstanceState.PAUSED,
            what="paused state",
        )
        await pilot.press("3")
        events = app.screen.query_one(EventsPane)
        await until(pilot, lambda: "STOP" in events.visible_names(), what="STOP event")
        await until(pilot, lambda: "STOP" in widget_text(events.event_list), what="STOP on screen")
        await pilot.press("1", "u")
        await until(pilot, lambda: "RESUME" in events.visible_names(), what="RESUME event")
    # A second TUI shows them from the journal (events.jsonl) before anything new happens.
    again = EmutuiApp(registry, config)
    async with again.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        events = again.screen.query_one(EventsPane)
        await until(
            pilot, lambda: events.visible_names()[-2:] == ["STOP", "RESUME"], what="history"
        )


async def test_props_tree_reaches_edu0(guest, registry, config):
    app = EmutuiApp(registry, config)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: _connected(app, guest.name), what="connected")
        await pilot.press("4")
        props = app.screen.query_one(PropsPane)
        worker = props.jump("/machine/peripheral/edu0.type")
        await worker.wait()
        node = worker.result
        assert node is not None and node.data.path == "/machine/peripheral/edu0"
        await until(pilot, lambda: node.data.has_value, what="value of edu0.type")
        assert node.data.value == "edu"
        assert "edu0" in str(props.query_one("#prop-detail").render())


async def test_memory_pane_reads_edu_bar0(guest, registry, config):
    app = EmutuiApp(registry, config)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: _connected(app, guest.name), what="connected")
        await pilot.press("5")
        mem = app.screen.query_one(MemoryPane)
        await until(pilot, lambda: any(r.name == "edu0.bar0" for r in mem.regions), what="regions")
        mem.select_region("edu0.bar0")
        hv = app.screen.query_one(HexView)
        await until(pilot, lambda: hv.mem_region is not None, what="region selected")
        assert hv.word_size == 4  # MMIO: whole 32-bit registers
        hv.word_size = 1
        await hv.wait_loaded()
        await pilot.pause()
        assert hv.row_text(0).startswith("00000000  ed 00 00 01")
        # goto with a bad offset says why; a good one moves the cursor
        await pilot.press("g")
        await pilot.press("ctrl+a", *"0xzz", "enter")
        err = app.screen.query_one("#prompt-error")
        assert "not a number" in str(err.render())
        await pilot.press("escape")


async def test_killed_instance_turns_dead_others_keep_working(guest, registry, config):
    other = await start_target(config, registry, "plain", "other", False)
    app = EmutuiApp(registry, config)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(
            pilot,
            lambda: _connected(app, guest.name) and _connected(app, "other"),
            what="both connected",
        )
        os.kill(guest.pid, signal.SIGKILL)
        await until(
            pilot,
            lambda: app.links[guest.name].status.state is InstanceState.DEAD,
            what="dead",
        )
        link = app.links["other"]
        assert link.status.state is InstanceState.RUNNING
        await link.require().pause()
        await until(pilot, lambda: link.status.state is InstanceState.PAUSED, what="other paused")
        table = app.screen.query_one("#instances")
        assert "dead" in str(table.get_cell(guest.name, "state"))
    assert other.alive()


async def test_command_line_completes_with_the_shell_engine(guest, registry, config):
    from emutui.tui.widgets.events import REPLY, EngineSuggester

    app = EmutuiApp(registry, config)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: _connected(app, guest.name), what="connected")
        events = app.screen.query_one(EventsPane)
        await until(pilot, lambda: events.link is not None, what="events pane on the guest")
        await pilot.press("colon")
        cmd = app.screen.query_one("#ev-cmd")
        await until(pilot, lambda: isinstance(cmd.suggester, EngineSuggester), what="engine")
        await pilot.press(*"query-sta")
        await until(pilot, lambda: cmd._suggestion == "query-status", what="completion")
        await pilot.press("right", "enter")
        await until(pilot, lambda: REPLY in events.visible_names(), what="reply")
        assert '"running"' in events.detail_text()


async def test_enter_on_an_instance_opens_its_console(guest, registry, config):
    app = EmutuiApp(registry, config)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: _connected(app, guest.name), what="connected")
        await pilot.press("1", "enter")
        pane = app.screen.query_one(ConsolePane)
        await until(
            pilot,
            lambda: app.focused is not None and app.focused is pane.active_view(),
            what="console focused",
        )
        await pilot.press(*"via enter", "enter")
        view = pane.active_view()
        await until(pilot, lambda: "via enter" in widget_text(view), what="echo on screen")


async def test_console_search_and_copy_after_leaving(guest, registry, config):
    app = EmutuiApp(registry, config)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: _connected(app, guest.name), what="connected")
        await pilot.press("1", "enter")
        pane = app.screen.query_one(ConsolePane)
        await until(pilot, lambda: app.focused is pane.active_view(), what="console focused")
        view = pane.active_view()
        await pilot.press(*"needle42", "enter")
        await until(pilot, lambda: "needle42" in widget_text(view), what="echo")
        await pilot.press("ctrl+right_square_bracket")
        await until(pilot, lambda: app.focused is not view, what="left console")
        # "/" searches the scrollback while the console is not focused
        await pilot.press("slash")
        await until(pilot, lambda: app.screen.query("#prompt-input"), what="search prompt")
        await pilot.press(*"needle42", "enter")
        await until(pilot, lambda: view.match is not None, what="match highlighted")
        await pilot.press("c")
        await until(pilot, lambda: "needle42" in (app.clipboard or ""), what="copied")


async def test_hmp_text_reply_is_shown_as_lines(guest, registry, config):
    """`:!info registers` answers text: each register line is a row of its own."""
    from emutui.tui.widgets.events import REPLY

    app = EmutuiApp(registry, config)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: _connected(app, guest.name), what="connected")
        events = app.screen.query_one(EventsPane)
        await until(pilot, lambda: events.link is not None, what="events pane on the guest")
        await pilot.press("3", "colon", *"!info registers", "enter")
        await until(pilot, lambda: REPLY in events.visible_names(), what="reply")
        await pilot.pause()
        lst = events.event_list
        rows = [lst.row_text(r) for r in range(len(lst.rows))]
        assert not any("\\r\\n" in r for r in rows)
        assert sum(r.strip().startswith(("EAX=", "ESI=", "EIP=")) for r in rows) == 3
        detail = events.detail_text()
        assert "\nEAX=" in detail and "\\r\\n" not in detail


async def test_edit_without_qtest_says_qtest(registry, config):
    """`e` on RAM of a target without qtest = true: the CLI's message, nothing else."""
    from emutui.control import stop_instance

    inst = await start_target(config, registry, "plain", None, False)
    try:
        app = EmutuiApp(registry, config)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: _connected(app, inst.name), what="connected")
            table = app.screen.query_one("#instances")
            table.move_cursor(row=table.get_row_index(inst.name))
            await until(pilot, lambda: app.screen.current.name == inst.name)
            await pilot.press("5")
            mem = app.screen.query_one(MemoryPane)
            await until(pilot, lambda: any(r.name == "ram" for r in mem.regions), what="regions")
            mem.select_region("ram")
            hv = app.screen.query_one(HexView)
            await until(pilot, lambda: hv.mem_region is not None and hv.mem_region.name == "ram")
            hv.focus()
            await pilot.press("e")
            msgs = [n.message for n in app._notifications]
            assert any("qtest = true" in m for m in msgs), msgs
            assert not any("read-only" in m for m in msgs)
    finally:
        await stop_instance(registry, inst)
