"""The real vrtd daemon, built from ``shared/peers/vrtd`` (SLASH dev + a test patch).

``real_vrtd()`` runs the peer's ``build.sh`` into ``~/.cache/emutui-peers/vrtd``
(``$EMUTUI_VRTD_BUILD``; cached by the sources' hash and shared by every
checkout, so only the first run compiles: about 15 s to 80 s on 2 cores);
``./dev test`` runs the same step first. The peer directory
is ``$EMUTUI_VRTD_PEER``, else ``shared/peers/vrtd`` beside the repository (CI
checks both out side by side). When it cannot be built here (no sources, no
compiler and not root), the tests using it are skipped with one reason; with
``CI`` set they fail instead: CI must run them.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import time
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def build_dir() -> Path:
    """One build per machine and user, shared by every checkout (as ./dev does)."""
    env = os.environ.get("EMUTUI_VRTD_BUILD")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "emutui-peers" / "vrtd"


def peer_dir() -> Path | None:
    env = os.environ.get("EMUTUI_VRTD_PEER")
    if env:
        return Path(env)
    # CI: ../shared beside the checkout; a git worktree sits one level deeper
    for base in (REPO.parent, REPO.parent.parent):
        d = base / "shared" / "peers" / "vrtd"
        if (d / "build.sh").is_file():
            return d
    return None


@cache
def _build() -> tuple[Path | None, str]:
    d = peer_dir()
    if d is None:
        return None, "no vrtd peer sources (set EMUTUI_VRTD_PEER to shared/peers/vrtd)"
    out = build_dir()
    try:
        out.mkdir(parents=True, exist_ok=True)
        with open(out / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another checkout may be building it now
            r = subprocess.run(
                ["bash", str(d / "build.sh"), str(out)],
                capture_output=True,
                text=True,
                timeout=900,
            )
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"cannot build the real vrtd: {e}"
    lines = r.stdout.split()
    if r.returncode != 0 or len(lines) < 2:
        why = (r.stderr.strip().splitlines() or ["build.sh failed"])[-1]
        return None, f"cannot build the real vrtd: {why}"
    return Path(lines[-1]), ""


def real_vrtd() -> Path:
    """The patched (mock-capable) daemon, or skip (fail under CI) with one reason."""
    path, why = _build()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{why} (CI must run the real-daemon tests)")
        pytest.skip(why)
    return path


def configs() -> Path:
    d = peer_dir()
    assert d is not None
    return d


class Daemon:
    """One vrtd-compatible daemon as a process on a real socket: the real one
    (``kind="real"``, N ``@mock`` cards) or ``emutui sim vrtd --mock``. Restartable."""

    def __init__(self, kind: str, path: str, config: Path, run_dir: Path, cards: int = 2) -> None:
        self.kind = kind
        self.path = path
        self.config = config
        self.run_dir = run_dir
        self.cards = cards
        self.log = run_dir / f"{Path(path).stem}.log"
        self.extra: list[str] = []  # more simulator options
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> tuple[list[str], dict[str, str]]:
        env = dict(os.environ, XDG_RUNTIME_DIR=str(self.run_dir))
        if self.kind == "real":
            env.update(
                VRTD_TEST_MOCK_DEVICES=str(self.cards),
                VRTD_CONFIG=str(self.config),
                VRTD_SOCKET=self.path,
                VRTD_LOG=str(self.log),
            )
            return [str(real_vrtd())], env
        import sys

        env.pop("VRTD_SOCKET", None)
        argv = [sys.executable, "-m", "emutui", "sim", "vrtd", "--mock"]
        argv += ["--cards", str(self.cards), "--config", str(self.config), "--socket", self.path]
        return argv + self.extra, env

    def start(self) -> Daemon:
        argv, env = self.command()
        with self.log.open("ab") as f:
            self.proc = subprocess.Popen(argv, env=env, stdout=f, stderr=f, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.kind} vrtd exited: {self.log.read_text()[-2000:]}")
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                s.connect(self.path)
                return self
            except OSError:
                time.sleep(0.02)
            finally:
                s.close()
        raise AssertionError(f"{self.kind} vrtd did not start listening on {self.path}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None

    def __repr__(self) -> str:
        return f"<{self.kind} vrtd on {self.path}>"
