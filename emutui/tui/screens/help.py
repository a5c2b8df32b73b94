"""The help screen (``?``): every key, by pane."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# emutui

**Everywhere** (outside a console)

| key | what |
| --- | --- |
| `?` | this help |
| `Tab` / `Shift+Tab` | next / previous pane |
| `1` … `6` | instances, console, events, properties, memory, CPU |
| `/` | filter events |
| `:` | monitor command line (QMP; `!info pci` for HMP) |
| `t` | next theme (dark, light, high-contrast) |
| `Ctrl+P` | command palette: every action |
| `q` | quit |

**Instances**: `j`/`k` move, `n` start a target (name and paused or not, as
`emutui start`), `x` stop, `R` restart (stop, then start the same target under the
same name), `r` reset, `p` pause, `u` resume. Stop, restart and reset ask first; only
what the instance's backend can do is offered.

**Console**: `Enter` (here or on an instance) types into the console: the bar above it
says TYPING and every key (Esc too) goes to the guest. `Ctrl+]` leaves it, as in telnet
and virsh (`[ui] console_escape` changes the key). Outside it: `Left`/`Right` switch
channel (com1, com2…), `/` searches the scrollback, `n`/`N` the next older/newer match,
`c` copies the selection or the lines in view, `C` the whole scrollback (the notice says
where it went: under tmux, tmux's paste buffer), `End` returns to the live screen;
`Shift+PgUp`/`PgDn` scroll back even while typing.
Side by side: `s` splits (up to 4 tiles), `o` next tile, `z` zooms one, `w` closes it;
the instance you pick goes into the active tile, `Left`/`Right` change its channel.

**Events**: `j`/`k` move, `Enter` full JSON, `space` pause, `f` follow,
`/` filter, `:` command (`Up`/`Down` history, `Right` accepts a completion).

**Properties**: `Enter` opens a node, `e` edits a value (asks first), `r` refreshes,
`g` jumps to a path such as `/machine/peripheral/edu0.addr` (`Right` completes),
`/` searches the loaded tree (`n`/`N` next/previous match), `d` switches numbers
between hex and decimal.

**Memory**: pick a region; `PgUp`/`PgDn`, arrows or `hjkl` move, `g` goes to an offset
(`0x1000`, `4096`), `w` cycles 1/2/4/8-byte words, `f` follows this region (re-reads twice a
second, changes in red; off by default, chosen per region: MMIO reads have side effects),
`e` writes bytes at the cursor where the backend can.

**CPU** (QEMU, Renode: through the instance's gdb stub): `c` continue, `p` stop,
`s` step one instruction, `n` step over a call, `r` run to the cursor, `b` toggle a
breakpoint at the cursor, `w` watch writes to an address or symbol, `D` delete every
breakpoint and watchpoint, `g` go to an address or symbol, `.` back to PC, `m` hex view
on virtual addresses, `C` pick a CPU, `G` hand the CPU to gdb (the TUI suspends; gdb's
exit gives it back), `S` save a snapshot, `L` load one, `X` delete one.

Press `Esc` or `?` to close.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,question_mark,q", "dismiss", "Close"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(HELP)
