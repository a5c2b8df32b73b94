"""`emutui ls` reports a broken config as `start` does, and a listing changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def ls(tmp: Path, *args: str, config: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMUTUI_")}
    env["EMUTUI_STATE_DIR"] = str(tmp / "state")
    env["XDG_CONFIG_HOME"] = str(tmp / "xdg")  # no user config of the machine
    cmd = [sys.executable, "-m", "emutui"]
    if config is not None:
        cmd += ["--config", config]
    return subprocess.run(
        [*cmd, "ls", *args], capture_output=True, text=True, env=env, cwd=tmp, timeout=60
    )


def test_ls_malformed_toml_is_an_error(tmp_path: Path) -> None:
    cfg = tmp_path / "emutui.toml"
    cfg.write_text("[targets.pc\nbackend = 'qemu'\n")
    r = ls(tmp_path)
    assert r.returncode == 1 and "not valid TOML" in r.stderr
    assert "no instances" not in r.stdout


def test_ls_missing_config_is_an_error(tmp_path: Path) -> None:
    r = ls(tmp_path, config=str(tmp_path / "nonexistent.toml"))
    assert r.returncode == 1 and "config file not found" in r.stderr


def test_ls_rejects_a_bad_daemon_socket(tmp_path: Path) -> None:
    cfg = tmp_path / "emutui.toml"
    cfg.write_text('[daemons.lab]\nbackend = "vrtd"\nsocket = 5\n')
    r = ls(tmp_path)
    assert r.returncode == 1 and "socket" in r.stderr


def test_ls_shows_configured_daemons_without_writing_them(tmp_path: Path) -> None:
    cfg = tmp_path / "emutui.toml"
    cfg.write_text(f'[daemons.lab]\nbackend = "vrtd"\nsocket = "{tmp_path}/absent.sock"\n')
    r = ls(tmp_path, "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [x["name"] for x in rows] == ["lab"] and rows[0]["state"] == "disconnected"
    assert rows[0]["dir"] is None
    state = tmp_path / "state"
    assert not state.exists() or not any(state.iterdir())
    r = ls(tmp_path)
    assert r.returncode == 0 and r.stdout.split("\n")[0].split()[-1] == "DIR"
    assert not state.exists() or not any(state.iterdir())
