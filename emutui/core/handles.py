"""What a launcher records about an instance, saved as handles.json in its directory."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from emutui.core.errors import ProtocolError

HANDLES_FILE = "handles.json"


@dataclass(slots=True)
class Channel:
    """One way into the instance.

    ``kind`` is ``unix``, ``tcp``, ``pty`` or ``seqpacket``; ``role`` says what
    speaks there: ``qmp``, ``qmp-aux``, ``serial``, ``qtest``, ``robot``, ``vrtd``.
    ``log`` is the file that keeps everything this channel produced.
    """

    role: str
    kind: str
    path: str | None = None
    host: str | None = None
    port: int | None = None
    log: str | None = None
    upstream: str | None = None  # the emulator's own socket behind a serial hub

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(slots=True)
class Handles:
    name: str
    backend: str
    target: str
    pid: int | None = None
    pid_start: int | None = None  # /proc start time in ticks: pid + start = identity
    command: list[str] = field(default_factory=list)
    channels: dict[str, Channel] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    simulated: bool = False
    options: dict[str, Any] = field(default_factory=dict)  # backend-specific extras

    def serial_channels(self) -> list[str]:
        return [k for k, c in self.channels.items() if c.role == "serial"]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "backend": self.backend,
            "target": self.target,
            "pid": self.pid,
            "pid_start": self.pid_start,
            "command": self.command,
            "channels": {k: c.to_json() for k, c in self.channels.items()},
            "created": self.created,
            "simulated": self.simulated,
            "options": self.options,
        }

    @classmethod
    def from_json(cls, obj: Any) -> Handles:
        """Strict: handles.json decides which process gets signalled, so a value of the
        wrong type (``"pid": true``, ``"pid": "1"``, ``"pid_start": 1.5``) is refused,
        never coerced."""
        if not isinstance(obj, dict):
            raise ProtocolError("handles.json: expected a JSON object")
        try:
            raw_channels = _or(obj.get("channels"), {})
            if not isinstance(raw_channels, dict):
                raise TypeError("channels: expected an object")
            channels = {}
            for k, v in raw_channels.items():
                if not isinstance(v, dict):
                    raise TypeError(f"channels.{k}: expected an object")
                channels[str(k)] = Channel(
                    role=_str(v, "role", required=True) or "",
                    kind=_str(v, "kind", required=True) or "",
                    path=_str(v, "path"),
                    host=_str(v, "host"),
                    port=_int(v, "port"),
                    log=_str(v, "log"),
                    upstream=_str(v, "upstream"),
                )
            pid = _int(obj, "pid")
            if pid is not None and pid <= 1:
                raise ValueError(f"pid: {pid} is not an emulator's pid")
            pid_start = _int(obj, "pid_start")
            if pid_start is not None and pid_start < 0:
                raise ValueError("pid_start: negative")
            created = obj.get("created", 0.0)
            if type(created) not in (int, float):
                raise TypeError("created: expected a number")
            command = _or(obj.get("command"), [])
            if not isinstance(command, list):
                raise TypeError("command: expected a list")
            options = _or(obj.get("options"), {})
            if not isinstance(options, dict):
                raise TypeError("options: expected an object")
            simulated = obj.get("simulated", False)
            if not isinstance(simulated, bool):
                raise TypeError("simulated: expected true or false")
            return cls(
                name=_str(obj, "name", required=True) or "",
                backend=_str(obj, "backend", required=True) or "",
                target=_str(obj, "target") or "",
                pid=pid,
                pid_start=pid_start,
                command=[str(a) for a in command],
                channels=channels,
                created=float(created),
                simulated=simulated,
                options=dict(options),
            )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
            raise ProtocolError(f"handles.json: malformed ({e.__class__.__name__}: {e})") from e

    def save(self, wd: Path) -> None:
        """Atomic write: a reader never sees half a file."""
        tmp = wd / f".{HANDLES_FILE}.{os.getpid()}.tmp"
        data = json.dumps(self.to_json(), indent=2, sort_keys=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(data + "\n")
        os.replace(tmp, wd / HANDLES_FILE)

    @classmethod
    def load(cls, wd: Path) -> Handles:
        path = wd / HANDLES_FILE
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise
        except OSError as e:
            raise ProtocolError(f"{path}: cannot read ({e.strerror})") from e
        except UnicodeDecodeError:
            raise ProtocolError(f"{path}: corrupted (not UTF-8)") from None
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise ProtocolError(f"{path}: corrupted ({e.msg} at line {e.lineno})") from e
        except RecursionError:
            raise ProtocolError(f"{path}: corrupted (nested too deeply)") from None
        return cls.from_json(obj)


def _int(obj: dict[str, Any], key: str) -> int | None:
    v = obj.get(key)
    if v is None:
        return None
    if type(v) is not int:  # bool is an int subclass: refused too
        raise TypeError(f"{key}: expected an integer, got {type(v).__name__}")
    return v


def _str(obj: dict[str, Any], key: str, required: bool = False) -> str | None:
    v = obj[key] if required else obj.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise TypeError(f"{key}: expected a string, got {type(v).__name__}")
    return v


def _or(v: Any, default: Any) -> Any:
    """``v`` unless it is absent (None): an empty list where an object belongs is refused."""
    return default if v is None else v
