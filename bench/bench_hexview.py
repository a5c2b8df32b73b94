#!/usr/bin/env python3
"""The hex view's cost per page-down on a 128 MiB region, Textual's rendering included.

    .venv/bin/python bench/bench_hexview.py [BATCHES]

The whole app (instances, tabs, footer) runs headless on the fake lab of the
snapshot tests (tests/tui/snapshot_app.py), with the memory pane on its
128 MiB ``ram`` region. One step = ``action_page(1)`` (what PageDown is bound
to, no animation) + one compositor pass (``Screen._on_timer_update``) whose
update is encoded to terminal bytes (``App._display`` replaced by
``render_segments``, which a headless app skips), as in specs/tui-notes.md 2.4.

"warm": the pages are already in the view's cache (reading ahead of time);
"cold": each page-down misses the cache and the step ends when the frame with
the bytes is painted (the fake backend answers at once, so this is the view's
own fetch path: worker, cache, second frame).
Also a jump to a random offset, and the same at 80x24 and 200x50.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from textual._compositor import CompositorUpdate

from bench._common import machine
from emutui.tui.widgets.hexview import ROW, HexView
from emutui.tui.widgets.memory import MemoryPane
from tests.tui.fakes import pattern
from tests.tui.helpers import until
from tests.tui.snapshot_app import build_app

STEPS = 100


async def measure(size: tuple[int, int], batches: int) -> dict[str, list[float]]:
    tmp = Path(tempfile.mkdtemp(prefix="ebhex-"))
    app = build_app(tmp)
    out: dict[str, list[float]] = {"warm": [], "cold": [], "jump": [], "bytes": []}
    try:
        async with app.run_test(size=size) as pilot:
            await until(pilot, lambda: all(lk.conn for lk in app.links.values()) and app.links)
            await pilot.press("5")
            mem = app.screen.query_one(MemoryPane)
            await until(pilot, lambda: len(mem.regions) == 2)
            mem.select_region("ram")
            hv = app.screen.query_one(HexView)
            await until(pilot, lambda: hv.mem_region is not None and hv.mem_region.name == "ram")
            await hv.wait_loaded()
            await pilot.pause(0.2)
            screen = app.screen
            sent: list[int] = []

            def display(_screen, renderable) -> None:  # type: ignore[no-untyped-def]
                if isinstance(renderable, CompositorUpdate):
                    sent.append(len(renderable.render_segments(app.console)))

            app._display = display  # type: ignore[method-assign]
            size_bytes = hv.mem_region.size  # type: ignore[union-attr]

            def fill(offset: int, length: int) -> None:
                ps = hv.page_size
                for p in range(offset // ps, (offset + length) // ps + 1):
                    if p * ps < size_bytes:
                        hv._pages[p] = pattern(p * ps, min(ps, size_bytes - p * ps))

            async def frame_after(action) -> float:  # type: ignore[no-untyped-def]
                # The action, then the message loop until the frame is encoded;
                # the 60 fps timer is not waited for (a compositor pass is forced
                # on each turn of the loop), so this is CPU time, not timer slack.
                n = len(sent)
                t0 = time.perf_counter()
                action()
                while len(sent) == n:
                    await asyncio.sleep(0)
                    screen._on_timer_update()
                return time.perf_counter() - t0

            async def step() -> float:
                return await frame_after(lambda: hv.action_page(1))

            rows = hv.size.height
            for _ in range(batches):
                await frame_after(lambda: hv.goto(random.randrange(size_bytes // 2)))
                start, _ = hv.visible_window()
                fill(start, (STEPS + 2) * rows * ROW)
                await pilot.pause()
                n0 = len(sent)
                times = [await step() for _ in range(STEPS)]
                assert len(sent) - n0 == STEPS, "one frame per page-down"
                out["warm"].append(statistics.mean(times))
                out["bytes"].append(statistics.mean(sent[n0:]))
                # random jumps (warm)
                jt = []
                for _ in range(20):
                    off = random.randrange(size_bytes)
                    fill(off - off % ROW - rows * ROW, 3 * rows * ROW)
                    jt.append(await frame_after(lambda off=off: hv.goto(off)))
                out["jump"].append(statistics.mean(jt))
                # cold: the page is not cached; until the frame with bytes is out
                ct = []
                for _ in range(20):
                    hv._pages.clear()
                    t0 = time.perf_counter()
                    await frame_after(lambda: hv.action_page(1))  # placeholders
                    first, _len = hv.visible_window()
                    while (first // hv.page_size) not in hv._pages:
                        await asyncio.sleep(0)
                        screen._on_timer_update()
                    await frame_after(lambda: None)  # the frame with the bytes
                    ct.append(time.perf_counter() - t0)
                out["cold"].append(statistics.mean(ct))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> int:
    batches = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    random.seed(1)
    print(f"machine: {machine()}")
    print(f"{batches} batches of {STEPS} page-downs; figures are medians of batch means")
    for size in ((120, 40), (80, 24), (200, 50)):
        r = asyncio.run(measure(size, batches))
        med = {k: statistics.median(v) for k, v in r.items()}
        print(
            f"{size[0]}x{size[1]}: page-down warm {med['warm'] * 1000:.1f} ms "
            f"(batches {min(r['warm']) * 1000:.1f}-{max(r['warm']) * 1000:.1f}), "
            f"random jump {med['jump'] * 1000:.1f} ms, "
            f"page-down cold (fetch + 2 frames) {med['cold'] * 1000:.1f} ms, "
            f"{med['bytes'] / 1024:.1f} KiB/frame"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
