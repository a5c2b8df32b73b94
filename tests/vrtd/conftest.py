"""vrtd fixtures: the simulator as a separate process on a real socket, and a connected client."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from emutui.backends.vrtd.client import VrtdClient


class SimProcess:
    """``python -m emutui sim vrtd`` on ``path``; restartable on the same path."""

    def __init__(self, path: str, args: list[str], log: Path) -> None:
        self.path = path
        self.args = args
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> SimProcess:
        cmd = [sys.executable, "-m", "emutui", "sim", "vrtd", "--socket", self.path, "-v"]
        with self.log.open("ab") as f:
            self.proc = subprocess.Popen(cmd + self.args, stdout=f, stderr=f)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"simulator exited: {self.log.read_text()[-2000:]}")
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                s.connect(self.path)
                s.close()
                return self
            except OSError:
                time.sleep(0.02)
        raise AssertionError("simulator did not start listening")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    # Short: sun_path holds 107 bytes and pytest's tmp_path can be longer.
    d = Path(tempfile.mkdtemp(prefix="vrtd-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def sim_factory(sock_dir: Path) -> Iterator[Callable[..., SimProcess]]:
    started: list[SimProcess] = []

    def make(*args: str, name: str = "vrtd.sock") -> SimProcess:
        sim = SimProcess(str(sock_dir / name), list(args), sock_dir / f"{name}.log")
        started.append(sim)
        return sim.start()

    yield make
    for s in started:
        s.kill(signal.SIGTERM)


@pytest.fixture
def sim(sim_factory: Callable[..., SimProcess]) -> SimProcess:
    return sim_factory()


@pytest.fixture
async def client(sim: SimProcess) -> AsyncIterator[VrtdClient]:
    c = VrtdClient(sim.path, timeout=5.0)
    await c.connect()
    yield c
    await c.close()


def open_fds() -> set[int]:
    """Open descriptors, without the one listdir itself used."""
    listed = {int(x) for x in os.listdir("/proc/self/fd")}
    return {fd for fd in listed if os.path.exists(f"/proc/self/fd/{fd}")}
