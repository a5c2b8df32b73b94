#!/usr/bin/env python3
"""`emutui ls` against `emutui ls --all` on a state root with 200 kept runs.

    .venv/bin/python bench/bench_runs.py [SAMPLES] [RUNS]

The kept runs are made as emutui makes them (an instance directory with
handles.json, a serial log and a journal, ended by ``Registry.keep_run``),
spread over 20 names; each sample is one `emutui` process, as a user runs it.
Target (issue 13): `ls --all` within `ls` + 50 ms.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import machine


def make_runs(root: Path, n: int) -> None:
    from emutui.core.handles import Channel, Handles
    from emutui.core.registry import Registry
    from emutui.core.runs import HistoryLimits

    reg = Registry(root, history=HistoryLimits(keep_runs=n, max_bytes=1 << 40))
    for i in range(n):
        name = f"guest{i % 20}"
        wd = reg.create(name)
        h = Handles(name=name, backend="qemu", target="pc", created=time.time() - (n - i) * 60)
        h.channels["com1"] = Channel(role="serial", kind="unix", log=str(wd / "serial-com1.log"))
        h.command = ["qemu-system-x86_64", "-M", "pc", "-kernel", "guest.elf"]
        h.save(wd)
        (wd / "serial-com1.log").write_bytes(b"emutui-guest: ready (COM1)\r\n" * 40)
        (wd / "events.jsonl").write_text('{"time": 1, "name": "RESUME", "data": {}}\n')
        reg.keep_run(reg.get(name), "found dead" if i % 3 else "stopped", by="bench")


def sample(args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "emutui", *args], env=env, check=True, capture_output=True
    )
    return time.perf_counter() - t0


def main() -> int:
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    d = Path(tempfile.mkdtemp(prefix="ebruns-", dir="/tmp"))
    try:
        root = d / "state"
        make_runs(root, runs)
        env = dict(os.environ, EMUTUI_STATE_DIR=str(root), EMUTUI_CONFIG=str(d / "none.toml"))
        (d / "none.toml").write_text("")
        out = subprocess.run(
            [sys.executable, "-m", "emutui", "ls", "--all"], env=env, capture_output=True, text=True
        ).stdout
        assert out.count("\n") >= runs, out[-500:]
        ls, ls_all = [], []
        for _ in range(samples):  # interleaved, so load changes hit both alike
            ls.append(sample(["ls"], env))
            ls_all.append(sample(["ls", "--all"], env))
        m_ls, m_all = statistics.median(ls), statistics.median(ls_all)
        print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
        print(
            f"{runs} kept runs: ls {m_ls * 1000:.0f} ms, ls --all {m_all * 1000:.0f} ms "
            f"(+{(m_all - m_ls) * 1000:.0f} ms; target +50 ms); "
            f"min {min(ls) * 1000:.0f} / {min(ls_all) * 1000:.0f} ms (n={samples})"
        )
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
