"""`emutui shell` on a pseudo-terminal against real QEMU, as qmp-shell users run it
(issue 11 item 3): death, Ctrl+C, Ctrl+R, the version, the wire, error classes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from emutui.control import connected
from emutui.core.instance import Instance
from emutui.shell.modes import QmpMode, make_mode
from emutui.shell.repl import Shell
from tests.conftest import needs_qemu, run_cli
from tests.shell.ptyrun import PtyShell
from tests.shell.test_shell_qemu import TermOut, until

pytestmark = needs_qemu

PROMPT = "(qmp:guest)"


@pytest.fixture
def pty_shell(guest: Instance, tmp_path: Path) -> Iterator[Callable[..., PtyShell]]:
    shells: list[PtyShell] = []
    env = dict(os.environ, EMUTUI_SHELL_HISTORY=str(tmp_path / "hist"))

    def start(*args: str) -> PtyShell:
        s = PtyShell(guest.name, *args, env=env)
        shells.append(s)
        s.expect(PROMPT)
        return s

    yield start
    for s in shells:
        s.close()


def run(s: PtyShell, line: str, expect: str) -> None:
    """Type a line at the prompt; wait for ``expect`` and the next prompt after it."""
    mark = len(s.plain())
    s.send(line + "\r")
    s.expect(expect, start=mark)
    after = s.plain().rfind(expect)
    s.expect(PROMPT, start=after)


def test_version_on_connect_and_ctrl_r_runs_the_line(pty_shell: Callable[..., PtyShell]) -> None:
    s = pty_shell()
    s.expect("Connected to QEMU ")
    run(s, "query-name", "{}")
    run(s, "query-status", '"running": true')
    mark = len(s.plain())
    s.send("\x12query-na")  # Ctrl+R, readline's reverse search
    s.expect("query-name", start=mark)
    s.send("\r")  # readline: Enter runs the line found
    s.expect("{}", start=mark)
    s.expect(PROMPT, start=s.plain().rfind("{}"))
    s.send("\x04")
    assert s.wait() == 0


def test_ctrl_c_cancels_a_hanging_command_and_keeps_the_shell(
    pty_shell: Callable[..., PtyShell], guest: Instance
) -> None:
    s = pty_shell()
    run(s, "query-name", "{}")
    assert guest.pid
    os.kill(guest.pid, signal.SIGSTOP)
    try:
        mark = len(s.plain())
        s.send("query-status\r")
        # Ctrl+C until the shell says so: the first may land before the command left
        for _ in range(30):
            s.send("\x03")
            try:
                s.expect("interrupted: query-status", timeout=1, start=mark)
                break
            except AssertionError:
                continue
        else:
            raise AssertionError(f"no interruption; screen:\n{s.plain()[-800:]}")
        assert s.rc is None  # still there
    finally:
        os.kill(guest.pid, signal.SIGCONT)
    run(s, "query-status", '"running": true')  # the late answer went nowhere
    s.send("\x04")
    assert s.wait() == 0


def test_qemu_dying_under_the_shell_is_one_line(
    pty_shell: Callable[..., PtyShell], guest: Instance
) -> None:
    s = pty_shell()
    run(s, "query-status", '"running": true')
    assert guest.pid
    os.kill(guest.pid, signal.SIGKILL)
    assert s.wait() == 1
    text = s.plain()
    assert "the monitor connection closed" in text or "is dead" in text
    assert "Traceback" not in text and "never retrieved" not in text


def test_c_mode_when_qemu_quits_is_one_line(guest: Instance) -> None:
    r = run_cli("shell", guest.name, "-c", "quit", "-c", "query-status")
    assert r.rc == 1
    assert "Traceback" not in r.err and "never retrieved" not in r.err
    assert r.err.strip().count("\n") == 0 and "query-status" in r.err


def test_json_errors_keep_the_qmp_class_and_hmp_errors_fail(guest: Instance) -> None:
    r = run_cli("shell", guest.name, "--json", "-c", "device_del id=zz", "-c", "!nosuchhmp")
    assert r.rc == 1
    rows = [json.loads(x) for x in r.out.splitlines()]
    assert rows[0]["error"] == {"class": "DeviceNotFound", "desc": "Device 'zz' not found"}
    assert rows[1]["error"]["class"] == "HMPError"
    assert "unknown command" in rows[1]["error"]["desc"]
    for bad in ("!nosuchhmp", "!xp", "!device_del zz"):
        r = run_cli("shell", guest.name, "-c", bad)
        assert r.rc == 1, (bad, r.out, r.err)
        assert r.err.count("\n") == 1
    assert run_cli("shell", guest.name, "-c", "!info status").rc == 0


def test_verbose_shows_the_wire_and_log_records_the_session(
    guest: Instance, tmp_path: Path
) -> None:
    log = tmp_path / "session.jsonl"
    r = run_cli("shell", guest.name, "-v", "-l", str(log), "-c", "query-status")
    assert r.rc == 0, r.err
    assert json.loads(r.out)["running"] is True  # stdout stays the answer alone
    sent = [ln for ln in r.err.splitlines() if ln.startswith("-> ")]
    got = [ln for ln in r.err.splitlines() if ln.startswith("<- ")]
    assert '"QMP"' in got[0]  # QEMU's greeting, with its version
    assert any('"execute":"query-status"' in ln.replace(" ", "") for ln in sent)
    rows = [json.loads(x) for x in log.read_text().splitlines()]
    assert rows[0]["recv"]["QMP"]["version"]["qemu"]["major"] >= 7
    assert {"input": "query-status"} in [{k: v for k, v in r.items() if k != "time"} for r in rows]
    assert any(r.get("send", {}).get("execute") == "query-status" for r in rows)
    assert oct(log.stat().st_mode & 0o777) == "0o600"


async def test_text_typed_before_the_schema_gets_its_menu(guest: Instance, tmp_path: Path) -> None:
    from prompt_toolkit.application import create_app_session
    from prompt_toolkit.data_structures import Size
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output.vt100 import Vt100_Output

    out = TermOut()
    with (
        create_pipe_input() as inp,
        create_app_session(input=inp, output=Vt100_Output(out, lambda: Size(30, 120))),
    ):
        async with connected(guest, aux=True) as conn:
            mode = make_mode("qemu", conn)
            assert isinstance(mode, QmpMode)
            gate = asyncio.Event()
            load = mode.engine.load

            async def slow_load():  # type: ignore[no-untyped-def]
                await gate.wait()
                return await load()

            mode.engine.load = slow_load  # type: ignore[method-assign]
            shell = Shell(mode, conn, guest.name, history=tmp_path / "hist", patch=False)
            task = asyncio.ensure_future(shell.interact())
            await until(lambda: shell.session is not None and shell.session.app.is_running, "up")
            assert shell.session is not None
            buf = shell.session.default_buffer
            bar = lambda: "".join(t for _, t, *_ in shell._toolbar())  # noqa: E731
            assert "loading the QMP schema" in bar()
            inp.send_text("query-sta")
            await until(lambda: buf.text == "query-sta", "the typed text")
            gate.set()  # the schema arrives; nobody presses a key
            await until(
                lambda: (
                    buf.complete_state is not None
                    and any(c.text == "query-status" for c in buf.complete_state.completions)
                ),
                "the menu",
            )
            assert "loading" not in bar()
            inp.send_text("\x03")
            await until(lambda: buf.text == "", "an empty line")
            inp.send_text(".quit\r")
            assert await asyncio.wait_for(task, 10) == 0
