"""emutui shell against a real QEMU guest: prompt_toolkit driven through a pipe input.

The shell holds the auxiliary monitor; whatever else a test does to the guest goes
through the primary one, as the TUI would (a QMP monitor serves one client at a time).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import stat
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.data_structures import Size
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output.vt100 import Vt100_Output

from emutui.control import connected
from emutui.core.instance import Instance
from emutui.shell.modes import QmpMode, make_mode
from emutui.shell.repl import Shell
from tests.conftest import needs_qemu, run_cli

pytestmark = needs_qemu

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


class TermOut(io.StringIO):
    """What the terminal received; Vt100_Output wants an encoding."""

    encoding = "utf-8"

    def plain(self) -> str:
        return ANSI.sub("", self.getvalue())


async def until(cond: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@dataclass
class Session:
    shell: Shell
    inp: PipeInput
    out: TermOut
    task: asyncio.Future[int]

    @property
    def buf(self) -> Buffer:
        assert self.shell.session is not None
        return self.shell.session.default_buffer

    async def type_and_wait_for_menu(self, text: str) -> list[str]:
        """Type text, then wait for the completion menu complete-while-typing opens."""
        self.inp.send_text(text)

        def menu() -> bool:
            st = self.buf.complete_state
            return self.buf.text.endswith(text) and st is not None and bool(st.completions)

        await until(menu, f"completions for {self.buf.text!r}")
        st = self.buf.complete_state
        assert st is not None
        return [c.text for c in st.completions]

    async def run(self, line: str, expect: str) -> None:
        self.inp.send_text(line + "\r")
        await until(lambda: expect in self.out.plain(), f"{expect!r} after {line!r}")


@pytest.fixture
async def session(guest: Instance, tmp_path: Path) -> AsyncIterator[Session]:
    out = TermOut()
    with (
        create_pipe_input() as inp,
        create_app_session(input=inp, output=Vt100_Output(out, lambda: Size(30, 120))),
    ):
        async with connected(guest, aux=True) as conn:
            mode = make_mode("qemu", conn)
            shell = Shell(mode, conn, guest.name, history=tmp_path / "hist", patch=False)
            task = asyncio.ensure_future(shell.interact())
            s = Session(shell, inp, out, task)
            await until(
                lambda: shell.session is not None and shell.session.app.is_running, "the prompt"
            )
            assert isinstance(mode, QmpMode)
            await mode.schema()
            yield s
            if task.done():  # the test ended the session itself and checked how
                return
            inp.send_text("\x03")  # Ctrl+C drops a half-typed line
            await until(lambda: s.buf.text == "", "an empty line")
            inp.send_text(".quit\r")
            assert await asyncio.wait_for(task, 10) == 0


async def test_command_name_completes(session: Session) -> None:
    cands = await session.type_and_wait_for_menu("query-st")
    assert cands[0] == "query-status"  # the one people mean comes first
    session.inp.send_text("\t")
    await until(lambda: session.buf.text == "query-status", "query-status in the buffer")
    await session.run("", '"status": "running"')
    assert session.shell.executed == ["query-status"]


async def test_qom_path_and_property_complete(session: Session) -> None:
    cands = await session.type_and_wait_for_menu("qom-get path=/machine/peri")
    assert cands[:2] == ["/machine/peripheral/", "/machine/peripheral-anon/"]
    session.inp.send_text("\t")
    await until(
        lambda: session.buf.text == "qom-get path=/machine/peripheral/",
        "the completed path",
    )
    assert "edu0" in " ".join(await session.type_and_wait_for_menu("ed"))
    cands = await session.type_and_wait_for_menu("u0 property=ty")
    assert cands == ["type"]
    session.inp.send_text("\t")
    await until(lambda: session.buf.text.endswith("property=type"), "the property")
    await session.run("", '"edu"')


async def test_argument_names_and_toolbar(session: Session) -> None:
    cands = await session.type_and_wait_for_menu("qom-set ")
    assert cands == ["path=", "property=", "value="]
    assert session.shell.session is not None
    bar = "".join(t for _, t, *_ in session.shell._toolbar())
    assert "qom-set" in bar and "path: str" in bar and "value: any" in bar


async def test_event_appears_while_the_prompt_waits(session: Session, guest: Instance) -> None:
    session.inp.send_text("query-")  # half a line typed: the event must not eat it
    await until(lambda: session.buf.text == "query-", "typed text")
    async with connected(guest, aux=False) as primary:
        await primary.pause()
        await until(lambda: "STOP" in session.out.plain(), "the STOP event")
        await primary.resume()
    await until(lambda: "RESUME" in session.out.plain(), "the RESUME event")
    assert session.buf.text == "query-"
    assert session.shell.executed == []  # nobody pressed Enter
    session.inp.send_text("status\r")
    await until(lambda: '"running": true' in session.out.plain(), "the status")


async def test_bad_input_is_reported_and_the_session_goes_on(session: Session) -> None:
    await session.run("query-stauts", "has not been found (did you mean query-stats, query-status")
    await session.run('qom-get {"path": "/machine"', "is never closed")
    await session.run("qom-get path=/machine property=nosuch", "Property 'pc-i440fx")
    await session.run("qom-list path=42", "not found")  # str-typed: "42", not a number
    await session.run("set_link name=x up=notabool", "expected: boolean")
    await session.run("!info status", "VM status: running")
    await session.run("transaction( abort )", "Transaction aborted using Abort action")
    await session.run(".help qom-get", "property: str")
    await session.run("query-status", '"status": "running"')


async def test_multi_line_transaction(session: Session) -> None:
    session.inp.send_text("transaction(\r")
    await until(lambda: session.shell.pending == "transaction(", "continuation")
    cands = await session.type_and_wait_for_menu("abo")
    assert cands == ["abort"]
    session.inp.send_text("\t\r)\r")
    await until(lambda: "Transaction aborted" in session.out.plain(), "the transaction")
    assert session.shell.executed == ["transaction(\nabort\n)"]


async def test_history_file_is_private(session: Session, tmp_path: Path) -> None:
    await session.run("query-status", '"running"')
    mode = stat.S_IMODE(os.stat(tmp_path / "hist").st_mode)
    assert mode == 0o600
    assert "query-status" in (tmp_path / "hist").read_text()


# -- the CLI ----------------------------------------------------------------------------------


def test_cli_c_prints_json(guest: Instance) -> None:
    r = run_cli("shell", guest.name, "-c", "query-status")
    assert r.rc == 0, r.err
    assert json.loads(r.out)["status"] == "running"
    r = run_cli("shell", guest.name, "-c", "qom-get path=/machine/peripheral/edu0 property=type")
    assert (r.rc, json.loads(r.out)) == (0, "edu")


def test_cli_stdin_json_lines(guest: Instance) -> None:
    script = "\n".join(
        [
            "# a comment",
            "query-status",
            "nosuch",
            "transaction(",
            "  abort",
            ")",
            '{"execute": "qom-list", "arguments": {"path": "/machine/peripheral"}}',
            "!info status",
        ]
    )
    r = run_cli("shell", guest.name, "--json", input=script)
    assert r.rc == 1  # one command failed
    rows = [json.loads(x) for x in r.out.splitlines()]
    assert [row["command"] for row in rows] == [
        "query-status",
        "nosuch",
        "transaction(\n  abort\n)",
        '{"execute": "qom-list", "arguments": {"path": "/machine/peripheral"}}',
        "!info status",
    ]
    assert rows[0]["return"]["status"] == "running"
    assert "has not been found" in rows[1]["error"]["desc"]
    assert "Abort action" in rows[2]["error"]["desc"]
    assert {"name": "edu0", "type": "child<edu>"} in rows[3]["return"]
    assert rows[4]["return"].startswith("VM status")
    assert "emutui: nosuch: The command nosuch has not been found" in r.err
    assert "Traceback" not in r.err


async def test_works_while_the_tui_holds_the_primary_monitor(guest: Instance) -> None:
    async with connected(guest, aux=False) as primary:
        r = await asyncio.to_thread(run_cli, "shell", guest.name, "-c", "query-status")
        assert r.rc == 0, r.err
        assert json.loads(r.out)["running"] is True
        assert (await primary.status()).detail == "running"


def test_unknown_instance_is_one_line(state_dir: Path) -> None:
    r = run_cli("shell", "nope", "-c", "query-status")
    assert r.rc == 1
    assert r.err.startswith("emutui: no instance named 'nope'") and r.err.count("\n") == 1


async def test_dead_instance_is_one_line(guest: Instance) -> None:
    assert guest.pid
    os.kill(guest.pid, signal.SIGKILL)
    await until(lambda: not guest.alive(), "QEMU to die")
    r = run_cli("shell", guest.name, "-c", "query-status")
    assert r.rc == 1
    assert "is dead" in r.err and r.err.count("\n") == 1 and "Traceback" not in r.err


async def test_qemu_quitting_ends_the_session(session: Session, guest: Instance) -> None:
    async with connected(guest, aux=False) as primary:
        await primary.execute("quit")
    await until(lambda: session.task.done(), "the shell to leave")
    assert session.task.result() == 1
    assert "the monitor connection closed" in session.out.plain()
