"""Finding 4 of issue 10: guest and peer bytes never reach the host terminal as controls.

One filter (emutui.core.sanitize) for `ls`, `logs`, `term`, `events` and error
messages; the TUI escapes Rich markup in everything it did not write.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emutui.core.errors import BackendError
from emutui.core.handles import Channel, Handles
from emutui.core.journal import Journal, JournalWriter
from emutui.core.model import Event
from emutui.core.registry import Registry
from emutui.core.sanitize import TerminalSanitizer, display_line, sanitize
from tests.faults.test_security import run_on_pty

# What the issue saw come out: OSC 52 and titles in both C1 encodings, the
# alternate screen, keyboard lock, scrollback wipe, a cursor report request.
HOSTILE = [
    b"\x1b]52;c;ZXZpbA==\x07",
    b"\x1b]0;owned\x1b\\",
    b"\x1b[?1049h",
    b"\x1b[6n",
    b"\x1b[2h",
    b"\x1b[3J",
    b"\x1b[c",
    b"\x1b[>c",
    b"\x1b[2 q",
    b"\x1b[!p",
    b"\xc2\x9d52;c;ZXZpbA==\xc2\x9c",  # OSC 52 with UTF-8 encoded C1
    b"\x9d52;c;ZXZpbA==\x9c",  # OSC 52 with raw 8-bit C1
    b"\xc2\x9b2h",  # keyboard lock through UTF-8 C1 CSI
    b"\x9b6n",
    b"\xc2\x90+q544e\xc2\x9c",
    b"\xc2\x85",
]
# Substrings that must never reach a terminal.
FORBIDDEN = [
    b"\x1b]", b"\x1bP", b"\x1b_", b"\x07", b"\x1b[?", b"\x1b[>", b"\x1b[2h", b"\x1b[3J",
    b"\x1b[6n", b"\x1b[c", b"\x1b[2 q", b"\x1b[!p", b"ZXZpbA", b"\xc2\x9b", b"\xc2\x9d",
    b"\xc2\x9c", b"\xc2\x90", b"\xc2\x85", b"\x9b", b"\x9d", b"\x9c",
]  # fmt: skip
MARKUP = b"[/bogus] [b]unclosed [link=x]y[/] [/]"


def _clean(out: bytes) -> None:
    for bad in FORBIDDEN:
        assert bad not in out, (bad, out[-400:])


@pytest.mark.parametrize("evil", HOSTILE)
def test_filter_drops_each_hostile_sequence(evil: bytes) -> None:
    out = sanitize(b"<" + evil + b">")
    _clean(out)
    assert out.startswith(b"<") and out.endswith(b">")


def test_filter_keeps_what_a_console_needs() -> None:
    keep = (
        b"\x1b[1;31mred\x1b[0m \x1b[2J\x1b[H\x1b[K\x1b[10;5H\x1b[2A"
        b" tab\there\r\n\x08x \xc3\xa9\xe2\x9c\x93"
    )
    assert sanitize(keep) == keep
    s = TerminalSanitizer()  # a UTF-8 C1 split across two reads is still caught
    assert s.feed(b"a\xc2") + s.feed(b"\x9b2hb") == b"ab"


def test_error_messages_quote_peers_without_controls() -> None:
    msg = str(BackendError("QEMU said: \x1b]0;t\x07boom \x9b6n \xc2\x9d52;x\xc2\x9c\n next"))
    assert "\x1b" not in msg and "\x07" not in msg and "\x9b" not in msg and "\x9d" not in msg
    assert "boom" in msg and "\n" not in msg


def _dead_instance(state: Path, name: str = "dead1") -> Path:
    reg = Registry(state)
    wd = reg.create(name)
    h = Handles(
        name=name,
        backend="qemu",
        target="guest",
        pid=4194303,  # not a live process: the instance is dead
        pid_start=1,
        channels={
            "com1": Channel(role="serial", kind="unix", path=str(wd / "s.sock"),
                            log=str(wd / "serial-com1.log")),
        },
    )  # fmt: skip
    h.save(wd)
    junk = b"booting\r\n" + b"".join(HOSTILE) + b"\r\n" + MARKUP + b"\r\nlast words\r\n"
    (wd / "output.log").write_bytes(junk)
    (wd / "serial-com1.log").write_bytes(junk)
    j = JournalWriter(Journal(wd))
    j.offer(Event(name="EVIL\x1b]0;t\x07\x9b6n", data={"x": "\x1b[3J"}))
    j.close()
    return wd


def _cli(state: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "emutui", "--state-dir", str(state), *args],
        capture_output=True,
        timeout=60,
    )


def test_ls_prints_a_dead_tail_filtered(tmp_path: Path) -> None:
    state = tmp_path / "state"
    _dead_instance(state)
    r = _cli(state, "ls")
    assert r.returncode == 0, r.stderr
    assert b"last words" in r.stdout and b"[/bogus]" in r.stdout
    _clean(r.stdout)
    assert b"\x1b" not in r.stdout


def test_events_print_filtered(tmp_path: Path) -> None:
    state = tmp_path / "state"
    _dead_instance(state)
    r = _cli(state, "events", "dead1")
    assert b"EVIL" in r.stdout, r
    _clean(r.stdout)
    assert b"\x1b" not in r.stdout
    r = _cli(state, "events", "dead1", "--json")
    assert json.loads(r.stdout.splitlines()[-1])["name"].startswith("EVIL")  # JSON escapes


def test_logs_to_a_terminal_are_filtered(tmp_path: Path, monkeypatch) -> None:
    state = tmp_path / "state"
    _dead_instance(state)
    monkeypatch.setenv("EMUTUI_STATE_DIR", str(state))
    out = run_on_pty(["logs", "dead1", "com1"], seconds=1.0)
    assert b"last words" in out
    _clean(out)
    out = run_on_pty(["logs", "dead1", "--emulator"], seconds=1.0)
    assert b"last words" in out
    _clean(out)


def test_display_line_is_one_plain_line() -> None:
    line = display_line("a\x1b[31mb\x1b[0m\r\n\tc\x9b2h\u0085d")
    assert line == "ab c" + "d" or line == "ab cd", repr(line)


async def test_tui_survives_markup_in_a_dead_instances_output(tmp_path: Path) -> None:
    from textual.widgets import Static

    from emutui.tui.app import EmutuiApp
    from tests.tui.helpers import until

    state = tmp_path / "state"
    wd = _dead_instance(state)
    h = Handles.load(wd)
    h.target = "[/target]"  # a hostile handles.json: markup in the table and the sidebar
    h.save(wd)
    app = EmutuiApp(Registry(state), None, rescan=False)
    async with app.run_test(size=(160, 50)) as pilot:
        await until(pilot, lambda: "dead1" in app.links, what="the dead instance listed")
        await until(pilot, lambda: app.screen.current is not None, what="selected")
        await pilot.pause(0.2)
        note = str(app.screen.query_one("#inst-note", Static).render())
        assert "[/bogus]" in note or "last words" in note, note
        detail = str(app.screen.query_one("#inst-detail", Static).render())
        assert "[/target]" in detail
        assert app.is_running
    time.sleep(0)  # the app exited normally: no MarkupError


def test_shell_prints_peer_text_through_the_filter() -> None:
    from emutui.core.sanitize import sanitize_text
    from emutui.shell.repl import event_line

    line = event_line(Event(name="EV\x1b]0;t\x07\x9b6n", data={"a": "\x1b[3J"}))
    text = "".join(part[1] for part in line)
    assert "\x1b" not in text and "\x9b" not in text and "\x07" not in text
    peer = "ok \x1b[1mbold\x1b[0m \x1b]52;c;x\x07\u009b2h"
    assert sanitize_text(peer) == "ok \x1b[1mbold\x1b[0m "
