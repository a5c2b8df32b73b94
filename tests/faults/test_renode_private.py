"""Finding 5 of issue 10 (Renode stand-in, serial hub): no listener other users can reach.

emutui's stand-in serves its robot port and its UARTs on 0600 unix sockets in the
instance directory; only a real Renode (whose robot port and socket terminals are
TCP, unavoidably) listens on TCP, and `emutui ls` says so.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from emutui.config import parse_config
from emutui.control import start_target, stop_instance
from emutui.core.registry import Registry
from emutui.sim.renode import demo_platform
from tests.conftest import OtherUser, wait_for_file_text
from tests.faults.test_security import listening_tcp
from tests.faults.test_socket_dirs import PROBE, shared_tmp  # noqa: F401
from tests.renode.conftest import (  # noqa: F401 - fixtures
    RENODE_CONFIG,
    board,
    renode_config,
    renode_config_file,
    renode_like_board,
    renode_like_config,
    standin,
)


def _ls(state: Path | None = None) -> str:
    args = [sys.executable, "-m", "emutui"] + (["--state-dir", str(state)] if state else [])
    return subprocess.run([*args, "ls"], capture_output=True, text=True, timeout=60).stdout


async def test_standin_sockets_are_private(board) -> None:  # noqa: F811
    h = board.handles
    assert h.channels["robot"].kind == "unix"
    assert listening_tcp(board.pid) == []
    socks = [Path(c.path) for c in h.channels.values() if c.path and c.kind == "unix"]
    socks += [Path(c.upstream) for c in h.channels.values() if c.upstream]
    assert len(socks) >= 5  # robot, two hub sockets, two UART terminals
    for s in socks:
        st = s.stat()
        assert stat.S_ISSOCK(st.st_mode) and st.st_uid == os.getuid(), s
        assert stat.S_IMODE(st.st_mode) & 0o077 == 0, (s, oct(st.st_mode))
    assert "tcp:" not in _ls()


async def test_real_renode_path_is_tcp_and_ls_says_so(renode_like_board) -> None:  # noqa: F811
    h = renode_like_board.handles
    assert h.channels["robot"].kind == "tcp"
    assert (h.channels["uart0"].upstream or "").startswith("tcp:127.0.0.1:")
    for addr, port in listening_tcp(renode_like_board.pid):
        assert addr in ("127.0.0.1", "::1"), (addr, port)
    out = _ls()
    assert "! tcp: robot 127.0.0.1:" in out and "any local user can connect" in out, out


async def test_other_user_cannot_reach_the_standin(
    other_user: OtherUser,
    shared_tmp: Path,  # noqa: F811
    standin: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    cfg = tmp_path / "renode.toml"
    cfg.write_text(RENODE_CONFIG.format(binary=standin, platform=demo_platform()))
    state = shared_tmp / "state"
    state.mkdir(mode=0o700)
    reg = Registry(state)
    inst = await start_target(parse_config(cfg), reg, "board", None, False)
    try:
        await wait_for_file_text(inst.serial_log("uart0"), b"stand-in firmware")
        targets = sorted(str(p) for p in [inst.wd, *inst.wd.rglob("*")])
        assert any(t.endswith("robot.sock") for t in targets), targets
        os.chmod(state, 0o711)  # the attacker can reach every path; only emutui's modes hold
        probe = other_user.run(["python3", "-c", PROBE, *targets], timeout=120)
        assert probe.returncode == 0, probe.stderr
        assert probe.stdout.decode().strip() == "", probe.stdout.decode()
        # and nothing on TCP to try instead
        assert listening_tcp(inst.pid) == []
    finally:
        os.chmod(state, 0o700)
        await stop_instance(reg, inst)


async def test_another_connection_to_a_tcp_terminal_is_reported(renode_like_board) -> None:  # noqa: F811
    import socket

    up = renode_like_board.handles.channels["uart0"].upstream or ""
    port = int(up.rpartition(":")[2])
    intruder = socket.create_connection(("127.0.0.1", port))
    try:
        data = await wait_for_file_text(
            renode_like_board.serial_log("uart0"), b"[emutui: warning: another connection"
        )
        assert f"127.0.0.1:{port}".encode() in data
    finally:
        intruder.close()
