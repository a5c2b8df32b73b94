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

**Alt+key** arrives as ``ESC`` and the key's character in one write; the parser
reports it as ``alt+<key>`` (Textual read ``ESC 1`` as "¡" and ``ESC !`` as "!"), and
where Textual renames it (``ESC f`` is Ctrl+Right) the character carries the bytes,
so a console sends the guest what the terminal sent.

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
from textual._ansi_sequences import ANSI_SEQUENCES_KEYS
from textual._loop import loop_last
from textual._parser import ParseError
from textual._time import get_time
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver
from textual.keys import KEY_NAME_REPLACEMENTS, _character_to_key
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

    def _sequence_to_key_events(self, sequence: str, alt: bool = False) -> Iterable[events.Key]:
        # Alt+key as xterm (metaSendsEscape), tmux and every multiplexer send it: ESC and
        # the key's character in one write. Textual gets two groups of these wrong for a
        # console, whose guest must receive the bytes the terminal sent (issue 15):
        if len(sequence) == 2 and sequence[0] == "\x1b" and sequence[1] != "\x1b":
            mapped = ANSI_SEQUENCES_KEYS.get(sequence)
            if isinstance(mapped, str):
                # ESC 1 -> "¡", ESC 4 -> "¢", ESC = -> "≠": WezTerm-on-macOS Option
                # characters. Everywhere else that is Alt+1: report it as such.
                yield _alt_key(sequence[1])
                return
            if isinstance(mapped, tuple):
                # ESC f / ESC b -> ctrl+right / ctrl+left, ESC DEL -> ctrl+w, ESC TAB ->
                # shift+tab. The names stay (text fields move by word on them, as
                # macOS Option+arrows expect); the character carries the bytes so a
                # console sends ESC f, not the CSI of Ctrl+Right.
                for key in mapped:
                    yield events.Key(key.value, sequence)
                return
        for event in super()._sequence_to_key_events(sequence, alt):
            # An ESC and a character that Textual reissues after the escape time: it
            # keeps Alt only for letters and digits, so ESC ! became a plain "!".
            if alt and not event.key.startswith("alt+") and sequence.isprintable():
                event = events.Key(f"alt+{event.key}", sequence)
            yield event

    def next_timeout(self, default: float) -> float:
        """How long the input thread may sleep before a pending ESC must expire."""
        t = self._timeout_time
        if t is None:
            return default
        return max(0.0, min(default, t - get_time()))


def _alt_key(character: str) -> events.Key:
    """The key event for Alt+``character`` (a printable character), named as Textual
    names Alt+letter: ``alt+1``, ``alt+shift+a``, ``alt+exclamation_mark``."""
    if character.isalnum():
        name = f"shift+{character.lower()}" if character.isupper() else character
    else:
        name = KEY_NAME_REPLACEMENTS.get(_character_to_key(character), _character_to_key(character))
    return events.Key(f"alt+{name}", character)


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

    _suspended = False  # stopped by our own SIGTSTP (Ctrl+Z)

    def _sigtstp_application(self, *args: Any) -> None:
        self._suspended = True
        super()._sigtstp_application(*args)

    def _sigcont_application(self, *args: Any) -> None:
        # Only a continue after our own Ctrl+Z brings the terminal back. The kernel
        # also sends SIGCONT (with SIGHUP) when the terminal goes away (tmux
        # kill-session, a dropped SSH link): Textual then restarted its writer on
        # the dead tty, the new writer died on EIO, and the next frame blocked the
        # event loop for ever, leaving the demo and its guests running at 100% CPU.
        if self._suspended:
            self._suspended = False
            super()._sigcont_application(*args)

    def run_input_thread(self) -> None:  # a copy of Textual 8.2's, with three changes
        selector = selectors.SelectSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        fileno = self.fileno
        EVENT_READ = selectors.EVENT_READ
        parser = EscapeTimeParser(debug=self._debug)
        feed = parser.feed
        tick = parser.tick
        decode = getincrementaldecoder("utf-8")().decode
        read = os.read

        gone = False  # the terminal hung up: end of file or EIO for ever after

        def process_selector_events(selector_events: list[Any], final: bool = False) -> None:
            nonlocal gone
            for last, (_key, mask) in loop_last(selector_events):
                if mask & EVENT_READ:
                    try:
                        raw = read(fileno, 1024 * 4)
                    except OSError:
                        raw = b""
                    if not raw:
                        gone = True
                        break
                    for event in feed(decode(raw, final=final and last)):
                        self.process_message(event)
            for event in tick():
                self.process_message(event)

        try:
            while not self.exit_event.is_set() and not gone:
                # (Textual's loop spun a core on a hung-up tty: select says readable,
                # read says end of file, again and again; SIGHUP ends the app.)
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
