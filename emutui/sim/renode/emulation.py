"""The stand-in's emulated world: machines, peripherals, UART terminals, a log, a firmware.

Everything here is driven from two kinds of thread: the single XML-RPC thread
(as in Renode, one request at a time) and small I/O threads for socket
terminals and the firmware clock. One re-entrant lock guards the whole state,
which is simple and, at the stand-in's scale, never contended for long.
"""

from __future__ import annotations

import collections
import datetime as _dt
import os
import re
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LEVELS = ["NOISY", "DEBUG", "INFO", "WARNING", "ERROR"]
_LEVEL_COLORS = {
    "NOISY": "\x1b[90m",
    "DEBUG": "\x1b[37m",
    "INFO": "\x1b[32m",
    "WARNING": "\x1b[33m",
    "ERROR": "\x1b[31m",
}

# Renode's banner format: "{AssemblyName}, version {M.m.b} ({InformationalVersion})".
# The informational version names the stand-in so emutui (and people) can tell.
VERSION = "Renode, version 1.16.1 (1.16.1+20260214emutui-standin)"
TICK_SECONDS = float(os.environ.get("EMUTUI_RENODE_TICK", "2.0"))


class MonitorError(Exception):
    """Text Renode writes to the Monitor's error stream (a FAIL over robot)."""


# --------------------------------------------------------------------------- log


@dataclass
class LogEntry:
    level: str
    obj: str
    message: str
    when: float


class Logger:
    """Renode's log in its v1.16.1 format: ``HH:mm:ss.ffff [LEVEL] obj: msg``."""

    def __init__(self, to_stdout: bool, plain: bool) -> None:
        self.to_stdout = to_stdout
        self.plain = plain
        self.level = 2  # INFO
        self.file: Any = None
        self.flush_file = False
        self.history: collections.deque[LogEntry] = collections.deque(maxlen=10000)
        self.cond = threading.Condition()

    @staticmethod
    def format(e: LogEntry) -> str:
        t = _dt.datetime.fromtimestamp(e.when)
        stamp = f"{t:%H:%M:%S}.{t.microsecond // 100:04d}"
        who = f"{e.obj}: " if e.obj else ""
        return f"{stamp} [{e.level}] {who}{e.message}"

    def log(self, level: str, obj: str, message: str) -> None:
        if LEVELS.index(level) < self.level:
            return
        e = LogEntry(level, obj, message, time.time())
        line = self.format(e)
        with self.cond:
            self.history.append(e)
            self.cond.notify_all()
        if self.to_stdout:
            if self.plain:
                print(line, flush=True)
            else:
                print(f"{_LEVEL_COLORS[level]}{line}\x1b[0m", flush=True)
        if self.file is not None:
            try:
                self.file.write(line + "\n")
                if self.flush_file:
                    self.file.flush()
            except (OSError, ValueError):
                self.file = None

    def set_file(self, path: Path, flush: bool) -> None:
        # Renode rotates an existing file rather than overwriting it (SequencedFilePath).
        if path.exists():
            n = 1
            while path.with_name(f"{path.name}.{n}").exists():
                n += 1
            os.replace(path, path.with_name(f"{path.name}.{n}"))
        if self.file is not None:
            self.file.close()
        self.file = path.open("a", encoding="utf-8")
        self.flush_file = flush


# --------------------------------------------------------------------- peripherals


@dataclass
class Prop:
    type: str  # .NET short type name: UInt32, Int64, Boolean, String
    get: Callable[[], Any]
    set: Callable[[Any], None] | None = None


class Peripheral:
    """A device on the system bus, with sparse byte-addressed register storage."""

    type_name = "Peripheral"
    default_size = 0x1000
    methods: list[str] = [
        "Void Reset ()",
        "Byte ReadByte (Int64 offset)",
        "UInt32 ReadDoubleWord (Int64 offset)",
        "UInt16 ReadWord (Int64 offset)",
        "Void WriteByte (Int64 offset, Byte value)",
        "Void WriteDoubleWord (Int64 offset, UInt32 value)",
        "Void WriteWord (Int64 offset, UInt16 value)",
    ]

    def __init__(self, machine: Machine, name: str, options: dict[str, str]) -> None:
        self.machine = machine
        self.name = name
        self.options = options
        self.ranges: list[tuple[int, int]] = []  # (start, end inclusive)
        self.notes: list[str] = []
        self.mem: dict[int, int] = {}
        self.props: dict[str, Prop] = {}
        self.reset()

    def reset(self) -> None:
        self.mem = dict(self.initial_bytes())

    def initial_bytes(self) -> dict[int, int]:
        return {}

    def read(self, offset: int, width: int) -> int:
        return int.from_bytes(bytes(self.mem.get(offset + i, 0) for i in range(width)), "little")

    def write(self, offset: int, width: int, value: int) -> None:
        for i, b in enumerate(value.to_bytes(width, "little")):
            self.mem[offset + i] = b


class Memory(Peripheral):
    type_name = "MappedMemory"

    def __init__(self, machine: Machine, name: str, options: dict[str, str]) -> None:
        super().__init__(machine, name, options)
        self.props["Size"] = Prop("Int64", lambda: self.size)

    @property
    def size(self) -> int:
        return int(self.options.get("size", "0x10000"), 0)


class PL011(Peripheral):
    """A PL011-like UART: DR at 0x0 transmits, FR at 0x18, the ARM PrimeCell ids at 0xFE0."""

    type_name = "PL011"
    methods = [
        *Peripheral.methods,
        "Void CreateFileBackend (String path, Boolean immediateFlush = False)",
        "Void WriteChar (Byte value)",
    ]

    def __init__(self, machine: Machine, name: str, options: dict[str, str]) -> None:
        self.outputs: list[Callable[[bytes], None]] = []
        self.rx_pending = bytearray()
        self.line_open_since = 0.0  # when an unfinished input line was last typed into
        self.tx_lines: list[str] = []  # completed lines, for terminal testers
        self.tx_partial = ""
        self.baud = 115200
        self.loopback = False
        super().__init__(machine, name, options)
        self.props["BaudRate"] = Prop("UInt32", lambda: self.baud)
        self.props["Loopback"] = Prop("Boolean", lambda: self.loopback, self._set_loopback)

    def _set_loopback(self, v: Any) -> None:
        self.loopback = bool(v)

    def initial_bytes(self) -> dict[int, int]:
        ids = [0x11, 0x10, 0x34, 0x00, 0x0D, 0xF0, 0x05, 0xB1]
        out = {0xFE0 + 4 * i: v for i, v in enumerate(ids)}
        out[0x18] = 0x90  # FR: TXFE | RXFE
        out[0x30] = 0x01  # CR: UARTEN
        return out

    def write(self, offset: int, width: int, value: int) -> None:
        if offset == 0:
            self.transmit(bytes([value & 0xFF]))
            return
        super().write(offset, width, value)

    def transmit(self, data: bytes) -> None:
        """Bytes the guest sends: to every backend (terminal, file), and to the testers."""
        for out in list(self.outputs):
            out(data)
        text = self.tx_partial + data.decode("latin-1")
        *done, self.tx_partial = re.split(r"\r\n|\n|\r", text) if text else [""]
        with self.machine.emulation.uart_cond:
            self.tx_lines.extend(done)
            self.machine.emulation.uart_cond.notify_all()

    def receive(self, data: bytes) -> None:
        """Bytes from a terminal: the firmware sees them while the machine runs."""
        with self.machine.emulation.lock:
            self.rx_pending += data
            if self.machine.running:
                self.machine.emulation.lock.notify_firmware()


class Timer(Peripheral):
    type_name = "ARM_SP804_Timer"

    def __init__(self, machine: Machine, name: str, options: dict[str, str]) -> None:
        self.frequency = int(options.get("frequency", "1000000"), 0)
        self.enabled = True
        super().__init__(machine, name, options)
        self.props["Frequency"] = Prop("Int64", lambda: self.frequency, self._set_freq)
        self.props["Enabled"] = Prop("Boolean", lambda: self.enabled, self._set_enabled)
        self.props["Value"] = Prop("UInt64", self.value)

    def _set_freq(self, v: Any) -> None:
        self.frequency = int(v)

    def _set_enabled(self, v: Any) -> None:
        self.enabled = bool(v)

    def value(self) -> int:
        return int(self.machine.virtual_time() * self.frequency) & 0xFFFFFFFFFFFFFFFF

    def read(self, offset: int, width: int) -> int:
        if offset == 4:  # the current counter value, so a register visibly changes
            return self.value() & ((1 << (8 * width)) - 1)
        return super().read(offset, width)


class Cpu(Peripheral):
    type_name = "CortexM"
    default_size = 0
    methods = ["Void Reset ()", "Void Step (Int32 count = 1)"]

    def __init__(self, machine: Machine, name: str, options: dict[str, str]) -> None:
        self.pc = 0
        self.halted = False
        super().__init__(machine, name, options)
        self.props["PC"] = Prop("RegisterValue", lambda: self.pc, self._set_pc)
        self.props["IsHalted"] = Prop("Boolean", lambda: self.halted, self._set_halted)
        self.props["Model"] = Prop("String", lambda: options.get("cpuType", "cortex-m4").strip('"'))

    def _set_pc(self, v: Any) -> None:
        self.pc = int(v) & 0xFFFFFFFF

    def _set_halted(self, v: Any) -> None:
        self.halted = bool(v)


class Generic(Peripheral):
    pass


TYPES: dict[str, type[Peripheral]] = {
    "MappedMemory": Memory,
    "PL011": PL011,
    "ARM_SP804_Timer": Timer,
    "CortexM": Cpu,
}


class SystemBus(Peripheral):
    type_name = "SystemBus"
    default_size = 0
    methods = [
        "Byte ReadByte (UInt64 address, ICPU context = null)",
        "Byte[] ReadBytes (UInt64 address, Int32 count, ICPU context = null)",
        "UInt32 ReadDoubleWord (UInt64 address, ICPU context = null)",
        "UInt16 ReadWord (UInt64 address, ICPU context = null)",
        "Void LoadELF (ReadFilePath fileName, Boolean useVirtualAddress = False, ICPU cpu = null)",
        "Void WriteByte (UInt64 address, Byte value, ICPU context = null)",
        "Void WriteDoubleWord (UInt64 address, UInt32 value, ICPU context = null)",
        "Void WriteWord (UInt64 address, UInt16 value, ICPU context = null)",
    ]

    def find(self, addr: int) -> tuple[Peripheral, int] | None:
        for p in self.machine.peripherals.values():
            for start, end in p.ranges:
                if start <= addr <= end:
                    return p, addr - start
        return None

    def bus_read(self, addr: int, width: int) -> int:
        hit = self.find(addr)
        if hit is None:
            self.machine.emulation.log.log(
                "WARNING",
                "sysbus",
                f"{_access_name(width, 'Read')} from non existing peripheral at 0x{addr:X}.",
            )
            return 0
        return hit[0].read(hit[1], width)

    def bus_write(self, addr: int, width: int, value: int) -> None:
        hit = self.find(addr)
        if hit is None:
            self.machine.emulation.log.log(
                "WARNING",
                "sysbus",
                f"{_access_name(width, 'Write')} to non existing peripheral at 0x{addr:X}, "
                f"value 0x{value:X}.",
            )
            return
        hit[0].write(hit[1], width, value)


def _access_name(width: int, verb: str) -> str:
    return f"{verb}{ {1: 'Byte', 2: 'Word', 4: 'DoubleWord', 8: 'QuadWord'}[width] }"


# ------------------------------------------------------------------------ machine


class Machine:
    def __init__(self, emulation: Emulation, name: str) -> None:
        self.emulation = emulation
        self.name = name
        self.platform = ""
        self.peripherals: dict[str, Peripheral] = {}
        self.sysbus = SystemBus(self, "sysbus", {})
        self.running = False
        self._virt = 0.0
        self._run_since = 0.0
        self.banner_due = True
        self.ticks = 0
        self.next_tick = 0.0

    def virtual_time(self) -> float:
        if self.running:
            return self._virt + time.monotonic() - self._run_since
        return self._virt

    def start(self) -> None:
        if not self.running:
            self.running = True
            self._run_since = time.monotonic()
            self.next_tick = time.monotonic() + TICK_SECONDS
            self.emulation.log.log("INFO", self.name, "Machine started.")

    def pause(self) -> None:
        if self.running:
            self._virt = self.virtual_time()
            self.running = False
            self.emulation.log.log("INFO", self.name, "Machine paused.")

    def reset(self) -> None:
        for p in self.peripherals.values():
            p.reset()
        self.banner_due = True
        self.ticks = 0
        self.emulation.log.log("INFO", self.name, "Machine reset.")
        self.emulation.log.log(
            "WARNING",
            self.name,
            f"No action for reset - macro {self.name}.reset is not registered.",
        )

    def uarts(self) -> list[PL011]:
        return [p for p in self.peripherals.values() if isinstance(p, PL011)]

    def resolve(self, name: str) -> Peripheral | None:
        """A Monitor name: ``sysbus``, ``sysbus.uart0``, or ``uart0`` (``using sysbus``)."""
        if name == "sysbus":
            return self.sysbus
        short = name[len("sysbus.") :] if name.startswith("sysbus.") else name
        return self.peripherals.get(short)

    def load_platform(self, text: str, source: str) -> None:
        """A subset of Renode's .repl: ``name: Type @ sysbus ADDR``, indented ``key: value``."""
        pending: list[tuple[str, str, str, dict[str, str]]] = []
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.split("//")[0].rstrip()
            if not line.strip():
                continue
            if line[0] in " \t":
                if not pending:
                    raise MonitorError(f"Error E00: Syntax error, {source}:{lineno}")
                key, _, value = line.strip().partition(":")
                if value:
                    pending[-1][3][key.strip()] = value.strip()
                continue
            m = re.match(r"^([A-Za-z_][\w]*)\s*:\s*([\w.]+)\s*(?:@\s*sysbus\s*(.*))?$", line)
            if not m:
                raise MonitorError(f"Error E00: Syntax error, {source}:{lineno}: {line.strip()}")
            pending.append((m.group(1), m.group(2), (m.group(3) or "").strip(), {}))
        slot = 0
        for name, typ, where, opts in pending:
            cls = TYPES.get(typ.rsplit(".", 1)[-1], Generic)
            p = cls(self, name, opts)
            if cls is Generic:
                p.type_name = typ.rsplit(".", 1)[-1]
            if where:
                rng = re.match(r"^<\s*(\w+)\s*,\s*(\+?)\s*(\w+)\s*>$", where)
                if rng:
                    start = int(rng.group(1), 0)
                    n = int(rng.group(3), 0)
                    p.ranges.append((start, start + n - 1 if rng.group(2) else n))
                else:
                    start = int(where, 0)
                    size = p.size if isinstance(p, Memory) else cls.default_size or 0x1000
                    p.ranges.append((start, start + size - 1))
            elif isinstance(p, Cpu):
                p.notes.append(f"Slot: {slot}")
                slot += 1
            self.peripherals[name] = p
        self.platform = source

    def load_elf(self, path: Path) -> None:
        data = path.read_bytes()
        if data[:4] != b"\x7fELF":
            raise MonitorError(
                f"There was an error executing command 'sysbus LoadELF @{path}': "
                f"Given file is not a valid ELF file."
            )
        is64 = data[4] == 2
        if data[5] != 1:
            raise MonitorError("Only little-endian ELF files are supported by the stand-in.")
        if is64:
            entry, phoff = struct.unpack_from("<QQ", data, 24)
            phentsize, phnum = struct.unpack_from("<HH", data, 54)
        else:
            entry, phoff = struct.unpack_from("<II", data, 24)
            phentsize, phnum = struct.unpack_from("<HH", data, 42)
        for i in range(phnum):
            off = phoff + i * phentsize
            if is64:
                ptype, _flags, poff, _vaddr, paddr, filesz, memsz, _al = struct.unpack_from(
                    "<IIQQQQQQ", data, off
                )
            else:
                ptype, poff, _vaddr, paddr, filesz, memsz, _flags, _al = struct.unpack_from(
                    "<IIIIIIII", data, off
                )
            if ptype != 1 or memsz == 0:
                continue
            self.emulation.log.log(
                "INFO", "sysbus", f"Loading segment of {memsz} bytes length at 0x{paddr:X}."
            )
            seg = data[poff : poff + filesz] + bytes(memsz - filesz)
            for j, b in enumerate(seg):
                self.sysbus.bus_write(paddr + j, 1, b)
        for p in self.peripherals.values():
            if isinstance(p, Cpu):
                p.pc = entry & 0xFFFFFFFF
                self.emulation.log.log("INFO", p.name, f"Setting PC value to 0x{entry:X}.")


# ----------------------------------------------------------------------- terminals


class SocketTerminal:
    """``emulation CreateServerSocketTerminal``: one client at a time; bytes queue until then."""

    def __init__(
        self,
        emulation: Emulation,
        name: str,
        port: int,
        telnet: bool,
        flush_on_connect: bool,
        path: str | None = None,
    ) -> None:
        self.emulation = emulation
        self.name = name
        self.telnet = telnet
        self.flush_on_connect = flush_on_connect
        self.uart: PL011 | None = None
        self.queue = bytearray()
        self.client: socket.socket | None = None
        self.lock = threading.Lock()
        self.path = path
        if path is not None:
            # The stand-in's own extension (CreateUnixSocketTerminal): a 0600 unix
            # socket, so only the owner (emutui's serial hub) can take the UART.
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            if os.path.exists(path) or os.path.islink(path):
                os.unlink(path)
            self.sock.bind(path)
            os.chmod(path, 0o600)
            self.port = 0
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # Real Renode binds 0.0.0.0; the stand-in keeps to loopback.
            self.sock.bind(("127.0.0.1", port))
            self.port = self.sock.getsockname()[1]
        self.sock.listen(1)
        threading.Thread(target=self._accept, daemon=True, name=f"term-{name}").start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.client = conn
                if self.telnet:
                    conn.sendall(b"\xff\xfd\x00\xff\xfb\x01\xff\xfb\x03\xff\xfc\x22")
                if self.queue and not self.flush_on_connect:
                    try:
                        conn.sendall(bytes(self.queue))
                    except OSError:
                        pass
                self.queue.clear()
            self._read(conn)
            with self.lock:
                self.client = None
            conn.close()

    def _read(self, conn: socket.socket) -> None:
        while True:
            try:
                data = conn.recv(4096)
            except OSError:
                return
            if not data:
                return
            if self.telnet:
                data = re.sub(rb"\xff[\xfb-\xfe].|\xff[\xf0-\xfa]", b"", data).replace(
                    b"\xff\xff", b"\xff"
                )
            if self.uart is not None and data:
                self.uart.receive(data)

    def send(self, data: bytes) -> None:
        if self.telnet:
            data = data.replace(b"\xff", b"\xff\xff")
        with self.lock:
            if self.client is None:
                self.queue += data
                del self.queue[: max(0, len(self.queue) - (1 << 20))]
                return
            try:
                self.client.sendall(data)
            except OSError:
                pass

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
        if self.path is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass
        with self.lock:
            if self.client is not None:
                try:
                    self.client.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class PtyTerminal:
    """``emulation CreateUartPtyTerminal "name" "/path"``: a pty, its slave symlinked at path."""

    def __init__(self, emulation: Emulation, name: str, path: Path, force: bool) -> None:
        if path.exists() or path.is_symlink():
            if not force:
                raise MonitorError(
                    f"There was an error executing command: File {path} already exists."
                )
            path.unlink()
        self.name = name
        self.path = path
        self.uart: PL011 | None = None
        self.master, slave = os.openpty()
        import tty

        tty.setraw(slave)
        os.symlink(os.ttyname(slave), path)
        self.slave = slave
        threading.Thread(target=self._read, daemon=True, name=f"pty-{name}").start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            if not data:
                return
            if self.uart is not None:
                self.uart.receive(data)

    def send(self, data: bytes) -> None:
        try:
            os.write(self.master, data)
        except OSError:
            pass

    def close(self) -> None:
        self.path.unlink(missing_ok=True)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


class FileBackend:
    def __init__(self, path: Path, flush: bool) -> None:
        self.f = path.open("ab")
        self.flush = flush

    def __call__(self, data: bytes) -> None:
        try:
            self.f.write(data)
            if self.flush:
                self.f.flush()
        except (OSError, ValueError):
            pass


# ---------------------------------------------------------------------- emulation


class _StateLock:
    """The emulation's lock, with a way to wake the firmware thread."""

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.RLock())

    def __enter__(self) -> None:
        self.cond.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.cond.__exit__(*exc)

    def notify_firmware(self) -> None:
        self.cond.notify_all()


@dataclass
class Emulation:
    log: Logger
    machines: dict[str, Machine] = field(default_factory=dict)
    current: Machine | None = None
    externals: dict[str, SocketTerminal | PtyTerminal] = field(default_factory=dict)
    lock: _StateLock = field(default_factory=_StateLock)
    uart_cond: threading.Condition = field(default_factory=threading.Condition)
    counter: int = 0

    def __post_init__(self) -> None:
        threading.Thread(target=self._firmware, daemon=True, name="firmware").start()

    started: bool = False  # Renode keeps this flag on the Emulation, not per machine

    def is_started(self) -> bool:
        return self.started

    def start_all(self) -> None:
        self.started = True
        for m in self.machines.values():
            m.start()
        self.lock.notify_firmware()

    def pause_all(self) -> None:
        self.started = False
        for m in self.machines.values():
            m.pause()

    def create_machine(self, name: str | None) -> Machine:
        if name is None:
            name = f"machine-{self.counter}"
        if name in self.machines:
            raise MonitorError(f"Machine with name {name} already exists.")
        self.counter += 1
        m = Machine(self, name)
        self.machines[name] = m
        if self.started:
            m.start()  # a machine added to a running emulation runs too
        return m

    def clear(self) -> None:
        """``ResetEmulation``: everything goes, as in Renode's EmulationManager.Clear()."""
        for ext in self.externals.values():
            ext.close()
        self.externals.clear()
        self.machines.clear()
        self.current = None
        self.counter = 0
        self.started = False

    def close(self) -> None:
        for ext in self.externals.values():
            ext.close()

    def _firmware(self) -> None:
        """The scripted firmware: banner on (re)start, echo, a periodic tick on the first UART."""
        while True:
            with self.lock:
                self.lock.cond.wait(0.05)
                for m in list(self.machines.values()):
                    if m.running:
                        self._run_firmware(m)

    def _run_firmware(self, m: Machine) -> None:
        uarts = m.uarts()
        if not uarts:
            return
        if m.banner_due:
            m.banner_due = False
            for u in uarts:
                u.transmit(f"\r\nemutui stand-in firmware 1.0 on {m.name}.{u.name}\r\n".encode())
        for u in uarts:
            if u.rx_pending:
                data = bytes(u.rx_pending)
                u.rx_pending.clear()
                # Echo as a line-oriented shell does: CR becomes CRLF.
                u.transmit(data.replace(b"\r", b"\r\n"))
                tail = data.replace(b"\n", b"\r").rsplit(b"\r", 1)
                u.line_open_since = time.monotonic() if tail[-1] else 0.0
        now = time.monotonic()
        # Like a shell that prints asynchronous messages only between input
        # lines: no tick in the middle of a line being typed (for 10 s at most).
        since = uarts[0].line_open_since
        typing = since > 0.0 and now - since < 10.0
        if now >= m.next_tick and not typing:
            m.ticks += 1
            m.next_tick = now + TICK_SECONDS
            uarts[0].transmit(f"tick {m.ticks}\r\n".encode())


def eprint(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)
