"""Timeline pane: every serial line and every event of the selected run, merged by time.

A Line-API view over ``core.timeline.Timeline``, which reads the files
themselves: the view holds one page of lines and the position of its top line
(one ``(file, offset)`` per source). Opening a run costs a few stats; a page
down reads about one page of text through a small block cache, and a jump to a
time is a binary search in each source's time index, so neither depends on
how large the logs are (bench/bench_timeline.py). The vertical bar at the
left of the status line shows where the page is in time.

Keys: j/k, PgUp/PgDn, g/G (start/end), f follow, / regex, s sources, @ jump to a time.
"""

from __future__ import annotations

import re
import time
from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Input, Static

from emutui.core.errors import EmutuiError
from emutui.core.timeline import Filter, Pos, Timeline, TLine, clock, sources_for

_CTRL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]|[\x00-\x1f\x7f-\x9f]")
_PALETTE = ("cyan", "green", "magenta", "yellow", "blue", "bright_cyan", "bright_green")
FOLLOW_PERIOD = 0.5


def clean(text: bytes) -> str:
    """Guest bytes as plain text for the screen: no escapes, no controls (and no markup)."""
    return _CTRL.sub("", text.decode("utf-8", "replace"))


class TimelineView(Widget, can_focus=True):
    """One page of the merged timeline; moves by lines, pages and times."""

    DEFAULT_CSS = "TimelineView { height: 1fr; }"
    BINDINGS = [
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("pagedown,space", "page(1)", "PgDn", show=False),
        Binding("pageup", "page(-1)", "PgUp", show=False),
        Binding("home,g", "first", "Start", show=False),
        Binding("end,G", "last", "End", show=False),
        Binding("f", "follow", "Follow"),
    ]

    class Moved(Message):
        pass

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.timeline: Timeline | None = None
        self.top: list[Pos] = []
        self.page: list[TLine] = []
        self.bottom: list[Pos] | None = None  # where the page ends
        self.strips: list[Strip] = []
        self.following = True
        self._width_src = 6
        self._colors: dict[str, str] = {}

    # -- the model --------------------------------------------------------------------

    def set_timeline(self, tl: Timeline | None) -> None:
        if self.timeline is not None:
            self.timeline.close()
        self.timeline = tl
        self.page, self.strips, self.top = [], [], []
        if tl is None:
            self.refresh()
            return
        self._width_src = max([len(lab) for lab in tl.labels] + [6])
        self._colors = {lab: _PALETTE[i % len(_PALETTE)] for i, lab in enumerate(tl.labels)}
        if self.following:
            self.action_last()
        else:
            self.action_first()

    @property
    def rows(self) -> int:
        return max(1, self.size.height)

    def _load(self, top: list[Pos]) -> None:
        tl = self.timeline
        if tl is None:
            return
        lines, after = tl.forward(top, self.rows)
        self._show(top, lines, after)

    def _show(self, top: list[Pos], lines: list[TLine], after: list[Pos] | None) -> None:
        """Put ``lines`` (starting at ``top``; ``after`` is where they end) on screen."""
        self.top = top
        self.page = lines
        self.bottom = after
        self._render_page()
        self.post_message(self.Moved())

    def _render_page(self) -> None:
        width = max(1, self.size.width)
        base = self.rich_style
        dim = base + Style(dim=True)
        strips = []
        for ln in self.page:
            src = Style(color=self._colors.get(ln.source, "white"), bold=ln.kind != "serial")
            segs = [
                Segment(clock(ln.t) + " ", dim),
                Segment(f"{ln.source:<{self._width_src}} ", base + src),
                Segment(clean(ln.text)[:width], base),
            ]
            strips.append(Strip(segs).crop_extend(0, width, base))
        self.strips = strips
        self.refresh()

    def render_line(self, y: int) -> Strip:
        if y < len(self.strips):
            return self.strips[y]
        return Strip.blank(self.size.width, self.rich_style)

    def on_resize(self, event: events.Resize) -> None:
        if self.timeline is not None and self.top:
            if self.following:
                self.action_last()
            else:
                self._load(self.top)

    # -- moving -----------------------------------------------------------------------

    def action_move(self, delta: int) -> None:
        tl = self.timeline
        if tl is None or not self.top:
            return
        if delta > 0:
            lines, after = tl.forward(self.top, delta)
            if len(lines) < delta or not tl.forward(after, 1)[0]:
                self.action_last()
                return
            self.following = False
            self._load(after)
        else:
            self.following = False
            _, before = tl.backward(self.top, -delta)
            self._load(before)

    def action_page(self, direction: int) -> None:
        """One page down or up: one read of a page's worth of lines, never more."""
        tl = self.timeline
        if tl is None or not self.top:
            return
        rows = self.rows
        if direction > 0:
            if len(self.page) < rows or self.bottom is None:
                return self.action_last()
            lines, after = tl.forward(self.bottom, rows)
            if len(lines) < rows:
                return self.action_last()  # the last page ends at the end
            self.following = False
            self._show(self.bottom, lines, after)
        else:
            self.following = False
            lines, before = tl.backward(self.top, rows)
            if len(lines) < rows:
                return self._load(before)  # at the start: fill the page from there
            self._show(before, lines, self.top)

    def action_first(self) -> None:
        if self.timeline is not None:
            self.following = False
            self._load(self.timeline.start())

    def action_last(self) -> None:
        tl = self.timeline
        if tl is None:
            return
        end = tl.end()
        lines, before = tl.backward(end, self.rows)
        if len(lines) < self.rows:
            return self._load(before)
        self._show(before, lines, end)

    def action_follow(self) -> None:
        self.following = not self.following
        if self.following:
            self.action_last()
        self.post_message(self.Moved())

    def jump(self, t: float) -> None:
        if self.timeline is not None:
            self.following = False
            self._load(self.timeline.seek_time(t))

    def set_filter(self, f: Filter) -> None:
        if self.timeline is not None:
            self.timeline.filter = f
            self._load(self.top or self.timeline.start())

    def poll(self) -> None:
        """Files grew or rotated (a live run): carry the page over, follow the end."""
        tl = self.timeline
        if tl is None or not self.top:
            return
        self.top = tl.refresh(self.top)
        if self.following:
            self.action_last()
        elif len(self.page) < self.rows:
            self._load(self.top)

    def where(self) -> str:
        if not self.page:
            return "no lines"
        first, last = self.page[0].t, self.page[-1].t
        return f"{clock(first, date=True)} … {clock(last)}"


class TimelinePane(Vertical):
    """The view, a status line, and inputs for the regex, the sources and a time."""

    BINDINGS = [
        Binding("slash", "ask('grep')", "Regex", key_display="/"),
        Binding("s", "ask('sources')", "Sources"),
        Binding("at", "ask('time')", "Jump to time", key_display="@"),
        Binding("escape", "close_input", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.link: Any = None
        self._asking = ""
        self._grep = ""
        self._sources: frozenset[str] | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="tl-status", classes="status-line")
        yield TimelineView(id="tl-view")
        yield Input(id="tl-input", classes="hidden")

    @property
    def view(self) -> TimelineView:
        return self.query_one(TimelineView)

    def on_mount(self) -> None:
        self.set_interval(FOLLOW_PERIOD, self._poll)

    def show(self, link: Any) -> None:
        """The selected instance or kept run (None: nothing)."""
        if link is self.link and self.view.timeline is not None:
            return
        self.link = link
        tl = None
        if link is not None:
            try:
                tl = Timeline(
                    sources_for(link.inst),
                    Filter(self._sources, re.compile(self._grep.encode()) if self._grep else None),
                    hold_partial=link.inst.run is None,
                )
            except (OSError, EmutuiError, re.error):
                tl = None
        self.view.following = True
        self.view.set_timeline(tl)
        self._status()

    def only_source(self, label: str | None) -> None:
        """Show one source (a console's channel), following its end."""
        self._sources = frozenset({label}) if label else None
        self._grep = ""  # all its lines
        self.view.following = True
        self.view.set_filter(Filter(self._sources, None))
        self.view.action_last()
        self._status()

    def _poll(self) -> None:
        live = self.link is not None and self.link.inst.run is None
        if live and self.is_attached and self.display and self.view.timeline is not None:
            self.view.poll()

    @on(TimelineView.Moved)
    def _status(self) -> None:
        v = self.view
        if v.timeline is None:
            text = "no run selected"
        else:
            flt = []
            if self._grep:
                flt.append(f"/{self._grep}/")
            if self._sources is not None:
                flt.append("sources " + ",".join(sorted(self._sources)))
            mode = "[b]follow[/]" if v.following else "f follows"
            text = f"{v.where()}  {mode}  {' '.join(flt)}  [dim]/ regex · s sources · @ time[/]"
        self.query_one("#tl-status", Static).update(text, layout=False)

    def action_ask(self, what: str) -> None:
        box = self.query_one("#tl-input", Input)
        self._asking = what
        box.placeholder = {
            "grep": "regular expression (empty: all lines)",
            "sources": "sources, comma-separated (empty: all): "
            + ", ".join(self.view.timeline.labels if self.view.timeline else []),
            "time": "jump to a time: 10:42, 10:42:05.250, 2026-11-30T10:42, 5m",
        }[what]
        box.value = {"grep": self._grep, "sources": ",".join(sorted(self._sources or []))}.get(
            what, ""
        )
        box.remove_class("hidden")
        box.focus()

    def action_close_input(self) -> None:
        self.query_one("#tl-input", Input).add_class("hidden")
        self.view.focus()

    @on(Input.Submitted, "#tl-input")
    def _submitted(self, event: Input.Submitted) -> None:
        from emutui.core.when import parse_when

        value = event.value.strip()
        try:
            if self._asking == "grep":
                pattern = re.compile(value.encode()) if value else None
                self._grep = value
                self.view.set_filter(Filter(self._sources, pattern))
            elif self._asking == "sources":
                self._sources = frozenset(s.strip() for s in value.split(",") if s.strip()) or None
                pattern = re.compile(self._grep.encode()) if self._grep else None
                self.view.set_filter(Filter(self._sources, pattern))
            elif self._asking == "time" and value:
                self.view.jump(parse_when(value, now=time.time()))
        except (re.error, EmutuiError) as e:
            self.notify(str(e), severity="error")
            return
        self.action_close_input()
        self._status()
