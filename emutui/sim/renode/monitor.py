"""The stand-in's Monitor: Renode's command syntax and its exact output formats.

Output goes through a writer that reproduces AntShell's line endings: a written
line ends in ``\\r\\n\\r`` and a value result in ``\\r\\r\\n`` (spec 3.4), so a
client sees the same noise it would see from the real thing.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

from emutui.sim.renode.emulation import (
    LEVELS,
    VERSION,
    Cpu,
    Emulation,
    FileBackend,
    Machine,
    MonitorError,
    Peripheral,
    Prop,
    PtyTerminal,
    SocketTerminal,
    SystemBus,
)


class Output:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.errors: list[str] = []

    def line(self, s: str = "") -> None:
        self.parts.append(s.replace("\n", "\r\n") + "\r\n\r")

    def value(self, s: str) -> None:
        self.parts.append(s.replace("\n", "\r\n") + "\r\r\n")

    def error(self, s: str) -> None:
        self.errors.append(s)

    def text(self) -> str:
        return "".join(self.parts)


_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<path>@\S+)|(?P<range><[^>]*>)|(?P<list>\[[^\]]*\])'
    r"|(?P<word>[^\s\"]+))"
)

COMMANDS = {
    "currentTime": "prints out and logs the current emulation virtual and real time",
    "help": "prints this help message or info about specified command",
    "include": "loads a Monitor script, Python code, platform file or a plugin class",
    "lastLog": "logs last n logs",
    "log": "logs messages",
    "logFile": "sets the output file for logger",
    "logLevel": "sets logging level for backends",
    "mach": "list and manipulate machines available in the environment",
    "pause": "pauses the emulation",
    "peripherals": "prints list of registered and named peripherals",
    "quit": "quits the emulator",
    "Save": "saves the emulation state to a file",
    "Load": "loads the emulation state from a file",
    "start": "starts the emulation",
    "using": "expose a prefix to avoid typing full object names",
    "version": "shows version information",
}
ALIASES = {
    "i": "include",
    "s": "start",
    "p": "pause",
    "q": "quit",
    "peri": "peripherals",
    "logF": "logFile",
}


def tokenize(line: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(line):
        m = _TOKEN.match(line, pos)
        if not m or m.end() == pos:
            if line[pos:].strip():
                raise MonitorError(f"Could not tokenize here:\n{line}\n{' ' * pos}^")
            break
        out.append(m.group(m.lastgroup or "word"))
        pos = m.end()
    return out


def split_commands(line: str) -> list[str]:
    """``;`` separates commands and ``#`` starts a comment, both outside quotes."""
    cmds: list[str] = []
    cur: list[str] = []
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        if not quoted and ch == "#":
            break
        if not quoted and ch == ";":
            cmds.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    cmds.append("".join(cur))
    return [c.strip() for c in cmds if c.strip()]


def unquote(tok: str) -> str:
    if len(tok) >= 2 and tok[0] == tok[-1] == '"':
        return tok[1:-1].replace('\\"', '"')
    return tok


def parse_int(tok: str) -> int:
    try:
        return int(tok, 0)
    except ValueError:
        raise MonitorError(f"Could not convert '{tok}' to a number.") from None


def parse_bool(tok: str) -> bool:
    t = unquote(tok).lower()
    if t in ("true", "1"):
        return True
    if t in ("false", "0"):
        return False
    raise MonitorError(f"Could not convert '{tok}' to Boolean.")


_WIDTH = {
    "Byte": 2,
    "UInt16": 4,
    "Int16": 4,
    "UInt32": 8,
    "Int32": 8,
    "UInt64": 16,
    "Int64": 16,
    "RegisterValue": 8,
}


def format_value(typ: str, v: Any) -> str:
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, int):
        digits = _WIDTH.get(typ, 8)
        return f"0x{v & ((1 << (4 * digits)) - 1):0{digits}X}"
    return str(v)


class Monitor:
    def __init__(self, emulation: Emulation, wd: Path | None = None) -> None:
        self.em = emulation
        self.cwd = wd or Path.cwd()
        self.variables: dict[str, str] = {}
        self.quit_requested = False

    # ---------------------------------------------------------------- entry points

    def execute(self, line: str) -> tuple[str, list[str]]:
        """Run a line (possibly ``;``-separated). Stops at the first failing command."""
        out = Output()
        with self.em.lock:
            for cmd in split_commands(line):
                try:
                    self._one(cmd, out)
                except MonitorError as e:
                    out.error(str(e))
                except (ValueError, OSError, KeyError, IndexError, struct.error) as e:
                    # Renode reports an exception inside a command this way, and so a
                    # robot client gets a FAIL, not a broken connection.
                    out.error(f"There was an error executing command '{cmd}': {e}")
                if out.errors:
                    break
        return out.text(), out.errors

    def _machine(self) -> Machine:
        if self.em.current is None:
            raise MonitorError("Select active machine first.")
        return self.em.current

    def _path(self, tok: str) -> Path:
        p = Path(unquote(tok[1:] if tok.startswith("@") else tok)).expanduser()
        return p if p.is_absolute() else self.cwd / p

    # -------------------------------------------------------------------- dispatch

    def _one(self, cmd: str, out: Output) -> None:
        m = re.match(r"^\$(\w+)\s*(\?)?=\s*(.+)$", cmd)
        if m:
            if not (m.group(2) and m.group(1) in self.variables):
                self.variables[m.group(1)] = m.group(3).strip()
            return
        cmd = re.sub(r"\$(\w+)", lambda v: self.variables.get(v.group(1), v.group(0)), cmd)
        toks = tokenize(cmd)
        if not toks:
            return
        head, args = ALIASES.get(toks[0], toks[0]), toks[1:]
        handler = getattr(self, f"cmd_{head}", None)
        if handler is not None and head in COMMANDS:
            handler(args, out)
            return
        if head == "mach":
            self.cmd_mach(args, out)
            return
        if head in ("emulation", "connector", "machine"):
            getattr(self, f"obj_{head}")(args, out, cmd)
            return
        dev = self.em.current.resolve(head) if self.em.current else None
        if dev is None:
            raise MonitorError(f"No such command or device: {toks[0]}")
        self.device(head, dev, args, out, cmd)

    # ----------------------------------------------------------------- commands

    def cmd_help(self, args: list[str], out: Output) -> None:
        if args:
            name = ALIASES.get(args[0], args[0])
            if name not in COMMANDS:
                raise MonitorError(f"No such command: {args[0]}.")
            alts = [a for a, c in ALIASES.items() if c == name]
            out.line(f"{name}" + (f" [ {', '.join(alts)} ]" if alts else ""))
            out.line(COMMANDS[name])
            return
        out.line("Available commands:")
        out.line(f"{'Name':<18}| Description")
        out.line("=" * 80)
        for name in sorted(COMMANDS):
            out.line(f"{name:<18}: {COMMANDS[name]}")
        out.line()
        out.line("You can also provide a device name to access its methods.")
        out.line("Use <TAB> for auto-completion.")

    def cmd_version(self, args: list[str], out: Output) -> None:
        out.line(VERSION)

    def cmd_using(self, args: list[str], out: Output) -> None:
        return None  # ``using sysbus`` is the default and the only prefix the stand-in knows

    def cmd_quit(self, args: list[str], out: Output) -> None:
        out.line("Renode is quitting")
        self.quit_requested = True

    def cmd_start(self, args: list[str], out: Output) -> None:
        if args:
            self.cmd_include(args, out)
        if self.em.is_started():
            out.line("Emulation is already started. Ignoring command")
            return
        out.line("Starting emulation...")
        self.em.start_all()

    def cmd_Save(self, args: list[str], out: Output) -> None:
        """The stand-in's state (every machine's bus memory, CPU PCs, ticks, time) as JSON;
        Renode writes a binary image of its whole emulation to the same kind of path."""
        if not args:
            raise MonitorError("Bad parameters for command Save")
        path = self._path(args[0])
        state = {
            name: {
                "ticks": m.ticks,
                "virt": m.virtual_time(),
                "peripherals": {
                    pname: {
                        "mem": {str(k): v for k, v in p.mem.items()},
                        "pc": getattr(p, "pc", None),
                    }
                    for pname, p in m.peripherals.items()
                },
            }
            for name, m in self.em.machines.items()
        }
        path.write_text(json.dumps({"emutui-standin-save": 1, "machines": state}))

    def cmd_Load(self, args: list[str], out: Output) -> None:
        if not args:
            raise MonitorError("Bad parameters for command Load")
        path = self._path(args[0])
        try:
            obj = json.loads(path.read_text())
            machines = obj["machines"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise MonitorError(
                f"There was an error executing command 'Load @{path}': {e}"
            ) from None
        for name, st in machines.items():
            m = self.em.machines.get(name)
            if m is None:
                continue
            m.ticks = int(st["ticks"])
            was = m.running
            m.pause()
            m._virt = float(st["virt"])
            if was:
                m.start()
            for pname, pst in st["peripherals"].items():
                p = m.peripherals.get(pname)
                if p is None:
                    continue
                p.mem = {int(k): int(v) for k, v in pst["mem"].items()}
                if pst.get("pc") is not None and hasattr(p, "pc"):
                    p.pc = int(pst["pc"])

    def cmd_pause(self, args: list[str], out: Output) -> None:
        out.line("Pausing emulation...")
        self.em.pause_all()

    def cmd_include(self, args: list[str], out: Output) -> None:
        if not args:
            raise MonitorError("Bad parameters for command include ")
        path = self._path(args[0])
        try:
            text = path.read_text()
        except OSError as e:
            raise MonitorError(f"Could not find file '{path}': {e.strerror}") from None
        old = self.cwd
        self.cwd = path.parent
        try:
            if path.suffix == ".repl":
                self._machine().load_platform(text, str(path))
                return
            for raw in text.splitlines():
                for cmd in split_commands(raw):
                    self._one(cmd, out)
                    if out.errors:
                        return
        finally:
            self.cwd = old

    def cmd_peripherals(self, args: list[str], out: Output) -> None:
        m = self._machine()
        out.line("Available peripherals:")
        out.line()
        out.line(f"  sysbus ({SystemBus.type_name})")
        children = sorted(m.peripherals.values(), key=lambda p: p.name)
        if children:
            out.line("  │   ")
        for i, p in enumerate(children):
            last = i == len(children) - 1
            out.line(f"  {'└── ' if last else '├── '}{p.name} ({p.type_name})")
            cont = "    " if last else "│   "
            for note in [f"<0x{s:08X}, 0x{e:08X}>" for s, e in p.ranges] + p.notes:
                out.line(f"  {cont}    {note}")
            # Renode ends every node with an indentation-only line.
            out.line(f"  {cont}    ")

    def cmd_log(self, args: list[str], out: Output) -> None:
        if not args:
            raise MonitorError("Bad parameters for command log ")
        level = unquote(args[1]).upper() if len(args) > 1 else "DEBUG"
        if level not in LEVELS:
            raise MonitorError(f"Bad parameters for command log {' '.join(args)}")
        self.em.log.log(level, "", f"Script: {unquote(args[0])}")

    def cmd_logFile(self, args: list[str], out: Output) -> None:
        if not args or not args[0].startswith("@"):
            raise MonitorError("Bad parameters for command logFile ")
        flush = parse_bool(args[1]) if len(args) > 1 else False
        self.em.log.set_file(self._path(args[0]), flush)

    def cmd_logLevel(self, args: list[str], out: Output) -> None:
        if not args:
            out.line("Currently set levels:")
            out.line()
            out.line(f"{'Backend':<18}| {'Emulation element':<36}| Level")
            out.line("=" * 65)
            backends = ["console"] if self.em.log.to_stdout else []
            if self.em.log.file is not None:
                backends.append("file")
            for b in backends:
                out.line(f"{b:<18}: {'':<36}: {LEVELS[self.em.log.level]}")
            out.line("-" * 65)
            return
        tok = unquote(args[0])
        if tok.lstrip("-").isdigit() and -1 <= int(tok) <= 3:
            self.em.log.level = int(tok) + 1
        elif tok.upper() in LEVELS:
            self.em.log.level = LEVELS.index(tok.upper())
        else:
            raise MonitorError(f"Bad parameters for command logLevel {' '.join(args)}")

    def cmd_lastLog(self, args: list[str], out: Output) -> None:
        n = parse_int(args[0]) if args else 20
        for e in list(self.em.log.history)[-n:]:
            line = self.em.log.format(e)
            stamp, _, rest = line.partition(" ")
            level, _, msg = rest.partition(" ")
            out.line(f"{stamp} {level} {msg.split(': ', 1)[-1] if e.obj else msg}")

    def cmd_currentTime(self, args: list[str], out: Output) -> None:
        import datetime as dt

        v = self._machine().virtual_time()
        virt = f"{int(v // 3600):02d}:{int(v % 3600 // 60):02d}:{v % 60:09.6f}"
        real = dt.datetime.now().strftime("%H:%M:%S.%f")
        out.line(f"Current virtual time: {virt}")
        out.line(f"Current real time: {real}")
        self.em.log.log("INFO", "", f"Current virtual time: {virt}")

    def cmd_mach(self, args: list[str], out: Output) -> None:
        if not args:
            out.error("Bad parameters for command mach ")
            return
        sub, rest = args[0], [unquote(a) for a in args[1:]]
        if sub == "create":
            self.em.current = self.em.create_machine(rest[0] if rest else None)
        elif sub == "add":
            if not rest:
                raise MonitorError("Bad parameters for command mach add")
            m = self.em.create_machine(rest[0])
            if self.em.current is None:
                self.em.current = m
        elif sub == "set":
            self.em.current = self._find_machine(rest[0] if rest else "")
        elif sub == "rem":
            m = self._find_machine(rest[0] if rest else "")
            del self.em.machines[m.name]
            if self.em.current is m:
                self.em.current = None
        elif sub == "clear":
            self.em.current = None
        else:
            raise MonitorError(f"Bad parameters for command mach {' '.join(args)}")

    def _find_machine(self, key: str) -> Machine:
        if key in self.em.machines:
            return self.em.machines[key]
        if key.isdigit():
            names = list(self.em.machines)
            if int(key) < len(names):
                return self.em.machines[names[int(key)]]
            raise MonitorError(
                "Wrong machine number. Type mach to show a list of available machines."
            )
        raise MonitorError(f"Machine {key} not found.")

    # ------------------------------------------------------------ built-in objects

    def obj_machine(self, args: list[str], out: Output, cmd: str) -> None:
        m = self._machine()
        if not args:
            self.help_listing(
                out,
                "machine",
                [
                    "Void LoadPlatformDescription (ReadFilePath platformFile)",
                    "Void Pause ()",
                    "Void RequestReset ()",
                    "Void Reset ()",
                    "Void Start ()",
                    "Void StartGdbServer (Int32 port, Boolean autostartEmulation = false, "
                    'String cpuCluster = "")',
                ],
                {
                    "Name": Prop("String", lambda: m.name),
                    "SystemBusName": Prop("String", lambda: "sysbus"),
                },
            )
            return
        method, rest = args[0], args[1:]
        if method == "LoadPlatformDescription":
            if not rest:
                raise MonitorError(f"Bad parameters for command {cmd}")
            path = self._path(rest[0])
            try:
                text = path.read_text()
            except OSError as e:
                raise MonitorError(
                    f"There was an error executing command '{cmd}': Could not find file "
                    f"'{path}' ({e.strerror})."
                ) from None
            m.load_platform(text, str(path))
        elif method in ("Reset", "RequestReset"):
            m.reset()
        elif method == "Pause":
            m.pause()
        elif method == "Start":
            m.start()
        elif method in ("Name", "SystemBusName"):
            out.value(m.name if method == "Name" else "sysbus")
        elif method == "StartGdbServer":
            # Recorded and answered as Renode does (nothing on the monitor, a log
            # line); the stand-in runs no code, so nothing listens on the port.
            if not rest:
                raise MonitorError(f"Bad parameters for command {cmd}")
            port = parse_int(rest[0])
            servers = m.__dict__.setdefault("gdb_servers", [])
            if port in servers:
                raise MonitorError(
                    f"There was an error executing command '{cmd}': "
                    f"GDB server already started on port :{port}"
                )
            servers.append(port)
            self.em.log.log("INFO", m.name, f"GDB server with all CPUs started on port :{port}")
        else:
            raise MonitorError(f"No such command or device: machine {method}")

    def obj_emulation(self, args: list[str], out: Output, cmd: str) -> None:
        if not args:
            self.help_listing(
                out,
                "emulation",
                [
                    "Void CreateServerSocketTerminal (Int32 port, String name, "
                    "Boolean emitConfig = True, "
                    "Boolean flushOnConnect = False)",
                    "Void CreateUartPtyTerminal (String name, String fileName, "
                    "Boolean forceCreate = False)",
                    "Boolean IsStarted ()",
                    "String[] Names ()",
                    "Void RunFor (TimeInterval time)",
                ],
                {"MachinesCount": Prop("Int32", lambda: len(self.em.machines))},
            )
            return
        method, rest = args[0], args[1:]
        if method == "IsStarted":
            out.value(format_value("Boolean", self.em.is_started()))
        elif method == "MachinesCount":
            out.value(format_value("Int32", len(self.em.machines)))
        elif method == "Names":
            out.line("[")
            out.line("".join(f"{n}, " for n in self.em.machines))
            out.line("]")
        elif method == "CreateServerSocketTerminal":
            if len(rest) < 2:
                raise MonitorError(f"Bad parameters for command {cmd}")
            port = parse_int(rest[0])
            name = unquote(rest[1])
            telnet = parse_bool(rest[2]) if len(rest) > 2 else True
            flush = parse_bool(rest[3]) if len(rest) > 3 else False
            self._check_external(name)
            try:
                term = SocketTerminal(self.em, name, port, telnet, flush)
            except OSError as e:
                kind = "AddressAlreadyInUse" if e.errno == 98 else "SocketError"
                raise MonitorError(
                    f"There was an error executing command '{cmd}': Unable to create "
                    f"'0.0.0.0:{port}' socket:[{kind}] {e.strerror}"
                ) from None
            self.em.externals[name] = term
        elif method == "CreateUnixSocketTerminal":
            # Not in Renode: the stand-in's private UART socket (see SocketTerminal).
            if len(rest) < 2:
                raise MonitorError(f"Bad parameters for command {cmd}")
            path = self._path(rest[0])
            name = unquote(rest[1])
            self._check_external(name)
            try:
                term = SocketTerminal(self.em, name, 0, False, False, path=str(path))
            except OSError as e:
                raise MonitorError(
                    f"There was an error executing command '{cmd}': Unable to create "
                    f"'{path}' socket: {e.strerror}"
                ) from None
            self.em.externals[name] = term
        elif method == "CreateUartPtyTerminal":
            if len(rest) < 2:
                raise MonitorError(f"Bad parameters for command {cmd}")
            name = unquote(rest[0])
            self._check_external(name)
            force = parse_bool(rest[2]) if len(rest) > 2 else False
            self.em.externals[name] = PtyTerminal(self.em, name, self._path(rest[1]), force)
        elif method == "RunFor":
            return None  # time runs with the host clock in the stand-in
        else:
            raise MonitorError(f"No such command or device: emulation {method}")

    def _check_external(self, name: str) -> None:
        if name in self.em.externals:
            raise MonitorError(
                f"There was an error executing command: External with name {name} already exists."
            )

    def obj_connector(self, args: list[str], out: Output, cmd: str) -> None:
        if len(args) != 3 or args[0] not in ("Connect", "Disconnect"):
            raise MonitorError(f"Bad parameters for command {cmd}")
        dev = self._machine().resolve(args[1])
        ext = self.em.externals.get(unquote(args[2]))
        if dev is None:
            raise MonitorError(f"Could not find device {args[1]}.")
        if ext is None:
            raise MonitorError(f"Could not find external {args[2]}.")
        if not hasattr(dev, "outputs"):
            raise MonitorError(f"Cannot connect {args[1]} to {args[2]}: not a UART.")
        uart: Any = dev
        if args[0] == "Connect":
            ext.uart = uart
            uart.outputs.append(ext.send)
        else:
            ext.uart = None
            if ext.send in uart.outputs:
                uart.outputs.remove(ext.send)

    # ------------------------------------------------------------------- devices

    def help_listing(
        self, out: Output, name: str, methods: list[str], props: dict[str, Prop]
    ) -> None:
        out.line()
        out.line("The following methods are available:")
        for sig in sorted(methods, key=lambda s: s.split(" ", 1)[1]):
            out.line(f" - {sig}")
        out.line()
        out.line("Usage:")
        out.line(f" {name} MethodName param1 param2 ...")
        out.line()
        if props:
            out.line()
            out.line("The following properties are available:")
            for pname in sorted(props):
                p = props[pname]
                out.line(f" - {p.type} {pname}")
                out.line(
                    "     available for 'get' and 'set'" if p.set else "     available for 'get'"
                )
            out.line()
            out.line("Usage:")
            out.line(f" - get: {name} PropertyName")
            out.line(f" - set: {name} PropertyName Value")
            out.line()

    def device(self, name: str, dev: Peripheral, args: list[str], out: Output, cmd: str) -> None:
        if not args:
            self.help_listing(out, name, dev.methods, dev.props)
            return
        member, rest = args[0], args[1:]
        if member in dev.props:
            prop = dev.props[member]
            if not rest:
                out.value(format_value(prop.type, prop.get()))
                return
            if prop.set is None:
                raise MonitorError(
                    f"There was an error executing command '{cmd}': Property {member} "
                    f"does not have a setter."
                )
            raw = unquote(rest[0])
            try:
                value: Any = (
                    parse_bool(raw)
                    if prop.type == "Boolean"
                    else raw
                    if prop.type == "String"
                    else parse_int(raw)
                )
            except MonitorError:
                raise MonitorError(f"Bad parameters for command {cmd}") from None
            prop.set(value)
            return
        if isinstance(dev, SystemBus):
            self._sysbus(dev, member, rest, out, cmd)
            return
        widths = {"ReadByte": 1, "ReadWord": 2, "ReadDoubleWord": 4}
        wwidths = {"WriteByte": 1, "WriteWord": 2, "WriteDoubleWord": 4}
        if member in widths and len(rest) == 1:
            w = widths[member]
            out.value(
                format_value(
                    {1: "Byte", 2: "UInt16", 4: "UInt32"}[w], dev.read(parse_int(rest[0]), w)
                )
            )
        elif member in wwidths and len(rest) == 2:
            dev.write(parse_int(rest[0]), wwidths[member], parse_int(rest[1]))
        elif member == "Reset" and not rest:
            dev.reset()
        elif member == "CreateFileBackend" and rest and hasattr(dev, "outputs"):
            flush = parse_bool(rest[1]) if len(rest) > 1 else False
            uart: Any = dev
            uart.outputs.append(FileBackend(self._path(rest[0]), flush))
        elif member == "WriteChar" and len(rest) == 1 and hasattr(dev, "transmit"):
            uart = dev
            uart.transmit(bytes([parse_int(rest[0]) & 0xFF]))
        elif member in ("Step",) and isinstance(dev, Cpu):
            return None
        else:
            known = {m.split(" ")[1] for m in dev.methods}
            if member in known:
                raise MonitorError(f"Bad parameters for command {cmd}")
            raise MonitorError(
                f"Could not find device {name}.{member}, the longest match is {name}."
            )

    def _sysbus(self, bus: SystemBus, member: str, rest: list[str], out: Output, cmd: str) -> None:
        widths = {"ReadByte": 1, "ReadWord": 2, "ReadDoubleWord": 4}
        wwidths = {"WriteByte": 1, "WriteWord": 2, "WriteDoubleWord": 4}
        if member in widths and len(rest) in (1, 2):
            w = widths[member]
            out.value(
                format_value(
                    {1: "Byte", 2: "UInt16", 4: "UInt32"}[w], bus.bus_read(parse_int(rest[0]), w)
                )
            )
        elif member in wwidths and len(rest) in (2, 3):
            w = wwidths[member]
            bus.bus_write(parse_int(rest[0]), w, parse_int(rest[1]) & ((1 << (8 * w)) - 1))
        elif member == "ReadBytes" and len(rest) in (2, 3):
            addr, n = parse_int(rest[0]), parse_int(rest[1])
            vals = [f"0x{bus.bus_read(addr + i, 1):02X}" for i in range(n)]
            out.line("[")
            for i in range(0, len(vals), 10):
                out.line(", ".join(vals[i : i + 10]) + ("," if i + 10 < len(vals) else ""))
            out.line("]")
        elif member == "LoadELF" and rest:
            path = self._path(rest[0])
            try:
                bus.machine.load_elf(path)
            except OSError as e:
                raise MonitorError(
                    f"There was an error executing command '{cmd}': Could not find file "
                    f"'{path}' ({e.strerror})."
                ) from None
        else:
            known = {m.split(" ")[1] for m in bus.methods}
            if member in known:
                raise MonitorError(f"Bad parameters for command {cmd}")
            raise MonitorError(
                f"Could not find device sysbus.{member}, the longest match is sysbus."
            )
