"""The disk fills while logs are written: nothing already received is lost, the
emulator and the clients go on, and the logs catch up once there is room."""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
from pathlib import Path

import pytest

from emutui.config import parse_config
from emutui.control import connected, probe_status, start_target, stop_instance
from emutui.core import rotating
from emutui.core.journal import Journal, JournalWriter
from emutui.core.model import Event, InstanceState
from emutui.core.registry import Registry
from emutui.core.rotating import RotatingLog
from tests.conftest import needs_qemu, wait_for_file_text


class FlakyDisk:
    """os.write that fails with ENOSPC while ``full`` is set."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = False
        real = os.write

        def write(fd: int, data: bytes) -> int:
            if self.full:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(fd, data)

        monkeypatch.setattr(rotating.os, "write", write)


def test_rotating_log_holds_bytes_while_the_disk_is_full(tmp_path, monkeypatch):
    disk = FlakyDisk(monkeypatch)
    log = RotatingLog(tmp_path / "serial.log", max_bytes=1 << 20)
    log.write(b"before ")
    disk.full = True
    log.write(b"during ")
    assert log.error and "No space left" in log.error
    disk.full = False
    log.write(b"after")
    assert log.error is None
    assert (tmp_path / "serial.log").read_bytes() == b"before during after"


def test_rotating_log_memory_is_bounded_when_the_disk_stays_full(tmp_path, monkeypatch):
    disk = FlakyDisk(monkeypatch)
    log = RotatingLog(tmp_path / "serial.log")
    disk.full = True
    chunk = b"x" * 65536
    for _ in range(rotating.PENDING_MAX // len(chunk) + 10):
        log.write(chunk)
    assert log.dropped > 0
    assert len(log._pending) <= rotating.PENDING_MAX


def test_journal_keeps_events_until_there_is_room(tmp_path, monkeypatch):
    disk = FlakyDisk(monkeypatch)
    writer = JournalWriter(Journal(tmp_path))
    disk.full = True
    assert writer.offer(Event(name="STOP"))
    assert writer.journal.error
    disk.full = False
    writer.offer(Event(name="RESUME"))
    assert [e.name for e in Journal(tmp_path).read()] == ["STOP", "RESUME"]


@pytest.fixture
def small_fs(tmp_path):
    """A 2 MiB tmpfs (root only, as in CI); the instance's state dir lives on it."""
    mnt = Path("/tmp") / f"ef-{os.getpid()}"
    mnt.mkdir(exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mnt)], capture_output=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {r.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)
    mnt.rmdir()


@needs_qemu
async def test_real_disk_full_while_guest_floods(small_fs, tmp_path, guest_elf, monkeypatch):
    cfg = tmp_path / "df.toml"
    cfg.write_text(
        f'[targets.df]\nbackend = "qemu"\nmachine = "pc"\nkernel = "{guest_elf}"\n'
        "log_max_bytes = 16777216\n"
    )
    reg = Registry(small_fs / "st")
    inst = await start_target(parse_config(cfg), reg, "df", None, False)
    try:
        await wait_for_file_text(inst.serial_log("com1"), b"ready (COM1)")
        async with connected(inst) as conn:
            s = await conn.serial("com1")
            await s.write(b"\x06")
            got = 0
            while got < 3 * 1024 * 1024:  # more than the filesystem holds
                chunk = await asyncio.wait_for(s.read(), 5)
                assert chunk, "the hub stopped serving when the disk filled"
                got += len(chunk)
            await s.write(b"x")
            # the guest and the monitor go on
            assert (await conn.status()).state is InstanceState.RUNNING
            await s.write(b"still here\r")
            buf = b""
            while b"still here\r\n" not in buf:
                buf += await asyncio.wait_for(s.read(), 5)
            await s.close()
        assert (await probe_status(inst)).state is InstanceState.RUNNING
        # room again: the log catches up from what the hub held in memory
        log = inst.serial_log("com1")
        size_full = log.stat().st_size
        log.write_bytes(b"")  # the user frees space
        async with connected(inst) as conn:
            s = await conn.serial("com1")
            await s.write(b"after cleanup\r")
            await s.close()
        data = await wait_for_file_text(log, b"after cleanup")
        assert size_full > 1024 * 1024
        assert b"still here" in data  # held in memory while the disk was full
    finally:
        await stop_instance(reg, inst)
