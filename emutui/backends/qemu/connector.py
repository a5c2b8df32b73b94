"""QEMU through QMP (qemu.qmp's QMPClient): status, control, QOM, PCI memory, events, serial."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from qemu.qmp import EventListener, ExecInterruptedError, QMPClient, QMPError, StateError
from qemu.qmp.protocol import ConnectError, Runstate
from qemu.qmp.qmp_client import ExecuteError

from emutui.backends.base import BaseConnector, SerialStream, SocketSerial
from emutui.backends.qemu.pci import bar_regions
from emutui.backends.qemu.qtest import QtestClient
from emutui.core import deadline, proc, qmpbroker, serialhub
from emutui.core.errors import (
    BackendError,
    DisconnectedError,
    EmutuiError,
    InstanceDeadError,
    NoAnswerError,
    NotFoundError,
    ProtocolError,
    RangeError,
    UnsupportedError,
)
from emutui.core.handles import Channel, Handles
from emutui.core.instance import Instance
from emutui.core.journal import JournalWriter
from emutui.core.model import (
    Capability,
    Event,
    InstanceState,
    InstanceStatus,
    MemoryRegion,
    PropertyNode,
)

GREETING_TIMEOUT = 2.0  # the broker greets at once; a wedged one is reported, never waited for
EVENT_QUEUE_MAX = 10000  # events one listener holds before it drops (and counts) the rest
XP_CONCURRENCY = 32  # pipelined HMP reads; QEMU serves them one by one anyway
RAM_READ_MAX = 16 * 1024 * 1024

_RUNNING = {"running"}
# qemu.qmp logs every disconnect at ERROR level; the CLI reports them itself.
logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)


class QemuConnector(BaseConnector):
    backend_name = "QEMU"

    def __init__(
        self,
        instance: Instance,
        aux: bool = True,
        *,
        monitor: str | None = None,
        standalone: bool = False,
    ) -> None:
        """``monitor`` names a channel to use as is ("qmp-aux": QEMU's second monitor,
        the way in when the broker is wedged). Otherwise a brokered instance is
        reached through its broker whatever ``aux`` says (the broker serves any
        number of clients); ``aux`` only picks the monitor of an instance started
        before the broker existed. ``standalone``: a bare socket with no instance
        behind it (``emutui shell --socket``): no pid, no journal, no broker."""
        super().__init__(instance)
        h = instance.handles
        if h is None:
            raise InstanceDeadError(f"{instance.name}: {instance.error}")
        self.handles = h
        self.aux = aux
        self.standalone = standalone
        self.via_broker = monitor is None and not standalone and qmpbroker.is_brokered(h)
        role = monitor or ("qmp" if self.via_broker or standalone or not aux else "qmp-aux")
        ch = h.channels.get(role)
        if ch is None or not (ch.path or (ch.host and ch.port)):
            raise ProtocolError(f"{instance.name}: handles.json has no {role} channel")
        self.address: str | tuple[str, int] = (
            str(ch.path) if ch.path else (str(ch.host), int(ch.port or 0))
        )
        self.qmp_path = str(ch.path) if ch.path else f"{ch.host}:{ch.port}"
        caps = {
            Capability.SERIAL,
            Capability.EVENTS,
            Capability.PROPERTIES,
            Capability.PROPERTY_WRITE,
            Capability.MEMORY,
            Capability.PAUSE,
            Capability.RESET,
            Capability.STOP,
            Capability.COMMANDS,
        }
        # The qtest channel serves MMIO reads on every instance emutui starts;
        # writes through it only where the target says `qtest = true`.
        qt = h.channels.get("qtest")
        self.qtest_path = str(qt.path) if qt is not None and qt.path else None
        if self.qtest_path and h.options.get("qtest", True):
            caps.add(Capability.MEMORY_WRITE)
        self.capabilities = frozenset(caps)
        self.client = new_client(f"emutui-{instance.name}")
        # Behind a broker the broker journals every event (once); a direct
        # client journals what it sees, if it wins the journal's writer lock.
        self._journal: JournalWriter | None = (
            None if self.via_broker or standalone else JournalWriter(instance.journal())
        )
        self._journal_listener = BoundedListener()
        self.want_events = True  # False: a one-shot command; the broker then sends none
        self._tasks: list[asyncio.Task[None]] = []
        self._dc_task: asyncio.Future[None] | None = None
        self._gone = asyncio.Event()
        self._qtest_lock = asyncio.Lock()  # one qtest connection at a time per client

    @classmethod
    def for_socket(cls, address: str) -> QemuConnector:
        """A connector on any QMP socket (``PATH`` or ``HOST:PORT``), no instance needed."""
        ch = socket_channel("qmp", address)
        h = Handles(name=address, backend="qemu", target="", channels={"qmp": ch})
        inst = Instance(name=address, wd=Path("."), handles=h)
        return cls(inst, standalone=True)

    def _qemu_pid(self) -> tuple[int | None, int | None]:
        """QEMU's pid and start time, when known (an attached QEMU's is its socket peer's)."""
        h = self.handles
        if h.pid:
            return h.pid, h.pid_start
        peer = h.options.get("peer_pid")
        start = h.options.get("peer_pid_start")
        if isinstance(peer, int) and not isinstance(peer, bool) and peer > 1:
            return peer, start if isinstance(start, int) else None
        return None, None

    def _alive(self) -> bool:
        if self.standalone:
            return True
        pid, start = self._qemu_pid()
        if pid is None:
            return True  # attached over TCP: whether it answers is all we can tell
        return proc.is_alive(pid, start)

    # -- connection -----------------------------------------------------------------

    async def connect(self) -> None:
        if not self._alive():
            raise InstanceDeadError(f"{self.name} is dead (QEMU pid {self._qemu_pid()[0]} is gone)")
        pid, _ = self._qemu_pid()
        if pid and proc.is_stopped(pid):
            raise NoAnswerError(f"{self.name}: QEMU process is stopped (SIGSTOP); it cannot answer")
        for attempt in (1, 2):
            try:
                await asyncio.wait_for(self._connect_once(), GREETING_TIMEOUT)
                break
            except TimeoutError as e:
                what = "the QMP broker" if self.via_broker else f"QMP monitor {self.qmp_path}"
                raise NoAnswerError(
                    f"{self.name}: {what} did not answer within {GREETING_TIMEOUT:g} s"
                ) from e
            except ConnectError as e:
                if not self._alive():
                    raise InstanceDeadError(f"{self.name} is dead (QEMU exited)") from e
                cause = e.exc
                refused = isinstance(cause, FileNotFoundError | ConnectionRefusedError)
                if refused and self.via_broker and attempt == 1:
                    # The broker died (killed, OOM): start another; QEMU never noticed.
                    await qmpbroker.ensure_broker(self.handles, self.instance.wd)
                    await qmpbroker.wait_serving(self.qmp_path)
                    self.client = new_client(f"emutui-{self.name}")
                    self._dc_task = None
                    continue
                if refused:
                    raise DisconnectedError(
                        f"{self.name}: QMP socket {self.qmp_path} is not answering"
                    ) from e
                raise ProtocolError(f"{self.name}: QMP handshake failed: {e}") from e
            except (OSError, EOFError) as e:
                raise DisconnectedError(f"{self.name}: QMP connection failed: {e}") from e
        if self._journal is not None:
            self.client.register_listener(self._journal_listener)
            self._tasks.append(asyncio.create_task(self._journal_pump()))
        self._tasks.append(asyncio.create_task(self._watch_runstate()))

    async def _connect_once(self) -> None:
        if not (self.via_broker and not self.want_events):
            await self.client.connect(self.address)
            return
        # Negotiate by hand to add the broker's own capability (QEMU never sees it).
        self.client.negotiate = False
        await self.client.connect(self.address)
        caps = list(self.client.greeting.QMP.capabilities) if self.client.greeting else []
        enable = [c for c in caps if c == "oob"] + [qmpbroker.NO_EVENTS_CAP]
        await self.client.execute("qmp_capabilities", {"enable": enable})

    async def _journal_pump(self) -> None:
        while True:
            msg = await self._journal_listener.get()
            if self._journal is not None:
                self._journal.offer(self._to_event(msg))

    async def _watch_runstate(self) -> None:
        while True:
            state = await self.client.runstate_changed()
            if state in (Runstate.DISCONNECTING, Runstate.IDLE):
                self._gone.set()
                if state is Runstate.DISCONNECTING:
                    await self._disconnect()
                return

    async def _disconnect(self) -> None:
        """qemu.qmp's disconnect() in a task of its own that nobody cancels.

        Cancelling a task inside disconnect() leaves qemu.qmp's gathered
        bottom-half future unawaited, and asyncio then prints "_GatheringFuture
        exception was never retrieved" with a traceback when the peer hung up.
        """
        if self._dc_task is None:

            async def run() -> None:
                try:
                    await self.client.disconnect()
                except BaseException:  # EOFError, OSError…: the peer is gone, as intended
                    pass

            self._dc_task = asyncio.ensure_future(run())
        await asyncio.shield(self._dc_task)

    async def close(self) -> None:
        # Flush events that arrived just before a command's reply (STOP before
        # the reply to "stop"), so a one-shot CLI command still journals them.
        for msg in self._journal_listener.clear():
            if self._journal is not None:
                self._journal.offer(self._to_event(msg))
        for t in self._tasks:
            t.cancel()
        self._tasks.clear()
        try:
            self.client.remove_listener(self._journal_listener)
        except (ValueError, KeyError):
            pass
        if self.client.runstate is not Runstate.IDLE or self._dc_task is not None:
            await self._disconnect()
        if self._journal is not None:
            self._journal.close()
        self._gone.set()

    @property
    def connected(self) -> bool:
        return self.client.runstate is Runstate.RUNNING

    # -- raw commands -----------------------------------------------------------------

    async def execute(self, cmd: str, args: dict[str, Any] | None = None) -> Any:
        if self.client.runstate is not Runstate.RUNNING:
            raise self._gone_error()
        if args:
            check_json(cmd, args)
        timeout = deadline.request_timeout()
        try:
            async with asyncio.timeout(timeout):
                return await self.client.execute(cmd, args)
        except TimeoutError:
            raise NoAnswerError(self._no_answer(cmd, timeout)) from None
        except ExecuteError as e:
            desc = str(e)  # ExecuteError renders as QEMU's own "desc"
            err: BackendError | NotFoundError
            if e.error_class == "CommandNotFound":
                err = NotFoundError(f"{desc}")
            elif e.error_class in ("DeviceNotFound",) or "not found" in desc:
                err = NotFoundError(f"{cmd}: {desc}")
            else:
                err = BackendError(f"{cmd}: {desc}")
            err.error_class, err.desc = e.error_class, desc  # QMP's own, for `shell --json`
            raise err from e
        except (ExecInterruptedError, StateError, EOFError, ConnectionError) as e:
            raise self._gone_error() from e
        except QMPError as e:
            raise ProtocolError(f"{cmd}: {e}") from e

    def _no_answer(self, cmd: str, timeout: float) -> str:
        pid, _ = self._qemu_pid()
        why = ""
        if pid and proc.is_stopped(pid):
            why = "; QEMU is stopped (SIGSTOP)"
        return (
            f"{self.name}: {cmd}: no answer within {timeout:g} s{why} "
            f"(request_timeout in [ui] or ${deadline.ENV})"
        )

    def _gone_error(self) -> Exception:
        if not self._alive():
            return InstanceDeadError(f"{self.name} is dead (QEMU exited)")
        return DisconnectedError(f"{self.name}: QMP connection closed")

    async def hmp(self, line: str) -> str:
        out = await self.execute("human-monitor-command", {"command-line": line})
        return str(out)

    async def command(self, line: str) -> Any:
        """One monitor command: ``{"execute": …}``, ``!hmp line``, ``cmd {json}`` or ``cmd k=v``."""
        cmd, args = parse_command(line)
        if cmd == "!":
            return await self.hmp(str(args["command-line"]))
        return await self.execute(cmd, args or None)

    # -- lifecycle --------------------------------------------------------------------

    async def status(self) -> InstanceStatus:
        st = await self.execute("query-status")
        if not isinstance(st, dict) or not isinstance(st.get("status"), str):
            raise ProtocolError(f"{self.name}: query-status: unexpected reply {st!r:.80}")
        status = st["status"]
        if status in _RUNNING:
            return InstanceStatus(InstanceState.RUNNING, status)
        return InstanceStatus(InstanceState.PAUSED, status)

    async def pause(self) -> None:
        await self.execute("stop")

    async def resume(self) -> None:
        await self.execute("cont")

    async def reset(self) -> None:
        await self.execute("system_reset")

    async def stop(self) -> None:
        """QMP quit, then SIGTERM, then SIGKILL to the process group; nothing left behind.

        The quit goes through the broker; when the broker does not answer, through
        QEMU's second monitor, the way in kept for exactly this. An attached QEMU
        is never signalled: stopping it only ends emutui's helpers (detach).
        """
        if self.handles.options.get("attached"):
            await self.close()
            await asyncio.to_thread(serialhub.stop_helpers, self.handles)
            return
        pid, started = self.handles.pid, self.handles.pid_start
        if pid and proc.is_alive(pid, started):
            quit_ok = False
            try:
                if not self.connected:
                    await self.connect()
                await self.execute("quit")
                quit_ok = True
            except EmutuiError:
                pass
            await self.close()
            if not quit_ok and "qmp-aux" in self.handles.channels and self.via_broker:
                await self._quit_through_aux()
            gone = await asyncio.to_thread(proc.wait_gone, pid, started, 2.0)
            if not gone:
                await asyncio.to_thread(proc.terminate, pid, started, 2.0)
        else:
            await self.close()
        # The hub and the broker exit by themselves when QEMU closes its sockets; make sure.
        await asyncio.to_thread(serialhub.stop_helpers, self.handles)

    async def _quit_through_aux(self) -> None:
        aux = QemuConnector(self.instance, monitor="qmp-aux")
        try:
            await aux.connect()
            await aux.execute("quit")
        except EmutuiError:
            pass
        finally:
            await aux.close()

    # -- events -----------------------------------------------------------------------

    def _to_event(self, msg: Any) -> Event:
        # Events come from the peer: take what is well-formed, never raise.
        return qmpbroker.event_from_qmp(msg, self.name)

    def events(self) -> _EventStream:
        return _EventStream(self)

    # -- serial -----------------------------------------------------------------------

    async def serial(self, channel: str) -> SerialStream:
        ch = self.handles.channels.get(channel)
        if ch is None or ch.role != "serial" or not ch.path:
            known = ", ".join(self.serial_channels()) or "none"
            raise NotFoundError(f"{self.name}: no serial channel {channel!r} (channels: {known})")
        try:
            return await SocketSerial.open_unix(ch.path)
        except DisconnectedError:
            # The serial hub died (killed, OOM): bring it back, then attach.
            if not await serialhub.ensure_hub(self.handles, self.instance.wd):
                raise
            return await SocketSerial.open_unix(ch.path)

    # -- properties -------------------------------------------------------------------

    async def list_props(self, path: str) -> list[PropertyNode]:
        path = normalize_qom_path(path)
        items = await self.execute("qom-list", {"path": path})
        if not isinstance(items, list):
            raise ProtocolError(f"qom-list {path}: expected a list, got {items!r:.80}")
        out = []
        for it in items:
            if not isinstance(it, dict) or not isinstance(it.get("name"), str):
                raise ProtocolError(f"qom-list {path}: malformed entry {it!r:.80}")
            name = it["name"]
            typ = str(it.get("type", "?"))
            child = typ.startswith("child<")
            out.append(
                PropertyNode(
                    name=name,
                    path=join_qom(path, name) if child else path,
                    type=typ,
                    has_children=child,
                    writable=not child and not typ.startswith("link<"),
                    description=str(it.get("description") or ""),
                )
            )
        return out

    async def get_prop(self, path: str, name: str) -> Any:
        return await self.execute("qom-get", {"path": normalize_qom_path(path), "property": name})

    async def set_prop(self, path: str, name: str, value: Any) -> None:
        await self.execute(
            "qom-set", {"path": normalize_qom_path(path), "property": name, "value": value}
        )

    # -- memory -----------------------------------------------------------------------

    async def regions(self) -> list[MemoryRegion]:
        pci = await self.execute("query-pci")
        writable = Capability.MEMORY_WRITE in self.capabilities
        try:
            bars = bar_regions(pci)
        except (TypeError, ValueError, AttributeError) as e:
            raise ProtocolError(f"query-pci: malformed reply ({e})") from e
        regions = [
            MemoryRegion(r.name, r.base, r.size, writable, r.access_width, r.description)
            for r in bars
        ]
        try:
            summary = await self.execute("query-memory-size-summary")
            ram = int(summary.get("base-memory", 0)) if isinstance(summary, dict) else 0
        except (BackendError, NotFoundError, TypeError, ValueError):
            ram = 0
        if ram:
            regions.append(MemoryRegion("ram", 0, ram, writable, 1, "guest RAM (base memory)"))
        return regions

    async def find_region(self, name: str) -> MemoryRegion:
        # A BAR needs query-pci alone; the RAM region also needs the memory size.
        if name != "ram":
            try:
                for r in bar_regions(await self.execute("query-pci")):
                    if r.name == name:
                        writable = Capability.MEMORY_WRITE in self.capabilities
                        return dataclasses.replace(r, writable=writable)
            except (TypeError, ValueError, AttributeError):
                pass  # malformed: regions() says so
        return await super().find_region(name)

    async def read(self, region: str, offset: int, length: int) -> bytes:
        r = await self.find_region(region)
        r.check(offset, length)
        if length == 0:
            return b""
        if r.access_width == 1:
            return await self._read_ram(r.base + offset, length)
        return await self._read_words(r, offset, length)

    async def _read_words(self, r: MemoryRegion, offset: int, length: int) -> bytes:
        w = r.access_width
        start = offset - offset % w
        end = offset + length
        end += (-end) % w
        if self.qtest_path is not None:
            # Pipelined readl through qtest: ~5 µs a word instead of ~0.6 ms per xp.
            async with self._qtest_lock, QtestClient(self.qtest_path) as q:
                data = await q.read_words(r.base + start, (end - start) // w, w)
            return data[offset - start : offset - start + length]
        return await self._read_words_xp(r, start, end, offset, length)

    async def _read_words_xp(
        self, r: MemoryRegion, start: int, end: int, offset: int, length: int
    ) -> bytes:
        """HMP ``xp``, one word per command: for QEMUs without a qtest channel."""
        w = r.access_width
        sem = asyncio.Semaphore(XP_CONCURRENCY)

        async def word(addr: int) -> bytes:
            async with sem:
                text = await self.hmp(f"xp /1wx 0x{addr:x}")
            return parse_xp_word(text).to_bytes(4, "little")

        words = await asyncio.gather(*(word(r.base + a) for a in range(start, end, w)))
        data = b"".join(words)
        return data[offset - start : offset - start + length]

    async def _read_ram(self, addr: int, length: int) -> bytes:
        if length > RAM_READ_MAX:
            raise RangeError(f"read at most {RAM_READ_MAX} bytes of RAM at a time")
        # pmemsave writes a file QEMU opens itself: one round trip for any size.
        tmp = self.instance.wd / f".pmem-{os.getpid()}-{id(self)}.bin"
        try:
            await self.execute("pmemsave", {"val": addr, "size": length, "filename": str(tmp)})
            data = Path(tmp).read_bytes()
        finally:
            tmp.unlink(missing_ok=True)
        if len(data) != length:
            raise ProtocolError(f"pmemsave returned {len(data)} bytes, expected {length}")
        return data

    def write_refusal(self, region: MemoryRegion) -> str | None:
        if Capability.MEMORY_WRITE not in self.capabilities or self.qtest_path is None:
            return (
                f"{self.name}: memory writes need qtest = true in target "
                f"{self.handles.target!r} (QMP and HMP cannot write guest memory)"
            )
        return None

    async def write(self, region: str, offset: int, data: bytes) -> None:
        r = await self.find_region(region)
        r.check(offset, len(data))
        refusal = self.write_refusal(r)
        if refusal or self.qtest_path is None:
            raise UnsupportedError(refusal or f"{self.name}: no qtest channel")
        if r.access_width == 4 and (offset % 4 or len(data) % 4):
            raise RangeError(
                f"{r.name}: MMIO writes must be whole 32-bit words at 4-byte aligned offsets"
            )
        async with self._qtest_lock, QtestClient(self.qtest_path) as q:
            await q.write(r.base + offset, data)


class BoundedListener(EventListener):
    """qemu.qmp's EventListener keeps every event it ever saw (its history) and
    queues without bound: a flooding peer would grow the client by hundreds of
    MB. This one keeps nothing and queues at most ``maxsize``; the rest are
    dropped and counted in ``dropped``."""

    def __init__(self, maxsize: int = EVENT_QUEUE_MAX) -> None:
        super().__init__()
        self.maxsize = maxsize
        self.dropped = 0

    async def put(self, event: Any) -> None:
        if not self.accept(event):
            return
        if self._queue.qsize() >= self.maxsize:
            self.dropped += 1
            return
        self._queue.put_nowait(event)


def new_client(name: str) -> QMPClient:
    """A QMPClient whose built-in ``events`` listener takes nothing: it would queue every
    event ever received and keep each in its history, hundreds of MB under a flood
    (qemu.qmp does not let it be removed; its filter is public)."""
    client = QMPClient(name)
    client.events.event_filter = lambda _event: False
    return client


def check_json(cmd: str, args: Any) -> None:
    """Refuse what QEMU's JSON parser cannot read (NaN, Infinity, 1e999 become "Infinity"):
    QEMU would answer without an id and drop the connection."""
    try:
        json.dumps(args, allow_nan=False)
    except ValueError:
        raise RangeError(
            f"{cmd}: numbers must be finite (NaN, Infinity and values like 1e999 are not JSON)"
        ) from None
    except (TypeError, RecursionError) as e:
        raise ProtocolError(
            f"{cmd}: arguments cannot be sent as JSON ({e.__class__.__name__})"
        ) from None


def socket_channel(role: str, address: str) -> Channel:
    """``PATH`` (a unix socket) or ``HOST:PORT`` (TCP) as a Channel."""
    host, sep, port = address.rpartition(":")
    if sep and port.isdigit() and host and "/" not in address:
        return Channel(role=role, kind="tcp", host=host.strip("[]"), port=int(port))
    return Channel(role=role, kind="unix", path=str(Path(address).expanduser().absolute()))


class _EventStream:
    """Async iterator over events; its listener is registered at creation so none is missed."""

    def __init__(self, conn: QemuConnector) -> None:
        self._conn = conn
        self._listener = BoundedListener()
        self._told = 0
        conn.client.register_listener(self._listener)

    def __aiter__(self) -> _EventStream:
        return self

    async def __anext__(self) -> Event:
        if self._listener.dropped > self._told:
            lost = self._listener.dropped - self._told
            self._told = self._listener.dropped
            return Event(
                qmpbroker.DROPPED_EVENT,
                {"count": lost, "total": self._told, "by": "emutui"},
                source=self._conn.name,
            )
        if self._listener.empty() and self._conn._gone.is_set():
            self._close()
            raise StopAsyncIteration
        get = asyncio.ensure_future(self._listener.get())
        gone = asyncio.ensure_future(self._conn._gone.wait())
        try:
            done, _ = await asyncio.wait({get, gone}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            get.cancel()  # cancelled by our consumer: leave no task pending
            raise
        finally:
            gone.cancel()
        if get in done:
            return self._conn._to_event(get.result())
        get.cancel()
        self._close()
        raise StopAsyncIteration

    def _close(self) -> None:
        try:
            self._conn.client.remove_listener(self._listener)
        except (ValueError, KeyError):
            pass

    async def aclose(self) -> None:
        self._close()


_XP_RE = re.compile(r":\s*0x([0-9a-fA-F]+)")


def parse_xp_word(text: str) -> int:
    m = _XP_RE.search(text)
    if not m:
        raise ProtocolError(f"unexpected xp output: {text.strip()[:80]!r}")
    return int(m.group(1), 16)


def normalize_qom_path(path: str) -> str:
    path = path.strip() or "/"
    if not path.startswith("/"):
        path = "/" + path
    if len(path) > 1:
        path = path.rstrip("/")
    return path


def join_qom(path: str, name: str) -> str:
    return f"{path.rstrip('/')}/{name}"


def parse_command(line: str) -> tuple[str, dict[str, Any]]:
    """``{"execute": c, "arguments": a}``, ``!hmp``, ``cmd {json}`` or ``cmd k=v k2=v2``."""
    line = line.strip()
    if not line:
        raise ProtocolError("empty command")
    if line.startswith("!"):
        return "!", {"command-line": line[1:].strip()}
    if line.startswith("{"):
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise ProtocolError(f"not valid JSON: {e}") from e
        if not isinstance(obj, dict) or "execute" not in obj:
            raise ProtocolError('a JSON command needs "execute"')
        return str(obj["execute"]), dict(obj.get("arguments") or {})
    cmd, _, rest = line.partition(" ")
    rest = rest.strip()
    if not rest:
        return cmd, {}
    if rest.startswith("{"):
        try:
            args = json.loads(rest)
        except ValueError as e:
            raise ProtocolError(f"arguments are not valid JSON: {e}") from e
        if not isinstance(args, dict):
            raise ProtocolError("arguments must be a JSON object")
        return cmd, args
    args_kv: dict[str, Any] = {}
    for tok in rest.split():
        key, eq, val = tok.partition("=")
        if not eq:
            raise ProtocolError(f"expected key=value, got {tok!r}")
        try:
            parsed: Any = json.loads(val)
        except ValueError:
            parsed = val
        node = args_kv
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = parsed
    return cmd, args_kv
