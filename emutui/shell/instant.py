"""The shell's prompt drawn before prompt_toolkit is imported (an "instant prompt").

Importing prompt_toolkit (and wcwidth) costs about as much CPU as qmp-shell's
whole start, and connecting and greeting the monitor comes on top. So the prompt
text goes to the terminal first, with the terminal's echo and line editing off:
what the user types meanwhile waits in the terminal's input queue, unseen and
not lost, and prompt_toolkit reads it when it takes over the same line (it draws
the same prompt over this one). zsh's "instant prompt" does the same.

Only for an interactive shell on a terminal; nothing here imports more than the
standard library.
"""

from __future__ import annotations

import contextlib
import os
import sys

MODE_NAMES = {"qemu": "qmp", "renode": "renode", "vrtd": "vrtd"}  # as the Modes name themselves


def _color() -> bool:
    return "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


class InstantPrompt:
    """The prompt on the screen, and the terminal mode to restore at the end."""

    def __init__(self, fd_in: int, fd_out: int, saved: list[object]) -> None:
        self.fd_in = fd_in
        self.fd_out = fd_out
        self.saved = saved
        self.on_screen = True

    @classmethod
    def show(cls, backend: str, label: str) -> InstantPrompt | None:
        """Draw ``(qmp:NAME) `` now; None when standard input or output is not a terminal."""
        try:
            fd_in, fd_out = sys.stdin.fileno(), sys.stdout.fileno()
            if not (os.isatty(fd_in) and os.isatty(fd_out)):
                return None
            import termios

            saved = termios.tcgetattr(fd_in)
            quiet = list(saved)
            quiet[3] = quiet[3] & ~(termios.ECHO | termios.ICANON)  # lflag; ISIG stays
            termios.tcsetattr(fd_in, termios.TCSANOW, quiet)
        except (OSError, ValueError, AttributeError):
            return None
        text = f"({MODE_NAMES.get(backend, backend)}:{label}) "
        if _color():
            text = f"\x1b[1;36m{text}\x1b[0m"  # the STYLE's "prompt"
        self = cls(fd_in, fd_out, saved)
        self._write(text)
        return self

    def _write(self, text: str) -> None:
        with contextlib.suppress(OSError):
            os.write(self.fd_out, text.encode())

    def clear(self) -> None:
        """Take the prompt off the line (before an error or the banner is printed)."""
        if self.on_screen:
            self.on_screen = False
            self._write("\r\x1b[K")

    def handover(self) -> None:
        """prompt_toolkit draws from the cursor on: back to the start of the line, where
        it draws the same prompt over this one."""
        if self.on_screen:
            self.on_screen = False
            self._write("\r")

    def restore(self) -> None:
        """The terminal as it was (prompt_toolkit restores the mode it found: ours)."""
        self.clear()
        import termios

        with contextlib.suppress(OSError, termios.error):
            termios.tcsetattr(self.fd_in, termios.TCSANOW, self.saved)
