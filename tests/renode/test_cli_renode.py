"""The issue's Done-when sequence through the real CLI, each command a separate process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from emutui.core.registry import Registry

from .conftest import pid_gone


def emutui(
    state: Path, cfg: Path, *args: str, input: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "emutui", "--state-dir", str(state), "--config", str(cfg), *args],
        capture_output=True,
        input=input,
        timeout=120,
    )


def test_done_when_sequence(tmp_path: Path, renode_config_file: Path, state_dir: Path) -> None:
    cfg = renode_config_file
    r = emutui(state_dir, cfg, "start", "board")
    assert r.returncode == 0, r.stderr.decode()
    try:
        r = emutui(state_dir, cfg, "ls", "--json")
        assert r.returncode == 0, r.stderr.decode()
        listing = json.loads(r.stdout)
        rows = listing if isinstance(listing, list) else listing.get("instances", [])
        row = next(x for x in rows if x["name"] == "board")
        assert row["backend"] == "renode" and row["simulated"] is True

        r = emutui(state_dir, cfg, "prop", "ls", "board", "/")
        out = r.stdout.decode()
        assert r.returncode == 0, r.stderr.decode()
        assert "uart0" in out and "<0x40004000, 0x40004FFF>" in out
        assert "sram" in out and "<0x20000000, 0x2000FFFF>" in out

        r = emutui(state_dir, cfg, "prop", "get", "board", "/uart0", "BaudRate")
        assert r.returncode == 0 and r.stdout.decode().strip() == "115200"

        r = emutui(state_dir, cfg, "mem", "read", "board", "uart0", "0xfe0", "8")
        assert r.returncode == 0, r.stderr.decode()
        assert "1100 0000 1000 0000" in r.stdout.decode()

        # The UART echoes through `emutui term` (stdin a pipe: bytes in, bytes out).
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "emutui",
                "--state-dir",
                str(state_dir),
                "--config",
                str(cfg),
                "term",
                "board",
                "uart0",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(b"echo me\r")
        proc.stdin.flush()
        got = b""
        while b"echo me\r\n" not in got:
            chunk = proc.stdout.read1(4096)
            if not chunk:
                break
            got += chunk
        proc.stdin.close()
        proc.kill()
        proc.wait(30)
        assert b"echo me\r\n" in got

        r = emutui(state_dir, cfg, "logs", "board", "uart0")
        assert b"stand-in firmware" in r.stdout and b"echo me" in r.stdout
    finally:
        inst = Registry(state_dir).get("board")
        pid = inst.pid
        r = emutui(state_dir, cfg, "stop", "board")
    assert r.returncode == 0, r.stderr.decode()
    assert pid is not None
    for _ in range(100):
        if pid_gone(pid):
            break
        time.sleep(0.05)
    assert pid_gone(pid)
    r = emutui(state_dir, cfg, "ls")
    assert b"board" not in r.stdout


def test_sim_renode_via_cli(tmp_path: Path) -> None:
    """``emutui sim renode`` accepts Renode's command line (here: -e commands and --console)."""
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "emutui",
            "sim",
            "renode",
            "--plain",
            "--console",
            "--disable-gui",
            "--pid-file",
            str(tmp_path / "pid"),
        ],
        input=b'mach create "m"\nemulation Names\nquit\n',
        capture_output=True,
        timeout=120,
        env={"TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert b"m, " in r.stdout and b"Renode is quitting" in r.stdout
    assert (tmp_path / "pid").read_text().isdigit()


def test_demo_target_is_consistent() -> None:
    from emutui.backends.renode import BACKEND
    from emutui.core.targets import TargetConfig
    from emutui.sim.renode import DEMO_PLATFORM, demo_platform, demo_target_options

    # The packaged .repl and its fallback copy in the code must not drift apart.
    assert demo_platform().read_text() == DEMO_PLATFORM
    opts = demo_target_options()
    BACKEND.validate(
        TargetConfig("demo", "renode", {k: v for k, v in opts.items() if k != "backend"})
    )
