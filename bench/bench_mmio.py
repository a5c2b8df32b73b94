"""Issue 11 item 4: MMIO reads through pipelined qtest against HMP ``xp``.

Run: .venv/bin/python bench/bench_mmio.py [runs]

On the lab's ``guest`` (QEMU ``pc`` with an edu device, its BAR0 is 1 MiB of
MMIO that only takes 32-bit accesses below 0x80):

- one 120x40 page of the hex view: 40 rows of 16 bytes = 640 bytes = 160 readl,
  through ``QemuConnector.read`` (region lookup over QMP included);
- 64 KiB (16,384 readl) the same way;
- the same two through HMP ``xp`` (the path kept for QEMUs without qtest);
- ``emutui mem read guest edu0.bar0 0 65536`` end to end (a new process, its
  imports, connect, read, hexdump).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import close_lab, emutui, lab, machine, summary

PAGE = 40 * 16
BIG = 65536


async def in_process(state: Path, runs: int) -> None:
    from emutui.backends.qemu.connector import QemuConnector
    from emutui.control import connected
    from emutui.core.registry import Registry

    inst = Registry(state).get("g0")
    async with connected(inst, aux=True) as conn:
        assert isinstance(conn, QemuConnector)
        region = await conn.find_region("edu0.bar0")

        async def timed(n: int, length: int) -> list[float]:
            out = []
            for _ in range(n):
                t0 = time.perf_counter()
                data = await conn.read("edu0.bar0", 0, length)
                out.append(time.perf_counter() - t0)
                assert data[:4] == b"\xed\x00\x00\x01", data[:4].hex()
            return out

        t = await timed(runs * 5, PAGE)
        print(f"qtest, 120x40 page ({PAGE} B, {PAGE // 4} readl):   {summary(t)}")
        t = await timed(runs, BIG)
        print(f"qtest, 64 KiB ({BIG // 4} readl):               {summary(t)}")
        lookup = []
        for _ in range(runs * 5):
            t0 = time.perf_counter()
            await conn.find_region("edu0.bar0")
            lookup.append(time.perf_counter() - t0)
        print(f"  of which the region lookup (query-pci + memory size): {summary(lookup)}")
        qt = conn.qtest_path
        conn.qtest_path = None  # the xp path, as for an attached QEMU without qtest
        try:
            t = await timed(max(3, runs // 2), PAGE)
            print(f"xp, 120x40 page:                           {summary(t)}")
            t0 = time.perf_counter()
            data = await conn.read("edu0.bar0", 0, BIG)
            xp_big = time.perf_counter() - t0
            print(f"xp, 64 KiB (one run):                      {xp_big * 1000:.0f} ms")
        finally:
            conn.qtest_path = qt
        same = await conn.read("edu0.bar0", 0, BIG)
        where = f"{region.name} at 0x{region.base:x}"
        print(f"qtest and xp agree on 64 KiB of {where}: {same == data}")


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    d, env = lab()
    state = Path(env["EMUTUI_STATE_DIR"])
    try:
        emutui(env, "start", "guest", "--name", "g0")
        print(f"machine: {machine()}")
        asyncio.run(in_process(state, runs))
        cli = [emutui(env, "mem", "read", "g0", "edu0.bar0", "0", str(BIG)) for _ in range(runs)]
        print(f"emutui mem read g0 edu0.bar0 0 65536:      {summary(cli)}")
    finally:
        close_lab(d, env)


if __name__ == "__main__":
    main()
