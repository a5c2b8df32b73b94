"""QMP round trips through the QMP broker against straight to QEMU, and ten clients at once.

    .venv/bin/python bench/bench_broker.py [ROUNDS] [N]

One QEMU guest. "straight" is QEMU's second monitor (qmp-aux.sock, which QEMU
serves itself); "broker" is qmp.sock (the broker in front of QEMU's first
monitor). Each round measures N sequential ``query-status`` both ways,
one request each way in turn (so the machine's load hits both alike), with
qemu.qmp's QMPClient and with a raw blocking socket (the
broker's own cost, without qemu.qmp's ~0.35 ms). Then ten QMPClients on the
broker at once, N requests each. Medians over the rounds are printed.
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import close_lab, lab, machine


def sockets(env: dict[str, str]) -> tuple[str, str]:
    h = json.loads((Path(env["EMUTUI_STATE_DIR"]) / "guest" / "handles.json").read_text())
    return h["channels"]["qmp"]["path"], h["channels"]["qmp-aux"]["path"]


async def qmpclient_rtt(straight: str, broker: str, n: int) -> tuple[list[float], list[float]]:
    """Interleaved, one request each way in turn: the machine's load hits both alike."""
    from emutui.backends.qemu.connector import new_client

    a, b = new_client("straight"), new_client("broker")
    await a.connect(straight)
    await b.connect(broker)
    out: tuple[list[float], list[float]] = ([], [])
    try:
        for _ in range(n):
            for c, dest in ((a, out[0]), (b, out[1])):
                t = time.perf_counter()
                await c.execute("query-status")
                dest.append(time.perf_counter() - t)
    finally:
        await a.disconnect()
        await b.disconnect()
    return out


def raw_rtt(straight: str, broker: str, n: int) -> tuple[list[float], list[float]]:
    files = []
    for path in (straight, broker):
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        f = s.makefile("rwb")
        f.readline()
        f.write(b'{"execute": "qmp_capabilities"}\n')
        f.flush()
        f.readline()
        files.append((s, f))
    out: tuple[list[float], list[float]] = ([], [])
    for i in range(n):
        for (_s, f), dest in zip(files, out, strict=True):
            t = time.perf_counter()
            f.write(b'{"execute": "query-status", "id": %d}\n' % i)
            f.flush()
            while b'"return"' not in f.readline():  # skip events
                pass
            dest.append(time.perf_counter() - t)
    for s, _f in files:
        s.close()
    return out


async def many(path: str, clients: int, n: int) -> tuple[float, float]:
    """Wall time for ``clients`` QMPClients doing n requests each; median latency."""
    from emutui.backends.qemu.connector import new_client

    cs = [new_client(f"c{i}") for i in range(clients)]
    for c in cs:
        await c.connect(path)
    lat: list[float] = []

    async def run(c) -> None:
        for _ in range(n):
            t = time.perf_counter()
            await c.execute("query-status")
            lat.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    await asyncio.gather(*(run(c) for c in cs))
    wall = time.perf_counter() - t0
    for c in cs:
        await c.disconnect()
    return wall, statistics.median(lat)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    d, env = lab()
    try:
        subprocess.run(
            [sys.executable, "-m", "emutui", "start", "guest"], env=env, check=True,
            capture_output=True,
        )  # fmt: skip
        broker, straight = sockets(env)
        res: dict[str, list[float]] = {k: [] for k in ("qs", "qb", "rs", "rb")}
        tenw: list[float] = []
        tenl: list[float] = []
        for _ in range(rounds):
            qs, qb = asyncio.run(qmpclient_rtt(straight, broker, n))
            rs, rb = raw_rtt(straight, broker, n)
            for key, samples in (("qs", qs), ("qb", qb), ("rs", rs), ("rb", rb)):
                res[key].append(statistics.median(samples))
            w, lat = asyncio.run(many(broker, 10, n))
            tenw.append(w)
            tenl.append(lat)
        med = {k: statistics.median(v) * 1000 for k, v in res.items()}
        print(f"machine: {machine()}; {rounds} rounds of {n} query-status each")
        print(
            f"QMPClient round trip: straight {med['qs']:.3f} ms, broker {med['qb']:.3f} ms "
            f"-> {med['qb'] / med['qs']:.2f}x"
        )
        print(
            f"raw socket round trip: straight {med['rs']:.3f} ms, broker {med['rb']:.3f} ms "
            f"-> {med['rb'] / med['rs']:.2f}x (+{med['rb'] - med['rs']:.3f} ms)"
        )
        wall = statistics.median(tenw)
        print(
            f"ten QMPClients on the broker, {n} each: {10 * n / wall:.0f} req/s, "
            f"median latency {statistics.median(tenl) * 1000:.2f} ms, wall {wall:.2f} s"
        )
    finally:
        close_lab(d, env)


if __name__ == "__main__":
    main()
