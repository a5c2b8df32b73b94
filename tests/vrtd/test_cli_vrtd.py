"""The vrtd commands as a user runs them: separate processes for the simulator and emutui."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from emutui.commands.attach import ensure_configured_daemons
from emutui.config import parse_config
from emutui.core.registry import Registry
from tests.conftest import run_cli
from tests.vrtd.conftest import SimProcess


def test_done_when_sequence(sim: SimProcess, state_dir: Path) -> None:
    """The issue's acceptance sequence, as documented in docs/vrtd.md."""
    r = run_cli("attach", "vrtd", "card", "--socket", sim.path)
    assert r.rc == 0, r.err
    assert "attached card" in r.out
    r = run_cli("mem", "read", "card", "slash_ctl0.bar0", "0", "16")
    assert r.rc == 0, r.err
    assert r.out.startswith("00000000: 5356 3830 0000 0100") and "SV80" in r.out
    r = run_cli("mem", "write", "card", "slash_ctl0.bar0", "0x10", "78563412", "--yes")
    assert r.rc == 0, r.err
    r = run_cli("mem", "read", "card", "slash_ctl0.bar0", "0x10", "4")
    assert r.rc == 0 and "7856 3412" in r.out
    r = run_cli("ls", "--json")
    (row,) = json.loads(r.out)
    assert (row["name"], row["backend"], row["state"]) == ("card", "vrtd", "running")
    r = run_cli("prop", "get", "card", "/slash_ctl0/bar0", "length")
    assert r.rc == 0 and r.out.strip() == str(128 << 20)
    r = run_cli("mem", "regions", "card")
    assert r.rc == 0 and "slash_ctl0.bar4" in r.out and "slash_ctl0.bar1" not in r.out
    r = run_cli("detach", "card")
    assert r.rc == 0 and not (state_dir / "card").exists()
    assert run_cli("ls", "--json").out.strip() == "[]"


def test_attach_missing_daemon(sock_dir: Path, state_dir: Path) -> None:
    path = str(sock_dir / "none.sock")
    r = run_cli("attach", "vrtd", "card", "--socket", path)
    assert r.rc == 1
    assert r.err.strip() == (
        f"emutui: no vrtd daemon at {path}: the socket does not exist "
        f"(is vrtd running? use --socket or $VRTD_SOCKET)"
    )
    assert not (state_dir / "card").exists()
    r = run_cli("attach", "vrtd", "card", "--socket", path, "--no-check")
    assert r.rc == 0
    row = json.loads(run_cli("ls", "--json").out)[0]
    assert row["state"] == "disconnected" and path in row["detail"]
    r = run_cli("mem", "read", "card", "slash_ctl0.bar0", "0", "4")
    assert r.rc == 1 and "no vrtd daemon at" in r.err and "Traceback" not in r.err


def test_auth_error_reads_clearly(
    sim_factory: Callable[..., SimProcess], tmp_path: Path, state_dir: Path
) -> None:
    conf = tmp_path / "vrtd.conf"
    conf.write_text("[role:info]\nquery-devices = yes\n[user:*]\nrole = info\n")
    sim = sim_factory("--config", str(conf))
    assert run_cli("attach", "vrtd", "card", "--socket", sim.path).rc == 0
    r = run_cli("mem", "read", "card", "slash_ctl0.bar0", "0", "4")
    assert r.rc == 1
    assert "AUTH_ERROR" in r.err and "permission denied" in r.err
    assert len(r.err.strip().splitlines()) == 1


def test_env_socket_default(
    sim: SimProcess, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VRTD_SOCKET", sim.path)
    r = run_cli("attach", "vrtd", "lab", "--json")
    assert r.rc == 0, r.err
    assert json.loads(r.out)["socket"] == sim.path


def test_detach_refuses_non_daemons_and_unknown(state_dir: Path) -> None:
    r = run_cli("detach", "ghost")
    assert r.rc == 1 and "no instance named 'ghost'" in r.err


def test_configured_daemons(
    sim: SimProcess, tmp_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg_path = tmp_path / "emutui.toml"
    cfg_path.write_text(
        f'[daemons.lab]\nbackend = "vrtd"\nsocket = "{sim.path}"\n\n'
        f'[daemons.away]\nbackend = "vrtd"\nsocket = "{sim.path}.absent"\n'
    )
    monkeypatch.setenv("EMUTUI_CONFIG", str(cfg_path))
    reg = Registry(state_dir)
    made = ensure_configured_daemons(parse_config(cfg_path), reg)
    assert sorted(i.name for i in made) == ["away", "lab"]
    assert ensure_configured_daemons(parse_config(cfg_path), reg) == []  # idempotent
    # an edited config is followed: "away" now points at the live simulator too
    cfg_path.write_text(cfg_path.read_text().replace(f"{sim.path}.absent", sim.path))
    assert ensure_configured_daemons(parse_config(cfg_path), reg) == []
    handles = reg.get("away").handles
    assert handles is not None and handles.options["socket"] == sim.path
    cfg_path.write_text(
        cfg_path.read_text().replace(
            f'[daemons.away]\nbackend = "vrtd"\nsocket = "{sim.path}"',
            f'[daemons.away]\nbackend = "vrtd"\nsocket = "{sim.path}.absent"',
        )
    )
    ensure_configured_daemons(parse_config(cfg_path), reg)
    rows = {r["name"]: r for r in json.loads(run_cli("ls", "--json").out)}
    assert rows["lab"]["state"] == "running" and rows["away"]["state"] == "disconnected"
    r = run_cli("mem", "read", "lab", "slash_ctl0.bar0", "0", "4")
    assert r.rc == 0 and "SV80" in r.out


def test_bad_daemon_config(tmp_path: Path) -> None:
    from emutui.core.errors import ConfigError

    p = tmp_path / "emutui.toml"
    p.write_text('[daemons.lab]\nbackend = "vrtd"\nsockt = "/x"\n')
    with pytest.raises(ConfigError, match="sockt"):
        parse_config(p)


def test_sim_bad_config_exits_cleanly(tmp_path: Path, sock_dir: Path) -> None:
    conf = tmp_path / "bad.conf"
    conf.write_text("[role:a]\nbar-access = partial\n")
    r = run_cli("sim", "vrtd", "--socket", str(sock_dir / "x.sock"), "--config", str(conf))
    assert r.rc == 1 and "bar-access" in r.err and "Traceback" not in r.err


async def test_simulated_card_for_the_demo(state_dir: Path) -> None:
    from emutui.commands.attach import start_simulated_card
    from emutui.core import proc

    reg = Registry(state_dir)
    inst = await start_simulated_card(reg, "v80-sim", cards=2)
    assert inst.handles is not None and inst.handles.simulated and inst.is_daemon
    pid = inst.handles.options["sim_pid"]
    try:
        rows = json.loads(run_cli("ls", "--json").out)
        assert rows[0]["simulated"] is True and rows[0]["state"] == "running"
        assert "* simulated" in run_cli("ls").out
        r = run_cli("mem", "read", "v80-sim", "slash_ctl1.bar0", "8", "4")
        assert r.rc == 0 and "0100 0000" in r.out  # CARD register of the second card
    finally:
        r = run_cli("detach", "v80-sim")
    assert r.rc == 0
    assert proc.wait_gone(pid, None, 10)
    assert not (state_dir / "v80-sim").exists()


def test_stop_on_a_daemon_detaches_and_ends_only_our_simulator(tmp_path):
    """`emutui stop` on an attached daemon: forget it; end the simulator only if emutui
    started it (the demo's), never a daemon someone else runs."""
    import asyncio

    from emutui.commands.attach import start_simulated_card
    from emutui.control import stop_instance
    from emutui.core import proc
    from emutui.core.registry import Registry

    reg = Registry(tmp_path / "st")
    inst = asyncio.run(start_simulated_card(reg, "simcard"))
    pid = inst.handles.options["sim_pid"]
    start = inst.handles.options["sim_pid_start"]
    assert proc.is_alive(pid, start)
    asyncio.run(stop_instance(reg, inst))
    assert proc.wait_gone(pid, start, 5)
    assert not inst.wd.exists()
