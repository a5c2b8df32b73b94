"""The QMP broker on real QEMU: every client at once, a killed broker, hostile clients,
attach of a QEMU started by hand (issue 11 items 1, 2 and 5)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from qemu.qmp import QMPClient

from emutui.control import connected, start_target
from emutui.core import proc, qmpbroker
from emutui.core.handles import Handles
from emutui.core.model import InstanceState
from tests.conftest import needs_qemu, run_cli, wait_for_file_text

pytestmark = needs_qemu


def broker_pid(inst) -> tuple[int, int | None]:
    # the supervisor's child (or a broker a client restarted): whichever is alive
    ids = qmpbroker.broker_ids(Handles.load(inst.wd), inst.wd)
    assert ids is not None, "no live broker"
    return ids


async def collect(client: QMPClient, names: list[str], stop: asyncio.Event) -> None:
    async for ev in client.events:
        if ev["event"] in ("STOP", "RESUME"):
            names.append(ev["event"])
        if stop.is_set():
            return


def lifecycle_events(text: str) -> list[str]:
    out = []
    for word in text.replace("'", '"').split('"'):
        if word in ("STOP", "RESUME"):
            out.append(word)
    return out


async def test_every_client_at_once(guest):
    """A QMPClient (the TUI's role), `shell`, `events -f` and qmp-shell on one instance,
    six CLI commands in parallel per round: all answer, every client sees each
    STOP and RESUME exactly once and in order."""
    qmp_sock = Handles.load(guest.wd).channels["qmp"].path
    env = dict(os.environ)
    watcher = QMPClient("watcher")
    await watcher.connect(qmp_sock)
    seen: list[str] = []
    done = asyncio.Event()
    watch = asyncio.create_task(collect(watcher, seen, done))
    events_f = subprocess.Popen(
        [sys.executable, "-m", "emutui", "events", guest.name, "-f", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    shell = subprocess.Popen(
        [sys.executable, "-m", "emutui", "shell", guest.name, "--json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    qmp_shell = subprocess.Popen(
        [sys.executable, "-m", "qemu.qmp.qmp_shell", qmp_sock],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        # everyone is connected before the first STOP (the journal has the start's RESUME)
        assert shell.stdin is not None and qmp_shell.stdin is not None
        shell.stdin.write("query-status\n")
        shell.stdin.flush()
        qmp_shell.stdin.write("query-status\n")
        qmp_shell.stdin.flush()
        await asyncio.sleep(1.0)
        rounds = 3
        with ThreadPoolExecutor(6) as pool:
            for _ in range(rounds):
                for verb in ("pause", "resume"):
                    argvs = [(verb, guest.name)] + [
                        ("prop", "get", guest.name, "/machine/peripheral/edu0", "type")
                    ] * 5
                    results = list(pool.map(lambda a: run_cli(*a), argvs))
                    for r in results:
                        assert r.rc == 0, r.err
                        assert "busy" not in r.err
                    assert (
                        results[0].out.strip().endswith("paused" if verb == "pause" else "running")
                    )
                    assert all(r.out.strip() == "edu" for r in results[1:])
        want = ["STOP", "RESUME"] * rounds
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while len(seen) < len(want) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        assert seen == want
        # the shell and qmp-shell still answer, and qmp-shell shows the events it got
        out, err = shell.communicate("query-status\n", timeout=30)
        assert shell.returncode == 0, err
        assert [json.loads(line)["return"]["status"] for line in out.splitlines()] == [
            "running",
            "running",
        ]
        out, err = qmp_shell.communicate("query-status\n\n", timeout=30)
        assert "Traceback" not in err
        assert lifecycle_events(out) == want
        # events -f: history (the start's RESUME), then each live event once
        await asyncio.sleep(0.5)
        events_f.terminate()
        out, _ = events_f.communicate(timeout=30)
        names = [json.loads(line)["name"] for line in out.splitlines()]
        assert names[-len(want) :] == want
        assert names.count("STOP") == rounds
        # the journal has each once too: the broker wrote it
        journal = [e.name for e in guest.journal().read() if e.name in ("STOP", "RESUME")]
        assert journal[-len(want) :] == want and journal.count("STOP") == rounds
    finally:
        done.set()
        watch.cancel()
        await watcher.disconnect()
        for p in (events_f, shell, qmp_shell):
            if p.poll() is None:
                p.kill()
                p.wait()


async def test_broker_killed_mid_session_is_restarted_and_qemu_untouched(guest):
    qemu_pid, qemu_start = guest.pid, guest.handles.pid_start
    async with connected(guest) as conn:
        await conn.status()
    pid, start = broker_pid(guest)
    os.kill(pid, signal.SIGKILL)
    proc.wait_gone(pid, start, 5)
    # COM2 ticks by itself: the serial log keeps growing, whatever happens to the broker
    log = guest.serial_log("com2")
    before = log.stat().st_size
    r = run_cli("pause", guest.name)
    assert r.rc == 0, r.err
    r = run_cli("resume", guest.name)
    assert r.rc == 0, r.err
    new_pid, new_start = broker_pid(guest)  # restarted by its supervisor, or by the CLI
    assert (new_pid, new_start) != (pid, start) and proc.is_alive(new_pid, new_start)
    assert proc.is_alive(qemu_pid, qemu_start)  # the same QEMU, never restarted
    await wait_for_file_text(log, b"tick", timeout=10)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while log.stat().st_size <= before and loop.time() < deadline:
        await asyncio.sleep(0.1)
    assert log.stat().st_size > before
    text = (guest.wd / "qmpbroker.log").read_text()
    assert "journal gap of" in text or "found dead, restarting" in text


async def test_stalling_and_garbage_clients_do_not_disturb(guest):
    qmp_sock = Handles.load(guest.wd).channels["qmp"].path
    stalled = socket.socket(socket.AF_UNIX)
    stalled.connect(qmp_sock)
    stalled.sendall(b'{"execute": "qmp_capabilities"}')  # then never reads
    garbage = socket.socket(socket.AF_UNIX)
    garbage.connect(qmp_sock)
    garbage.sendall(b"\x00\xffnot json at all{{{")
    try:
        for _ in range(5):
            for verb, state in (("pause", "paused"), ("resume", "running")):
                r = run_cli(verb, guest.name)
                assert r.rc == 0 and state in r.out, r.err
        garbage.settimeout(10)
        data = b""
        while chunk := garbage.recv(65536):
            data += chunk
        assert b"QMP" in data and b"error" in data  # greeted, told, dropped
    finally:
        stalled.close()
        garbage.close()


async def test_deadline_when_qemu_is_stopped_after_connect(guest, monkeypatch):
    monkeypatch.setenv("EMUTUI_REQUEST_TIMEOUT", "1")
    async with connected(guest) as conn:
        os.kill(guest.pid, signal.SIGSTOP)
        try:
            from emutui.core.errors import NoAnswerError

            with pytest.raises(NoAnswerError) as e:
                await conn.read("edu0.bar0", 0, 4096)
            text = str(e.value)
            assert guest.name in text and "no answer within 1 s" in text and "\n" not in text
        finally:
            os.kill(guest.pid, signal.SIGCONT)
    r = run_cli("mem", "read", guest.name, "edu0.bar0", "0", "4")
    assert r.rc == 0, r.err


async def test_stop_uses_the_second_monitor_when_the_broker_is_wedged(config, registry):
    inst = await start_target(config, registry, "plain", "wedged", False)
    pid, start = broker_pid(inst)
    os.kill(pid, signal.SIGSTOP)  # alive, holding its lock, answering nothing
    try:
        r = run_cli("pause", inst.name, timeout=60)
        assert r.rc == 1 and "did not answer within" in r.err and "wedged" in r.err
        assert len(r.err.strip().splitlines()) == 1
        r = run_cli("stop", inst.name, timeout=60)
        assert r.rc == 0, r.err
        assert not proc.is_alive(inst.pid, inst.handles.pid_start)
    finally:
        if proc.is_alive(pid, start):
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def hand_started_qemu(guest_elf, tmp_path_factory):
    """A QEMU started the way a script or a person would, not by emutui."""
    d = Path(f"/tmp/hq-{os.getpid()}-{id(tmp_path_factory) % 10000}")
    d.mkdir(mode=0o700)
    argv = [
        "qemu-system-x86_64", "-display", "none", "-no-user-config", "-nodefaults",
        "-M", "pc", "-accel", "tcg", "-kernel", str(guest_elf),
        "-qmp", f"unix:{d}/qmp.sock,server=on,wait=off",
        "-chardev", f"socket,id=s0,path={d}/com1.sock,server=on,wait=off",
        "-serial", "chardev:s0",
        "-device", "edu,id=edu0",
        "-qtest", f"unix:{d}/qtest.sock,server=on,wait=off", "-qtest-log", "/dev/null",
    ]  # fmt: skip
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(500):
        if all((d / s).exists() for s in ("qmp.sock", "com1.sock", "qtest.sock")):
            break
        if p.poll() is not None:
            raise AssertionError("QEMU did not start")
        import time

        time.sleep(0.01)
    yield p, d
    p.kill()
    p.wait()
    import shutil

    shutil.rmtree(d, ignore_errors=True)


def test_attach_control_read_detach_and_qemu_keeps_running(hand_started_qemu, state_dir):
    p, d = hand_started_qemu
    r = run_cli(
        "attach", "qemu", "hand", "--qmp", f"{d}/qmp.sock",
        "--serial", f"com1={d}/com1.sock", "--qtest", f"{d}/qtest.sock",
    )  # fmt: skip
    assert r.rc == 0, r.err
    assert "stop hand' detaches" in r.out
    rows = json.loads(run_cli("ls", "--json").out)
    row = next(x for x in rows if x["name"] == "hand")
    assert row["attached"] and row["state"] == "running"
    assert "+" in run_cli("ls").out
    assert run_cli("pause", "hand").out.strip() == "hand: paused"
    assert run_cli("prop", "get", "hand", "/machine/peripheral/edu0", "type").out.strip() == "edu"
    assert run_cli("resume", "hand").out.strip() == "hand: running"
    r = run_cli("mem", "read", "hand", "edu0.bar0", "0", "4", "--json")
    assert r.rc == 0, r.err
    assert json.loads(r.out)["hex"] == "ed000001"
    # serial is logged from the moment of attach
    r = run_cli("term", "hand", "com1", input="attached-echo\r")
    assert r.rc == 0, r.err
    logs = run_cli("logs", "hand", "com1").out
    assert "attached-echo" in logs
    # qmp-shell through the broker, while emutui holds QEMU's only monitor
    qs = subprocess.run(
        [sys.executable, "-m", "qemu.qmp.qmp_shell", str(state_dir / "hand" / "qmp.sock")],
        input="query-status\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert '"running"' in qs.stdout, qs.stderr
    r = run_cli("stop", "hand")
    assert r.rc == 0, r.err
    assert "QEMU keeps running" in r.out
    assert p.poll() is None  # never signalled
    # and its monitor is free again for whoever comes next
    r = run_cli("shell", "--socket", f"{d}/qmp.sock", "-c", "query-status", "--json")
    assert r.rc == 0 and '"running"' in r.out, r.err
    assert "hand" not in run_cli("ls").out


def test_shell_socket_reaches_any_qmp_socket(guest):
    aux = Handles.load(guest.wd).channels["qmp-aux"].path
    r = run_cli("shell", "--socket", aux, "-c", "query-status", "--json")
    assert r.rc == 0, r.err
    assert json.loads(r.out.splitlines()[0])["return"]["status"] == "running"
    r = run_cli("shell", "--socket", "/nonexistent/qmp.sock", "-c", "query-status")
    assert r.rc == 1 and len(r.err.strip().splitlines()) == 1


async def test_two_tuis_each_show_their_own_console(config, registry, guest):
    """Two consoles on one state dir, each on a different instance: each shows its own."""
    from emutui.tui.app import EmutuiApp
    from emutui.tui.widgets.console_pane import ConsolePane
    from tests.tui.helpers import until, widget_text

    other = await start_target(config, registry, "plain", "other", False)
    await wait_for_file_text(other.serial_log("com1"), b"ready (COM1)")
    for inst, word in ((guest, "mark-of-guest"), (other, "mark-of-other")):
        assert run_cli("term", inst.name, "com1", input=f"{word}\r").rc == 0
    for inst, word in ((guest, "mark-of-guest"), (other, "mark-of-other")):
        await wait_for_file_text(inst.serial_log("com1"), word.encode())

    def connected_to(app: EmutuiApp, name: str) -> bool:
        link = app.links.get(name)
        return bool(link and link.conn and link.status.state is InstanceState.RUNNING)

    a, b = EmutuiApp(registry, config), EmutuiApp(registry, config)
    async with a.run_test(size=(120, 40)) as pa, b.run_test(size=(120, 40)) as pb:
        await until(pa, lambda: connected_to(a, guest.name), what="a connected")
        await until(pb, lambda: connected_to(b, other.name), what="b connected")
        await pb.press("1", "j")  # b selects the second instance ("other")
        await pa.press("2")
        await pb.press("2")
        pane_a = a.screen.query_one(ConsolePane)
        pane_b = b.screen.query_one(ConsolePane)
        await until(pa, lambda: "mark-of-guest" in widget_text(pane_a.active_view() or pane_a),
                    what="a's console")  # fmt: skip
        await until(pb, lambda: "mark-of-other" in widget_text(pane_b.active_view() or pane_b),
                    what="b's console")  # fmt: skip
        assert "mark-of-other" not in widget_text(pane_a.active_view())
        assert "mark-of-guest" not in widget_text(pane_b.active_view())
        assert pane_a.link.name == guest.name and pane_b.link.name == other.name
        # and QEMU's own qmp-shell works on the same instance while the TUIs are open
        qs = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "qemu.qmp.qmp_shell", str(guest.wd / "qmp.sock"),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(qs.communicate(b"query-status\n"), 60)
        assert b'"running"' in out, err


def test_detach_after_a_killed_supervisor_ends_its_orphaned_broker(hand_started_qemu, state_dir):
    """The supervisor of an attached QEMU's helpers killed under us: its broker runs
    on, orphaned, and the detach still ends it (QEMU itself is never signalled)."""
    from emutui.core import supervisor
    from emutui.core.serialhub import SUPERVISOR_STATE

    p, d = hand_started_qemu
    r = run_cli("attach", "qemu", "orphan", "--qmp", f"{d}/qmp.sock")
    assert r.rc == 0, r.err
    wd = state_dir / "orphan"
    sup_pid, sup_start = Handles.load(wd).options["helpers"]["serialhub"]
    broker = None
    for _ in range(600):  # generous: the machine may be busy
        broker = supervisor.read_state(wd / SUPERVISOR_STATE).get("qmpbroker")
        if broker and proc.is_alive(broker[0], broker[1]):
            break
        time.sleep(0.05)
    assert broker and proc.is_alive(broker[0], broker[1])
    os.kill(sup_pid, signal.SIGKILL)  # the supervisor alone, not its group
    assert proc.wait_gone(sup_pid, sup_start, 30)
    assert proc.is_alive(broker[0], broker[1])  # orphaned, still serving
    r = run_cli("stop", "orphan")
    assert r.rc == 0, r.err
    assert proc.wait_gone(broker[0], broker[1], 30)
    assert p.poll() is None  # QEMU never signalled
