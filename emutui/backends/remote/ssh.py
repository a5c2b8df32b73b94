"""One OpenSSH connection per lab host, shared by everything emutui does with it.

The system ``ssh`` client does the work, so the user's ``~/.ssh/config``,
agent, ProxyJump, Kerberos and known_hosts apply as in their terminal. The
connection is an OpenSSH ControlMaster (``ssh -fNM``) on a control socket in a
private directory; every later use is a session on it: the agent
(``ssh -T HOST emutui agent``), forwarded CLI commands, and streamlocal
forwards of the host's unix sockets (``ssh -O forward -L local:remote``).
The master lingers ``ControlPersist`` seconds after its last use, so the next
CLI command costs one round trip, not a new handshake.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from emutui.core.errors import ConfigError, DisconnectedError

CONNECT_TIMEOUT = 10  # seconds: ssh's ConnectTimeout, and our wait on the master
PERSIST = 300  # seconds the master stays after its last session


@dataclass(frozen=True)
class HostConfig:
    """``[hosts.NAME]`` from the config, or ``--host NAME`` (ssh destination = NAME)."""

    name: str
    ssh: str
    ssh_args: list[str] = field(default_factory=list)
    emutui: str = "emutui"
    state_dir: str | None = None
    config: str | None = None
    connect_timeout: int = CONNECT_TIMEOUT

    @classmethod
    def from_table(cls, name: str, body: object, where: str) -> HostConfig:
        if not isinstance(body, dict):
            raise ConfigError(f"{where}: hosts.{name}: expected a table")
        known = {"ssh", "ssh_args", "emutui", "state_dir", "config", "connect_timeout"}
        for key in body:
            if key not in known:
                expected = ", ".join(sorted(known))
                raise ConfigError(f"{where}: hosts.{name}.{key}: unknown key (expected {expected})")

        def s(key: str, default: str | None) -> str | None:
            v = body.get(key, default)
            if v is not None and (not isinstance(v, str) or not v or "\n" in v):
                raise ConfigError(f"{where}: hosts.{name}.{key}: expected a string, got {v!r}")
            return v

        args = body.get("ssh_args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise ConfigError(f"{where}: hosts.{name}.ssh_args: expected a list of strings")
        timeout = body.get("connect_timeout", CONNECT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= 300:
            raise ConfigError(f"{where}: hosts.{name}.connect_timeout: expected 1..300 seconds")
        check_host_name(name)
        dest = s("ssh", name)
        assert dest is not None
        if dest.startswith("-"):
            raise ConfigError(f"{where}: hosts.{name}.ssh: a destination cannot start with '-'")
        return cls(
            name=name,
            ssh=dest,
            ssh_args=list(args),
            emutui=s("emutui", "emutui") or "emutui",
            state_dir=s("state_dir", None),
            config=s("config", None),
            connect_timeout=timeout,
        )


def check_host_name(name: str) -> str:
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        raise ConfigError(f"invalid host name {name!r}: use letters, digits, '.', '_' or '-'")
    return name


def split_at(ref: str) -> tuple[str, str | None]:
    """``guest@lab2`` -> (guest, lab2); ``guest`` -> (guest, None)."""
    name, sep, host = ref.rpartition("@")
    if not sep:
        return ref, None
    return name, host


def private_dir() -> Path:
    """Control sockets, forwards and mirrors: in emutui's private runtime dir, with the
    same ownership and mode checks as every other socket dir (as OpenSSH demands)."""
    from emutui.core.paths import ensure_private_dir, runtime_base

    return ensure_private_dir(ensure_private_dir(runtime_base()) / "ssh")


class SSHHost:
    """The ssh command lines for one host, and its ControlMaster."""

    def __init__(self, cfg: HostConfig) -> None:
        self.cfg = cfg
        self.dir = private_dir()
        key = hashlib.sha256("\0".join([cfg.name, cfg.ssh, *cfg.ssh_args]).encode()).hexdigest()[
            :16
        ]
        self.control = self.dir / f"{key}.ctl"
        self.fwd_dir = self.dir / f"{key}.fwd"
        self._forwards: dict[str, str] = {}
        self._lock = asyncio.Lock()

    # -- command lines ----------------------------------------------------------------

    def base(self, *extra: str) -> list[str]:
        """ssh, the user's ssh_args first (ssh keeps the first value of an option), ours next."""
        return [
            "ssh",
            *self.cfg.ssh_args,
            "-o", f"ControlPath={self.control}",
            "-o", "BatchMode=yes",
            "-o", f"ConnectTimeout={self.cfg.connect_timeout}",
            "-o", "ServerAliveInterval=5",
            "-o", "ServerAliveCountMax=3",
            "-o", "StreamLocalBindUnlink=yes",
            "-o", "ExitOnForwardFailure=yes",
            *extra,
        ]  # fmt: skip

    def remote_argv(self, args: list[str]) -> list[str]:
        """``emutui ARGS`` on the host, with the host's state dir and config."""
        argv = shlex.split(self.cfg.emutui)
        if self.cfg.state_dir:
            argv += ["--state-dir", self.cfg.state_dir]
        if self.cfg.config:
            argv += ["--config", self.cfg.config]
        return argv + args

    def session(self, args: list[str], tty: bool = False, auto: bool = False) -> list[str]:
        """A session on the master running ``emutui ARGS`` on the host.

        ``auto``: become the master if there is none (a CLI command: no separate
        check first, so a warm connection costs one ssh process and one round trip).
        """
        remote = " ".join(shlex.quote(a) for a in self.remote_argv(args))
        master = (
            ["-o", "ControlMaster=auto", "-o", f"ControlPersist={PERSIST}"]
            if auto
            else ["-o", "ControlMaster=no"]
        )
        return [
            *self.base(*master, "-tt" if tty else "-T"),
            "--",
            self.cfg.ssh,
            remote,
        ]

    # -- the master -------------------------------------------------------------------

    async def _run(self, argv: list[str], timeout: float) -> tuple[int, str]:
        p = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await asyncio.wait_for(p.communicate(), timeout)
        except TimeoutError:
            p.kill()
            await p.wait()
            return 255, f"no answer within {timeout:.0f} s"
        return p.returncode or 0, err.decode("utf-8", "replace")

    async def master_alive(self) -> bool:
        if not self.control.exists():
            return False
        rc, _ = await self._run([*self.base("-O", "check"), "--", self.cfg.ssh], 5)
        return rc == 0

    async def ensure_master(self) -> None:
        """Connect (once) or reuse the connection; a failure is one line in ssh's words."""
        async with self._lock:
            if await self.master_alive():
                return
            self._forwards.clear()
            # A master killed outright leaves its socket behind, and ssh will not
            # become master over it (it would silently connect without one).
            self.control.unlink(missing_ok=True)
            argv = [
                *self.base("-o", "ControlMaster=yes", "-o", f"ControlPersist={PERSIST}"),
                "-f", "-N", "--", self.cfg.ssh,
            ]  # fmt: skip
            rc, err = await self._run(argv, self.cfg.connect_timeout + 5)
            if rc != 0:
                raise DisconnectedError(f"{self.cfg.name}: ssh {self.cfg.ssh}: {last_line(err)}")

    async def exit_master(self) -> None:
        if self.control.exists():
            await self._run([*self.base("-O", "exit"), "--", self.cfg.ssh], 5)

    async def forward(self, remote: str) -> str:
        """A local unix socket forwarded to the host's ``remote`` (a path or HOST:PORT)."""
        await self.ensure_master()  # a new master has none of the old one's forwards
        local = self._forwards.get(remote)
        if local is not None and os.path.exists(local):
            return local
        try:
            os.mkdir(self.fwd_dir, 0o700)
        except FileExistsError:
            pass
        local = str(self.fwd_dir / (hashlib.sha256(remote.encode()).hexdigest()[:16] + ".sock"))
        rc, err = await self._run(
            [*self.base("-O", "forward", "-L", f"{local}:{remote}"), "--", self.cfg.ssh], 10
        )
        if rc != 0:
            raise DisconnectedError(f"{self.cfg.name}: cannot forward {remote}: {last_line(err)}")
        self._forwards[remote] = local
        return local


def last_line(err: str) -> str:
    lines = [ln.strip() for ln in err.splitlines() if ln.strip()]
    # ssh's own last words are the reason ("Host key verification failed.", "Connection refused")
    for ln in reversed(lines):
        if not ln.startswith(("Warning:", "debug")):
            return ln[:300]
    return "ssh failed"
