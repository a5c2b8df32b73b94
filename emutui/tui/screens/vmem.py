"""The hex view on virtual addresses (``m`` in the CPU pane): memory as the CPU sees it,
read through the gdb stub (``m`` packets), beside the Memory pane's physical regions."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from emutui.core.errors import EmutuiError
from emutui.core.model import MemoryRegion
from emutui.tui.screens.dialogs import PromptScreen
from emutui.tui.widgets.hexview import HexView


class VirtualMemoryScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,m", "dismiss", "Close"),
        Binding("g", "goto", "Goto"),
        Binding("ctrl+r", "reload", "Reload", show=False),
    ]
    DEFAULT_CSS = """
    VirtualMemoryScreen { align: center middle; }
    #vmem { width: 95%; height: 90%; border: thick $primary; background: $surface; }
    #vmem-hex { height: 1fr; }
    #vmem-status { height: 1; }
    """

    def __init__(self, name: str, session: Any, cpu: int, start: int) -> None:
        super().__init__()
        self.inst_name = name
        self.session = session
        self.cpu = cpu
        self.start = start
        mode = session.mode(session.last_regs)
        narrow = mode in ("x86-16", "x86-32", "arm", "thumb", "riscv32")
        bits = 32 if narrow else min(session.pc_bits, 48)
        self.vregion = MemoryRegion(
            name="virtual", base=0, size=1 << bits, description="as the CPU sees it"
        )

    def compose(self) -> ComposeResult:
        with Vertical(id="vmem"):
            yield Static(
                f"[b]{escape(self.inst_name)}[/]  virtual memory of cpu {self.cpu} "
                "[dim](through the gdb stub; g goes to an address or symbol, Esc closes)[/]"
            )
            yield HexView(id="vmem-hex")
            yield Static("", id="vmem-status")

    def on_mount(self) -> None:
        hv = self.query_one(HexView)
        sess, cpu = self.session, self.cpu

        async def reader(_name: str, offset: int, length: int) -> bytes:
            return bytes(await sess.read(offset, length, cpu))

        hv.set_region(self.vregion, reader)
        hv.goto(self.start)
        hv.focus()
        self._status()

    @on(HexView.CursorMoved)
    @on(HexView.ReadFailed)
    def _status(self) -> None:
        hv = self.query_one(HexView)
        where = self.session.where(hv.cursor)
        err = f"  [red]{escape(str(hv.last_error))}[/]" if hv.last_error else ""
        self.query_one("#vmem-status", Static).update(f"cursor {escape(where)}{err}")

    def action_reload(self) -> None:
        self.query_one(HexView).invalidate()

    def action_goto(self) -> None:
        def check(text: str) -> str | None:
            try:
                self.session.address(text)
            except EmutuiError as e:
                return str(e)
            return None

        def done(text: str | None) -> None:
            if text:
                hv = self.query_one(HexView)
                hv.goto(self.session.address(text) % self.vregion.size)
                hv.focus()

        self.app.push_screen(
            PromptScreen(
                "Go to address or symbol", placeholder="0x1000 or jiffies", validate=check
            ),
            done,
        )
