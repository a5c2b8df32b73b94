"""The terminal emulator engine alone (no Textual): what a terminal would show."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emutui.tui.term import Terminal
from emutui.tui.term.styles import BOLD, REVERSE, TRUECOLOR, UNDERLINE, Style


def term(data: bytes | str, cols: int = 20, rows: int = 5, scrollback: int = 100) -> Terminal:
    t = Terminal(cols, rows, scrollback)
    t.feed(data.encode() if isinstance(data, str) else data)
    return t


def rows(t: Terminal) -> list[str]:
    return [r.rstrip() for r in t.screen.display()]


def style_at(t: Terminal, x: int, y: int) -> Style:
    s = t.screen
    return s.table.styles[s.attrs[y][x]]


def test_text_crlf_and_cursor() -> None:
    t = term("ab\r\ncd")
    assert rows(t)[:2] == ["ab", "cd"]
    assert (t.screen.x, t.screen.y) == (2, 1)


def test_sgr_colours_and_attributes() -> None:
    t = term("\x1b[1;31mR\x1b[0;4;38;5;200mP\x1b[38;2;1;2;3;48;2;4;5;6mT\x1b[7mV\x1b[m.")
    assert style_at(t, 0, 0) == Style(1, -1, BOLD)
    assert style_at(t, 1, 0) == Style(200, -1, UNDERLINE)
    assert style_at(t, 2, 0) == Style(TRUECOLOR | 0x010203, TRUECOLOR | 0x040506, UNDERLINE)
    assert style_at(t, 3, 0).flags == UNDERLINE | REVERSE
    assert style_at(t, 4, 0) == Style()
    # colon sub-parameters and bright colours
    t = term("\x1b[38:2::9:8:7;92;101mX")
    assert style_at(t, 0, 0) == Style(10, 9, 0)
    t = term("\x1b[38:2:9:8:7mX")
    assert style_at(t, 0, 0).fg == TRUECOLOR | 0x090807


def test_runs_merge_equal_styles() -> None:
    t = term("aa\x1b[32mbb\x1b[0mcc", cols=8)
    assert t.screen.line_runs(len(t.screen.history)) == [("aa", 0), ("bb", 1), ("cc  ", 0)]


def test_cursor_movement_and_erase() -> None:
    t = term("xxxxx\r\nyyyyy\x1b[1;3H\x1b[K\x1b[2;2H\x1b[1P\x1b[3;4Hz\x1b[A\x1b[2D!")
    assert rows(t)[:3] == ["xx", "yy!y", "   z"]
    t = term("abcdef\x1b[3G\x1b[2@\x1b[1X")
    assert rows(t)[0] == "ab  cdef"
    t = term("l1\r\nl2\r\nl3\x1b[2J\x1b[Hn")
    assert rows(t) == ["n", "", "", "", ""]


def test_clear_screen_keeps_scrollback_ed3_clears_it() -> None:
    t = term("\r\n".join(f"l{i}" for i in range(10)), rows=3)
    assert [h[0].rstrip() for h in t.screen.history] == [f"l{i}" for i in range(7)]
    t.feed(b"\x1b[3J")
    assert len(t.screen.history) == 0


def test_autowrap_and_pending_wrap() -> None:
    t = term("0123456789AB", cols=10)
    assert rows(t)[:2] == ["0123456789", "AB"]
    assert t.screen.wrapped[0]
    # exactly full: the cursor waits in the last column, CR then stays on the line
    t = term("0123456789\rX", cols=10)
    assert rows(t)[:2] == ["X123456789", ""]
    t = term("\x1b[?7l0123456789AB", cols=10)
    assert rows(t)[0] == "012345678B"


def test_scroll_region_and_scrollback() -> None:
    t = term("\x1b[2;4r\x1b[2;1Ha\nb\nc\nd\n", cols=5, rows=5)
    # the region scrolled; nothing entered the scrollback because it does not start at the top
    assert len(t.screen.history) == 0
    assert rows(t)[0] == ""
    assert rows(t)[1:4] == ["  c", "   d", ""]  # LF without CR keeps the column
    t = term("\x1b[2;3r\x1b[2;1H\x1bM", cols=5, rows=5)  # reverse index at the top margin
    assert (t.screen.y, len(t.screen.history)) == (1, 0)


def test_insert_delete_lines() -> None:
    t = term("1\r\n2\r\n3\r\n4\x1b[2;1H\x1b[L", cols=5, rows=4)
    assert rows(t) == ["1", "", "2", "3"]
    t.feed(b"\x1b[M\x1b[M")
    assert rows(t) == ["1", "3", "", ""]
    assert len(t.screen.history) == 0


def test_save_restore_cursor_status_line() -> None:
    t = term("boot\x1b7\x1b[1;10H[st]\x1b8 ok", cols=20, rows=3)
    assert rows(t)[0] == "boot ok  [st]"


def test_alternate_screen_restores_main_and_keeps_no_history() -> None:
    t = term("main text\x1b[?1049h\x1b[2J\x1b[Hfull screen app\r\n\r\n\r\n\r\n\r\n\r\n", rows=3)
    assert t.screen.in_alt_screen
    assert len(t.screen.history) == 0
    t.feed(b"\x1b[?1049l")
    assert rows(t)[0] == "main text"
    assert (t.screen.x, t.screen.y) == (9, 0)


def test_tabs_backspace() -> None:
    t = term("a\tb\x08c", cols=20)
    assert rows(t)[0] == "a       c"


def test_utf8_split_across_chunks_and_wide_chars() -> None:
    t = Terminal(10, 3)
    data = "é中x".encode()
    for b in data:
        t.feed(bytes([b]))
    assert rows(t)[0] == "é中x"
    assert t.screen.chars[0][:4] == ["é", "中", "", "x"]
    t = term(b"\xff\xfeok")  # invalid UTF-8 becomes U+FFFD, never an exception
    assert rows(t)[0].endswith("ok")


def test_wide_char_wraps_at_the_last_column() -> None:
    t = term("abc中", cols=4)
    assert rows(t)[:2] == ["abc", "中"]


def test_dec_graphics_charset() -> None:
    t = term("\x1b(0lqk\x1b(Bq")
    assert rows(t)[0] == "┌─┐q"


@pytest.mark.parametrize(
    "seq",
    [
        b"\x1b]0;evil title\x07",
        b"\x1b]2;evil title\x1b\\",
        b"\x1b]52;c;ZXZpbA==\x07",
        b"\x1b]4;1;rgb:ff/00/00\x1b\\",
        b"\x1bP1$r evil\x1b\\",
        b"\x1b_apc evil\x1b\\",
        b"\x1b^pm evil\x1b\\",
        b"\x1bXsos evil\x1b\\",
        b"\x1b[21t\x1b[8;100;100t",
    ],
)
def test_strings_and_window_ops_are_dropped(seq: bytes) -> None:
    for split in range(len(seq) + 1):
        t = Terminal(30, 3)
        t.feed(b"a" + seq[:split])
        t.feed(seq[split:] + b"b")
        assert rows(t)[0] == "ab", (split, rows(t))
        assert t.take_responses() == b""


def test_unterminated_string_is_aborted_by_the_next_escape() -> None:
    t = term(b"a\x1b]0;never ends\x1b[1mb")
    assert rows(t)[0] == "ab"
    assert style_at(t, 1, 0).flags == BOLD


def test_queries_are_answered_to_the_guest() -> None:
    t = term("ab\x1b[6n\x1b[c")
    assert t.take_responses() == b"\x1b[1;3R\x1b[?1;2c"


def test_scrollback_is_bounded() -> None:
    t = Terminal(20, 5, scrollback=100)
    for i in range(5000):
        t.feed(b"line %d\r\n" % i)
    assert len(t.screen.history) == 100
    assert t.screen.history_pushed == 4996
    assert t.screen.history[-1][0].rstrip() == "line 4995"
    assert t.screen.find("line 4950") == (54, 0)  # history holds 4896..4995


def test_style_table_is_bounded() -> None:
    t = Terminal(20, 5)
    for i in range(20000):
        t.feed(b"\x1b[38;2;%d;%d;%dmx" % (i & 255, (i >> 8) & 255, 7))
    assert len(t.screen.table) <= 8192 + 1


def test_resize_keeps_the_cursor_line() -> None:
    t = term("\r\n".join(f"l{i}" for i in range(5)), cols=10, rows=5)
    t.resize(6, 3)
    assert rows(t) == ["l2", "l3", "l4"]
    assert t.screen.y == 2
    t.resize(12, 6)
    assert rows(t)[:3] == ["l2", "l3", "l4"]


# -- fuzzing: random and truncated escape sequences must never raise -------------------------

_PIECES = [
    b"\x1b",
    b"[",
    b"]",
    b"P",
    b"\\",
    b"\x07",
    b"0",
    b"1",
    b";",
    b":",
    b"?",
    b">",
    b"m",
    b"H",
    b"J",
    b"K",
    b"r",
    b"h",
    b"l",
    b"@",
    b"L",
    b"M",
    b"P",
    b"X",
    b"b",
    b"n",
    b"c",
    b"(",
    b"#",
    b"8",
    b"7",
    b"\r",
    b"\n",
    b"\t",
    b"\x08",
    b"\x0e",
    b"\x0f",
    b"\x9b",
    b"\xc3",
    b"\xa9",
    b"\xe4",
    b"\xb8",
    b"\xad",
    b"a",
    b"Z",
    b" ",
    b"99999999999",
    b"1049",
    b"2004",
    b"\x18",
    b"\x7f",
]


@settings(max_examples=400, deadline=None)
@given(
    data=st.lists(st.one_of(st.sampled_from(_PIECES), st.binary(max_size=8)), max_size=60),
    cuts=st.lists(st.integers(0, 400), max_size=6),
    cols=st.integers(1, 12),
    rows_=st.integers(1, 6),
)
def test_fuzz_never_raises_and_keeps_invariants(
    data: list[bytes], cuts: list[int], cols: int, rows_: int
) -> None:
    blob = b"".join(data)
    t = Terminal(cols, rows_, scrollback=20)
    prev = 0
    for c in [*sorted(cuts), len(blob)]:
        t.feed(blob[prev:c])
        prev = max(prev, c)
    s = t.screen
    assert 0 <= s.x < s.cols and 0 <= s.y < s.rows
    assert len(s.chars) == s.rows and len(s.attrs) == s.rows
    assert all(len(r) == s.cols for r in s.chars)
    assert all(len(r) == s.cols for r in s.attrs)
    assert len(s.history) <= 20
    for i in range(s.line_count):
        s.line_runs(i)
    t.resize(max(1, cols - 1), rows_ + 1)
    t.feed(b"ok")


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.lists(st.sampled_from(_PIECES), max_size=80).map(b"".join),
    ),
    st.integers(1, 299),
)
def test_fuzz_chunking_does_not_change_the_screen(blob: bytes, cut: int) -> None:
    whole = Terminal(10, 4)
    whole.feed(blob)
    split = Terminal(10, 4)
    split.feed(blob[:cut])
    split.feed(blob[cut:])
    assert whole.screen.display() == split.screen.display()
