"""A real OpenSSH sshd on 127.0.0.1 (own config, own keys) and lab hosts that are this machine.

Nothing of the system's ssh setup is touched: the daemon has its own host key,
config and authorized_keys; the client gets its own ssh_config through
``ssh_args = ["-F", …]`` with StrictHostKeyChecking on and its own known_hosts.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CONFIG_TEMPLATE

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@dataclass
class Sshd:
    dir: Path
    port: int
    proc: subprocess.Popen[bytes]
    ssh_config: Path
    user_key: Path

    def host_toml(self, name: str, state_dir: Path, config: Path | None, **extra: str) -> str:
        lines = [
            f"[hosts.{name}]",
            f'ssh = "{name}"',
            f'ssh_args = ["-F", "{self.ssh_config}"]',
            f'emutui = "{extra.get("emutui", sys.executable + " -m emutui")}"',
            f'state_dir = "{state_dir}"',
        ]
        if config is not None:
            lines.append(f'config = "{config}"')
        return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    if not os.path.exists(SSHD) or shutil.which("ssh") is None:
        if os.environ.get("CI"):
            pytest.fail("openssh-server/openssh-client missing: the test command installs them")
        pytest.skip("OpenSSH (sshd, ssh) not installed: the test command installs it as root")
    if os.geteuid() != 0:
        pytest.skip("the sshd test host logs in as root (runs as root in CI)")
    d = Path(f"/tmp/et-sshd-{os.getpid()}")
    d.mkdir(mode=0o700, exist_ok=True)
    _keygen(d / "host_key")
    _keygen(d / "user_key")
    _keygen(d / "other_host_key")
    shutil.copy(d / "user_key.pub", d / "authorized_keys")
    port = _free_port()
    (d / "sshd_config").write_text(
        f"""Port {port}
ListenAddress 127.0.0.1
HostKey {d}/host_key
PidFile {d}/sshd.pid
AuthorizedKeysFile {d}/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
StrictModes no
AllowStreamLocalForwarding yes
AllowTcpForwarding yes
X11Forwarding no
PrintMotd no
LogLevel ERROR
"""
    )
    host_pub = (d / "host_key.pub").read_text().split()
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    other_pub = (d / "other_host_key.pub").read_text().split()
    (d / "wrong_known_hosts").write_text(f"[127.0.0.1]:{port} {other_pub[0]} {other_pub[1]}\n")
    (d / "ssh_config").write_text(
        f"""Host lab1 lab2 lab3 labbad nolab
    HostName 127.0.0.1
    Port {port}
    User root
    IdentityFile {d}/user_key
    IdentitiesOnly yes
    UserKnownHostsFile {d}/known_hosts
    StrictHostKeyChecking yes
    LogLevel ERROR
Host wrongkey
    HostName 127.0.0.1
    Port {port}
    User root
    IdentityFile {d}/user_key
    IdentitiesOnly yes
    UserKnownHostsFile {d}/wrong_known_hosts
    StrictHostKeyChecking yes
    LogLevel ERROR
Host closed
    HostName 127.0.0.1
    Port {_free_port()}
    User root
    IdentityFile {d}/user_key
    UserKnownHostsFile {d}/known_hosts
    StrictHostKeyChecking yes
"""
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(d / "sshd_config")],
        stdout=subprocess.DEVNULL,
        stderr=open(d / "sshd.log", "ab"),  # noqa: SIM115
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"sshd exited: {(d / 'sshd.log').read_text()[-500:]}")
            time.sleep(0.05)
    yield Sshd(d, port, proc, d / "ssh_config", d / "user_key")
    # Every master emutui left (ControlPersist) goes with the daemon's children.
    subprocess.run(["pkill", "-f", f"ControlPath=.*emutui-{os.getuid()}/ssh"], check=False)
    proc.terminate()
    proc.wait(5)
    shutil.rmtree(d, ignore_errors=True)


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
    yield Lab(laptop, hosts, host_cfg)
    for sd in hosts.values():
        subprocess.run(
            [sys.executable, "-m", "emutui", "--state-dir", str(sd), "stop", "--all"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(sd, ignore_errors=True)
    shutil.rmtree(local_state, ignore_errors=True)
