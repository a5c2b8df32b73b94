"""What the shell talks to: QMP (QEMU), the Renode Monitor, or vrtd's verbs.

A Mode turns one input line into one result and owns the completion engine for
its monitor. The REPL and the scripting path (``-c``, stdin) are the same for
every mode; only this layer knows the backend. No prompt_toolkit import here.
"""

from __future__ import annotations

import asyncio
import difflib
import re
from dataclasses import dataclass
from typing import Any, Protocol

from emutui.backends.base import Connector
from emutui.core.errors import BackendError, EmutuiError, NotFoundError
from emutui.shell.completion import CompletionEngine, MonitorCompleter, QmpCompleter
from emutui.shell.schema import Schema
from emutui.shell.syntax import ParsedCommand, ShellSyntaxError, is_incomplete, parse_line

# Commands that only read: the dynamic completion cache (QOM tree, devices)
# survives them. Anything else may have changed the tree.
_READ_ONLY = re.compile(r"^(query-|qom-get$|qom-list|x-query-|human-monitor-command$)")


@dataclass(frozen=True, slots=True)
class Result:
    """One command's answer. ``text`` answers (HMP, Renode) print as they are."""

    value: Any
    text: bool = False


class Mode(Protocol):
    name: str  # "qmp", "renode", "vrtd"

    @property
    def engine(self) -> CompletionEngine: ...

    async def prepare(self, wait: bool = False) -> None:
        """Load what completion needs; in the background unless ``wait``."""
        ...

    def is_incomplete(self, text: str) -> bool: ...

    async def run(self, line: str) -> Result: ...

    def help(self, topic: str) -> str: ...

    def commands(self) -> list[str]: ...


class QmpMode:
    """QMP through QemuConnector.execute, with HMP passthrough and transactions."""

    name = "qmp"

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.engine: QmpCompleter = QmpCompleter(list_props=conn.list_props, execute=conn.execute)
        self._loading: asyncio.Task[Schema] | None = None

    async def prepare(self, wait: bool = False) -> None:
        if self._loading is None:
            # The schema takes ~100 ms to fetch; the prompt need not wait for it.
            self._loading = asyncio.ensure_future(self.engine.load())
        if wait:
            await self.schema()

    async def schema(self) -> Schema | None:
        if self._loading is None:
            await self.prepare()
        assert self._loading is not None
        try:
            return await asyncio.shield(self._loading)
        except EmutuiError:
            return None  # no schema: no completion and no coercion, commands still run

    @property
    def ready(self) -> bool:
        return self.engine.schema is not None

    def is_incomplete(self, text: str) -> bool:
        return is_incomplete(text)

    def parse(self, line: str) -> ParsedCommand:
        return parse_line(line, self.engine.schema)

    async def run(self, line: str) -> Result:
        # The schema is needed only to keep bare literals of str arguments as text
        # (and for suggestions); a one-shot "query-status" does not wait for it.
        schema = self.engine.schema
        cmd = parse_line(line, schema)
        if schema is None and cmd.literals:
            schema = await self.schema()
            cmd = parse_line(line, schema)
        if cmd.kind == "meta":
            raise ShellSyntaxError(f"unknown shell command .{cmd.name} (try .help)")
        if cmd.kind == "hmp":
            text = str(await self.conn.hmp(cmd.text)).replace("\r\n", "\n")
            self.engine.invalidate()
            if hmp_failed(text):
                err = BackendError(f"HMP: {text.strip()}")
                err.error_class, err.desc = "HMPError", text.strip()
                raise err
            return Result(text, text=True)
        try:
            value = await self.conn.execute(cmd.name, cmd.args or None)
        except NotFoundError as e:
            schema = schema or await self.schema()
            if schema is not None and cmd.name not in schema.commands:
                raise NotFoundError(f"{e}{self._suggest(cmd.name, schema)}") from e
            raise
        if not _READ_ONLY.match(cmd.name):
            self.engine.invalidate()
        self.engine.note_used(cmd.name)
        return Result(value)

    @staticmethod
    def _suggest(name: str, schema: Schema) -> str:
        close = difflib.get_close_matches(name, schema.command_names, n=3, cutoff=0.6)
        return f" (did you mean {', '.join(close)}?)" if close else ""

    def commands(self) -> list[str]:
        s = self.engine.schema
        return list(s.command_names) if s else []

    def help(self, topic: str) -> str:
        s = self.engine.schema
        if not topic:
            return QMP_HELP
        if s is None:
            return "the QMP schema is not loaded yet"
        c = s.command(topic)
        if c is None:
            return f"no QMP command {topic!r}{self._suggest(topic, s)}"
        sig = s.signature(topic)
        lines = [topic + ("" if sig else "  (no arguments)")]
        for name, typ, optional in sig:
            lines.append(f"  {name}{'?' if optional else ''}: {typ}")
        t = s.type(c.arg_type)
        if t is not None and t.tag and t.variants:
            lines.append(f"  ({t.tag} selects more arguments: {', '.join(sorted(t.variants))})")
        if c.ret_type and s.describe(c.ret_type) != "{}":
            lines.append(f"  returns {s.describe(c.ret_type)}")
        if c.features:
            lines.append(f"  features: {', '.join(c.features)}")
        return "\n".join(lines)


_HMP_ERROR = re.compile(
    r"^(unknown command: |Error: )|^Try \"help .*\" for more information$|\A[^\n]* not found\n?\Z",
    re.M,
)


def hmp_failed(text: str) -> bool:
    """HMP answers errors as text through a successful human-monitor-command:
    ``unknown command: 'x'``, ``Error: …``, a parse error ending in ``Try "help x"
    for more information``, or one line ``Device 'x' not found``."""
    return bool(_HMP_ERROR.search(text))


QMP_HELP = """\
QMP shell. Commands:
  query-status                               a command
  qom-get path=/machine property=type        key=value arguments (Tab completes
                                             commands, arguments, enum values,
                                             QOM paths and property names)
  blockdev-add driver=file file.x=1          dotted keys build nested objects
  device_add {"driver": "edu", "id": "e1"}  JSON arguments
  {"execute": "query-status"}                a raw QMP message
  !info pci                                  HMP passthrough
  transaction( abort ; abort )               a transaction (or one action per line)
Shell commands: .help [CMD]  .events on|off  .schema [CMD]  .quit (or Ctrl+D)
Events print above the prompt as they arrive. 'quit' is QEMU's: it ends the VM."""


# -- Renode --------------------------------------------------------------------------------


_HELP_LINE = re.compile(r"^\s*([A-Za-z_][\w]*)\s*:\s*(.*)$")


def parse_monitor_help(text: str) -> dict[str, str]:
    """``{command: description}`` from the Renode Monitor's ``help``."""
    out: dict[str, str] = {}
    seen_rule = False
    for ln in text.replace("\r", "").split("\n"):
        if ln.startswith("===="):
            seen_rule = True
            continue
        if not seen_rule:
            continue
        m = _HELP_LINE.match(ln)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


class RenodeMode:
    """Monitor commands through the robot port's ExecuteCommand; output is text."""

    name = "renode"

    def __init__(self, conn: Connector) -> None:
        self.conn = conn
        self.engine = MonitorCompleter(
            {
                "commands": self._load_commands,
                "objects": self._load_objects,
                "members": self._load_members,
            }
        )
        self._warm: asyncio.Future[Any] | None = None

    async def _load_commands(self, _key: str) -> dict[str, str]:
        return parse_monitor_help(str(await self.conn.command("help")))

    async def _load_objects(self, _key: str) -> dict[str, str]:
        builtins = {"machine": "the current machine", "emulation": "the emulation"}
        # RenodeConnector.peripherals() is one `peripherals` command with full dotted
        # names; list_props("/") also reads every property of sysbus, too slow to type on.
        peripherals = getattr(self.conn, "peripherals", None)
        if peripherals is not None:
            return builtins | {p.name: p.type for p in await peripherals(refresh=True)}
        nodes = await self.conn.list_props("/")
        return builtins | {
            n.path.strip("/").replace("/", "."): n.type for n in nodes if n.has_children
        }

    async def _load_members(self, key: str) -> dict[str, str]:
        obj = key.split(":", 1)[1]
        if not re.fullmatch(r"[A-Za-z_][\w.\-\[\]]*", obj):
            return {}
        from emutui.backends.renode.monitor import parse_members

        text = str(await self.conn.command(obj))
        return {m.name: m.signature or f"{m.type} ({m.kind})" for m in parse_members(text)}

    async def prepare(self, wait: bool = False) -> None:
        # Command and peripheral names, so the first Tab answers from cache.
        if self._warm is None:
            self._warm = asyncio.ensure_future(self.engine.complete_async(""))
        if wait:
            await asyncio.shield(self._warm)

    def is_incomplete(self, text: str) -> bool:
        return False

    async def run(self, line: str) -> Result:
        line = line.strip()
        if line.startswith("."):
            raise ShellSyntaxError(f"unknown shell command {line.split()[0]} (try .help)")
        out = await self.conn.command(line)
        self.engine.invalidate()
        return Result(out, text=isinstance(out, str))

    def commands(self) -> list[str]:
        return sorted(self.engine.cached("commands") or {})

    def help(self, topic: str) -> str:
        if not topic:
            return (
                "Renode Monitor shell: any Monitor command (help, peripherals, "
                "sysbus.uart0, sysbus ReadDoubleWord 0x1000, start, pause, ...).\n"
                "Tab completes commands, peripheral names and each peripheral's methods "
                "and properties.\nShell commands: .help [CMD]  .quit (or Ctrl+D).  "
                "Monitor help: help [CMD]"
            )
        return f"type: help {topic}"


# -- vrtd ----------------------------------------------------------------------------------


VRTD_VERBS = {
    "devices": "list devices with their BARs",
    "bar": "bar DEV N: BAR N of device DEV (name or index)",
    "read": "read REGION OFFSET LENGTH: bytes from a BAR, as hex",
    "write": "write REGION OFFSET HEX: write hex bytes to a BAR",
    "sensors": "sensors DEV: sensor readings",
    "raw": "raw OPCODE [HEXBODY]: one raw request",
    "help": "the verbs",
}


class VrtdMode:
    """vrtd's verbs through VrtdConnector.command; answers are JSON."""

    name = "vrtd"

    def __init__(self, conn: Connector) -> None:
        self.conn = conn
        self.engine = MonitorCompleter({"args": self._load_args}, static_commands=VRTD_VERBS)

    async def _load_args(self, key: str) -> dict[str, str]:
        parts = key.split(":")
        verb = parts[1] if len(parts) > 1 else ""
        position = int(parts[2]) if len(parts) > 2 else 1
        if position != 1:
            return {}
        if verb in ("bar", "sensors"):
            nodes = await self.conn.list_props("/")
            return {n.name: n.description for n in nodes if n.has_children}
        if verb in ("read", "write"):
            return {r.name: f"{r.size:#x} bytes" for r in await self.conn.regions()}
        return {}

    async def prepare(self, wait: bool = False) -> None:
        return None

    def is_incomplete(self, text: str) -> bool:
        return False

    async def run(self, line: str) -> Result:
        line = line.strip()
        if line.startswith("."):
            raise ShellSyntaxError(f"unknown shell command {line.split()[0]} (try .help)")
        out = await self.conn.command(line)
        return Result(out, text=isinstance(out, str))

    def commands(self) -> list[str]:
        return sorted(VRTD_VERBS)

    def help(self, topic: str) -> str:
        if topic in VRTD_VERBS:
            return f"{topic}: {VRTD_VERBS[topic]}"
        return (
            "vrtd shell verbs:\n"
            + "\n".join(f"  {k:<8} {v}" for k, v in VRTD_VERBS.items())
            + "\nShell commands: .help [VERB]  .quit (or Ctrl+D)"
        )


def make_mode(backend: str, conn: Connector) -> Mode:
    if backend == "qemu":
        return QmpMode(conn)
    if backend == "renode":
        return RenodeMode(conn)
    if backend == "vrtd":
        return VrtdMode(conn)
    raise EmutuiError(f"the shell does not know backend {backend!r}")


async def completion_engine(backend: str, conn: Connector) -> CompletionEngine:
    """The shell's engine for another front end (the TUI's command line).

    Starts loading what it needs (the QMP schema, Renode's command list) in the
    background and returns at once; ``complete_async`` answers once it is in.
    For one connection, keep the engine: it caches per connection.
    """
    mode = make_mode(backend, conn)
    await mode.prepare()
    return mode.engine
