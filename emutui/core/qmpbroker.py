"""The QMP broker: one small process per QEMU instance that owns its QMP monitor.

A QEMU QMP socket serves one client at a time; a second one is queued by the
kernel and gets no greeting until the first leaves. The broker is that one
client (QEMU stays the server, on ``qmp.qemu.sock``) and serves ``qmp.sock`` to
any number of clients, each speaking plain QMP as if it talked to QEMU:

- each client gets QEMU's own greeting (version, capabilities incl. ``oob``)
  and negotiates ``qmp_capabilities`` for itself (answered here: the broker
  negotiated with QEMU once, with every capability QEMU offered);
- command ids are rewritten on the way up (the broker numbers every request)
  and restored on the way down, so each reply reaches the client that asked,
  with the id it chose (any JSON value), or none if it sent none;
- every event goes to every negotiated client, in QEMU's order, and into the
  instance's event journal (the broker holds the journal's writer lock, so
  the journal is complete even while no emutui runs);
- ``exec-oob`` passes through for clients that enabled ``oob``.

A client cannot hurt the others: at most CLIENT_EVENTS_MAX events wait for one
client (more are dropped and counted, and the client is told with an
``EMUTUI_EVENTS_DROPPED`` event once it catches up); a client that has read
nothing for ``stall`` seconds while its events were being dropped, or that
sends something that is not a JSON object, is disconnected.

The broker holds ``qmpbroker.lock`` (flock) while it runs: that is how a client
tells a live broker from a dead one (no pid guessing), and why two brokers can
never race for QEMU's socket. It runs under the serial hub's supervisor, which
restarts it at once if it dies; the new one journals the gap (``GAP_EVENT``), as
QEMU drops events while no client is connected. Without a supervisor that runs it
(an instance started by an older emutui), the next client restarts it
(``ensure_broker``). QEMU never notices: its monitor simply accepts the new
connection. QEMU's second monitor (``qmp-aux.sock``) is left alone as the way
in when the broker is wedged.

Run as ``python -m emutui.core.qmpbroker SPEC.json``. Only the standard
library and emutui.core: it starts beside QEMU and must start fast.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import json
import math
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from emutui.core import proc, supervisor
from emutui.core.errors import BackendError, EmutuiError
from emutui.core.handles import Channel, Handles
from emutui.core.model import Event

BROKER_LOG = "qmpbroker.log"
BROKER_SPEC = "qmpbroker.json"
LOCK_FILE = "qmpbroker.lock"  # held (flock) by the live broker for its whole life
START_LOCK_FILE = "qmpbroker.start.lock"  # serialises restarts between clients
# The supervisor's record and state, as the serial hub's launcher writes them (one
# supervisor per instance runs the hub and the broker).
SUPERVISOR_KEY = "serialhub"
SUPERVISOR_STATE = "serialhub.pids.json"
SUPERVISED_WAIT = 5.0  # a client waits this long for the supervisor's restart
HELPER_KEY = "qmpbroker"  # handles.options["helpers"][HELPER_KEY] = [pid, start]
CHILD_NAME = "qmpbroker"  # the supervisor's name for the broker child
SUPERVISED_ARG = "--supervised"
# Journaled when a broker starts after one died: QEMU emits events only to a connected
# client, so whatever it emitted in between is missing from the journal.
GAP_EVENT = "EMUTUI_JOURNAL_GAP"

UPSTREAM_CONNECT_TIMEOUT = 10.0  # QEMU creates its socket ~25 ms after exec
GREETING_TIMEOUT = 10.0  # an attached QEMU whose monitor someone else holds never greets
UPSTREAM_LINE_MAX = 64 * 1024 * 1024  # query-qmp-schema is ~200 KB; anything this big is hostile
CLIENT_MSG_MAX = 4 * 1024 * 1024  # one request from a client
CLIENT_EVENTS_MAX = 1000  # events waiting for one client; more are dropped and counted
CLIENT_INFLIGHT_MAX = 512  # requests of one client awaiting QEMU; then it is read no more
CLIENT_STALL = 10.0  # seconds without reading, while losing events: the client is cut off
DROPPED_EVENT = "EMUTUI_EVENTS_DROPPED"
# Not in QEMU's greeting (clients see QEMU's own): emutui's one-shot commands enable it
# in qmp_capabilities to get no events at all, so no flood stands before their reply.
NO_EVENTS_CAP = "x-emutui-no-events"
JOURNAL_QUEUE_MAX = 10000  # events waiting for the journal; more are dropped and counted
JOURNAL_BATCH = 256  # events per journal write
JOURNAL_PAUSE = 0.005  # between batches while more wait: the reader goes first
_REPLY_HEADS = (b'{"return"', b'{"id"', b'{"error"', b'{"QMP"')
# The broker's own ids (integers) where QEMU writes them: first in errors, last in returns.
_HEAD_ID = re.compile(rb'\{"id": (\d+), ')
_TAIL_ID = re.compile(rb', "id": (\d+)\}\r?\n\Z')


@dataclass
class BrokerSpec:
    name: str  # the instance, for the log and the journal's "source"
    upstream: str  # QEMU's QMP socket: a unix path, or "tcp:HOST:PORT"
    listen: str  # the broker's socket for clients (0600)
    journal_dir: str | None = None  # where events.jsonl lives (the instance dir)
    max_bytes: int = 64 * 1024 * 1024
    generations: int = 3
    events_max: int = CLIENT_EVENTS_MAX
    stall: float = CLIENT_STALL

    def save(self, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> BrokerSpec:
        obj = json.loads(path.read_text())
        return cls(**obj)


def _note(msg: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} qmpbroker: {msg}", file=sys.stderr, flush=True)


def _timestamp() -> dict[str, int]:
    t = time.time()
    return {"seconds": int(t), "microseconds": int((t % 1) * 1_000_000)}


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(", ", ": "), allow_nan=False).encode() + b"\r\n"


def _error(desc: str, cls: str = "GenericError", id_: Any = None, has_id: bool = False) -> bytes:
    msg: dict[str, Any] = {"error": {"class": cls, "desc": desc}}
    if has_id:
        msg["id"] = id_
    return _dumps(msg)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid keyword {name!r}")


def _loads(data: bytes | str) -> Any:
    """JSON as QEMU reads it: no NaN or Infinity (1e999 overflows to inf: refused too)."""
    obj = json.loads(data, parse_constant=_reject_constant)
    return obj


def event_from_qmp(msg: Any, source: str) -> Event:
    """A QMP event as an emutui Event; takes what is well-formed, never raises."""
    if not isinstance(msg, Mapping):
        msg = {}
    ts = msg.get("timestamp")
    t = time.time()
    if isinstance(ts, dict):
        try:
            t = float(ts.get("seconds", 0)) + float(ts.get("microseconds", 0)) / 1e6
        except (TypeError, ValueError):
            pass
        if not math.isfinite(t):
            t = time.time()
    data = msg.get("data") or {}
    return Event(
        name=str(msg.get("event", "?")),
        data=dict(data) if isinstance(data, Mapping) else {"data": data},
        timestamp=t,
        source=source,
    )


# -- framing ----------------------------------------------------------------------------

_SPECIAL = re.compile(rb'[{}\[\]"\\]')
_WS = b" \t\r\n"


class JsonStream:
    """Splits a byte stream into top-level JSON texts, as QEMU's streamer does.

    QMP clients need not send newlines (qemu.qmp sends none), so messages are
    delimited by bracket depth, outside strings. Anything at depth 0 that does
    not open an object or array is garbage; so is a message over ``limit``.
    """

    def __init__(self, limit: int = CLIENT_MSG_MAX) -> None:
        self.limit = limit
        self._buf = bytearray()
        self._scan = 0  # bytes of _buf already scanned
        self._depth = 0
        self._in_str = False
        self._escape = False

    def feed(self, data: bytes) -> list[bytes]:
        """Complete messages in ``data`` (and what came before); raises ValueError on garbage."""
        self._buf += data
        out: list[bytes] = []
        while True:
            if self._depth == 0 and not self._in_str:
                # Between messages: skip whitespace; the next one must open a bracket.
                i = self._scan
                n = len(self._buf)
                while i < n and self._buf[i] in _WS:
                    i += 1
                del self._buf[:i]
                self._scan = 0
                if not self._buf:
                    return out
                if self._buf[0] not in b"{[":
                    raise ValueError("JSON parse error: expected an object")
            end = self._advance()
            if end is None:
                if len(self._buf) > self.limit:
                    raise ValueError(f"message larger than {self.limit} bytes")
                return out
            out.append(bytes(self._buf[:end]))
            del self._buf[:end]
            self._scan = 0

    def _advance(self) -> int | None:
        """Scan on from ``_scan``; the end offset of a complete message, or None."""
        buf = self._buf
        pos = self._scan
        while True:
            if self._escape:
                if pos >= len(buf):
                    self._scan = pos
                    return None
                pos += 1
                self._escape = False
            m = _SPECIAL.search(buf, pos)
            if m is None:
                self._scan = len(buf)
                return None
            c = buf[m.start()]
            pos = m.end()
            if self._in_str:
                if c == 0x5C:  # backslash: skip the next byte
                    self._escape = True
                elif c == 0x22:
                    self._in_str = False
                continue
            if c == 0x22:
                self._in_str = True
            elif c in b"{[":
                self._depth += 1
            elif c in b"}]":
                self._depth -= 1
                if self._depth <= 0:
                    self._depth = 0
                    self._scan = pos
                    return pos
            # a stray backslash outside a string: JSON will refuse it later


class LineReader:
    """Lines from QEMU (``\\r\\n``-terminated), with a limit that skips, not aborts.

    An oversized line is discarded up to its newline and reported as ``None``,
    so one absurd reply (a hostile 100 MB one) costs no memory and no resync.
    Lines are sliced out of each chunk without moving the rest of it: a flood of
    small events costs one copy per line, not one per line per chunk.
    """

    def __init__(self, reader: asyncio.StreamReader, limit: int = UPSTREAM_LINE_MAX) -> None:
        self._reader = reader
        self._limit = limit
        self._buf = b""
        self._pos = 0
        self._parts: list[bytes] = []  # earlier pieces of a line that spans chunks
        self._partlen = 0
        self._skipping = False
        self.skipped_bytes = 0

    async def readline(self) -> bytes | None:
        """A line; None for a skipped oversized one; b"" at EOF."""
        while True:
            nl = self._buf.find(b"\n", self._pos)
            if nl >= 0:
                start, self._pos = self._pos, nl + 1
                line = self._buf[start : nl + 1]
                if self._parts:
                    line = b"".join(self._parts) + line
                    self._parts, self._partlen = [], 0
                if self._skipping:
                    self._skipping = False
                    self.skipped_bytes += len(line)
                    return None
                return line
            tail = self._buf[self._pos :]
            if tail:
                if self._skipping:
                    self.skipped_bytes += len(tail)
                else:
                    self._parts.append(tail)
                    self._partlen += len(tail)
            self._buf, self._pos = b"", 0
            if not self._skipping and self._partlen > self._limit:
                self._skipping = True
                self.skipped_bytes = self._partlen
                self._parts, self._partlen = [], 0
            chunk = await self._reader.read(1 << 18)
            if not chunk:
                return b""
            self._buf = chunk


# -- clients ------------------------------------------------------------------------------


class Client:
    """One QMP client of the broker: its negotiation state and its bounded outbox."""

    def __init__(
        self,
        broker: Broker,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        n: int,
    ) -> None:
        self.broker = broker
        self.reader = reader
        self.writer = writer
        self.n = n
        self.negotiated = False
        self.oob = False
        self.want_events = True
        self.closed = False
        self.inflight = 0
        self._room = asyncio.Event()
        self._room.set()
        self._out: collections.deque[bytes] = collections.deque()
        self._events_queued = 0
        self._is_event: collections.deque[bool] = collections.deque()
        self.dropped = 0
        self._dropped_told = 0
        self._wake = asyncio.Event()
        self.last_progress = time.monotonic()

    # -- outbox --

    def send(self, data: bytes, event: bool = False) -> None:
        if self.closed:
            return
        if event and self._events_queued >= self.broker.spec.events_max:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10000 == 0:
                _note(f"client {self.n}: not reading; {self.dropped} events dropped")
            if time.monotonic() - self.last_progress > self.broker.spec.stall:
                self.close(f"stalled for {self.broker.spec.stall:g} s", abort=True)
            return
        if self.dropped > self._dropped_told:
            self._queue_notice()  # the gap is reported where it happened
        if not self._out:
            # Nothing queued before it and the socket is keeping up: straight out,
            # without a hop through the writer task (a round trip's fast path).
            t = self.writer.transport
            if not t.is_closing() and t.get_write_buffer_size() < 65536:
                try:
                    self.writer.write(data)
                except (ConnectionError, OSError, RuntimeError):
                    self.close("gone")
                    return
                if event:
                    self.last_progress = time.monotonic()
                return
        if event:
            self._events_queued += 1
        self._out.append(data)
        self._is_event.append(event)
        self._wake.set()

    def _queue_notice(self) -> None:
        """An event in QMP's own shape saying how many events this client missed."""
        lost = self.dropped - self._dropped_told
        self._dropped_told = self.dropped
        ev = {
            "event": DROPPED_EVENT,
            "data": {"count": lost, "total": self.dropped},
            "timestamp": _timestamp(),
        }
        self._out.append(_dumps(ev))
        self._is_event.append(False)  # not counted against the bound: one per gap
        self._wake.set()

    async def write_loop(self) -> None:
        w = self.writer
        try:
            while not self.closed:
                if not self._out:
                    if self.dropped > self._dropped_told:
                        self._queue_notice()  # caught up after a gap: say how much was lost
                        continue
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                data = self._out.popleft()
                if self._is_event.popleft():
                    self._events_queued -= 1
                w.write(data)
                if w.transport.get_write_buffer_size() > 65536:
                    await w.drain()
                self.last_progress = time.monotonic()
        except (ConnectionError, OSError):
            self.close("gone")
        except asyncio.CancelledError:
            pass

    def close(self, why: str = "", abort: bool = False) -> None:
        """``abort``: drop what is queued for it (a stalled client would never take it)."""
        if self.closed:
            if abort:
                self.writer.transport.abort()
            return
        self.closed = True
        if why and why != "gone":
            _note(f"client {self.n}: dropped ({why})")
        self._wake.set()
        self._room.set()
        self.broker.clients.discard(self)
        with contextlib.suppress(Exception):
            if abort:
                self.writer.transport.abort()
            else:
                self.writer.close()

    # -- requests --

    def done_one(self) -> None:
        self.inflight -= 1
        if self.inflight < CLIENT_INFLIGHT_MAX:
            self._room.set()

    async def read_loop(self) -> None:
        stream = JsonStream()
        try:
            while not self.closed:
                data = await self.reader.read(65536)
                if not data:
                    break
                try:
                    texts = stream.feed(data)
                except ValueError as e:
                    self.send(_error(str(e)))
                    await self._flush_then_close(f"garbage: {e}")
                    return
                for text in texts:
                    try:
                        msg = _loads(text)
                    except (ValueError, RecursionError) as e:
                        self.send(_error(f"JSON parse error, {str(e)[:100]}"))
                        await self._flush_then_close("garbage: not JSON")
                        return
                    if not isinstance(msg, dict):
                        self.send(_error("QMP input must be a JSON object"))
                        await self._flush_then_close("garbage: not an object")
                        return
                    await self.handle(msg)
                    while self.inflight >= CLIENT_INFLIGHT_MAX and not self.closed:
                        self._room.clear()
                        await self._room.wait()
        except (ConnectionError, OSError):
            pass
        finally:
            self.close()

    async def _flush_then_close(self, why: str) -> None:
        # The error goes out first when it can; a client that does not read loses it.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._drain_out(), 1.0)
        self.close(why)

    async def _drain_out(self) -> None:
        while self._out and not self.closed:
            await asyncio.sleep(0.01)
        await self.writer.drain()

    async def handle(self, msg: dict[str, Any]) -> None:
        has_id = "id" in msg
        id_ = msg.get("id")
        cmd = msg.get("execute")
        oob_cmd = msg.get("exec-oob")
        if cmd == "qmp_capabilities" and oob_cmd is None:
            self.send(self._capabilities(msg, has_id, id_))
            return
        if not self.negotiated:
            self.send(
                _error(
                    "Expecting capabilities negotiation with 'qmp_capabilities'",
                    "CommandNotFound",
                    id_,
                    has_id,
                )
            )
            return
        if oob_cmd is not None and not self.oob:
            self.send(_error("QMP input member 'exec-oob' is unexpected", id_=id_, has_id=has_id))
            return
        await self.broker.forward(self, msg, has_id, id_)

    def _capabilities(self, msg: dict[str, Any], has_id: bool, id_: Any) -> bytes:
        if self.negotiated:
            return _error(
                "Capabilities negotiation is already complete, command ignored",
                "CommandNotFound",
                id_,
                has_id,
            )
        args = msg.get("arguments", {})
        if not isinstance(args, dict):
            return _error("QMP input member 'arguments' must be an object", id_=id_, has_id=has_id)
        for key in args:
            if key != "enable":
                return _error(f"Parameter '{key}' is unexpected", id_=id_, has_id=has_id)
        enable = args.get("enable", [])
        if not isinstance(enable, list) or not all(isinstance(c, str) for c in enable):
            return _error(
                "Invalid parameter type for 'enable', expected: array", id_=id_, has_id=has_id
            )
        for cap in enable:
            if cap == NO_EVENTS_CAP:
                continue
            if cap not in self.broker.capabilities:
                return _error(f"Capability '{cap}' not available", id_=id_, has_id=has_id)
        self.oob = "oob" in enable
        self.want_events = NO_EVENTS_CAP not in enable
        self.negotiated = True
        reply: dict[str, Any] = {"return": {}}
        if has_id:
            reply["id"] = id_
        return _dumps(reply)


# -- the broker ------------------------------------------------------------------------------


class Broker:
    def __init__(self, spec: BrokerSpec, gap: tuple[float, str] | None = None) -> None:
        self.spec = spec
        self.gap = gap  # (since, why): the broker before this one died at ``since``
        self.clients: set[Client] = set()
        self.greeting = b""
        self.capabilities: list[str] = []
        self._pending: dict[int, tuple[Client, bool, Any]] = {}
        self._inband: collections.deque[int] = collections.deque()  # QEMU answers in order
        self._next_id = 1
        self._up_reader: LineReader | None = None
        self._up_writer: asyncio.StreamWriter | None = None
        self._journal: Any = None
        self._jqueue: collections.deque[bytes] = collections.deque()
        self._jdropped = 0
        self._jwake = asyncio.Event()
        self._nclients = 0

    async def _connect_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        deadline = time.monotonic() + UPSTREAM_CONNECT_TIMEOUT
        up = self.spec.upstream
        while True:
            try:
                if up.startswith("tcp:"):
                    host, _, port = up[4:].rpartition(":")
                    return await asyncio.open_connection(host.strip("[]"), int(port))
                return await asyncio.open_unix_connection(up)
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.01)

    async def start_upstream(self) -> None:
        reader, self._up_writer = await self._connect_upstream()
        self._up_reader = LineReader(reader, UPSTREAM_LINE_MAX)
        try:
            line = await asyncio.wait_for(self._up_reader.readline(), GREETING_TIMEOUT)
        except TimeoutError:
            raise BackendError(
                f"no QMP greeting within {GREETING_TIMEOUT:g} s "
                "(does another client hold QEMU's monitor?)"
            ) from None
        if not line:
            raise BackendError("QEMU closed its QMP socket before greeting")
        try:
            greeting = _loads(line)
            caps = greeting["QMP"]["capabilities"]
        except (ValueError, KeyError, TypeError) as e:
            raise BackendError(f"not a QMP greeting: {line[:80]!r}") from e
        self.greeting = line if line.endswith(b"\r\n") else line.rstrip(b"\r\n") + b"\r\n"
        self.capabilities = (
            [c for c in caps if isinstance(c, str)] if isinstance(caps, list) else []
        )
        enable = [c for c in self.capabilities if c == "oob"]
        self._up_writer.write(
            _dumps({"execute": "qmp_capabilities", "arguments": {"enable": enable}, "id": 0})
        )
        await self._up_writer.drain()
        while True:
            line = await asyncio.wait_for(self._up_reader.readline(), GREETING_TIMEOUT)
            if not line:
                raise BackendError("QEMU closed its QMP socket during negotiation")
            if line is None:
                continue
            reply = _loads(line)
            if isinstance(reply, dict) and reply.get("id") == 0:
                if "return" not in reply:
                    raise BackendError(f"qmp_capabilities refused: {line[:120]!r}")
                return

    def _open_journal(self) -> None:
        if not self.spec.journal_dir:
            return
        from emutui.core.journal import Journal, JournalWriter

        self._journal = JournalWriter(
            Journal(Path(self.spec.journal_dir), self.spec.max_bytes, self.spec.generations)
        )
        if self.gap is not None:
            self._record_gap(*self.gap)

    def _record_gap(self, since: float, why: str) -> None:
        """Journal the time no broker listened (QEMU dropped its events then), and log it.

        Written once QEMU's monitor is ours again, so the gap ends here and the next
        event in the journal is one QEMU emitted after it.
        """
        now = time.time()
        since = min(since, now)
        data = {
            "since": round(since, 3),
            "until": round(now, 3),
            "seconds": round(now - since, 3),
            "why": why,
            "by": "qmpbroker",
        }
        with contextlib.suppress(OSError, ValueError):
            self._journal.offer_many([Event(GAP_EVENT, data, timestamp=now, source=self.spec.name)])
        _note(f"journal gap of {now - since:.3f} s recorded ({why})")

    async def forward(self, client: Client, msg: dict[str, Any], has_id: bool, id_: Any) -> None:
        bid = self._next_id
        self._next_id += 1
        msg["id"] = bid
        try:
            data = _dumps(msg)
        except (ValueError, TypeError, RecursionError):
            # NaN, Infinity, 1e999: QEMU's parser would refuse the whole line and
            # answer without an id, which no client could match. Refuse it here.
            client.send(_error("JSON parse error, numbers must be finite", id_=id_, has_id=has_id))
            return
        self._pending[bid] = (client, has_id, id_)
        if "exec-oob" not in msg:
            self._inband.append(bid)
        client.inflight += 1
        assert self._up_writer is not None
        self._up_writer.write(data)
        await self._up_writer.drain()

    def _route_fast(self, line: bytes) -> bool:
        """Route a reply by its text when QEMU's shape allows (``{"id": N, "error": …}``
        or ``{"return": …, "id": N}``): no parse, no re-encoding. False: parse it."""
        m = _HEAD_ID.match(line) if line.startswith(b'{"id": ') else _TAIL_ID.search(line)
        if m is None:
            return False
        bid = int(m.group(1))
        entry = self._pending.get(bid)
        if entry is None:
            return False
        client, has_id, id_ = entry
        try:
            idtext = json.dumps(id_, allow_nan=False).encode() if has_id else b""
        except ValueError:
            return False
        del self._pending[bid]
        if self._inband and self._inband[0] == bid:
            self._inband.popleft()
        else:
            with contextlib.suppress(ValueError):
                self._inband.remove(bid)
        client.done_one()
        if m.re is _HEAD_ID:
            out = (b'{"id": ' + idtext + b", " if has_id else b"{") + line[m.end() :]
        else:
            out = line[: m.start()] + ((b', "id": ' + idtext) if has_id else b"") + b"}\r\n"
        client.send(out)
        return True

    def _route_reply(self, msg: dict[str, Any], line: bytes) -> None:
        bid = msg.get("id")
        if not isinstance(bid, int) or isinstance(bid, bool) or bid not in self._pending:
            _note(f"reply nobody asked for, dropped: {line[:120]!r}")
            return
        client, has_id, id_ = self._pending.pop(bid)
        if self._inband and self._inband[0] == bid:
            self._inband.popleft()
        else:
            with contextlib.suppress(ValueError):
                self._inband.remove(bid)
        client.done_one()
        if has_id:
            msg["id"] = id_
        else:
            del msg["id"]
        client.send(_dumps(msg))

    def _oversized(self, nbytes: int) -> None:
        """QEMU sent a line over the limit: the oldest in-band request it answers gets an error."""
        _note(f"discarded a {nbytes}-byte message from QEMU (limit {UPSTREAM_LINE_MAX})")
        if not self._inband:
            return
        bid = self._inband.popleft()
        client, has_id, id_ = self._pending.pop(bid)
        client.done_one()
        client.send(
            _error(
                f"reply of {nbytes} bytes discarded by the QMP broker "
                f"(limit {UPSTREAM_LINE_MAX} bytes)",
                id_=id_,
                has_id=has_id,
            )
        )

    def _event(self, line: bytes) -> None:
        """Fan the raw line out (no re-encoding), and queue it for the journal."""
        for c in list(self.clients):
            if c.negotiated and c.want_events:
                c.send(line, event=True)
        if self._journal is not None:
            if len(self._jqueue) >= JOURNAL_QUEUE_MAX:
                self._jdropped += 1
            else:
                self._jqueue.append(line)
                self._jwake.set()

    async def journal_loop(self) -> None:
        """Writes queued events to the journal in batches, a bounded share of the CPU.

        The reader (and so every client's replies) comes first: after each batch the
        journal pauses briefly. Under a flood it falls behind; the queue is bounded
        and what it could not hold is counted and journaled as EMUTUI_EVENTS_DROPPED.
        """
        assert self._journal is not None
        while True:
            await self._jwake.wait()
            self._jwake.clear()
            while self._jqueue:
                batch: list[Event] = []
                for _ in range(min(JOURNAL_BATCH, len(self._jqueue))):
                    line = self._jqueue.popleft()
                    with contextlib.suppress(ValueError, TypeError, RecursionError):
                        batch.append(event_from_qmp(_loads(line), self.spec.name))
                if self._jdropped:
                    lost, self._jdropped = self._jdropped, 0
                    batch.append(
                        Event(
                            DROPPED_EVENT, {"count": lost, "by": "qmpbroker"}, source=self.spec.name
                        )
                    )
                with contextlib.suppress(OSError, ValueError):
                    self._journal.offer_many(batch)
                await asyncio.sleep(JOURNAL_PAUSE if self._jqueue else 0)

    async def pump_upstream(self) -> None:
        assert self._up_reader is not None
        reader = self._up_reader
        while True:
            try:
                line = await reader.readline()
            except (ConnectionError, OSError):
                return
            if line is None:
                self._oversized(reader.skipped_bytes)
                continue
            if not line:
                return
            head = line[:96]
            if head.startswith(_REPLY_HEADS[:2]) and self._route_fast(line):
                continue
            if not head.startswith(_REPLY_HEADS) and b'"event"' in head:
                # An event (QEMU puts "timestamp" and "event" first): passed on as is,
                # parsed only by the journal. A flood costs a slice and an append.
                self._event(line if line.endswith(b"\r\n") else line.rstrip() + b"\r\n")
                continue
            try:
                msg = _loads(line)
            except (ValueError, RecursionError):
                _note(f"QEMU sent something that is not JSON, dropped: {line[:80]!r}")
                continue
            if not isinstance(msg, dict):
                continue
            if "event" in msg:
                self._event(line if line.endswith(b"\r\n") else line.rstrip() + b"\r\n")
            else:
                self._route_reply(msg, line)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._nclients += 1
        client = Client(self, reader, writer, self._nclients)
        self.clients.add(client)
        client.send(self.greeting)
        wtask = asyncio.create_task(client.write_loop())
        try:
            await client.read_loop()
        finally:
            client.close()
            # Let the last replies go out before the writer task ends.
            wtask.cancel()
            with contextlib.suppress(BaseException):
                await wtask

    async def serve(self, signals: bool = True) -> int:
        await self.start_upstream()
        self._open_journal()
        server = await asyncio.start_unix_server(
            self._client, sock=listening_socket(self.spec.listen)
        )
        _note(f"serving {self.spec.listen} for {self.spec.upstream}")
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP) if signals else ():
            loop.add_signal_handler(sig, stop.set)
        pump = asyncio.create_task(self.pump_upstream())
        journal = asyncio.create_task(self.journal_loop()) if self._journal is not None else None
        waiter = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([pump, waiter], return_when=asyncio.FIRST_COMPLETED)
        finally:
            server.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.spec.listen)
            # Clients see EOF, as they would if QEMU itself had gone.
            for c in list(self.clients):
                c.close()
            waiter.cancel()
            pump.cancel()
            if self._up_writer is not None:
                self._up_writer.close()
            if journal is not None:
                journal.cancel()
                with contextlib.suppress(BaseException):
                    await journal
            if self._journal is not None:
                # what is still queued goes to disk before the broker exits
                batch: list[Event] = []
                for line in self._jqueue:
                    with contextlib.suppress(ValueError, TypeError, RecursionError):
                        batch.append(event_from_qmp(_loads(line), self.spec.name))
                self._jqueue.clear()
                if self._jdropped:
                    batch.append(
                        Event(
                            DROPPED_EVENT,
                            {"count": self._jdropped, "by": "qmpbroker"},
                            source=self.spec.name,
                        )
                    )
                    self._jdropped = 0
                with contextlib.suppress(OSError, ValueError):
                    self._journal.offer_many(batch)
                self._journal.close()
        _note("QEMU closed its monitor; exiting" if not stop.is_set() else "stopped")
        return 0


def listening_socket(path: str) -> socket.socket:
    """A unix socket listening at ``path``, mode 0600, that appears there ready.

    bind() creates the file before listen(): a client connecting in between
    is refused. So: bind a temporary name beside it, listen, chmod, then
    rename into place (atomic), and the file exists only once it accepts.
    """
    tmp = os.path.join(os.path.dirname(path), f".b{os.getpid() % 100000}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o077)
    try:
        sock.bind(tmp)
        sock.listen(128)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        sock.close()
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        os.umask(old)
    return sock


def _take_lock(wd: Path) -> int | None:
    fd = os.open(wd / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _wait_lock(wd: Path) -> int:
    """Block until this broker holds the instance's lock (a supervised broker's standby).

    Under a supervisor, a broker that finds another one alive (one a client started,
    or one left by a killed supervisor) must not exit: the supervisor would start it
    again and again. It waits instead and takes over the moment the other one ends.
    """
    fd = os.open(wd / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # SIGTERM (the supervisor stopping) ends the wait
    return fd


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    spec_path = Path(args[0])
    supervised = SUPERVISED_ARG in args[1:]
    spec = BrokerSpec.load(spec_path)
    lock = _take_lock(spec_path.parent)
    gap: tuple[float, str] | None = _gap_from_env() if supervised else None
    if lock is None:
        if not supervised:
            _note("another broker holds this instance; exiting")
            return 0
        _note("another broker holds this instance; standing by to take over")
        lock = _wait_lock(spec_path.parent)
        # The other broker just ended: the journal misses only what came since.
        gap = (time.time(), "took over from the broker before it")
    try:
        return asyncio.run(Broker(spec, gap).serve())
    except (EmutuiError, OSError) as e:
        _note(f"cannot serve: {e}")
        return 1
    finally:
        os.close(lock)


def _gap_from_env() -> tuple[float, str] | None:
    """When the broker before this one died, as its supervisor says (None: no gap)."""
    try:
        since = float(os.environ.get(supervisor.GAP_ENV, ""))
    except ValueError:
        return None
    if not math.isfinite(since):
        return None
    return since, os.environ.get(supervisor.GAP_WHY_ENV, "qmpbroker restarted")


# -- used by launchers and connectors ---------------------------------------------------------


def channel_for(wd: Path, upstream: str) -> Channel:
    """The ``qmp`` channel of a brokered instance: clients use ``path``, the broker ``upstream``."""
    from emutui.core.paths import socket_path

    return Channel(
        role="qmp", kind="unix", path=str(socket_path(wd, "qmp.sock")), upstream=upstream
    )


def is_brokered(handles: Handles) -> bool:
    ch = handles.channels.get("qmp")
    return bool(ch and ch.upstream and ch.path)


def spec_for(handles: Handles, wd: Path) -> BrokerSpec:
    ch = handles.channels["qmp"]
    assert ch.path and ch.upstream
    opts = handles.options

    def int_opt(key: str, default: int) -> int:
        try:
            return int(opts.get(key, default))
        except (TypeError, ValueError):
            return default

    return BrokerSpec(
        name=handles.name,
        upstream=ch.upstream,
        listen=ch.path,
        journal_dir=str(wd),
        max_bytes=int_opt("log_max_bytes", 64 * 1024 * 1024),
        generations=int_opt("log_generations", 3),
    )


def broker_alive(wd: Path) -> bool:
    """True while a broker holds this instance's lock (it holds it until it exits)."""
    try:
        fd = os.open(wd / LOCK_FILE, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def launch_for(handles: Handles, wd: Path) -> BrokerSpec | None:
    """Spawn the broker for ``handles`` and record it; returns at once (see wait_launched)."""
    if not is_brokered(handles):
        return None
    spec = spec_for(handles, wd)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(spec.listen)  # a killed broker leaves its socket; "ready" means a new one
    spec_path = wd / BROKER_SPEC
    spec.save(spec_path)
    p = proc.spawn_detached(
        [sys.executable, "-m", "emutui.core.qmpbroker", str(spec_path)], wd, wd / BROKER_LOG
    )
    helpers = handles.options.get("helpers")
    if not isinstance(helpers, dict):
        helpers = handles.options["helpers"] = {}
    helpers[HELPER_KEY] = [p.pid, proc.start_time(p.pid)]
    return spec


def child_for(handles: Handles, wd: Path) -> supervisor.ChildSpec | None:
    """The broker as a supervisor's child (None when ``handles`` has no broker).

    Supervised, a broker killed with no client around is restarted at once: QEMU
    emits events only to a connected monitor client, so every moment without a
    broker is a hole in the journal (recorded as a GAP_EVENT by the next broker).
    """
    if not is_brokered(handles):
        return None
    spec = spec_for(handles, wd)
    if not broker_alive(wd):
        # A killed broker leaves its socket: "ready" means a new one. A live one (left
        # by a killed supervisor) keeps serving it; this child stands by until it ends.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(spec.listen)
    spec_path = wd / BROKER_SPEC
    spec.save(spec_path)
    args = [str(spec_path), SUPERVISED_ARG]
    return supervisor.ChildSpec(
        name=CHILD_NAME,
        argv=[sys.executable, "-m", "emutui.core.qmpbroker", *args],
        log=str(wd / BROKER_LOG),
        module="emutui.core.qmpbroker",  # forked by the supervisor: a restart costs no exec
        args=args,
    )


def supervised_spec(handles: Handles, wd: Path) -> BrokerSpec | None:
    """The spec of the broker ``serialhub.launch_for`` started under its supervisor."""
    return spec_for(handles, wd) if is_brokered(handles) else None


def _supervisor_record(handles: Handles) -> list[Any] | None:
    """The [pid, start] of the supervisor recorded beside the serial hub, if any."""
    helpers = handles.options.get("helpers")
    rec = helpers.get(SUPERVISOR_KEY) if isinstance(helpers, dict) else None
    return rec if isinstance(rec, list) and len(rec) == 2 else None


def broker_ids(handles: Handles, wd: Path) -> tuple[int, int | None] | None:
    """[pid, start] of the live broker: the supervisor's child, or one a client started."""
    ids = supervisor.read_state(wd / SUPERVISOR_STATE).get(CHILD_NAME)
    helpers = handles.options.get("helpers")
    rec = helpers.get(HELPER_KEY) if isinstance(helpers, dict) else None
    for cand in (ids, rec):
        if isinstance(cand, list) and len(cand) == 2 and proc.is_alive(cand[0], cand[1]):
            pid, start = cand
            if isinstance(pid, int) and (start is None or isinstance(start, int)):
                return pid, start
    return None


def supervised(handles: Handles, wd: Path) -> bool:
    """A live supervisor keeps this instance's broker alive (instances started before
    brokers were supervised have none: their clients restart the broker)."""
    rec = _supervisor_record(handles)
    return (
        rec is not None
        and proc.is_alive(rec[0], rec[1])
        and supervisor.supervises(wd / SUPERVISOR_STATE, CHILD_NAME)
    )


async def wait_launched(
    handles: Handles, wd: Path, spec: BrokerSpec | None, timeout: float = 10.0
) -> None:
    """Returns once the broker serves its socket; BackendError with its last words if not.

    The broker is the one recorded under HELPER_KEY, or else a supervised one: then
    the supervisor (recorded beside the hub) is what must stay alive meanwhile.
    """
    if spec is None:
        return
    helpers = handles.options.get("helpers") or {}
    rec = helpers.get(HELPER_KEY) or _supervisor_record(handles)
    pid, start = rec if rec else (None, None)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(spec.listen):
            return
        if not proc.is_alive(pid, start):
            await asyncio.sleep(0.05)  # a broker that lost the race to another serves soon
            if os.path.exists(spec.listen):
                return
            break
        await asyncio.sleep(0.005)
    raise BackendError(f"{handles.name}: QMP broker did not start: {last_words(wd)}")


async def wait_serving(path: str, timeout: float = 3.0) -> None:
    """Until something accepts at ``path`` (a broker another client just started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, w = await asyncio.open_unix_connection(path)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        w.close()
        return


def last_words(wd: Path) -> str:
    try:
        lines = (wd / BROKER_LOG).read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return " | ".join(lines[-2:]) or "no log"


async def ensure_broker(handles: Handles, wd: Path) -> bool:
    """Restart a dead broker (killed, crashed); True when one was started.

    Safe to call from any number of clients at once: restarts are serialised
    by a lock file, and a broker that finds another one alive exits.
    """
    if not is_brokered(handles):
        return False
    with contextlib.suppress(FileNotFoundError, EmutuiError):
        handles = Handles.load(wd)
    if supervised(handles, wd):
        # Its supervisor restarts it within tens of ms; a client-started broker
        # would only race it for QEMU's monitor (and unlink its fresh socket).
        await wait_serving(handles.channels["qmp"].path or "", SUPERVISED_WAIT)
        return False
    fd = os.open(wd / START_LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        if broker_alive(wd):
            return False
        with contextlib.suppress(OSError), open(wd / BROKER_LOG, "a") as log:
            log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} qmpbroker: found dead, restarting\n")
        # handles.json as it is now: another helper may have recorded itself since.
        with contextlib.suppress(FileNotFoundError, EmutuiError):
            handles = Handles.load(wd)
        spec = launch_for(handles, wd)
        handles.save(wd)
        await wait_launched(handles, wd, spec)
        return True
    finally:
        os.close(fd)


if __name__ == "__main__":
    sys.exit(main())
