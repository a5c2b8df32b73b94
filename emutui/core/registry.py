"""Finds instances under the state root; creates them, keeps their runs.

Every name a user gives goes through ``get`` (a live or dead instance) or
``resolve`` (that, or a kept run: ``NAME~N``, a run id), which accept only
names, never paths. Only directories that are emutui's own are listed, kept
or removed: a real directory (not a symlink) directly under the state root,
owned by this user, holding emutui's marker or a well-formed ``handles.json``.
The state root itself is never chmodded: an existing one must already be
private (this user's, no group/other access) or it is refused.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from emutui.core import runs as runs_mod
from emutui.core.errors import AlreadyExistsError, EmutuiError, NotFoundError, ProtocolError
from emutui.core.handles import HANDLES_FILE, Handles
from emutui.core.instance import Instance
from emutui.core.lockfile import transient_lock
from emutui.core.paths import check_name, release_socket_dir, state_root
from emutui.core.runs import HistoryLimits, Run

MARKER = ".emutui-instance"  # written by create(): this directory is an emutui instance


def make_private_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents 0700; existing ones are left as they are."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for p in reversed(missing):
        try:
            os.mkdir(p, 0o700)
        except FileExistsError:
            continue
        os.chmod(p, 0o700)  # new: the umask may have taken bits away (never adds any)


class Registry:
    def __init__(self, root: Path | str | None = None, history: HistoryLimits | None = None):
        self.root = state_root(root)
        self.history = history or HistoryLimits()

    # -- the state root ----------------------------------------------------------------

    def check_root(self) -> bool:
        """True when the root exists and is private; raises when it exists and is not."""
        try:
            st = os.stat(self.root)
        except FileNotFoundError:
            return False
        except OSError as e:
            raise EmutuiError(f"state dir {self.root}: {e.strerror}") from e
        if not stat.S_ISDIR(st.st_mode):
            raise EmutuiError(f"state dir {self.root} is not a directory")
        if st.st_uid != os.getuid():
            raise EmutuiError(
                f"state dir {self.root} belongs to uid {st.st_uid}, not to you: refusing it "
                "(give --state-dir a directory of your own)"
            )
        if st.st_mode & 0o077:
            raise EmutuiError(
                f"state dir {self.root} is not private (mode {stat.S_IMODE(st.st_mode):04o}): "
                "refusing it; emutui never changes an existing directory's mode "
                f"(chmod 700 {self.root} yourself, or use another --state-dir)"
            )
        return True

    def ensure_root(self) -> None:
        if not self.check_root():
            make_private_dirs(self.root)

    # -- which directories are ours -----------------------------------------------------

    def is_ours(self, wd: Path) -> bool:
        """An emutui instance directory of this user, directly under the root."""
        if wd.parent != self.root or wd.name.startswith("."):
            return False
        uid = os.getuid()
        try:
            st = os.lstat(wd)
        except OSError:
            return False
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid:
            return False
        for f in (MARKER, HANDLES_FILE):
            try:
                fst = os.lstat(wd / f)
            except OSError:
                continue
            if not stat.S_ISREG(fst.st_mode) or fst.st_uid != uid:
                continue
            if f == MARKER:
                return True
            try:
                Handles.load(wd)
                return True
            except (ProtocolError, OSError, RecursionError):
                continue
        return False

    def instances(self) -> list[Instance]:
        if not self.check_root():
            return []
        out = []
        for wd in sorted(self.root.iterdir()):
            if self.is_ours(wd):
                out.append(Instance.load(wd))
        return out

    def get(self, name: str) -> Instance:
        """The live (or dead, not yet cleaned) instance called ``name``; a name, not a path."""
        check_name(name)
        self.check_root()
        wd = self.root / name
        if not self.is_ours(wd):
            known = ", ".join(i.name for i in self.instances()) or "none"
            raise NotFoundError(f"no instance named {name!r} (instances: {known})")
        return Instance.load(wd)

    # -- runs --------------------------------------------------------------------------

    def runs(self, name: str | None = None) -> list[Run]:
        if name is not None:
            check_name(name)
        if not self.check_root():
            return []
        return runs_mod.list_runs(self.root, name)

    def resolve(self, ref: str) -> Instance:
        """``NAME`` (the live or last run), ``NAME~N`` (N runs before), or a run id."""
        if not isinstance(ref, str):
            raise EmutuiError(f"expected a name, got {ref!r}")
        if runs_mod.is_run_id(ref):
            self.check_root()
            return run_instance(runs_mod.get_run(self.root, ref))
        name, sep, back = ref.partition("~")
        check_name(name)
        n = 0
        if sep:
            if not (back.isascii() and back.isdigit()) or len(back) > 6:
                raise EmutuiError(
                    f"{ref!r}: expected NAME~N with N a number (NAME~1: the run before)"
                )
            n = int(back)
        self.check_root()
        chain: list[Any] = []
        wd = self.root / name
        if self.is_ours(wd):
            chain.append(wd)
        chain.extend(reversed(runs_mod.list_runs(self.root, name)))
        if not chain:
            known = (
                ", ".join(
                    sorted(
                        {i.name for i in self.instances()}
                        | {r.name for r in runs_mod.list_runs(self.root)}
                    )
                )
                or "none"
            )
            raise NotFoundError(f"no instance or kept run named {name!r} (names: {known})")
        if n >= len(chain):
            raise NotFoundError(
                f"{ref}: {name} has {len(chain)} run{'s' if len(chain) != 1 else ''} "
                f"(newest {name}, oldest {name}~{len(chain) - 1})"
            )
        item = chain[n]
        return Instance.load(item) if isinstance(item, Path) else run_instance(item)

    def keep_run(self, inst: Instance, how: str, by: str | None = None, detail: str = "") -> Run:
        """End ``inst``'s run: its directory becomes a kept run (see core/runs.py)."""
        self._check_removable(inst)
        h = inst.handles
        created = h.created if h is not None and h.created > 0 else None
        extra: dict[str, Any] = {}
        if h is not None:
            extra = {"backend": h.backend, "target": h.target, "pid": h.pid}
        if inst.error:
            extra["error"] = inst.error
        end = runs_mod.end_record(
            inst.name, created, how, by=by, wd=inst.wd, detail=detail, extra=extra
        )
        return runs_mod.keep(self.root, inst.wd, end, self.history)

    def remove_run(self, run: Run) -> None:
        runs_mod.remove_run(self.root, run)

    def prune(self) -> list[Run]:
        if not self.check_root():
            return []
        return runs_mod.prune(self.root, self.history)

    # -- lifecycle ---------------------------------------------------------------------

    def create(self, name: str) -> Path:
        """A fresh 0700 directory for a new instance. A dead one of that name ends its run."""
        check_name(name)
        self.ensure_root()
        wd = self.root / name
        if os.path.lexists(wd):
            if not self.is_ours(wd):
                raise EmutuiError(
                    f"{wd} exists and is not an emutui instance of yours: refusing to replace it"
                )
            old = Instance.load(wd)
            if old.alive():
                raise AlreadyExistsError(
                    f"instance {name!r} is already running (pid {old.pid}); "
                    f"use --name to start another"
                )
            from emutui.core import serialhub

            if old.handles is not None:
                serialhub.stop_helpers(old.handles)
            release_socket_dir(wd)  # before the move: its name hashes this path
            self.keep_run(old, "found dead", detail="replaced by a new start of the same name")
        os.mkdir(wd, 0o700)
        os.chmod(wd, 0o700)
        fd = os.open(wd / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("emutui instance directory\n")
        return wd

    @contextmanager
    def name_lock(self, name: str) -> Iterator[None]:
        """Held while an instance of ``name`` is created, started or ended.

        Two emutui processes starting the same name at once: the second waits,
        then finds the first one running and says so.
        """
        check_name(name)
        self.ensure_root()
        with transient_lock(self.root / f".{name}.lock"):  # removed once released
            yield

    def _check_removable(self, inst: Instance) -> None:
        if not self.is_ours(inst.wd):
            raise EmutuiError(
                f"refusing to touch {inst.wd}: not an emutui instance directory of yours "
                f"directly under {self.root}"
            )

    def remove(self, inst: Instance) -> None:
        """Delete an instance directory outright (a start that failed half-way)."""
        self._check_removable(inst)
        runs_mod.clean_transient(inst.wd)
        shutil.rmtree(inst.wd, ignore_errors=True)


def run_instance(run: Run) -> Instance:
    """A kept run, seen as a (dead, read-only) Instance."""
    inst = Instance.load(run.wd)
    inst.name = run.name
    inst.run = run
    return inst
