"""Renode (the stand-in): a gdb server asked for over the robot port, and snapshots
through Save/Load. The stand-in runs no code, so the CPU itself is not reachable:
that is one clear line, after the request was made and recorded."""

from __future__ import annotations

import json

from tests.conftest import run_cli
from tests.renode.conftest import board, renode_config, renode_config_file, standin  # noqa: F401


async def test_gdb_server_is_requested_over_the_robot_port(board) -> None:  # noqa: F811
    r = run_cli("cpu", "board", "regs", timeout=60)
    assert r.rc == 1 and "Traceback" not in r.err and r.err.count("\n") == 1, r.err
    assert "127.0.0.1" in r.err  # the port Renode was asked to serve, which nobody serves here
    h = json.loads((board.wd / "handles.json").read_text())
    port = h["channels"]["gdb"]["port"]
    text = "".join(p.read_text(errors="replace") for p in board.wd.glob("*.log"))
    assert f"GDB server with all CPUs started on port :{port}" in text


async def test_snapshots_save_and_load(board) -> None:  # noqa: F811
    def ok(*args: str) -> str:
        r = run_cli(*args, timeout=60)
        assert r.rc == 0, r.err
        return r.out

    ok("mem", "write", "board", "sram", "0x0", "11223344", "--yes")
    assert "saved s1" in ok("snap", "board", "save", "s1")
    assert [s["tag"] for s in json.loads(ok("snap", "board", "ls", "--json"))] == ["s1"]
    ok("mem", "write", "board", "sram", "0x0", "55667788", "--yes")
    assert "55667788" in ok("mem", "read", "board", "sram", "0x0", "4", "--json")
    assert "loaded s1" in ok("snap", "board", "load", "s1")
    assert "11223344" in ok("mem", "read", "board", "sram", "0x0", "4", "--json")
    ok("snap", "board", "rm", "s1")
    assert json.loads(ok("snap", "board", "ls", "--json")) == []
