"""events.jsonl: every event seen while any emutui was attached, append-only, rotated by size."""

from __future__ import annotations

import fcntl
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


class JournalWriter:
    """Writes events to the journal only while it holds the journal's writer lock.

    Every emutui attached to an instance sees every event (QEMU broadcasts them
    to each monitor); electing one writer by flock keeps events.jsonl free of
    duplicates, and the lock passes on by itself when the holder exits or dies.
    """

    LOCK_FILE = "events.lock"

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._fd: int | None = None

    def _try_lock(self) -> bool:
        if self._fd is not None:
            return True
        try:
            fd = os.open(self.journal.path.with_name(self.LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def offer(self, event: Event) -> bool:
        """Append ``event`` if this process is the writer; False when another one is."""
        if not self._try_lock():
            return False
        try:
            self.journal.append(event)
        except OSError:
            # A full disk must not take the session down; the event still
            # reaches the UI. (ENOSPC is reported by whoever shows events.)
            return False
        return True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
