"""Shared fixtures: the test guest built from tests/guest, real QEMU instances, the CLI."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from emutui.config import Config, parse_config
from emutui.control import start_target, stop_instance
from emutui.core.instance import Instance
from emutui.core.registry import Registry

HERE = Path(__file__).parent
BUILD = HERE / "_build"
QEMU = "qemu-system-x86_64"

needs_qemu = pytest.mark.skipif(
    shutil.which(QEMU) is None and not os.environ.get("CI"),
    reason="qemu-system-x86_64 not installed (the test command installs it)",
)

CONFIG_TEMPLATE = """
[targets.guest]
backend = "qemu"
binary = "qemu-system-x86_64"
machine = "pc"
kernel = "{elf}"
serial = ["com1", "com2"]
args = ["-device", "edu,id=edu0", "-device", "isa-debug-exit,iobase=0xf4,iosize=4"]
qtest = true

[targets.plain]
backend = "qemu"
machine = "pc"
kernel = "{elf}"
serial = ["com1"]
args = ["-device", "edu,id=edu0"]

[targets.q35]
backend = "qemu"
machine = "q35"
kernel = "{elf}"
serial = ["com1"]
"""


@pytest.fixture(scope="session")
def guest_elf() -> Path:
    """tests/guest/guest.S built with binutils, once per session (about 20 ms)."""
    BUILD.mkdir(exist_ok=True)
    out = BUILD / "guest.elf"
    subprocess.run(
        ["sh", str(HERE / "guest" / "build.sh"), str(out)], check=True, capture_output=True
    )
    return out


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Short path: unix socket paths must fit in 107 bytes.
    d = (
        Path(os.environ.get("EMUTUI_TEST_TMP", "/tmp"))
        / f"et-{os.getpid()}-{id(tmp_path) % 100000}"
    )
    d.mkdir(parents=True, exist_ok=True, mode=0o700)  # a state root must be private
    monkeypatch.setenv("EMUTUI_STATE_DIR", str(d))
    yield d
    # Whatever a test left running is stopped: no QEMU outlives the suite.
    reg = Registry(d)
    for inst in reg.instances():
        try:
            asyncio.run(stop_instance(reg, inst))
        except Exception:
            pass
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def config_file(tmp_path: Path, guest_elf: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    p = tmp_path / "emutui.toml"
    p.write_text(CONFIG_TEMPLATE.format(elf=guest_elf))
    monkeypatch.setenv("EMUTUI_CONFIG", str(p))
    return p


@pytest.fixture
def config(config_file: Path) -> Config:
    return parse_config(config_file)


@pytest.fixture
def registry(state_dir: Path) -> Registry:
    return Registry(state_dir)


@pytest.fixture
async def guest(config: Config, registry: Registry) -> AsyncIterator[Instance]:
    """A running QEMU `pc` guest with edu0, qtest and two serial ports, banner already logged."""
    inst = await start_target(config, registry, "guest", None, False)
    await wait_for_file_text(inst.serial_log("com1"), b"ready (COM1)")
    yield inst
    await stop_instance(registry, inst)


async def wait_for_file_text(path: Path, needle: bytes, timeout: float = 10.0) -> bytes:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = b""
        if needle in data:
            return data
        await asyncio.sleep(0.02)
    raise AssertionError(f"{needle!r} not in {path} after {timeout} s: {data[-200:]!r}")


@dataclass
class CliResult:
    rc: int
    out: str
    err: str


def run_cli(*args: str, input: str | None = None, timeout: float = 60) -> CliResult:
    """emutui as a separate process, as a user would run it (env carries state dir and config)."""
    p = subprocess.run(
        [sys.executable, "-m", "emutui", *args],
        capture_output=True,
        text=True,
        input=input,
        timeout=timeout,
    )
    return CliResult(p.returncode, p.stdout, p.stderr)


@pytest.fixture
def cli() -> Iterator[object]:
    yield run_cli


# --- a second local user, for the shared-machine tests -----------------------------------

OTHER_USER = "emutui-other"


@dataclass
class OtherUser:
    """A second local account (created when the suite runs as root, as CI does)."""

    name: str
    uid: int
    gid: int

    def run(
        self,
        argv: list[str],
        *,
        timeout: float = 30,
        input: bytes | None = None,
        env: dict[str, str] | None = None,
        cwd: str = "/",
    ) -> subprocess.CompletedProcess[bytes]:
        """Run argv as this user (runuser -u), with a clean environment of its own."""
        base = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": f"/tmp/{self.name}-home",
            "TMPDIR": "/tmp",
            "LANG": "C.UTF-8",
        }
        base.update(env or {})
        envargs = [f"{k}={v}" for k, v in base.items()]
        return subprocess.run(
            ["runuser", "-u", self.name, "--", "env", "-i", *envargs, *argv],
            capture_output=True,
            timeout=timeout,
            input=input,
            cwd=cwd,
        )


@pytest.fixture(scope="session")
def other_user() -> OtherUser:
    """The second user. Created once (idempotent, concurrent-safe) and kept: removing it
    while another test process still runs as it would be a race."""
    import pwd

    if os.geteuid() != 0 or shutil.which("runuser") is None or shutil.which("useradd") is None:
        pytest.skip("needs root (useradd, runuser) to create a second local user; CI runs as root")
    try:
        pw = pwd.getpwnam(OTHER_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--no-create-home", "--shell", "/bin/sh", OTHER_USER], capture_output=True
        )
        pw = pwd.getpwnam(OTHER_USER)
    home = Path(f"/tmp/{OTHER_USER}-home")
    home.mkdir(exist_ok=True)
    os.chown(home, pw.pw_uid, pw.pw_gid)
    return OtherUser(OTHER_USER, pw.pw_uid, pw.pw_gid)
