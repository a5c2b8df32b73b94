"""A Renode stand-in: Renode's command line, robot port, Monitor and log, without Renode.

Renode cannot be installed on the machines emutui is tested on (spec section 5),
so this process plays it: ``emutui sim renode ARGS`` or the ``renode-standin``
executable accept Renode's options, write the pid file and
``$TMPDIR/renode-<pid>/robot_port`` as Renode does, serve the robot XML-RPC
port with exactly Renode's methods and result structs, interpret the Monitor
commands emutui uses with Renode's output formats, and run a scripted firmware
(banner, echo, a periodic tick) on every UART of a loaded platform.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
from importlib import resources
from pathlib import Path
from types import FrameType

from emutui.sim.renode.emulation import VERSION, Emulation, Logger, eprint

__all__ = ["demo_platform", "demo_target_options", "main", "standin_binary"]


def demo_platform() -> Path:
    """The sample board shipped with the stand-in (package data).

    If an installation left the data file out (package-data not listed), the
    same text is written once to the user cache dir, so the demo still works.
    """
    packaged = Path(str(resources.files("emutui.sim.renode") / "platforms" / "emutui-demo.repl"))
    if packaged.is_file():
        return packaged
    from platformdirs import user_cache_path

    out = user_cache_path("emutui") / "renode" / "emutui-demo.repl"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(DEMO_PLATFORM)
    return out


def standin_binary() -> str:
    """The ``renode-standin`` executable next to this interpreter, else on PATH."""
    cand = Path(sys.executable).parent / "renode-standin"
    if cand.exists():
        return str(cand)
    return shutil.which("renode-standin") or str(cand)


def demo_target_options() -> dict[str, object]:
    """Target options for a simulated Renode board, for ``emutui demo`` and examples."""
    return {
        "backend": "renode",
        "binary": standin_binary(),
        "platform": str(demo_platform()),
        "uarts": ["sysbus.uart0", "sysbus.uart1"],
        "simulated": True,
    }


DEMO_PLATFORM = """\
// A small Cortex-M board for the emutui Renode stand-in (a subset of Renode's .repl syntax).
cpu: CPU.CortexM @ sysbus
    cpuType: "cortex-m4"
    nvic: nvic

nvic: IRQControllers.NVIC @ sysbus 0xE000E000

flash: Memory.MappedMemory @ sysbus 0x00000000
    size: 0x40000

sram: Memory.MappedMemory @ sysbus 0x20000000
    size: 0x10000

uart0: UART.PL011 @ sysbus 0x40004000
    -> nvic@5

uart1: UART.PL011 @ sysbus 0x40005000
    -> nvic@6

timer0: Timers.ARM_SP804_Timer @ sysbus <0x40010000, +0x100>
    frequency: 1000000
"""


# Set by SIGINT/SIGTERM/SIGHUP. A flag, not an exception: an exception raised in
# the middle of a request would be swallowed by socketserver's error handling.
_STOP = threading.Event()


def _parser() -> argparse.ArgumentParser:
    # Renode's options (renode-infrastructure/src/UI/Options.cs), spelled as Renode spells them.
    p = argparse.ArgumentParser(prog="renode", description="Renode stand-in (emutui)")
    p.add_argument("--robot-server-port", type=int, default=-1)
    # Not a Renode option: the stand-in's robot port on a private unix socket instead.
    p.add_argument("--robot-server-socket")
    p.add_argument("--disable-gui", "--disable-xwt", action="store_true", dest="disable_gui")
    p.add_argument("--hide-monitor", action="store_true")
    p.add_argument("--hide-log", action="store_true")
    p.add_argument("--hide-analyzers", action="store_true")
    p.add_argument("-p", "--plain", action="store_true")
    p.add_argument("-P", "--port", type=int, default=-1)
    p.add_argument("-e", "--execute", action="append", default=[])
    p.add_argument("--console", action="store_true")
    p.add_argument("--pid-file")
    p.add_argument("--config")
    p.add_argument("--keep-temporary-files", action="store_true")
    p.add_argument("--robot-debug-on-error", action="store_true")
    p.add_argument("-v", "--version", action="store_true")
    p.add_argument("file", nargs="?")
    return p


def _clean_stale_tmp(base: Path) -> None:
    """Renode deletes leftover ``renode-<pid>`` dirs whose process is gone."""
    try:
        entries = list(base.glob("renode-*"))
    except OSError:
        return
    for d in entries:
        pid = d.name[len("renode-") :]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(d, ignore_errors=True)


class TelnetMonitor:
    """``-P N``: the Monitor over telnet, one client at a time, surviving disconnects."""

    PREAMBLE = b"\xff\xfd\x00\xff\xfb\x01\xff\xfb\x03\xff\xfc\x22"  # v1.16.1 bytes

    def __init__(self, monitor: object, emulation: Emulation, port: int, plain: bool) -> None:
        from emutui.sim.renode.monitor import Monitor

        assert isinstance(monitor, Monitor)
        self.monitor = monitor
        self.em = emulation
        self.plain = plain
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        # The shell starts once at process start: its banner waits for the first client.
        self.backlog = f"{VERSION}\r\n\r\n".encode()
        threading.Thread(target=self._serve, daemon=True, name="telnet").start()

    def prompt(self) -> bytes:
        cur = self.em.current
        text = f"({cur.name}) " if cur else "(monitor) "
        if self.plain:
            return text.encode()
        color = "\x1b[33m" if cur else "\x1b[31m"
        return f"{color}{text}\x1b[0m".encode()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                conn.sendall(self.PREAMBLE + self.backlog + self.prompt())
                self.backlog = b""
                self._session(conn)
            except OSError:
                pass
            finally:
                conn.close()

    def _session(self, conn: socket.socket) -> None:
        import re

        buf = b""
        while True:
            data = conn.recv(4096)
            if not data:
                return
            data = re.sub(rb"\xff[\xfb-\xfe].|\xff[\xf0-\xfa]", b"", data)
            for b in data:
                ch = bytes([b])
                if ch in (b"\r", b"\n"):
                    if ch == b"\n" and not buf:
                        continue
                    conn.sendall(b"\n\r")
                    text, errors = self.monitor.execute(buf.decode("utf-8", "replace"))
                    out = text.encode()
                    for err in errors:
                        red = err if self.plain else f"\x1b[31m{err}\x1b[0m"
                        out += red.replace("\n", "\r\n").encode() + b"\r\n"
                    conn.sendall(out + self.prompt())
                    buf = b""
                    if self.monitor.quit_requested:
                        os.kill(os.getpid(), signal.SIGTERM)
                elif b in (0x7F, 0x08):
                    if buf:
                        buf = buf[:-1]
                        conn.sendall(b"\x1b[1D\x1b[K")
                else:
                    buf += ch
                    conn.sendall(ch)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.version:
        print(VERSION)
        return 0
    if args.hide_monitor and args.console:
        eprint("Error: --hide-monitor and --console cannot be used together.")
        return 1
    from emutui.sim.renode.monitor import Monitor
    from emutui.sim.renode.robot import RobotServer, robot_port_file

    pid = os.getpid()
    if args.pid_file:
        part = Path(f"{args.pid_file}.tmp")
        part.write_text(str(pid))
        part.replace(args.pid_file)
    tmp_base = Path(tempfile.gettempdir())  # honours $TMPDIR, like .NET's Path.GetTempPath()
    _clean_stale_tmp(tmp_base)
    tmp_dir = tmp_base / f"renode-{pid}"
    tmp_dir.mkdir(parents=True, exist_ok=True)

    log = Logger(to_stdout=not args.hide_log, plain=args.plain)
    em = Emulation(log=log)
    monitor = Monitor(em, Path.cwd())
    robot: RobotServer | None = None
    rc = 0

    def on_signal(signum: int, frame: FrameType | None) -> None:
        _STOP.set()
        if robot is not None:
            robot.stopping = True

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    try:
        if args.file:
            _, errors = monitor.execute(f"include @{args.file}")
            for err in errors:
                eprint(err)
        if args.robot_server_socket:
            try:
                robot = RobotServer(em, monitor, 0, path=args.robot_server_socket)
            except OSError as e:
                eprint(str(e))
                return 1
            log.log(
                "INFO",
                "",
                f"Robot Framework remote server is listening on {args.robot_server_socket}",
            )
        elif args.robot_server_port >= 0:
            try:
                robot = RobotServer(em, monitor, args.robot_server_port)
            except OSError as e:
                log.log("ERROR", "", str(e))
                eprint(str(e))
                return 1  # Renode exits when its robot listener cannot start
            robot_port_file(tmp_dir, robot.port)
            log.log("INFO", "", f"Robot Framework remote server is listening on port {robot.port}")
        telnet_port = args.port
        if telnet_port < 0 and robot is None and not args.console and args.disable_gui:
            telnet_port = 1234  # Renode's default when there is no other way in
        if telnet_port >= 0:
            tm = TelnetMonitor(monitor, em, telnet_port, args.plain)
            log.log("INFO", "", f"Monitor available in telnet mode on port {tm.port}")
        if args.execute:
            # -e commands are typed into the Monitor as one "; "-joined line.
            _, errors = monitor.execute("; ".join(args.execute))
            for err in errors:
                eprint(err)
        if args.console:
            threading.Thread(target=_console, args=(monitor,), daemon=True).start()
        if robot is not None:
            robot.serve()
        else:
            while not monitor.quit_requested and not _STOP.is_set():
                _STOP.wait(0.2)
    finally:
        em.close()
        if not args.keep_temporary_files:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    return rc


def _console(monitor: object) -> None:
    from emutui.sim.renode.monitor import Monitor

    assert isinstance(monitor, Monitor)
    for line in sys.stdin:
        text, errors = monitor.execute(line.rstrip("\n"))
        sys.stdout.write(text)
        for e in errors:
            sys.stdout.write(e + "\r\n")
        sys.stdout.write("(monitor) ")
        sys.stdout.flush()
        if monitor.quit_requested:
            os.kill(os.getpid(), signal.SIGTERM)
            return
    monitor.quit_requested = True  # end of input on the console ends Renode as `quit` does
