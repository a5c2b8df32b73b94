"""One timeline: every serial line and every event of one or more runs, merged by time.

Built over the files themselves, never loaded whole: a source is a log and its
rotated generations (oldest first); a position in it is ``(file, offset)`` of
a line start. A serial line's time comes from the hub's side index
(core/timeindex.py), an event's from its own JSON. Reading forward or backward
from a position touches only the lines it returns (through a small block
cache), and jumping to a time is a binary search, so the cost of a page does
not depend on how big the logs are. The CLI (``emutui timeline``) walks it
forward; the TUI's timeline pane pages through it both ways.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emutui.core.instance import Instance
from emutui.core.journal import EVENTS_FILE
from emutui.core.rotating import generations
from emutui.core.timeindex import TimeIndex

BLOCK = 64 * 1024
CACHE_BLOCKS = 32  # per source: at most 2 MiB of file data in memory
MAX_LINE = 64 * 1024  # longer lines are cut here (a guest that never prints a newline)

Pos = tuple[int, int]  # (file number in the source, byte offset of a line start)


@dataclass(frozen=True, slots=True)
class TLine:
    t: float
    source: str
    text: bytes
    kind: str  # serial | event | run


@dataclass
class _File:
    path: Path
    ino: int
    size: int
    index: TimeIndex | None = None


class FileSource:
    """A log (serial or the event journal) and its kept generations, as lines with times."""

    def __init__(self, label: str, path: Path, kind: str, fallback: float = 0.0) -> None:
        self.label = label
        self.path = path
        self.kind = kind
        self.fallback = fallback  # time for lines written before any time was recorded
        self.keep_raw = False  # events as their JSON lines (export), not as readable text
        self._tspan: tuple[int, int, int, float | None] | None = None  # last time lookup
        self.files: list[_File] = []
        self._cache: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self.refresh()

    # -- files --------------------------------------------------------------------------

    def refresh(self) -> dict[int, int]:
        """Re-read which files exist and how big they are; returns old -> new file numbers."""
        old = self.files
        new: list[_File] = []
        for p in generations(self.path):
            try:
                st = p.stat()
            except OSError:
                continue
            new.append(_File(p, st.st_ino, st.st_size))
        by_ino = {f.ino: i for i, f in enumerate(new)}
        remap = {i: by_ino[f.ino] for i, f in enumerate(old) if f.ino in by_ino}
        for i, f in enumerate(old):
            j = remap.get(i)
            if j is not None and new[j].size == f.size and f.path == new[j].path:
                new[j].index = f.index  # unchanged: keep its index open
            elif f.index is not None:
                f.index.close()
        self.files = new
        self._cache.clear()
        self._tspan = None
        return remap

    def close(self) -> None:
        for f in self.files:
            if f.index is not None:
                f.index.close()
                f.index = None
        self._cache.clear()

    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def _block(self, fi: int, n: int) -> bytes:
        key = (self.files[fi].ino, n)
        data = self._cache.get(key)
        if data is not None:
            self._cache.move_to_end(key)
            return data
        try:
            fd = os.open(self.files[fi].path, os.O_RDONLY)
        except OSError:
            return b""
        try:
            data = os.pread(fd, BLOCK, n * BLOCK)
        finally:
            os.close(fd)
        size = self.files[fi].size
        data = data[: max(0, size - n * BLOCK)]
        self._cache[key] = data
        if len(self._cache) > CACHE_BLOCKS:
            self._cache.popitem(last=False)
        return data

    def _read(self, fi: int, off: int, n: int) -> bytes:
        out = bytearray()
        while n > 0:
            blk = self._block(fi, off // BLOCK)
            piece = blk[off % BLOCK : off % BLOCK + n]
            if not piece:
                break
            out += piece
            off += len(piece)
            n -= len(piece)
        return bytes(out)

    def _find_nl(self, fi: int, off: int, limit: int) -> int:
        """Offset of the first newline at or after ``off`` (-1 if none within ``limit``)."""
        end = min(self.files[fi].size, off + limit)
        while off < end:
            blk = self._block(fi, off // BLOCK)
            start = off % BLOCK
            j = blk.find(b"\n", start, start + (end - off))
            if j >= 0:
                return off - start + j
            if not blk[start:]:
                break
            off += len(blk) - start
        return -1

    def _rfind_nl(self, fi: int, off: int, limit: int) -> int:
        """Offset of the last newline before ``off`` (-1 if none within ``limit``)."""
        lo = max(0, off - limit)
        while off > lo:
            n = (off - 1) // BLOCK
            blk = self._block(fi, n)
            base = n * BLOCK
            j = blk.rfind(b"\n", max(0, lo - base), off - base)
            if j >= 0:
                return base + j
            off = base
        return -1

    def _index(self, fi: int) -> TimeIndex:
        f = self.files[fi]
        if f.index is None:
            f.index = TimeIndex(f.path)
        return f.index

    # -- lines --------------------------------------------------------------------------

    def line_time(self, fi: int, off: int, raw: bytes) -> float:
        if self.kind == "event":
            try:
                obj = json.loads(raw)
                return float(obj.get("time", self.fallback))
            except (ValueError, TypeError, AttributeError, RecursionError):
                return self.fallback
        c = self._tspan
        if c is not None and c[0] == fi and c[1] <= off < c[2]:
            t = c[3]  # the same chunk as the last line: no search
        else:
            lo, hi, t = self._index(fi).span_at(off)
            self._tspan = (fi, lo, hi, t)
        return self.fallback if t is None else t

    def make(self, fi: int, off: int, raw: bytes) -> TLine:
        t = self.line_time(fi, off, raw)
        if self.kind == "event":
            return TLine(t, self.label, raw if self.keep_raw else format_event_line(raw), "event")
        return TLine(t, self.label, raw if self.keep_raw else raw.rstrip(b"\r\n"), self.kind)

    def start(self) -> Pos:
        return (0, 0)

    def end(self) -> Pos:
        return (len(self.files) - 1, self.files[-1].size) if self.files else (0, 0)

    def next(self, pos: Pos, hold_partial: bool = False) -> tuple[TLine, Pos] | None:
        fi, off = pos
        while fi < len(self.files) and off >= self.files[fi].size:
            fi, off = fi + 1, 0
        if fi >= len(self.files):
            return None
        j = self._find_nl(fi, off, MAX_LINE)
        if j < 0:
            end = min(self.files[fi].size, off + MAX_LINE)
            if end == self.files[fi].size and fi + 1 < len(self.files):
                # rotation cut this line: its rest opens the next generation
                k = self._find_nl(fi + 1, 0, MAX_LINE - (end - off))
                if k >= 0:
                    raw = self._read(fi, off, end - off) + self._read(fi + 1, 0, k + 1)
                    return self.make(fi, off, raw), (fi + 1, k + 1)
            if hold_partial and fi == len(self.files) - 1 and end == self.files[fi].size:
                return None  # the rest of this line has not arrived yet
            raw = self._read(fi, off, end - off)
            return self.make(fi, off, raw), (fi, end)
        raw = self._read(fi, off, j + 1 - off)
        return self.make(fi, off, raw), (fi, j + 1)

    def prev(self, pos: Pos) -> tuple[TLine, Pos] | None:
        fi, off = pos
        while fi >= 0 and off <= 0:
            fi -= 1
            if fi < 0:
                return None
            off = self.files[fi].size
        if fi >= len(self.files):
            return None
        # the line ends at off (just after its newline, or at the file's end)
        j = self._rfind_nl(fi, off - 1, MAX_LINE)
        start = j + 1 if j >= 0 else max(0, off - MAX_LINE)
        raw = self._read(fi, start, off - start)
        if start == 0 and fi > 0:
            size = self.files[fi - 1].size
            if size and self._read(fi - 1, size - 1, 1) != b"\n":
                # the line began in the previous generation (rotation cut it)
                k = self._rfind_nl(fi - 1, size, MAX_LINE)
                pstart = k + 1 if k >= 0 else max(0, size - MAX_LINE)
                raw = self._read(fi - 1, pstart, size - pstart) + raw
                return self.make(fi - 1, pstart, raw), (fi - 1, pstart)
        return self.make(fi, start, raw), (fi, start)

    def seek_time(self, t: float) -> Pos:
        """Position of the first line at or after time ``t``."""
        for fi, f in enumerate(self.files):
            if f.size == 0:
                continue
            if self.kind == "event":
                off = self._bisect_events(fi, t)
                if off is not None:
                    return (fi, off)
                continue
            idx = self._index(fi)
            if not idx:
                continue
            o = idx.offset_at(t)
            if o is None:
                continue
            if o > 0 and self._read(fi, o - 1, 1) != b"\n":
                j = self._find_nl(fi, o, MAX_LINE)
                o = j + 1 if j >= 0 else f.size
            return (fi, o)
        return self.end()

    def _bisect_events(self, fi: int, t: float) -> int | None:
        lo, hi = 0, self.files[fi].size
        while hi - lo > 4096:
            mid = (lo + hi) // 2
            j = self._find_nl(fi, mid, MAX_LINE)
            if j < 0 or j + 1 >= hi:
                break
            got = self.next((fi, j + 1))
            if got is None or got[0].t >= t:
                hi = mid
            else:
                lo = j + 1
        pos: Pos = (fi, lo)
        if lo > 0 and self._read(fi, lo - 1, 1) != b"\n":
            j = self._find_nl(fi, lo, MAX_LINE)
            pos = (fi, j + 1 if j >= 0 else self.files[fi].size)
        while True:
            got = self.next(pos)
            if got is None or pos[0] != fi:
                return None
            if got[0].t >= t:
                return pos[1]
            pos = got[1]


class MemorySource:
    """A few lines known in advance (a run's start and end)."""

    def __init__(self, label: str, lines: Sequence[tuple[float, str]]) -> None:
        self.label = label
        self.kind = "run"
        self.lines = sorted(lines)

    def refresh(self) -> dict[int, int]:
        return {0: 0}

    def close(self) -> None:
        pass

    def total_bytes(self) -> int:
        return 0

    def start(self) -> Pos:
        return (0, 0)

    def end(self) -> Pos:
        return (0, len(self.lines))

    def next(self, pos: Pos, hold_partial: bool = False) -> tuple[TLine, Pos] | None:
        i = pos[1]
        if i >= len(self.lines):
            return None
        t, text = self.lines[i]
        return TLine(t, self.label, text.encode(), "run"), (0, i + 1)

    def prev(self, pos: Pos) -> tuple[TLine, Pos] | None:
        i = pos[1]
        if i <= 0:
            return None
        t, text = self.lines[i - 1]
        return TLine(t, self.label, text.encode(), "run"), (0, i - 1)

    def seek_time(self, t: float) -> Pos:
        for i, (lt, _) in enumerate(self.lines):
            if lt >= t:
                return (0, i)
        return self.end()


Source = FileSource | MemorySource


def format_event_line(raw: bytes) -> bytes:
    try:
        obj = json.loads(raw)
        name = str(obj.get("name", "?"))
        data = obj.get("data") or {}
        text = name + (" " + json.dumps(data, separators=(",", ":"), default=str) if data else "")
        return text.encode()
    except (ValueError, TypeError, AttributeError, RecursionError):
        return raw.rstrip(b"\r\n")


def sources_for(inst: Instance, prefix: str = "") -> list[Source]:
    """Every serial channel, the event journal and the run's start/end of one instance or run."""
    h = inst.handles
    created = h.created if h is not None else 0.0
    out: list[Source] = []
    for ch in h.serial_channels() if h is not None else []:
        out.append(FileSource(prefix + ch, inst.serial_log(ch), "serial", created))
    out.append(FileSource(prefix + "events", inst.wd / EVENTS_FILE, "event", created))
    marks: list[tuple[float, str]] = []
    if h is not None and created:
        marks.append((created, f"run started: {h.backend} {h.target} pid {h.pid}"))
    if inst.run is not None:
        from emutui.core.runs import describe_end

        end = inst.run.end()
        ended = end.get("ended")
        if isinstance(ended, int | float):
            last = end.get("last_activity")
            if end.get("how") == "found dead" and isinstance(last, int | float):
                marks.append((float(last), "last sign of life (newest write to its files)"))
            marks.append((float(ended), f"run ended: {describe_end(end)}"))
    out.append(MemorySource(prefix + "run", marks))
    return out


@dataclass
class Filter:
    sources: frozenset[str] | None = None  # labels to show (None: all)
    pattern: re.Pattern[bytes] | None = None

    def ok(self, line: TLine) -> bool:
        if self.sources is not None and line.source not in self.sources:
            return False
        return self.pattern is None or self.pattern.search(line.text) is not None


@dataclass
class Timeline:
    """The merge of ``sources`` by time; positions are one ``Pos`` per source."""

    sources: list[Source]
    filter: Filter = field(default_factory=Filter)
    hold_partial: bool = False

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.sources]

    def start(self) -> list[Pos]:
        return [s.start() for s in self.sources]

    def end(self) -> list[Pos]:
        return [s.end() for s in self.sources]

    def seek_time(self, t: float) -> list[Pos]:
        return [s.seek_time(t) for s in self.sources]

    def forward(
        self, pos: list[Pos], n: int, budget: int = 200_000
    ) -> tuple[list[TLine], list[Pos]]:
        """Up to ``n`` lines from ``pos`` on (filtered), and the position after them."""
        pos = list(pos)
        peek: list[tuple[TLine, Pos] | bool | None] = [False] * len(self.sources)
        out: list[TLine] = []
        while len(out) < n and budget > 0:
            best = -1
            for i, s in enumerate(self.sources):
                if peek[i] is False:
                    peek[i] = s.next(pos[i], self.hold_partial)
                p = peek[i]
                if p and (best < 0 or p[0].t < peek[best][0].t):  # type: ignore[index]
                    best = i
            if best < 0:
                break
            line, after = peek[best]  # type: ignore[misc]
            pos[best] = after
            peek[best] = False
            budget -= 1
            if self.filter.ok(line):
                out.append(line)
        return out, pos

    def backward(
        self, pos: list[Pos], n: int, budget: int = 200_000
    ) -> tuple[list[TLine], list[Pos]]:
        """Up to ``n`` lines before ``pos`` (filtered, returned in time order) and their start."""
        pos = list(pos)
        peek: list[tuple[TLine, Pos] | bool | None] = [False] * len(self.sources)
        out: list[TLine] = []
        while len(out) < n and budget > 0:
            best = -1
            for i, s in enumerate(self.sources):
                if peek[i] is False:
                    peek[i] = s.prev(pos[i])
                p = peek[i]
                if p and (best < 0 or p[0].t >= peek[best][0].t):  # type: ignore[index]
                    best = i
            if best < 0:
                break
            line, before = peek[best]  # type: ignore[misc]
            pos[best] = before
            peek[best] = False
            budget -= 1
            if self.filter.ok(line):
                out.append(line)
        out.reverse()
        return out, pos

    def iterate(self, pos: list[Pos] | None = None, batch: int = 512) -> Iterator[TLine]:
        pos = pos if pos is not None else self.start()
        while True:
            lines, pos = self.forward(pos, batch)
            yield from lines
            if len(lines) < batch:
                self._last = pos
                return

    def refresh(self, pos: list[Pos]) -> list[Pos]:
        """Files grew or rotated: re-read them and carry ``pos`` over (by inode)."""
        out = []
        for s, p in zip(self.sources, pos, strict=True):
            remap = s.refresh()
            fi = remap.get(p[0])
            out.append((fi, p[1]) if fi is not None else s.start())
        return out

    def total_bytes(self) -> int:
        return sum(s.total_bytes() for s in self.sources)

    def close(self) -> None:
        for s in self.sources:
            s.close()


def format_line(line: TLine, width: int = 0, date: bool = False) -> str:
    return f"{clock(line.t, date)} {line.source:<{width}} {line.text.decode('utf-8', 'replace')}"


def clock(t: float, date: bool = False) -> str:
    lt = time.localtime(t)
    ms = int((t % 1) * 1000)
    return time.strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S", lt) + f".{ms:03d}"


def describe(inst: Instance) -> dict[str, Any]:
    return {"name": inst.name, "ref": inst.ref, "dir": str(inst.wd)}
