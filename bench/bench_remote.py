"""Issue 16 figures: remote hosts over a real sshd with a network's latency in between.

A private sshd on 127.0.0.1 and a ProxyCommand that holds each byte DELAY ms in each
direction (RTT = 2 x DELAY; no tc/netem, which would slow the whole machine's
loopback). Three hosts (this machine, three state dirs), one QEMU guest on lab1.

  - ls over 3 hosts (warm ControlMasters) vs the slowest host's own `ls` + 1 RTT
  - console key to screen: a byte written to the forwarded serial hub until the
    guest's echo is back (the TUI's path, without painting) vs RTT + 10 ms
  - a 120x40 hex page of a remote BAR (one agent request) vs RTT + 10 ms

Run: .venv/bin/python bench/bench_remote.py [runs] [delay_ms]   (as root: sshd logs in as root)
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))
from _common import lab, machine, summary

from tests.remote.sshd import start_sshd

PAGE = 16 * 36  # a 120x40 hex view shows 36 rows of 16 bytes


def run(env: dict[str, str], *args: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-m", "emutui", *args], env=env, capture_output=True, text=True
    )
    if p.returncode != 0:
        raise SystemExit(f"emutui {' '.join(args)}: {p.stderr.strip()}")
    return time.perf_counter() - t0, p.stdout


async def console_and_page(config: Path, runs: int) -> tuple[list[float], list[float]]:
    from emutui.backends.remote.connector import RemoteHosts
    from emutui.config import parse_config
    from emutui.control import make_connector

    cfg = parse_config(config, validate=False)
    mirror = Path(f"/tmp/eb-mirror-{os.getpid()}")
    mirror.mkdir(mode=0o700, exist_ok=True)
    hosts = RemoteHosts([cfg.hosts["lab1"]], mirror)
    try:
        await hosts.refresh_now()
        inst = next(i for i in hosts() if i.name == "guest@lab1")
        conn = make_connector(inst, aux=False)
        await conn.connect()
        stream = await conn.serial("com1")
        keys = []
        for i in range(runs * 20):
            ch = bytes([ord("a") + i % 26])
            t0 = time.perf_counter()
            await stream.write(ch)
            got = b""
            while ch not in got:
                got += await stream.read(4096)
            keys.append(time.perf_counter() - t0)
        await stream.close()
        region = (await conn.regions())[0].name
        pages = []
        for _ in range(runs * 5):
            t0 = time.perf_counter()
            await conn.read(region, 0, PAGE)
            pages.append(time.perf_counter() - t0)
        return keys, pages
    finally:
        await hosts.close()
        await hosts.close_masters()
        shutil.rmtree(mirror, ignore_errors=True)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    delay = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    rtt = 2 * delay / 1000
    d, env = lab()
    sshd = start_sshd(Path(f"/tmp/eb-sshd-{os.getpid()}"), delay_ms=delay)
    try:
        states = {h: d / f"state-{h}" for h in ("lab1", "lab2", "lab3")}
        laptop = d / "laptop.toml"
        laptop.write_text(
            "".join(sshd.host_toml(h, sd, Path(env["EMUTUI_CONFIG"])) for h, sd in states.items())
        )
        local = dict(env, EMUTUI_CONFIG=str(laptop), EMUTUI_STATE_DIR=str(d / "laptop"))
        host1 = dict(env, EMUTUI_STATE_DIR=str(states["lab1"]))
        run(host1, "start", "guest")
        run(local, "ls")  # warm: one ControlMaster per host, kept (ControlPersist)
        ls_remote = [run(local, "ls")[0] for _ in range(runs)]
        ls_host = [
            max(run(dict(env, EMUTUI_STATE_DIR=str(sd)), "ls")[0] for sd in states.values())
            for _ in range(runs)
        ]
        keys, pages = asyncio.run(console_and_page(laptop, runs))
        med = sorted(ls_host)[len(ls_host) // 2]
        print(f"machine: {machine()}; RTT {rtt * 1000:.0f} ms (ProxyCommand delay)")
        print(f"ls over 3 hosts:           {summary(ls_remote)}")
        print(f"slowest host's own ls:     {summary(ls_host)}")
        print(f"  target: <= own ls + 1 RTT = {(med + rtt) * 1000:.1f} ms")
        target = f"{rtt * 1000 + 10:.0f} ms"
        print(f"console key -> echo:       {summary(keys)}  (target p99 <= {target})")
        print(f"remote 120x40 hex page:    {summary(pages)}  (target <= {target})")
    finally:
        subprocess.run(
            [sys.executable, "-m", "emutui", "stop", "--all"], env=host1, capture_output=True
        )
        sshd.stop()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
