"""emutui's terminal emulator engine (pure Python, no Textual import).

``Terminal(cols, rows, scrollback).feed(bytes)`` parses guest output into a
``Screen`` with a bounded scrollback; see docs/console.md for what is emulated.
"""

from emutui.tui.term.parser import Terminal
from emutui.tui.term.screen import HistoryLine, Screen
from emutui.tui.term.styles import Style, StyleTable

__all__ = ["HistoryLine", "Screen", "Style", "StyleTable", "Terminal"]
