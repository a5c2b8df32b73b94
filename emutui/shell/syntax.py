"""The shell's command grammar: shorthand, raw JSON, HMP passthrough, transactions.

::

    query-status                                 a command without arguments
    qom-get path=/machine property=type          key=value shorthand
    blockdev-add driver=null-co node-name=n0 file.filename=x
                                                 dotted keys build nested objects
    set_link name=n0 up=false                    values are JSON or literals
    device_add {"driver": "edu", "id": "e1"}     a JSON object as the arguments
    {"execute": "query-status"}                  a whole QMP message
    !info pci                                    HMP through human-monitor-command
    transaction( abort ; block-dirty-bitmap-add node=n0 name=b0 ) completion-mode=grouped
                                                 a transaction; ';' or newlines separate actions
    .help qom-get                                shell commands start with '.'

A value is JSON when it parses as JSON (``42``, ``true``, ``[1,2]``,
``{"a": 1}``, ``"two words"``), an integer in Python notation
(``0x10``, ``0b101``, ``-7``), a single-quoted string (``'two words'``),
or else the literal text (``/machine/peripheral/edu0``). A bare literal given
for an argument the schema types as a string stays a string (``id=123`` sends
``"123"``), which qmp-shell gets wrong.

Every function here is pure and raises ShellSyntaxError (an EmutuiError) with
a column on bad input: the REPL prints it and carries on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from emutui.core.errors import EmutuiError

if TYPE_CHECKING:
    from emutui.shell.schema import Schema

_OPENERS = {"{": "}", "[": "]"}
_CLOSERS = {"}": "{", "]": "["}
TRANSACTION = "transaction"


class ShellSyntaxError(EmutuiError):
    """Input the shell cannot parse; ``column`` is 1-based (0 when not known)."""

    def __init__(self, message: str, column: int = 0) -> None:
        super().__init__(f"{message} (column {column})" if column else message)
        self.column = column


@dataclass(frozen=True, slots=True)
class Token:
    """A word of the argument part: ``key=value``, a bare word, or ``(`` ``;`` ``)``.

    Offsets index the whole line. ``closed`` is False when a JSON or quoted
    value runs to the end of the line unbalanced (the completer sees those while
    the user types; the parser rejects them).
    """

    kind: Literal["word", "(", ";", ")"]
    text: str
    start: int
    end: int
    key: str = ""
    has_eq: bool = False
    value: str = ""
    value_start: int = 0
    closed: bool = True
    problem: str = ""  # why it is not closed, for the error message


@dataclass(slots=True)
class ParsedCommand:
    """What a line means. ``kind`` is qmp (run ``name`` with ``args``), hmp or meta."""

    kind: Literal["qmp", "hmp", "meta"]
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    text: str = ""  # hmp: the command line; meta: the words after the name
    # (key path, literal) of every bare literal, so a str-typed argument keeps its text
    literals: list[tuple[tuple[str, ...], str]] = field(default_factory=list)

    def message(self) -> dict[str, Any]:
        """The QMP message this command sends (HMP goes through human-monitor-command)."""
        if self.kind == "hmp":
            return {"execute": "human-monitor-command", "arguments": {"command-line": self.text}}
        msg: dict[str, Any] = {"execute": self.name}
        if self.args:
            msg["arguments"] = self.args
        return msg


# -- scanning --------------------------------------------------------------------------------


def _scan_balanced(text: str, i: int) -> tuple[int, bool, str]:
    """From an opening ``{``, ``[``, ``"`` or ``'`` at i: (end, closed, problem).

    Tracks JSON strings and escapes so braces inside strings do not count.
    Single quotes delimit a whole literal string and nest nothing.
    """
    n = len(text)
    if text[i] == "'":
        j = i + 1
        while j < n:
            if text[j] == "\\" and j + 1 < n:
                j += 2
                continue
            if text[j] == "'":
                return j + 1, True, ""
            j += 1
        return n, False, f"unterminated string: the quote at column {i + 1} is never closed"
    stack: list[tuple[str, int]] = []
    j = i
    while j < n:
        c = text[j]
        if c == '"':
            k = j + 1
            while k < n and text[k] != '"':
                k += 2 if text[k] == "\\" else 1
            if k >= n:
                return n, False, f"unterminated string: the quote at column {j + 1} is never closed"
            j = k + 1
            if not stack:
                return j, True, ""
            continue
        if c in _OPENERS:
            stack.append((c, j))
        elif c in _CLOSERS:
            if not stack or stack[-1][0] != _CLOSERS[c]:
                return j + 1, False, f"unbalanced JSON: unexpected '{c}' at column {j + 1}"
            stack.pop()
            if not stack:
                return j + 1, True, ""
        j += 1
    opener, pos = stack[-1]
    return (
        n,
        False,
        (
            f"unbalanced JSON: '{opener}' at column {pos + 1} is never closed "
            f"(expected '{_OPENERS[opener]}')"
        ),
    )


def scan(text: str, start: int = 0, transaction: bool = False) -> list[Token]:
    """Split the argument part of a line into tokens, tolerating an unfinished last one.

    In a transaction ``(``, ``;``, ``)`` and newlines are separators; elsewhere
    they are ordinary characters of a value.
    """
    toks: list[Token] = []
    n = len(text)
    i = start
    seps = "();\n" if transaction else ""
    while i < n:
        c = text[i]
        if c.isspace() and c not in seps:
            i += 1
            continue
        if c in seps:
            kind: Literal["(", ";", ")"] = ";" if c == "\n" else c  # type: ignore[assignment]
            toks.append(Token(kind, c, i, i + 1))
            i += 1
            continue
        # a word: key up to '=' (or the whole word when there is none)
        j = i
        if c in _OPENERS or c in "\"'":
            end, closed, problem = _scan_balanced(text, i)
            toks.append(
                Token(
                    "word",
                    text[i:end],
                    i,
                    end,
                    value=text[i:end],
                    value_start=i,
                    closed=closed,
                    problem=problem,
                )
            )
            i = end
            continue
        while j < n and text[j] != "=" and not text[j].isspace() and text[j] not in seps:
            j += 1
        if j < n and text[j] == "=":
            key = text[i:j]
            vs = j + 1
            if vs < n and (text[vs] in _OPENERS or text[vs] in "\"'"):
                end, closed, problem = _scan_balanced(text, vs)
            else:
                end = vs
                while end < n and not text[end].isspace() and text[end] not in seps:
                    end += 1
                closed, problem = True, ""
            toks.append(
                Token(
                    "word",
                    text[i:end],
                    i,
                    end,
                    key=key,
                    has_eq=True,
                    value=text[vs:end],
                    value_start=vs,
                    closed=closed,
                    problem=problem,
                )
            )
            i = end
        else:
            toks.append(Token("word", text[i:j], i, j, key=text[i:j], value_start=j))
            i = j
    return toks


def split_command(line: str) -> tuple[str, int, int]:
    """(command word, its start, where the arguments start) for a shorthand line."""
    i = 0
    n = len(line)
    while i < n and line[i].isspace():
        i += 1
    j = i
    while j < n and not line[j].isspace() and line[j] not in "({":
        j += 1
    return line[i:j], i, j


def is_transaction(line: str) -> bool:
    name, _, rest = split_command(line)
    return name == TRANSACTION and line[rest:].lstrip().startswith("(")


def is_incomplete(line: str) -> bool:
    """True while a multi-line transaction is still open (the REPL asks for more)."""
    if not is_transaction(line):
        return False
    _, _, rest = split_command(line)
    toks = scan(line, rest, transaction=True)
    depth = 0
    for t in toks:
        if t.kind == "(":
            depth += 1
        elif t.kind == ")":
            depth -= 1
    return depth > 0 and all(t.closed for t in toks)


# -- values ----------------------------------------------------------------------------------


def parse_value(raw: str, column: int = 0) -> tuple[Any, bool]:
    """(value, is_bare_literal) for the text after ``=``; see the module docstring."""
    if raw == "":
        return "", True
    c = raw[0]
    if c == "'":
        if len(raw) < 2 or raw[-1] != "'":
            raise ShellSyntaxError("unterminated string", column)
        body = raw[1:-1]
        return body.replace("\\'", "'").replace("\\\\", "\\"), False
    if c in '{["':
        try:
            return json.loads(raw), False
        except ValueError as e:
            msg = getattr(e, "msg", str(e))
            pos = getattr(e, "pos", None)
            col = column + pos if column and isinstance(pos, int) else column
            raise ShellSyntaxError(f"invalid JSON value {_short(raw)}: {msg}", col) from None
    if raw in ("true", "false", "null"):
        return json.loads(raw), False
    try:
        if raw.lstrip("+-")[:1].isdigit():
            return int(raw, 0), True
    except ValueError:
        pass
    try:
        v = json.loads(raw)
        if isinstance(v, int | float):
            return v, True
    except ValueError:
        pass
    return raw, True


def _short(s: str, n: int = 40) -> str:
    return repr(s if len(s) <= n else s[: n - 1] + "…")


def _assign(args: dict[str, Any], key: str, value: Any, column: int) -> tuple[str, ...]:
    if not key:
        raise ShellSyntaxError("missing argument name before '='", column)
    parts = key.split(".")
    if any(not p for p in parts):
        raise ShellSyntaxError(f"empty component in dotted key {key!r}", column)
    node = args
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ShellSyntaxError(
                f"{key!r}: {p!r} already has a value that is not an object", column
            )
        node = nxt
    last = parts[-1]
    if last in node:
        raise ShellSyntaxError(f"argument {key!r} is given twice", column)
    node[last] = value
    return tuple(parts)


def _kv_args(tokens: list[Token]) -> tuple[dict[str, Any], list[tuple[tuple[str, ...], str]]]:
    args: dict[str, Any] = {}
    literals: list[tuple[tuple[str, ...], str]] = []
    for t in tokens:
        if not t.closed:
            raise ShellSyntaxError(t.problem or "unbalanced input")
        if not t.has_eq:
            if t.text.startswith(("{", "[")):
                raise ShellSyntaxError(
                    "a JSON object as arguments must be the only argument", t.start + 1
                )
            raise ShellSyntaxError(f"expected key=value, got {_short(t.text)}", t.start + 1)
        value, bare = parse_value(t.value, t.value_start + 1)
        path = _assign(args, t.key, value, t.start + 1)
        if bare and isinstance(value, int | float) and not isinstance(value, bool):
            literals.append((path, t.value))
    return args, literals


# -- whole lines -----------------------------------------------------------------------------


def parse_line(line: str, schema: Schema | None = None) -> ParsedCommand:
    """Parse one (possibly multi-line, for transactions) command; raises ShellSyntaxError."""
    stripped = line.strip()
    if not stripped:
        raise ShellSyntaxError("empty command")
    if stripped.startswith("!"):
        hmp = stripped[1:].strip()
        if not hmp:
            raise ShellSyntaxError("'!' needs an HMP command, e.g. !info status")
        return ParsedCommand("hmp", "human-monitor-command", {"command-line": hmp}, text=hmp)
    if stripped.startswith("."):
        name, _, rest = stripped.partition(" ")
        return ParsedCommand("meta", name[1:], text=rest.strip())
    if stripped.startswith("{"):
        return _parse_message(line)
    name, _, rest_at = split_command(line)
    if not name:
        raise ShellSyntaxError(f"expected a command name, got {_short(stripped)}", 1)
    if is_transaction(line):
        cmd = _parse_transaction(line, rest_at)
    else:
        rest = line[rest_at:].strip()
        if rest.startswith("{"):
            end, closed, problem = _scan_balanced(line, line.index("{", rest_at))
            if not closed:
                raise ShellSyntaxError(problem)
            if line[end:].strip():
                raise ShellSyntaxError(
                    f"unexpected text after the JSON arguments: {_short(line[end:].strip())}",
                    end + 1,
                )
            try:
                args = json.loads(line[line.index("{", rest_at) : end])
            except ValueError as e:
                raise ShellSyntaxError(f"arguments are not valid JSON: {e}") from None
            if not isinstance(args, dict):
                raise ShellSyntaxError("arguments must be a JSON object")
            cmd = ParsedCommand("qmp", name, args)
        else:
            args, literals = _kv_args(scan(line, rest_at))
            cmd = ParsedCommand("qmp", name, args, literals=literals)
    if schema is not None:
        apply_schema(cmd, schema)
    return cmd


def _parse_message(line: str) -> ParsedCommand:
    start = line.index("{")
    end, closed, problem = _scan_balanced(line, start)
    if not closed:
        raise ShellSyntaxError(problem)
    if line[end:].strip():
        raise ShellSyntaxError(
            f"unexpected text after the JSON message: {_short(line[end:].strip())}", end + 1
        )
    try:
        obj = json.loads(line[start:end])
    except ValueError as e:
        raise ShellSyntaxError(f"not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise ShellSyntaxError("a JSON message must be an object")
    if "execute" not in obj:
        raise ShellSyntaxError('a JSON message needs "execute" (e.g. {"execute": "query-status"})')
    unknown = set(obj) - {"execute", "arguments", "id"}
    if unknown:
        raise ShellSyntaxError(f"unexpected keys in the JSON message: {', '.join(sorted(unknown))}")
    args = obj.get("arguments") or {}
    if not isinstance(args, dict):
        raise ShellSyntaxError('"arguments" must be a JSON object')
    return ParsedCommand("qmp", str(obj["execute"]), dict(args))


def _parse_transaction(line: str, rest_at: int) -> ParsedCommand:
    toks = scan(line, rest_at, transaction=True)
    for t in toks:
        if not t.closed:
            raise ShellSyntaxError(t.problem or "unbalanced input")
    if not toks or toks[0].kind != "(":
        raise ShellSyntaxError("expected '(' after transaction")
    actions: list[dict[str, Any]] = []
    literals: list[tuple[tuple[str, ...], str]] = []
    cur: list[Token] = []
    i = 1
    closed_at = -1

    def flush() -> None:
        if not cur:
            return
        head = cur[0]
        if head.has_eq:
            raise ShellSyntaxError(
                f"a transaction action starts with its type, got {_short(head.text)}",
                head.start + 1,
            )
        data, lits = _kv_args(cur[1:])
        idx = len(actions)
        literals.extend((("actions", str(idx), "data", *p), raw) for p, raw in lits)
        actions.append({"type": head.text, "data": data})
        cur.clear()

    while i < len(toks):
        t = toks[i]
        if t.kind == ";":
            flush()
        elif t.kind == ")":
            flush()
            closed_at = i
            break
        elif t.kind == "(":
            raise ShellSyntaxError("unexpected '(' inside a transaction", t.start + 1)
        else:
            cur.append(t)
        i += 1
    if closed_at < 0:
        raise ShellSyntaxError("transaction( is never closed with ')'")
    if not actions:
        raise ShellSyntaxError("a transaction needs at least one action")
    args: dict[str, Any] = {"actions": actions}
    trailing = toks[closed_at + 1 :]
    for t in trailing:
        if t.kind != "word":
            raise ShellSyntaxError(f"unexpected '{t.text}' after the transaction", t.start + 1)
    if trailing:
        props, lits = _kv_args(trailing)
        args["properties"] = props
        literals.extend((("properties", *p), raw) for p, raw in lits)
    return ParsedCommand("qmp", TRANSACTION, args, literals=literals)


def apply_schema(cmd: ParsedCommand, schema: Schema) -> None:
    """Turn bare numeric literals back into text where the schema wants a string.

    ``device_del id=1`` or ``object-del id=0x10``: qmp-shell sends numbers and QEMU
    answers "Invalid parameter type"; the schema says ``id`` is a ``str``.
    """
    if cmd.kind != "qmp" or not cmd.literals:
        return
    c = schema.command(cmd.name)
    if c is None:
        return
    actions = schema.transaction_actions() if cmd.name == TRANSACTION else {}
    for path, raw in cmd.literals:
        type_name: str | None
        if cmd.name == TRANSACTION and path[:1] == ("actions",):
            idx = int(path[1])
            action = cmd.args["actions"][idx]
            data_type = actions.get(str(action.get("type")))
            type_name = (
                schema.resolve(data_type, list(path[3:]), action.get("data")) if data_type else None
            )
        else:
            type_name = schema.resolve(c.arg_type, list(path), cmd.args)
        if type_name is None:
            continue
        t = schema.type(type_name)
        if t is not None and t.meta == "builtin" and t.json_type == "string":
            _set_path(cmd.args, path, raw)


def _set_path(obj: Any, path: tuple[str, ...], value: Any) -> None:
    for p in path[:-1]:
        obj = obj[int(p)] if isinstance(obj, list) else obj[p]
    if isinstance(obj, list):
        obj[int(path[-1])] = value
    elif isinstance(obj, Mapping):
        obj[path[-1]] = value  # type: ignore[index]
