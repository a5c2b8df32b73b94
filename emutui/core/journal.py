"""events.jsonl: every event seen while any emutui was attached, append-only, rotated by size."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from emutui.core.model import Event

EVENTS_FILE = "events.jsonl"
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_GENERATIONS = 3


class Journal:
    """Appends events as JSON lines; several writers may share the file (O_APPEND)."""

    def __init__(
        self,
        wd: Path,
        max_bytes: int = DEFAULT_MAX_BYTES,
        generations: int = DEFAULT_GENERATIONS,
    ) -> None:
        self.path = wd / EVENTS_FILE
        self.max_bytes = max_bytes
        self.generations = generations

    def append(self, event: Event) -> None:
        line = json.dumps(event.to_json(), separators=(",", ":"), default=str) + "\n"
        data = line.encode()
        self._maybe_rotate(len(data))
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def _maybe_rotate(self, incoming: int) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size + incoming <= self.max_bytes:
            return
        for gen in range(self.generations - 1, 0, -1):
            src = self.path.with_name(f"{EVENTS_FILE}.{gen}")
            if src.exists():
                os.replace(src, self.path.with_name(f"{EVENTS_FILE}.{gen + 1}"))
        os.replace(self.path, self.path.with_name(f"{EVENTS_FILE}.1"))

    def read(self, limit: int | None = None) -> list[Event]:
        events = list(self._iter())
        return events[-limit:] if limit else events

    def _iter(self) -> Iterator[Event]:
        try:
            f = self.path.open("rb")
        except FileNotFoundError:
            return
        with f:
            for raw in f:
                try:
                    obj = json.loads(raw)
                except ValueError:
                    continue  # a torn line from a writer killed mid-write
                if isinstance(obj, dict):
                    yield Event.from_json(obj)
