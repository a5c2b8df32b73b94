"""Issue 15 item 8: Esc then a key, as a person types it over SSH, is two keys."""

from __future__ import annotations

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


# The same through a real tmux into emutui's driver: `python -m tests.tui.esc_tmux_check
# LOG` from a shell prints `escape 1`. Started from inside pytest (even as a separate
# process) the tmux pane stays blank for a reason not yet found, so it is not a test here.
