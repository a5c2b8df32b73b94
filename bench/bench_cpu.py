#!/usr/bin/env python3
"""The CPU pane on real QEMU: a step repainted, and the step key to the screen.

    .venv/bin/python bench/bench_cpu.py [STEPS]

A QEMU guest (the test guest) is stopped at ``isr_timer`` through its gdb hub;
the whole app runs headless with the CPU tab open. Frames are encoded to
terminal bytes (``App._display`` replaced by ``render_segments``) and a
compositor pass is forced on each turn of the loop, as bench_hexview does, so
figures are work, not the 60 fps timer's slack.

- repaint: after a step has been done (through the hub), the pane fetches
  state, points, registers and code (``g`` and ``m`` through the hub),
  disassembles and paints: until that frame is encoded.
  Also: the fetch alone (hub round trips, capstone, symbols), and the app
  process's own CPU time for the repaint (what the machine's load does not
  inflate).
- key → screen: ``s`` (the pane's step action) until the frame showing the new
  PC is encoded: the step itself through the hub and the stub, then the above.

Every 4 steps the guest is sent back to isr_timer (cont to its breakpoint),
not timed: stepping on would reach ``hlt``.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from textual._compositor import CompositorUpdate

from bench._common import close_lab, lab, machine, summary
from emutui.config import parse_config
from emutui.core.registry import Registry
from emutui.tui.app import EmutuiApp
from emutui.tui.widgets.cpu import CpuPane
from tests.tui.helpers import until


def cli(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "emutui", *args], env=env, check=True, capture_output=True
    )


async def measure(env: dict[str, str], size: tuple[int, int], steps: int) -> dict[str, list[float]]:
    app = EmutuiApp(Registry(env["EMUTUI_STATE_DIR"]), parse_config(Path(env["EMUTUI_CONFIG"])))
    out: dict[str, list[float]] = {"repaint": [], "key": [], "fetch": [], "cpu": []}
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.links.get("guest") is not None, timeout=30)
        await pilot.press("6")
        pane = app.screen.query_one(CpuPane)
        await until(pilot, lambda: pane.pc is not None, timeout=30, what="cpu pane")
        screen = app.screen
        sent: list[int] = []

        def display(_screen, renderable) -> None:  # type: ignore[no-untyped-def]
            if isinstance(renderable, CompositorUpdate):
                sent.append(len(renderable.render_segments(app.console)))

        app._display = display  # type: ignore[method-assign]

        async def frame() -> None:
            n = len(sent)
            while len(sent) == n:
                await asyncio.sleep(0)
                screen._on_timer_update()

        sess = pane.session
        for i in range(steps):
            if i % 4 == 0:
                await sess.cont(wait=True, timeout=10)
                await pane.reload()
                await frame()
            if i % 2 == 0:
                await sess.step(1, 0)
                t0, c0 = time.perf_counter(), time.process_time()
                await pane.reload()
                out["fetch"].append(time.perf_counter() - t0)
                await frame()
                out["repaint"].append(time.perf_counter() - t0)
                out["cpu"].append(time.process_time() - c0)
            else:
                seq = pane.seq
                t0 = time.perf_counter()
                pane.action_step()
                while pane.seq == seq:
                    await asyncio.sleep(0)
                await frame()
                out["key"].append(time.perf_counter() - t0)
                await asyncio.sleep(0.05)  # the stop watcher's own refresh settles
    return out


def main() -> int:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    d, env = lab()
    try:
        cli(env, "start", "guest")
        cli(env, "cpu", "guest", "break", "isr_timer")
        cli(env, "cpu", "guest", "cont", "--timeout", "10")
        print(f"machine: {machine()}")
        for size in ((120, 40), (80, 24)):
            r = asyncio.run(measure(env, size, steps))
            print(f"{size[0]}x{size[1]}: repaint after a step: {summary(r['repaint'])}")
            print(f"{size[0]}x{size[1]}: step key to screen:  {summary(r['key'])}")
            print(
                f"{size[0]}x{size[1]}:   of the repaint, fetch+disassemble: {summary(r['fetch'])}"
            )
            print(f"{size[0]}x{size[1]}:   of the repaint, this process's CPU: {summary(r['cpu'])}")
    finally:
        close_lab(d, env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
