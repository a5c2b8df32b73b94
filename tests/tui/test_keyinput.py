"""Issue 15 item 8: Esc then a key, as a person types it over SSH, is two keys."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import textual._parser

from emutui.tui import keyinput
from emutui.tui.keyinput import EscapeTimeParser


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(textual._parser, "get_time", lambda: now[0])
    monkeypatch.setattr(keyinput, "get_time", lambda: now[0])
    return now


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


def _tmux(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_in_tmux_esc_then_a_key_is_two_keys(tmp_path: Path) -> None:
    """The real path: tmux writes to the app's terminal, emutui's driver reads it."""
    log = tmp_path / "keys"
    session = f"t-console-keys-{os.getpid()}"
    cmd = f"{sys.executable} -m tests.tui.keylog_app {log}"
    root = Path(__file__).resolve().parents[2]
    assert (
        _tmux("new", "-d", "-s", session, "-x", "80", "-y", "10", "-c", str(root), cmd).returncode
        == 0
    )
    try:
        deadline = time.monotonic() + 60
        while "keylog ready" not in _tmux("capture-pane", "-p", "-t", session).stdout:
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.1)

        def keys_now() -> list[str]:
            return log.read_text().split() if log.exists() else []

        def wait_keys(n: int) -> list[str]:
            end = time.monotonic() + 20
            while len(keys_now()) < n and time.monotonic() < end:
                time.sleep(0.05)
            return keys_now()

        # A person's Esc, then 1 about 10 ms later (separate writes), as over SSH.
        _tmux("send-keys", "-t", session, "Escape")
        time.sleep(0.010)
        _tmux("send-keys", "-t", session, "1")
        assert wait_keys(2)[:2] == ["escape", "1"]
        # (Alt+x and cursor keys staying one key is the parser test above: through
        # tmux on a loaded machine the bytes of one key may come in two reads.)
        _tmux("send-keys", "-t", session, "q")
    finally:
        _tmux("kill-session", "-t", session)
