"""Start a private OpenSSH sshd on 127.0.0.1 (own keys, config, known_hosts); tests and bench.

``delay_ms`` puts a ProxyCommand in front of every host that holds each byte
that long in each direction: a real network's round trip, without touching
the machine's interfaces (no tc/netem, which would slow everyone's loopback).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
HERE = Path(__file__).parent
HOSTS = "lab1 lab2 lab3 labbad nolab"


def free_port() -> int:
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

    def stop(self) -> None:
        # Every master emutui left (ControlPersist) ends with its connection to us.
        # (their command lines carry this sshd's own `-F DIR/ssh_config`)
        subprocess.run(["pkill", "-f", f"^ssh -F {self.dir}/"], check=False)
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def start_sshd(d: Path, delay_ms: float = 0) -> Sshd:
    d.mkdir(mode=0o700, exist_ok=True)
    for k in ("host_key", "user_key", "other_host_key"):
        if not (d / k).exists():
            _keygen(d / k)
    shutil.copy(d / "user_key.pub", d / "authorized_keys")
    port = free_port()
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
    other = (d / "other_host_key.pub").read_text().split()
    (d / "wrong_known_hosts").write_text(f"[127.0.0.1]:{port} {other[0]} {other[1]}\n")
    proxy = (
        f"    ProxyCommand {sys.executable} {HERE / 'delay_proxy.py'} %h %p {delay_ms}\n"
        if delay_ms
        else ""
    )

    def block(hosts: str, known: str, port_: int) -> str:
        return (
            f"Host {hosts}\n    HostName 127.0.0.1\n    Port {port_}\n    User root\n"
            f"    IdentityFile {d}/user_key\n    IdentitiesOnly yes\n"
            f"    UserKnownHostsFile {d}/{known}\n    StrictHostKeyChecking yes\n"
            f"    LogLevel ERROR\n{proxy}"
        )

    (d / "ssh_config").write_text(
        block(HOSTS, "known_hosts", port)
        + block("wrongkey", "wrong_known_hosts", port)
        + block("closed", "known_hosts", free_port())
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    log = open(d / "sshd.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stdout=subprocess.DEVNULL, stderr=log
    )
    log.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return Sshd(d, port, proc, d / "ssh_config", d / "user_key")
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"sshd did not start: {(d / 'sshd.log').read_text()[-500:]}")
