"""Instance: a working directory, its Handles, and its live state."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emutui.core import proc
from emutui.core.errors import ProtocolError
from emutui.core.handles import HANDLES_FILE, Handles
from emutui.core.journal import Journal
from emutui.core.model import InstanceState
from emutui.core.rotating import DEFAULT_GENERATIONS, DEFAULT_MAX_BYTES
from emutui.core.sanitize import sanitize

if TYPE_CHECKING:
    from emutui.core.runs import Run

OUTPUT_LOG = "output.log"  # the emulator's own stdout and stderr


def option_int(opts: dict[str, Any], key: str, default: int) -> int:
    """A positive integer option from handles.json, else ``default``: the file may have
    been edited by hand (``"log_max_bytes": "abc"``), which must not break a command."""
    v = opts.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        return default
    return v


def format_uptime(seconds: float | None) -> str:
    """Compact uptime for tables: 4m07s, 3h12m, 2d05h; '-' when not running."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


@dataclass
class Instance:
    name: str
    wd: Path
    handles: Handles | None
    error: str | None = None  # why handles could not be read
    run: Run | None = None  # set for a kept run (read-only, never alive)

    @property
    def ref(self) -> str:
        """How to name it on the command line: NAME, or the run id of a kept run."""
        return self.run.id if self.run is not None else self.name

    @property
    def backend(self) -> str:
        return self.handles.backend if self.handles else "?"

    @property
    def target(self) -> str:
        return self.handles.target if self.handles else "?"

    @property
    def pid(self) -> int | None:
        return self.handles.pid if self.handles else None

    @property
    def host(self) -> str | None:
        """The lab host this instance lives on; None for this machine."""
        return None

    @property
    def is_daemon(self) -> bool:
        """An attached daemon (vrtd): we do not own its process."""
        return bool(self.handles and self.handles.options.get("attached"))

    def alive(self) -> bool:
        if self.handles is None or self.run is not None:
            return False
        if self.is_daemon:
            # An attached QEMU's pid is its monitor's socket peer: known for unix
            # sockets (never signalled, only watched). Otherwise liveness of a
            # daemon is whether its socket answers.
            peer = self.handles.options.get("peer_pid")
            if isinstance(peer, int) and not isinstance(peer, bool) and peer > 1:
                start = self.handles.options.get("peer_pid_start")
                return proc.is_alive(peer, start if isinstance(start, int) else None)
            return True
        return proc.is_alive(self.handles.pid, self.handles.pid_start)

    def process_state(self) -> InstanceState:
        """What can be told without talking to the emulator."""
        if self.handles is None or self.run is not None:
            return InstanceState.DEAD
        if not self.alive():
            return InstanceState.DEAD
        return InstanceState.UNKNOWN

    def uptime(self) -> float | None:
        if self.handles is None or not self.alive():
            return None
        if self.handles.created <= 0:
            return None  # no creation time recorded: '-', not 55 years
        return max(0.0, time.time() - self.handles.created)

    def journal(self) -> Journal:
        opts = self.handles.options if self.handles else {}
        return Journal(
            self.wd,
            max_bytes=option_int(opts, "log_max_bytes", DEFAULT_MAX_BYTES),
            generations=option_int(opts, "log_generations", DEFAULT_GENERATIONS),
        )

    def serial_log(self, channel: str) -> Path:
        if self.handles and channel in self.handles.channels:
            log = self.handles.channels[channel].log
            if log:
                # A kept run moved: its logs are in its own directory, whatever was recorded.
                return self.wd / Path(log).name if self.run is not None else Path(log)
        return self.wd / f"serial-{channel}.log"

    def output_log(self) -> Path:
        return self.wd / OUTPUT_LOG

    def tail(self, path: Path | None = None, lines: int = 10) -> list[str]:
        path = path or self.output_log()
        try:
            with path.open("rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 8192))
                data = f.read()
        except OSError:
            return []
        # Through the terminal filter while still bytes (raw 8-bit C1 controls are
        # recognised only there); callers strip what is left for one-line display.
        text = sanitize(data).decode("utf-8", "replace").splitlines()
        return text[-lines:]

    def summary(self) -> dict[str, Any]:
        h = self.handles
        return {
            "name": self.name,
            "backend": self.backend,
            "target": self.target,
            "pid": h.pid if h else None,
            "dir": str(self.wd),
            "simulated": bool(h and h.simulated),
            "attached": self.is_daemon,
            "created": h.created if h else None,
            "channels": sorted(h.channels) if h else [],
            "error": self.error,
        }

    @contextmanager
    def lock(self, blocking: bool = True) -> Iterator[None]:
        """Serialise lifecycle changes (start, stop) between emutui processes."""
        fd = os.open(self.wd / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
            yield
        finally:
            os.close(fd)

    @classmethod
    def load(cls, wd: Path) -> Instance:
        try:
            return cls(name=wd.name, wd=wd, handles=Handles.load(wd))
        except FileNotFoundError:
            return cls(name=wd.name, wd=wd, handles=None, error=f"no {HANDLES_FILE}")
        except ProtocolError as e:
            return cls(name=wd.name, wd=wd, handles=None, error=str(e))
