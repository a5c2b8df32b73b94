"""The key footer: one widget drawing one line (issue 15 items 27 and 28).

Textual's Footer is a container of one widget per key, rebuilt (removed, composed,
mounted and styled) whenever the keys on offer change, which they do each time
focus moves between a console and the rest: ~20 ms of the event loop, run from the
screen's own queue, so a key typed meanwhile (``Ctrl+] 1 Down`` in one write)
waited behind it. This footer draws the same line itself from the screen's active
bindings: a change costs one repaint of one row. Keys stay clickable (a click runs
the key, as Textual's footer does).
"""

from __future__ import annotations

from typing import Any

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget


class KeyFooter(Widget, can_focus=False):
    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"footer-key--key", "footer-key--description"}
    DEFAULT_CSS = """
    KeyFooter {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
        .footer-key--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        .footer-key--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: tuple[Any, ...] | None = None
        self._ready = False
        self.redraws = 0  # lines drawn because the keys changed
        self._spans: list[tuple[int, int, str]] = []  # cells of each key, for clicks
        self._pending_keys: list[tuple[Binding, bool]] | None = None

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _keys(self) -> list[tuple[Binding, bool]]:
        palette = self.app.COMMAND_PALETTE_BINDING if self.app.ENABLE_COMMAND_PALETTE else None
        seen: set[str] = set()
        keys = []
        for _node, binding, enabled, _tooltip in self.screen.active_bindings.values():
            # one entry per action, as Textual's footer (the first key bound to it)
            if binding.show and binding.key != palette and binding.action not in seen:
                seen.add(binding.action)
                keys.append((binding, enabled))
        return keys

    def _signature(self, keys: list[tuple[Binding, bool]]) -> tuple[Any, ...]:
        shown = tuple((b.key, b.key_display, b.description, on) for b, on in keys)
        return (*shown, self.app.ansi_color, self.app.theme)

    def _bindings_changed(self, screen: Screen[Any]) -> None:
        self._ready = True
        if screen is not self.screen or not self.is_attached:
            return
        keys = self._keys()
        if self._signature(keys) != self._shown:
            self._pending_keys = keys
            self.refresh()

    def render(self) -> Text:
        if not self._ready:
            return Text()
        keys, self._pending_keys = self._pending_keys or self._keys(), None
        self._shown = self._signature(keys)
        self.redraws += 1
        key_style = self.get_component_rich_style("footer-key--key")
        desc_style = self.get_component_rich_style("footer-key--description")
        dim = Style(dim=True)
        line = Text(no_wrap=True, overflow="crop", end="")
        spans: list[tuple[int, int, str]] = []

        def key(binding: Binding, enabled: bool) -> None:
            start = line.cell_len
            extra = Style() if enabled else dim
            line.append(f" {self.app.get_key_display(binding)} ", key_style + extra)
            if binding.description:
                line.append(f"{binding.description} ", desc_style + extra)
            spans.append((start, line.cell_len, binding.key))

        for binding, enabled in keys:
            key(binding, enabled)
        palette = self._palette()
        if palette is not None:
            # drawn as Textual's: "▏^p palette", against the right edge
            binding, enabled = palette
            extra = Style() if enabled else dim
            shown = self.app.get_key_display(binding)
            width = 1 + len(shown) + 1 + len(binding.description)
            if self.size.width > line.cell_len + width:
                line.append(" " * (self.size.width - line.cell_len - width))
                start = line.cell_len
                line.append("▏", Style(dim=True))
                line.append(shown, key_style + extra)
                line.append(f" {binding.description}", desc_style + extra)
                spans.append((start, line.cell_len, binding.key))
        self._spans = spans
        return line

    def _palette(self) -> tuple[Binding, bool] | None:
        """The command palette's key, on the right as in Textual's footer."""
        if not self.app.ENABLE_COMMAND_PALETTE:
            return None
        found = self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)
        if found is None:
            return None
        _node, binding, enabled, _tooltip = found
        return binding, enabled

    def on_click(self, event: events.Click) -> None:
        # a click on a key runs the key, as on Textual's footer
        for start, end, key in self._spans:
            if start <= event.x < end:
                self.app.simulate_key(key)
                return

    def on_resize(self, event: events.Resize) -> None:
        self.refresh()
