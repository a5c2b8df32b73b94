"""A Connector for a Renode instance: robot port for control, side channels for output.

Everything goes through ``ExecuteCommand`` (the Monitor over robot): run state
from ``emulation IsStarted``, the property tree from ``peripherals`` and each
object's help listing, memory through ``sysbus Read/WriteDoubleWord``. UART
bytes come through the serial hub that holds each socket terminal (or from a
pty terminal), events from Renode's log file.
No blocking wait keyword is ever sent: it would hold Renode's single robot
thread (spec 1.3).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emutui.backends.base import BaseConnector, SerialStream, SocketSerial
from emutui.backends.renode import launcher, monitor
from emutui.backends.renode.robot import KeywordFailed, RobotClient
from emutui.core import proc, serialhub
from emutui.core.errors import (
    BackendError,
    BusyError,
    DisconnectedError,
    InstanceDeadError,
    NotFoundError,
    RangeError,
    UnsupportedError,
)
from emutui.core.model import (
    Capability,
    Event,
    InstanceState,
    InstanceStatus,
    MemoryRegion,
    PropertyNode,
)

if TYPE_CHECKING:
    from emutui.core.instance import Instance

BATCH = 64  # dwords per ExecuteCommand: ";"-joined reads, one robot round trip
_LOG_LINE = re.compile(
    r"^\[?(?P<clock>\d{2}:\d{2}:\d{2}(?:\.\d+)?)\]?\s+\[(?P<level>[A-Z]+)\]\s?(?P<rest>.*)$"
)
OFFSET_FILE = ".renode-log-offset"
ROOT = "sysbus"  # the root of Renode's peripherals tree, and of emutui's property paths


def parse_log_line(line: str) -> tuple[str, str, str, str] | None:
    """``HH:mm:ss.ffff [LEVEL] obj: msg`` (v1.16.1) or ``[HH:mm:ss.ffff] [LEVEL] ...`` (master)."""
    m = _LOG_LINE.match(line)
    if not m:
        return None
    rest = m.group("rest")
    obj, sep, msg = rest.partition(": ")
    if not sep or " " in obj.strip() or not obj:
        obj, msg = "", rest
    return m.group("clock"), m.group("level"), obj, msg


def _clock_to_epoch(clock: str) -> float:
    now = dt.datetime.now()
    try:
        t = dt.datetime.strptime(clock[:15], "%H:%M:%S.%f").time()
    except ValueError:
        return now.timestamp()
    stamp = dt.datetime.combine(now.date(), t)
    if stamp > now + dt.timedelta(minutes=5):
        stamp -= dt.timedelta(days=1)  # logged before midnight, read after
    return stamp.timestamp()


class RenodeConnector(BaseConnector):
    backend_name = "renode"
    capabilities = frozenset(
        {
            Capability.SERIAL,
            Capability.EVENTS,
            Capability.PROPERTIES,
            Capability.PROPERTY_WRITE,
            Capability.MEMORY,
            Capability.MEMORY_WRITE,
            Capability.PAUSE,
            Capability.RESET,
            Capability.STOP,
            Capability.COMMANDS,
        }
    )

    def __init__(self, instance: Instance, aux: bool = True) -> None:
        super().__init__(instance)
        h = instance.handles
        if h is None:
            raise InstanceDeadError(f"{self.name}: no handles ({instance.error})")
        robot = h.channels.get("robot")
        unix = robot.path if robot is not None and robot.kind == "unix" else None
        if robot is None or (robot.port is None and unix is None):
            raise BackendError(f"{self.name}: handles.json has no robot channel")
        self.client = RobotClient(
            robot.host or "127.0.0.1", robot.port or 0, label=self.name, path=unix
        )
        self._peripherals: list[monitor.Peripheral] | None = None
        self._closed = False

    # ------------------------------------------------------------------ plumbing

    async def _exec(self, command: str) -> str:
        self._check_not_stopped()  # else the call would hang until its timeout
        try:
            return await self.client.execute(command)
        except DisconnectedError as e:
            if not self.instance.alive():
                raise InstanceDeadError(
                    f"{self.name}: Renode is gone (pid {self.instance.pid})"
                ) from e
            raise

    def _monitor_name(self, path: str) -> str:
        """A property path as a Monitor name.

        The tree is rooted at the system bus: ``/`` is ``sysbus``, ``/uart0`` is
        ``sysbus.uart0``, ``/gpio/led`` is ``sysbus.gpio.led``. Monitor names
        (``sysbus.uart0``, ``/sysbus.uart0``) are accepted as they are.
        """
        name = path.strip().strip("/").replace("/", ".")
        if name != ROOT and not name.startswith(ROOT + "."):
            name = f"{ROOT}.{name}" if name else ROOT
        if not re.fullmatch(r"[A-Za-z_][\w.\-\[\]]*", name):
            raise NotFoundError(f"{self.name}: {path!r} is not a Renode peripheral name")
        return name

    @staticmethod
    def _tree_path(monitor_name: str) -> str:
        if monitor_name == ROOT:
            return "/"
        return "/" + monitor_name.removeprefix(ROOT + ".").replace(".", "/")

    def _check_not_stopped(self) -> None:
        pid = self.instance.pid
        if pid and proc.is_stopped(pid):
            raise BusyError(f"{self.name}: Renode process is stopped (SIGSTOP); it cannot answer")

    async def connect(self) -> None:
        if not self.instance.alive():
            raise InstanceDeadError(f"{self.name}: Renode is not running")
        self._check_not_stopped()
        await self._exec("emulation IsStarted")  # the first call, retried once by the client

    async def close(self) -> None:
        self._closed = True

    # ---------------------------------------------------------------- lifecycle

    async def status(self) -> InstanceStatus:
        if not self.instance.alive():
            return InstanceStatus(InstanceState.DEAD, "process gone")
        started = monitor.parse_scalar(await self._exec("emulation IsStarted"))
        if started is True:
            return InstanceStatus(InstanceState.RUNNING, "started")
        if started is False:
            return InstanceStatus(InstanceState.PAUSED, "paused")
        return InstanceStatus(InstanceState.UNKNOWN, str(started))

    async def pause(self) -> None:
        await self._exec("pause")

    async def resume(self) -> None:
        await self._exec("start")

    async def reset(self) -> None:
        # Never ResetEmulation: it destroys machines, terminals and all (spec 1.4).
        await self._exec("machine Reset")

    async def stop(self) -> None:
        h = self.instance.handles
        assert h is not None
        if h.pid is None:
            return
        robot = h.channels.get("robot")
        pgid = h.options.get("pgid")
        await launcher.shutdown(
            robot.host or "127.0.0.1" if robot else "127.0.0.1",
            robot.port if robot else None,
            h.pid,
            h.pid_start,
            int(pgid) if isinstance(pgid, int) else None,
            path=robot.path if robot is not None and robot.kind == "unix" else None,
        )
        # The hub ends by itself when Renode closes its terminals; make sure.
        await asyncio.to_thread(serialhub.stop_helpers, h)

    async def command(self, line: str) -> Any:
        try:
            return monitor.clean(await self._exec(line))
        except KeywordFailed as e:
            raise BackendError(f"{self.name}: {e}") from e

    # -------------------------------------------------------------- properties

    async def peripherals(self, refresh: bool = False) -> list[monitor.Peripheral]:
        if self._peripherals is None or refresh:
            self._peripherals = monitor.parse_peripherals(await self._exec("peripherals"))
        return self._peripherals

    async def list_props(self, path: str) -> list[PropertyNode]:
        """Child peripherals (with type and address ranges), then properties with their values."""
        name = self._monitor_name(path)
        tree = await self.peripherals(refresh=name == ROOT)
        depth = name.count(".") + 1
        nodes = [
            PropertyNode(
                name=p.short_name,
                path=self._tree_path(p.name),
                type=p.type,
                has_children=True,
                readable=False,
                description=p.describe(),
            )
            for p in tree
            if p.name.startswith(name + ".") and p.name.count(".") == depth
        ]
        try:
            members = monitor.parse_members(await self._exec(name))
        except KeywordFailed as e:
            raise NotFoundError(f"{self.name}: no peripheral {name} ({e})") from e
        owner = self._tree_path(name)
        for m in members:
            # Methods are left out: they are not state; `emutui shell` lists them.
            if m.kind not in ("property", "field"):
                continue
            value: Any = None
            if m.readable:
                try:
                    value = monitor.parse_scalar(await self._exec(f"{name} {m.name}"))
                except KeywordFailed as e:
                    value = f"<{e}>"
            nodes.append(
                PropertyNode(
                    m.name,
                    owner,
                    m.type,
                    False,
                    value=value,
                    readable=m.readable,
                    writable=m.writable,
                )
            )
        return nodes

    async def get_prop(self, path: str, name: str) -> Any:
        target = self._monitor_name(path)
        self._check_member(name)
        try:
            return monitor.parse_scalar(await self._exec(f"{target} {name}"))
        except KeywordFailed as e:
            raise NotFoundError(f"{self.name}: {target} {name}: {e}") from e

    async def set_prop(self, path: str, name: str, value: Any) -> None:
        target = self._monitor_name(path)
        self._check_member(name)
        try:
            await self._exec(f"{target} {name} {monitor.format_arg(value)}")
        except KeywordFailed as e:
            raise BackendError(f"{self.name}: {target} {name}: {e}") from e

    def _check_member(self, name: str) -> None:
        if not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise NotFoundError(f"{self.name}: {name!r} is not a property name")

    # ------------------------------------------------------------------- memory

    async def regions(self) -> list[MemoryRegion]:
        if self._regions is None:
            out: list[MemoryRegion] = []
            seen: dict[str, int] = {}
            for p in await self.peripherals():
                for start, end in p.ranges:
                    base_name = p.name.removeprefix("sysbus.")
                    n = seen.get(base_name, 0)
                    seen[base_name] = n + 1
                    out.append(
                        MemoryRegion(
                            name=base_name if n == 0 else f"{base_name}#{n}",
                            base=start,
                            size=end - start + 1,
                            writable=True,
                            access_width=4,
                            description=f"{p.type} <0x{start:08X}, 0x{end:08X}>",
                        )
                    )
            self._regions = out
        return self._regions

    async def read(self, region: str, offset: int, length: int) -> bytes:
        r = await self.find_region(region)
        r.check(offset, length)
        if length == 0:
            return b""
        first = offset - offset % 4
        last = offset + length
        words = (last - first + 3) // 4
        if first + 4 * words > r.size:
            raise RangeError(f"{r.name}: a dword read would pass the end of the region")
        out = bytearray()
        for i in range(0, words, BATCH):
            n = min(BATCH, words - i)
            addrs = [r.base + first + 4 * (i + k) for k in range(n)]
            text = await self._exec("; ".join(f"sysbus ReadDoubleWord 0x{a:X}" for a in addrs))
            for v in monitor.parse_hex_values(text, n, "dwords"):
                out += (v & 0xFFFFFFFF).to_bytes(4, "little")
        skip = offset - first
        return bytes(out[skip : skip + length])

    async def write(self, region: str, offset: int, data: bytes) -> None:
        r = await self.find_region(region)
        r.check(offset, len(data))
        if offset % 4 or len(data) % 4:
            raise RangeError(
                f"{r.name}: Renode registers take whole dwords: offset and length must be "
                f"multiples of 4 (got 0x{offset:x}+{len(data)})"
            )
        words = [int.from_bytes(data[i : i + 4], "little") for i in range(0, len(data), 4)]
        for i in range(0, len(words), BATCH):
            chunk = words[i : i + BATCH]
            await self._exec(
                "; ".join(
                    f"sysbus WriteDoubleWord 0x{r.base + offset + 4 * (i + k):X} 0x{v:08X}"
                    for k, v in enumerate(chunk)
                )
            )

    # ------------------------------------------------------------------- serial

    async def serial(self, channel: str) -> SerialStream:
        h = self.instance.handles
        assert h is not None
        ch = h.channels.get(channel)
        if ch is None or ch.role != "serial":
            known = ", ".join(h.serial_channels()) or "none"
            raise NotFoundError(f"{self.name}: no serial channel {channel!r} (channels: {known})")
        if ch.kind == "unix" and ch.path:
            try:
                return await SocketSerial.open_unix(ch.path)
            except DisconnectedError:
                # The serial hub died (killed, OOM): bring it back, then attach.
                # Renode queued what the UART sent meanwhile, so nothing is lost.
                if not await serialhub.ensure_hub(h, self.instance.wd):
                    raise
                return await SocketSerial.open_unix(ch.path)
        if ch.kind == "tcp" and ch.port is not None:
            return await SocketSerial.open_tcp(ch.host or "127.0.0.1", ch.port)
        if ch.kind == "pty" and ch.path:
            return await PtySerial.open(ch.path)
        raise UnsupportedError(f"{self.name}: serial channel {channel!r} of kind {ch.kind!r}")

    # ------------------------------------------------------------------- events

    def _log_path(self) -> Path:
        h = self.instance.handles
        log = h.options.get("log") if h else None
        return Path(log) if isinstance(log, str) else self.instance.wd / launcher.LOG_FILE

    def events(self) -> AsyncIterator[Event]:
        return self._tail_log()

    async def _tail_log(self) -> AsyncIterator[Event]:
        """Events from Renode's log file: history first, then new lines as they are written.

        Each line is journaled once, however many emutuis tail the log: the
        offset journaled so far lives in the instance directory, advanced under
        a lock by whoever reads past it.
        """
        path = self._log_path()
        # Lines already journaled are history: the CLI and TUI show them from the
        # journal, so only what comes after is yielded here.
        skip_before = self._journaled_up_to()
        # Start at the last journaled entry (a line start), not at byte 0: a long
        # log is not re-read on every attach. That entry itself is skipped below.
        pos = max(0, skip_before - 1)  # how far the file has been read
        base = pos  # file offset of the first byte of ``pending``
        pending = b""
        last: Event | None = None
        last_start = 0  # file offset of ``last``: its identity for the journal
        while not self._closed:
            try:
                with path.open("rb") as f:
                    f.seek(pos)
                    data = f.read(1 << 20)
            except FileNotFoundError:
                data = b""
            if not data:
                if last is not None:
                    # nothing followed it, so no continuation line is coming
                    self._journal(last, last_start)
                    yield last
                    last = None
                if not self.instance.alive():
                    return
                await asyncio.sleep(0.1)
                continue
            pos += len(data)
            pending += data
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                start = base
                base += len(raw) + 1
                line = raw.decode("utf-8", "replace").rstrip("\r")
                parsed = parse_log_line(line)
                if parsed is None:
                    if last is not None and line.startswith("    "):
                        # a continuation line belongs to the previous entry
                        msg = f"{last.data.get('message', '')}\n{line[4:]}"
                        last = Event(
                            last.name, {**last.data, "message": msg}, last.timestamp, last.source
                        )
                    continue
                if last is not None:
                    self._journal(last, last_start)
                    yield last
                    last = None
                if start < skip_before:
                    continue
                clock, level, obj, msg = parsed
                # The level is the event's name; the clock becomes its timestamp.
                last = Event(
                    name=level,
                    data={"object": obj, "message": msg} if obj else {"message": msg},
                    timestamp=_clock_to_epoch(clock),
                    source=self.name,
                )
                last_start = start

    def _journaled_up_to(self) -> int:
        try:
            raw = (self.instance.wd / OFFSET_FILE).read_bytes().strip()
        except OSError:
            return 0
        return int(raw) if raw.isdigit() else 0

    def _journal(self, ev: Event, start: int) -> None:
        """Append to the instance journal unless another tailer already did."""
        try:
            fd = os.open(self.instance.wd / OFFSET_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.pread(fd, 32, 0).strip()
            done = int(raw) if raw.isdigit() else 0
            if start < done:
                return
            self.instance.journal().append(ev)
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(start + 1).encode(), 0)
        finally:
            os.close(fd)


class PtySerial:
    """SerialStream over the pty Renode made for a UART (``CreateUartPtyTerminal``)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @classmethod
    async def open(cls, path: str) -> PtySerial:
        try:
            fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as e:
            raise DisconnectedError(f"serial pty {path}: {e.strerror}") from e
        import tty

        try:
            tty.setraw(fd)
        except OSError:
            pass
        return cls(fd)

    async def read(self, n: int = 65536) -> bytes:
        loop = asyncio.get_running_loop()
        while True:
            try:
                return os.read(self._fd, n)
            except BlockingIOError:
                fut: asyncio.Future[None] = loop.create_future()
                loop.add_reader(self._fd, fut.set_result, None)
                try:
                    await fut
                finally:
                    loop.remove_reader(self._fd)
            except OSError:
                return b""

    async def write(self, data: bytes) -> None:
        try:
            os.write(self._fd, data)
        except OSError as e:
            raise DisconnectedError(f"serial pty: {e.strerror}") from e

    async def close(self) -> None:
        try:
            os.close(self._fd)
        except OSError:
            pass
