"""Issue 13: runs outlive instances; arrival times; one timeline; export."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import tarfile
from pathlib import Path

import pytest

from emutui.control import connected, start_target, stop_instance
from emutui.core import proc
from emutui.core.handles import Handles
from emutui.core.registry import Registry
from emutui.core.runs import HistoryLimits, list_runs
from emutui.core.timeindex import TimedLog, TimeIndex, index_path
from emutui.core.timeline import FileSource, Timeline
from tests.conftest import needs_qemu, run_cli, wait_for_file_text

STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2} )?\d{2}:\d{2}:\d{2}\.\d{3} ")


async def kill_9(inst) -> None:
    os.kill(inst.pid, signal.SIGKILL)
    await asyncio.to_thread(proc.wait_gone, inst.pid, None, 10)


@needs_qemu
async def test_kill_9_then_start_keeps_the_first_run(config, registry, state_dir, tmp_path):
    first = await start_target(config, registry, "guest", None, False)
    await wait_for_file_text(first.serial_log("com1"), b"ready (COM1)")
    await wait_for_file_text(first.serial_log("com2"), b"tick 00000001")
    await kill_9(first)
    second = await start_target(config, registry, "guest", None, False)
    try:
        assert second.pid != first.pid
        [run] = list_runs(state_dir, "guest")
        for f in ("handles.json", "end.json", "output.log", "serial-com1.log", "serial-com2.log"):
            assert (run.wd / f).is_file(), f
        assert (run.wd / "serial-com1.log.tidx").stat().st_size > 0
        end = run.end()
        assert end["how"] == "found dead" and end["ended"] >= end["started"]
        assert Handles.load(run.wd).command  # the command line is kept
        assert not list(p for p in run.wd.iterdir() if p.is_socket() or p.is_symlink())

        # logs guest~1 --timestamps: the first run's banner, with the time it arrived
        r = run_cli("logs", "guest~1", "--timestamps")
        assert r.rc == 0, r.err
        banner = [ln for ln in r.out.splitlines() if "ready (COM1)" in ln]
        assert banner and STAMP.match(banner[0]), r.out
        # the run id works as well, and guest~0 is the live one
        assert "ready (COM1)" in run_cli("logs", run.id).out
        assert run_cli("logs", "guest~2").rc == 1

        # the timeline of that run: its lines, its events, and how it ended
        r = run_cli("timeline", "guest~1")
        assert r.rc == 0, r.err
        lines = r.out.splitlines()
        assert any("com1" in ln and "ready (COM1)" in ln for ln in lines)
        assert any("com2" in ln and "tick 00000001" in ln for ln in lines)
        assert "run ended: found dead" in lines[-1]
        times = [STAMP.match(ln).group(0) for ln in lines]
        assert times == sorted(times)

        # export holds all of it
        out = tmp_path / "crash.tar.gz"
        r = run_cli("export", "guest~1", "-o", str(out))
        assert r.rc == 0, r.err
        with tarfile.open(out) as tar:
            names = {Path(n).name for n in tar.getnames()}
        assert {"handles.json", "end.json", "serial-com1.log", "events.jsonl"} <= names | {
            "events.jsonl"
        }
        assert {"timeline.txt", "output.log", "serial-com1.log.tidx"} <= names
    finally:
        await stop_instance(registry, second)


@needs_qemu
async def test_stop_keeps_the_run_and_ls_all_lists_it(config, registry, state_dir):
    inst = await start_target(config, registry, "plain", "keepme", False)
    await wait_for_file_text(inst.serial_log("com1"), b"ready (COM1)")
    r = run_cli("stop", "keepme")
    assert r.rc == 0, r.err
    assert not inst.wd.exists()
    [run] = list_runs(state_dir, "keepme")
    assert run.end()["how"] == "stopped" and "emutui stop" in run.end()["by"]
    # NAME with no live instance is its last run
    assert "ready (COM1)" in run_cli("logs", "keepme").out
    rows = json.loads(run_cli("ls", "--all", "--json").out)
    kept = [x for x in rows if x.get("state") == "kept"]
    assert [x["run"] for x in kept] == [run.id] and kept[0]["how"] == "stopped"
    assert "stopped by" in run_cli("ls", "--all").out
    assert run.id in run_cli("runs", "keepme").out
    # rm removes it on purpose
    assert run_cli("rm", "keepme~0").rc == 0
    assert list_runs(state_dir, "keepme") == []


def _ended(reg: Registry, name: str, size: int = 0, created: float = 0.0) -> None:
    wd = reg.create(name)
    h = Handles(name=name, backend="qemu", target="t")
    if created:
        h.created = created
    h.save(wd)
    (wd / "serial-com1.log").write_bytes(b"x" * size)
    reg.keep_run(reg.get(name), "stopped", by="test")


def test_limits_remove_the_oldest_first_and_never_a_live_instance(state_dir):
    reg = Registry(state_dir, history=HistoryLimits(keep_runs=3, max_bytes=10**9))
    for i in range(5):
        _ended(reg, "a", created=1_700_000_000 + i)
    runs = list_runs(state_dir, "a")
    assert len(runs) == 3
    assert [r.end()["started"] for r in runs] == [1_700_000_002, 1_700_000_003, 1_700_000_004]
    # a live instance of the same name is never pruned, whatever the limits
    sleeper = subprocess.Popen(["sleep", "120"])
    try:
        live = reg.create("a")
        Handles(
            name="a",
            backend="qemu",
            target="t",
            pid=sleeper.pid,
            pid_start=proc.start_time(sleeper.pid),
        ).save(live)
        _limits_with_a_live_instance(reg, state_dir, live)
    finally:
        sleeper.kill()
        sleeper.wait()


def _limits_with_a_live_instance(reg: Registry, state_dir: Path, live: Path) -> None:
    reg.history = HistoryLimits(keep_runs=0, max_bytes=0)
    removed = reg.prune()
    assert len(removed) == 3 and list_runs(state_dir) == []
    assert (live / "handles.json").exists() and reg.get("a").alive()
    # the byte budget: the oldest go first, across names
    reg.history = HistoryLimits(keep_runs=20, max_bytes=4000)
    _ended(reg, "b", size=1000, created=1_700_000_010)
    _ended(reg, "c", size=1000, created=1_700_000_011)
    _ended(reg, "b", size=1000, created=1_700_000_012)
    left = [(r.name, r.end()["started"]) for r in list_runs(state_dir)]
    assert left == [("c", 1_700_000_011), ("b", 1_700_000_012)]
    r = run_cli("prune", "--keep-runs", "1", "--max-bytes", "100000")
    assert r.rc == 0 and "pruned 0" in r.out  # one per name already
    r = run_cli("prune", "--keep-runs", "0")
    assert r.rc == 0 and "pruned 2" in r.out
    assert reg.get("a").alive()


def test_timestamps_survive_rotation_and_a_hub_restart(tmp_path):
    now = [1_800_000_000.0]
    log_path = tmp_path / "serial-com1.log"
    log = TimedLog(log_path, max_bytes=4096, generations=3, clock=lambda: now[0])
    sent = []
    for i in range(1000):
        line = f"line {i:04d}\n".encode()
        now[0] += 0.01
        log.write(line)
        sent.append((now[0], line))
    log.close()  # the hub dies...
    log = TimedLog(log_path, max_bytes=4096, generations=3, clock=lambda: now[0])
    for i in range(1000, 1500):  # ...and a new one appends
        line = f"line {i:04d}\n".encode()
        now[0] += 0.01
        log.write(line)
        sent.append((now[0], line))
    log.close()
    assert index_path(log_path.with_name("serial-com1.log.2")).exists()
    tl = Timeline([FileSource("com1", log_path, "serial")])
    got = list(tl.iterate())
    kept = {ln: t for t, ln in sent}
    assert [ln.text for ln in got] == [ln.rstrip(b"\n") for _, ln in sent]
    for ln in got:
        assert ln.t == pytest.approx(kept[ln.text + b"\n"], abs=1e-6), ln
    # and a jump to a time lands on the line that arrived then
    t350 = next(t for t, ln in sent if ln == b"line 0350\n")
    first, _ = tl.forward(tl.seek_time(t350), 1)
    assert first[0].text == b"line 0350"
    assert TimeIndex(log_path).last_time() == pytest.approx(now[0])


@needs_qemu
async def test_times_kept_across_a_real_hub_restart(config, registry):
    from tests.faults.test_qemu_faults import hub_pid

    inst = await start_target(config, registry, "guest", "hubre", False)
    try:
        com2 = inst.serial_log("com2")
        await wait_for_file_text(com2, b"tick 00000001")
        old = hub_pid(inst)
        os.kill(old, signal.SIGKILL)  # the supervisor starts a new hub, which appends
        await asyncio.to_thread(proc.wait_gone, old, None, 10)
        await wait_for_file_text(com2, b"capture gap", timeout=30)
        n = com2.read_bytes().count(b"tick ")
        for _ in range(600):  # two more ticks from the new hub
            if com2.read_bytes().count(b"tick ") >= n + 2:
                break
            await asyncio.sleep(0.05)
        r = run_cli("logs", "hubre", "com2", "--timestamps")
        ticks = [ln for ln in r.out.splitlines() if "tick" in ln]
        assert len(ticks) >= n + 1 and all(STAMP.match(t) for t in ticks)
        stamps = [STAMP.match(t).group(0) for t in ticks]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
        # --since/--last pick by arrival time
        r2 = run_cli("logs", "hubre", "com2", "--since", stamps[-1].strip()[-12:])
        assert ticks[-1].split(" ", 1)[1] in r2.out and ticks[0].split(" ", 1)[1] not in r2.out
        assert "tick" in run_cli("logs", "hubre", "com2", "--last", "1s").out
    finally:
        await stop_instance(registry, inst)


@needs_qemu
async def test_timeline_interleaves_ticks_and_stop_resume_in_order(config, registry):
    inst = await start_target(config, registry, "guest", "tl", False)
    try:
        com2 = inst.serial_log("com2")
        await wait_for_file_text(com2, b"tick 00000002")
        async with connected(inst) as conn:
            await conn.pause()
            await asyncio.sleep(1.5)  # the guest stays paused across what would be a tick
            await conn.resume()
        data = await wait_for_file_text(com2, b"tick 00000004", timeout=20)
        assert b"tick" in data
    finally:
        await stop_instance(registry, inst)
    r = run_cli("timeline", "tl", "--source", "com2,events")
    assert r.rc == 0, r.err
    lines = r.out.splitlines()
    kinds = []
    for ln in lines:
        if "tick 000000" in ln:
            kinds.append("tick")
        elif re.search(r"events\s+STOP", ln):
            kinds.append("STOP")
        elif re.search(r"events\s+RESUME", ln):
            kinds.append("RESUME")
    i = kinds.index("STOP")
    assert "tick" in kinds[:i]  # ticks happened before the pause
    assert kinds[i + 1] == "RESUME"  # no tick while paused
    assert "tick" in kinds[i + 2 :]
    times = [STAMP.match(ln).group(0) for ln in lines]
    assert times == sorted(times)
    # filters: by regex, by source
    only = run_cli("timeline", "tl", "-g", "STOP|RESUME").out.splitlines()
    assert [x.split()[2] for x in only][-2:] == ["STOP", "RESUME"]
    assert all("com2" not in x for x in run_cli("timeline", "tl", "-s", "events").out.splitlines())


def test_export_round_trips(state_dir, tmp_path):
    reg = Registry(state_dir)
    wd = reg.create("ex")
    log = TimedLog(wd / "serial-com1.log", max_bytes=4096, generations=3)
    h = Handles(name="ex", backend="qemu", target="t", command=["qemu", "-S"])
    from emutui.core.handles import Channel

    h.channels["com1"] = Channel(role="serial", kind="unix", log=str(wd / "serial-com1.log"))
    h.save(wd)
    now = [1_800_000_000.0]
    log._clock = lambda: now[0]  # type: ignore[attr-defined]
    for i in range(600):
        now[0] += 1
        log.write(f"line {i:04d}\r\n".encode())
    log.close()
    (wd / "events.jsonl").write_text(
        "".join(json.dumps({"time": 1_800_000_000 + i, "name": f"E{i}"}) + "\n" for i in range(600))
    )
    run = reg.keep_run(reg.get("ex"), "stopped", by="test")
    out = tmp_path / "ex.tar.gz"
    assert run_cli("export", run.id, "-o", str(out)).rc == 0
    dest = tmp_path / "x"
    with tarfile.open(out) as tar:
        tar.extractall(dest, filter="data")
    got = dest / run.id
    for f in run.wd.iterdir():
        assert (got / f.name).read_bytes() == f.read_bytes(), f.name
    assert "line 0599" in (got / "timeline.txt").read_text()
    # --since/--until cut logs and journal to the span, with times that still work
    since, until = 1_800_000_100.5, 1_800_000_200.5
    cut = tmp_path / "cut.tar.gz"
    r = run_cli("export", "ex", "-o", str(cut), "--since", str(since), "--until", str(until))
    assert r.rc == 0, r.err
    dest2 = tmp_path / "y"
    with tarfile.open(cut) as tar:
        tar.extractall(dest2, filter="data")
    got2 = dest2 / run.id
    body = (got2 / "serial-com1.log").read_bytes()
    assert body == b"".join(f"line {i:04d}\r\n".encode() for i in range(100, 200))
    assert not (got2 / "serial-com1.log.1").exists()
    evs = [json.loads(x)["name"] for x in (got2 / "events.jsonl").read_text().splitlines()]
    assert evs == [f"E{i}" for i in range(101, 201)]
    assert TimeIndex(got2 / "serial-com1.log").first_time() == 1_800_000_101
