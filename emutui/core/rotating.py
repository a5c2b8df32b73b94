"""A size-rotated append-only log that survives a full disk without losing what it holds."""

from __future__ import annotations

import errno
import os
from pathlib import Path

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_GENERATIONS = 3
PENDING_MAX = 8 * 1024 * 1024  # bytes kept in memory while the disk is full


class RotatingLog:
    """``path`` grows to ``max_bytes``, then becomes ``path.1`` (``.1`` → ``.2`` …).

    At most ``generations`` old files are kept, so a flooding guest costs at
    most ``(generations + 1) * max_bytes`` of disk. When a write fails (ENOSPC,
    EIO) the bytes wait in memory, up to PENDING_MAX, and go out with the next
    write that succeeds; ``error`` says what went wrong until then.
    """

    def __init__(
        self,
        path: Path,
        max_bytes: int = DEFAULT_MAX_BYTES,
        generations: int = DEFAULT_GENERATIONS,
    ) -> None:
        self.path = path
        self.max_bytes = max(4096, max_bytes)
        self.generations = max(1, generations)
        self.error: str | None = None
        self.dropped = 0  # bytes lost because the disk stayed full past PENDING_MAX
        self._pending = bytearray()
        self._fd: int | None = None
        self._size = 0

    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._size = os.fstat(self._fd).st_size
        return self._fd

    # Side files that rotate with each generation (``NAME.N`` + suffix), e.g. a time index.
    companions: tuple[str, ...] = ()

    def rotate(self) -> None:
        self.close()
        for gen in range(self.generations - 1, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{gen}")
            if src.exists():
                self._move(src, self.path.with_name(f"{self.path.name}.{gen + 1}"))
        if self.path.exists():
            self._move(self.path, self.path.with_name(f"{self.path.name}.1"))

    def _move(self, src: Path, dst: Path) -> None:
        os.replace(src, dst)
        for suffix in self.companions:
            csrc, cdst = src.with_name(src.name + suffix), dst.with_name(dst.name + suffix)
            try:
                os.replace(csrc, cdst)
            except FileNotFoundError:
                # no side file for this generation: none must survive for the one it replaces
                cdst.unlink(missing_ok=True)

    def _wrote(self, offset: int, n: int) -> None:
        """Called after ``n`` bytes went to the current file at ``offset`` (a hook)."""

    def write(self, data: bytes) -> None:
        self._pending += data
        try:
            while self._pending:
                fd = self._open()
                room = self.max_bytes - self._size
                if room <= 0:
                    self.rotate()
                    continue
                n = os.write(fd, self._pending[:room])
                del self._pending[:n]
                self._wrote(self._size, n)
                self._size += n
            self.error = None
        except OSError as e:
            self.error = f"{self.path.name}: {os.strerror(e.errno or errno.EIO)}"
            if len(self._pending) > PENDING_MAX:
                over = len(self._pending) - PENDING_MAX
                del self._pending[:over]
                self.dropped += over
            self.close()

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None


def generations(path: Path, limit: int = 1000) -> list[Path]:
    """Every kept file of the log at ``path``, oldest first: ``path.N`` … ``path.1``, ``path``."""
    old = []
    for gen in range(1, limit + 1):
        p = path.with_name(f"{path.name}.{gen}")
        if not p.exists():
            break
        old.append(p)
    old.reverse()
    return old + ([path] if path.exists() else [])
