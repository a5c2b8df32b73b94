"""A Footer that recomposes once per change of what it shows (issue 15 item 28).

Textual's Footer recomposes (a dozen new widgets, each styled) every time the
screen's bindings are refreshed, and they are refreshed several times per switch
of instance or focus: three recomposes per switch were measured, ~15 ms each at
120x40, which is what a key pressed meanwhile waits behind. This one coalesces the
requests made before the next refresh into one, and skips it when the keys shown
are the same as before.
"""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.widgets import Footer


class QuietFooter(Footer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending = False
        self._shown: tuple[Any, ...] | None = None
        self.recomposes = 0

    def _signature(self) -> tuple[Any, ...]:
        return tuple(
            (b.key, b.key_display, b.description, b.show, enabled, tooltip)
            for (_node, b, enabled, tooltip) in self.screen.active_bindings.values()
        )

    def bindings_changed(self, screen: Screen[Any]) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen and not self._pending:
            self._pending = True
            self.call_after_refresh(self._recompose_if_changed)

    async def _recompose_if_changed(self) -> None:
        self._pending = False
        if not self.is_attached:
            return
        sig = self._signature()
        if sig == self._shown:
            return
        self._shown = sig
        self.recomposes += 1
        await self.recompose()
