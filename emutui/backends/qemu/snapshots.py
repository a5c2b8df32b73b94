"""QEMU snapshots: a small qcow2 the guest does not use holds the VM state.

``snapshot-save``/``-load``/``-delete`` are QMP jobs (QEMU 6.0+): start one,
wait for it to conclude (``query-jobs`` polled, so it works with or without
an event listener), read its error, ``job-dismiss`` it. Older QEMU gets HMP
``savevm``/``loadvm``/``delvm``. The target key ``snapshots = true`` makes
``WD/snapshots.qcow2`` with ``qemu-img`` at start and attaches it as an
unused drive (``if=none``): its node is where the vmstate goes.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from emutui.core.errors import BackendError, ConfigError, NotFoundError, UnsupportedError

QCOW2 = "snapshots.qcow2"
NODE = "emutui-snap"
SIZE = "64M"
JOB_TIMEOUT = 60.0


def drive_args(wd: Path) -> list[str]:
    img = wd / QCOW2
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        raise ConfigError("snapshots = true needs qemu-img (Debian: apt-get install qemu-utils)")
    if not img.exists():
        p = subprocess.run(
            [qemu_img, "create", "-q", "-f", "qcow2", str(img), SIZE],
            capture_output=True,
            text=True,
        )
        if p.returncode != 0:
            raise BackendError(f"qemu-img create failed: {p.stderr.strip()[:200]}")
    return ["-drive", f"if=none,id={NODE},node-name={NODE}-fmt,format=qcow2,file={img}"]


class Snapshots:
    """Snapshot verbs on a connected QemuConnector (``execute`` and ``hmp``)."""

    def __init__(self, conn: Any, name: str) -> None:
        self.conn = conn
        self.name = name

    async def _jobs_supported(self) -> bool:
        cmds = await self.conn.execute("query-commands")
        return any(c.get("name") == "snapshot-save" for c in cmds)

    async def _nodes(self) -> list[str]:
        """Writable qcow2 nodes: where snapshots can go."""
        out: list[str] = []
        for dev in await self.conn.execute("query-block"):
            ins = dev.get("inserted")
            if not ins or ins.get("ro") or ins.get("drv") != "qcow2":
                continue
            out.append(ins.get("node-name") or dev.get("device"))
        if not out:
            raise UnsupportedError(
                f"{self.name}: no writable qcow2 drive to hold snapshots "
                "(set snapshots = true in the target and restart it)"
            )
        return out

    async def list(self) -> list[dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        for dev in await self.conn.execute("query-block"):
            ins = dev.get("inserted") or {}
            image = ins.get("image") or {}
            for s in image.get("snapshots") or []:
                seen.setdefault(
                    s["name"],
                    {
                        "tag": s["name"],
                        "vm_state_size": s.get("vm-state-size", 0),
                        "date": s.get("date-sec", 0),
                        "vm_clock_ns": s.get("vm-clock-sec", 0) * 10**9 + s.get("vm-clock-nsec", 0),
                    },
                )
        return sorted(seen.values(), key=lambda s: s["date"])

    async def _job(self, cmd: str, tag: str, args: dict[str, Any]) -> None:
        job_id = f"emutui-{cmd}-{int(time.time() * 1000)}"
        await self.conn.execute(cmd, {"job-id": job_id, "tag": tag, **args})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + JOB_TIMEOUT
        while True:
            jobs = await self.conn.execute("query-jobs")
            job = next((j for j in jobs if j.get("id") == job_id), None)
            if job is None:
                return  # auto-dismissed
            if job.get("status") == "concluded":
                err = job.get("error")
                await self.conn.execute("job-dismiss", {"id": job_id})
                if err:
                    raise BackendError(f"{self.name}: {cmd} {tag}: {err}")
                return
            if loop.time() > deadline:
                raise BackendError(f"{self.name}: {cmd} {tag} did not finish in {JOB_TIMEOUT} s")
            await asyncio.sleep(0.02)

    async def save(self, tag: str) -> None:
        check_tag(tag)
        nodes = await self._nodes()
        if await self._jobs_supported():
            await self._job("snapshot-save", tag, {"vmstate": nodes[0], "devices": nodes})
        else:
            await self._hmp_checked(f"savevm {tag}")

    async def load(self, tag: str) -> None:
        check_tag(tag)
        if tag not in {s["tag"] for s in await self.list()}:
            raise NotFoundError(f"{self.name}: no snapshot {tag!r}")
        nodes = await self._nodes()
        if await self._jobs_supported():
            await self._job("snapshot-load", tag, {"vmstate": nodes[0], "devices": nodes})
        else:
            await self._hmp_checked(f"loadvm {tag}")

    async def delete(self, tag: str) -> None:
        check_tag(tag)
        if tag not in {s["tag"] for s in await self.list()}:
            raise NotFoundError(f"{self.name}: no snapshot {tag!r}")
        nodes = await self._nodes()
        if await self._jobs_supported():
            await self._job("snapshot-delete", tag, {"devices": nodes})
        else:
            await self._hmp_checked(f"delvm {tag}")

    async def _hmp_checked(self, line: str) -> None:
        out = (await self.conn.hmp(line)).strip()
        if out:
            raise BackendError(f"{self.name}: {line}: {out.splitlines()[0]}")


def check_tag(tag: str) -> None:
    if not tag or len(tag) > 64 or not all(c.isalnum() or c in "-_." for c in tag):
        raise BackendError(f"snapshot tag {tag!r}: letters, digits, '-', '_' or '.' (≤ 64)")
