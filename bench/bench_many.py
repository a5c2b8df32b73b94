"""Issue 7: emutui's memory and CPU with 32 instances attached and one flooding.

Starts 32 QEMU guests, opens the real TUI (`emutui`) in tmux at 120x40 over them
(the flooding one focused, its console visible), and samples the TUI process's
CPU time and RSS from /proc: first idle, then while the focused guest floods.

Run: .venv/bin/python bench/bench_many.py [instances] [seconds]
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import close_lab, emutui, lab, machine

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def proc_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def find_tui_pid(session: str) -> int:
    pane_pid = int(
        subprocess.run(
            ["tmux", "display", "-p", "-t", session, "#{pane_pid}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    # the pane runs `python -m emutui` directly
    return pane_pid


def sample(pid: int, seconds: float) -> tuple[float, float, float]:
    """CPU share of one core, mean and max RSS (MiB) over ``seconds``."""
    c0, t0 = proc_cpu(pid), time.monotonic()
    rss = []
    while time.monotonic() - t0 < seconds:
        rss.append(proc_rss_mib(pid))
        time.sleep(0.5)
    cpu = (proc_cpu(pid) - c0) / (time.monotonic() - t0)
    return cpu * 100, sum(rss) / len(rss), max(rss)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 20
    d, env = lab()
    state = Path(env["EMUTUI_STATE_DIR"])
    session = f"bench-many-{os.getpid()}"
    try:
        t0 = time.monotonic()
        names = ["a-flood"] + [f"g{i:02d}" for i in range(1, n)]
        for name in names:
            emutui(env, "start", "guest", "--name", name)
        print(f"machine: {machine()}")
        print(f"started {n} instances in {time.monotonic() - t0:.1f} s")
        envs = " ".join(f"{k}={v}" for k, v in env.items() if k.startswith("EMUTUI_"))
        subprocess.run(
            [
                "tmux",
                "new",
                "-d",
                "-s",
                session,
                "-x",
                "120",
                "-y",
                "40",
                f"env {envs} {sys.executable} -m emutui",
            ],
            check=True,
        )
        time.sleep(8)  # first frame, every instance attached
        pid = find_tui_pid(session)
        cpu, rss, rss_max = sample(pid, seconds)
        print(
            f"idle, {n} attached:        CPU {cpu:5.1f} % of a core, RSS {rss:.0f} MiB "
            f"(max {rss_max:.0f})"
        )
        flood = socket.socket(socket.AF_UNIX)
        flood.connect(str(state / "a-flood" / "serial-com1.sock"))
        flood.sendall(b"\x06")  # ^F: the focused guest floods its console
        cpu, rss, rss_max = sample(pid, seconds)
        log = state / "a-flood" / "serial-com1.log"
        size = sum(p.stat().st_size for p in log.parent.glob("serial-com1.log*"))
        flood.sendall(b"x")
        flood.close()
        print(
            f"one flooding (focused):   CPU {cpu:5.1f} % of a core, RSS {rss:.0f} MiB "
            f"(max {rss_max:.0f}); flood wrote {size / 1e6:.1f} MB in total"
        )
        time.sleep(1)
        screen = subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
        ).stdout
        import re

        lines = re.findall(r"flood ([0-9a-f]{8})", screen)
        print(f"console showed flood lines up to {lines[-1] if lines else 'none'}")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        close_lab(d, env)


if __name__ == "__main__":
    main()
