"""Issue 10 finding 8: how long serial capture is interrupted when the hub is killed.

Starts the test guest, then N times: kill -9 the serial hub (no client attached)
and read the gap the restarted hub recorded in capture-gaps.jsonl (from the
hub's death, as its supervisor saw it, to the new hub's upstream connection).

Run: .venv/bin/python bench/bench_capture_gap.py [kills]
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import close_lab, emutui, lab, machine, summary

from emutui.core import proc, supervisor
from emutui.core.serialhub import GAPS_FILE, SUPERVISOR_STATE


def live_hub(wd: Path, not_pid: int | None = None) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ids = supervisor.read_state(wd / SUPERVISOR_STATE).get("serialhub")
        if ids and ids[0] != not_pid and proc.is_alive(ids[0], ids[1]):
            return int(ids[0])  # type: ignore[arg-type]
        time.sleep(0.01)
    raise SystemExit("no live hub")


def gaps(wd: Path) -> list[dict[str, float]]:
    try:
        return [json.loads(x) for x in (wd / GAPS_FILE).read_text().splitlines()]
    except OSError:
        return []


def main() -> None:
    kills = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    d, env = lab()
    wd = Path(env["EMUTUI_STATE_DIR"]) / "gap"
    try:
        emutui(env, "start", "guest", "--name", "gap")
        hub = live_hub(wd)
        for i in range(kills):
            os.kill(hub, signal.SIGKILL)
            hub = live_hub(wd, not_pid=hub)
            deadline = time.monotonic() + 30
            while len(gaps(wd)) < 2 * (i + 1) and time.monotonic() < deadline:
                time.sleep(0.01)  # one record per serial port (com1, com2)
            time.sleep(1.0)  # a kill of a hub that just started would be backed off
        per_port = [g["to"] - g["from"] for g in gaps(wd)]
        print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
        print(f"capture gap after kill -9 of the hub (per port): {summary(per_port)}")
    finally:
        close_lab(d, env)


if __name__ == "__main__":
    main()
