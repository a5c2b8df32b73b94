"""Issue 2 figures: start to banner, `emutui ls` with 3 instances, `emutui prop get`.

Run: .venv/bin/python bench/bench_cli.py [runs]
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import close_lab, emutui, lab, machine, summary


def start_to_banner(env: dict[str, str], state: Path, name: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "emutui", "start", "guest", "--name", name],
        env=env,
        check=True,
        capture_output=True,
    )
    log = state / name / "serial-com1.log"
    while b"ready (COM1)" not in (log.read_bytes() if log.exists() else b""):
        time.sleep(0.001)
    return time.perf_counter() - t0


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    d, env = lab()
    state = Path(env["EMUTUI_STATE_DIR"])
    try:
        banner = []
        for i in range(runs):
            banner.append(start_to_banner(env, state, f"b{i}"))
            emutui(env, "stop", f"b{i}")
        for i in range(3):
            emutui(env, "start", "guest", "--name", f"g{i}")
        ls = [emutui(env, "ls") for _ in range(runs)]
        ls_json = [emutui(env, "ls", "--json") for _ in range(runs)]
        prop = [
            emutui(env, "prop", "get", "g0", "/machine/peripheral/edu0", "type")
            for _ in range(runs)
        ]
        print(f"machine: {machine()}")
        print(f"emutui start -> banner in serial log: {summary(banner)}")
        print(f"emutui ls (3 instances):              {summary(ls)}")
        print(f"emutui ls --json (3 instances):       {summary(ls_json)}")
        print(f"emutui prop get:                      {summary(prop)}")
    finally:
        close_lab(d, env)


if __name__ == "__main__":
    main()
