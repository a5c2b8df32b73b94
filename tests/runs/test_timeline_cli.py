"""`emutui timeline` over several runs, with filters, and following a live one (no QEMU)."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from emutui.core import proc
from emutui.core.handles import Channel, Handles
from emutui.core.registry import Registry
from emutui.core.timeindex import TimedLog
from tests.conftest import run_cli

T0 = 1_700_000_000.0


def instance(reg: Registry, name: str, pid: int | None = None) -> tuple[Path, TimedLog]:
    wd = reg.create(name)
    h = Handles(name=name, backend="qemu", target="pc", created=T0, pid=pid)
    if pid:
        h.pid_start = proc.start_time(pid)
    h.channels["com1"] = Channel(role="serial", kind="unix", log=str(wd / "serial-com1.log"))
    h.save(wd)
    return wd, TimedLog(wd / "serial-com1.log")


def test_timeline_of_several_runs_merges_by_time_and_filters(state_dir: Path) -> None:
    reg = Registry(state_dir)
    for name, offset in (("a", 0.0), ("b", 0.5)):
        wd, log = instance(reg, name)
        now = [T0]
        log._clock = lambda now=now: now[0]  # type: ignore[attr-defined]
        for i in range(5):
            now[0] = T0 + i + offset
            log.write(f"{name} line {i}\r\n".encode())
        log.close()
        (wd / "events.jsonl").write_text(
            json.dumps({"time": T0 + 2.75, "name": f"EV_{name}", "data": {}}) + "\n"
        )
        reg.keep_run(reg.get(name), "stopped", by="test")
    r = run_cli("timeline", "a", "b", "--json")
    assert r.rc == 0, r.err
    rows = [json.loads(x) for x in r.out.splitlines()]
    texts = [x["text"] for x in rows if x["kind"] != "run"]
    assert texts == [
        "a line 0", "b line 0", "a line 1", "b line 1", "a line 2", "b line 2",
        "EV_a", "EV_b", "a line 3", "b line 3", "a line 4", "b line 4",
    ]  # fmt: skip
    assert {x["source"] for x in rows} >= {"a:com1", "b:com1", "a:events", "b:events"}
    times = [x["time"] for x in rows]
    assert times == sorted(times)
    only = run_cli("timeline", "a", "b", "-s", "events", "--json").out.splitlines()
    assert [json.loads(x)["text"] for x in only] == ["EV_a", "EV_b"]
    grep = run_cli("timeline", "a", "b", "-g", "line [34]", "-s", "a:com1").out
    assert [ln.split()[-1] for ln in grep.splitlines()] == ["3", "4"]
    # a time span, and a bad source or regex in one line
    span = run_cli("timeline", "a", "--since", str(T0 + 1), "--until", str(T0 + 3), "--json")
    assert [json.loads(x)["text"] for x in span.out.splitlines()] == [
        "a line 1",
        "a line 2",
        "EV_a",
        "a line 3",
    ]
    for bad in (["-s", "nope"], ["-g", "("]):
        r = run_cli("timeline", "a", *bad)
        assert r.rc == 1 and len(r.err.strip().splitlines()) == 1, r.err


def test_timeline_follows_a_live_run(state_dir: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "120"])
    try:
        _wd, log = instance(Registry(state_dir), "live", pid=sleeper.pid)
        log.write(b"before\r\n")
        p = subprocess.Popen(
            [sys.executable, "-m", "emutui", "timeline", "live", "-f"],
            stdout=subprocess.PIPE,
            env=dict(os.environ),
        )
        try:
            seen = b""
            deadline = time.monotonic() + 60
            wrote = False
            while b"after" not in seen and time.monotonic() < deadline:
                if b"before" in seen and not wrote:
                    log.write(b"af")  # half a line first: shown once it is whole
                    log.write(b"ter\r\n")
                    wrote = True
                r, _, _ = select.select([p.stdout], [], [], 0.2)
                if r:
                    seen += os.read(p.stdout.fileno(), 65536)  # type: ignore[union-attr]
            assert b"com1" in seen and b"after" in seen, seen
            assert b" af\n" not in seen
        finally:
            p.kill()
            p.wait()
            log.close()
    finally:
        sleeper.kill()
        sleeper.wait()
