"""Issue 15, the console in a new user's hands: Pilot tests on the fake lab."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.style import Style as RichStyle
from textual import events
from textual.color import Color
from textual.filter import Monochrome
from textual.widgets import DataTable

from emutui.core.errors import ConfigError
from emutui.tui.console_settings import console_settings, parse_escape_key
from emutui.tui.widgets.console import ConsoleView
from emutui.tui.widgets.console_pane import ConsolePane
from emutui.tui.widgets.instances import InstanceTable
from tests.tui.helpers import until, widget_text
from tests.tui.snapshot_app import build_app


async def _ready(pilot, name: str = "pc") -> ConsoleView:  # type: ignore[no-untyped-def]
    app = pilot.app
    await until(pilot, lambda: all(link.conn for link in app.links.values()), what="links")
    pane = app.screen.query_one(ConsolePane)
    await until(
        pilot,
        lambda: (
            pane.active_view() is not None
            and pane.link is not None
            and pane.link.name == name
            and pane.active_view().state == "ATTACHED"
        ),
        what="console attached",
    )
    return pane.active_view()


def _sent(app, name: str, channel: str) -> list[bytes]:  # type: ignore[no-untyped-def]
    """Record what the console writes to the fake guest's channel."""
    serial = app.fake_connectors[name].serials[channel]
    sent: list[bytes] = []
    original = serial.write

    async def write(data: bytes) -> None:
        sent.append(data)
        await original(data)

    serial.write = write
    return sent


def _cell_colours(strip, start: int, end: int, filters) -> list[tuple]:  # type: ignore[no-untyped-def]
    for f in filters:
        strip = strip.apply_filter(f, Color(0, 0, 0))
    out = []
    x = 0
    for seg in strip:
        st = seg.style or RichStyle()
        for _ in seg.text:
            if start <= x < end:
                fg, bg = st.color, st.bgcolor
                if st.reverse:
                    fg, bg = bg, fg
                out.append((fg, bg))
            x += 1
    return out


@pytest.mark.parametrize("theme", ["dark", "light", "high-contrast", "no-color"])
async def test_search_match_differs_from_its_background(tmp_path: Path, theme: str) -> None:
    app = build_app(tmp_path, theme="dark" if theme == "no-color" else theme)
    async with app.run_test(size=(80, 24)) as pilot:
        view = await _ready(pilot)
        view.feed(b"booting\r\nsystem ready now\r\nmore\r\n")
        await until(pilot, lambda: "ready" in widget_text(view), what="text")
        assert view.search("ready")
        await pilot.pause(0.2)
        line, start, end = view.match  # type: ignore[misc]
        y = line - view._view_top()
        filters = list(app.get_line_filters()) + ([Monochrome()] if theme == "no-color" else [])
        cells = _cell_colours(view.render_line(y), start, end, filters)
        assert len(cells) == len("ready")
        for fg, bg in cells:
            assert fg is not None and bg is not None
            assert fg.get_truecolor() != bg.get_truecolor(), (theme, fg, bg)


async def test_leaving_takes_effect_for_the_next_key_of_the_same_read(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        view = await _ready(pilot)
        sent = _sent(app, "pc", "com1")
        await pilot.press("2", "enter")
        await until(pilot, lambda: app.focused is view, what="typing")
        # One read from the terminal: Ctrl+] 1 Down, as a paste or a macro sends it.
        for key, char in (("ctrl+right_square_bracket", "\x1d"), ("1", "1"), ("down", None)):
            app.post_message(events.Key(key, char))
        table = app.screen.query_one(InstanceTable)
        await until(pilot, lambda: app.screen.current.name == "q35", what="next instance")
        assert app.focused is table
        await pilot.pause(0.2)
        assert sent == []


async def test_typing_mode_is_unmistakable(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        view = await _ready(pilot)
        pane = app.screen.query_one(ConsolePane)

        def footer_actions() -> set[str]:
            return {b.action for (_n, b, enabled, _t) in app.screen.active_bindings.values()}

        await pilot.press("2")
        await pilot.pause(0.1)
        assert "search" in footer_actions()
        await pilot.press("enter")
        await until(pilot, lambda: app.focused is view, what="typing")
        await pilot.pause(0.1)
        assert "search" not in footer_actions() and "copy" not in footer_actions()
        assert "leave" in footer_actions()
        assert pane.typing and view.has_class("-typing")
        note = str(pane.query_one("#console-note").render())
        assert "TYPING" in note and "Ctrl+]" in note
        await pilot.press("ctrl+right_square_bracket")
        await pilot.pause(0.1)
        assert not pane.typing
        assert "search" in footer_actions()


async def test_switching_instances_shows_the_kept_console(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        view = await _ready(pilot)
        pane = app.screen.query_one(ConsolePane)
        view.feed(b"pc state survives\r\n")
        await pilot.press("1", "down")
        await _ready(pilot, "q35")
        await pilot.press("up")
        await until(pilot, lambda: pane.active_view() is view, what="pc's console again")
        assert pane.builds == 2  # pc and q35, each built once
        assert "pc state survives" in widget_text(view)
        assert pane.kept() == ["q35", "pc"]


async def test_switching_evicts_beyond_the_cache_size(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    app.console_settings = console_settings({"console_cache": 1})
    async with app.run_test(size=(80, 24)) as pilot:
        await _ready(pilot)
        pane = app.screen.query_one(ConsolePane)
        await pilot.press("1", "down")
        await _ready(pilot, "q35")
        assert pane.kept() == ["q35"]


async def test_growing_the_window_brings_the_scrollback_back(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        view = await _ready(pilot)
        view.feed(b"".join(b"boot line %d\r\n" % i for i in range(300)) + b"login: ")
        await until(pilot, lambda: "login:" in widget_text(view), what="prompt")
        await pilot.resize_terminal(200, 50)
        await until(pilot, lambda: view.size.height > 30, what="taller console")
        await pilot.pause(0.3)
        rows = widget_text(view).split("\n")
        assert len(rows) == view.size.height
        assert all(r.strip() for r in rows), rows  # no blank rows: scrollback fills them
        assert rows[-1].startswith("login:")


async def test_configured_escape_key_leaves_and_ctrl_bracket_goes_to_the_guest(
    tmp_path: Path,
) -> None:
    app = build_app(tmp_path)
    app.console_settings = console_settings({"console_escape": "ctrl+a", "scrollback": 50})
    async with app.run_test(size=(80, 24)) as pilot:
        view = await _ready(pilot)
        assert view.terminal.screen.history.maxlen == 50
        sent = _sent(app, "pc", "com1")
        await pilot.press("2", "enter")
        await until(pilot, lambda: app.focused is view, what="typing")
        await pilot.press("ctrl+right_square_bracket", "ctrl+a")
        await until(pilot, lambda: app.focused is not view, what="left")
        assert sent == [b"\x1d"]


def test_console_settings_from_the_config() -> None:
    assert parse_escape_key("ctrl+]") == ("ctrl+right_square_bracket", "Ctrl+]")
    assert parse_escape_key("^A") == ("ctrl+a", "Ctrl+A")
    assert parse_escape_key("ctrl+\\") == ("ctrl+backslash", "Ctrl+\\")
    assert parse_escape_key("F12") == ("f12", "F12")
    s = console_settings({"scrollback": 2000, "escape_time_ms": 8})
    assert (s.scrollback, s.escape_time) == (2000, 0.008)
    for bad in ({"console_escape": "x"}, {"console_escape": 3}, {"scrollback": -1}):
        with pytest.raises(ConfigError):
            console_settings(bad)


async def test_copy_says_where_and_copies_the_whole_scrollback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TMUX", raising=False)
    app = build_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        view = await _ready(pilot)
        view.feed(b"".join(b"line %d\r\n" % i for i in range(200)))
        await until(pilot, lambda: "line 199" in widget_text(view), what="text")
        pane = app.screen.query_one(ConsolePane)
        await pilot.press("2")
        await pilot.pause(0.1)
        await pilot.press("C")
        await until(pilot, lambda: app.clipboard.startswith("line 0"), what="copy")
        assert app.clipboard.count("\n") == 199
        notes = [n.message for n in app._notifications]
        assert any("whole scrollback" in m and "OSC 52" in m for m in notes), notes
        await pilot.press("c")
        await until(pilot, lambda: not app.clipboard.startswith("line 0"), what="screen copy")
        assert pane.active_view() is view


def test_copy_under_tmux_names_the_paste_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    from emutui.tui import clipboard

    calls: list[tuple[str, ...]] = []

    def fake(*args: str, text: str | None = None) -> str | None:
        calls.append(args)
        return "external" if args[0] == "show-options" else ""

    class App:
        is_headless = False
        copied = ""

        def copy_to_clipboard(self, text: str) -> None:
            self.copied = text

    monkeypatch.setenv("TMUX", "/tmp/x,1,0")
    monkeypatch.setattr(clipboard, "_tmux", fake)
    where = clipboard.copy_out(App(), "abc")
    assert "paste buffer" in where and "set-clipboard on" in where and "external" in where
    assert calls[0][0] == "load-buffer"


def test_instance_table_is_a_datatable() -> None:
    assert issubclass(InstanceTable, DataTable)


async def _two_tiles(pilot) -> ConsolePane:  # type: ignore[no-untyped-def]
    """pc's console split: pc/com1 and pc/com2 side by side."""
    await _ready(pilot)
    pane = pilot.app.screen.query_one(ConsolePane)
    await pilot.press("2")
    await pilot.pause(0.2)
    await pilot.press("s")
    await until(pilot, lambda: len(pane.tiles.tiles) == 2, what="two tiles")
    return pane


async def test_tiles_split_move_zoom_and_close(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    async with app.run_test(size=(200, 50)) as pilot:
        pane = await _two_tiles(pilot)
        t1, t2 = pane.tiles.tiles
        assert (t1.channel, t2.channel) == ("com1", "com2")
        assert pane.tiles.styles.grid_size_columns == 2  # wide enough: side by side
        await pilot.press("1", "down")  # q35 goes into the active tile (t2)
        await until(pilot, lambda: t2.link.name == "q35", what="q35 in the active tile")
        await pilot.press("2", "s", "s")
        await until(pilot, lambda: len(pane.tiles.tiles) == 4, what="four tiles")
        assert pane.tiles.styles.grid_size_rows == 2
        names = [f"{t.link.name}/{t.channel}" for t in pane.tiles.tiles]
        assert len({n.split("/")[0] for n in names}) == 2 and names[0] == "pc/com1"
        # Enter types into the active tile; the escape key comes back to the tile.
        active = pane.tiles.active
        await pilot.press("enter")
        await until(pilot, lambda: app.focused is active.view, what="typing in the tile")
        await pilot.press("ctrl+right_square_bracket")
        await until(pilot, lambda: app.focused is active, what="back on the tile")
        await pilot.press("o")
        assert pane.tiles.active is pane.tiles.tiles[0]
        await pilot.press("z")
        await pilot.pause(0.1)
        assert [t.display for t in pane.tiles.tiles] == [True, False, False, False]
        await pilot.press("z", "w", "w", "w")
        await until(pilot, lambda: not pane.tiled, what="back to one console")
        await until(pilot, lambda: pane.active_view() is not None, what="console")


async def test_tiles_stack_when_narrow(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await _ready(pilot)
        pane = app.screen.query_one(ConsolePane)
        await pilot.press("2")
        await pilot.pause(0.2)
        await pilot.press("s")
        await until(pilot, lambda: len(pane.tiles.tiles) == 2, what="two tiles")
        await pilot.pause(0.2)
        assert (pane.tiles.styles.grid_size_columns, pane.tiles.styles.grid_size_rows) == (1, 2)


async def test_keys_right_behind_enter_on_a_tile_go_to_its_guest(tmp_path: Path) -> None:
    """`o Enter ^F` in one read (a macro, fast fingers over SSH): ^F reaches the guest
    of the tile that Enter opened."""
    app = build_app(tmp_path)
    async with app.run_test(size=(200, 50)) as pilot:
        await _two_tiles(pilot)
        await pilot.pause(0.2)
        sent = _sent(app, "pc", "com1")
        for key, char in (("o", "o"), ("enter", "\r"), ("ctrl+f", "\x06")):
            app.post_message(events.Key(key, char))
        await until(pilot, lambda: b"\x06" in b"".join(sent), what="^F at the guest")
        assert b"".join(sent) == b"\x06"
