"""vrtd benchmarks: request round trip, BAR read throughput, hex view render on a 128 MiB BAR.

Run: .venv/bin/python bench/bench_vrtd.py [--runs 5] [--json]

The simulator runs as a separate process (``python -m emutui sim vrtd``), as in
the tests. Every figure is the median over ``--runs`` runs. Results are
recorded by hand in bench/RESULTS.md (section "vrtd").

1. GET_BAR_INFO round trip through ``VrtdClient`` (asyncio, one request in
   flight): median and p99 latency, and requests/s over the run.
2. BAR reads through emutui's read path (``VrtdConnector.read``: region
   lookup, bounds and alignment checks, the DMA_BUF_IOCTL_SYNC bracket, copy)
   against a plain ``bytes(mm[a:b])`` copy of the very same mapping -- the
   limit on this machine -- for several chunk sizes over the 128 MiB BAR0.
3. The TUI hex view (emutui/tui/widgets/hexview.py) on slash_ctl0.bar0,
   headless (App.run_test) at 120x40: the render of one full screen from the
   page cache, and jump-to-a-random-offset until the window is loaded and painted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emutui.backends.vrtd import make_handles
from emutui.backends.vrtd.client import VrtdClient
from emutui.backends.vrtd.connector import VrtdConnector
from emutui.backends.vrtd.wire import Opcode, req_dev_bar
from emutui.core.instance import Instance

MIB = 1 << 20
BAR = 128 * MIB


def start_sim(path: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "emutui", "sim", "vrtd", "--socket", path],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.connect(path)
            s.close()
            return proc
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise SystemExit("simulator did not start")


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


async def bench_rtt(path: str, n: int) -> dict[str, float]:
    c = VrtdClient(path)
    await c.connect()
    body = req_dev_bar(0, 0)
    for _ in range(200):  # warm up
        await c.request(Opcode.GET_BAR_INFO, body)
    lat = []
    t0 = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        await c.request(Opcode.GET_BAR_INFO, body)
        lat.append(time.perf_counter() - t)
    total = time.perf_counter() - t0
    await c.close()
    # baseline: the same request from a blocking socket (no asyncio on the client side)
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    raw.connect(path)
    frame = struct.pack("<HHI", len(body), Opcode.GET_BAR_INFO, 1) + body
    blat = []
    for _ in range(n):
        t = time.perf_counter()
        raw.send(frame)
        raw.recv(4096)
        blat.append(time.perf_counter() - t)
    raw.close()
    return {
        "blocking_median_us": statistics.median(blat) * 1e6,
        "median_us": statistics.median(lat) * 1e6,
        "p99_us": pct(lat, 99) * 1e6,
        "req_per_s": n / total,
    }


async def bench_read(conn: VrtdConnector, chunk: int, total: int) -> dict[str, float]:
    region = "slash_ctl0.bar0"
    await conn.read(region, 0, 4)
    mm = conn._maps[region]._mem
    assert mm is not None
    offsets = [(i * chunk) % BAR for i in range(total // chunk)]
    t = time.perf_counter()
    for off in offsets:
        await conn.read(region, off, chunk)
    emutui_s = time.perf_counter() - t
    t = time.perf_counter()
    for off in offsets:
        bytes(mm[off : off + chunk])
    plain_s = time.perf_counter() - t
    return {"emutui_MBps": total / emutui_s / 1e6, "mmap_MBps": total / plain_s / 1e6}


async def bench_hexview(conn: VrtdConnector, jumps: int) -> dict[str, float] | None:
    try:
        from textual.app import App, ComposeResult
        from textual.geometry import Region

        from emutui.tui.widgets.hexview import HexView
    except ImportError:
        return None
    region = next(r for r in await conn.regions() if r.name == "slash_ctl0.bar0")

    class Bench(App[None]):
        def compose(self) -> ComposeResult:
            yield HexView(id="hex")

    app = Bench()
    render_ms: list[float] = []
    jump_ms: list[float] = []
    rng = random.Random(1)
    async with app.run_test(size=(120, 40)) as pilot:
        hv = app.query_one(HexView)
        hv.set_region(region, conn.read)
        hv.focus()
        await pilot.pause()
        await hv.wait_loaded()
        for _ in range(jumps):
            off = rng.randrange(0, region.size // 16) * 16
            t = time.perf_counter()
            hv.goto(off)
            await pilot.pause()
            await hv.wait_loaded()
            await pilot.pause()
            jump_ms.append((time.perf_counter() - t) * 1e3)
            crop = Region(0, 0, hv.size.width, hv.size.height)
            # a fresh frame: drop Textual's line cache so every row is rebuilt
            hv._styles_cache.clear()
            hv._styles_cache.set_dirty(hv.size.region)
            t = time.perf_counter()
            hv.render_lines(crop)
            render_ms.append((time.perf_counter() - t) * 1e3)
    return {
        "render_full_screen_ms": statistics.median(render_ms),
        "jump_loaded_painted_ms": statistics.median(jump_ms),
        "rows": 40,
    }


async def one_run(path: str, rtt_n: int) -> dict[str, Any]:
    out: dict[str, Any] = {"rtt": await bench_rtt(path, rtt_n)}
    inst = Instance(name="bench", wd=Path(tempfile.gettempdir()), handles=make_handles("b", path))
    conn = VrtdConnector(inst)
    await conn.connect()
    try:
        # fault in every page once, so both sides copy resident memory
        await bench_read(conn, 4 * MIB, BAR)
        out["read"] = {
            str(chunk): await bench_read(conn, chunk, min(BAR, chunk * 4096))
            for chunk in (256, 4096, 64 * 1024, MIB)
        }
        try:
            out["hexview"] = await bench_hexview(conn, 30)
        except Exception as e:  # the widget is another engineer's work in progress
            out["hexview"] = None
            out["hexview_error"] = f"{e.__class__.__name__}: {e}"
    finally:
        await conn.close()
    return out


def median_of(runs: list[dict[str, Any]], *keys: str) -> float:
    vals = []
    for r in runs:
        v: Any = r
        for k in keys:
            v = v[k]
        vals.append(float(v))
    return statistics.median(vals)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rtt-requests", type=int, default=5000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="vrtd-bench-")
    path = os.path.join(d, "vrtd.sock")
    proc = start_sim(path)
    try:
        runs = [asyncio.run(one_run(path, args.rtt_requests)) for _ in range(args.runs)]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        shutil.rmtree(d, ignore_errors=True)
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    summary: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "runs": args.runs,
        "rtt_median_us": median_of(runs, "rtt", "median_us"),
        "rtt_p99_us": median_of(runs, "rtt", "p99_us"),
        "req_per_s": median_of(runs, "rtt", "req_per_s"),
        "rtt_blocking_median_us": median_of(runs, "rtt", "blocking_median_us"),
        "read": {
            chunk: {
                "emutui_MBps": median_of(runs, "read", chunk, "emutui_MBps"),
                "mmap_MBps": median_of(runs, "read", chunk, "mmap_MBps"),
            }
            for chunk in runs[0]["read"]
        },
    }
    if runs[0].get("hexview_error"):
        summary["hexview_error"] = runs[0]["hexview_error"]
    if runs[0]["hexview"] is not None:
        summary["hexview"] = {
            k: median_of(runs, "hexview", k)
            for k in ("render_full_screen_ms", "jump_loaded_painted_ms")
        }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(
        f"vrtd bench {summary['date']}: {cpu}, nproc {summary['nproc']}, "
        f"Python {summary['python']}, median of {args.runs} runs"
    )
    print(
        f"GET_BAR_INFO round trip: median {summary['rtt_median_us']:.1f} us, "
        f"p99 {summary['rtt_p99_us']:.1f} us, {summary['req_per_s']:.0f} req/s "
        f"(blocking-socket client: median {summary['rtt_blocking_median_us']:.1f} us)"
    )
    print(f"{'chunk':>8} {'emutui read MB/s':>17} {'plain mmap MB/s':>16} {'ratio':>6}")
    for chunk, v in summary["read"].items():
        print(
            f"{int(chunk):>8} {v['emutui_MBps']:>17.0f} {v['mmap_MBps']:>16.0f} "
            f"{v['emutui_MBps'] / v['mmap_MBps']:>6.2f}"
        )
    hv = summary.get("hexview")
    if hv:
        print(
            f"hex view 120x40 on 128 MiB BAR0: "
            f"full-screen render {hv['render_full_screen_ms']:.2f} ms, "
            f"jump+load+paint {hv['jump_loaded_painted_ms']:.1f} ms"
        )
    else:
        why = summary.get("hexview_error", "emutui.tui.widgets.hexview not available")
        print(f"hex view: not measured ({why})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
