"""A real OpenSSH sshd on 127.0.0.1 (own config, own keys) and lab hosts that are this machine.

Nothing of the system's ssh setup is touched: the daemon has its own host key,
config and authorized_keys; the client gets its own ssh_config through
``ssh_args = ["-F", …]`` with StrictHostKeyChecking on and its own known_hosts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CONFIG_TEMPLATE
from tests.remote.sshd import SSHD, Sshd, start_sshd


@pytest.fixture(scope="session")
def sshd() -> Iterator[Sshd]:
    if not os.path.exists(SSHD) or shutil.which("ssh") is None:
        if os.environ.get("CI"):
            pytest.fail("openssh-server/openssh-client missing: the test command installs them")
        pytest.skip("OpenSSH (sshd, ssh) not installed: the test command installs it as root")
    if os.geteuid() != 0:
        pytest.skip("the sshd test host logs in as root (runs as root in CI)")
    try:
        d = start_sshd(Path(f"/tmp/et-sshd-{os.getpid()}"))
    except RuntimeError as e:
        pytest.fail(str(e))
    yield d
    d.stop()


@dataclass
class Lab:
    """Two lab hosts, both this machine through its sshd, each with its own state dir."""

    config: Path  # the laptop's config
    hosts: dict[str, Path]  # host name -> its state dir
    host_config: Path  # the hosts' own emutui.toml (targets)


@pytest.fixture
def lab(
    sshd: Sshd, tmp_path: Path, guest_elf: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Lab]:
    host_cfg = tmp_path / "host.toml"
    host_cfg.write_text(CONFIG_TEMPLATE.format(elf=guest_elf))
    hosts = {}
    text = ""
    for name in ("lab1", "lab2"):
        sd = Path(f"/tmp/et-{name}-{os.getpid()}-{id(tmp_path) % 100000}")
        sd.mkdir(mode=0o700, exist_ok=True)
        hosts[name] = sd
        text += sshd.host_toml(name, sd, host_cfg) + "\n"
    laptop = tmp_path / "laptop.toml"
    laptop.write_text(text)
    local_state = Path(f"/tmp/et-laptop-{os.getpid()}-{id(tmp_path) % 100000}")
    local_state.mkdir(mode=0o700, exist_ok=True)
    monkeypatch.setenv("EMUTUI_CONFIG", str(laptop))
    monkeypatch.setenv("EMUTUI_STATE_DIR", str(local_state))
    monkeypatch.setenv("EMUTUI_MUX_IDLE", "15")  # the ls helper leaves soon after the test
    yield Lab(laptop, hosts, host_cfg)
    for sd in hosts.values():
        subprocess.run(
            [sys.executable, "-m", "emutui", "--state-dir", str(sd), "stop", "--all"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(sd, ignore_errors=True)
    shutil.rmtree(local_state, ignore_errors=True)


def host_cli(lab: Lab, host: str, *args: str) -> subprocess.CompletedProcess[str]:
    """emutui run directly on the 'host' (its own state dir and config), not over ssh."""
    return subprocess.run(
        [sys.executable, "-m", "emutui", "--state-dir", str(lab.hosts[host]),
         "--config", str(lab.host_config), *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
