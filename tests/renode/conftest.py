"""Renode fixtures: the stand-in as a separate process, started by the real launcher."""

from __future__ import annotations

import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from emutui.config import Config, parse_config
from emutui.control import start_target, stop_instance
from emutui.core.instance import Instance
from emutui.core.registry import Registry
from emutui.sim.renode import demo_platform
from tests.conftest import wait_for_file_text


def standin_binary(tmp: Path) -> Path:
    """The installed ``renode-standin`` script; a tiny wrapper if the venv lacks it."""
    from emutui.sim.renode import standin_binary as installed

    found = Path(installed())
    if found.exists():
        return found
    wrapper = tmp / "renode-standin"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m emutui.sim.renode "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper


@pytest.fixture
def standin(tmp_path: Path) -> Path:
    return standin_binary(tmp_path)


RENODE_CONFIG = """
[targets.board]
backend = "renode"
binary = "{binary}"
platform = "{platform}"
uarts = ["sysbus.uart0", "sysbus.uart1"]
"""


@pytest.fixture
def renode_config_file(tmp_path: Path, standin: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    p = tmp_path / "emutui.toml"
    p.write_text(RENODE_CONFIG.format(binary=standin, platform=demo_platform()))
    monkeypatch.setenv("EMUTUI_CONFIG", str(p))
    return p


@pytest.fixture
def renode_config(renode_config_file: Path) -> Config:
    return parse_config(renode_config_file)


def renode_like_binary(tmp: Path) -> Path:
    """The stand-in under the name ``renode``: emutui takes it for a real Renode (TCP
    robot port and TCP socket terminals), as on a machine where Renode is installed."""
    d = tmp / "renode-like"
    d.mkdir(exist_ok=True)
    wrapper = d / "renode"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m emutui.sim.renode "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


@pytest.fixture
def renode_like_config(tmp_path: Path) -> Config:
    """Like ``renode_config``, through the real-Renode (TCP) path."""
    p = tmp_path / "emutui-renode-like.toml"
    p.write_text(
        RENODE_CONFIG.format(binary=renode_like_binary(tmp_path), platform=demo_platform())
    )
    return parse_config(p)


@pytest.fixture
async def board(renode_config: Config, registry: Registry) -> AsyncIterator[Instance]:
    """A running stand-in machine, its UART banner already in the serial log."""
    inst = await start_target(renode_config, registry, "board", None, False)
    await wait_for_file_text(inst.serial_log("uart0"), b"stand-in firmware")
    yield inst
    await stop_instance(registry, inst)


@pytest.fixture
async def renode_like_board(
    renode_like_config: Config, registry: Registry
) -> AsyncIterator[Instance]:
    """``board`` through the real-Renode path: TCP robot port, TCP socket terminals."""
    inst = await start_target(renode_like_config, registry, "board", None, False)
    await wait_for_file_text(inst.serial_log("uart0"), b"stand-in firmware")
    yield inst
    await stop_instance(registry, inst)


def pid_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


__all__ = ["pid_gone", "wait_for_file_text"]
