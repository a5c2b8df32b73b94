"""The stand-in's robot port: Renode's XML-RPC remote library, to the byte (spec 1.3, 1.4).

Exactly three methods, a single-threaded server (Renode serves one request at
a time), the PASS/FAIL struct without ``output``, faults 1 and 2 with Renode's
texts, ANSI stripped from string returns, error text filtered to 0x20-0x7E
plus newline and prefixed with the exception type.
"""

from __future__ import annotations

import contextlib
import os
import re
import socketserver
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast
from xmlrpc.client import Fault
from xmlrpc.server import (
    SimpleXMLRPCDispatcher,
    SimpleXMLRPCRequestHandler,
    SimpleXMLRPCServer,
)

from emutui.sim.renode.emulation import LEVELS, PL011, Emulation
from emutui.sim.renode.monitor import Monitor

_ANSI = re.compile(r"(?:\x1B[@-_]|[\x80-\x9F])[0-?]*[ -/]*[@-~]")
_NAMED = re.compile(r"^([a-zA-Z0-9_]+)=(.+)", re.DOTALL)
REQUIRED = object()


class KeywordError(Exception):
    """Becomes a FAIL struct: ``<type>: <message>``."""

    def __init__(self, message: str, type_name: str = "KeywordException") -> None:
        super().__init__(message)
        self.type_name = type_name


def strip_unsafe(s: str) -> str:
    return "".join(ch for ch in s if ch == "\n" or 0x20 <= ord(ch) <= 0x7E)


class _Quiet(SimpleXMLRPCRequestHandler):
    rpc_paths = ()  # Renode answers on any path

    def log_message(self, format: str, *args: Any) -> None:
        return None


class _QuietUnix(_Quiet):
    disable_nagle_algorithm = False  # TCP_NODELAY: not on a unix socket

    def address_string(self) -> str:
        return "unix"


class UnixXMLRPCServer(socketserver.UnixStreamServer, SimpleXMLRPCDispatcher):
    """The robot port on a unix socket (0600): a stand-in extension, not a Renode option
    (``--robot-server-socket PATH``), so that no other local user can drive the board."""

    def __init__(self, path: str) -> None:
        SimpleXMLRPCDispatcher.__init__(self, allow_none=False, encoding=None)
        self.logRequests = False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        socketserver.UnixStreamServer.__init__(self, path, _QuietUnix)
        os.chmod(path, 0o600)


class RobotServer:
    def __init__(
        self, emulation: Emulation, monitor: Monitor, port: int, path: str | None = None
    ) -> None:
        self.em = emulation
        self.monitor = monitor
        self.stopping = False
        self.testers: dict[str, int] = {}  # uart name -> id
        self.tester_pos: dict[int, int] = {}
        self.tester_uart: dict[int, PL011] = {}
        self.default_tester: int | None = None
        self.log_tester: float | None = None
        self.log_pos = 0
        self.server: SimpleXMLRPCServer | UnixXMLRPCServer
        if path is not None:
            self.server = UnixXMLRPCServer(path)
            self.server.timeout = 0.2
            self.port = 0
        else:
            self.server = self._bind(port)
            self.port = self.server.server_address[1]
        self.server.register_function(self.get_keyword_names, "get_keyword_names")
        self.server.register_function(cast(Any, self.run_keyword), "run_keyword")
        self.server.register_function(self.stop_remote_server, "stop_remote_server")
        self.keywords: dict[str, tuple[list[tuple[str, str, Any]], Callable[..., Any]]] = {
            "ExecuteCommand": (
                [("command", "str", REQUIRED), ("machine", "str", None)],
                self.kw_execute_command,
            ),
            "ExecuteScript": ([("path", "str", REQUIRED)], self.kw_execute_script),
            "StartEmulation": ([], self.kw_start),
            "ResetEmulation": ([], self.kw_reset_emulation),
            "StopRemoteServer": ([], self.kw_stop),
            "CreateTerminalTester": (
                [
                    ("uart", "str", REQUIRED),
                    ("timeout", "float", None),
                    ("machine", "str", None),
                    ("endLineOption", "str", None),
                    ("defaultPauseEmulation", "bool", None),
                    ("defaultWaitForEcho", "bool", None),
                    ("defaultMatchNextLine", "bool", None),
                    ("binaryMode", "bool", False),
                ],
                self.kw_create_tester,
            ),
            "WaitForLineOnUart": (
                [
                    ("content", "str", REQUIRED),
                    ("timeout", "float", None),
                    ("testerId", "int", None),
                    ("treatAsRegex", "bool", False),
                    ("includeUnfinishedLine", "bool", False),
                    ("pauseEmulation", "bool", None),
                    ("matchNextLine", "bool", None),
                ],
                self.kw_wait_line,
            ),
            "WaitForNextLineOnUart": (
                [
                    ("timeout", "float", None),
                    ("testerId", "int", None),
                    ("pauseEmulation", "bool", None),
                ],
                self.kw_wait_next_line,
            ),
            "WriteToUart": (
                [("content", "str", REQUIRED), ("testerId", "int", None)],
                self.kw_write,
            ),
            "WriteLineToUart": (
                [
                    ("content", "str", ""),
                    ("testerId", "int", None),
                    ("waitForEcho", "bool", None),
                    ("pauseEmulation", "bool", None),
                ],
                self.kw_write_line,
            ),
            "CreateLogTester": (
                [("timeout", "float", REQUIRED), ("defaultPauseEmulation", "bool", None)],
                self.kw_log_tester,
            ),
            "WaitForLogEntry": (
                [
                    ("pattern", "str", REQUIRED),
                    ("timeout", "float", None),
                    ("keep", "bool", False),
                    ("treatAsRegex", "bool", False),
                    ("pauseEmulation", "bool", None),
                    ("level", "str", None),
                    ("startEmulation", "bool", True),
                ],
                self.kw_wait_log,
            ),
        }

    @staticmethod
    def _bind(port: int) -> SimpleXMLRPCServer:
        # Port 0: Renode scans 49152..65535 in order and keeps the first that binds.
        candidates = range(49152, 65536) if port == 0 else [port]
        for p in candidates:
            try:
                srv = SimpleXMLRPCServer(
                    ("127.0.0.1", p), requestHandler=_Quiet, logRequests=False, allow_none=False
                )
            except OSError:
                continue
            srv.timeout = 0.2
            return srv
        raise OSError(
            f"Could not start the HTTP server on {'any port' if port == 0 else f'port {port}'}"
        )

    def serve(self) -> None:
        while not self.stopping and not self.monitor.quit_requested:
            self.server.handle_request()
        self.server.server_close()

    # --------------------------------------------------------------- XML-RPC methods

    def get_keyword_names(self) -> list[str]:
        return list(self.keywords)

    def stop_remote_server(self) -> bool:
        self.stopping = True
        return True

    def run_keyword(self, name: str, args: list[Any]) -> dict[str, Any]:
        if name not in self.keywords:
            raise Fault(1, f'Keyword "{name}" not found')
        if not isinstance(args, list):
            raise Fault(
                2, f'Arguments types do not match any available keyword "{name}" : [{args}]'
            )
        params, fn = self.keywords[name]
        try:
            bound = self._bind_args(name, params, args)
        except ValueError:
            raise Fault(
                2,
                f'Arguments types do not match any available keyword "{name}" : '
                f"[{', '.join(str(a) for a in args)}]",
            ) from None
        try:
            result = fn(**bound)
        except KeywordError as e:
            return {
                "status": "FAIL",
                "error": strip_unsafe(f"{e.type_name}: {e}\n"),
                "traceback": strip_unsafe(
                    f"{e.type_name}: {e}\n   at Antmicro.Renode.RobotFramework.{name}\n"
                ),
            }
        if result is None:
            return {"status": "PASS"}
        if isinstance(result, str):
            result = _ANSI.sub("", result)
        return {"status": "PASS", "return": result}

    def _bind_args(
        self, name: str, params: list[tuple[str, str, Any]], args: list[Any]
    ) -> dict[str, Any]:
        # ExecuteCommand's string[] overload: plain fragments are joined with spaces.
        if name == "ExecuteCommand" and len(args) > 1 and all(isinstance(a, str) for a in args):
            m = _NAMED.match(args[-1])
            if not (m and m.group(1) == "machine"):
                args = [" ".join(args)]
        names = [p[0] for p in params]
        out: dict[str, Any] = {}
        positional = True
        for i, a in enumerate(args):
            m = _NAMED.match(a) if isinstance(a, str) else None
            if m and m.group(1) in names:
                positional = False
                out[m.group(1)] = m.group(2)
            elif not positional or i >= len(params):
                raise ValueError("positional after named, or too many")
            else:
                out[params[i][0]] = a
        for pname, kind, default in params:
            if pname not in out:
                if default is REQUIRED:
                    raise ValueError(f"missing {pname}")
                out[pname] = default
            elif out[pname] is not None:
                out[pname] = self._convert(out[pname], kind)
        return out

    @staticmethod
    def _convert(v: Any, kind: str) -> Any:
        if kind == "str":
            return v if isinstance(v, str) else str(v)
        if kind == "bool":
            if isinstance(v, bool):
                return v
            if str(v).lower() in ("true", "false"):
                return str(v).lower() == "true"
            raise ValueError(v)
        if kind == "int":
            return int(v, 0) if isinstance(v, str) else int(v)
        if kind == "float":
            return float(v)
        return v

    # ----------------------------------------------------------------- keywords

    def _monitor(self, command: str) -> str:
        text, errors = self.monitor.execute(command)
        if errors:
            raise KeywordError(f"Could not execute command '{command}': {errors[0]}")
        return text

    def kw_execute_command(self, command: str, machine: str | None) -> str:
        if machine is not None:
            with self.em.lock:
                if machine not in self.em.machines:
                    raise KeywordError(
                        f"Could not execute command '{command}': Machine {machine} not found."
                    )
                self.em.current = self.em.machines[machine]
        return self._monitor(command)

    def kw_execute_script(self, path: str) -> str:
        return self._monitor(f"include @{path}")

    def kw_start(self) -> None:
        self._monitor("start")

    def kw_reset_emulation(self) -> None:
        with self.em.lock:
            self.em.clear()
        self.testers.clear()
        self.tester_pos.clear()
        self.tester_uart.clear()
        self.default_tester = None

    def kw_stop(self) -> None:
        self.stopping = True

    def kw_create_tester(
        self,
        uart: str,
        timeout: float | None,
        machine: str | None,
        endLineOption: str | None,
        defaultPauseEmulation: bool | None,
        defaultWaitForEcho: bool | None,
        defaultMatchNextLine: bool | None,
        binaryMode: bool,
    ) -> int:
        with self.em.lock:
            m = self.em.machines.get(machine) if machine else self.em.current
            dev = m.resolve(uart) if m else None
            if not isinstance(dev, PL011):
                raise KeywordError(f"Peripheral '{uart}' not found or is not a UART.")
            if uart in self.testers:
                return self.testers[uart]
            tid = len(self.testers)
            self.testers[uart] = tid
            self.tester_uart[tid] = dev
            with self.em.uart_cond:
                self.tester_pos[tid] = len(dev.tx_lines)
            return tid

    def _tester(self, tid: int | None) -> int:
        if tid is None:
            if not self.tester_uart:
                raise KeywordError("There are no testers available.")
            if len(self.tester_uart) == 1:
                return next(iter(self.tester_uart))
            if self.default_tester is None:
                raise KeywordError(
                    "There is more than one tester available - please specify "
                    "ID of the desired tester."
                )
            return self.default_tester
        if tid not in self.tester_uart:
            raise KeywordError(f"Tester for given ID={tid} was not found.")
        return tid

    def _ensure_started(self) -> None:
        # Renode's wait keywords start a paused emulation (TerminalTester.WaitFor).
        with self.em.lock:
            if not self.em.is_started():
                self.em.start_all()

    def _wait_uart(
        self,
        tid: int,
        match: Callable[[str], re.Match[str] | bool | None],
        timeout: float | None,
        include_partial: bool = False,
    ) -> dict[str, Any]:
        uart = self.tester_uart[tid]
        self._ensure_started()
        deadline = time.monotonic() + (8.0 if timeout is None else timeout)
        with self.em.uart_cond:
            while True:
                lines = uart.tx_lines
                pos = self.tester_pos[tid]
                candidates = [*lines[pos:], *([uart.tx_partial] if include_partial else [])]
                for i, line in enumerate(candidates):
                    hit = match(line)
                    if hit:
                        self.tester_pos[tid] = min(pos + i + 1, len(lines))
                        groups = list(hit.groups()) if isinstance(hit, re.Match) else []
                        return {
                            "Line": line,
                            "Timestamp": uart.machine.virtual_time() * 1000.0,
                            "Groups": [g or "" for g in groups],
                        }
                left = deadline - time.monotonic()
                if left <= 0:
                    report = "\n".join(lines[-50:])
                    raise KeywordError(
                        f"Terminal tester failed!\n\nFull report:\n{report}",
                        "InvalidOperationException",
                    )
                self.em.uart_cond.wait(left)

    def kw_wait_line(
        self,
        content: str,
        timeout: float | None,
        testerId: int | None,
        treatAsRegex: bool,
        includeUnfinishedLine: bool,
        pauseEmulation: bool | None,
        matchNextLine: bool | None,
    ) -> dict[str, Any]:
        tid = self._tester(testerId)
        if treatAsRegex:
            rx = re.compile(content)
            return self._wait_uart(tid, rx.search, timeout, includeUnfinishedLine)
        return self._wait_uart(tid, lambda s: content in s, timeout, includeUnfinishedLine)

    def kw_wait_next_line(
        self, timeout: float | None, testerId: int | None, pauseEmulation: bool | None
    ) -> dict[str, Any]:
        return self._wait_uart(self._tester(testerId), lambda s: True, timeout)

    def kw_write(self, content: str, testerId: int | None) -> dict[str, Any]:
        self.tester_uart[self._tester(testerId)].receive(content.encode("latin-1", "replace"))
        return {"Line": "", "Timestamp": 0.0}

    def kw_write_line(
        self,
        content: str,
        testerId: int | None,
        waitForEcho: bool | None,
        pauseEmulation: bool | None,
    ) -> dict[str, Any] | None:
        tid = self._tester(testerId)
        self.tester_uart[tid].receive((content + "\r").encode("latin-1", "replace"))
        if waitForEcho is False:
            return None
        return self._wait_uart(tid, lambda s: content in s, None)

    def kw_log_tester(self, timeout: float, defaultPauseEmulation: bool | None) -> None:
        self.log_tester = timeout
        self.log_pos = len(self.em.log.history)

    def kw_wait_log(
        self,
        pattern: str,
        timeout: float | None,
        keep: bool,
        treatAsRegex: bool,
        pauseEmulation: bool | None,
        level: str | None,
        startEmulation: bool,
    ) -> str:
        if self.log_tester is None:
            raise KeywordError(
                "Log tester is not available. Create it with the `CreateLogTester` keyword"
            )
        if startEmulation:
            self._ensure_started()
        rx = re.compile(pattern if treatAsRegex else re.escape(pattern))
        want = LEVELS.index(level.upper()) if level and level.upper() in LEVELS else None
        deadline = time.monotonic() + (self.log_tester if timeout is None else timeout)
        log = self.em.log
        with log.cond:
            while True:
                entries = list(log.history)
                for i in range(min(self.log_pos, len(entries)), len(entries)):
                    e = entries[i]
                    text = f"{e.obj}: {e.message}" if e.obj else e.message
                    if (want is None or LEVELS.index(e.level) == want) and rx.search(text):
                        if not keep:
                            self.log_pos = i + 1
                        return text
                left = deadline - time.monotonic()
                if left <= 0:
                    shown = "\n".join(log.format(e) for e in entries[-1000:])
                    raise KeywordError(
                        f'Expected pattern "{pattern}" did not appear in the log\n'
                        f"Last messages:\n{shown}"
                    )
                log.cond.wait(left)


def serve_in_thread(server: RobotServer) -> threading.Thread:
    t = threading.Thread(target=server.serve, daemon=True, name="robot")
    t.start()
    return t


def robot_port_file(tmp_dir: Path, port: int) -> None:
    tmp_dir.mkdir(parents=True, exist_ok=True)
    part = tmp_dir / ".robot_port.tmp"
    part.write_text(str(port))  # decimal, no newline, as Renode writes it
    part.replace(tmp_dir / "robot_port")
