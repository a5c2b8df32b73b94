#!/usr/bin/env python3
"""Regenerate screenshots/*.svg from the app itself, on the real demo lab.

    .venv/bin/python screenshots/make.py           # QEMU guests, simulated V80 and Renode
    .venv/bin/python screenshots/make.py --fake    # the fake lab of the snapshot tests
    .venv/bin/python screenshots/make.py --png     # also a PNG of each (needs rsvg-convert)

Each pane is shown the way a user reaches it (keys through Textual's Pilot),
then the screen is saved with App.save_screenshot.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from textual.pilot import Pilot  # noqa: E402

from emutui.tui.app import EmutuiApp  # noqa: E402
from emutui.tui.widgets.hexview import HexView  # noqa: E402
from emutui.tui.widgets.memory import MemoryPane  # noqa: E402
from emutui.tui.widgets.props import PropsPane  # noqa: E402
from tests.tui.helpers import until  # noqa: E402

Step = Callable[[Pilot], Awaitable[None]]


async def ready(pilot: Pilot) -> None:
    app: EmutuiApp = pilot.app  # type: ignore[assignment]
    await until(
        pilot,
        lambda: (
            app.links
            and all(
                link.conn is not None or link.status.state.value == "dead"
                for link in app.links.values()
            )
        ),
        timeout=30,
        what="instances connected",
    )
    await pilot.pause(1.0)


async def select(pilot: Pilot, name: str) -> None:
    app: EmutuiApp = pilot.app  # type: ignore[assignment]
    table = app.screen.query_one("#instances")
    names = [k.value for k in table.rows]  # type: ignore[attr-defined]
    if name in names:
        await pilot.press("1")
        table.move_cursor(row=names.index(name))  # type: ignore[attr-defined]
        await pilot.pause(1.0)


async def instances(pilot: Pilot) -> None:
    await ready(pilot)
    await select(pilot, "pc")


async def console(pilot: Pilot) -> None:
    await instances(pilot)
    await pilot.press("2")
    await pilot.pause(0.3)
    await pilot.press("enter")
    await pilot.press(*"hello from emutui", "enter")
    await pilot.pause(1.0)
    await pilot.press("ctrl+right_square_bracket")
    await pilot.pause(0.3)


async def events(pilot: Pilot) -> None:
    await instances(pilot)
    await pilot.press("p")
    await pilot.pause(0.5)
    await pilot.press("u")
    await pilot.pause(0.5)
    await pilot.press("3")
    await pilot.press("colon", *"query-status", "enter")
    await pilot.pause(1.0)


async def events_text(pilot: Pilot) -> None:
    """A text answer to `:` (HMP's info registers) shown as lines."""
    await instances(pilot)
    await pilot.press("3")
    await pilot.press("colon", *"!info registers", "enter")
    await pilot.pause(1.0)


async def props(pilot: Pilot) -> None:
    await instances(pilot)
    await pilot.press("4")
    pane = pilot.app.screen.query_one(PropsPane)
    worker = pane.jump("/machine/peripheral/edu0.type")
    await worker.wait()
    await pilot.pause(1.5)


async def memory(pilot: Pilot) -> None:
    await instances(pilot)
    await pilot.press("5")
    mem = pilot.app.screen.query_one(MemoryPane)
    await until(pilot, lambda: bool(mem.regions), timeout=10, what="regions")
    hv = pilot.app.screen.query_one(HexView)
    await until(pilot, lambda: hv.mem_region is not None, what="region")
    await hv.wait_loaded(20)
    await pilot.pause(0.5)


async def memory_ram(pilot: Pilot) -> None:
    await instances(pilot)
    await pilot.press("5")
    mem = pilot.app.screen.query_one(MemoryPane)
    await until(pilot, lambda: any(r.name == "ram" for r in mem.regions), what="ram region")
    mem.select_region("ram")
    hv = pilot.app.screen.query_one(HexView)
    await until(pilot, lambda: hv.mem_region is not None and hv.mem_region.name == "ram")
    hv.goto(0x100000)  # the guest's own code
    await hv.wait_loaded(20)
    await pilot.pause(0.5)


async def vrtd(pilot: Pilot) -> None:
    await ready(pilot)
    await select(pilot, "v80")
    await pilot.press("5")
    hv = pilot.app.screen.query_one(HexView)
    await until(pilot, lambda: hv.mem_region is not None, timeout=10, what="v80 region")
    await hv.wait_loaded(20)
    await pilot.pause(0.5)


async def cpu(pilot: Pilot) -> None:
    """The CPU pane stopped at isr_timer (a breakpoint), one step on; jiffies watched."""
    from emutui.tui.widgets.cpu import CpuPane

    await instances(pilot)
    await pilot.press("6")
    pane = pilot.app.screen.query_one(CpuPane)
    await until(pilot, lambda: pane.session is not None, timeout=30, what="cpu attached")
    sess = pane.session
    await sess.clear_points()
    await sess.set_point("break", sess.address("isr_timer"))
    await sess.cont(wait=True, timeout=10)
    await until(pilot, lambda: pane.pc == sess.address("isr_timer"), timeout=10, what="stop")
    await pilot.press("s")
    await until(pilot, lambda: bool(pane.prev_regs), timeout=10, what="step")
    await sess.set_point("watch", sess.address("jiffies"), 4)  # for the list
    await pane.reload()
    await pilot.pause(0.5)


async def help_screen(pilot: Pilot) -> None:
    await ready(pilot)
    await pilot.press("question_mark")
    await pilot.pause(0.5)


async def tiles(pilot: Pilot) -> None:
    """Four consoles of three instances side by side; pc's COM1 floods."""
    from emutui.tui.widgets.cpu import CpuPane

    # The CPU shots leave pc at a breakpoint (the gdb hub keeps points between
    # sessions): clear them and let it run, or it cannot flood.
    await instances(pilot)
    await pilot.press("6")
    pane = pilot.app.screen.query_one(CpuPane)
    await until(pilot, lambda: pane.session is not None, timeout=30, what="cpu attached")
    assert pane.session is not None
    await pane.session.clear_points()
    await pane.session.cont(wait=False)
    await pilot.pause(0.5)
    await ready(pilot)
    for name, keys in (("board", ()), ("pc", ()), ("q35", ()), ("pc", ("right",))):
        await select(pilot, name)
        await pilot.press("2")
        await pilot.pause(0.3)
        await pilot.press("s", *keys)
        await pilot.pause(1.0)
    # tile 2 (pc/com1): flood; tile 3 (q35/com1): type
    await pilot.press("o", "o", "enter", "ctrl+f")
    await pilot.pause(1.5)
    await pilot.press("ctrl+right_square_bracket", "o", "enter", *"typing while pc floods", "enter")
    await pilot.pause(1.0)


SHOTS: dict[str, tuple[Step, tuple[int, int], str]] = {
    "instances-80x24": (instances, (80, 24), "dark"),
    "console": (console, (120, 40), "dark"),
    "events": (events, (120, 40), "dark"),
    "events-text-reply": (events_text, (120, 40), "dark"),
    "properties": (props, (120, 40), "dark"),
    "memory-mmio": (memory, (120, 40), "dark"),
    "memory-ram-light": (memory_ram, (120, 40), "light"),
    "v80-high-contrast": (vrtd, (120, 40), "high-contrast"),
    "help": (help_screen, (120, 40), "dark"),
    "wide-200x50": (props, (200, 50), "dark"),
    "cpu-80x24": (cpu, (80, 24), "dark"),
    "cpu-120x40": (cpu, (120, 40), "dark"),
    "cpu-200x50": (cpu, (200, 50), "dark"),
    "tiles-200x50": (tiles, (200, 50), "dark"),
}


async def shoot(
    make_app: Callable[[str], EmutuiApp], out: Path, png: bool, only: list[str] | None = None
) -> None:
    for name, (step, size, theme) in SHOTS.items():
        if only and name not in only:
            continue
        app = make_app(theme)
        async with app.run_test(size=size) as pilot:
            await step(pilot)
            path = app.save_screenshot(filename=f"{name}.svg", path=str(out))
        print(f"wrote {path}")
        if png and shutil.which("rsvg-convert"):
            subprocess.run(
                ["rsvg-convert", path, "-o", str(Path(path).with_suffix(".png"))], check=True
            )


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fake", action="store_true", help="the fake lab (no QEMU needed)")
    ap.add_argument("--png", action="store_true", help="also write PNGs")
    ap.add_argument("--out", default=str(HERE))
    ap.add_argument("--only", nargs="*", help="just these shots (names as in SHOTS)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.fake:
        from tests.tui.snapshot_app import build_app

        tmp = Path(tempfile.mkdtemp(prefix="emutui-shots-"))
        try:
            await shoot(lambda theme: build_app(tmp, theme=theme), out, args.png, args.only)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return 0
    from emutui.demo import create_lab

    lab = await create_lab()
    try:
        for note in lab.notes:
            print(f"note: {note}")
        # The screenshots show a fixed label, not this run's temporary path.
        await shoot(
            lambda theme: EmutuiApp(lab.registry, lab.config, theme=theme, lab_label="emutui demo"),
            out,
            args.png,
            args.only,
        )
    finally:
        await lab.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
