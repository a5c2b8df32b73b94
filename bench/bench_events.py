#!/usr/bin/env python3
"""The events pane ingesting 10,000 events/s: does input stall?

    .venv/bin/python bench/bench_events.py [SECONDS] [RUNS]

The whole app runs headless on the fake lab (tests/tui/snapshot_app.py) with
the Events pane of ``pc`` on screen and following. A producer puts 100 events
into the fake connector every 10 ms (10,000/s) for SECONDS; they travel the
real path: the connector's ``events()``, the instance link's batching (one
message per 50 ms), the pane's filter and list. Meanwhile:

- loop lag: a task asks to wake every 5 ms and records how late it wakes;
  a key press waits at most this long before Textual sees it;
- key latency: every 100 ms a "k"/"j" key is posted to the app as the driver
  would, and the time until the event list's cursor has moved is recorded;
- frames: compositor updates, counted by wrapping ``App._display``.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from textual import events as tevents

from bench._common import machine
from emutui.core.model import Event
from emutui.tui.widgets.events import EventList, EventsPane
from tests.tui.helpers import until
from tests.tui.snapshot_app import build_app

RATE = 10_000
TICK = 0.01


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(len(s) * p))]


async def run(seconds: float) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="ebev-"))
    app = build_app(tmp)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.links and all(lk.conn for lk in app.links.values()))
            await pilot.press("3")
            pane = app.screen.query_one(EventsPane)
            lst = app.screen.query_one(EventList)
            lst.focus()
            await pilot.pause(0.2)
            conn = app.fake_connectors["pc"]  # type: ignore[attr-defined]
            ingested = 0
            orig_ingest = pane.ingest

            def counting(name: str, evs: list[Event], history: bool = False) -> None:
                nonlocal ingested
                if name == "pc" and not history:
                    ingested += len(evs)
                orig_ingest(name, evs, history)

            pane.ingest = counting  # type: ignore[method-assign]
            frames = 0
            orig_display = app._display

            def display(screen, renderable) -> None:  # type: ignore[no-untyped-def]
                nonlocal frames
                frames += 1
                orig_display(screen, renderable)

            app._display = display  # type: ignore[method-assign]
            produced = 0
            stop = False

            async def producer() -> None:
                nonlocal produced
                loop = asyncio.get_running_loop()
                t_next = loop.time()
                per_tick = int(RATE * TICK)
                while not stop:
                    for _ in range(per_tick):
                        conn.queue.put_nowait(
                            Event(
                                "BLOCK_JOB_READY",
                                {"device": "drive0", "n": produced},
                                time.time(),
                                "pc",
                            )
                        )
                        produced += 1
                    t_next += TICK
                    await asyncio.sleep(max(0.0, t_next - loop.time()))

            lags: list[float] = []

            async def lag_probe() -> None:
                loop = asyncio.get_running_loop()
                while not stop:
                    t0 = loop.time()
                    await asyncio.sleep(0.005)
                    lags.append(loop.time() - t0 - 0.005)

            keys: list[float] = []

            async def key_probe() -> None:
                # The list follows the tail; a key moves the cursor off it.
                await asyncio.sleep(0.2)
                k = 0
                while not stop:
                    before = lst.cursor
                    key = "k" if k % 2 == 0 else "j"
                    t0 = time.perf_counter()
                    app.post_message(tevents.Key(key, key))
                    deadline = t0 + 5
                    while lst.cursor == before and time.perf_counter() < deadline:
                        await asyncio.sleep(0)
                    keys.append(time.perf_counter() - t0)
                    k += 1
                    await asyncio.sleep(0.1)

            tasks = [asyncio.create_task(c()) for c in (producer, lag_probe, key_probe)]
            t_start = time.perf_counter()
            await asyncio.sleep(seconds)
            stop = True
            await asyncio.gather(*tasks)
            elapsed = time.perf_counter() - t_start
            await until(pilot, lambda: ingested >= produced, timeout=30, what="all ingested")
            drain = time.perf_counter() - t_start - elapsed
            return {
                "rate": produced / elapsed,
                "ingested": ingested,
                "drain": drain,
                "lag_p50": statistics.median(lags),
                "lag_p99": pct(lags, 0.99),
                "lag_max": max(lags),
                "key_p50": statistics.median(keys),
                "key_p99": pct(keys, 0.99),
                "key_max": max(keys),
                "keys": len(keys),
                "fps": frames / elapsed,
            }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    print(f"machine: {machine()}")
    results = [asyncio.run(run(seconds)) for _ in range(runs)]
    for r in results:
        print(
            f"run: {r['rate']:.0f} events/s offered, {r['ingested']:.0f} shown, "
            f"drained {r['drain'] * 1000:.0f} ms after the producer stopped; "
            f"loop lag p50 {r['lag_p50'] * 1000:.1f} / p99 {r['lag_p99'] * 1000:.1f} / "
            f"max {r['lag_max'] * 1000:.1f} ms; key→cursor p50 {r['key_p50'] * 1000:.1f} / "
            f"p99 {r['key_p99'] * 1000:.1f} / max {r['key_max'] * 1000:.1f} ms "
            f"(n={r['keys']}); {r['fps']:.0f} frames/s"
        )

    def med(k: str) -> float:
        return statistics.median(r[k] for r in results)

    print(
        f"median of {runs} runs of {seconds:.0f} s: {med('rate'):.0f} events/s, "
        f"loop lag p99 {med('lag_p99') * 1000:.1f} ms (max {med('lag_max') * 1000:.1f}), "
        f"key→cursor p50 {med('key_p50') * 1000:.1f} ms, p99 {med('key_p99') * 1000:.1f} ms, "
        f"{med('fps'):.0f} frames/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
