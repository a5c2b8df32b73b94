"""Finds instances under the state root; creates and removes their directories."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from emutui.core.errors import AlreadyExistsError, NotFoundError
from emutui.core.handles import HANDLES_FILE
from emutui.core.instance import Instance
from emutui.core.lockfile import transient_lock
from emutui.core.paths import check_name, ensure_private_dir, state_root


class Registry:
    def __init__(self, root: Path | str | None = None) -> None:
        self.root = state_root(root)

    def instances(self) -> list[Instance]:
        if not self.root.is_dir():
            return []
        out = []
        for wd in sorted(self.root.iterdir()):
            if not wd.is_dir() or wd.name.startswith("."):
                continue
            if (wd / HANDLES_FILE).exists() or (wd / ".lock").exists():
                out.append(Instance.load(wd))
        return out

    def get(self, name: str) -> Instance:
        wd = self.root / name
        if not (wd / HANDLES_FILE).exists() and not (wd / ".lock").exists():
            known = ", ".join(i.name for i in self.instances()) or "none"
            raise NotFoundError(f"no instance named {name!r} (instances: {known})")
        return Instance.load(wd)

    def create(self, name: str) -> Path:
        """A fresh 0700 directory for a new instance. A dead one of that name is replaced."""
        check_name(name)
        ensure_private_dir(self.root)
        wd = self.root / name
        if (wd / HANDLES_FILE).exists():
            old = Instance.load(wd)
            if old.alive():
                raise AlreadyExistsError(
                    f"instance {name!r} is already running (pid {old.pid}); "
                    f"use --name to start another"
                )
            shutil.rmtree(wd, ignore_errors=True)
        ensure_private_dir(wd)
        return wd

    @contextmanager
    def name_lock(self, name: str) -> Iterator[None]:
        """Held while an instance of ``name`` is created and started.

        Two emutui processes starting the same name at once: the second waits,
        then finds the first one running and says so.
        """
        check_name(name)
        ensure_private_dir(self.root)
        with transient_lock(self.root / f".{name}.lock"):  # removed once released
            yield

    def remove(self, inst: Instance) -> None:
        for link in inst.wd.iterdir() if inst.wd.exists() else []:
            if link.is_symlink():
                target = link.resolve()
                if target.is_socket() or not target.exists():
                    target.unlink(missing_ok=True)
        shutil.rmtree(inst.wd, ignore_errors=True)
