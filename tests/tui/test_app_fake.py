"""The TUI's behaviour on the fake lab (no QEMU): keys, dialogs, themes, palette, panes."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import TabbedContent

from emutui.core.model import InstanceState
from emutui.tui.screens.dialogs import ConfirmScreen, PromptScreen
from emutui.tui.screens.help import HelpScreen
from emutui.tui.widgets.events import REPLY, EventsPane
from emutui.tui.widgets.hexview import HexView, parse_offset
from emutui.tui.widgets.memory import MemoryPane, parse_hex_bytes
from emutui.tui.widgets.props import PropsPane
from tests.tui.helpers import until, widget_text
from tests.tui.snapshot_app import build_app


async def started(pilot) -> None:  # type: ignore[no-untyped-def]
    app = pilot.app
    await until(pilot, lambda: len(app.links) == 4 and all(lk.conn for lk in app.links.values()))
    await until(pilot, lambda: app.screen.current is not None)
    # the note is redrawn when the Connected message is handled, a moment after conn is set
    await until(pilot, lambda: "connecting" not in str(app.screen.query_one("#inst-note").render()))


def test_parse_offset_messages() -> None:
    assert parse_offset("0x10", 0x100) == 16
    assert parse_offset("1fh", 0x100) == 31
    assert parse_offset("255", 0x100) == 255
    for bad, msg in (("", "type an offset"), ("zz", "not a number"), ("0x100", "outside")):
        try:
            parse_offset(bad, 0x100)
        except ValueError as e:
            assert msg in str(e)
        else:
            raise AssertionError(bad)
    assert parse_hex_bytes("de ad be ef") == b"\xde\xad\xbe\xef"


async def test_theme_cycles_at_run_time(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        assert app.emutui_theme == "dark" and app.has_class("theme-dark")
        await pilot.press("t")
        assert app.emutui_theme == "light" and app.theme == "textual-light"
        assert app.has_class("theme-light") and not app.has_class("theme-dark")
        await pilot.press("t")
        assert app.emutui_theme == "high-contrast" and app.theme == "emutui-hc"


async def test_help_and_palette_commands(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for t in (
            "Start target",
            "Stop instance",
            "Reset instance",
            "Pause instance",
            "Resume instance",
            "Filter events",
            "Monitor command",
            "Go to memory offset",
            "Jump to property path",
            "Theme: light",
            "Help",
        ):
            assert t in titles


async def test_destructive_actions_ask_first(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        await pilot.press("1", "r")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("r", "y")
        store = app.screen.query_one(EventsPane).store("pc")
        await until(pilot, lambda: sum(e.name == "RESET" for e in store) == 3, what="RESET")
        await pilot.press("p")
        await until(pilot, lambda: app.links["pc"].status.state is InstanceState.PAUSED)


async def test_tabs_follow_capabilities_and_simulated_badge(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        table = app.screen.query_one("#instances")
        # the tags go with the backend, never read as part of the name
        assert str(table.get_cell("v80", "name")) == "v80"
        assert str(table.get_cell("v80", "backend")) == "vrtd [sim,daemon]"
        assert str(table.get_cell("board", "backend")) == "renode [sim]"
        note = str(app.screen.query_one("#inst-note").render())
        assert "running running" not in note and "running" in note
        # v80 has no serial channels: the console pane says so
        await pilot.press("1")
        table.move_cursor(row=3)
        await until(pilot, lambda: app.screen.current.name == "v80")
        tabs = app.screen.query_one("#panes", TabbedContent)
        # a card with no serial channel has no console tab, and 2 / Enter say so
        await until(pilot, lambda: not tabs.get_tab("console").display, what="console hidden")
        assert tabs.active != "console" and tabs.get_tab(tabs.active).display
        await pilot.press("2")
        assert tabs.active != "console"
        # only what the backend can do is offered: no pause, resume or reset for vrtd
        await pilot.press("1")
        keys = {b.binding.key for b in app.screen.active_bindings.values() if b.enabled}
        footer = {b.binding.description for b in app.screen.active_bindings.values()}
        assert not {"p", "u", "r"} & keys and "x" in keys and "n" in keys
        assert not {"Pause", "Resume", "Reset"} & {
            b.binding.description
            for b in app.screen.active_bindings.values()
            if app.screen.check_action(b.binding.action.removeprefix("screen."), ())
        }
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert "Pause instance" not in titles and "Stop instance" in titles
        assert footer
        # and a QEMU guest gets them back
        table.move_cursor(row=0)
        await until(pilot, lambda: app.screen.current.name == "pc")
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Pause instance", "Reset instance"} <= titles
        await until(pilot, lambda: tabs.get_tab("console").display)


async def test_events_filter_pause_and_command_line(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        await pilot.press("3")
        pane = app.screen.query_one(EventsPane)
        await until(pilot, lambda: len(pane.event_list.items) == 6)
        await pilot.press("slash", *"reset")
        await until(pilot, lambda: pane.visible_names() == ["RESET", "RESET"])
        await pilot.press("ctrl+a", "ctrl+k", *"tray-open", "enter")
        await until(pilot, lambda: pane.visible_names() == ["DEVICE_TRAY_MOVED"])
        await pilot.press("slash", "ctrl+a", "ctrl+k", "enter")
        await until(pilot, lambda: len(pane.event_list.items) == 6)
        # pause: new events wait; resume shows them
        await pilot.press("space")
        await app.links["pc"].require().pause()
        await until(pilot, lambda: pane.pending == 1)
        assert "STOP" not in pane.visible_names()[-1:]
        await pilot.press("space")
        assert pane.visible_names()[-1] == "STOP"
        # command line with completion from the monitor's command list
        await pilot.press("colon", *"query-st")
        cmd = app.screen.query_one("#ev-cmd")
        await until(pilot, lambda: cmd._suggestion == "query-status")
        await pilot.press("right", "enter")
        await until(pilot, lambda: REPLY in pane.visible_names())
        assert '"running"' in pane.detail_text()
        await pilot.press(*"nonsense", "enter")
        await until(pilot, lambda: "⇐ error" in pane.visible_names())
        await pilot.press("up", "up")
        assert cmd.value == "query-status"


async def test_props_edit_asks_then_sets(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        await pilot.press("4")
        props = app.screen.query_one(PropsPane)
        worker = props.jump("/machine/peripheral/edu0.addr")
        await worker.wait()
        node = worker.result
        await until(pilot, lambda: node.data.has_value)
        await pilot.press("e")
        assert isinstance(app.screen, PromptScreen)
        await pilot.press("ctrl+a", "ctrl+k", *"24", "enter")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await until(pilot, lambda: node.data.value == 24)
        # an unreadable property is shown as such, not as an error
        worker = props.jump("/machine.legacy-memory")
        await worker.wait()
        await until(pilot, lambda: worker.result.data.unreadable != "")
        assert "unreadable" in str(worker.result.label)


async def test_memory_goto_words_follow_and_edit(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        await pilot.press("5")
        mem = app.screen.query_one(MemoryPane)
        await until(pilot, lambda: len(mem.regions) == 2)
        mem.select_region("ram")
        hv = app.screen.query_one(HexView)
        await until(pilot, lambda: hv.mem_region is not None and hv.mem_region.name == "ram")
        hv.focus()
        await hv.wait_loaded()
        assert widget_text(hv).startswith("00000000  ed 00 00 01")
        conn = app.fake_connectors["pc"]  # type: ignore[attr-defined]
        reads = conn.reads
        await pilot.press("pagedown")
        await hv.wait_loaded()
        # only what is on screen is read: a page-down reads at most one more page
        assert conn.reads - reads <= 1
        await pilot.press("g", *"0x7fffff0", "enter")
        await hv.wait_loaded()
        assert hv.cursor == 0x7FFFFF0
        await pilot.press("g", "ctrl+a", "ctrl+k", *"0x8000000", "enter")
        assert "outside the region" in str(app.screen.query_one("#prompt-error").render())
        await pilot.press("escape")
        await pilot.press("w")
        assert hv.word_size == 2
        await pilot.press("f")
        assert hv.follow
        await pilot.press("f")
        await pilot.press("e", *"de ad", "enter")
        off = hv.cursor - hv.cursor % 2
        assert conn.written[("ram", off)] == b"\xde\xad"
        await until(pilot, lambda: hv.cursor // hv.page_size in hv._pages, what="re-read")
        page = hv._pages[hv.cursor // hv.page_size]
        assert page[off % hv.page_size : off % hv.page_size + 2] == b"\xde\xad"


async def test_follow_highlights_changed_bytes(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        await pilot.press("5")
        mem = app.screen.query_one(MemoryPane)
        await until(pilot, lambda: len(mem.regions) == 2)
        mem.select_region("ram")
        hv = app.screen.query_one(HexView)
        await until(pilot, lambda: hv.mem_region is not None and hv.mem_region.name == "ram")
        await hv.wait_loaded()
        hv.set_follow(True)
        conn = app.fake_connectors["pc"]  # type: ignore[attr-defined]
        conn.written[("ram", 0x21)] = b"\x99"  # the device changes a byte behind our back
        await until(pilot, lambda: 0x21 in hv._changed, what="change seen by follow")
        row = hv.render_line(2)  # offset 0x20
        styles = [seg.style for seg in row if seg.text.strip() == "99"]
        assert styles and styles[0].bgcolor is not None  # highlighted
        hv.set_follow(False)


async def test_text_reply_shows_as_lines(tmp_path: Path) -> None:
    """`:!info registers` (QEMU) and `:peripherals` (Renode) answer text: one row per line,
    in the list and in the detail, never one escaped JSON string."""
    app = build_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        await pilot.press("3", "colon", *"!info registers", "enter")
        pane = app.screen.query_one(EventsPane)
        await until(pilot, lambda: REPLY in pane.visible_names(), what="reply")
        lst = pane.event_list
        await pilot.pause()
        rows = [lst.row_text(r) for r in range(len(lst.rows))]
        text = "\n".join(rows)
        assert "\\r\\n" not in text and '"return"' not in text
        assert any(r.strip() == "CPU#0" for r in rows)
        eax = [r for r in rows if "EAX=00000000" in r]
        assert len(eax) == 1 and "EIP=" not in eax[0]
        assert any(r.strip().startswith("EIP=0000fff0") for r in rows)
        detail = pane.detail_text()
        assert "\\r\\n" not in detail and "\nEAX=00000000 EBX" in detail
        assert "!info registers" in detail
        assert len(pane.visible_names()) == 7  # still one event, however many lines
        assert not lst.show_horizontal_scrollbar  # rows are cut, never scrolled sideways


async def test_command_line_keeps_keys_typed_right_after_enter(tmp_path: Path) -> None:
    """Keys that arrive right behind Enter (one read from the terminal) start the next
    line: neither joined to the command sent nor wiped when the reply comes."""
    from textual import events

    app = build_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        await pilot.press("3", "colon", *"query-status")
        cmd = app.screen.query_one("#ev-cmd")
        sent: list[str] = []
        conn = app.fake_connectors["pc"]  # type: ignore[attr-defined]
        real = conn.command

        async def spy(line: str):  # type: ignore[no-untyped-def]
            sent.append(line)
            return await real(line)

        conn.command = spy  # type: ignore[method-assign]
        # all in one go, as a terminal read delivers them: nothing runs in between
        app.post_message(events.Key("enter", "\r"))
        for ch in "abcdef":
            app.post_message(events.Key(ch, ch))
        pane = app.screen.query_one(EventsPane)
        await until(pilot, lambda: REPLY in pane.visible_names(), what="reply")
        await pilot.pause(0.2)
        assert sent == ["query-status"]
        assert cmd.value == "abcdef"


async def test_events_filter_regex_count_and_escape(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        await pilot.press("3")
        pane = app.screen.query_one(EventsPane)
        await until(pilot, lambda: len(pane.event_list.items) == 6)
        await pilot.press("slash", *"stop|resume")
        await until(pilot, lambda: pane.visible_names() == ["RESUME", "STOP", "RESUME"])
        await pilot.press("ctrl+a", "ctrl+k", *"tray")
        await until(pilot, lambda: pane.visible_names() == ["DEVICE_TRAY_MOVED"])
        assert "1 event " in str(pane.query_one("#ev-status").render())
        await pilot.press("enter")  # keeps the filter, back to the list
        assert pane.filter_text == "tray"
        await pilot.press("escape")  # Esc clears it
        await until(pilot, lambda: len(pane.event_list.items) == 6)
        assert pane.filter_text == ""
        await pilot.press("slash", *"reset", "escape")
        await until(pilot, lambda: len(pane.event_list.items) == 6)
        # an invalid regex is matched literally, and says so
        await pilot.press("slash", *"[x")
        await until(pilot, lambda: pane.visible_names() == [])
        assert "literal" in str(pane.query_one("#ev-status").render())
        await pilot.press("escape")
        # the detail shows a readable time, not an epoch float
        await pilot.press("enter")
        assert "2026-" in pane.detail_text() and "1790000000" not in pane.detail_text()


async def test_stop_moves_header_panes_and_keys_with_the_selection(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """After `x` `y` on the selected instance, the highlight, the header, the note, the
    panes and the action keys all name the instance now selected."""
    import emutui.control

    app = build_app(tmp_path)
    insts = app.list_instances()  # the fake lab's list: stopping removes from it

    async def fake_stop(registry, inst):  # type: ignore[no-untyped-def]
        insts[:] = [i for i in insts if i.name != inst.name]

    monkeypatch.setattr(emutui.control, "stop_instance", fake_stop)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        screen = app.screen
        await pilot.press("1")
        table = screen.query_one("#instances")
        table.move_cursor(row=1)
        await until(pilot, lambda: screen.current.name == "q35")
        await pilot.press("x", "y")
        await until(pilot, lambda: "q35" not in app.links, what="q35 gone")
        await until(pilot, lambda: table.selected_name() != "q35" and table.row_count == 3)
        sel = table.selected_name()
        await until(pilot, lambda: screen.current is not None and screen.current.name == sel)
        title = str(screen.query_one("#title").render())
        note = str(screen.query_one("#inst-note").render())
        assert f"▸ {sel}" in title and "q35" not in title
        assert sel in note and "q35" not in note
        events = screen.query_one(EventsPane)
        await until(pilot, lambda: events.link is not None and events.link.name == sel)
        await pilot.press("p")
        await until(pilot, lambda: app.links[sel].status.state is InstanceState.PAUSED)


async def test_memory_edit_number_is_a_word_bytes_stay_bytes(tmp_path: Path) -> None:
    """`e` then 0x12345678 writes the number (reads back 0x12345678 in the word view);
    plain hex digits are bytes in memory order; the dialog says which is which."""
    app = build_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        await pilot.press("5")
        mem = app.screen.query_one(MemoryPane)
        await until(pilot, lambda: len(mem.regions) == 2)
        hv = app.screen.query_one(HexView)
        await until(pilot, lambda: hv.mem_region is not None and hv.mem_region.name == "edu0.bar0")
        hv.focus()
        await hv.wait_loaded()
        hv.goto(8)
        await pilot.press("e")
        assert isinstance(app.screen, PromptScreen)
        title = str(app.screen.query_one(".dialog-text").render())
        assert "number" in title and "32-bit little-endian word" in title and "bytes" in title
        await pilot.press(*"0x12345678", "enter")
        conn = app.fake_connectors["pc"]  # type: ignore[attr-defined]
        await until(pilot, lambda: ("edu0.bar0", 8) in conn.written)
        assert conn.written[("edu0.bar0", 8)] == bytes.fromhex("78563412")
        await until(pilot, lambda: "12345678" in hv.row_text(0), what="word view")
        await pilot.press("e", *"de ad be ef", "enter")
        await until(pilot, lambda: conn.written[("edu0.bar0", 8)] == b"\xde\xad\xbe\xef")


async def test_memory_edit_without_qtest_says_what_the_cli_says(tmp_path: Path) -> None:
    """`e` where the backend cannot write: the connector's reason, one message."""
    app = build_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        conn = app.fake_connectors["pc"]  # type: ignore[attr-defined]
        reason = "pc: memory writes need qtest = true in target 'pc'"
        conn.write_refusal = lambda region: reason  # type: ignore[method-assign]
        await pilot.press("5")
        mem = app.screen.query_one(MemoryPane)
        await until(pilot, lambda: len(mem.regions) == 2)
        hv = app.screen.query_one(HexView)
        await until(pilot, lambda: hv.mem_region is not None)
        hv.focus()
        await pilot.press("e")
        assert not isinstance(app.screen, PromptScreen)
        msgs = [n.message for n in app._notifications]
        assert msgs.count(reason) == 1 and not any("read-only" in m for m in msgs)


async def test_region_picker_has_no_blank_entry_and_a_visible_focus(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        await pilot.press("5")
        mem = app.screen.query_one(MemoryPane)
        await until(pilot, lambda: len(mem.regions) == 2)
        sel = app.screen.query_one("#mem-region")
        sel.focus()
        await pilot.pause()
        assert sel.query_one("SelectCurrent").styles.background.a > 0  # focus shows
        await pilot.press("enter")
        overlay = sel.query_one("SelectOverlay")
        await until(pilot, lambda: overlay.option_count > 0)
        prompts = [str(overlay.get_option_at_index(i).prompt) for i in range(overlay.option_count)]
        assert prompts == ["edu0.bar0  1 MiB", "ram  128 MiB"]  # no blank "region" entry
        hl = overlay.get_component_rich_style("option-list--option-highlighted")
        assert hl.bgcolor is not None
        bg = overlay.styles.background
        assert (hl.bgcolor.triplet.red, hl.bgcolor.triplet.green, hl.bgcolor.triplet.blue) != (
            bg.r,
            bg.g,
            bg.b,
        )


async def test_props_hex_search_and_jump_completion(tmp_path: Path) -> None:
    """Numbers in hex (d: decimal), `/` searches the tree (not the Events tab), `g`
    completes paths, and the help's own example path exists."""
    from emutui.tui.screens.help import HELP

    app = build_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        await pilot.press("4")
        props = app.screen.query_one(PropsPane)
        worker = props.jump("/machine/peripheral/edu0.addr")
        await worker.wait()
        node = worker.result
        assert node is not None and node.data.prop.name == "addr"
        await until(pilot, lambda: node.data.has_value)
        assert "addr  int32 = 0x10" in str(node.label)
        detail = str(app.screen.query_one("#prop-detail").render())
        assert "0x10" in detail and "(16)" in detail
        await pilot.press("d")
        assert "= 16" in str(node.label)
        await pilot.press("d")
        # `/` searches the tree; the Events tab stays hidden
        tabs = app.screen.query_one("#panes", TabbedContent)
        app.screen.query_one("#prop-tree").focus()
        await pilot.press("slash")
        assert tabs.active == "props"
        await pilot.press(*"dma_mask")
        tree = app.screen.query_one("#prop-tree")
        await until(
            pilot,
            lambda: (
                tree.cursor_node is not None
                and tree.cursor_node.data.prop is not None
                and tree.cursor_node.data.prop.name == "dma_mask"
            ),
            what="search hit",
        )
        await pilot.press("escape")
        # g: the help's example path, and completion of a partial one
        assert "`/machine/peripheral/edu0.addr`" in HELP
        assert await props.complete_path("/machine/peri") == ["/machine/peripheral/"]
        assert await props.complete_path("/machine/peripheral/edu0.dm") == [
            "/machine/peripheral/edu0.dma_mask"
        ]
        await pilot.press("g")
        assert isinstance(app.screen, PromptScreen)
        inp = app.screen.query_one("#prompt-input")
        await pilot.press("ctrl+a", "ctrl+k", *"/machine/peripheral/ed")
        await until(pilot, lambda: inp._suggestion == "/machine/peripheral/edu0/")
        await pilot.press("right", *".ty")
        await until(pilot, lambda: inp._suggestion == "/machine/peripheral/edu0/.type")
        await pilot.press("right", "enter")
        await until(
            pilot,
            lambda: (
                tree.cursor_node is not None
                and tree.cursor_node.data.prop is not None
                and tree.cursor_node.data.prop.name == "type"
            ),
        )


async def test_start_dialog_and_restart(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`n`: target, a free name suggested (pc runs: pc-2), paused or not, as the CLI's
    start; `R`: stop and start the same target under the same name."""
    import emutui.control
    from emutui.tui.screens.start import StartScreen
    from tests.tui.fakes import make_instance

    app = build_app(tmp_path)
    insts = app.list_instances()
    calls: list[tuple[str, str | None, bool]] = []

    async def fake_start(cfg, reg, target, name, paused):  # type: ignore[no-untyped-def]
        calls.append((target, name, paused))
        inst = make_instance(tmp_path, name or target, "qemu", target, pid=4000 + len(calls))
        insts[:] = [i for i in insts if i.name != inst.name] + [inst]
        return inst

    async def fake_stop(registry, inst):  # type: ignore[no-untyped-def]
        calls.append(("stop", inst.name, False))
        insts[:] = [i for i in insts if i.name != inst.name]

    monkeypatch.setattr(emutui.control, "start_target", fake_start)
    monkeypatch.setattr(emutui.control, "stop_instance", fake_stop)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        await pilot.press("1", "n")
        assert isinstance(app.screen, StartScreen)
        name = app.screen.query_one("#start-name")
        assert name.value == "pc-2"  # pc is running
        await pilot.press("down")  # q35
        assert name.value == "q35-2"
        await pilot.press("enter")  # on to the name
        await pilot.press("ctrl+a", "ctrl+k", *"pc")
        await pilot.press("enter")  # taken: the dialog says so and stays
        assert isinstance(app.screen, StartScreen)
        assert "already running" in str(app.screen.query_one("#start-error").render())
        await pilot.press("ctrl+a", "ctrl+k", *"lab1")
        app.screen.query_one("#start-paused").value = True
        await pilot.press("enter")
        await until(pilot, lambda: ("q35", "lab1", True) in calls, what="start")
        await until(pilot, lambda: "lab1" in app.links, what="new instance listed")
        await until(pilot, lambda: app.screen.current.name == "lab1", what="selected")
        # restart: asks, then stop + start of the same target and name
        await pilot.press("R")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await until(pilot, lambda: calls[-1] == ("q35", "lab1", False), what="restart")
        assert calls[-2] == ("stop", "lab1", False)
        await until(pilot, lambda: "lab1" in app.links)


async def test_big_reply_detail_is_bounded(tmp_path: Path) -> None:
    """A huge JSON answer (query-qmp-schema) shows its first lines, plainly, and says
    how many more there are: laying out all of it froze the app for seconds."""
    from emutui.core.model import Event
    from emutui.tui.widgets.events import DETAIL_LINES

    app = build_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        await pilot.press("3")
        pane = app.screen.query_one(EventsPane)
        big = [
            {"name": f"cmd-{i}", "meta-type": "command", "arg-type": str(i)} for i in range(4000)
        ]
        ev = Event(REPLY, {"command": "query-qmp-schema", "return": big}, source="pc")
        pane.ingest("pc", [ev])
        await pilot.press("end", "enter")
        await until(pilot, lambda: "query-qmp-schema" in pane.detail_text())
        text = pane.detail_text()
        assert len(text.splitlines()) <= DETAIL_LINES + 2 and "more lines" in text
