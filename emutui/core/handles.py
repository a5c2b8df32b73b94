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
        if not isinstance(obj, dict):
            raise ProtocolError("handles.json: expected a JSON object")
        try:
            channels = {
                str(k): Channel(
                    role=str(v["role"]),
                    kind=str(v["kind"]),
                    path=v.get("path"),
                    host=v.get("host"),
                    port=v.get("port"),
                    log=v.get("log"),
                    upstream=v.get("upstream"),
                )
                for k, v in dict(obj.get("channels") or {}).items()
            }
            pid = obj.get("pid")
            pid_start = obj.get("pid_start")
            return cls(
                name=str(obj["name"]),
                backend=str(obj["backend"]),
                target=str(obj.get("target", "")),
                pid=int(pid) if pid is not None else None,
                pid_start=int(pid_start) if pid_start is not None else None,
                command=[str(a) for a in obj.get("command") or []],
                channels=channels,
                created=float(obj.get("created", 0.0)),
                simulated=bool(obj.get("simulated", False)),
                options=dict(obj.get("options") or {}),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
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
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise ProtocolError(f"{path}: corrupted ({e.msg} at line {e.lineno})") from e
        return cls.from_json(obj)
