"""Alt+key in one read reaches the guest as the terminal sent it: ESC and the key's bytes.

A terminal (xterm with metaSendsEscape, tmux, screen, every multiplexer) sends Alt+1 as
``ESC 1`` in one write. Textual 8.2 reads ``ESC 1`` as "¡" (a WezTerm-on-macOS mapping),
drops the Alt of ``ESC !``, and renames ``ESC f`` to Ctrl+Right; a console then sent
``¡`` or ``!`` or ``ESC [1;5C`` to the guest. The bytes go through emutui's parser (as
the driver's input thread feeds it) and into a ConsoleView on a scripted stream.
"""

from __future__ import annotations

from pathlib import Path

from textual import events

from emutui.tui.keyinput import EscapeTimeParser
from emutui.tui.widgets.console import ConsoleView
from tests.tui.test_console import ConsoleApp, FakeConnector, FakeStream, fake_instance, wait_until


def read(parser: EscapeTimeParser, data: str, clock: list[float]) -> list[events.Key]:
    """The keys of one read, including those reported once the escape time has passed."""
    out = [e for e in parser.feed(data) if isinstance(e, events.Key)]
    clock[0] += 1.0
    return out + [e for e in parser.tick() if isinstance(e, events.Key)]


# One write each, as a terminal sends Alt+key: digits, letters, shifted letters,
# punctuation (shifted or not), space, and the ones Textual renames.
ALT_READS = [
    "\x1b1",
    "\x1b4",
    "\x1b0",
    "\x1ba",
    "\x1bA",
    "\x1b!",
    "\x1b-",
    "\x1b=",
    "\x1b/",
    "\x1b~",
    "\x1b.",
    "\x1b ",
    "\x1bf",
    "\x1bb",
    "\x1b\x7f",
]


def test_the_parser_reports_alt_printable_as_alt(clock: list[float]) -> None:
    p = EscapeTimeParser(0.005)
    got = {data: [(k.key, k.character) for k in read(p, data, clock)] for data in ALT_READS[:12]}
    assert got == {
        "\x1b1": [("alt+1", "1")],
        "\x1b4": [("alt+4", "4")],
        "\x1b0": [("alt+0", "0")],
        "\x1ba": [("alt+a", "a")],
        "\x1bA": [("alt+shift+a", "A")],
        "\x1b!": [("alt+exclamation_mark", "!")],
        "\x1b-": [("alt+minus", "-")],
        "\x1b=": [("alt+equals_sign", "=")],
        "\x1b/": [("alt+slash", "/")],
        "\x1b~": [("alt+tilde", "~")],
        "\x1b.": [("alt+full_stop", ".")],
        "\x1b ": [("alt+space", " ")],
    }
    # Textual's names stay where text fields rely on them (word moves, Option+arrows on
    # macOS), with the bytes the terminal sent kept in the character.
    assert [(k.key, k.character) for k in read(p, "\x1bf", clock)] == [("ctrl+right", "\x1bf")]
    # A cursor key and a plain digit are untouched.
    assert [k.key for k in read(p, "\x1b[A1!", clock)] == ["up", "1", "exclamation_mark"]


async def test_alt_keys_reach_the_guest_as_esc_and_the_key(
    tmp_path: Path, clock: list[float]
) -> None:
    stream = FakeStream()
    view = ConsoleView(fake_instance(tmp_path, b""), "com1", FakeConnector(stream))  # type: ignore[arg-type]
    app = ConsoleApp(view)
    parser = EscapeTimeParser(0.005)
    async with app.run_test(size=(60, 10)) as pilot:
        await wait_until(pilot, lambda: view.state == "ATTACHED")
        want = b""
        for data in ALT_READS:
            for key in read(parser, data, clock):
                app.post_message(key)  # as the driver's input thread delivers them
            want += data.encode()
            n = len(want)
            await wait_until(pilot, lambda: len(stream.sent) >= n)  # noqa: B023 (awaited here)
        assert bytes(stream.sent) == want
        assert app.left == 0
