"""Console key-to-screen latency while guests flood, and the memory it takes.

    .venv/bin/python bench/bench_console_latency.py [--keys 300] [--runs 3] [--size 200x50]
                                                   [--paced N] [--rate 350]

Default mode: two real QEMU test guests and one Textual app (headless ``run_test``) with
two ConsoleViews side by side: guest A's COM1 floods (``^F``: 64-byte lines as fast as
QEMU delivers them, rendered live) and guest B's COM1 has the focus. For each sample a
key goes into the app's event queue (the path a real key takes: App -> focused
ConsoleView -> guest); guest B echoes it; the sample ends when the first compositor
update after the echo was painted has been *encoded for the terminal* (``_display`` is
wrapped to run ``render_segments``, the ANSI encoding a real terminal write needs,
which headless mode skips). Why two guests: typing into the flooding console cannot
be timed (any byte ends the guest's flood), and the flooding guest services no other
port (its COM2 stops echoing while it floods).

``--paced N``: instead of guest A, N consoles each fed a recorded guest flood
(bench_console.py's cache) at ``--rate`` KiB/s, as N flooding guests would be; this
is the "five flooding guests at once" case on a 2-core machine, where five real
flooding QEMUs would need five cores. Guest B (real QEMU) still answers the keys.

Also reported: KiB/s each flooding console parsed (does the UI keep up?), bytes it
had to skip, RSS growth over the flood (scrollback 10,000 lines per console), this
process's CPU share (CPU time / wall time) and the load average, since the machine is
shared.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from textual import events  # noqa: E402
from textual.app import App, ComposeResult  # noqa: E402
from textual.containers import Grid  # noqa: E402

from emutui.config import parse_config  # noqa: E402
from emutui.control import make_connector, start_target, stop_instance  # noqa: E402
from emutui.core.instance import Instance  # noqa: E402
from emutui.core.registry import Registry  # noqa: E402
from emutui.tui.widgets.console import ConsoleView  # noqa: E402

KEYS = "ghjlmnopqrsuvwxyzGHJLMNOPQRSUVWXYZ"  # none of the guest's control bytes
CHUNK = 4096


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PacedStream:
    """A recorded flood, delivered at a fixed rate in socket-sized chunks."""

    def __init__(self, data: bytes, rate: float, offset: int) -> None:
        self.data = data
        self.rate = rate
        self.pos = offset % len(data)
        self.sent = 0
        self.t0 = 0.0
        self.running = asyncio.Event()

    async def read(self, n: int = 65536) -> bytes:
        await self.running.wait()
        loop = asyncio.get_running_loop()
        if not self.t0:
            self.t0 = loop.time()
        due = self.t0 + self.sent / self.rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        chunk = self.data[self.pos : self.pos + CHUNK]
        if len(chunk) < CHUNK:
            chunk += self.data[: CHUNK - len(chunk)]
        self.pos = (self.pos + CHUNK) % len(self.data)
        self.sent += len(chunk)
        return chunk

    async def write(self, data: bytes) -> None:
        return None

    async def close(self) -> None:
        return None


class PacedConnector:
    def __init__(self, stream: PacedStream) -> None:
        self.stream = stream

    async def serial(self, channel: str) -> PacedStream:
        return self.stream


class LatencyApp(App[None]):
    ENABLE_COMMAND_PALETTE = False
    CSS = "Grid { grid-size: 3; }"

    def __init__(self, flood_views: list[ConsoleView], type_view: ConsoleView) -> None:
        super().__init__()
        self.flood_views = flood_views
        self.type_view = type_view

    def compose(self) -> ComposeResult:
        with Grid() as g:
            cols = min(3, len(self.flood_views) + 1)
            g.styles.grid_size_columns = cols
            yield from self.flood_views
            yield self.type_view

    def on_mount(self) -> None:
        self.type_view.focus()


async def measure(
    app: LatencyApp, keys: int, rnd: random.Random, ui_part: list[float] | None = None
) -> list[float]:
    """Key-to-screen samples in ms; ``ui_part`` gets echo-received-to-screen samples,
    the part the console itself controls (the rest is the event queue, the socket
    and the guest's own echo, which on a loaded 2-core machine waits for a CPU)."""
    view = app.type_view
    samples: list[float] = []
    state: dict[str, object] = {}
    done = asyncio.Event()
    orig_feed = view.feed

    def feed(data: bytes) -> None:
        if state.get("ch") and "received" not in state:
            state["received"] = time.perf_counter()
        orig_feed(data)

    view.feed = feed  # type: ignore[method-assign]

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
            done.set()

    app._display = display  # type: ignore[method-assign]
    typed = 0
    try:
        for i in range(keys):
            ch = KEYS[i % len(KEYS)]
            if typed >= 40:
                app.post_message(events.Key("enter", "\r"))
                typed = 0
                await asyncio.sleep(0.1)
            state.clear()
            done.clear()
            state["before"] = sum(row.count(ch) for row in view.terminal.screen.display())
            state["ch"] = ch
            t0 = time.perf_counter()
            app.post_message(events.Key(ch, ch))
            typed += 1
            try:
                await asyncio.wait_for(done.wait(), 2.0)
                samples.append((state["done"] - t0) * 1000)  # type: ignore[operator]
                if ui_part is not None and "received" in state:
                    ui_part.append((state["done"] - state["received"]) * 1000)  # type: ignore[operator]
            except TimeoutError:
                pass
            state["ch"] = None
            await asyncio.sleep(rnd.uniform(0.03, 0.12))
    finally:
        view.feed = orig_feed  # type: ignore[method-assign]
        view.on_paint.remove(on_paint)
        app._display = orig_display  # type: ignore[method-assign]
    return samples


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
    return xs[k]


async def run_once(
    keys: int, size: tuple[int, int], seed: int, paced: int, rate: float, freeze: bool = False
) -> dict[str, object]:
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
        insts = [await start_target(parse_config(cfg), reg, "g", "b", False)]
        conns = [make_connector(insts[0], aux=False)]
        streams: list[PacedStream] = []
        if paced:
            from bench_console import flood_corpus

            flood = flood_corpus(2_000_000)
            assert flood, "no recorded flood (needs QEMU once)"
            flood_views = []
            for i in range(paced):
                wd = d / f"paced{i}"
                wd.mkdir()
                stream = PacedStream(flood, rate * 1024, offset=i * 99_991)
                streams.append(stream)
                fake = Instance(name=f"paced{i}", wd=wd, handles=None)
                flood_views.append(ConsoleView(fake, "com1", PacedConnector(stream)))  # type: ignore[arg-type]
        else:
            insts.append(await start_target(parse_config(cfg), reg, "g", "a", False))
            conns.append(make_connector(insts[1], aux=False))
        for c in conns:
            await c.connect()
        if not paced:
            flood_views = [ConsoleView(insts[1], "com1", conns[1])]  # type: ignore[arg-type]
        type_view = ConsoleView(insts[0], "com1", conns[0])  # type: ignore[arg-type]
        out: dict[str, object] = {}
        try:
            app = LatencyApp(flood_views, type_view)
            rnd = random.Random(seed)
            async with app.run_test(size=size):
                while any(v.state != "ATTACHED" for v in [*flood_views, type_view]):
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.5)
                if freeze:
                    # What a host app can do once it is up: move the objects of
                    # start-up (modules, classes, functions) out of the GC's reach.
                    gc.collect()
                    gc.freeze()
                out["idle"] = await measure(app, max(30, keys // 4), rnd)
                rss0 = rss_mib()
                fed0 = [v.terminal.bytes_fed for v in flood_views]
                t0, c0 = time.perf_counter(), time.process_time()
                if paced:
                    for s in streams:
                        s.running.set()
                else:
                    flood_views[0].send(b"\x06")
                await asyncio.sleep(1.0)
                ui_part: list[float] = []
                out["flood"] = await measure(app, keys, rnd, ui_part)
                out["ui"] = ui_part
                dt = time.perf_counter() - t0
                out["cpu"] = (time.process_time() - c0) / dt
                out["load"] = os.getloadavg()[0]
                out["rate"] = [
                    (v.terminal.bytes_fed - f) / dt for v, f in zip(flood_views, fed0, strict=True)
                ]
                out["skipped"] = sum(v.skipped_bytes for v in flood_views)
                out["rss"] = rss_mib() - rss0
                out["hist"] = sum(len(v.terminal.screen.history) for v in flood_views)
                if not paced:
                    flood_views[0].send(b"x")  # any byte ends the flood
                    await asyncio.sleep(0.2)
        finally:
            if freeze:
                gc.unfreeze()
            for c in conns:
                await c.close()
            for inst in insts:
                await stop_instance(reg, inst)
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=300)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", default="200x50")
    ap.add_argument("--paced", type=int, default=0, help="N recorded floods instead of a guest")
    ap.add_argument("--rate", type=float, default=350.0, help="KiB/s per paced flood")
    ap.add_argument("--gc-freeze", action="store_true", help="gc.freeze() once the app is up")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    what = f"{args.paced} paced floods at {args.rate:.0f} KiB/s" if args.paced else "1 QEMU flood"
    if args.gc_freeze:
        what += ", gc.freeze() after start-up"
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M %Z')}, nproc {os.cpu_count()}, {args.size}, {what}, "
        f"{args.keys} keys/run, {args.runs} runs"
    )
    print(
        "| run | idle p50 / p99 ms | flooding p50 / p95 / p99 / max ms | "
        "of which echo received -> on screen p50 / p99 ms | samples | "
        "KiB/s parsed per flooding console | skipped bytes | RSS growth MiB | "
        "scrollback lines | CPU share | load avg |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    p99s, p50s, ui99s = [], [], []
    for r in range(args.runs):
        o = asyncio.run(run_once(args.keys, (w, h), r, args.paced, args.rate, args.gc_freeze))
        idle, flood, rates, ui = o["idle"], o["flood"], o["rate"], o["ui"]
        assert isinstance(idle, list) and isinstance(flood, list) and isinstance(rates, list)
        assert isinstance(ui, list)
        ui99s.append(pct(ui, 99))
        p99s.append(pct(flood, 99))
        p50s.append(pct(flood, 50))
        rate_s = "/".join(f"{x / 1024:.0f}" for x in rates)
        print(
            f"| {r + 1} | {pct(idle, 50):.1f} / {pct(idle, 99):.1f} | "
            f"{pct(flood, 50):.1f} / {pct(flood, 95):.1f} / {pct(flood, 99):.1f} / "
            f"{max(flood, default=float('nan')):.1f} | {pct(ui, 50):.1f} / {pct(ui, 99):.1f} | "
            f"{len(flood)}/{args.keys} | {rate_s} | "
            f"{o['skipped']} | {o['rss']:.1f} | {o['hist']} | {o['cpu']:.2f} | {o['load']:.1f} |",
            flush=True,
        )
    print(
        f"\nmedian over runs: flooding p50 {statistics.median(p50s):.1f} ms, "
        f"p99 {statistics.median(p99s):.1f} ms; echo received -> on screen p99 "
        f"{statistics.median(ui99s):.1f} ms"
    )


if __name__ == "__main__":
    main()
