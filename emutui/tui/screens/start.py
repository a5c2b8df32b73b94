"""Start a target from the TUI as from the CLI (``emutui start TARGET --name N --paused``):
the target, the instance name (a free one suggested), paused or not."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from emutui.core.errors import EmutuiError


@dataclass(frozen=True)
class StartRequest:
    target: str
    name: str
    paused: bool


def free_name(target: str, taken: set[str]) -> str:
    """The target's own name if no instance has it, else ``target-2``, ``target-3``, …"""
    if target not in taken:
        return target
    n = 2
    while f"{target}-{n}" in taken:
        n += 1
    return f"{target}-{n}"


class StartScreen(ModalScreen[StartRequest | None]):
    """Target list, name (suggested, editable), paused; Enter in the name starts."""

    AUTO_FOCUS = "#start-targets"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        targets: list[tuple[str, str]],
        taken: Callable[[], set[str]],
        check: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        self.targets = targets
        self.taken = taken
        self.check = check  # raises EmutuiError for a name that cannot be used
        self._suggested = ""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="start-dialog"):
            yield Label("Start a target", classes="dialog-text")
            yield OptionList(
                *(Option(f"{k}  [dim]{d}[/]", id=k) for k, d in self.targets), id="start-targets"
            )
            yield Label("Instance name (a free one is suggested)")
            yield Input(id="start-name", placeholder="name", compact=True)
            yield Checkbox(
                "start paused (the guest waits for resume)", id="start-paused", compact=True
            )
            yield Static("", id="start-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons", id="start-buttons"):
                yield Button("Start", variant="primary", id="start-go", compact=True)
                yield Button("Cancel", id="start-cancel", compact=True)

    def on_mount(self) -> None:
        if self.targets:
            self.query_one(OptionList).highlighted = 0
            self._suggest(self.targets[0][0])

    @property
    def target(self) -> str | None:
        ol = self.query_one(OptionList)
        if ol.highlighted is None:
            return None
        return ol.get_option_at_index(ol.highlighted).id

    def _suggest(self, target: str) -> None:
        box = self.query_one("#start-name", Input)
        if box.value in ("", self._suggested):  # the user's own name stays
            self._suggested = free_name(target, self.taken())
            box.value = self._suggested

    @on(OptionList.OptionHighlighted)
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id:
            self._suggest(event.option.id)

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.query_one("#start-name", Input).focus()  # Enter on a target: on to its name

    @on(Input.Submitted, "#start-name")
    def _name_done(self) -> None:
        self._go()

    @on(Button.Pressed, "#start-go")
    def _go_pressed(self) -> None:
        self._go()

    @on(Button.Pressed, "#start-cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)

    def _go(self) -> None:
        target = self.target
        name = self.query_one("#start-name", Input).value.strip()
        err = self.query_one("#start-error", Static)
        if target is None:
            err.update("pick a target")
            return
        if not name:
            err.update("type a name for the instance")
            return
        if name in self.taken():
            err.update(f"{name!r} is already running: suggested {free_name(name, self.taken())}")
            return
        if self.check is not None:
            try:
                self.check(name)
            except EmutuiError as e:
                err.update(str(e))
                return
        paused = self.query_one("#start-paused", Checkbox).value
        self.dismiss(StartRequest(target, name, paused))

    def action_cancel(self) -> None:
        self.dismiss(None)
