"""events.jsonl: every event seen while any emutui was attached, append-only, rotated by size."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from emutui.core.model import Event
from emutui.core.rotating import DEFAULT_GENERATIONS, DEFAULT_MAX_BYTES, RotatingLog, generations

EVENTS_FILE = "events.jsonl"


class Journal:
    """Appends events as JSON lines, rotated by size like the serial logs."""

    def __init__(
        self,
        wd: Path,
        max_bytes: int = DEFAULT_MAX_BYTES,
        generations: int = DEFAULT_GENERATIONS,
    ) -> None:
        self.path = wd / EVENTS_FILE
        self._log = RotatingLog(self.path, max_bytes, generations)

    @property
    def error(self) -> str | None:
        """Why the last append could not reach the disk (ENOSPC…); None when all is written."""
        return self._log.error

    def append(self, event: Event) -> None:
        self.append_many([event])

    def append_many(self, events: list[Event]) -> None:
        """One write for many events (a flood costs one syscall per batch, not per event)."""
        lines = [json.dumps(e.to_json(), separators=(",", ":"), default=str) + "\n" for e in events]
        self._log.write("".join(lines).encode())

    def close(self) -> None:
        self._log.close()

    def read(self, limit: int | None = None) -> list[Event]:
        events = list(self._iter())
        return events[-limit:] if limit else events

    def _iter(self) -> Iterator[Event]:
        """Every kept generation, oldest first (events.jsonl.N … .1, events.jsonl)."""
        for path in generations(self.path):
            try:
                f = path.open("rb")
            except FileNotFoundError:
                continue  # rotated away meanwhile
            with f:
                for raw in f:
                    ev = parse_event(raw)
                    if ev is not None:
                        yield ev


def parse_event(raw: bytes) -> Event | None:
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        return None  # a torn line from a writer killed mid-write
    if not isinstance(obj, dict):
        return None
    try:
        return Event.from_json(obj)
    except (TypeError, ValueError):
        return None


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
        # A full disk must not take the session down: the event still reaches
        # the UI, the journal keeps it in memory until the disk has room, and
        # ``journal.error`` says why it is not written yet.
        self.journal.append(event)
        return True

    def offer_many(self, events: list[Event]) -> bool:
        """``offer`` for a batch."""
        if not events or not self._try_lock():
            return False
        self.journal.append_many(events)
        return True

    def close(self) -> None:
        self.journal.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
