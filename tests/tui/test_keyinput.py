"""Issue 15 item 8: Esc then a key, as a person types it over SSH, is two keys."""

from __future__ import annotations

import fcntl
import os
import shutil
import struct
import termios
from pathlib import Path

import pytest

from emutui.tui import keyinput
from emutui.tui.keyinput import EscapeTimeParser
from tests.tui.esc_tmux_check import esc_then_key


def keys(parser: EscapeTimeParser, *reads: tuple[float, str], clock: list[float]) -> list[str]:
    out = []
    for delay, data in reads:
        clock[0] += delay
        out += [e.key for e in parser.feed(data)]
    clock[0] += 1.0
    out += [e.key for e in parser.tick()]
    return out


def test_esc_then_a_key_10_ms_later_is_two_keys(clock: list[float]) -> None:
    p = EscapeTimeParser(0.005)
    assert keys(p, (0, "\x1b"), (0.010, "1"), clock=clock) == ["escape", "1"]
    assert keys(p, (0, "\x1b"), (0.010, "p"), (0.2, "\x1b"), (0.01, "\x1b"), clock=clock) == [
        "escape",
        "p",
        "escape",
        "escape",
    ]


def test_one_read_still_makes_one_key(clock: list[float]) -> None:
    p = EscapeTimeParser(0.005)
    # a cursor key and an Alt key arrive in one write, so in one read
    assert keys(p, (0, "\x1b[A"), (0.05, "\x1bx"), clock=clock) == ["up", "alt+x"]
    # a sequence split across reads that come within the escape time is still one key
    assert keys(p, (0, "\x1b["), (0.001, "B"), clock=clock) == ["down"]


def test_a_lone_esc_is_reported_after_the_escape_time(clock: list[float]) -> None:
    p = EscapeTimeParser(0.005)
    assert [e.key for e in p.feed("\x1b")] == []
    assert p.next_timeout(0.1) == pytest.approx(0.005)
    clock[0] += 0.006
    assert [e.key for e in p.tick()] == ["escape"]
    assert p.next_timeout(0.1) == 0.1


needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")


@needs_tmux
def test_esc_then_a_key_through_tmux(tmp_path: Path) -> None:
    """The same through a real tmux pane into emutui's driver: Escape, then `1` 10 ms
    later in a separate write, are the two keys `escape` and `1` (not `alt+1`)."""
    assert esc_then_key(tmp_path / "keys.log", gap=0.010) == ["escape", "1"]


def test_the_driver_takes_its_size_from_the_tty_not_stale_columns_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """COLUMNS/LINES exported by readline (80x24) must not override the tty's size."""
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("LINES", "24")
    master, slave = os.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 10, 100, 0, 0))
        driver = keyinput.EmutuiDriver.__new__(keyinput.EmutuiDriver)
        with open(slave, "w", closefd=False) as tty:
            driver._file = tty
            driver.fileno = slave
            assert driver._get_terminal_size() == (100, 10)
    finally:
        os.close(master)
        os.close(slave)


def _bare_driver(fd: int) -> keyinput.EmutuiDriver:
    """An EmutuiDriver without an app: just what its input thread and signal handlers use."""
    import threading

    driver = object.__new__(keyinput.EmutuiDriver)
    driver.fileno = fd
    driver.exit_event = threading.Event()
    driver._debug = False
    driver._auto_restart = True
    got: list[object] = []
    driver.process_message = got.append  # type: ignore[method-assign]
    return driver


def test_the_input_thread_ends_when_the_terminal_hangs_up() -> None:
    """A hung-up tty reads as end of file (or EIO) for ever: the thread stops reading
    instead of spinning a core until SIGHUP has ended the app."""
    import pty
    import threading

    master, slave = pty.openpty()
    driver = _bare_driver(slave)
    thread = threading.Thread(target=driver.run_input_thread, daemon=True)
    thread.start()
    os.close(master)
    thread.join(timeout=30)
    alive = thread.is_alive()
    driver.exit_event.set()
    os.close(slave)
    assert not alive


def test_sigcont_resumes_only_after_our_own_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel sends SIGCONT with SIGHUP when the terminal goes away; restarting the
    terminal then (a writer on a dead tty) blocked the event loop for ever."""
    driver = _bare_driver(-1)
    resumed: list[bool] = []
    monkeypatch.setattr(driver, "resume_application_mode", lambda: resumed.append(True))
    monkeypatch.setattr(driver, "suspend_application_mode", lambda: None)
    monkeypatch.setattr(os, "kill", lambda pid, sig: None)  # the SIGSTOP of Ctrl+Z
    driver._sigcont_application()
    assert resumed == []
    driver._sigtstp_application()
    driver._sigcont_application()
    assert resumed == [True]
