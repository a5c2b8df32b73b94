"""CPU pane: registers, disassembly around PC, run control, breakpoints, snapshots.

The pane talks to a CpuSession (emutui/backends/gdb/session.py), which talks to
the instance's gdb hub: the widgets hold no socket. Two hub connections per
instance: one for commands, one that long-polls for stops (``wait``), so a
guest that stops on its own (a breakpoint, a CLI ``emutui cpu NAME stop``) is
shown at once and a stop key is never queued behind a waiting continue.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from rich.markup import escape
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from emutui.core.errors import BusyError, EmutuiError
from emutui.tui.links import InstanceLink
from emutui.tui.screens.dialogs import ConfirmScreen, PickScreen, PromptScreen

WATCH_PERIOD = 1.0  # the watcher's long-poll: a stop shows at once, run state within this
BACK = 6  # instructions shown before PC

_X86_32 = {
    "rax": "eax",
    "rbx": "ebx",
    "rcx": "ecx",
    "rdx": "edx",
    "rsi": "esi",
    "rdi": "edi",
    "rbp": "ebp",
    "rsp": "esp",
    "rip": "eip",
}
_X86_HIDE_32 = {f"r{i}" for i in range(8, 16)} | {"k_gs_base", "cr8"}
# x87 and SSE control state: rarely what a stop is about, and it pushes the
# breakpoint list off a 40-row screen
_X86_HIDE = {"fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop", "mxcsr"}


def session_factory(link: InstanceLink) -> Any:
    """A CpuSession for ``link`` (the app may replace this: tests use a fake)."""
    from emutui.backends.gdb.session import CpuSession

    return CpuSession(link.inst)


def supports(link: InstanceLink | None) -> bool:
    # A lab host's instance: its gdb hub and ELF live on the host; `emutui cpu
    # NAME@HOST …` works there, the pane does not reach it yet (docs/remote.md).
    return link is not None and link.inst.host is None and link.inst.backend in ("qemu", "renode")


class DisasmView(Widget, can_focus=True):
    """Instructions as rows (Line API); a cursor row; PC and breakpoints marked."""

    DEFAULT_CSS = """
    DisasmView { height: 1fr; width: 1fr; }
    """
    BINDINGS = [
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("pagedown", "move(10)", "PgDn", show=False),
        Binding("pageup", "move(-10)", "PgUp", show=False),
    ]

    class CursorMoved(Message):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.insns: list[Any] = []
        self.labels: dict[int, str] = {}
        self.pc: int | None = None
        self.breaks: set[int] = set()
        self.cursor = 0
        self.top = 0
        self.show_bytes = True
        self._rows: list[tuple[int, int | None]] = []  # (kind 0=label 1=insn, insn index)
        self.message = ""

    def set_code(
        self, insns: list[Any], labels: dict[int, str], pc: int | None, cursor_addr: int | None
    ) -> None:
        self.insns = insns
        self.labels = labels
        self.pc = pc
        self._rows = []
        for i, ins in enumerate(insns):
            if ins.addr in labels:
                self._rows.append((0, i))
            self._rows.append((1, i))
        want = cursor_addr if cursor_addr is not None else pc
        self.cursor = next((i for i, ins in enumerate(insns) if ins.addr == want), 0)
        self.message = ""
        self._scroll_to_cursor(center=True)
        self.refresh()

    def set_message(self, text: str) -> None:
        self.insns, self._rows, self.message = [], [], text
        self.refresh()

    def cursor_addr(self) -> int | None:
        if 0 <= self.cursor < len(self.insns):
            return int(self.insns[self.cursor].addr)
        return None

    def _cursor_row(self) -> int:
        for r, (kind, idx) in enumerate(self._rows):
            if kind == 1 and idx == self.cursor:
                return r
        return 0

    def _scroll_to_cursor(self, center: bool = False) -> None:
        h = max(1, self.size.height or 10)
        row = self._cursor_row()
        if center:
            self.top = max(0, row - h // 3)
        elif row < self.top:
            self.top = row
        elif row >= self.top + h:
            self.top = row - h + 1

    def action_move(self, delta: int) -> None:
        if not self.insns:
            return
        self.cursor = max(0, min(len(self.insns) - 1, self.cursor + delta))
        self._scroll_to_cursor()
        self.refresh()
        self.post_message(self.CursorMoved(self.cursor))

    def on_resize(self) -> None:
        self._scroll_to_cursor()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        r = self.top + y
        if not self._rows:
            if y == 0 and self.message:
                msg = Segment(self.message[:width], Style(dim=True))
                return Strip([msg]).extend_cell_length(width).apply_style(self.rich_style)
            return Strip.blank(width, self.rich_style)
        if r >= len(self._rows):
            return Strip.blank(width, self.rich_style)
        kind, idx = self._rows[r]
        assert idx is not None
        ins = self.insns[idx]
        if kind == 0:
            label = Segment(f"{ins.addr:08x} <{self.labels[ins.addr]}>:", _LABEL)
            return (
                Strip([label]).crop(0, width).extend_cell_length(width).apply_style(self.rich_style)
            )
        is_pc = ins.addr == self.pc
        mark = "▶" if is_pc else " "
        bp = "●" if ins.addr in self.breaks else " "
        segs = [
            Segment(bp, _BP),
            Segment(mark + " ", _PC if is_pc else _DIM),
            Segment(f"{ins.addr:8x}  ", _ADDR),
        ]
        if self.show_bytes and width >= 60:
            segs.append(Segment(f"{ins.raw.hex(' ')[:20]:<21} ", _DIM))
        segs.append(Segment(f"{ins.mnemonic:<7}", _PC_TEXT if is_pc else _MNEM))
        segs.append(Segment(" " + ins.op_str))
        strip = Strip(segs).crop(0, width).extend_cell_length(width)
        if idx == self.cursor:
            strip = strip.apply_style(_CURSOR_FOCUS if self.has_focus else _CURSOR)
        return strip.apply_style(self.rich_style)


_LABEL = Style(color="magenta", bold=True)
_BP = Style(color="red", bold=True)
_PC = Style(color="green", bold=True)
_PC_TEXT = Style(color="green", bold=True)
_DIM = Style(dim=True)
_ADDR = Style(color="cyan")
_MNEM = Style(color="yellow")
_CURSOR = Style(bgcolor="grey23")
_CURSOR_FOCUS = Style(bgcolor="blue", color="white")


class CpuPane(Vertical):
    BINDINGS = [
        Binding("c", "cont", "Cont"),
        Binding("p", "stop", "Stop"),
        Binding("s", "step", "Step"),
        Binding("n", "next", "Next"),
        Binding("r", "run_to", "To cursor", show=False),
        Binding("b", "toggle_break", "Break"),
        Binding("w", "watch", "Watch", show=False),
        Binding("g", "goto", "Goto"),
        Binding("full_stop,f", "follow_pc", "PC", key_display="."),
        Binding("m", "memory", "Mem", show=False),
        Binding("C", "pick_cpu", "CPU", show=False),
        Binding("D", "delete_points", "Del all", show=False),
        Binding("G", "gdb", "gdb", show=False),
        Binding("S", "snap_save", "Save snap", show=False),
        Binding("L", "snap_load", "Load snap", show=False),
        Binding("X", "snap_delete", "Del snap", show=False),
    ]

    class Refreshed(Message):
        """The pane shows a new stop (the bench waits on this)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.link: InstanceLink | None = None
        self.session: Any = None
        self.cpu = 0
        self.prev_regs: dict[str, int] = {}
        self.regs: dict[str, int] = {}
        self.pc: int | None = None
        self.running = False
        self.seq = -1
        self.why = ""
        self.points: list[dict[str, Any]] = []
        self.snaps: list[str] = []
        self.temp_break: int | None = None
        self.view_addr: int | None = None  # None: follow PC
        self._gen = 0
        self._regs_key: tuple[int, int] | None = None
        self._reload_lock = asyncio.Lock()
        self._lines: dict[str, int] = {}
        self.error = ""

    def compose(self) -> ComposeResult:
        yield Static("", id="cpu-state", classes="status-line")
        with Horizontal(id="cpu-body"):
            yield DisasmView(id="disasm")
            with Vertical(id="cpu-side"):
                yield Static("", id="cpu-regs")
                yield Static("", id="cpu-points")
        yield Static("", id="cpu-status", classes="status-line")

    @property
    def disasm(self) -> DisasmView:
        return self.query_one(DisasmView)

    # -- instance switching ---------------------------------------------------------

    def show(self, link: InstanceLink | None) -> None:
        if link is self.link and self.session is not None:
            return
        self._close_session()
        self.link = link
        self.regs, self.prev_regs, self.points, self.pc = {}, {}, [], None
        self.cpu, self.seq, self.view_addr, self.error = 0, -1, None, ""
        self._gen += 1
        self.disasm.set_message("")
        self._paint_side()
        if link is None or not supports(link):
            self._state("no CPU to show for this instance")
            return
        self._state("[dim]the CPU is attached when this tab is opened[/]")
        if self.display and self.is_on_screen:
            self.attach()

    def on_show(self) -> None:
        if self.link is not None and self.session is None and supports(self.link):
            self.attach()

    def _close_session(self) -> None:
        sess, self.session = self.session, None
        self.workers.cancel_group(self, "cpu-watch")
        if sess is not None:
            asyncio.get_running_loop().create_task(_quiet_close(sess))

    @work(exclusive=True, group="cpu-attach", exit_on_error=False)
    async def attach(self) -> None:
        link = self.link
        if link is None:
            return
        factory = getattr(self.app, "cpu_factory", None) or session_factory
        self._state("[dim]attaching to the gdb stub…[/]")
        sess = factory(link)
        try:
            await sess.connect()
        except EmutuiError as e:
            self._state(f"[b red]no CPU:[/] {escape(str(e))}")
            return
        if link is not self.link:
            await _quiet_close(sess)
            return
        self.session = sess
        self.watch_stops(self._gen)
        await self.reload()

    # -- painting -----------------------------------------------------------------------

    def _state(self, markup: str) -> None:
        self.query_one("#cpu-state", Static).update(markup, layout=False)

    def _status(self, markup: str) -> None:
        self.query_one("#cpu-status", Static).update(markup, layout=False)

    def _state_line(self) -> str:
        sess = self.session
        many = sess is not None and sess.cpus > 1
        cpus = f"  [dim]cpu {self.cpu} of {sess.cpus} (C picks)[/]" if many else ""
        if self.running:
            return f"[b green]● running[/]{cpus}"
        if self.pc is None:
            return f"[b yellow]■ stopped[/]{cpus}"
        where = escape(sess.where(self.pc)) if sess is not None else f"0x{self.pc:x}"
        why = f" — {escape(self.why)}" if self.why else ""
        return f"[b yellow]■ stopped[/] at [b]{where}[/]{why}{cpus}"

    def _paint_side(self) -> None:
        # A new layout only when a box changes height: a relayout repaints the whole
        # screen, which is most of a step's cost on a slow terminal link.
        for wid, text in (("#cpu-regs", self._regs_text()), ("#cpu-points", self._points_text())):
            lines = len(text.plain.splitlines())
            box = self.query_one(wid, Static)
            box.update(text, layout=self._lines.get(wid) != lines)
            self._lines[wid] = lines

    def _regs_text(self) -> Text:
        t = Text()
        if not self.regs:
            return t
        sess = self.session
        mode = sess.mode(self.regs) if sess is not None else ""
        narrow = mode in ("x86-32", "x86-16")
        order = getattr(sess, "reg_order", None) or list(self.regs)
        shown = 0
        for name in order:
            if name not in self.regs:
                continue
            bits = sess.reg_bits(name) if sess is not None else 32
            if bits > 64 or name in _X86_HIDE or (narrow and name in _X86_HIDE_32):
                continue
            value = self.regs[name]
            label = _X86_32.get(name, name) if narrow else name
            if narrow and name in _X86_32:
                value &= 0xFFFFFFFF
                bits = 32
            digits = max(2, min(bits, 64) // 4)
            if narrow and value < 1 << 32:
                digits = min(digits, 8)
            changed = self.prev_regs and self.prev_regs.get(name) != self.regs[name]
            style = "bold reverse yellow" if changed else ""
            t.append(f"{label:<8}", style="cyan")
            t.append(f"{value:0{digits}x}", style=style)
            t.append("\n")
            shown += 1
        return t

    def _points_text(self) -> Text:
        t = Text()
        if self.points:
            t.append("breakpoints / watchpoints\n", style="bold")
        sess = self.session
        for p in self.points:
            sym = sess.describe(p["addr"]) if sess is not None else ""
            where = sym or f"0x{p['addr']:x}"
            ln = f" ×{p['len']}" if p["kind"] != "break" else ""
            t.append(f"{p['kind']:<6} ", style="red" if p["kind"] == "break" else "magenta")
            t.append(f"{where}{ln}\n")
        if self.snaps:
            t.append("snapshots\n", style="bold")
            for s in self.snaps:
                t.append(f"  {s}\n")
        return t

    async def reload(self, cursor_addr: int | None = None) -> None:
        """Fetch state, registers, code and points; paint. One place for every refresh."""
        sess = self.session
        if sess is None:
            return
        async with self._reload_lock:
            await self._reload(sess, cursor_addr)

    async def _reload(self, sess: Any, cursor_addr: int | None) -> None:
        try:
            # Everything is fetched first and assigned together just before the
            # paint: a reader of the pane never sees a PC with another stop's text.
            # Two hub round trips when stopped: registers (with state and
            # points), then the code.
            regs = None
            try:
                regs = await sess.regs(self.cpu)
                st, points = regs.state, regs.points
            except BusyError:  # running
                st = await sess.state()
                points = await sess.points()
            if st.running or regs is None:
                self.running, self.seq, self.why, self.points = True, st.seq, "", points
                self.pc = None
                self.disasm.pc = None
                self.disasm.breaks = {p["addr"] for p in points if p["kind"] == "break"}
                if not self.disasm.insns:
                    self.disasm.set_message("running: p stops, b sets breakpoints on the cursor")
                self.disasm.refresh()
            else:
                addr = self.view_addr if self.view_addr is not None else regs.pc
                insns = await sess.disassemble(addr, 40, regs=regs, cpu=self.cpu, before=BACK)
                labels = {i.addr: n for i in insns if (n := sess.symbols.at(i.addr))}
                key = (st.seq, self.cpu)
                if key != self._regs_key:  # a new stop: what changed is marked
                    self.prev_regs, self._regs_key = self.regs, key
                self.running, self.seq, self.points = False, st.seq, points
                self.regs = regs.values
                self.why = _why(sess, regs.state, regs.pc, points)
                self.disasm.breaks = {p["addr"] for p in points if p["kind"] == "break"}
                self.disasm.set_code(insns, labels, regs.pc, cursor_addr or addr)
                self.pc = regs.pc
            self.error = ""
        except EmutuiError as e:
            self.error = str(e)
        self._state(self._state_line())
        self._paint_side()
        self._status(f"[red]{escape(self.error)}[/]" if self.error else self._hint())
        self.post_message(self.Refreshed())

    def _hint(self) -> str:
        return "[dim]r to cursor  w watch  D del all  m memory  C cpu  G gdb  S/L/X snapshots[/]"

    # -- watching for stops ----------------------------------------------------------------

    @work(exclusive=True, group="cpu-watch", exit_on_error=False)
    async def watch_stops(self, gen: int) -> None:
        sess = self.session
        while sess is not None and gen == self._gen:
            try:
                st = await sess.watch(self.seq, WATCH_PERIOD)
            except EmutuiError as e:
                self._status(f"[red]{escape(str(e))}[/]")
                await asyncio.sleep(2.0)
                continue
            if gen != self._gen:
                return
            if st.seq != self.seq or st.running != self.running:
                async with self._reload_lock:
                    # a command's own refresh may have shown this stop meanwhile
                    if st.seq == self.seq and st.running == self.running:
                        continue
                if not st.running and self.temp_break is not None:
                    addr, self.temp_break = self.temp_break, None
                    with contextlib.suppress(EmutuiError):
                        if not any(p["addr"] == addr for p in self.points if p.get("user")):
                            await sess.remove_point(addr)
                await self.reload()

    # -- actions --------------------------------------------------------------------------

    def _need(self) -> Any:
        if self.session is None:
            self.app.notify("the CPU is not attached", severity="warning")
        return self.session

    @work(exclusive=True, group="cpu-cmd", exit_on_error=False)
    async def _run(self, what: str, fn: Any, cursor: int | None = None) -> None:
        try:
            await fn()
        except EmutuiError as e:
            self._status(f"[red]{escape(what)}: {escape(str(e))}[/]")
            return
        await self.reload(cursor)

    def action_cont(self) -> None:
        if (s := self._need()) is not None:
            self.view_addr = None
            self._run("continue", lambda: s.cont(wait=False))

    def action_stop(self) -> None:
        if (s := self._need()) is not None:
            self.view_addr = None
            self._run("stop", s.stop)

    def action_step(self) -> None:
        if (s := self._need()) is not None:
            self.view_addr = None
            self._run("step", lambda: s.step(1, self.cpu))

    def action_next(self) -> None:
        s = self._need()
        if s is None:
            return
        self.view_addr = None
        ins = self.disasm.insns[self.disasm.cursor] if self.disasm.insns else None
        pc_ins = next((i for i in self.disasm.insns if i.addr == self.pc), ins)
        if pc_ins is not None and pc_ins.is_call:
            self._to(pc_ins.addr + pc_ins.size)
        else:
            self._run("step", lambda: s.step(1, self.cpu))

    def action_run_to(self) -> None:
        addr = self.disasm.cursor_addr()
        if addr is not None and self._need() is not None:
            self.view_addr = None
            self._to(addr)

    def _to(self, addr: int) -> None:
        s = self.session

        async def go() -> None:
            if not any(p["addr"] == addr and p["kind"] == "break" for p in self.points):
                await s.set_point("break", addr)
                self.temp_break = addr
            await s.cont(wait=False)

        self._run("run to", go)

    def action_toggle_break(self) -> None:
        s = self._need()
        addr = self.disasm.cursor_addr()
        if s is None or addr is None:
            return

        async def toggle() -> None:
            on = await s.toggle_break(addr)
            self._status(f"breakpoint {'set' if on else 'removed'} at {escape(s.where(addr))}")

        self._run("breakpoint", toggle, cursor=addr)

    def action_delete_points(self) -> None:
        if (s := self._need()) is not None:
            self._run("delete", s.clear_points, cursor=self.disasm.cursor_addr())

    def _prompt_addr(self, title: str, done: Any, default: str = "") -> None:
        s = self.session

        def check(text: str) -> str | None:
            try:
                s.address(text)
            except EmutuiError as e:
                return str(e)
            return None

        def answered(text: str | None) -> None:
            if text:
                done(s.address(text))

        self.app.push_screen(
            PromptScreen(title, placeholder=default or "0x1000 or a symbol", validate=check),
            answered,
        )

    def action_goto(self) -> None:
        if self._need() is None:
            return

        def go(addr: int) -> None:
            self.view_addr = addr
            self._run("goto", _noop, cursor=addr)

        self._prompt_addr("Go to address or symbol", go)

    def action_follow_pc(self) -> None:
        if self._need() is not None:
            self.view_addr = None
            self._run("follow", _noop)

    def action_watch(self) -> None:
        s = self._need()
        if s is None:
            return

        def go(addr: int) -> None:
            self._run("watch", lambda: s.set_point("watch", addr, 4))

        self._prompt_addr("Watch writes to (4 bytes at) address or symbol", go)

    def action_pick_cpu(self) -> None:
        s = self._need()
        if s is None:
            return
        if s.cpus <= 1:
            self.app.notify("this machine has one CPU")
            return

        def picked(v: str | None) -> None:
            if v is not None:
                self.cpu = int(v)
                self.prev_regs = {}
                self._run("cpu", _noop)

        self.app.push_screen(
            PickScreen("CPU", [(str(i), f"cpu {i}") for i in range(s.cpus)]), picked
        )

    def action_memory(self) -> None:
        s = self._need()
        if s is None:
            return
        from emutui.tui.screens.vmem import VirtualMemoryScreen

        start = self.disasm.cursor_addr() or 0
        name = self.link.name if self.link else ""
        self.app.push_screen(VirtualMemoryScreen(name, s, self.cpu, start))

    # -- gdb handover ----------------------------------------------------------------------

    def action_gdb(self) -> None:
        s = self._need()
        if s is None:
            return
        self._gdb(s)

    @work(exclusive=True, group="cpu-cmd", exit_on_error=False)
    async def _gdb(self, s: Any) -> None:
        from emutui.commands.cpu import find_gdb

        try:
            cmd = s.gdb_command(find_gdb())
            self._gen += 1  # the watcher stops asking while gdb holds the stub
            self.workers.cancel_group(self, "cpu-watch")
            await s.release()
        except EmutuiError as e:
            self._status(f"[red]gdb: {escape(str(e))}[/]")
            return
        import subprocess

        rc = None
        try:
            with self.app.suspend():
                rc = subprocess.call(cmd)
        except Exception as e:  # SuspendNotSupported (no terminal, e.g. a test)
            self._status(f"[red]gdb: {escape(str(e))}[/]")
        try:
            await s.reclaim()
        except EmutuiError as e:
            self._status(f"[red]taking the stub back: {escape(str(e))}[/]")
            return
        self.watch_stops(self._gen)
        await self.reload()
        if rc is not None:
            self.app.notify(f"gdb exited ({rc}); the CPU pane has the stub back")

    # -- snapshots --------------------------------------------------------------------------

    async def _snaps(self) -> Any:
        from emutui.backends.qemu.snapshots import Snapshots
        from emutui.backends.snapshots import RenodeSnapshots

        link = self.link
        assert link is not None
        conn = link.require()
        if link.inst.backend == "renode":
            return RenodeSnapshots(conn, link.inst)
        return Snapshots(conn, link.name)

    @work(exclusive=True, group="cpu-snap", exit_on_error=False)
    async def load_snaps(self) -> None:
        try:
            snaps = await self._snaps()
            self.snaps = [s["tag"] for s in await snaps.list()]
        except EmutuiError as e:
            self.snaps = []
            self._status(f"[dim]snapshots: {escape(str(e))}[/]")
        self._paint_side()

    def action_snap_save(self) -> None:
        if self.link is None:
            return

        def done(tag: str | None) -> None:
            if tag:
                self._snap("save", tag.strip())

        self.app.push_screen(PromptScreen("Save a snapshot as", placeholder="tag"), done)

    def _pick_snap(self, title: str, then: Any) -> None:
        if not self.snaps:
            self.app.notify("no snapshots (S saves one)")
            self.load_snaps()
            return
        self.app.push_screen(PickScreen(title, [(s, "") for s in self.snaps]), then)

    def action_snap_load(self) -> None:
        self._pick_snap("Load snapshot", lambda t: t and self._snap("load", t))

    def action_snap_delete(self) -> None:
        def confirm(tag: str | None) -> None:
            if tag:
                self.app.push_screen(
                    ConfirmScreen(f"Delete snapshot {tag}?", yes="Delete"),
                    lambda ok: ok and self._snap("delete", tag),
                )

        self._pick_snap("Delete snapshot", confirm)

    @work(exclusive=True, group="cpu-snap", exit_on_error=False)
    async def _snap(self, verb: str, tag: str) -> None:
        t0 = time.monotonic()
        try:
            snaps = await self._snaps()
            await getattr(snaps, verb)(tag)
            self.snaps = [s["tag"] for s in await snaps.list()]
        except EmutuiError as e:
            self._status(f"[red]snapshot {verb}: {escape(str(e))}[/]")
            return
        self.app.notify(f"snapshot {tag}: {verb} done in {time.monotonic() - t0:.1f} s")
        self.prev_regs = {}
        if verb == "load":
            # The restored machine everywhere: cached memory pages are stale now.
            from emutui.tui.widgets.hexview import HexView

            for hv in self.app.screen.query(HexView):
                hv.invalidate()
        await self.reload()

    @on(DisasmView.CursorMoved)
    def _cursor(self, event: DisasmView.CursorMoved) -> None:
        s = self.session
        addr = self.disasm.cursor_addr()
        if s is not None and addr is not None and not self.error:
            d = s.describe(addr)
            self._status(f"cursor {escape(s.where(addr)) if d else f'0x{addr:x}'}")


async def _noop() -> None:
    return None


async def _quiet_close(sess: Any) -> None:
    with contextlib.suppress(Exception):
        await sess.close()


def _why(sess: Any, st: Any, pc: int, points: list[dict[str, Any]]) -> str:
    """QEMU says "trap" for breakpoints; say "breakpoint" when PC is on one."""
    if st.why == "trap" and any(p["addr"] == pc and p["kind"] == "break" for p in points):
        return "breakpoint"
    if st.why == "trap":
        return "step"
    return str(st.why)
