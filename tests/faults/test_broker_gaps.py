"""The QMP broker runs under the serial hub's supervisor (issue 11's known gap).

QEMU emits events only to a connected monitor client: while no broker runs, its
events are lost. Killed with ``kill -9`` and no client around, the broker is
restarted by the supervisor at once (not by the next client), and the new one
journals the gap (an ``EMUTUI_JOURNAL_GAP`` event) before the events that follow.
A supervisor that does not run the broker (an instance started before this, or a
supervisor killed too) leaves the restart to the next client, as before.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from pathlib import Path

from emutui.control import start_target, stop_instance
from emutui.core import proc, qmpbroker, supervisor
from emutui.core.handles import Handles
from emutui.core.journal import EVENTS_FILE
from emutui.core.serialhub import SUPERVISOR_STATE
from tests.conftest import needs_qemu, run_cli

pytestmark = needs_qemu

DEADLINE = 30.0  # generous: the machine may be busy; never an assertion on time


async def _broker(wd: Path, not_pid: int | None = None) -> tuple[int, int | None]:
    """The supervised broker's [pid, start], once a live one other than ``not_pid`` runs."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while loop.time() < deadline:
        ids = qmpbroker.broker_ids(Handles.load(wd), wd)
        if ids and ids[0] != not_pid:
            return ids
        await asyncio.sleep(0.05)
    raise AssertionError(f"no live broker other than {not_pid}")


async def _until(pred, what: str) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while loop.time() < deadline:
        if pred():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(what)


def _journal(wd: Path) -> list[dict]:  # type: ignore[type-arg]
    try:
        lines = (wd / EVENTS_FILE).read_text().splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(x) for x in lines if x.strip()]


def _gaps(wd: Path) -> list[dict]:  # type: ignore[type-arg]
    return [e for e in _journal(wd) if e.get("name") == qmpbroker.GAP_EVENT]


def _greeting(path: str) -> bytes:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(DEADLINE)
        s.connect(path)
        data = b""
        while b"\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


async def test_killed_broker_is_restarted_by_supervisor_without_any_client(guest) -> None:
    wd = guest.wd
    qmp_sock = Handles.load(wd).channels["qmp"].path
    assert qmp_sock
    assert supervisor.supervises(wd / SUPERVISOR_STATE, qmpbroker.CHILD_NAME)
    pid, start = await _broker(wd)
    log = wd / qmpbroker.BROKER_LOG
    serving_before = log.read_text().count("qmpbroker: serving ")
    os.kill(pid, signal.SIGKILL)
    # No client, no emutui command from here until the new broker serves.
    new_pid, new_start = await _broker(wd, not_pid=pid)
    assert proc.is_alive(new_pid, new_start) and not proc.is_alive(pid, start)
    await _until(
        lambda: log.read_text().count("qmpbroker: serving ") > serving_before,
        "the new broker never said it serves",
    )
    await _until(lambda: _gaps(wd), "no gap in the journal")
    text = log.read_text()
    assert "journal gap of" in text and "found dead, restarting" not in text  # not a client
    gap = _gaps(wd)[-1]
    assert gap["data"]["by"] == "qmpbroker" and "restarted" in gap["data"]["why"]
    assert gap["data"]["since"] <= gap["data"]["until"]
    assert proc.is_alive(guest.pid, guest.handles.pid_start)  # QEMU never noticed
    assert b'"QMP"' in _greeting(qmp_sock)  # and now a client gets QEMU's greeting


async def test_events_after_the_restart_are_journaled_after_the_gap(guest) -> None:
    wd = guest.wd
    pid, _ = await _broker(wd)
    os.kill(pid, signal.SIGKILL)
    await _broker(wd, not_pid=pid)
    await _until(lambda: _gaps(wd), "no gap in the journal")
    for verb in ("pause", "resume"):
        r = run_cli(verb, guest.name)
        assert r.rc == 0, r.err

    def after_gap() -> list[str]:
        names = [e.get("name") for e in _journal(wd)]
        last_gap = len(names) - 1 - names[::-1].index(qmpbroker.GAP_EVENT)
        return [n for n in names[last_gap + 1 :] if n in ("STOP", "RESUME")]

    await _until(lambda: after_gap() == ["STOP", "RESUME"], f"not journaled: {after_gap()}")
    # and `emutui events` reads the journal with the gap in it
    r = run_cli("events", guest.name)
    assert r.rc == 0, r.err
    out = r.out
    assert qmpbroker.GAP_EVENT in out, out[-500:]
    assert "STOP" in out[out.rindex(qmpbroker.GAP_EVENT) :]


async def test_without_a_supervised_broker_the_next_client_restarts_it(guest) -> None:
    """The fallback (old instances): a supervisor gone, a killed broker, then a client."""
    wd = guest.wd
    sup_pid, sup_start = Handles.load(wd).options["helpers"]["serialhub"]
    pid, start = await _broker(wd)
    os.kill(sup_pid, signal.SIGKILL)  # its children (hub, broker) live on, orphaned
    assert proc.wait_gone(sup_pid, sup_start, DEADLINE)
    assert not qmpbroker.supervised(Handles.load(wd), wd)
    os.kill(pid, signal.SIGKILL)
    assert proc.wait_gone(pid, start, DEADLINE)
    r = run_cli("pause", guest.name)
    assert r.rc == 0, r.err
    r = run_cli("resume", guest.name)
    assert r.rc == 0, r.err
    assert "found dead, restarting" in (wd / qmpbroker.BROKER_LOG).read_text()


async def test_supervisor_ends_the_broker_when_qemu_is_gone(config, registry) -> None:
    inst = await start_target(config, registry, "plain", "brokergone", False)
    try:
        sup_pid, sup_start = inst.handles.options["helpers"]["serialhub"]
        pid, start = await _broker(inst.wd)
        # QEMU is ours (emutui started it for this test): it dies under the supervisor.
        assert proc.signal_owned(inst.pid, inst.handles.pid_start, signal.SIGKILL)
        assert proc.wait_gone(pid, start, DEADLINE)
        assert proc.wait_gone(sup_pid, sup_start, DEADLINE)
    finally:
        await stop_instance(registry, inst)


async def test_stop_ends_the_supervised_broker(config, registry) -> None:
    inst = await start_target(config, registry, "plain", "brokerstop", False)
    pid, start = await _broker(inst.wd)
    await stop_instance(registry, inst)
    assert not proc.is_alive(pid, start)


async def test_restarted_supervisor_stands_by_then_takes_over_from_an_orphan(guest) -> None:
    """Supervisor and hub killed, broker orphaned: the client-restarted supervisor's
    broker leaves the orphan serving, and takes over (journaling the gap) when it dies."""
    wd = guest.wd
    qmp_sock = Handles.load(wd).channels["qmp"].path
    assert qmp_sock
    sup_pid, sup_start = Handles.load(wd).options["helpers"]["serialhub"]
    orphan, orphan_start = await _broker(wd)
    hub = supervisor.read_state(wd / SUPERVISOR_STATE)["serialhub"]
    os.kill(sup_pid, signal.SIGKILL)
    assert proc.wait_gone(sup_pid, sup_start, DEADLINE)
    os.kill(int(hub[0]), signal.SIGKILL)  # type: ignore[arg-type]
    r = run_cli("term", guest.name, "com1", input="x\r")  # restarts hub and supervisor
    assert r.rc == 0, r.err
    assert qmpbroker.supervised(Handles.load(wd), wd)
    r = run_cli("pause", guest.name)  # still served by the orphan
    assert r.rc == 0, r.err
    assert proc.is_alive(orphan, orphan_start)
    gaps_before = len(_gaps(wd))
    os.kill(orphan, signal.SIGKILL)
    await _broker(wd, not_pid=orphan)
    await _until(lambda: len(_gaps(wd)) > gaps_before, "no gap journaled on takeover")
    assert "took over" in _gaps(wd)[-1]["data"]["why"]
    assert b'"QMP"' in _greeting(qmp_sock)
    r = run_cli("resume", guest.name)
    assert r.rc == 0, r.err
    assert "found dead, restarting" not in (wd / qmpbroker.BROKER_LOG).read_text()
