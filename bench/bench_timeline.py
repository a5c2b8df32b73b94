#!/usr/bin/env python3
"""The timeline over a kept run with 1 GiB of serial logs: open, page-down, jump, memory.

    .venv/bin/python bench/bench_timeline.py [SIZE_MIB ...]     (default: 64 1024)

For each size, in a fresh process: a kept run is generated in /tmp (two serial
logs, 3/4 and 1/4 of SIZE, ~80-byte lines, a time index record per 4 KiB, and
20,000 events spread over the same ten hours; written in 4 MiB blocks, deleted
afterwards). Then:

- "open (core)": resolve the run, build the Timeline over its files and read
  the last page (what the TUI shows first) — no scan of the logs;
- "open (TUI)": the app at 120x40 with the run selected, from pressing 6
  (Timeline tab) to the first page on screen;
- "page-down": ``TimelineView.action_page(1)`` plus one compositor pass encoded
  to terminal bytes (as bench_hexview.py does), at 120x40; and the view's own
  work alone (the action without the frame);
- "jump": ``jump(t)`` to a random time, with its frame;
- RSS after all of it, so the sizes can be compared (memory must not follow
  the size of the logs).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import machine

BLOCK = 4 * 1024 * 1024
SPAN = 10 * 3600.0
T0 = time.time() - SPAN - 3600


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def make_log(path: Path, size: int, tag: str) -> None:
    lines = []
    n = 0
    total = 0
    while total < BLOCK:
        ln = f"[{tag}] tick {n:08x} the guest says something of about eighty bytes ...\r\n"
        lines.append(ln)
        total += len(ln)
        n += 1
    block = "".join(lines).encode()[:BLOCK]
    cut = block.rfind(b"\n") + 1
    block = block[:cut]
    rec = struct.Struct("<Qd")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    ifd = os.open(str(path) + ".tidx", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        written = 0
        while written < size:
            os.write(fd, block)
            idx = bytearray()
            for off in range(0, len(block), 4096):
                t = T0 + SPAN * (written + off) / size
                idx += rec.pack(written + off, t)
            os.write(ifd, idx)
            written += len(block)
    finally:
        os.close(fd)
        os.close(ifd)


def make_run(root: Path, size: int) -> str:
    from emutui.core.handles import Channel, Handles
    from emutui.core.registry import Registry
    from emutui.core.runs import HistoryLimits

    reg = Registry(root, history=HistoryLimits(keep_runs=100, max_bytes=1 << 40))
    wd = reg.create("big")
    h = Handles(name="big", backend="qemu", target="pc", created=T0)
    for ch in ("com1", "com2"):
        h.channels[ch] = Channel(role="serial", kind="unix", log=str(wd / f"serial-{ch}.log"))
    h.save(wd)
    make_log(wd / "serial-com1.log", size * 3 // 4, "com1")
    make_log(wd / "serial-com2.log", size // 4, "com2")
    with open(wd / "events.jsonl", "w") as f:
        for i in range(20_000):
            f.write(
                json.dumps(
                    {
                        "time": T0 + SPAN * i / 20_000,
                        "name": "STOP" if i % 2 else "RESUME",
                        "data": {"i": i},
                    }
                )
                + "\n"
            )
    return reg.keep_run(reg.get("big"), "stopped", by="bench").id


async def measure_tui(
    root: Path, run_id: str, size: tuple[int, int], steps: int
) -> dict[str, float]:
    from textual._compositor import CompositorUpdate

    from emutui.core.registry import Registry
    from emutui.tui.app import EmutuiApp
    from emutui.tui.widgets.timeline import TimelinePane, TimelineView
    from tests.tui.helpers import until

    app = EmutuiApp(Registry(root), None, rescan=False)
    out: dict[str, float] = {}
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.screen.current is not None, timeout=30)
        view = app.screen.query_one(TimelineView)
        await pilot.press("7")
        await until(pilot, lambda: bool(view.page), timeout=30)
        await pilot.pause(1.0)  # the console pane replaying its tail settles first
        screen = app.screen
        sent: list[int] = []

        def display(_screen, renderable) -> None:  # type: ignore[no-untyped-def]
            if isinstance(renderable, CompositorUpdate):
                sent.append(len(renderable.render_segments(app.console)))

        app._display = display  # type: ignore[method-assign]

        async def frame_after(action) -> float:  # type: ignore[no-untyped-def]
            n = len(sent)
            t0 = time.perf_counter()
            action()
            while len(sent) == n:
                await asyncio.sleep(0)
                screen._on_timer_update()
            return time.perf_counter() - t0

        pane = app.screen.query_one(TimelinePane)
        link = pane.link

        def reopen() -> None:
            pane.link = None
            pane.show(link)

        # open: the run's timeline built over its files and its last page on screen
        out["open_tui"] = statistics.median([await frame_after(reopen) for _ in range(5)])
        view.jump(T0 + SPAN / 3)
        await pilot.pause()
        pd = [await frame_after(lambda: view.action_page(1)) for _ in range(steps)]
        own = []
        for _ in range(steps):
            t1 = time.perf_counter()
            view.action_page(-1)
            own.append(time.perf_counter() - t1)
        jumps = [
            await frame_after(lambda: view.jump(T0 + random.random() * SPAN)) for _ in range(30)
        ]
        out["page_down"] = statistics.median(pd)
        out["page_down_p99"] = sorted(pd)[int(len(pd) * 0.99) - 1]
        out["page_own"] = statistics.median(own)
        out["jump"] = statistics.median(jumps)
        out["frame_kib"] = statistics.mean(sent) / 1024 if sent else 0.0
    return out


def one(size_mib: int) -> dict[str, float]:
    random.seed(1)
    d = Path(tempfile.mkdtemp(prefix="ebtl-", dir="/tmp"))
    try:
        root = d / "state"
        t0 = time.perf_counter()
        run_id = make_run(root, size_mib * 1024 * 1024)
        gen = time.perf_counter() - t0
        os.sync()
        rss0 = rss_mib()
        from emutui.core.registry import Registry
        from emutui.core.timeline import Timeline, sources_for

        opens = []
        for _ in range(5):
            t0 = time.perf_counter()
            inst = Registry(root).resolve(run_id)
            tl = Timeline(sources_for(inst))
            tl.backward(tl.end(), 40)
            opens.append(time.perf_counter() - t0)
            tl.close()
        res = asyncio.run(measure_tui(root, run_id, (120, 40), 200))
        res["open_core"] = statistics.median(opens)
        res["generate"] = gen
        res["rss_before_app"] = rss0
        res["rss_after"] = rss_mib()
        res["size_mib"] = size_mib
        return res
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        print(json.dumps(one(int(sys.argv[2]))))
        return 0
    sizes = [int(a) for a in sys.argv[1:]] or [64, 1024]
    print(f"machine: {machine()}")
    for s in sizes:
        p = subprocess.run(
            [sys.executable, __file__, "--one", str(s)], capture_output=True, text=True, check=True
        )
        r = json.loads(p.stdout.strip().splitlines()[-1])
        print(
            f"{s} MiB of serial logs (generated in {r['generate']:.1f} s): "
            f"open core {r['open_core'] * 1000:.1f} ms, "
            f"open TUI (with its frame) {r['open_tui'] * 1000:.0f} ms; "
            f"120x40 page-down {r['page_down'] * 1000:.1f} ms with its frame "
            f"(p99 {r['page_down_p99'] * 1000:.1f}), "
            f"view's own work {r['page_own'] * 1000:.2f} ms; "
            f"jump to a time {r['jump'] * 1000:.1f} ms; {r['frame_kib']:.1f} KiB/frame; "
            f"RSS {r['rss_before_app']:.0f} MiB before the app, {r['rss_after']:.0f} MiB after"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
