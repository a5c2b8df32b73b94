"""Finding 8 of issue 10: serial capture never stops silently.

The serial hub runs under a supervisor: after ``kill -9`` of the hub, with no client
attached, capture resumes by itself, the gap is written into the log, and ``ls``
shows it. Finding 12: a QEMU that fails at start is reported in its own words.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from emutui.control import start_target
from emutui.core import proc, supervisor
from emutui.core.errors import BackendError
from emutui.core.serialhub import SUPERVISOR_STATE, count_gaps
from tests.conftest import needs_qemu, wait_for_file_text

pytestmark = needs_qemu

GAP = re.compile(rb"\[emutui: capture gap \d\d:\d\d:\d\d\.\d{3} to \d\d:\d\d:\d\d\.\d{3} \(")


async def _hub_pid(wd: Path, not_pid: int | None = None, timeout: float = 30.0) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        ids = supervisor.read_state(wd / SUPERVISOR_STATE).get("serialhub")
        if ids and ids[0] != not_pid and proc.is_alive(ids[0], ids[1]):
            return int(ids[0])  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
    raise AssertionError("no live serial hub recorded")


async def test_capture_resumes_without_any_client_after_kill_9(guest) -> None:
    log = guest.serial_log("com2")
    await wait_for_file_text(log, b"tick ")
    hub = await _hub_pid(guest.wd)
    os.kill(hub, signal.SIGKILL)
    # No client, no emutui command: the supervisor restarts the hub by itself.
    new = await _hub_pid(guest.wd, not_pid=hub)
    assert new != hub
    data = await wait_for_file_text(log, b"capture gap", timeout=30)
    m = GAP.search(data)
    assert m, data[-300:]
    # and ticks go on being recorded after the gap
    size = len(data)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while loop.time() < deadline and b"tick " not in log.read_bytes()[size:]:
        await asyncio.sleep(0.1)
    assert b"tick " in log.read_bytes()[size:]
    assert count_gaps(guest.wd) >= 1
    r = subprocess.run(
        [sys.executable, "-m", "emutui", "ls"], capture_output=True, text=True, timeout=60
    )
    assert "capture gap" in r.stdout, r.stdout
    r = subprocess.run(
        [sys.executable, "-m", "emutui", "ls", "--json"], capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    row = next(x for x in json.loads(r.stdout) if x["name"] == guest.name)
    assert row["capture_gaps"] >= 1


async def test_stop_ends_supervisor_and_hub(config, registry) -> None:
    from emutui.control import stop_instance

    inst = await start_target(config, registry, "plain", "sup", False)
    sup_pid, sup_start = inst.handles.options["helpers"]["serialhub"]
    hub = await _hub_pid(inst.wd)
    hub_start = proc.start_time(hub)
    await stop_instance(registry, inst)
    assert not proc.is_alive(sup_pid, sup_start)
    assert not proc.is_alive(hub, hub_start)


@pytest.mark.parametrize(
    "override, words",
    [('kernel = "/etc"', "could not load kernel"), ('memory = "64T"', "memory")],
)
async def test_qemu_failing_at_start_is_reported_in_its_own_words(
    override: str, words: str, tmp_path: Path, guest_elf: Path, registry, monkeypatch
) -> None:
    from emutui.config import parse_config

    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[targets.bad]\nbackend = "qemu"\nmachine = "pc"\nserial = ["com1"]\n'
        + (override if "kernel" in override else f'kernel = "{guest_elf}"\n{override}')
        + "\n"
    )
    with pytest.raises(BackendError) as e:
        await start_target(parse_config(cfg), registry, "bad", None, False)
    msg = str(e.value)
    assert "QEMU exited" in msg and words in msg.lower(), msg
    assert "serial hub did not start" not in msg
    assert registry.instances() == []
