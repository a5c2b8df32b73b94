"""Console key-to-screen latency while a guest floods, and the memory it takes.

    .venv/bin/python bench/bench_console_latency.py [--keys 300] [--runs 3] [--size 200x50]

Two real QEMU test guests and one Textual app (headless ``run_test``) with two
ConsoleViews side by side: guest A's COM1 floods (``^F``: 64-byte lines as fast as
QEMU delivers them, rendered live) and guest B's COM1 has the focus. For each sample
a key goes into the app's event queue (the path a real key takes: App -> focused
ConsoleView -> guest); guest B echoes it; the sample ends when the first compositor
update after the echo was painted is *encoded for the terminal* (``_display`` is
wrapped to run ``render_segments``, the ANSI encoding a real terminal write needs,
which headless mode skips). Why two guests: typing into the flooding console cannot
be timed (any byte ends the guest's flood), and the flooding guest services no
other port (its COM2 stops echoing while it floods).

Also measured: the same without the flood (baseline), bytes/s the flooding console
parsed, bytes it had to skip, and RSS growth over the flood (scrollback 10,000).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from textual import events  # noqa: E402
from textual.app import App, ComposeResult  # noqa: E402
from textual.containers import Horizontal  # noqa: E402

from emutui.config import parse_config  # noqa: E402
from emutui.control import make_connector, start_target, stop_instance  # noqa: E402
from emutui.core.instance import Instance  # noqa: E402
from emutui.core.registry import Registry  # noqa: E402
from emutui.tui.widgets.console import ConsoleView  # noqa: E402

KEYS = "ghjlmnopqrsuvwxyzGHJLMNOPQRSUVWXYZ"  # none of the guest's control bytes


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class LatencyApp(App[None]):
    ENABLE_COMMAND_PALETTE = False

    def __init__(self, a: Instance, conn_a: object, b: Instance, conn_b: object) -> None:
        super().__init__()
        self.flood_view = ConsoleView(a, "com1", conn_a, id="flood")  # type: ignore[arg-type]
        self.type_view = ConsoleView(b, "com1", conn_b, id="echo")  # type: ignore[arg-type]
        self.displays: list[float] = []

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield self.flood_view
            yield self.type_view

    def on_mount(self) -> None:
        self.type_view.focus()


async def measure(app: LatencyApp, pilot: object, keys: int, rnd: random.Random) -> list[float]:
    view = app.type_view
    samples: list[float] = []
    state: dict[str, object] = {}

    def on_paint(now: float) -> None:
        ch = state.get("ch")
        if ch and "painted" not in state:
            count = sum(row.count(ch) for row in view.terminal.screen.display())  # type: ignore[arg-type]
            if count > state["before"]:  # type: ignore[operator]
                state["painted"] = time.perf_counter()

    view.on_paint.append(on_paint)
    orig_display = app._display

    def display(screen: object, renderable: object) -> None:
        orig_display(screen, renderable)  # type: ignore[arg-type]
        if renderable is not None and hasattr(renderable, "render_segments"):
            renderable.render_segments(app.console)
        if "painted" in state and "done" not in state:
            state["done"] = time.perf_counter()

    app._display = display  # type: ignore[method-assign]
    typed = 0
    for i in range(keys):
        ch = KEYS[i % len(KEYS)]
        if typed >= 40:
            app.post_message(events.Key("enter", "\r"))
            typed = 0
            await asyncio.sleep(0.1)
        state.clear()
        state["before"] = sum(row.count(ch) for row in view.terminal.screen.display())
        state["ch"] = ch
        t0 = time.perf_counter()
        app.post_message(events.Key(ch, ch))
        typed += 1
        deadline = t0 + 2.0
        while "done" not in state and time.perf_counter() < deadline:
            await asyncio.sleep(0.0005)
        if "done" in state:
            samples.append((state["done"] - t0) * 1000)  # type: ignore[operator]
        state["ch"] = None
        await asyncio.sleep(rnd.uniform(0.03, 0.12))
    view.on_paint.remove(on_paint)
    app._display = orig_display  # type: ignore[method-assign]
    return samples


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
    return xs[k]


async def run_once(keys: int, size: tuple[int, int], seed: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="ebl", dir="/tmp") as tmp:
        d = Path(tmp)
        elf = d / "guest.elf"
        os.system(f"sh {HERE.parent / 'tests' / 'guest' / 'build.sh'} {elf} >/dev/null 2>&1")
        cfg = d / "emutui.toml"
        cfg.write_text(
            f'[targets.g]\nbackend = "qemu"\nmachine = "pc"\nkernel = "{elf}"\nserial = ["com1"]\n'
        )
        os.environ["EMUTUI_STATE_DIR"] = str(d / "state")
        reg = Registry(d / "state")
        a = await start_target(parse_config(cfg), reg, "g", "a", False)
        b = await start_target(parse_config(cfg), reg, "g", "b", False)
        conn_a = make_connector(a, aux=False)
        conn_b = make_connector(b, aux=False)
        await conn_a.connect()
        await conn_b.connect()
        out: dict[str, object] = {}
        try:
            app = LatencyApp(a, conn_a, b, conn_b)
            rnd = random.Random(seed)
            async with app.run_test(size=size) as pilot:
                while app.type_view.state != "ATTACHED" or app.flood_view.state != "ATTACHED":
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.5)
                out["idle"] = await measure(app, pilot, max(30, keys // 4), rnd)
                fv = app.flood_view
                rss0 = rss_mib()
                fed0, t0 = fv.terminal.bytes_fed, time.perf_counter()
                fv.send(b"\x06")
                await asyncio.sleep(1.0)
                out["flood"] = await measure(app, pilot, keys, rnd)
                dt = time.perf_counter() - t0
                out["rate"] = (fv.terminal.bytes_fed - fed0) / dt
                out["skipped"] = fv.skipped_bytes
                out["rss"] = rss_mib() - rss0
                out["hist"] = len(fv.terminal.screen.history)
                out["paints"] = fv.paints
                fv.send(b"x")  # any byte ends the flood
                await asyncio.sleep(0.2)
        finally:
            for conn in (conn_a, conn_b):
                await conn.close()
            for inst in (a, b):
                await stop_instance(reg, inst)
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=300)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", default="200x50")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M %Z')}, nproc {os.cpu_count()}, {args.size}, "
        f"{args.keys} keys/run while flooding, {args.runs} runs"
    )
    print(
        "| run | idle p50 / p99 ms | flooding p50 / p95 / p99 / max ms | samples | "
        "flood parsed KiB/s | skipped bytes | RSS growth MiB | scrollback lines |"
    )
    print("|---|---|---|---|---|---|---|---|")
    p99s = []
    p50s = []
    for r in range(args.runs):
        o = asyncio.run(run_once(args.keys, (w, h), seed=r))
        idle, flood = o["idle"], o["flood"]
        assert isinstance(idle, list) and isinstance(flood, list)
        p99s.append(pct(flood, 99))
        p50s.append(pct(flood, 50))
        print(
            f"| {r + 1} | {pct(idle, 50):.1f} / {pct(idle, 99):.1f} | "
            f"{pct(flood, 50):.1f} / {pct(flood, 95):.1f} / {pct(flood, 99):.1f} / "
            f"{max(flood, default=float('nan')):.1f} | {len(flood)}/{args.keys} | "
            f"{o['rate'] / 1024:.0f} | "  # type: ignore[operator]
            f"{o['skipped']} | {o['rss']:.1f} | {o['hist']} |",
            flush=True,
        )
    print(
        f"\nmedian over runs: flooding p50 {statistics.median(p50s):.1f} ms, "
        f"p99 {statistics.median(p99s):.1f} ms"
    )


if __name__ == "__main__":
    main()
