"""Security: private state, loopback-only listeners, no shell, guest escapes kept off the
host terminal (checked on a real pty, through a real guest's echo)."""

from __future__ import annotations

import os
import pty
import re
import select
import stat
import subprocess
import sys
import termios
import time
from pathlib import Path

from tests.conftest import needs_qemu
from tests.renode.conftest import (  # noqa: F401 - fixtures
    board,
    renode_config,
    renode_config_file,
    standin,
)

ROOT = Path(__file__).parents[2]

# What a hostile guest prints: window title, OSC 52 clipboard write, palette change,
# DCS request, APC, a private mode that enables mouse reporting, a window op.
ATTACKS = [
    b"\x1b]0;owned-title\x07",
    b"\x1b]52;c;b3duZWQ=\x07",
    b"\x1b]4;1;rgb:ff/00/00\x1b\\",
    b"\x1bP+q544e\x1b\\",
    b"\x1b_apc-payload\x1b\\",
    b"\x1b[?1000h",
    b"\x1b[8;1;1t",
]
FORBIDDEN = [b"\x1b]", b"\x1bP", b"\x1b_", b"\x1b[?1000", b"\x1b[8;", b"\x07"]


def run_on_pty(args: list[str], send: bytes = b"", seconds: float = 3.0) -> bytes:
    """Run emutui with its stdin/stdout on a pty, as in a real terminal; return all it wrote."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.execv(sys.executable, [sys.executable, "-m", "emutui", *args])
    out = b""
    try:
        if send:
            # Type only once the console is attached (its "connected" line) and the
            # terminal is raw (entering raw mode flushes pending input), however slow
            # the machine: bytes before that would be typed into nothing.
            ready = time.monotonic() + 20
            while time.monotonic() < ready and not (
                b"connected" in out and not termios.tcgetattr(fd)[3] & termios.ICANON
            ):
                r, _, _ = select.select([fd], [], [], 0.1)
                if r:
                    try:
                        out += os.read(fd, 65536)
                    except OSError:
                        break
        else:
            time.sleep(0.8)
        if send:
            os.write(fd, send)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
        os.write(fd, b"\x1d")  # Ctrl+]
        time.sleep(0.3)
        try:
            while True:
                r, _, _ = select.select([fd], [], [], 0.2)
                if not r:
                    break
                out += os.read(fd, 65536)
        except OSError:
            pass
    finally:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)
    return out


@needs_qemu
def test_guest_escapes_never_reach_the_host_terminal(guest):
    # The guest echoes every byte: type the attacks at it through `emutui term`.
    payload = b"safe-start " + b"".join(ATTACKS) + b" safe-end\r"
    out = run_on_pty(["term", guest.name, "com1"], send=payload)
    assert b"safe-start" in out and b"safe-end" in out
    # the pty echo of our own typing is off (raw mode); what came back is the guest's
    for bad in FORBIDDEN:
        assert bad not in out, (bad, out[-300:])
    # the log keeps the bytes exactly as the guest sent them
    assert b"\x1b]52;c;b3duZWQ=" in guest.serial_log("com1").read_bytes()
    # `emutui logs` to a terminal filters too
    out = run_on_pty(["logs", guest.name, "com1"], seconds=1.0)
    assert b"safe-start" in out
    for bad in FORBIDDEN:
        assert bad not in out


@needs_qemu
def test_state_is_private(guest):
    assert stat.S_IMODE(guest.wd.stat().st_mode) == 0o700
    assert stat.S_IMODE(guest.wd.parent.stat().st_mode) == 0o700
    for p in guest.wd.iterdir():
        mode = stat.S_IMODE(p.lstat().st_mode)
        if p.is_symlink():
            continue
        assert mode & 0o077 == 0, f"{p.name} is {oct(mode)}"


def listening_tcp(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket ``pid`` listens on, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            m = re.match(r"socket:\[(\d+)\]", os.readlink(fd))
        except OSError:
            continue
        if m:
            inodes.add(m.group(1))
    found = []
    for table, v6 in (("tcp", False), ("tcp6", True)):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, state, inode = parts[1], parts[3], parts[9]
            if state != "0A" or inode not in inodes:  # 0A = LISTEN
                continue
            addr_hex, port_hex = local.split(":")
            if v6:
                addr = "::1" if addr_hex == "00000000000000000000000001000000" else addr_hex
            else:
                addr = ".".join(str(b) for b in bytes.fromhex(addr_hex)[::-1])
            found.append((addr, int(port_hex, 16)))
    return found


def test_renode_standin_listens_on_no_tcp_port(board):  # noqa: F811
    # robot and UARTs on 0600 unix sockets (issue 10 finding 5); a real Renode's TCP
    # listeners: tests/faults/test_renode_private.py
    assert listening_tcp(board.pid) == []


@needs_qemu
def test_qemu_listens_on_no_tcp_port(guest):
    assert listening_tcp(guest.pid) == []


def test_no_shell_true_anywhere():
    offenders = []
    for path in (ROOT / "emutui").rglob("*.py"):
        text = path.read_text()
        for pattern in ("shell=True", "os.system(", "os.popen(", "create_subprocess_shell"):
            if pattern in text:
                offenders.append(f"{path.relative_to(ROOT)}: {pattern}")
    assert offenders == []


def test_sanitizer_is_what_term_uses():
    # guards against a refactor that prints guest bytes straight to a terminal
    src = (ROOT / "emutui" / "commands" / "streams.py").read_text()
    assert "sanitizer.feed(chunk) if to_tty" in src
    assert subprocess.run([sys.executable, "-c", "import emutui.core.sanitize"]).returncode == 0
