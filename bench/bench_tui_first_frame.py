#!/usr/bin/env python3
"""Time to first frame of bare ``emutui`` with three running QEMU instances.

    .venv/bin/python bench/bench_tui_first_frame.py [RUNS]

Each run starts ``emutui`` (the installed entry point: interpreter, CLI, Textual
imports, App, first layout and paint) in a real terminal: a detached tmux
window of 120x40, so Textual's Linux driver writes real escape sequences.
The app writes the wall time of its first ``on_ready`` (first frame painted)
and of the moment all three instances are connected, then exits
(EMUTUI_BENCH_FIRST_FRAME). Without tmux it falls back to a pipe (headless).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import lab, machine


def one_run(env: dict[str, str], out: Path) -> tuple[float, float]:
    out.unlink(missing_ok=True)
    env = dict(env, EMUTUI_BENCH_FIRST_FRAME=str(out))
    exe = str(Path(sys.executable).parent / "emutui")
    t0 = time.time()
    if shutil.which("tmux"):
        session = f"ebff{os.getpid()}"
        cmd = " ".join(
            [f"{k}={v!r}" for k, v in env.items() if k.startswith(("EMUTUI", "TERM"))] + [exe]
        )
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", cmd], check=True
        )
        try:
            deadline = time.time() + 30
            while not out.exists() and time.time() < deadline:
                time.sleep(0.005)
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    else:
        subprocess.run([exe], env=env, capture_output=True, timeout=30)
    first, connected = (float(x) for x in out.read_text().split())
    return first - t0, connected - t0


async def start_three(env: dict[str, str]) -> None:
    from emutui.config import parse_config
    from emutui.control import start_target
    from emutui.core.registry import Registry

    cfg = parse_config(Path(env["EMUTUI_CONFIG"]))
    reg = Registry(env["EMUTUI_STATE_DIR"])
    for i in range(3):
        await start_target(cfg, reg, "guest", f"g{i}", False)


async def stop_all(env: dict[str, str]) -> None:
    from emutui.control import stop_instance
    from emutui.core.registry import Registry

    reg = Registry(env["EMUTUI_STATE_DIR"])
    for inst in reg.instances():
        await stop_instance(reg, inst)


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    d, env = lab()
    asyncio.run(start_three(env))
    firsts, conns = [], []
    try:
        one_run(env, d / "ff.txt")  # warm the page cache: not counted
        for _ in range(runs):
            f, c = one_run(env, d / "ff.txt")
            firsts.append(f)
            conns.append(c)
    finally:
        asyncio.run(stop_all(env))
        shutil.rmtree(d, ignore_errors=True)
    print(f"machine: {machine()}, nproc {os.cpu_count()}")
    print(f"driver: {'tmux 120x40' if shutil.which('tmux') else 'headless pipe'}; runs: {runs}")
    for label, xs in (("first frame", firsts), ("all 3 connected", conns)):
        print(
            f"{label}: median {statistics.median(xs) * 1000:.0f} ms, "
            f"min {min(xs) * 1000:.0f}, max {max(xs) * 1000:.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
