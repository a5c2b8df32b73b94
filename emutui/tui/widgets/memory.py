"""Memory pane: pick a region, browse it in the hex view, follow, goto, edit."""

from __future__ import annotations

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Select, Static

from emutui.core.errors import EmutuiError
from emutui.core.memvalue import WriteValue, parse_write_value
from emutui.core.model import Capability, MemoryRegion
from emutui.tui.links import InstanceLink
from emutui.tui.screens.dialogs import PromptScreen
from emutui.tui.widgets.hexview import FOLLOW_PERIOD, HexView, parse_offset


def _write_refusal(link: InstanceLink, region: MemoryRegion) -> str | None:
    """Why ``region`` cannot be written, in the connector's own words (the CLI's)."""
    ask = getattr(link.conn, "write_refusal", None)
    if ask is not None:
        return ask(region)  # type: ignore[no-any-return]
    if not region.writable or Capability.MEMORY_WRITE not in link.capabilities:
        return f"{region.name} is read-only for this backend"
    return None


def _set_options(sel: Select[str], options: list[tuple[str, str]]) -> None:
    """Regions to pick from, with no blank entry once there is something to pick (a
    blank one only emptied the hex view); blank only while there is nothing."""
    sel._allow_blank = not options  # Textual keeps the flag private; nothing else sets it
    sel.set_options(options)


def _size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} B"


def parse_hex_bytes(text: str) -> bytes:
    t = text.strip().lower().replace("0x", "").replace(" ", "").replace(",", "")
    if not t or len(t) % 2:
        raise ValueError("type hex bytes, e.g. 'de ad be ef' (an even number of digits)")
    try:
        return bytes.fromhex(t)
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not hex bytes") from None


class MemoryPane(Vertical):
    BINDINGS = [
        Binding("g", "goto", "Goto"),
        Binding("w", "word_size", "Word"),
        Binding("f", "follow", "Follow"),
        Binding("e", "edit", "Edit"),
        Binding("ctrl+r", "reload", "Reload", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.link: InstanceLink | None = None
        self.regions: list[MemoryRegion] = []
        # (instance, region) pairs the user asked to follow: an explicit choice per
        # region, off by default (re-reading MMIO clears registers, drains FIFOs).
        self.following: set[tuple[str, str]] = set()

    def compose(self) -> ComposeResult:
        with Horizontal(id="mem-bar"):
            yield Select[str]([], prompt="region", id="mem-region", allow_blank=True, compact=True)
            yield Static("", id="mem-info")
        yield HexView(id="hexview")
        yield Static("", id="mem-status", classes="status-line")

    @property
    def hex(self) -> HexView:
        return self.query_one(HexView)

    def show(self, link: InstanceLink | None) -> None:
        """Switch to an instance (or to nothing)."""
        self.link = link
        self.regions = []
        self.hex.set_region(None, None)
        _set_options(self.query_one("#mem-region", Select), [])
        self._status("")
        if link is not None and link.conn is not None:
            self.load_regions()

    def _status(self, text: str) -> None:
        self.query_one("#mem-status", Static).update(text, layout=False)

    @work(exclusive=True, group="mem-regions", exit_on_error=False)
    async def load_regions(self) -> None:
        link = self.link
        if link is None:
            return
        try:
            regions = await link.require().regions()
        except EmutuiError as e:
            self._status(f"[b]regions:[/] {escape(str(e))}")
            return
        if link is not self.link:
            return
        self.regions = regions
        sel = self.query_one("#mem-region", Select)
        _set_options(sel, [(f"{r.name}  {_size(r.size)}", r.name) for r in regions])
        if regions:
            sel.value = regions[0].name
        else:
            self._status("this instance exposes no memory regions")

    def select_region(self, name: str) -> None:
        self.query_one("#mem-region", Select).value = name

    @on(Select.Changed, "#mem-region")
    def _region_changed(self, event: Select.Changed) -> None:
        region = next((r for r in self.regions if r.name == event.value), None)
        link = self.link
        if region is None or link is None:
            self.hex.set_region(None, None)
            self.query_one("#mem-info", Static).update("")
            return

        async def reader(name: str, offset: int, length: int) -> bytes:
            return await link.require().read(name, offset, length)

        self.hex.set_region(region, reader, follow=(link.name, region.name) in self.following)
        width = f"  {region.access_width * 8}-bit access" if region.access_width > 1 else ""
        rw = "rw" if region.writable and Capability.MEMORY_WRITE in link.capabilities else "ro"
        self.query_one("#mem-info", Static).update(
            f"0x{region.base:x}  {_size(region.size)}  {rw}{width}  {escape(region.description)}"
        )
        # MMIO: one register per group; RAM: bytes with the ASCII column.
        self.hex.word_size = region.access_width if region.access_width > 1 else 1
        self._update_status()

    @on(HexView.CursorMoved)
    def _update_status(self) -> None:
        hv = self.hex
        if hv.mem_region is None:
            return
        mode = f"{hv.word_size * 8}-bit words" if hv.word_size > 1 else "bytes"
        follow = "  [b]following[/]" if hv.follow else ""
        err = f"  [red]{escape(str(hv.last_error))}[/]" if hv.last_error else ""
        self._status(f"cursor 0x{hv.cursor:x}  {mode}{follow}{err}")

    @on(HexView.ReadFailed)
    def _read_failed(self, event: HexView.ReadFailed) -> None:
        self._update_status()

    def action_goto(self) -> None:
        hv = self.hex
        if hv.mem_region is None:
            self.app.notify("pick a region first", severity="warning")
            return
        size = hv.mem_region.size

        def check(text: str) -> str | None:
            try:
                parse_offset(text, size)
            except ValueError as e:
                return str(e)
            return None

        def done(text: str | None) -> None:
            if text is not None:
                hv.goto(parse_offset(text, size))
                hv.focus()

        self.app.push_screen(
            PromptScreen(
                f"Go to offset in {hv.mem_region.name} (size 0x{size:x})", "0x", validate=check
            ),
            done,
        )

    def action_word_size(self) -> None:
        hv = self.hex
        sizes = [1, 2, 4, 8]
        hv.word_size = sizes[(sizes.index(hv.word_size) + 1) % len(sizes)]
        self._update_status()

    def action_follow(self) -> None:
        hv, link = self.hex, self.link
        region = hv.mem_region
        if region is None or link is None:
            self.app.notify("pick a region first", severity="warning")
            return
        on = not hv.follow
        key = (link.name, region.name)
        if on:
            self.following.add(key)
        else:
            self.following.discard(key)
        hv.set_follow(on)
        if on and region.access_width > 1:
            self.app.notify(
                f"{region.name} is MMIO: its registers are now read every "
                f"{FOLLOW_PERIOD:g} s, and device reads can have side effects "
                "(clear-on-read registers, FIFOs). f stops.",
                title="follow on",
                severity="warning",
                markup=False,
            )
        self._update_status()

    def action_reload(self) -> None:
        self.hex.invalidate()

    def action_edit(self) -> None:
        hv, link = self.hex, self.link
        region = hv.mem_region
        if region is None or link is None:
            return
        refusal = _write_refusal(link, region)
        if refusal:
            # the connector's own words, the same the CLI prints (e.g. qtest = true)
            self.app.notify(refusal, severity="warning", markup=False)
            return
        w = max(region.access_width, 1)
        offset = hv.cursor - hv.cursor % w
        view_w = max(hv.word_size, w)

        def parse(text: str) -> WriteValue:
            return parse_write_value(text, view_w, region.byte_order)

        def check(text: str) -> str | None:
            try:
                data = parse(text).data
            except ValueError as e:
                return str(e)
            if len(data) % w:
                return f"{region.name} takes whole {w * 8}-bit words ({w} bytes at a time)"
            if offset + len(data) > region.size:
                return "that runs past the end of the region"
            return None

        def done(text: str | None) -> None:
            if text is not None:
                self._write(region.name, offset, parse(text).data)

        order = region.byte_order
        self.app.push_screen(
            PromptScreen(
                f"Write at {region.name}+0x{offset:x}: 0x12345678 is a number "
                f"(a {view_w * 8}-bit {order}-endian word), de ad be ef are bytes "
                "(memory order)",
                placeholder=f"0x{'12345678'[: view_w * 2]:0>{view_w * 2}}  or  de ad be ef",
                validate=check,
            ),
            done,
        )

    @work(group="mem-write", exit_on_error=False)
    async def _write(self, region: str, offset: int, data: bytes) -> None:
        try:
            await self.link.require().write(region, offset, data)  # type: ignore[union-attr]
        except EmutuiError as e:
            self.app.notify(str(e), title="write failed", severity="error", markup=False)
            return
        self.app.notify(f"wrote {len(data)} bytes at {region}+0x{offset:x}", markup=False)
        self.hex.invalidate(offset)
