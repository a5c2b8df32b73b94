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
    # a taller window brings the lines back from the scrollback (issue 15 item 9)
    assert rows(t) == ["l0", "l1", "l2", "l3", "l4", ""]
    assert t.screen.y == 4 and len(t.screen.history) == 0


# -- issue 15: behaviours checked against xterm ---------------------------------------------


def test_leading_zeros_are_zeros() -> None:
    t = term("\x1b[000004;00014Hx\x1b[0000001;0000000000001Hy", cols=20, rows=5)
    assert (t.screen.y, rows(t)[3]) == (0, "             x")
    assert rows(t)[0] == "y"
    t = term("\x1b[0004mu\x1b[00000000031mr")
    assert style_at(t, 0, 0).flags == UNDERLINE
    assert style_at(t, 1, 0).fg == 1


def test_c0_inside_csi_is_executed_and_the_sequence_goes_on() -> None:
    t = term("abcdef\x1b[2\x08C!")
    assert rows(t)[0] == "abcdef !"
    t = term("ab\x1b[\r1;4H?")  # CR inside CUP
    assert rows(t)[0] == "ab ?"
    t = term("ab\x1b[1\x18Cd")  # CAN aborts the sequence
    assert rows(t)[0] == "abCd"
    for split in range(1, 9):
        seq = b"abcdef\x1b[2\x08C!"
        t = Terminal(20, 3)
        t.feed(seq[:split])
        t.feed(seq[split:])
        assert rows(t)[0] == "abcdef !", split


def test_resize_wider_gets_tab_stops_and_keeps_a_pending_wrap() -> None:
    t = term("", cols=10, rows=3)
    t.resize(30, 3)
    t.feed(b"\t\t\t!")
    assert rows(t)[0] == " " * 24 + "!"
    t = term("0123456789", cols=10, rows=3)
    assert t.screen.wrap_next
    t.resize(10, 4)  # height only: the wrap is still pending
    t.feed(b"Z")
    assert rows(t)[:2] == ["0123456789", "Z"]
    t = term("0123456789", cols=10, rows=3)
    t.resize(12, 3)  # wider: the next character follows the text
    t.feed(b"Z")
    assert rows(t)[0] == "0123456789Z"


def test_dec_graphics_underscore_is_blank() -> None:
    t = term("\x1b(0q_q\x1b(B_")
    assert rows(t)[0] == "─ ─_"


def test_saved_cursor_is_per_screen() -> None:
    # main saves at (2,1); a full-screen program saves at (5,3) on the alternate screen
    t = term("\x1b[2;3H\x1b7\x1b[?1049h\x1b[4;6H\x1b7\x1b[?1049l", cols=20, rows=5)
    assert (t.screen.x, t.screen.y) == (2, 1)
    t.feed(b"\x1b[?1049h\x1b[H\x1b8")  # the program comes back and restores its cursor
    assert (t.screen.x, t.screen.y) == (5, 3)
    t.feed(b"\x1b[?1049l\x1b[5;1H\x1b8")
    assert (t.screen.x, t.screen.y) == (2, 1)


def test_sgr_colon_underline_styles() -> None:
    t = term("\x1b[4ma\x1b[4:0mb\x1b[4:3mc\x1b[24;4:1md\x1b[4:5;1me\x1b[0m")
    flags = [style_at(t, x, 0).flags for x in range(5)]
    assert flags == [UNDERLINE, 0, UNDERLINE, UNDERLINE, UNDERLINE | BOLD]


def test_erase_in_line_keeps_a_pending_wrap_for_modes_1_and_2() -> None:
    for mode, kept in ((b"1", True), (b"2", True), (b"", False)):
        t = term(b"0123456789\x1b[" + mode + b"KZ", cols=10, rows=3)
        assert (rows(t)[1] == "Z") == kept, mode


def test_window_size_queries_are_answered_nothing_else() -> None:
    t = term(
        "\x1b[18t\x1b[19t\x1b[14t\x1b[21t\x1b[13t\x1b[11t\x1b[?6n\x1b]11;?\x07", cols=20, rows=5
    )
    assert t.take_responses() == b"\x1b[8;5;20t\x1b[9;5;20t"
    t.resize(33, 7)
    t.feed(b"\x1b[999;999H\x1b[6n\x1b[18t")
    assert t.take_responses() == b"\x1b[7;33R\x1b[8;7;33t"


def test_growing_brings_scrollback_back_and_shrinking_keeps_the_cursor() -> None:
    t = Terminal(20, 10, 1000)
    t.feed(b"\r\n".join(b"line %d" % i for i in range(100)))
    t.resize(20, 40)
    assert rows(t) == [f"line {i}" for i in range(60, 100)]
    assert len(t.screen.history) == 60 and t.screen.y == 39
    t.resize(20, 5)
    assert rows(t) == [f"line {i}" for i in range(95, 100)]
    assert t.screen.find("line 0") == (0, 0)
    # nothing lost, nothing doubled
    assert [t.screen.line_text(i).rstrip() for i in range(t.screen.line_count)] == [
        f"line {i}" for i in range(100)
    ]


def test_reflow_rewraps_screen_and_scrollback() -> None:
    long = "".join(chr(ord("a") + i % 26) for i in range(45))
    t = Terminal(20, 4, 100)
    t.feed(f"first\r\n{long}\r\nlast".encode())
    # 20 columns: first, 3 rows of long, last -> one line in the scrollback
    assert len(t.screen.history) == 1
    t.resize(50, 4)
    assert rows(t) == ["first", long, "last", ""]
    assert (t.screen.x, t.screen.y) == (4, 2)
    t.resize(10, 4)
    every = [t.screen.line_text(i).rstrip() for i in range(t.screen.line_count)]
    assert every == ["first", long[:10], long[10:20], long[20:30], long[30:40], long[40:], "last"]
    assert (t.screen.x, t.screen.y) == (4, 3)
    t.resize(80, 4)
    assert rows(t) == ["first", long, "last", ""]
    t.feed(b"!")
    assert rows(t)[2] == "last!"


def test_reflow_keeps_wide_characters_whole_and_styles() -> None:
    t = Terminal(6, 3, 10)
    t.feed("ab\x1b[1m漢字\x1b[0mcd".encode())  # 2 + 4 + 2 = 8 cells over 6 columns
    t.resize(5, 3)
    every = [t.screen.line_text(i).rstrip() for i in range(t.screen.line_count)]
    assert every[:2] == ["ab漢", "字cd"]
    s = t.screen
    assert s.table.styles[s.attrs[1][0]].flags == BOLD
    assert s.table.styles[s.attrs[1][2]].flags == 0


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


@settings(max_examples=300, deadline=None)
@given(
    blob=st.lists(
        st.one_of(
            st.sampled_from([*_PIECES, "漢".encode(), b"e\xcc\x81", b"\x1b[?1049h"]),
            st.binary(max_size=6),
        ),
        max_size=60,
    ).map(b"".join),
    sizes=st.lists(st.tuples(st.integers(1, 14), st.integers(1, 7)), min_size=1, max_size=5),
)
def test_fuzz_reflow_keeps_invariants(blob: bytes, sizes: list[tuple[int, int]]) -> None:
    t = Terminal(9, 4, scrollback=15)
    t.feed(blob)
    for cols, rows_ in sizes:
        t.resize(cols, rows_)
        s = t.screen
        assert 0 <= s.x < s.cols and 0 <= s.y < s.rows
        assert len(s.chars) == s.rows == len(s.attrs) == len(s.wrapped)
        assert all(len(r) == s.cols for r in s.chars)
        assert all(len(r) == s.cols for r in s.attrs)
        assert len(s.history) <= 15
        assert s.history_pushed >= len(s.history)
        for i in range(s.line_count):
            s.line_runs(i)
        t.feed(b"ok\r\n")
