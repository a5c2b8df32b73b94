"""ConsoleView through Textual's Pilot: a real QEMU guest, and a scripted stream.

No wall-clock thresholds: waits poll for a condition with a generous timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import events
from textual.app import App, ComposeResult

from emutui.control import make_connector
from emutui.core.errors import BusyError
from emutui.core.instance import Instance
from emutui.tui.widgets.console import ConsoleView, drop_overlap, key_to_bytes
from tests.conftest import needs_qemu


class ConsoleApp(App[None]):
    """The smallest host: one ConsoleView, focused. ^P must reach the guest, so the
    command palette (a priority binding on ctrl+p) is refused while it has focus."""

    def __init__(self, view: ConsoleView) -> None:
        super().__init__()
        self.view = view
        self.left = 0

    def compose(self) -> ComposeResult:
        yield self.view

    def on_mount(self) -> None:
        self.view.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action == "command_palette" and isinstance(self.focused, ConsoleView))

    def on_console_view_leave(self, message: ConsoleView.Leave) -> None:
        self.left += 1


def rendered(view: ConsoleView) -> list[str]:
    """What the widget paints now, line by line (text of its Strips)."""
    return ["".join(seg.text for seg in view.render_line(y)) for y in range(view.size.height)]


async def wait_until(pilot: Any, cond: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.02)


# -- against a real guest ----------------------------------------------------------------


@needs_qemu
async def test_typing_shows_the_guests_echo(guest: Instance) -> None:
    conn = make_connector(guest, aux=False)
    await conn.connect()
    try:
        view = ConsoleView(guest, "com1", conn, id="con")
        app = ConsoleApp(view)
        async with app.run_test(size=(80, 12)) as pilot:
            await wait_until(pilot, lambda: view.state == "ATTACHED")
            # The banner was printed before we attached: it comes from the serial log.
            await wait_until(pilot, lambda: any("ready (COM1)" in ln for ln in rendered(view)))
            await pilot.press(*"hello", "enter")
            await wait_until(pilot, lambda: any(ln.rstrip() == "hello" for ln in rendered(view)))
            # ^P is the guest's ping: it answers pong, so the key reached it.
            await pilot.press("ctrl+p")
            await wait_until(pilot, lambda: any("pong" in ln for ln in rendered(view)))
            # Push the banner off the screen: it must be in the scrollback and searchable.
            for _ in range(view.size.height + 2):
                await pilot.press("enter")
            await wait_until(
                pilot,
                lambda: any("ready (COM1)" in h[0] for h in view.terminal.screen.history),
            )
            assert view.search("ready (COM1)")
            assert view.match is not None
            assert view.match[0] < len(view.terminal.screen.history)
            await pilot.pause()
            assert any("ready (COM1)" in ln for ln in rendered(view))
            view.scroll_to_live()
            # Ctrl+] leaves: the console loses focus and the byte is not sent.
            await pilot.press("ctrl+right_square_bracket")
            await wait_until(pilot, lambda: app.left == 1)
            assert not view.has_focus
    finally:
        await conn.close()


@needs_qemu
async def test_another_client_on_the_channel_does_not_block_the_console(guest: Instance) -> None:
    """The serial hub fans a channel out to every client: `emutui term` (here a raw
    socket) and the console both see the guest, and both can type."""
    conn = make_connector(guest, aux=False)
    await conn.connect()
    other = await conn.serial("com1")
    try:
        view = ConsoleView(guest, "com1", conn)
        app = ConsoleApp(view)
        async with app.run_test(size=(80, 12)) as pilot:
            await wait_until(pilot, lambda: view.state == "ATTACHED")
            await wait_until(pilot, lambda: any("ready (COM1)" in ln for ln in rendered(view)))
            await other.write(b"from-other\r")
            await wait_until(pilot, lambda: any("from-other" in ln for ln in rendered(view)))
            await pilot.press(*"mine", "enter")
            await wait_until(pilot, lambda: any(ln.rstrip() == "mine" for ln in rendered(view)))
            seen = b""
            while b"mine" not in seen:
                seen += await asyncio.wait_for(other.read(4096), 10)
    finally:
        await other.close()
        await conn.close()


class BusyConnector:
    async def serial(self, channel: str) -> object:
        raise BusyError(f"fake: serial {channel} is held by another client")


class GoneConnector:
    async def serial(self, channel: str) -> object:
        from emutui.core.errors import DisconnectedError

        raise DisconnectedError("serial socket /x/com1.sock does not exist")


async def test_busy_or_gone_channel_says_so_and_still_shows_history(tmp_path: Path) -> None:
    for connector, state, text in (
        (BusyConnector(), "BUSY", "serial com1 is held by another client"),
        (GoneConnector(), "STOPPED", "instance stopped"),
    ):
        inst = fake_instance(tmp_path, b"history line\r\n")
        view = ConsoleView(inst, "com1", connector)  # type: ignore[arg-type]
        app = ConsoleApp(view)
        async with app.run_test(size=(80, 12)) as pilot:
            await wait_until(pilot, lambda: any(text in ln for ln in rendered(view)))  # noqa: B023
            assert view.state == state
            assert any("history line" in ln for ln in rendered(view))


def test_log_tail_continues_into_the_previous_generation(tmp_path: Path) -> None:
    from emutui.tui.widgets.console import _read_tail

    log = tmp_path / "serial-com1.log"
    (tmp_path / "serial-com1.log.1").write_bytes(b"A" * 100 + b"older\n")
    log.write_bytes(b"newer\n")
    data, end = _read_tail(log, 20)
    assert data == b"A" * 8 + b"older\n" + b"newer\n"
    assert end == 6


# -- against a scripted stream -------------------------------------------------------------


class FakeStream:
    def __init__(self) -> None:
        self.incoming: asyncio.Queue[bytes] = asyncio.Queue()
        self.sent = bytearray()
        self.closed = False

    async def read(self, n: int = 65536) -> bytes:
        return await self.incoming.get()

    async def write(self, data: bytes) -> None:
        self.sent += data

    async def close(self) -> None:
        self.closed = True


class FakeConnector:
    def __init__(self, stream: FakeStream) -> None:
        self.stream = stream

    async def serial(self, channel: str) -> FakeStream:
        return self.stream


def fake_instance(tmp_path: Path, log: bytes) -> Instance:
    inst = Instance(name="fake", wd=tmp_path, handles=None)
    inst.serial_log("com1").write_bytes(log)
    return inst


async def test_keys_paste_and_leave_with_a_scripted_guest(tmp_path: Path) -> None:
    stream = FakeStream()
    inst = fake_instance(tmp_path, b"old boot line\r\n")
    view = ConsoleView(inst, "com1", FakeConnector(stream))  # type: ignore[arg-type]
    app = ConsoleApp(view)
    async with app.run_test(size=(60, 10)) as pilot:
        await wait_until(pilot, lambda: view.state == "ATTACHED")
        assert any("old boot line" in ln for ln in rendered(view))
        await pilot.press("a", "escape", "ctrl+c", "up", "enter", "backspace", "tab", "f5")
        await wait_until(pilot, lambda: stream.sent.endswith(b"\x1b[15~"))
        assert bytes(stream.sent) == b"a\x1b\x03\x1b[A\r\x7f\t\x1b[15~"
        view.post_message(events.Paste("x\ny"))
        await wait_until(pilot, lambda: stream.sent.endswith(b"x\ry"))
        # Colours and cursor movement render as a terminal would.
        stream.incoming.put_nowait(b"\x1b[2J\x1b[H\x1b[1;31mRED\x1b[0m \x1b[5;3Hat53")
        await wait_until(pilot, lambda: rendered(view)[4].startswith("  at53"))
        assert rendered(view)[0].startswith("RED ")
        reds = [s for s in view.render_line(0) if s.text.startswith("RED")]
        assert reds and reds[0].style is not None and reds[0].style.bold
        # A title or clipboard write is dropped, never shown or forwarded.
        stream.incoming.put_nowait(b"\x1b]0;pwned\x07\x1b]52;c;aGk=\x1b\\ok")
        await wait_until(pilot, lambda: "ok" in rendered(view)[4])
        assert not any("pwned" in ln or "aGk" in ln for ln in rendered(view))
        # Copy goes out through Textual (emutui's own OSC 52), with what is on screen.
        copied = view.copy_text()
        assert app.clipboard == copied
        assert "RED" in copied and "at53ok" in copied
        sent_before = len(stream.sent)
        await pilot.press("ctrl+right_square_bracket")
        await wait_until(pilot, lambda: app.left == 1)
        assert len(stream.sent) == sent_before
        # End of stream: the console says the instance stopped.
        stream.incoming.put_nowait(b"")
        await wait_until(pilot, lambda: view.state == "STOPPED")
        await wait_until(pilot, lambda: any("instance stopped" in ln for ln in rendered(view)))


async def test_log_only_console_without_connector(tmp_path: Path) -> None:
    inst = fake_instance(tmp_path, b"".join(b"line %d\r\n" % i for i in range(100)))
    view = ConsoleView(inst, "com1", None, scrollback=50)
    app = ConsoleApp(view)
    async with app.run_test(size=(40, 10)) as pilot:
        await wait_until(pilot, lambda: any("line 99" in ln for ln in rendered(view)))
        assert len(view.terminal.screen.history) == 50  # bounded
        assert view.search("line 60")
        assert not view.search("line 5\x00")


def test_key_mapping() -> None:
    assert key_to_bytes("enter", "\r") == b"\r"
    assert key_to_bytes("up", None, app_cursor=True) == b"\x1bOA"
    assert key_to_bytes("ctrl+up", None) == b"\x1b[1;5A"
    assert key_to_bytes("f1", None) == b"\x1bOP"
    assert key_to_bytes("shift+f5", None) == b"\x1b[15;2~"
    assert key_to_bytes("ctrl+f", "\x06") == b"\x06"
    assert key_to_bytes("ctrl+a", None) == b"\x01"
    assert key_to_bytes("alt+x", "x") == b"\x1bx"
    assert key_to_bytes("é", "é") == "é".encode()


async def test_scrollback_view_keeps_its_place_while_output_continues(tmp_path: Path) -> None:
    stream = FakeStream()
    inst = fake_instance(tmp_path, b"")
    view = ConsoleView(inst, "com1", FakeConnector(stream), scrollback=500)  # type: ignore[arg-type]
    app = ConsoleApp(view)
    async with app.run_test(size=(40, 10)) as pilot:
        await wait_until(pilot, lambda: view.state == "ATTACHED")
        stream.incoming.put_nowait(b"".join(b"out %d\r\n" % i for i in range(300)))
        await wait_until(pilot, lambda: any("out 299" in ln for ln in rendered(view)))
        # While following, the view shows the tail.
        assert rendered(view)[-2].startswith("out 299")
        await pilot.press("shift+pageup")
        await wait_until(pilot, lambda: not any("out 299" in ln for ln in rendered(view)))
        shown = rendered(view)
        # More output (enough to drop lines off the front of the scrollback) does not
        # move what the user is reading.
        stream.incoming.put_nowait(b"".join(b"more %d\r\n" % i for i in range(300)))
        await wait_until(pilot, lambda: view.terminal.screen.history_pushed > 500)
        await pilot.pause(0.6)
        assert rendered(view) == shown
        # A typed key goes back to the live tail.
        await pilot.press("x")
        await wait_until(pilot, lambda: any("more 299" in ln for ln in rendered(view)))
        assert stream.sent.endswith(b"x")


def test_drop_overlap_between_log_tail_and_socket() -> None:
    log_gap = b"".join(b"flood %08d 0123456789\r\n" % i for i in range(1000))
    # The socket connected in the middle of line 400: its first bytes repeat the log's.
    cut = log_gap.index(b"flood 00000400") + 7
    sock = log_gap[cut:] + b"new bytes"
    assert drop_overlap(log_gap, sock) == b"new bytes"
    assert drop_overlap(log_gap, b"unrelated") == b"unrelated"
    assert drop_overlap(b"abc", b"c-then") == b"-then"
    assert drop_overlap(b"", b"x") == b"x"
