"""Launching Renode the way its own test harness does, then building the machine over robot.

The robot port is never guessed: Renode is started with ``--robot-server-port 0``
and a private ``TMPDIR``, and the port is read from ``$TMPDIR/renode-<pid>/robot_port``
where ``<pid>`` comes from ``--pid-file`` (a .deb's wrapper script does not exec,
so the pid we spawned may not be Renode's). Setup commands are sent one by one
over robot rather than as ``-e`` options, because Renode silently skips every
``-e`` command after the first one that fails (spec 1.1), while each robot
call reports its own failure.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from emutui.backends.renode import monitor
from emutui.backends.renode.robot import KeywordFailed, RobotClient
from emutui.core import proc, serialhub
from emutui.core.errors import BackendError, ConfigError, DisconnectedError, EmutuiError
from emutui.core.handles import Channel, Handles
from emutui.core.paths import socket_path
from emutui.core.targets import TargetConfig

KEYS = {
    "binary",
    "platform",
    "script",
    "elf",
    "uarts",
    "machine",
    "config",
    "commands",
    "simulated",
    "start_timeout",
    "terminal",
}
PID_FILE = "renode.pid"
LOG_FILE = "renode.log"
STANDIN_MARK = "emutui-standin"  # in the stand-in's version string (``version`` command)
_children: list[subprocess.Popen[bytes]] = []  # reaped by us when we are their parent


def validate(target: TargetConfig) -> None:
    target.check_keys(KEYS)
    target.str_opt("binary", default="renode")
    platform = target.path_opt("platform")
    script = target.path_opt("script")
    if (platform is None) == (script is None):
        raise ConfigError(
            f"{target.source}: {target.section}.{target.name}: set exactly one of "
            f"'platform' (a .repl) or 'script' (a .resc)"
        )
    target.path_opt("elf")
    target.path_opt("config")
    for u in target.list_opt("uarts"):
        if not re.fullmatch(r"[A-Za-z0-9_.]+", u):  # ASCII only
            raise target.error("uarts", 'a list of peripheral names like "sysbus.uart0"')
    target.str_opt("machine")
    target.list_opt("commands")
    target.bool_opt("simulated", default=False)
    timeout = target.int_opt("start_timeout", default=60)
    if timeout is None or timeout <= 0:
        raise target.error("start_timeout", "a positive number of seconds")
    term = target.str_opt("terminal", default="socket")
    if term not in ("socket", "pty"):
        raise target.error("terminal", '"socket" or "pty"')


def resolve_binary(binary: str) -> str:
    if os.sep in binary:
        p = Path(binary).expanduser()
        if not p.exists():
            raise ConfigError(f"Renode binary not found: {p}")
        return str(p)
    found = shutil.which(binary)
    if found is None:
        raise ConfigError(
            f"Renode binary {binary!r} is not on PATH (set 'binary' in the target; "
            f"the stand-in is 'renode-standin')"
        )
    return found


def uart_channel_name(uart: str) -> str:
    return uart.rsplit(".", 1)[-1]


def free_port() -> int:
    # Only for socket terminals, which have no port-0 discovery in Renode (spec 4);
    # a lost race shows up as AddressAlreadyInUse and is retried with another port.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def read_robot_port(wd: Path, renode_pid: int) -> int | None:
    f = wd / "tmp" / f"renode-{renode_pid}" / "robot_port"
    try:
        text = f.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # empty while Renode is writing it


def read_pid(wd: Path) -> int | None:
    try:
        text = (wd / PID_FILE).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _output_tail(wd: Path, n: int = 5) -> str:
    try:
        data = (wd / "output.log").read_bytes()[-4096:]
    except OSError:
        return ""
    tail = [ln for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()][-n:]
    return f"; last output: {' | '.join(tail)}" if tail else ""


async def wait_for_port(
    wd: Path, child: subprocess.Popen[bytes], timeout: float
) -> tuple[int, int]:
    """Renode's pid (from --pid-file) and robot port (from its robot_port file)."""
    deadline = time.monotonic() + timeout
    while True:
        pid = read_pid(wd)
        port = read_robot_port(wd, pid) if pid else None
        if pid and port:
            return pid, port
        rc = child.poll()
        if rc is not None and (pid is None or not proc.exists(pid)):
            raise BackendError(
                f"Renode exited (status {rc}) before its robot port was up{_output_tail(wd)}"
            )
        if time.monotonic() > deadline:
            raise BackendError(
                f"Renode did not write {'its pid file' if pid is None else 'robot_port'} "
                f"within {timeout:g}s{_output_tail(wd)}"
            )
        await asyncio.sleep(0.05)


def is_standin(binary: str) -> bool:
    """emutui's Renode stand-in (``renode-standin``), which also speaks unix sockets."""
    return Path(binary).name == "renode-standin"


async def wait_for_robot_socket(
    wd: Path, child: subprocess.Popen[bytes], path: Path, timeout: float
) -> int:
    """The stand-in's pid (from --pid-file) once its robot unix socket exists."""
    deadline = time.monotonic() + timeout
    while True:
        pid = read_pid(wd)
        if pid and path.is_socket():
            return pid
        rc = child.poll()
        if rc is not None and (pid is None or not proc.exists(pid)):
            raise BackendError(
                f"Renode exited (status {rc}) before its robot socket was up{_output_tail(wd)}"
            )
        if time.monotonic() > deadline:
            raise BackendError(f"Renode did not open {path} within {timeout:g}s{_output_tail(wd)}")
        await asyncio.sleep(0.02)


async def _checked(client: RobotClient, command: str) -> str:
    try:
        return await client.execute(command)
    except KeywordFailed as e:
        raise BackendError(f"Renode refused {command!r}: {e}") from e


async def create_socket_terminal(client: RobotClient, name: str, attempts: int = 8) -> int:
    for _ in range(attempts):
        port = free_port()
        # telnetMode false: raw bytes. flushOnConnect is left at its default,
        # false: what the UART sent before the serial hub connected (or while a
        # restarted hub was away) is queued by Renode and delivered on connect.
        try:
            await client.execute(f'emulation CreateServerSocketTerminal {port} "{name}" false')
            return port
        except KeywordFailed as e:
            if "AddressAlreadyInUse" not in e.error:
                raise BackendError(f"Renode could not create terminal {name!r}: {e}") from e
    raise BackendError(f"Renode could not find a free port for terminal {name!r}")


def monitor_path(path: Path) -> str:
    """A path as a Monitor ``@path`` argument (a token that ends at whitespace)."""
    text = str(path)
    if any(ch.isspace() or ch in '";#' for ch in text):
        raise ConfigError(
            f"Renode's Monitor cannot take this path (whitespace, quote, ';' or '#'): {text}"
        )
    return f"@{text}"


async def build_machine(
    client: RobotClient, target: TargetConfig, wd: Path, name: str, unix: bool = False
) -> dict[str, Channel]:
    """The machine, its UART terminals and firmware, not yet started."""
    await _checked(client, f"logFile {monitor_path(wd / LOG_FILE)} true")
    platform = target.path_opt("platform")
    script = target.path_opt("script")
    machine = target.str_opt("machine") or name
    if platform is not None:
        await _checked(client, f'mach create "{machine}"')
        await _checked(client, f"machine LoadPlatformDescription {monitor_path(platform)}")
    elif script is not None:
        await _checked(client, f"include {monitor_path(script)}")
    channels: dict[str, Channel] = {}
    pty = target.str_opt("terminal", default="socket") == "pty"
    for uart in target.list_opt("uarts"):
        ch = uart_channel_name(uart)
        log = wd / f"serial-{ch}.log"
        if pty:
            # No hub on a pty: Renode's own file backend keeps everything the
            # UART sends, flushed at once, whether or not a client is attached.
            await _checked(client, f"{uart} CreateFileBackend {monitor_path(log)} true")
            path = wd / f"pty-{ch}"
            await _checked(client, f'emulation CreateUartPtyTerminal "{ch}" "{path}" true')
            channels[ch] = Channel(role="serial", kind="pty", path=str(path), log=str(log))
        elif unix:
            # The stand-in: a unix socket terminal (0600, in the instance dir or its
            # private short dir), so no other user can take the UART (Renode's own
            # socket terminals are TCP only).
            upath = socket_path(wd, f"serial-{ch}.renode.sock")
            await _checked(client, f'emulation CreateUnixSocketTerminal "{upath}" "{ch}"')
            channels[ch] = Channel(
                role="serial",
                kind="unix",
                path=str(socket_path(wd, f"serial-{ch}.sock")),
                log=str(log),
                upstream=str(upath),
            )
        else:
            # A socket terminal serves one client: the serial hub, which logs
            # with rotation and fans out to any number of emutui clients.
            port = await create_socket_terminal(client, ch)
            channels[ch] = Channel(
                role="serial",
                kind="unix",
                path=str(socket_path(wd, f"serial-{ch}.sock")),
                log=str(log),
                upstream=f"tcp:127.0.0.1:{port}",
            )
        await _checked(client, f"connector Connect {uart} {ch}")
    elf = target.path_opt("elf")
    if elf is not None:
        await _checked(client, f"sysbus LoadELF {monitor_path(elf)}")
    for cmd in target.list_opt("commands"):
        await _checked(client, cmd)
    return channels


async def run_or_hold(client: RobotClient, paused: bool) -> None:
    if paused:
        if monitor.parse_scalar(await _checked(client, "emulation IsStarted")) is True:
            await _checked(client, "pause")  # a .resc that ends in ``start``
    else:
        await _checked(client, "start")


async def start(target: TargetConfig, wd: Path, name: str, paused: bool) -> Handles:
    binary = resolve_binary(target.str_opt("binary", default="renode") or "renode")
    timeout = float(target.int_opt("start_timeout", default=60) or 60)
    # Fail before spawning anything if a path cannot be written as a Monitor argument.
    for p in (wd, target.path_opt("platform"), target.path_opt("script"), target.path_opt("elf")):
        if p is not None:
            monitor_path(p)
    tmp = wd / "tmp"
    tmp.mkdir(mode=0o700, exist_ok=True)
    # emutui's stand-in serves robot on a unix socket (0600) that only this user can
    # reach; a real Renode has only a TCP robot port, which every local user can.
    robot_sock = socket_path(wd, "robot.sock") if is_standin(binary) else None
    cmd = [
        binary,
        "--disable-gui",
        "--plain",
        "--hide-log",
        "--pid-file",
        str(wd / PID_FILE),
    ]
    if robot_sock is not None:
        cmd += ["--robot-server-socket", str(robot_sock)]
    else:
        cmd += ["--robot-server-port", "0"]
    config = target.path_opt("config")
    if config is not None:
        cmd += ["--config", str(config)]
    env = dict(os.environ, TMPDIR=str(tmp))
    child = proc.spawn_detached(cmd, wd, wd / "output.log", env=env)
    _children.append(child)
    pid: int | None = None
    handles: Handles | None = None
    try:
        if robot_sock is not None:
            pid = await wait_for_robot_socket(wd, child, robot_sock, timeout)
            client = RobotClient("127.0.0.1", 0, label=name, path=str(robot_sock))
            robot = Channel(role="robot", kind="unix", path=str(robot_sock))
        else:
            pid, port = await wait_for_port(wd, child, timeout)
            client = RobotClient("127.0.0.1", port, label=name)
            robot = Channel(role="robot", kind="tcp", host="127.0.0.1", port=port)
        version = monitor.clean(await client.execute("version"))  # the first call: retried once
        channels = await build_machine(client, target, wd, name, unix=robot_sock is not None)
        simulated = target.bool_opt("simulated", default=False) or STANDIN_MARK in version
        handles = Handles(
            name=name,
            backend="renode",
            target=target.name,
            pid=pid,
            pid_start=proc.start_time(pid),
            command=cmd,
            channels={
                "robot": robot,
                **channels,
            },
            simulated=simulated,
            options={
                "version": version,
                "pgid": child.pid,  # the session we started: Renode and any wrapper around it
                "log": str(wd / LOG_FILE),
                "machine": target.str_opt("machine") or name,
                "uarts": target.list_opt("uarts"),
            },
        )
        # The hub holds every UART before the first instruction runs.
        await serialhub.start_for(handles, wd)
        await run_or_hold(client, paused)
    except BaseException:
        if handles is not None:
            serialhub.stop_helpers(handles)
        await _kill(child, pid)
        raise
    handles.save(wd)
    return handles


async def _kill(child: subprocess.Popen[bytes], pid: int | None) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(child.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        for _ in range(100):
            if child.poll() is not None and (pid is None or not proc.exists(pid)):
                return
            await asyncio.sleep(0.03)


async def shutdown(
    host: str,
    port: int | None,
    pid: int,
    pid_start: int | None,
    pgid: int | None,
    path: str | None = None,
) -> None:
    """``stop_remote_server``, then SIGINT, SIGTERM, SIGKILL; returns when Renode is gone."""

    async def gone(seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            _reap()
            if not proc.is_alive(pid, pid_start):
                return True
            await asyncio.sleep(0.03)
        return not proc.is_alive(pid, pid_start)

    if not proc.is_alive(pid, pid_start):
        return
    if (port is not None or path) and not proc.is_stopped(pid):  # stopped: cannot answer
        try:
            await RobotClient(host, port or 0, timeout=3.0, path=path).call("stop_remote_server")
        except EmutuiError:
            pass  # it may close the connection as it goes; the signals below are the fallback
        if await gone(5.0):
            return
    for sig, wait in ((signal.SIGINT, 3.0), (signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        _signal(pid, pid_start, pgid, sig)
        if await gone(wait):
            return
    raise DisconnectedError(f"Renode (pid {pid}) did not exit, even after SIGKILL")


def _signal(pid: int, pid_start: int | None, pgid: int | None, sig: int) -> None:
    """Renode (and a wrapper around it in the session we started), only if provably ours."""
    if proc.is_stopped(pid):
        proc.signal_owned(pid, pid_start, signal.SIGCONT, group=pgid)
    proc.signal_owned(pid, pid_start, sig, group=pgid)


def _reap() -> None:
    for c in list(_children):
        if c.poll() is not None:
            _children.remove(c)
