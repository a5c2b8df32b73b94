"""vrtd's permission file (INI), parsed and resolved as the real daemon does.

Grammar (spec §7): top-level ``include = PATH`` / ``include-glob = PATTERN``;
``[role:NAME]``, ``[role:NAME:SELECTOR]`` (per-device model), ``[user:NAME]``,
``[user:*]`` and ``[group:NAME]`` with repeated ``role = ROLENAME`` keys. Two
flavours exist: the seed's (``device = any`` and ``bar-access = full`` inside
``[role:NAME]``) and the per-device one (``[role:NAME:any]`` or ``:BDF``). A
file is one or the other; mixing is refused like the dev parser refuses seed
keys in ``[role:NAME]``.

Unknown users or groups, unknown keys or bad values inside a section are fatal
(the real daemon refuses to start); unknown sections and top-level keys only
warn. The effective role of a client is the OR of ``[user:*]``, its
``[user:NAME]`` and every ``[group:NAME]`` of its group-database groups.
"""

from __future__ import annotations

import glob
import grp
import logging
import os
import pwd
import re
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("emutui.sim.vrtd")

DEVICE_KEYS = frozenset(
    {
        "bar-access",
        "qdma",
        "buffer",
        "design-write",
        "cfgmem-program",
        "clock",
        "pcie-hotplug",
        "raw-mem-access",
    }
)
_BOOL = {"yes": True, "no": False, "true": True, "false": False, "1": True, "0": False}
_BDF_RE = re.compile(r"^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})(?:\.[0-7])?$")


class PermsError(Exception):
    """The permission file is invalid: the daemon would refuse to start."""


def normalise_selector(sel: str) -> str:
    """``any``, ``DDDD:BB:DD`` or ``BB:DD`` (-> ``0000:BB:DD``); a ``.F`` suffix is stripped."""
    if sel == "any":
        return sel
    m = _BDF_RE.match(sel)
    if not m:
        raise PermsError(f"bad device selector {sel!r} (expected any, DDDD:BB:DD or BB:DD)")
    dom, bus, dev = m.groups()
    return f"{(dom or '0000').lower()}:{bus.lower()}:{dev.lower()}"


@dataclass
class Role:
    query: bool = False
    # seed flavour
    device_any: bool = False
    bar_full: bool = False
    pcie_hotplug: bool = False
    # per-device flavour: selector -> granted keys
    devices: dict[str, set[str]] = field(default_factory=dict)

    def merge(self, other: Role) -> None:
        self.query |= other.query
        self.device_any |= other.device_any
        self.bar_full |= other.bar_full
        self.pcie_hotplug |= other.pcie_hotplug
        for sel, keys in other.devices.items():
            self.devices.setdefault(sel, set()).update(keys)


@dataclass
class Effective:
    """The one role a connection gets, cached for its lifetime (until SIGHUP)."""

    role: Role
    per_device: bool
    allow_all: bool = False

    @property
    def query(self) -> bool:
        return self.allow_all or self.role.query

    def device_may(self, key: str, bdf: str | None) -> bool:
        """Per-device model: an exact BDF policy wins over ``any``, even when it grants less."""
        if self.allow_all:
            return True
        if not self.role.query:
            return False
        if not self.per_device:
            if key == "bar-access":
                return self.role.device_any and self.role.bar_full
            if key == "pcie-hotplug":
                return self.role.pcie_hotplug
            return False
        if bdf is None:  # unknown device index: the per-device check rejects it
            return False
        policy = self.role.devices.get(bdf)
        if policy is None:
            policy = self.role.devices.get("any", set())
        return key in policy


@dataclass
class Permissions:
    roles: dict[str, Role] = field(default_factory=dict)
    default_roles: list[str] = field(default_factory=list)  # [user:*]
    users: dict[int, list[str]] = field(default_factory=dict)  # uid -> roles
    groups: dict[int, list[str]] = field(default_factory=dict)  # gid -> roles
    per_device: bool = False
    allow_all: bool = False
    source: str = "<built-in: full access, socket 0600: yours alone>"

    @classmethod
    def everyone(cls) -> Permissions:
        """No config given: a development simulator lets everybody in."""
        return cls(allow_all=True)

    def resolve(self, uid: int, gids: list[int]) -> Effective:
        eff = Role()
        names = list(self.default_roles) + list(self.users.get(uid, []))
        for g in gids:
            names += self.groups.get(g, [])
        for n in names:
            role = self.roles.get(n)
            if role is not None:  # undefined roles were warned about at load time
                eff.merge(role)
        return Effective(eff, self.per_device, self.allow_all)


def peer_groups(uid: int, gid: int) -> list[int] | None:
    """getpwuid + getgrouplist, like accept.c. None when the uid has no passwd entry."""
    try:
        name = pwd.getpwuid(uid).pw_name
        return list(os.getgrouplist(name, gid))
    except (KeyError, OSError):
        return None


def load_permissions(path: str | os.PathLike[str], generation: int = 2) -> Permissions:
    """Parse a permission file as vrtd of that protocol generation would: the dev
    daemon (generation 2) knows only ``query-devices`` in ``[role:NAME]`` and
    refuses to start on the seed's ``device`` / ``bar-access`` / ``pcie-hotplug``
    there (config.c:773, "Unknown role key")."""
    perms = Permissions(source=str(path))
    flavours: set[str] = set()
    raw_users: list[tuple[str, list[str]]] = []
    raw_groups: list[tuple[str, list[str]]] = []
    seen: set[str] = set()

    def parse_file(p: Path) -> None:
        real = os.path.realpath(p)
        if real in seen:  # each file once, deduplicated by realpath
            return
        seen.add(real)
        try:
            text = p.read_text()
        except OSError as e:
            raise PermsError(f"{p}: cannot read ({e.strerror})") from e
        section: str | None = None
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            where = f"{p}:{lineno}"
            if line.startswith("["):
                if not line.endswith("]"):
                    raise PermsError(f"{where}: unterminated section header")
                section = line[1:-1].strip()
                _open_section(section, where)
                continue
            if "=" not in line:
                raise PermsError(f"{where}: expected key = value")
            key, value = (s.strip() for s in line.split("=", 1))
            # inih strips inline comments only after whitespace + ';'
            value = re.split(r"\s+;", value, maxsplit=1)[0].strip()
            if section is None:
                _top_level(p, key, value, where)
            else:
                _section_key(section, key, value, where)

    def _open_section(section: str, where: str) -> None:
        parts = section.split(":")
        kind = parts[0]
        if kind == "role" and len(parts) == 2:
            perms.roles.setdefault(parts[1], Role())
        elif kind == "role" and len(parts) >= 3:
            # [role:NAME:SELECTOR]; a BDF selector itself contains ':'
            name, sel = parts[1], ":".join(parts[2:])
            role = perms.roles.setdefault(name, Role())
            role.devices.setdefault(normalise_selector(sel), set())
            flavours.add("per-device")
        elif kind == "user" and len(parts) == 2:
            raw_users.append((parts[1], []))
        elif kind == "group" and len(parts) == 2:
            raw_groups.append((parts[1], []))
        else:
            log.warning("%s: unknown section [%s] ignored", where, section)

    def _top_level(p: Path, key: str, value: str, where: str) -> None:
        if key == "include":
            inc = Path(value)
            parse_file(inc if inc.is_absolute() else p.parent / inc)
        elif key == "include-glob":
            # dev resolves a relative glob against the including file's directory
            pattern = value if os.path.isabs(value) else str(p.parent / value)
            for match in sorted(glob.glob(pattern)):
                parse_file(Path(match))
        elif key == "enable-mock-device":
            pass  # parsed by dev, read by nothing
        else:
            log.warning("%s: unknown top-level key %r ignored", where, key)

    def _bool(value: str, where: str, key: str) -> bool:
        try:
            return _BOOL[value.lower()]
        except KeyError:
            raise PermsError(f"{where}: {key}: expected yes or no, got {value!r}") from None

    def _section_key(section: str, key: str, value: str, where: str) -> None:
        parts = section.split(":")
        kind = parts[0]
        if kind == "role" and len(parts) == 2:
            role = perms.roles[parts[1]]
            if generation >= 2 and key != "query-devices":
                raise PermsError(
                    f"{where}: unknown role key {key!r} in [{section}]: the dev daemon "
                    f"takes device permissions only in [role:NAME:SELECTOR] sections"
                )
            if key == "query-devices":
                role.query = _bool(value, where, key)
            elif key == "device":
                if value != "any":
                    raise PermsError(f"{where}: device: only 'any' is supported, got {value!r}")
                role.device_any = True
                flavours.add("seed")
            elif key == "bar-access":
                if value != "full":
                    raise PermsError(f"{where}: bar-access: only 'full' is accepted, got {value!r}")
                role.bar_full = True
                flavours.add("seed")
            elif key == "pcie-hotplug":
                role.pcie_hotplug = _bool(value, where, key)
                flavours.add("seed")
            else:
                raise PermsError(f"{where}: unknown key {key!r} in [{section}]")
        elif kind == "role":
            role = perms.roles[parts[1]]
            sel = normalise_selector(":".join(parts[2:]))
            keys = role.devices.setdefault(sel, set())
            if key == "bar-access":
                if value != "full":
                    raise PermsError(f"{where}: bar-access: only 'full' is accepted, got {value!r}")
                keys.add(key)
            elif key in DEVICE_KEYS:
                if _bool(value, where, key):
                    keys.add(key)
            else:
                raise PermsError(f"{where}: unknown key {key!r} in [{section}]")
        elif kind in ("user", "group"):
            if key != "role":
                raise PermsError(f"{where}: unknown key {key!r} in [{section}] (expected role)")
            target = raw_users if kind == "user" else raw_groups
            target[-1][1].append(value)
        # keys inside unknown sections were already warned about with the section

    parse_file(Path(path))
    if len(flavours) > 1:
        raise PermsError(
            f"{path}: mixes seed-style device/bar-access keys in [role:NAME] with "
            f"per-device [role:NAME:SELECTOR] sections"
        )
    perms.per_device = flavours == {"per-device"}

    for name, roles in raw_users:
        if name == "*":
            perms.default_roles += roles
            continue
        try:
            uid = pwd.getpwnam(name).pw_uid
        except KeyError:
            raise PermsError(f"{path}: [user:{name}]: no such user") from None
        perms.users.setdefault(uid, []).extend(roles)
    for name, roles in raw_groups:
        try:
            gid = grp.getgrnam(name).gr_gid
        except KeyError:
            raise PermsError(f"{path}: [group:{name}]: no such group") from None
        perms.groups.setdefault(gid, []).extend(roles)
    referenced = set(perms.default_roles)
    for rs in list(perms.users.values()) + list(perms.groups.values()):
        referenced.update(rs)
    for r in sorted(referenced - set(perms.roles)):
        log.warning("%s: role %r is referenced but not defined", path, r)
    return perms
