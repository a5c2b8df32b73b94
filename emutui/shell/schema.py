"""QEMU's ``query-qmp-schema`` turned into something a completer can walk quickly.

The introspection output (about 1,050 entries on QEMU 7.2) names types with
masked numbers ("178", "[415]"), and flat unions keep the members of each
branch in a separate object named by ``variants``. This module parses it once
into plain dicts so that every lookup a keystroke needs is a dict access.

No prompt_toolkit or Textual import here: the TUI uses it too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# What a builtin's json-type looks like to a person typing it.
_JSON_TYPE_NAMES = {
    "int": "int",
    "string": "str",
    "boolean": "bool",
    "number": "number",
    "null": "null",
    "value": "any",
}


@dataclass(frozen=True, slots=True)
class Member:
    """One argument (or nested field) of an object type."""

    name: str
    type: str  # a key into Schema.types
    optional: bool


@dataclass(slots=True)
class SchemaType:
    """One entry of the introspection output, reduced to what completion needs."""

    name: str
    meta: str  # builtin | enum | array | object | alternate | command | event
    json_type: str = ""  # builtins only
    values: tuple[str, ...] = ()  # enums only
    element: str = ""  # arrays only
    members: tuple[Member, ...] = ()  # objects: the common members
    tag: str = ""  # flat unions: the discriminator member
    variants: dict[str, str] = field(default_factory=dict)  # tag value -> object type
    alternatives: tuple[str, ...] = ()  # alternates: the type names accepted


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    arg_type: str
    ret_type: str
    features: tuple[str, ...] = ()


class Schema:
    """Commands, their argument types, enums and nested objects from ``query-qmp-schema``.

    Build it with ``Schema.from_introspection(await conn.execute("query-qmp-schema"))``.
    Parsing 1,051 entries takes a few milliseconds; keep one per connection.
    """

    def __init__(
        self, types: dict[str, SchemaType], commands: dict[str, Command], events: Iterable[str] = ()
    ) -> None:
        self.types = types
        self.commands = commands
        self.command_names: list[str] = sorted(commands)
        self.event_names: list[str] = sorted(events)
        self._members_cache: dict[tuple[str, tuple[tuple[str, str], ...]], list[Member]] = {}

    @classmethod
    def from_introspection(cls, entries: Iterable[Mapping[str, Any]]) -> Schema:
        types: dict[str, SchemaType] = {}
        commands: dict[str, Command] = {}
        events: list[str] = []
        for e in entries:
            if not isinstance(e, Mapping):
                continue
            name = str(e.get("name", ""))
            meta = str(e.get("meta-type", ""))
            if meta == "command":
                commands[name] = Command(
                    name,
                    str(e.get("arg-type", "")),
                    str(e.get("ret-type", "")),
                    tuple(str(f) for f in e.get("features") or ()),
                )
                continue
            if meta == "event":
                events.append(name)
                continue
            t = SchemaType(name, meta)
            if meta == "builtin":
                t.json_type = str(e.get("json-type", ""))
            elif meta == "enum":
                vals = e.get("values")
                if vals is None:
                    vals = [m.get("name") for m in e.get("members") or ()]
                t.values = tuple(str(v) for v in vals)
            elif meta == "array":
                t.element = str(e.get("element-type", ""))
            elif meta == "object":
                t.members = tuple(
                    Member(str(m.get("name")), str(m.get("type")), "default" in m)
                    for m in e.get("members") or ()
                )
                t.tag = str(e.get("tag") or "")
                t.variants = {
                    str(v.get("case")): str(v.get("type")) for v in e.get("variants") or ()
                }
            elif meta == "alternate":
                t.alternatives = tuple(str(m.get("type")) for m in e.get("members") or ())
            types[name] = t
        return cls(types, commands, events)

    # -- lookups ------------------------------------------------------------------------

    def command(self, name: str) -> Command | None:
        return self.commands.get(name)

    def type(self, name: str) -> SchemaType | None:
        return self.types.get(name)

    def members(self, type_name: str, given: Mapping[str, Any] | None = None) -> list[Member]:
        """The members of an object type, including those of the union branch ``given`` selects.

        ``given`` holds the arguments typed so far; for a flat union (``blockdev-add
        driver=file``) the tag's value picks which branch's members are offered.
        An alternate that accepts an object offers that object's members.
        """
        t = self.types.get(type_name)
        if t is None:
            return []
        if t.meta == "alternate":
            for alt in t.alternatives:
                at = self.types.get(alt)
                if at is not None and at.meta == "object":
                    return self.members(alt, given)
            return []
        if t.meta != "object":
            return []
        tag_value = ""
        if t.tag and given is not None:
            v = given.get(t.tag)
            tag_value = v if isinstance(v, str) else ""
        key = (type_name, ((t.tag, tag_value),) if tag_value else ())
        cached = self._members_cache.get(key)
        if cached is not None:
            return cached
        out = list(t.members)
        branch = t.variants.get(tag_value) if tag_value else None
        if branch:
            seen = {m.name for m in out}
            out.extend(m for m in self.members(branch) if m.name not in seen)
        self._members_cache[key] = out
        return out

    def member(
        self, type_name: str, name: str, given: Mapping[str, Any] | None = None
    ) -> Member | None:
        for m in self.members(type_name, given):
            if m.name == name:
                return m
        return None

    def resolve(
        self, type_name: str, dotted: list[str], given: Mapping[str, Any] | None = None
    ) -> str | None:
        """The type reached by following a dotted key (``file.filename``) from ``type_name``.

        ``given`` is the argument dict at the same level; each step descends
        into it so nested unions see their own tags.
        """
        cur = type_name
        level: Mapping[str, Any] | None = given
        for part in dotted:
            m = self.member(cur, part, level)
            if m is None:
                return None
            cur = m.type
            nxt = level.get(part) if level is not None else None
            level = nxt if isinstance(nxt, Mapping) else None
        return cur

    def enum_values(self, type_name: str) -> tuple[str, ...]:
        """Enum values a value of this type may take (an alternate's enum branch counts)."""
        t = self.types.get(type_name)
        if t is None:
            return ()
        if t.meta == "enum":
            return t.values
        if t.meta == "alternate":
            out: list[str] = []
            for alt in t.alternatives:
                out.extend(self.enum_values(alt))
            return tuple(out)
        return ()

    def is_bool(self, type_name: str) -> bool:
        t = self.types.get(type_name)
        if t is None:
            return False
        if t.meta == "builtin":
            return t.json_type == "boolean"
        if t.meta == "alternate":
            return any(self.is_bool(a) for a in t.alternatives)
        return False

    def is_object(self, type_name: str) -> bool:
        t = self.types.get(type_name)
        if t is None:
            return False
        if t.meta == "object":
            return True
        return t.meta == "alternate" and any(self.is_object(a) for a in t.alternatives)

    def describe(self, type_name: str, depth: int = 0) -> str:
        """A short human name for a type: ``int``, ``str``, ``a|b``, ``[str]``, ``{…}``."""
        t = self.types.get(type_name)
        if t is None:
            return type_name
        if t.meta == "builtin":
            return _JSON_TYPE_NAMES.get(t.json_type, t.name)
        if t.meta == "enum":
            if len(t.values) <= 4:
                return "|".join(t.values)
            return f"{'|'.join(t.values[:3])}|…"
        if t.meta == "array":
            return f"[{self.describe(t.element, depth + 1)}]"
        if t.meta == "alternate":
            if depth > 1:
                return "…"
            return " or ".join(self.describe(a, depth + 1) for a in t.alternatives)
        if t.meta == "object":
            if depth > 0:
                return "{…}"
            names = [m.name for m in t.members]
            if t.tag:
                return "{" + t.tag + "=…, …}"
            inner = ", ".join(names[:4]) + (", …" if len(names) > 4 else "")
            return "{" + inner + "}"
        return t.name

    def signature(
        self, command: str, given: Mapping[str, Any] | None = None
    ) -> list[tuple[str, str, bool]]:
        """``[(arg name, type description, optional)]`` for a command, union branch included."""
        c = self.commands.get(command)
        if c is None:
            return []
        return [
            (m.name, self.describe(m.type), m.optional) for m in self.members(c.arg_type, given)
        ]

    # -- transactions -------------------------------------------------------------------

    def transaction_actions(self) -> dict[str, str]:
        """``{action type: type of its data}`` for ``transaction``'s actions union."""
        c = self.commands.get("transaction")
        if c is None:
            return {}
        actions = self.member(c.arg_type, "actions")
        if actions is None:
            return {}
        arr = self.types.get(actions.type)
        elem = self.types.get(arr.element) if arr is not None else None
        if elem is None:
            return {}
        out: dict[str, str] = {}
        for case, branch in elem.variants.items():
            data = self.member(branch, "data")
            if data is not None:
                out[case] = data.type
        return out
