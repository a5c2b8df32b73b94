"""The completion engine shared by ``emutui shell`` and the TUI's command line.

UI-agnostic on purpose: no prompt_toolkit and no Textual import. A front end
asks for candidates and renders them however it likes::

    engine = await QmpCompleter.for_connector(conn)      # schema fetched once per connection
    engine.complete("query-st", 8)                        # -> [Candidate("query-status", 0, …)]
    await engine.complete_async("qom-get path=/machine/peri")   # may run qom-list first
    engine.signature("qom-get path=/m")                   # -> Signature for a toolbar

API (every engine, see CompletionEngine):

- ``complete(text, cursor=None) -> list[Candidate]``: synchronous, only from
  what is loaded or cached; never does I/O. Cheap: per keystroke it scans the
  line and filters one candidate list (a few microseconds to ~1 ms).
- ``async complete_async(text, cursor=None)``: the same, but first runs the
  dynamic lookups the position needs (qom-list for a ``path``, the property
  list for ``property``, device types for ``device_add driver=``, HMP help),
  each cached for ``ttl`` seconds and de-duplicated while in flight.
- ``signature(text, cursor=None) -> Signature | None``: the command under the
  cursor, its arguments and types, and which argument is being typed.
- ``invalidate()``: forget dynamic lookups (call after a command that may change
  the QOM tree, e.g. device_add).

Helpers: ``apply_candidate(text, cursor, cand)`` and ``await suggest(engine,
text)`` (the line completed with the first candidate, for inline suggesters).
An engine for any backend, as the shell builds it: ``await
emutui.shell.modes.completion_engine(backend, conn)``.

A Candidate replaces ``text[start:cursor]`` with ``candidate.text``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from emutui.core.model import PropertyNode
from emutui.shell.schema import Schema
from emutui.shell.syntax import (
    TRANSACTION,
    Token,
    parse_value,
    scan,
    split_command,
)

ListProps = Callable[[str], Awaitable[list[PropertyNode]]]
Execute = Callable[..., Awaitable[Any]]
TextCommand = Callable[[str], Awaitable[Any]]

# Shell commands of our own; they start with '.' so they never shadow a QMP command
# (QMP has a "quit" that ends QEMU, so the shell cannot use a bare "quit").
META_COMMANDS: dict[str, str] = {
    ".help": "help on the shell, or on one command: .help CMD",
    ".quit": "leave the shell (Ctrl+D does too); the instance keeps running",
    ".events": "live events: .events on|off",
    ".schema": "the QMP command list, or one command's arguments as JSON",
}

LOOKUP_TIMEOUT = 5.0  # a Renode Monitor listing can take seconds on a loaded machine
FAILED_LOOKUP_TTL = 1.0

# Offered first when several commands match: with complete-while-typing, Tab picks
# the first candidate, and "query-st" should mean query-status, not query-stats.
COMMON_COMMANDS = (
    "query-status",
    "qom-list",
    "qom-get",
    "qom-set",
    "query-pci",
    "query-chardev",
    "query-cpus-fast",
    "query-commands",
    "query-version",
    "query-block",
    "device_add",
    "device_del",
    "human-monitor-command",
    "stop",
    "cont",
    "system_reset",
)


@dataclass(frozen=True, slots=True)
class Candidate:
    """Replace ``line[start:cursor]`` with ``text``. ``display``/``meta`` are for menus."""

    text: str
    start: int
    display: str = ""
    meta: str = ""


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: str
    optional: bool


@dataclass(frozen=True, slots=True)
class Signature:
    """What a toolbar shows: ``qom-get path: str  property: str``, ``current`` being typed."""

    command: str
    params: tuple[Param, ...]
    current: str = ""
    note: str = ""

    def render(self) -> str:
        parts = [self.command]
        for p in self.params:
            s = f"{p.name}: {p.type}"
            if p.optional:
                s = f"[{s}]"
            if p.name == self.current:
                s = f"*{s}*"
            parts.append(s)
        if self.note:
            parts.append(f"— {self.note}")
        return "  ".join(parts)


class CompletionEngine(Protocol):
    def complete(self, text: str, cursor: int | None = None) -> list[Candidate]: ...

    async def complete_async(self, text: str, cursor: int | None = None) -> list[Candidate]: ...

    def signature(self, text: str, cursor: int | None = None) -> Signature | None: ...

    def invalidate(self) -> None: ...


def _match(prefix: str, words: Sequence[str], fallback_substring: bool = False) -> list[str]:
    out = [w for w in words if w.startswith(prefix)]
    if not out and fallback_substring and prefix:
        out = [w for w in words if prefix in w]
    return out


class _Lookups:
    """Cached, de-duplicated async lookups: key -> value, each kept ``ttl`` seconds."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._cache: dict[str, tuple[float, Any]] = {}
        self._inflight: dict[str, asyncio.Future[Any]] = {}

    def get(self, key: str) -> Any | None:
        hit = self._cache.get(key)
        if hit is None or time.monotonic() > hit[0]:
            return None
        return hit[1]

    async def fetch(self, key: str, fn: Callable[[], Awaitable[Any]], empty: Any) -> Any:
        hit = self.get(key)
        if hit is not None:
            return hit
        fut = self._inflight.get(key)
        if fut is None:
            fut = asyncio.ensure_future(self._run(key, fn, empty))
            self._inflight[key] = fut
        return await asyncio.shield(fut)

    async def _run(self, key: str, fn: Callable[[], Awaitable[Any]], empty: Any) -> Any:
        ttl = self.ttl
        try:
            value = await asyncio.wait_for(fn(), LOOKUP_TIMEOUT)
        except Exception:
            # A failed lookup (no such path, a slow or gone monitor) completes to
            # nothing; remember that briefly so each keystroke does not retry it.
            value = empty
            ttl = min(ttl, FAILED_LOOKUP_TTL)
        finally:
            self._inflight.pop(key, None)
        self._cache[key] = (time.monotonic() + ttl, value)
        return value

    def clear(self) -> None:
        self._cache.clear()


@dataclass(slots=True)
class _Ctx:
    """Where the cursor is, as far as completion cares."""

    kind: str  # command | arg | value | action | hmp | hmp-info | meta | help-arg | none
    start: int
    prefix: str
    command: str = ""
    type_name: str = ""  # object type whose members are offered, or the value's type
    key_path: tuple[str, ...] = ()
    given: dict[str, Any] = field(default_factory=dict)
    lookup: str = ""  # dynamic lookup key needed, e.g. "qom:/machine"
    action: str = ""  # inside transaction( ... ): the action being typed


def _tolerant_args(tokens: Sequence[Token]) -> dict[str, Any]:
    """The arguments typed so far, skipping anything that does not parse yet."""
    args: dict[str, Any] = {}
    for t in tokens:
        if t.kind != "word" or not t.has_eq or not t.closed or not t.key:
            continue
        try:
            value, _ = parse_value(t.value)
        except Exception:
            continue
        node = args
        parts = t.key.split(".")
        ok = True
        for p in parts[:-1]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                ok = False
                break
            node = nxt
        if ok:
            node[parts[-1]] = value
    return args


def _quote(value: str) -> str:
    """A completed value as the shorthand needs it: QOM names can hold spaces
    ("bus master container[0]"), which would end a key=value word."""
    if any(c.isspace() for c in value) or value[:1] in ("{", "[", '"', "'"):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return value


def _unquote(value: str) -> str:
    """The text of a value being typed, without the quote that opens it."""
    if value[:1] == "'":
        body = value[1:]
        if len(body) >= 1 and body.endswith("'") and not body.endswith("\\'"):
            body = body[:-1]
        return body.replace("\\'", "'").replace("\\\\", "\\")
    return value


def _qom_split(value: str) -> tuple[str, str]:
    """``/machine/peri`` -> (``/machine``, ``peri``); ``/`` -> (``/``, ``)."""
    if "/" not in value:
        return "/", value
    head, _, tail = value.rpartition("/")
    return head or "/", tail


class QmpCompleter:
    """Completion for QMP lines: commands, arguments, enum values, QOM paths and properties.

    ``schema`` may be None until it is loaded (``set_schema`` / ``load``);
    until then only shell commands complete. ``list_props`` is
    ``Connector.list_props`` (qom-list); ``execute`` is ``QemuConnector.execute``
    (device types, HMP help). Either may be None: those completions are skipped.
    """

    _by_connector: weakref.WeakKeyDictionary[Any, QmpCompleter] = weakref.WeakKeyDictionary()

    def __init__(
        self,
        schema: Schema | None = None,
        *,
        list_props: ListProps | None = None,
        execute: Execute | None = None,
        ttl: float = 5.0,
        meta_commands: dict[str, str] | None = None,
    ) -> None:
        self.schema = schema
        self.list_props = list_props
        self.execute = execute
        self.meta_commands = META_COMMANDS if meta_commands is None else meta_commands
        self._lookups = _Lookups(ttl)
        self._meta_names = sorted(self.meta_commands)
        self._rank: dict[str, int] = {c: i for i, c in enumerate(COMMON_COMMANDS)}
        self._used: dict[str, int] = {}

    def note_used(self, command: str) -> None:
        """Rank a command the user just ran above the others (most recent first)."""
        self._used[command] = len(self._used) + 1 + max(self._used.values(), default=0)

    def _order(self, name: str) -> tuple[int, int, str]:
        used = self._used.get(name)
        if used is not None:
            return (0, -used, name)
        return (1, self._rank.get(name, len(self._rank)), name)

    @classmethod
    async def for_connector(cls, conn: Any) -> QmpCompleter:
        """One engine per connected QemuConnector, schema loaded once (about 100 ms)."""
        eng = cls._by_connector.get(conn)
        if eng is None:
            eng = cls(list_props=conn.list_props, execute=conn.execute)
            await eng.load()
            cls._by_connector[conn] = eng
        return eng

    async def load(self) -> Schema:
        """Fetch and parse ``query-qmp-schema`` through ``execute``."""
        if self.schema is None:
            if self.execute is None:
                raise RuntimeError("QmpCompleter.load needs execute")
            self.schema = Schema.from_introspection(await self.execute("query-qmp-schema"))
        return self.schema

    def set_schema(self, schema: Schema) -> None:
        self.schema = schema

    def invalidate(self) -> None:
        self._lookups.clear()

    # -- public API ---------------------------------------------------------------------

    def complete(self, text: str, cursor: int | None = None) -> list[Candidate]:
        ctx = self._context(text, len(text) if cursor is None else cursor)
        return self._candidates(ctx)

    async def complete_async(self, text: str, cursor: int | None = None) -> list[Candidate]:
        ctx = self._context(text, len(text) if cursor is None else cursor)
        if ctx.lookup and self._lookups.get(ctx.lookup) is None:
            await self._fetch(ctx.lookup)
        return self._candidates(ctx)

    def signature(self, text: str, cursor: int | None = None) -> Signature | None:
        cur = len(text) if cursor is None else cursor
        s = self.schema
        line = text[:cur]
        stripped = line.lstrip()
        if s is None or not stripped or stripped[0] in "!.{":
            if stripped.startswith("!"):
                return Signature("HMP", (), note="human-monitor-command passthrough")
            return None
        ctx = self._context(text, cur)
        name = ctx.command or split_command(line)[0]
        if name == TRANSACTION and (ctx.kind == "action" or ctx.action):
            if ctx.kind == "action" or not ctx.type_name:
                return Signature(TRANSACTION, (), note="action type; ';' separates actions")
            obj = ctx.type_name
            if ctx.kind == "value":
                c = s.command(TRANSACTION)
                obj = s.transaction_actions().get(ctx.action, "") if c else ""
            return self._sig_for_type(f"{TRANSACTION}: {ctx.action}", obj, ctx)
        c = s.command(name)
        if c is None:
            return None
        params = tuple(Param(n, t, o) for n, t, o in s.signature(name, ctx.given))
        current = ctx.key_path[0] if ctx.kind in ("arg", "value") and ctx.key_path else ""
        if ctx.kind == "arg":
            current = ctx.prefix.split(".")[0]
            partial = [p.name for p in params if p.name.startswith(current)]
            if current and len(partial) == 1:
                current = partial[0]  # "qom-get pa" already points at path
        note = "" if params else "no arguments"
        ret = s.describe(c.ret_type) if c.ret_type else ""
        if ret and ret != "{}":
            note = (note + "; " if note else "") + f"returns {ret}"
        return Signature(name, params, current, note)

    def _sig_for_type(self, title: str, type_name: str, ctx: _Ctx) -> Signature:
        s = self.schema
        assert s is not None
        params = tuple(
            Param(m.name, s.describe(m.type), m.optional) for m in s.members(type_name, ctx.given)
        )
        cur = (
            ctx.prefix.split(".")[0]
            if ctx.kind == "arg"
            else (ctx.key_path[0] if ctx.key_path else "")
        )
        return Signature(title, params, cur)

    # -- context ------------------------------------------------------------------------

    def _context(self, text: str, cursor: int) -> _Ctx:
        line = text[:cursor]
        lead = len(line) - len(line.lstrip())
        stripped = line[lead:]
        if stripped.startswith("!"):
            return self._hmp_context(line, lead + 1)
        if stripped.startswith("."):
            word, sp, rest = stripped.partition(" ")
            if not sp:
                return _Ctx("meta", lead, word)
            if word == ".help" and " " not in rest.strip():
                return _Ctx(
                    "help-arg",
                    len(line) - len(rest.lstrip()) if rest.strip() else len(line),
                    rest.strip(),
                )
            return _Ctx("none", cursor, "")
        if stripped.startswith("{"):
            m = re.search(r'"execute"\s*:\s*"([\w-]*)$', line)
            if m:
                return _Ctx("json-execute", m.start(1), m.group(1))
            return _Ctx("none", cursor, "")
        name, nstart, rest_at = split_command(line)
        if rest_at >= len(line) and not line.endswith((" ", "\t")):
            return _Ctx("command", nstart, name)
        s = self.schema
        if s is None:
            return _Ctx("none", cursor, "", command=name)
        if name == TRANSACTION and line[rest_at:].lstrip().startswith("("):
            return self._transaction_context(line, rest_at)
        c = s.command(name)
        if c is None:
            return _Ctx("none", cursor, "", command=name)
        toks = scan(line, rest_at)
        return self._arg_context(line, toks, name, c.arg_type)

    def _current(self, line: str, toks: Sequence[Token]) -> tuple[Token | None, list[Token]]:
        """(the token under the cursor or None for a fresh one, the tokens before it)."""
        if toks and toks[-1].end == len(line) and toks[-1].kind == "word":
            return toks[-1], list(toks[:-1])
        return None, list(toks)

    def _arg_context(self, line: str, toks: Sequence[Token], command: str, type_name: str) -> _Ctx:
        s = self.schema
        assert s is not None
        cur, before = self._current(line, toks)
        given = _tolerant_args(before)
        if cur is None or not cur.has_eq:
            prefix = cur.text if cur is not None else ""
            start = cur.start if cur is not None else len(line)
            if prefix.startswith(("{", "[", '"', "'")):
                return _Ctx("none", len(line), "", command=command)
            parent, _, _last = prefix.rpartition(".")
            obj_type = type_name
            if parent:
                level = given
                r = s.resolve(type_name, parent.split("."), level)
                if r is None:
                    return _Ctx("none", len(line), "", command=command)
                obj_type = r
            return _Ctx("arg", start, prefix, command=command, type_name=obj_type, given=given)
        key_path = tuple(cur.key.split("."))
        vt = s.resolve(type_name, list(key_path), given) or ""
        ctx = _Ctx(
            "value",
            cur.value_start,
            _unquote(cur.value),
            command=command,
            type_name=vt,
            key_path=key_path,
            given=given,
        )
        last = key_path[-1]
        t = s.type(vt)
        is_str = t is not None and t.meta == "builtin" and t.json_type == "string"
        if last == "path" and is_str:
            head, _ = _qom_split(ctx.prefix or "/")
            ctx.lookup = f"qom:{head}"
        elif last == "property" and is_str and isinstance(given.get("path"), str):
            ctx.lookup = f"props:{given['path']}"
        elif command == "device_del" and key_path == ("id",):
            ctx.lookup = "qom:/machine/peripheral"
        elif command == "device_add" and key_path == ("driver",):
            ctx.lookup = "types:device"
        return ctx

    def _transaction_context(self, line: str, rest_at: int) -> _Ctx:
        s = self.schema
        assert s is not None
        toks = scan(line, rest_at, transaction=True)
        actions = s.transaction_actions()
        # find the segment the cursor is in
        seg_start = None
        for i, t in enumerate(toks):
            if t.kind in ("(", ";"):
                seg_start = i + 1
            elif t.kind == ")":
                seg_start = None
                after = toks[i + 1 :]
                c = s.command(TRANSACTION)
                props = s.member(c.arg_type, "properties") if c else None
                if props is None:
                    return _Ctx("none", len(line), "")
                return self._arg_context(line, after, TRANSACTION, props.type)
        if seg_start is None:
            return _Ctx("none", len(line), "")
        seg = toks[seg_start:]
        cur, _ = self._current(line, seg)
        if not seg or (len(seg) == 1 and cur is seg[0] and not cur.has_eq):
            prefix = cur.text if cur is not None else ""
            start = cur.start if cur is not None else len(line)
            return _Ctx("action", start, prefix, command=TRANSACTION)
        head = seg[0]
        data_type = actions.get(head.text, "")
        if not data_type:
            return _Ctx("none", len(line), "", command=TRANSACTION)
        ctx = self._arg_context(line, seg[1:], TRANSACTION, data_type)
        ctx.action = head.text
        return ctx

    def _hmp_context(self, line: str, at: int) -> _Ctx:
        body = line[at:]
        lead = len(body) - len(body.lstrip())
        body = body[lead:]
        words = body.split(" ")
        if len(words) == 1:
            return _Ctx("hmp", at + lead, body, lookup="hmp:help")
        if words[0] in ("info", "i") and len(words) == 2:
            return _Ctx("hmp-info", len(line) - len(words[1]), words[1], lookup="hmp:info")
        return _Ctx("none", len(line), "")

    # -- candidates ---------------------------------------------------------------------

    def _candidates(self, ctx: _Ctx) -> list[Candidate]:
        s = self.schema
        k = ctx.kind
        if k == "meta":
            return [
                Candidate(m, ctx.start, m, self.meta_commands[m])
                for m in _match(ctx.prefix, self._meta_names)
            ]
        if k in ("command", "help-arg", "json-execute"):
            if s is None:
                return []
            names = sorted(
                _match(ctx.prefix, s.command_names, fallback_substring=True), key=self._order
            )
            close = '"' if k == "json-execute" else ""
            return [Candidate(n + close, ctx.start, n, "command") for n in names]
        if s is None:
            return []
        if k == "action":
            acts = s.transaction_actions()
            return [Candidate(a, ctx.start, a, "action") for a in _match(ctx.prefix, sorted(acts))]
        if k == "arg":
            return self._arg_candidates(ctx)
        if k == "value":
            return self._value_candidates(ctx)
        if k == "hmp":
            cmds = self._lookups.get("hmp:help") or {}
            return [Candidate(n, ctx.start, n, cmds[n]) for n in _match(ctx.prefix, sorted(cmds))]
        if k == "hmp-info":
            cmds = self._lookups.get("hmp:info") or {}
            return [Candidate(n, ctx.start, n, cmds[n]) for n in _match(ctx.prefix, sorted(cmds))]
        return []

    def _arg_candidates(self, ctx: _Ctx) -> list[Candidate]:
        s = self.schema
        assert s is not None
        parent, dot, last = ctx.prefix.rpartition(".")
        level: Any = ctx.given
        for p in parent.split(".") if parent else ():
            level = level.get(p) if isinstance(level, dict) else None
        taken = set(level) if isinstance(level, dict) else set()
        out = []
        for m in s.members(ctx.type_name, level if isinstance(level, dict) else None):
            if m.name in taken or not m.name.startswith(last):
                continue
            full = f"{parent}{dot}{m.name}"
            mt = s.type(m.type)
            pure_object = mt is not None and mt.meta == "object"
            text = full + ("." if pure_object else "=")
            meta = s.describe(m.type) + ("" if m.optional else " (required)")
            out.append(Candidate(text, ctx.start, text, meta))
        return out

    def _value_candidates(self, ctx: _Ctx) -> list[Candidate]:
        s = self.schema
        assert s is not None
        if ctx.lookup:
            return self._dynamic_candidates(ctx)
        values: Sequence[str] = s.enum_values(ctx.type_name)
        meta = "enum"
        if not values and s.is_bool(ctx.type_name):
            values, meta = ("true", "false"), "bool"
        return [Candidate(v, ctx.start, v, meta) for v in _match(ctx.prefix, values)]

    def _dynamic_candidates(self, ctx: _Ctx) -> list[Candidate]:
        data = self._lookups.get(ctx.lookup)
        if data is None:
            return []
        if data and isinstance(data[0], PropertyNode):
            # qom-list order is QEMU's hash order; sorted, "peripheral" precedes
            # "peripheral-anon", so Tab on "/machine/peri" picks the one meant.
            data = sorted(data, key=lambda n: n.name)
        kind = ctx.lookup.partition(":")[0]
        if kind == "qom" and ctx.key_path[-1] == "id":  # device_del id=
            return [
                Candidate(_quote(n.name), ctx.start, n.name, n.type)
                for n in data
                if n.has_children and n.name.startswith(ctx.prefix)
            ]
        if kind == "qom":
            head, part = _qom_split(ctx.prefix or "/")
            base = "" if head == "/" else head
            if ctx.prefix and not ctx.prefix.startswith("/"):
                return []  # a partial path: QEMU resolves it, we cannot list it
            out = []
            for n in data:
                if n.has_children and n.name.startswith(part):
                    text = _quote(f"{base}/{n.name}/")
                    out.append(Candidate(text, ctx.start, n.name + "/", n.type))
            return out
        if kind == "props":
            return [
                Candidate(_quote(n.name), ctx.start, n.name, n.type)
                for n in data
                if n.name.startswith(ctx.prefix)
            ]
        if kind == "types":
            return [Candidate(n, ctx.start, n, "device") for n in _match(ctx.prefix, data)]
        return []

    async def _fetch(self, key: str) -> Any:
        kind, _, arg = key.partition(":")
        if kind in ("qom", "props"):
            lp = self.list_props
            if lp is None:
                return None
            path = arg.rstrip("/") or "/"
            return await self._lookups.fetch(key, lambda: lp(path), [])
        ex = self.execute
        if ex is None:
            return None
        if kind == "types":

            async def types() -> list[str]:
                r = await ex("qom-list-types", {"implements": "device", "abstract": False})
                return sorted(str(t.get("name")) for t in r or ())

            return await self._lookups.fetch(key, types, [])
        if kind == "hmp":
            line = "help" if arg == "help" else "help info"

            async def hmp_help() -> dict[str, str]:
                text = await ex("human-monitor-command", {"command-line": line})
                return parse_hmp_help(str(text), info=arg == "info")

            return await self._lookups.fetch(key, hmp_help, {})
        return None


def apply_candidate(text: str, cursor: int, cand: Candidate) -> tuple[str, int]:
    """(the line with ``cand`` applied, the new cursor): for front ends without a menu."""
    new = text[: cand.start] + cand.text + text[cursor:]
    return new, cand.start + len(cand.text)


async def suggest(engine: CompletionEngine, text: str) -> str | None:
    """The whole line completed with the first candidate, or None.

    What an inline suggester wants (Textual's ``Suggester.get_suggestion``
    returns a full value that starts with what was typed)::

        class EngineSuggester(Suggester):
            async def get_suggestion(self, value: str) -> str | None:
                return await suggest(engine, value)
    """
    for cand in await engine.complete_async(text):
        new, _ = apply_candidate(text, len(text), cand)
        if new.startswith(text) and new != text:
            return new
    return None


def parse_hmp_help(text: str, info: bool = False) -> dict[str, str]:
    """``{command: description}`` from HMP ``help`` (``name args -- desc``) or ``help info``."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        if not raw or raw[0].isspace():
            continue  # continuation of the previous description
        head, _, desc = raw.partition(" -- ")
        words = head.split()
        if info:
            if len(words) < 2 or words[0] != "info":
                continue
            names = words[1]
        else:
            if not words:
                continue
            names = words[0]
        for n in names.split("|"):
            if n:
                out[n] = desc.strip()
    return out


# -- word-oriented monitors: Renode and vrtd ---------------------------------------------------


class MonitorCompleter:
    """Completion for a text monitor: command words, object names, and each object's members.

    Renode: ``commands`` from the monitor's ``help``; ``objects`` are peripheral
    names (``sysbus.uart0``) from ``list_props("/")``; ``members(obj)`` the
    methods and properties its help listing shows. vrtd: the four verbs, with
    device and region names as arguments (``arg_words``).

    ``loaders`` map a lookup key ("commands", "objects", "members:<obj>",
    "args:<verb>") to a coroutine that returns ``{word: description}``.
    """

    def __init__(
        self,
        loaders: dict[str, Callable[[str], Awaitable[dict[str, str]]]],
        static_commands: dict[str, str] | None = None,
        meta_commands: dict[str, str] | None = None,
        ttl: float = 10.0,
    ) -> None:
        self.loaders = loaders
        self.static_commands = static_commands or {}
        self.meta_commands = META_COMMANDS if meta_commands is None else meta_commands
        self._lookups = _Lookups(ttl)

    def invalidate(self) -> None:
        self._lookups.clear()

    def _keys(self, text: str, cursor: int) -> tuple[list[str], int, str]:
        """(lookup keys whose words are offered here, replacement start, prefix)."""
        line = text[:cursor]
        lead = len(line) - len(line.lstrip())
        words = line[lead:].split(" ")
        prefix = words[-1]
        start = len(line) - len(prefix)
        if line[lead:].startswith("."):
            return (["meta"] if len(words) == 1 else []), start, prefix
        if len(words) == 1:
            return ["static", "commands", "objects"], start, prefix
        first = words[0]
        if len(words) == 2:
            return ["args:" + first, "members:" + first], start, prefix
        return ["args:" + first + f":{len(words) - 1}"], start, prefix

    def cached(self, key: str) -> dict[str, str] | None:
        """A loaded word list ("commands", "objects", "members:OBJ"), or None."""
        return self._words(key)

    def _words(self, key: str) -> dict[str, str] | None:
        if key == "static":
            return self.static_commands
        if key == "meta":
            return self.meta_commands
        return self._lookups.get(key)

    def complete(self, text: str, cursor: int | None = None) -> list[Candidate]:
        cur = len(text) if cursor is None else cursor
        keys, start, prefix = self._keys(text, cur)
        seen: set[str] = set()
        out: list[Candidate] = []
        for key in keys:
            words = self._words(key) or {}
            for w in sorted(words):
                if w.startswith(prefix) and w not in seen:
                    seen.add(w)
                    out.append(Candidate(w, start, w, words[w]))
        return out

    async def complete_async(self, text: str, cursor: int | None = None) -> list[Candidate]:
        cur = len(text) if cursor is None else cursor
        keys, _, _ = self._keys(text, cur)
        for key in keys:
            if key in ("static", "meta") or self._lookups.get(key) is not None:
                continue
            name = key.split(":", 1)[0]
            loader = self.loaders.get(name)
            if loader is not None:
                await self._lookups.fetch(key, functools.partial(loader, key), {})
        return self.complete(text, cur)

    def signature(self, text: str, cursor: int | None = None) -> Signature | None:
        cur = len(text) if cursor is None else cursor
        words = text[:cur].split()
        if not words:
            return None
        first = words[0]
        if len(words) > 1:
            # "sysbus.uart0 WriteChar": the member's signature from the object's listing
            member = (self._lookups.get("members:" + first) or {}).get(words[1])
            if member:
                return Signature(f"{first} {words[1]}", (), note=member)
        desc = self.static_commands.get(first) or (self._lookups.get("commands") or {}).get(first)
        if desc is None:
            return None
        return Signature(first, (), note=desc)


def dumps_compact(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), default=str)
