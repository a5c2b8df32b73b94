"""Snapshots, whatever the backend: QEMU's snapshot jobs (HMP before 6.0), Renode's
``Save @file`` / ``Load @file``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from emutui.core.errors import InstanceDeadError, NotFoundError, UnsupportedError
from emutui.core.instance import Instance


class RenodeSnapshots:
    """Renode saves the whole emulation to a file: one file per tag in the instance dir."""

    def __init__(self, conn: Any, inst: Instance) -> None:
        self.conn = conn
        self.inst = inst
        self.dir = inst.wd / "snapshots"

    def _file(self, tag: str) -> Path:
        from emutui.backends.qemu.snapshots import check_tag

        check_tag(tag)
        return self.dir / f"{tag}.save"

    async def list(self) -> list[dict[str, Any]]:
        if not self.dir.exists():
            return []
        out = []
        for p in sorted(self.dir.glob("*.save"), key=lambda p: p.stat().st_mtime):
            st = p.stat()
            out.append({"tag": p.stem, "vm_state_size": st.st_size, "date": int(st.st_mtime)})
        return out

    async def save(self, tag: str) -> None:
        f = self._file(tag)
        self.dir.mkdir(mode=0o700, exist_ok=True)
        await self.conn.command(f"Save @{f}")
        if not f.exists():
            raise UnsupportedError(f"{self.inst.name}: Renode did not write {f.name}")

    async def load(self, tag: str) -> None:
        f = self._file(tag)
        if not f.exists():
            raise NotFoundError(f"{self.inst.name}: no snapshot {tag!r}")
        await self.conn.command(f"Load @{f}")

    async def delete(self, tag: str) -> None:
        f = self._file(tag)
        if not f.exists():
            raise NotFoundError(f"{self.inst.name}: no snapshot {tag!r}")
        f.unlink()


@asynccontextmanager
async def snapshots_for(inst: Instance) -> AsyncIterator[Any]:
    from emutui.control import connected, dead_message

    if not inst.alive():
        raise InstanceDeadError(dead_message(inst))
    async with connected(inst, aux=True) as conn:
        if inst.backend == "qemu":
            from emutui.backends.qemu.snapshots import Snapshots

            yield Snapshots(conn, inst.name)
        elif inst.backend == "renode":
            yield RenodeSnapshots(conn, inst)
        else:
            raise UnsupportedError(f"{inst.name}: {inst.backend} has no snapshots")
