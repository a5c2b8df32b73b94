"""When each byte of a serial log arrived: a side index of byte offset -> time.

Every log file ``L`` (and every rotated generation ``L.N``) may have a side
file ``L.tidx`` of fixed-size binary records ``(offset: u64, time: f64)``,
little-endian, appended as chunks arrive: the chunk that starts at ``offset``
of ``L`` arrived at ``time`` (unix seconds). Records are written at most once
per millisecond (a flood costs at most 16 KB/s of index), and the index rotates
with its log (``RotatingLog.companions``), so a kept generation keeps its times.

Fixed-size records let a reader binary-search the file through an mmap without
loading it: memory does not grow with the log, and a lookup is O(log n).
"""

from __future__ import annotations

import mmap
import os
import struct
import time
from collections.abc import Callable
from pathlib import Path

from emutui.core.rotating import DEFAULT_GENERATIONS, DEFAULT_MAX_BYTES, RotatingLog

SUFFIX = ".tidx"
REC = struct.Struct("<Qd")


def index_path(log: Path) -> Path:
    return log.with_name(log.name + SUFFIX)


class TimedLog(RotatingLog):
    """A RotatingLog that also records the arrival time of what it writes."""

    companions = (SUFFIX,)

    def __init__(
        self,
        path: Path,
        max_bytes: int = DEFAULT_MAX_BYTES,
        generations: int = DEFAULT_GENERATIONS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(path, max_bytes, generations)
        self._clock = clock
        self._ifd: int | None = None
        self._last_ms = -1
        self._arrival = 0.0

    def write(self, data: bytes) -> None:
        self._arrival = self._clock()
        super().write(data)

    def _wrote(self, offset: int, n: int) -> None:
        ms = int(self._arrival * 1000)
        if ms == self._last_ms and offset != 0:
            return
        try:
            if self._ifd is None:
                self._ifd = os.open(
                    index_path(self.path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600
                )
            os.write(self._ifd, REC.pack(offset, self._arrival))
            self._last_ms = ms
        except OSError:
            # Times are a convenience; the log itself is the record. Try again next chunk.
            self._close_index()

    def _close_index(self) -> None:
        if self._ifd is not None:
            try:
                os.close(self._ifd)
            except OSError:
                pass
            self._ifd = None

    def close(self) -> None:
        super().close()
        self._close_index()
        self._last_ms = -1


class TimeIndex:
    """Read side: the arrival time of any offset of one log file, without loading the index."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self._mm: mmap.mmap | None = None
        self.count = 0
        try:
            with open(index_path(log), "rb") as f:
                size = os.fstat(f.fileno()).st_size
                self.count = size // REC.size
                if self.count:
                    self._mm = mmap.mmap(f.fileno(), self.count * REC.size, prot=mmap.PROT_READ)
        except (OSError, ValueError):
            self.count = 0

    def __bool__(self) -> bool:
        return self.count > 0

    def record(self, i: int) -> tuple[int, float]:
        assert self._mm is not None
        off, t = REC.unpack_from(self._mm, i * REC.size)
        return int(off), float(t)

    def find(self, offset: int) -> int:
        """Index of the last record at or before ``offset`` (-1 when none)."""
        lo, hi = 0, self.count
        while lo < hi:
            mid = (lo + hi) // 2
            if self.record(mid)[0] <= offset:
                lo = mid + 1
            else:
                hi = mid
        return lo - 1

    def time_at(self, offset: int) -> float | None:
        return self.span_at(offset)[2]

    def span_at(self, offset: int) -> tuple[int, int, float | None]:
        """``(lo, hi, t)``: every offset in [lo, hi) arrived at ``t`` (a cache for readers)."""
        if not self.count:
            return (0, 1 << 62, None)
        i = self.find(offset)
        if i < 0:
            return (0, self.record(0)[0], self.record(0)[1])
        lo, t = self.record(i)
        hi = self.record(i + 1)[0] if i + 1 < self.count else 1 << 62
        return (lo, hi, t)

    def offset_at(self, t: float) -> int | None:
        """Offset of the first chunk that arrived at or after ``t`` (None: all came before)."""
        lo, hi = 0, self.count
        while lo < hi:
            mid = (lo + hi) // 2
            if self.record(mid)[1] < t:
                lo = mid + 1
            else:
                hi = mid
        return self.record(lo)[0] if lo < self.count else None

    def first_time(self) -> float | None:
        return self.record(0)[1] if self.count else None

    def last_time(self) -> float | None:
        return self.record(self.count - 1)[1] if self.count else None

    def close(self) -> None:
        if self._mm is not None:
            self._mm.close()
            self._mm = None
            self.count = 0


class TimeCursor:
    """Times of increasing offsets, walking the index forward (O(1) amortised per line)."""

    def __init__(self, index: TimeIndex, start: int = 0) -> None:
        self.index = index
        self.i = max(0, index.find(start)) if index else 0
        self._next_off = index.record(self.i + 1)[0] if self.i + 1 < index.count else None
        self._t = index.record(self.i)[1] if index else None

    def time_at(self, offset: int) -> float | None:
        idx = self.index
        while self._next_off is not None and self._next_off <= offset:
            self.i += 1
            self._t = idx.record(self.i)[1]
            self._next_off = idx.record(self.i + 1)[0] if self.i + 1 < idx.count else None
        return self._t
