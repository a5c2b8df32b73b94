"""Issue 10, the vrtd findings: a private default socket (5), a hostile daemon's
shrinking BAR (7), a connection flood (11), the AUTH_ERROR text (13)."""

from __future__ import annotations

import array
import os
import resource
import signal
import socket
import stat
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import OtherUser, run_cli

HERE = Path(__file__).parent


def _wait_listening(path: str, proc: subprocess.Popen[bytes], deadline: float = 30) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        assert proc.poll() is None, "the simulator exited"
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            s.connect(path)
            return
        except OSError:
            time.sleep(0.05)
        finally:
            s.close()
    raise AssertionError(f"nothing listens on {path}")


def _ask(path: str, timeout: float = 20) -> bytes:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(timeout)
    s.connect(path)
    try:
        s.send(struct.pack("<HHI", 1, 0, 1) + b"\0")  # GET_NUM_DEVICES
        return s.recv(4096)
    finally:
        s.close()


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Path]:
    d = Path(f"/tmp/vf-{os.getpid()}-{tmp_path.name[-6:]}")
    d.mkdir(mode=0o700)
    yield d
    subprocess.run(["rm", "-rf", str(d)])


def _sim(env: dict[str, str], *args: str, log: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "emutui", "sim", "vrtd", "--bar-size", "1", *args]
    with log.open("ab") as f:
        return subprocess.Popen(argv, env=env, stdout=f, stderr=f, start_new_session=True)


def _stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


# ----------------------------------------------------------------------------- finding 5


@pytest.mark.parametrize("where", ["xdg", "tmpdir"])
def test_default_socket_is_private(where: str, runtime: Path, tmp_path: Path) -> None:
    """Without --socket the simulator listens in a 0700 directory of ours, mode 0600
    (it was $TMPDIR/emutui-vrtd-UID.sock, mode 0666, full access for anybody)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VRTD_SOCKET", "VRTD_CONFIG")}
    if where == "xdg":
        env["XDG_RUNTIME_DIR"] = str(runtime)
        sock = runtime / "emutui" / "vrtd.sock"
    else:
        env.pop("XDG_RUNTIME_DIR", None)
        env["TMPDIR"] = str(runtime)
        sock = runtime / f"emutui-{os.getuid()}" / "vrtd.sock"
    p = _sim(env, log=tmp_path / "sim.log")
    try:
        _wait_listening(str(sock), p)
        d = os.lstat(sock.parent)
        assert stat.S_ISDIR(d.st_mode) and d.st_uid == os.getuid()
        assert stat.S_IMODE(d.st_mode) == 0o700
        s = os.lstat(sock)
        assert stat.S_ISSOCK(s.st_mode) and stat.S_IMODE(s.st_mode) == 0o600
        assert _ask(str(sock))[2:4] == b"\0\0"
    finally:
        _stop(p)
    assert not sock.exists()


def test_default_socket_dir_of_another_user_is_refused(
    other_user: OtherUser, runtime: Path, tmp_path: Path
) -> None:
    """A prepared $TMPDIR/emutui-UID owned by someone else is refused, not used."""
    runtime.chmod(0o1777)
    trap = runtime / f"emutui-{os.getuid()}"
    other_user.run(["mkdir", "-m", "0777", str(trap)]).check_returncode()
    env = {k: v for k, v in os.environ.items() if k not in ("VRTD_SOCKET", "XDG_RUNTIME_DIR")}
    env["TMPDIR"] = str(runtime)
    r = subprocess.run(
        [sys.executable, "-m", "emutui", "sim", "vrtd"], env=env, capture_output=True, timeout=60
    )
    assert r.returncode == 1 and b"refusing directory" in r.stderr, r.stderr
    assert not (trap / "vrtd.sock").exists()


def test_another_user_cannot_reach_the_simulator(
    other_user: OtherUser, runtime: Path, tmp_path: Path
) -> None:
    """Even with --socket in a directory others may enter, the socket is 0600: another
    user cannot connect, so cannot map, read or write the owner's BARs."""
    runtime.chmod(0o755)
    sock = runtime / "v.sock"
    p = _sim(dict(os.environ), "--socket", str(sock), log=tmp_path / "sim.log")
    try:
        _wait_listening(str(sock), p)
        probe = (
            "import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); "
            f"s.connect({str(sock)!r}); print('connected')"
        )
        r = other_user.run(["/usr/bin/python3", "-c", probe])
        assert r.returncode != 0 and b"PermissionError" in r.stderr, r
        assert b"connected" not in r.stdout
    finally:
        _stop(p)


# ----------------------------------------------------------------------------- finding 7


class HostileVrtd:
    """A vrtd that hands out a BAR fd it can shrink after the client mapped it."""

    SIZE = 1 << 20

    def __init__(self, path: str, kind: str, tmp: Path) -> None:
        self.path = path
        if kind == "memfd":
            self.fd = os.memfd_create("hostile-bar")  # unsealed
        else:  # a regular file, as libslash's @mock BAR
            self.fd = os.open(tmp / "bar.bin", os.O_RDWR | os.O_CREAT, 0o600)
        os.ftruncate(self.fd, self.SIZE)
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.lsock.bind(path)
        self.lsock.listen()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    data = conn.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                _size, op, seq = struct.unpack_from("<HHI", data)
                anc = []
                if op == 0:
                    body = struct.pack("<I", 1)
                elif op == 1:
                    body = b"hostile".ljust(128, b"\0")
                elif op == 2:
                    bar = data[12]
                    body = struct.pack("<IBBBBQQ", 24, bar, int(bar == 0), 0, 0, 0, self.SIZE)
                elif op == 3:
                    body = struct.pack("<Q", self.SIZE)
                    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [self.fd]))]
                else:
                    body = b""
                conn.sendmsg([struct.pack("<HHI", len(body), 0, seq) + body], anc)

    def shrink(self) -> None:
        os.ftruncate(self.fd, 0)

    def close(self) -> None:
        self.lsock.close()
        os.close(self.fd)


CLIENT = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from emutui.backends.vrtd import make_handles
    from emutui.backends.vrtd.connector import VrtdConnector
    from emutui.core.errors import EmutuiError
    from emutui.core.instance import Instance

    async def main():
        wd = Path(sys.argv[2])
        conn = VrtdConnector(Instance(name="h", wd=wd, handles=make_handles("h", sys.argv[1])))
        print("first", (await conn.read("hostile.bar0", 0x80000, 4)).hex(), flush=True)
        sys.stdin.readline()  # the daemon shrinks the file now
        for off in (0x80000, 0, 0xFFFFC):
            try:
                print("again", (await conn.read("hostile.bar0", off, 4)).hex(), flush=True)
            except EmutuiError as e:
                print("refused", e, flush=True)
        try:
            await conn.write("hostile.bar0", 0x80000, b"abcd")
            print("wrote", flush=True)
        except EmutuiError as e:
            print("refused", e, flush=True)
        await conn.close()

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("kind", ["memfd", "file"])
def test_shrunk_bar_does_not_sigbus(kind: str, runtime: Path, tmp_path: Path) -> None:
    """A daemon's unsealed BAR fd shrunk after emutui mapped it: emutui refuses the
    access with one line; it used to die of SIGBUS on the next read."""
    daemon = HostileVrtd(str(runtime / "h.sock"), kind, runtime)
    try:
        p = subprocess.Popen(
            [sys.executable, "-c", CLIENT, daemon.path, str(tmp_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=str(HERE.parents[1]),
        )
        assert p.stdout is not None and p.stdin is not None
        assert p.stdout.readline().strip() == b"first 00000000"
        daemon.shrink()
        p.stdin.write(b"go\n")
        p.stdin.flush()
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, (p.returncode, err.decode()[-2000:])  # -7 was SIGBUS
        lines = out.decode().splitlines()
        assert len(lines) == 4 and all(x.startswith("refused") for x in lines), lines
        assert "shrank to 0 bytes" in lines[0]
        assert os.fstat(daemon.fd).st_size == 0  # and the write did not grow it back
    finally:
        daemon.close()


def test_sealed_memfd_is_mapped_and_unsealed_is_not() -> None:
    import fcntl

    from emutui.backends.vrtd.client import BarMapping

    sealed = os.memfd_create("s", os.MFD_ALLOW_SEALING)
    os.ftruncate(sealed, 4096)
    fcntl.fcntl(sealed, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK)
    plain = os.memfd_create("p")
    os.ftruncate(plain, 4096)
    with BarMapping.from_fd(sealed, 4096, "s.bar0") as m:
        assert m.kind == "sealed" and m._mem is not None
    with BarMapping.from_fd(plain, 4096, "p.bar0") as m:
        assert m.kind == "file" and m._mem is None
        m.write(8, b"wxyz")
        assert m.read(8, 4) == b"wxyz"


# ----------------------------------------------------------------------------- finding 11


def test_connection_flood_backs_off_and_recovers(runtime: Path, tmp_path: Path) -> None:
    """With few descriptors, 300 connections exhaust them: accept fails with EMFILE.
    The simulator logs it once, backs off, keeps its socket and serves again once the
    flood is gone (it used to leave its accept loop, remove the socket and idle)."""
    sock = str(runtime / "f.sock")
    log = tmp_path / "sim.log"

    def low_nofile() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    argv = [sys.executable, "-m", "emutui", "sim", "vrtd", "--bar-size", "1", "--socket", sock]
    with log.open("ab") as f:
        p = subprocess.Popen(argv, stdout=f, stderr=f, preexec_fn=low_nofile)
    flood: list[socket.socket] = []
    try:
        _wait_listening(sock, p)
        for _ in range(300):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.setblocking(False)
            try:
                s.connect(sock)
            except BlockingIOError:
                pass  # the backlog is full: that is the point
            flood.append(s)
        deadline = time.monotonic() + 60
        while "accept failed" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "accept failed" in log.read_text() and "Too many open files" in log.read_text()
        assert p.poll() is None and stat.S_ISSOCK(os.lstat(sock).st_mode)
        for s in flood:
            s.close()
        flood.clear()
        reply = b""
        while time.monotonic() < deadline and not reply:
            try:
                reply = _ask(sock, timeout=5)
            except OSError:
                time.sleep(0.2)
        assert reply == bytes.fromhex("040000000100000001000000")
        deadline = time.monotonic() + 30
        while "accepting again" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "accepting again" in log.read_text()
    finally:
        for s in flood:
            s.close()
        _stop(p)


# ----------------------------------------------------------------------------- finding 13


def test_auth_error_names_the_actual_config(runtime: Path, tmp_path: Path, state_dir: Path) -> None:
    conf = runtime / "lab-vrtd.conf"
    conf.write_text("[role:info]\nquery-devices = yes\n[user:*]\nrole = info\n")
    sock = str(runtime / "a.sock")
    p = _sim(dict(os.environ), "--socket", sock, "--config", str(conf), log=tmp_path / "s.log")
    try:
        _wait_listening(sock, p)
        r = run_cli("attach", "vrtd", "lab", "--socket", sock, "--vrtd-config", str(conf))
        assert r.rc == 0, r.err
        r = run_cli("mem", "read", "lab", "slash_ctl0.bar0", "0", "4")
        assert r.rc != 0 and "AUTH_ERROR" in r.err and str(conf) in r.err, r.err
        assert "/etc/vrt/vrtd.conf" not in r.err
        assert "Traceback" not in r.err
        # not told which file: the message says where vrtd looks, not just /etc/vrt
        assert run_cli("attach", "vrtd", "lab2", "--socket", sock).rc == 0
        r = run_cli("mem", "read", "lab2", "slash_ctl0.bar0", "0", "4")
        assert "$VRTD_CONFIG" in r.err and "AUTH_ERROR" in r.err, r.err
    finally:
        _stop(p)
