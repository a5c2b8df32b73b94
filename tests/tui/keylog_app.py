"""A tiny app on emutui's driver that writes every key it gets to a file (tmux tests)."""

from __future__ import annotations

import sys

from textual import events
from textual.app import App, ComposeResult
from textual.widgets import Static

from emutui.tui.keyinput import EmutuiDriver


class KeyLog(App[None]):
    def __init__(self, path: str) -> None:
        super().__init__(driver_class=EmutuiDriver)
        self.path = path

    def compose(self) -> ComposeResult:
        yield Static("keylog ready")

    def on_key(self, event: events.Key) -> None:
        with open(self.path, "a") as f:
            f.write(event.key + "\n")
        if event.key == "q":
            self.exit()


if __name__ == "__main__":
    KeyLog(sys.argv[1]).run()
