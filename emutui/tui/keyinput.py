"""Keyboard input: when Esc is a key of its own, and keys that must not wait their turn.

**Esc then a key** (issue 15 item 8). A terminal sends Alt+x as ``ESC x`` and a
cursor key as ``ESC [ A``, in one write; a person's Esc followed by ``x`` is the
same two bytes, some milliseconds apart. Textual treats any byte that comes
within ``ESCDELAY`` (100 ms) of an ESC as part of it, so over SSH a quick
``Esc 1`` became ``alt+1``. emutui decides as tmux (``escape-time``) and vim
(``ttimeoutlen``) do: bytes after an ESC belong to it only if they arrive within
``escape_time`` (``[ui] escape_time_ms``, 5 ms by default); later ones start a new
key. Bytes of one read always arrive together, so an Alt key or a cursor key
from a terminal is never split; an Esc typed by a person, even over SSH, is
separated from the next key by much more than 5 ms. A lone Esc is reported after
``escape_time`` (not after up to 200 ms as before).

**Keys that change where the next key goes** (item 26). Textual forwards every
key to the focused widget the moment it leaves the App's queue, so keys that
arrived in the same read as the console's escape key (a paste, a macro, fast
fingers over SSH) were already queued for the console before it saw the escape
key. The App therefore handles the escape key itself, before forwarding the keys
that follow (``leave_console_first``); the main screen's pane keys are priority
bindings for the same reason.
"""

from __future__ import annotations

import os
import selectors
from codecs import getincrementaldecoder
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from textual import constants, events
from textual._loop import loop_last
from textual._parser import ParseError
from textual._time import get_time
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver
from textual.message import Message

if TYPE_CHECKING:
    from textual.app import App

DEFAULT_ESCAPE_TIME = 0.005  # seconds; tmux 3.5 uses 10 ms, vim users set 5-10 ms
ESCAPE_TIME = [DEFAULT_ESCAPE_TIME]  # set from the config before the app runs


def set_escape_time(seconds: float) -> None:
    """How long bytes after an ESC still belong to it (process-wide)."""
    ESCAPE_TIME[0] = max(0.0005, float(seconds))


class EscapeTimeParser(XTermParser):
    """Textual's parser, with an ESC that expires ``escape_time`` after it arrived.

    Textual's parser reads the ESC timeout from ``constants.ESCAPE_DELAY`` each time
    it meets an ESC; this parser sets it, and before every new read first lets a
    pending ESC expire if it is older than that, so the new bytes start a new key."""

    def __init__(self, escape_time: float | None = None, debug: bool = False) -> None:
        self.escape_time = ESCAPE_TIME[0] if escape_time is None else escape_time
        constants.ESCAPE_DELAY = self.escape_time  # type: ignore[misc]
        super().__init__(debug)

    def feed(self, data: str) -> Iterable[Message]:
        constants.ESCAPE_DELAY = self.escape_time  # type: ignore[misc]
        if data:
            yield from self.tick()
        yield from super().feed(data)

    def next_timeout(self, default: float) -> float:
        """How long the input thread may sleep before a pending ESC must expire."""
        t = self._timeout_time
        if t is None:
            return default
        return max(0.0, min(default, t - get_time()))


class EmutuiDriver(LinuxDriver):
    """Linux driver whose input thread uses EscapeTimeParser and wakes up in time
    to report a lone Esc after ``escape_time``, and that asks the terminal for its size."""

    def _get_terminal_size(self) -> tuple[int, int]:
        # Textual asks shutil.get_terminal_size(), which prefers COLUMNS/LINES from the
        # environment. Those are often stale: GNU readline exports them (80x24 when stdin
        # is not a tty) into the C environment of any Python that imports it (pytest
        # does), and every child, tmux server and pane included, inherits them. The app
        # then drew 24 rows with newlines into a 10-row pane, scrolling its own frame
        # off, and never followed a resize. The tty itself knows its size.
        for fd in (self._file.fileno() if self._file else -1, self.fileno):
            try:
                columns, lines = os.get_terminal_size(fd)
            except (OSError, ValueError):
                continue
            if columns > 0 and lines > 0:
                return columns, lines
        return super()._get_terminal_size()

    def run_input_thread(self) -> None:  # a copy of Textual 8.2's, with the two changes
        selector = selectors.SelectSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        fileno = self.fileno
        EVENT_READ = selectors.EVENT_READ
        parser = EscapeTimeParser(debug=self._debug)
        feed = parser.feed
        tick = parser.tick
        decode = getincrementaldecoder("utf-8")().decode
        read = os.read

        def process_selector_events(selector_events: list[Any], final: bool = False) -> None:
            for last, (_key, mask) in loop_last(selector_events):
                if mask & EVENT_READ:
                    unicode_data = decode(read(fileno, 1024 * 4), final=final and last)
                    if not unicode_data:
                        break
                    for event in feed(unicode_data):
                        self.process_message(event)
            for event in tick():
                self.process_message(event)

        try:
            while not self.exit_event.is_set():
                process_selector_events(selector.select(parser.next_timeout(0.1)))
            selector.unregister(self.fileno)
            process_selector_events(selector.select(0.1), final=True)
        finally:
            selector.close()
            try:
                for _event in feed(""):
                    pass
            except (EOFError, ParseError):
                pass


def leave_console_first(app: App[Any], event: events.Key) -> bool:
    """The console's escape key, handled by the App before it forwards any later key:
    True when ``event`` left a console (and must go no further)."""
    from emutui.tui.widgets.console import ConsoleView

    focused = app.focused
    if not isinstance(focused, ConsoleView) or event.is_forwarded:
        return False
    if not focused.is_escape_key(event.key):
        return False
    focused.leave()
    return True


def typing_widget(widget: object) -> bool:
    """True for widgets that take printable keys as text (a console, an input)."""
    from textual.widgets import Input, TextArea

    from emutui.tui.widgets.console_pane import ConsoleWidget

    return isinstance(widget, (ConsoleWidget, Input, TextArea))
