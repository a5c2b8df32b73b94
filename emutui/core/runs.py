"""Kept runs: what an instance left when it was stopped or found dead.

Stopping an instance, or starting a new one over a dead one of the same name,
ends its run: its directory (serial logs of every generation with their time
indexes, event journal, emulator output, handles.json) moves, whole, to
``ROOT/.runs/RUN`` with an ``end.json`` saying how it ended. ``RUN`` is
``YYYYmmddTHHMMSS.mmmZ-NAME`` (the run's start, UTC), so a listing sorts by
time. The move is a rename inside the state root: nothing is copied.

Limits (``[history]`` in the config): ``keep_runs`` per name and ``max_bytes``
for all kept runs together; the oldest go first. Only ``.runs`` is ever pruned:
a live instance is never touched.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import re
import shutil
import stat
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emutui.core.errors import EmutuiError, NotFoundError

RUNS_DIR = ".runs"
END_FILE = "end.json"
DEFAULT_KEEP_RUNS = 20
DEFAULT_MAX_BYTES = 2 * 1024 * 1024 * 1024
RUN_RE = re.compile(r"^(\d{8}T\d{6}\.\d{3}Z)-([A-Za-z0-9][A-Za-z0-9_.-]{0,63})$")
# Things of a live instance that mean nothing once it ended (sockets, locks).
_TRANSIENT = {".lock", "events.lock", ".emutui-instance"}


@dataclass(frozen=True)
class HistoryLimits:
    keep_runs: int = DEFAULT_KEEP_RUNS
    max_bytes: int = DEFAULT_MAX_BYTES

    @classmethod
    def from_config(cls, table: Any, where: str = "history") -> HistoryLimits:
        if table is None:
            return cls()
        if not isinstance(table, dict) or set(table) - {"keep_runs", "max_bytes"}:
            raise EmutuiError(f"{where}: expected a table with keep_runs and max_bytes")
        out: dict[str, int] = {}
        for key in ("keep_runs", "max_bytes"):
            if key in table:
                v = table[key]
                if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                    raise EmutuiError(f"{where}.{key}: expected a whole number >= 0, got {v!r}")
                out[key] = v
        return cls(**out)


@dataclass
class Run:
    id: str
    name: str
    wd: Path
    _end: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def started(self) -> float:
        return stamp_time(RUN_RE.match(self.id).group(1))  # type: ignore[union-attr]

    def end(self) -> dict[str, Any]:
        if self._end is None:
            try:
                obj = json.loads((self.wd / END_FILE).read_text())
                self._end = obj if isinstance(obj, dict) else {}
            except (OSError, ValueError, RecursionError):
                self._end = {}
        return self._end

    def size(self) -> int:
        return dir_size(self.wd)


def stamp(t: float) -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def stamp_time(s: str) -> float:
    import calendar

    base = calendar.timegm(time.strptime(s[:15], "%Y%m%dT%H%M%S"))
    return base + int(s[16:19]) / 1000


def runs_dir(root: Path) -> Path:
    return root / RUNS_DIR


def is_run_id(ref: str) -> bool:
    return RUN_RE.match(ref) is not None


def list_runs(root: Path, name: str | None = None) -> list[Run]:
    """Kept runs, oldest first (of one name when given)."""
    d = runs_dir(root)
    out = []
    try:
        entries = list(os.scandir(d))
    except OSError:
        return []
    uid = os.getuid()
    for e in entries:
        m = RUN_RE.match(e.name)
        if m is None or (name is not None and m.group(2) != name):
            continue
        try:
            st = e.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid:
            continue
        out.append(Run(id=e.name, name=m.group(2), wd=Path(e.path)))
    out.sort(key=lambda r: r.id)
    return out


def get_run(root: Path, run_id: str) -> Run:
    m = RUN_RE.match(run_id)
    if m is None:
        raise NotFoundError(f"{run_id!r} is not a run id (like 20261130T143020.123Z-NAME)")
    for r in list_runs(root, m.group(2)):
        if r.id == run_id:
            return r
    raise NotFoundError(f"no kept run {run_id!r} (see 'emutui runs {m.group(2)}')")


def dir_size(wd: Path) -> int:
    total = 0
    try:
        for e in os.scandir(wd):
            with contextlib.suppress(OSError):
                st = e.stat(follow_symlinks=False)
                if stat.S_ISREG(st.st_mode):
                    total += st.st_size
    except OSError:
        pass
    return total


def who() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = str(os.getuid())
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    return f"{user} (pid {os.getpid()}, {prog})"


def last_signal(wd: Path) -> int | None:
    """QEMU says 'terminating on signal N' in its output when a signal ended it."""
    try:
        with open(wd / "output.log", "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    found = re.findall(r"terminating on signal (\d+)", tail)
    return int(found[-1]) if found else None


def last_activity(wd: Path) -> float | None:
    """The newest write in the directory: about when a dead process last did anything."""
    newest = None
    try:
        for e in os.scandir(wd):
            if e.name in (".lock", "events.lock", END_FILE) or e.name.endswith(".tmp"):
                continue
            with contextlib.suppress(OSError):
                st = e.stat(follow_symlinks=False)
                if not stat.S_ISREG(st.st_mode):
                    continue
                t = st.st_mtime
                if e.name.endswith(".tidx") and st.st_size >= 16:
                    # the arrival time of the last chunk: finer than a coarse mtime
                    with open(e.path, "rb") as f:
                        f.seek((st.st_size // 16 - 1) * 16 + 8)
                        t = max(t, struct.unpack("<d", f.read(8))[0])
                if newest is None or t > newest:
                    newest = t
    except OSError:
        pass
    return newest


def end_record(
    name: str,
    created: float | None,
    how: str,
    by: str | None = None,
    wd: Path | None = None,
    status: int | None = None,
    signal_: int | None = None,
    detail: str = "",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    now = time.time()
    rec: dict[str, Any] = {
        "name": name,
        "started": created,
        "ended": now,
        "how": how,  # stopped | found dead | failed to start
        "by": by or who(),
        "exit_status": status,
        "signal": signal_,
        "detail": detail,
    }
    if wd is not None and how == "found dead":
        rec["signal"] = signal_ if signal_ is not None else last_signal(wd)
        rec["last_activity"] = last_activity(wd)
        if status is None:
            rec["detail"] = detail or "exit status unknown: emutui is not the emulator's parent"
    if extra:
        rec.update(extra)
    return rec


def describe_end(end: dict[str, Any]) -> str:
    """One line: 'stopped by alice (…)', 'found dead (signal 9)'."""
    how = str(end.get("how") or "?")
    parts = [how]
    if how == "stopped" and end.get("by"):
        parts.append(f"by {end['by']}")
    if end.get("signal") is not None:
        parts.append(f"signal {end['signal']}")
    if end.get("exit_status") is not None:
        parts.append(f"status {end['exit_status']}")
    if how == "found dead" and end.get("by"):
        parts.append(f"(found by {end['by']})")
    return " ".join(parts)


def clean_transient(wd: Path) -> None:
    """Sockets, symlinks to short socket paths, locks: nothing a kept run needs."""
    for e in list(os.scandir(wd)):
        p = Path(e.path)
        try:
            if e.is_symlink():
                target = p.resolve()
                tmpbase = Path(os.environ.get("TMPDIR", "/tmp")).resolve()
                if (
                    target.is_socket()
                    and f"emutui-{os.getuid()}" in target.parts
                    and (tmpbase in target.parents or "/run/user" in str(target))
                ):
                    target.unlink(missing_ok=True)
                p.unlink()
            elif stat.S_ISSOCK(e.stat(follow_symlinks=False).st_mode) or e.name in _TRANSIENT:
                p.unlink()
        except OSError:
            pass


def keep(root: Path, wd: Path, end: dict[str, Any], limits: HistoryLimits) -> Run:
    """Move the ended instance directory ``wd`` into the kept runs, then apply the limits."""
    name = str(end.get("name") or wd.name)
    started = end.get("started")
    t = float(started) if isinstance(started, int | float) and started > 0 else time.time()
    clean_transient(wd)
    tmp = wd / f".{END_FILE}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(end, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, wd / END_FILE)
    d = runs_dir(root)
    try:
        os.mkdir(d, 0o700)
    except FileExistsError:
        st = os.lstat(d)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            raise EmutuiError(f"{d} is not emutui's (not a directory of yours)") from None
    for bump in range(1000):
        run_id = f"{stamp(t + bump / 1000)}-{name}"
        try:
            os.rename(wd, d / run_id)
            break
        except OSError as e:
            if not (d / run_id).exists():
                raise EmutuiError(f"cannot keep the run of {name}: {e.strerror}") from e
    else:
        raise EmutuiError(f"cannot keep the run of {name}: too many runs at one time")
    run = Run(id=run_id, name=name, wd=d / run_id, _end=end)
    prune(root, limits, name=name, spare=run.id)
    return run


def prune(
    root: Path, limits: HistoryLimits, name: str | None = None, spare: str | None = None
) -> list[Run]:
    """Remove the oldest kept runs beyond the limits; returns the ones removed.

    ``keep_runs`` applies per name (to ``name`` only when given, else to every
    name), ``max_bytes`` to all kept runs together. ``spare`` (the run just
    kept) is never removed, so a run larger than the whole budget still stays
    until the next one ends.
    """
    removed: list[Run] = []
    runs = list_runs(root)
    by_name: dict[str, list[Run]] = {}
    for r in runs:
        by_name.setdefault(r.name, []).append(r)
    for n, rs in by_name.items():
        if name is not None and n != name:
            continue
        excess = len(rs) - limits.keep_runs
        for r in rs[: max(0, excess)]:
            if r.id != spare:
                remove_run(root, r)
                removed.append(r)
    gone = {r.id for r in removed}
    left = [r for r in runs if r.id not in gone]
    sizes = {r.id: r.size() for r in left}
    total = sum(sizes.values())
    for r in sorted(left, key=lambda r: r.started):
        if total <= limits.max_bytes:
            break
        if r.id == spare:
            continue
        remove_run(root, r)
        removed.append(r)
        total -= sizes[r.id]
    return removed


def remove_run(root: Path, run: Run) -> None:
    """Remove a kept run: only a real directory of ours directly under ROOT/.runs."""
    d = runs_dir(root)
    if run.wd.parent != d or not RUN_RE.match(run.wd.name):
        raise EmutuiError(f"refusing to remove {run.wd}: not a kept run")
    st = os.lstat(run.wd)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise EmutuiError(f"refusing to remove {run.wd}: not a directory of yours")
    shutil.rmtree(run.wd)
