"""An asyncio client for the GDB remote serial protocol (RSP).

One reader task owns the socket's read side and sorts what arrives: acks,
replies to the one outstanding request, and stop replies (``T``/``S``/``W``/
``X``), which may come at any time after a resume. Every request has a
deadline; garbage, a dropped connection or a silent stub raise a typed
:class:`~emutui.core.errors.EmutuiError` with one line of text, never a hang.

Written against the protocol (gdb's "Remote Protocol" appendix) and checked
against QEMU's gdbstub: QEMU stops the VM when a client connects, answers
``+``/``-`` acks until ``QStartNoAckMode``, reports threads as ``p<pid>.<tid>``
only when ``multiprocess+`` is offered (we do not offer it: plain thread ids,
one per vCPU), removes every breakpoint and resumes on ``D``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from emutui.core.errors import (
    BackendError,
    BusyError,
    DisconnectedError,
    ProtocolError,
    RangeError,
    UnsupportedError,
)

DEFAULT_TIMEOUT = 3.0
CONNECT_TIMEOUT = 3.0
MAX_PACKET = 1 << 20  # a reply larger than this is not a stub talking
MAX_GARBAGE = 4096  # bytes outside packets before we call the peer garbage
MEM_CHUNK = 2048  # bytes per m/M request (QEMU's PacketSize is 4096 hex chars)

_STOP_RE = re.compile(rb"^(?:[TS][0-9a-fA-F]{2}|[WX][0-9a-fA-F]{2})")


class GdbError(BackendError):
    """The stub answered ``Exx``."""


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def escape(data: bytes) -> bytes:
    out = bytearray()
    for b in data:
        if b in (0x23, 0x24, 0x7D, 0x2A):  # # $ } *
            out += bytes((0x7D, b ^ 0x20))
        else:
            out.append(b)
    return bytes(out)


def unescape(data: bytes) -> bytes:
    """Undo ``}`` escapes and ``*`` run-length encoding."""
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b == 0x7D:
            if i + 1 >= n:
                raise ProtocolError("gdb stub: packet ends in an escape byte")
            out.append(data[i + 1] ^ 0x20)
            i += 2
        elif b == 0x2A:
            if not out or i + 1 >= n:
                raise ProtocolError("gdb stub: run-length marker without a byte to repeat")
            count = data[i + 1] - 29
            if count < 0:
                raise ProtocolError("gdb stub: bad run-length count")
            out += bytes((out[-1],)) * count
            i += 2
        else:
            out.append(b)
            i += 1
    return bytes(out)


def frame(payload: bytes) -> bytes:
    body = escape(payload)
    return b"$" + body + b"#" + f"{checksum(body):02x}".encode()


@dataclass(slots=True)
class StopReply:
    """What a stop reply says: why, which thread, and for watchpoints which address."""

    kind: str  # "signal" (T/S), "exited" (W), "killed" (X)
    signal: int
    thread: str | None = None
    reason: str | None = None  # watch, rwatch, awatch, swbreak, hwbreak, ...
    address: int | None = None  # the data address of a watchpoint hit
    info: dict[str, str] = field(default_factory=dict)
    raw: str = ""

    @property
    def exited(self) -> bool:
        return self.kind in ("exited", "killed")

    def describe(self) -> str:
        if self.kind == "exited":
            return f"exited with status {self.signal}"
        if self.kind == "killed":
            return f"killed by signal {self.signal}"
        if self.reason in ("watch", "rwatch", "awatch"):
            what = {"watch": "write", "rwatch": "read", "awatch": "access"}[self.reason]
            at = f" of 0x{self.address:x}" if self.address is not None else ""
            return f"watchpoint ({what}{at})"
        if self.reason in ("swbreak", "hwbreak"):
            return "breakpoint"
        if self.reason:
            return self.reason
        return {5: "trap", 2: "interrupt", 0: "stopped"}.get(self.signal, f"signal {self.signal}")


WATCH_REASONS = ("watch", "rwatch", "awatch")


def parse_stop(text: str) -> StopReply:
    if len(text) < 3:
        raise ProtocolError(f"gdb stub: short stop reply {text!r}")
    code = text[0]
    try:
        sig = int(text[1:3], 16)
    except ValueError:
        raise ProtocolError(f"gdb stub: bad stop reply {text[:40]!r}") from None
    if code == "W":
        return StopReply("exited", sig, raw=text)
    if code == "X":
        return StopReply("killed", sig, raw=text)
    stop = StopReply("signal", sig, raw=text)
    if code == "T":
        for item in text[3:].split(";"):
            if not item:
                continue
            key, sep, value = item.partition(":")
            if not sep:
                continue
            stop.info[key] = value
            if key == "thread":
                stop.thread = value
            elif key in WATCH_REASONS:
                stop.reason = key
                with contextlib.suppress(ValueError):
                    stop.address = int(value, 16)
            elif key in ("swbreak", "hwbreak", "library", "replaylog", "fork", "vfork", "exec"):
                stop.reason = key
    return stop


def check_reply(reply: bytes, what: str) -> bytes:
    """``Exx`` becomes a GdbError naming the request; an empty reply means unsupported."""
    if reply.startswith(b"E") and (len(reply) == 3 or reply[1:2] == b"."):
        raise GdbError(f"gdb stub refused {what}: error {reply[1:].decode(errors='replace')}")
    if reply == b"":
        raise UnsupportedError(f"gdb stub does not support {what}")
    return reply


class RspClient:
    """One connection to a GDB stub; one request in flight at a time."""

    def __init__(self, name: str = "gdb stub", timeout: float = DEFAULT_TIMEOUT) -> None:
        self.name = name
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._reply: asyncio.Future[bytes] | None = None
        self._last_sent: bytes | None = None
        self._ack_mode = True
        self._error: Exception | None = None
        self.features: dict[str, str] = {}
        self.packet_size = 4096
        # stop state: seq increases on each stop reply; waiters wake on the condition
        self.running = False
        self.last_stop: StopReply | None = None
        self.stop_seq = 0
        self._stop_cond = asyncio.Condition()
        self.on_stop: Callable[[StopReply], None] | None = None
        self.console: list[str] = []  # 'O' output packets (qRcmd, semihosting)

    # -- connection ------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._writer is not None and self._error is None

    async def connect_unix(self, path: str, timeout: float = CONNECT_TIMEOUT) -> None:
        try:
            async with asyncio.timeout(timeout):
                r, w = await asyncio.open_unix_connection(path, limit=MAX_PACKET)
        except TimeoutError:
            raise DisconnectedError(f"{self.name}: no connection within {timeout:.0f} s") from None
        except FileNotFoundError:
            raise DisconnectedError(f"{self.name}: no socket at {path}") from None
        except ConnectionRefusedError:
            raise DisconnectedError(f"{self.name}: nobody listens on {path}") from None
        except OSError as e:
            raise DisconnectedError(f"{self.name}: cannot connect ({e.strerror})") from None
        await self._start(r, w)

    async def connect_tcp(self, host: str, port: int, timeout: float = CONNECT_TIMEOUT) -> None:
        try:
            async with asyncio.timeout(timeout):
                r, w = await asyncio.open_connection(host, port, limit=MAX_PACKET)
        except TimeoutError:
            raise DisconnectedError(f"{self.name}: no connection within {timeout:.0f} s") from None
        except OSError as e:
            raise DisconnectedError(
                f"{self.name}: cannot connect to {host}:{port} ({e.strerror})"
            ) from None
        await self._start(r, w)

    async def _start(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self._reader, self._writer = r, w
        self._task = asyncio.create_task(self._read_loop())
        # QEMU serves one client: a second one is accepted by the kernel but never
        # answered, so the first request's deadline is what tells "busy".
        try:
            reply = await self.request(
                b"qSupported:swbreak+;hwbreak+;vContSupported+", "qSupported"
            )
        except DisconnectedError:
            await self.close()
            raise
        except TimeoutError:
            await self.close()
            raise BusyError(
                f"{self.name}: the stub does not answer (another debugger holds it?)"
            ) from None
        for item in reply.decode(errors="replace").split(";"):
            if "=" in item:
                k, _, v = item.partition("=")
                self.features[k] = v
            elif item.endswith(("+", "-", "?")):
                self.features[item[:-1]] = item[-1]
        with contextlib.suppress(ValueError):
            self.packet_size = int(self.features.get("PacketSize", "1000"), 16)
        if (
            self.features.get("QStartNoAckMode") == "+"
            and await self.request(b"QStartNoAckMode") == b"OK"
        ):
            self._ack_mode = False

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
            self._writer = None
        self._fail(DisconnectedError(f"{self.name}: connection closed"))

    # -- reading ---------------------------------------------------------------

    def _fail(self, err: Exception) -> None:
        if self._error is None:
            self._error = err
        if self._reply is not None and not self._reply.done():
            self._reply.set_exception(err)

        async def wake() -> None:
            async with self._stop_cond:
                self._stop_cond.notify_all()

        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().create_task(wake())

    async def _read_loop(self) -> None:
        assert self._reader is not None
        reader = self._reader
        garbage = 0
        try:
            while True:
                b = await reader.read(1)
                if not b:
                    raise DisconnectedError(f"{self.name}: the stub closed the connection")
                if b == b"+":
                    continue
                if b == b"-":
                    if self._last_sent is not None and self._writer is not None:
                        self._writer.write(self._last_sent)
                    continue
                if b in (b"$", b"%"):
                    body = await self._read_packet(reader)
                    if body is None:
                        continue
                    if b == b"%":
                        continue  # notifications: we ask for none
                    self._dispatch(body)
                    garbage = 0
                    continue
                garbage += 1
                if garbage > MAX_GARBAGE:
                    raise ProtocolError(
                        f"{self.name}: the peer sends bytes that are not GDB remote protocol"
                    )
        except asyncio.CancelledError:
            raise
        except (ConnectionError, OSError) as e:
            self._fail(DisconnectedError(f"{self.name}: connection lost ({e})"))
        except asyncio.IncompleteReadError:
            self._fail(DisconnectedError(f"{self.name}: the stub closed the connection"))
        except Exception as e:  # ProtocolError, DisconnectedError
            self._fail(e)

    async def _read_packet(self, reader: asyncio.StreamReader) -> bytes | None:
        try:
            body = await reader.readuntil(b"#")
        except asyncio.LimitOverrunError:
            raise ProtocolError(f"{self.name}: a packet larger than {MAX_PACKET} bytes") from None
        body = body[:-1]
        csum = await reader.readexactly(2)
        if self._ack_mode:
            try:
                ok = int(csum, 16) == checksum(body)
            except ValueError:
                ok = False
            assert self._writer is not None
            self._writer.write(b"+" if ok else b"-")
            if not ok:
                return None
        return unescape(body)

    def _dispatch(self, body: bytes) -> None:
        if body.startswith(b"O") and body != b"OK" and self._reply is None:
            with contextlib.suppress(ValueError):
                self.console.append(bytes.fromhex(body[1:].decode()).decode(errors="replace"))
            return
        if _STOP_RE.match(body) and (self._reply is None or self._reply_wants_stop):
            self._stopped(parse_stop(body.decode(errors="replace")))
            if self._reply is not None and not self._reply.done():
                self._reply.set_result(body)
            return
        if _STOP_RE.match(body) and self._reply is not None and not self._reply_wants_stop:
            # A stop reply while another request waits: the target stopped on its own,
            # or (signal 2) it was running after all, resumed behind our back (QMP
            # cont), and QEMU took our packet's first byte as an interrupt and
            # dropped the rest: send the packet again, now that it is stopped.
            stop = parse_stop(body.decode(errors="replace"))
            self._stopped(stop)
            if stop.signal == 2 and self._last_sent and self._writer is not None:
                self._writer.write(self._last_sent)
            return
        if self._reply is not None and not self._reply.done():
            self._reply.set_result(body)
        # else: an answer nobody asked for (late reply after a timeout): dropped

    def _stopped(self, stop: StopReply) -> None:
        self.running = False
        if self._quiet is not None and not self._quiet.done():
            # Our own interrupt to do something while the guest runs: not a stop
            # anyone waits for, unless the guest stopped for a reason of its own.
            self._quiet.set_result(stop)
            if stop.signal == 2 and stop.kind == "signal":
                return
        self.last_stop = stop
        self.stop_seq += 1
        if self.on_stop is not None:
            self.on_stop(stop)

        async def wake() -> None:
            async with self._stop_cond:
                self._stop_cond.notify_all()

        asyncio.get_running_loop().create_task(wake())

    # -- requests --------------------------------------------------------------

    _quiet: asyncio.Future[StopReply] | None = None

    @contextlib.asynccontextmanager
    async def paused(self, timeout: float = 3.0) -> AsyncIterator[None]:
        """Stop a running target for the duration (QEMU's stub takes any byte
        sent while the VM runs as an interrupt), then resume it; a stop of the
        target's own (a breakpoint hit meanwhile) is kept and not resumed."""
        if not self.running:
            yield
            return
        fut: asyncio.Future[StopReply] = asyncio.get_running_loop().create_future()
        self._quiet = fut
        try:
            await self.interrupt()
            try:
                async with asyncio.timeout(timeout):
                    stop = await fut
            except TimeoutError:
                raise DisconnectedError(f"{self.name}: the stub did not stop the target") from None
        finally:
            self._quiet = None
        yield
        if stop.signal == 2 and stop.kind == "signal":
            await self.cont()

    _reply_wants_stop = False

    def _send(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        if self._writer is None:
            raise DisconnectedError(f"{self.name}: not connected")
        self._last_sent = data
        self._writer.write(data)

    async def request(
        self,
        payload: bytes,
        what: str | None = None,
        timeout: float | None = None,
        wants_stop: bool = False,
    ) -> bytes:
        """Send one packet and return its reply (unescaped). TimeoutError on silence."""
        async with self._lock:
            if self._error is not None:
                raise self._error
            fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            self._reply = fut
            self._reply_wants_stop = wants_stop
            try:
                self._send(frame(payload))
                assert self._writer is not None
                await self._writer.drain()
                async with asyncio.timeout(self.timeout if timeout is None else timeout):
                    return await fut
            except TimeoutError:
                raise
            except (ConnectionError, OSError) as e:
                raise DisconnectedError(f"{self.name}: connection lost ({e})") from None
            finally:
                self._reply = None
                self._reply_wants_stop = False

    async def call(self, payload: bytes, what: str, timeout: float | None = None) -> bytes:
        """A request whose silence is an error with a message, not a TimeoutError."""
        try:
            return check_reply(await self.request(payload, what, timeout), what)
        except TimeoutError:
            raise DisconnectedError(
                f"{self.name}: no answer to {what} within "
                f"{self.timeout if timeout is None else timeout:.0f} s"
            ) from None

    async def send_no_reply(self, payload: bytes) -> None:
        """A packet whose answer is a later stop reply (c, vCont;c)."""
        async with self._lock:
            self._send(frame(payload))
            self.running = True
            assert self._writer is not None
            await self._writer.drain()

    async def interrupt(self) -> None:
        """The ``\\x03`` byte: the stub stops the target and sends a stop reply."""
        if self._writer is None or self._error is not None:
            raise self._error or DisconnectedError(f"{self.name}: not connected")
        self._writer.write(b"\x03")
        await self._writer.drain()

    async def wait_stop(self, after: int, timeout: float | None) -> StopReply | None:
        """The stop with sequence number > ``after``; None when ``timeout`` passes first."""
        try:
            async with asyncio.timeout(timeout):
                async with self._stop_cond:
                    while self.stop_seq <= after:
                        if self._error is not None:
                            raise self._error
                        await self._stop_cond.wait()
        except TimeoutError:
            return None
        return self.last_stop

    # -- the protocol's verbs ---------------------------------------------------

    async def query_stop(self) -> StopReply:
        try:
            reply = await self.request(b"?", "?", wants_stop=True)
        except TimeoutError:
            raise DisconnectedError(f"{self.name}: no answer to '?'") from None
        return parse_stop(reply.decode(errors="replace"))

    async def read_xfer(self, obj: str, annex: str) -> bytes:
        out = bytearray()
        chunk = max(256, self.packet_size - 16)
        while True:
            what = f"qXfer:{obj}:read:{annex}"
            reply = await self.call(f"{what}:{len(out):x},{chunk:x}".encode(), what)
            if reply[:1] not in (b"m", b"l"):
                raise ProtocolError(f"{self.name}: bad qXfer reply {reply[:20]!r}")
            out += reply[1:]
            if reply[:1] == b"l":
                return bytes(out)
            if len(out) > MAX_PACKET:
                raise ProtocolError(f"{self.name}: {annex} is larger than {MAX_PACKET} bytes")

    async def read_registers(self) -> bytes:
        reply = await self.call(b"g", "g (read registers)")
        try:
            return bytes.fromhex(reply.decode().replace("x", "0"))
        except ValueError:
            raise ProtocolError(f"{self.name}: register reply is not hex") from None

    async def read_register(self, regnum: int) -> bytes:
        reply = await self.call(f"p{regnum:x}".encode(), f"p (register {regnum})")
        try:
            return bytes.fromhex(reply.decode().replace("x", "0"))
        except ValueError:
            raise ProtocolError(f"{self.name}: register reply is not hex") from None

    async def write_register(self, regnum: int, value: bytes) -> None:
        await self.call(f"P{regnum:x}={value.hex()}".encode(), f"P (register {regnum})")

    async def read_memory(self, addr: int, length: int) -> bytes:
        out = bytearray()
        while len(out) < length:
            n = min(MEM_CHUNK, length - len(out))
            a = addr + len(out)
            try:
                reply = await self.call(f"m{a:x},{n:x}".encode(), "m")
            except GdbError:
                raise RangeError(f"cannot read memory at 0x{a:x} (not mapped)") from None
            try:
                data = bytes.fromhex(reply.decode())
            except ValueError:
                raise ProtocolError(f"{self.name}: memory reply is not hex") from None
            if not data:
                raise RangeError(f"cannot read memory at 0x{a:x} (not mapped)")
            out += data
        return bytes(out)

    async def write_memory(self, addr: int, data: bytes) -> None:
        for off in range(0, len(data), MEM_CHUNK):
            chunk = data[off : off + MEM_CHUNK]
            a = addr + off
            try:
                await self.call(f"M{a:x},{len(chunk):x}:{chunk.hex()}".encode(), "M")
            except GdbError:
                raise RangeError(f"cannot write memory at 0x{a:x} (not mapped)") from None

    async def set_point(self, kind: int, addr: int, length: int) -> None:
        """Z0 software breakpoint, Z1 hardware, Z2 write, Z3 read, Z4 access watchpoint."""
        await self.call(f"Z{kind},{addr:x},{length:x}".encode(), f"Z{kind} at 0x{addr:x}")

    async def clear_point(self, kind: int, addr: int, length: int) -> None:
        await self.call(f"z{kind},{addr:x},{length:x}".encode(), f"z{kind} at 0x{addr:x}")

    async def threads(self) -> list[str]:
        out: list[str] = []
        reply = await self.call(b"qfThreadInfo", "qfThreadInfo")
        while reply.startswith(b"m"):
            out += [t for t in reply[1:].decode().split(",") if t]
            reply = await self.call(b"qsThreadInfo", "qsThreadInfo")
            if len(out) > 4096:
                raise ProtocolError(f"{self.name}: endless thread list")
        if reply != b"l":
            raise ProtocolError(f"{self.name}: bad thread list reply {reply[:20]!r}")
        return out

    async def select_thread(self, op: str, thread: str) -> None:
        """``Hg`` (registers, memory) or ``Hc`` (step, continue)."""
        reply = await self.call(f"H{op}{thread}".encode(), f"H{op}{thread}")
        if reply != b"OK":
            raise ProtocolError(f"{self.name}: bad reply to H{op}: {reply[:20]!r}")

    async def step(self, thread: str | None = None, timeout: float | None = None) -> StopReply:
        """One instruction: ``vCont;s:T`` when supported, else ``s``. Returns the stop."""
        if await self._has_vcont():
            payload = f"vCont;s:{thread}".encode() if thread else b"vCont;s"
        else:
            payload = b"s"
        self.running = True
        try:
            reply = await self.request(payload, "step", timeout, wants_stop=True)
        except TimeoutError:
            raise DisconnectedError(f"{self.name}: the step did not end (no stop reply)") from None
        if not _STOP_RE.match(reply):
            check_reply(reply, "step")
            raise ProtocolError(f"{self.name}: bad reply to step {reply[:20]!r}")
        return parse_stop(reply.decode(errors="replace"))

    _vcont: bool | None = None

    async def _has_vcont(self) -> bool:
        if self._vcont is None:
            try:
                reply = await self.request(b"vCont?", "vCont?")
            except TimeoutError:
                reply = b""
            self._vcont = reply.startswith(b"vCont;") and b"s" in reply.split(b";")
        return self._vcont

    async def cont(self, thread: str | None = None) -> None:
        """Resume; the stop reply arrives later (see :meth:`wait_stop`)."""
        if await self._has_vcont():
            await self.send_no_reply(f"vCont;c:{thread}".encode() if thread else b"vCont;c")
        else:
            await self.send_no_reply(b"c")

    async def detach(self) -> None:
        """``D``: QEMU removes every breakpoint and lets the VM run."""
        with contextlib.suppress(TimeoutError, DisconnectedError, ProtocolError):
            await self.request(b"D", "D", timeout=1.0)
