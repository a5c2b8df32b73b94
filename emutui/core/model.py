"""Plain dataclasses that cross layers: backend tasks produce them, the CLI and TUI consume them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Capability(StrEnum):
    SERIAL = "serial"
    EVENTS = "events"
    PROPERTIES = "properties"
    PROPERTY_WRITE = "property-write"
    MEMORY = "memory"
    MEMORY_WRITE = "memory-write"
    PAUSE = "pause"
    RESET = "reset"
    STOP = "stop"
    COMMANDS = "commands"  # a raw monitor: QMP, the Renode monitor, vrtd opcodes


class InstanceState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    DEAD = "dead"
    BUSY = "busy"  # alive, but another client holds the monitor we asked for
    DISCONNECTED = "disconnected"  # a daemon we attach to is not answering
    STARTING = "starting"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class InstanceStatus:
    state: InstanceState
    detail: str = ""  # backend's own words, e.g. QEMU's runstate "prelaunch"


@dataclass(frozen=True, slots=True)
class Event:
    """One asynchronous happening: a QMP event, a Renode log line, a daemon notice."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)
    source: str = ""  # instance name

    def to_json(self) -> dict[str, Any]:
        return {"time": self.timestamp, "name": self.name, "data": self.data, "source": self.source}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Event:
        return cls(
            name=str(obj.get("name", "")),
            data=dict(obj.get("data") or {}),
            timestamp=float(obj.get("time", 0.0)),
            source=str(obj.get("source", "")),
        )


@dataclass(frozen=True, slots=True)
class PropertyNode:
    """A node of a property tree (QOM object, Renode peripheral, vrtd device or BAR).

    ``path`` is the full path of the node this entry describes when it is a
    child (``has_children``); for a leaf property it is the owning node's path.
    """

    name: str
    path: str
    type: str
    has_children: bool = False
    value: Any = None
    readable: bool = True
    writable: bool = False
    description: str = ""


@dataclass(frozen=True, slots=True)
class MemoryRegion:
    """A window of device memory: a PCI BAR, a sysbus range, a vrtd BAR."""

    name: str
    base: int
    size: int
    writable: bool = False
    access_width: int = 1  # bytes per access the device accepts; MMIO is often 4
    description: str = ""
    # How the target stores a word: every backend emutui drives today (x86, Cortex-M,
    # PCIe BARs) is little-endian; a big-endian one sets "big".
    byte_order: str = "little"

    def check(self, offset: int, length: int) -> None:
        from emutui.core.errors import RangeError

        if offset < 0 or length < 0:
            raise RangeError(f"{self.name}: offset and length must not be negative")
        if offset + length > self.size:
            raise RangeError(
                f"{self.name}: 0x{offset:x}+{length} is outside the region (size 0x{self.size:x})"
            )
