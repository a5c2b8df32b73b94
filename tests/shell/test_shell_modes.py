"""Renode and vrtd modes against the real simulators (Renode stand-in, vrtd daemon).

Both run as separate processes on real sockets, started the way a user would:
the Renode stand-in through the real launcher, vrtd through `emutui attach`.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from emutui.control import connected
from emutui.core.instance import Instance
from emutui.core.registry import Registry
from emutui.shell.modes import RenodeMode, VrtdMode, make_mode, parse_monitor_help
from emutui.shell.repl import Shell
from tests.conftest import run_cli
from tests.vrtd.conftest import SimProcess


def texts(cands: list) -> list[str]:  # type: ignore[type-arg]
    return [c.text for c in cands]


# -- Renode -----------------------------------------------------------------------------------


async def test_renode_completion_from_help_and_peripherals(board: Instance) -> None:
    async with connected(board, aux=True) as conn:
        mode = make_mode("renode", conn)
        assert isinstance(mode, RenodeMode)
        await mode.prepare(wait=True)
        e = mode.engine
        assert texts(e.complete("peri")) == ["peripherals"]  # cached by prepare
        assert "sysbus.uart0" in texts(e.complete("sysbus.u"))
        members = texts(await e.complete_async("sysbus.uart0 "))
        assert members, "the peripheral's methods and properties"
        assert all(not m.startswith("sysbus") for m in members)
        sig = e.signature("pause")
        assert sig is not None and "pauses" in sig.note


async def test_renode_commands_run_and_errors_continue(board: Instance) -> None:
    async with connected(board, aux=True) as conn:
        shell = Shell(make_mode("renode", conn), conn, board.name, history=None)
        out, err = io.StringIO(), io.StringIO()
        rc = await shell.run_lines(
            ["peripherals", "nosuchdevice Foo", "emulation IsStarted"], out, err
        )
    assert rc == 1
    assert "sysbus" in out.getvalue() and "uart0" in out.getvalue()
    assert "True" in out.getvalue()
    assert "nosuchdevice Foo" in err.getvalue() and "Traceback" not in err.getvalue()


def test_renode_cli_c(board: Instance) -> None:
    r = run_cli("shell", board.name, "--json", "-c", "emulation IsStarted")
    assert r.rc == 0, r.err
    row = json.loads(r.out)
    assert row["command"] == "emulation IsStarted" and "True" in row["return"]


def test_parse_monitor_help() -> None:
    text = (
        "Available commands:\nName              | Description\n" + "=" * 80 + "\n"
        "help              : prints this help message\n"
        "peripherals       : prints list of registered and named peripherals\n\n"
        "You can also provide a device name to access its methods.\n"
    )
    assert parse_monitor_help(text) == {
        "help": "prints this help message",
        "peripherals": "prints list of registered and named peripherals",
    }


# -- vrtd ------------------------------------------------------------------------------------


@pytest.fixture
async def card(sim: SimProcess, state_dir: Path) -> AsyncIterator[Instance]:
    r = run_cli("attach", "vrtd", "card", "--socket", sim.path)
    assert r.rc == 0, r.err
    yield Registry(state_dir).get("card")
    run_cli("detach", "card")


async def test_vrtd_verbs_and_completion(card: Instance) -> None:
    async with connected(card, aux=True) as conn:
        mode = make_mode("vrtd", conn)
        assert isinstance(mode, VrtdMode)
        e = mode.engine
        assert texts(e.complete("")) == sorted(
            ["bar", "devices", "help", "read", "raw", "sensors", "write"]
        )
        assert "slash_ctl0" in texts(await e.complete_async("bar "))
        assert "slash_ctl0.bar0" in texts(await e.complete_async("read slash_ctl0.b"))
        shell = Shell(mode, conn, card.name, history=None)
        out, err = io.StringIO(), io.StringIO()
        rc = await shell.run_lines(
            [
                "devices",
                "bar slash_ctl0 0",
                "write slash_ctl0.bar0 0x10 78563412",
                "read slash_ctl0.bar0 0x10 4",
                "read nosuch 0 4",
            ],
            out,
            err,
            json_lines=True,
        )
    assert rc == 1
    rows = [json.loads(x) for x in out.getvalue().splitlines()]
    assert rows[0]["return"][0]["name"] == "slash_ctl0"
    assert rows[1]["return"]["bar"] == 0
    assert rows[2]["return"]["written"] == 4
    assert rows[3]["return"]["hex"] == "78563412"
    assert "nosuch" in rows[4]["error"]["desc"]


def test_vrtd_cli_stdin(card: Instance) -> None:
    r = run_cli("shell", card.name, input="read slash_ctl0.bar0 0 4\n")
    assert r.rc == 0, r.err
    assert json.loads(r.out)["hex"] == "53563830"
