"""The gdb hub: one small process per instance that holds its GDB stub connection.

Why a process of its own: QEMU's gdbstub serves one client, stops the VM when
that client connects, and forgets nothing when it leaves (breakpoints stay
armed until ``D``). A CLI command that connected, set a breakpoint and left
would stop the guest on every call and leave breakpoints nobody knows about.
The hub is the one client from the first ``emutui cpu`` command until the
instance ends, so

- breakpoints and watchpoints set by one command are still there (and
  listed) for the next one, the TUI and the CLI see the same set;
- connecting stops QEMU's VM; the hub puts it back in the run state it had
  before (asked over QMP), so ``emutui cpu NAME break`` does not pause a guest;
- ``emutui gdb NAME`` (or the TUI's key) asks the hub to *release* the stub:
  the hub disarms its points, closes the connection (no ``D``, which would
  resume the VM), and gdb connects; when gdb has gone, the next request
  reconnects and re-arms what the hub knows.

Clients speak JSON lines on ``gdbhub.sock`` (mode 0600) in the instance
directory: ``{"op": ..., ...}`` → ``{"ok": true, ...}`` or ``{"ok": false,
"error": "one line", "type": "BusyError"}``. Stub exchanges are serialised;
waiting for a stop (``cont`` with ``wait``, ``wait``) is not, so ``stop``
from another client interrupts a waiting ``cont``.

The hub ends when the stub connection drops while it holds it (QEMU exited),
on SIGTERM, or when the emulator process is gone.

Run as ``python -m emutui.core.gdbhub WD``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emutui.backends.gdb import tdesc as tdesc_mod
from emutui.backends.gdb.rsp import RspClient, StopReply
from emutui.core import errors, proc
from emutui.core.errors import (
    BackendError,
    BusyError,
    DisconnectedError,
    EmutuiError,
    InstanceDeadError,
    ProtocolError,
)
from emutui.core.handles import Handles

HUB_SOCK = "gdbhub.sock"
HUB_LOG = "gdbhub.log"
STUB_SOCK = "gdb.sock"
POINTS_FILE = "gdbhub-points.json"
REQUEST_MAX = 1 << 16
STEP_TIMEOUT = 2.0
STOP_TIMEOUT = 3.0
START_TIMEOUT = 10.0
CLIENT_TIMEOUT = 15.0

POINT_KINDS = {"break": 0, "hbreak": 1, "watch": 2, "rwatch": 3, "awatch": 4}


@dataclass(frozen=True, slots=True)
class Point:
    kind: int
    addr: int
    length: int

    def to_json(self) -> dict[str, Any]:
        name = {v: k for k, v in POINT_KINDS.items()}[self.kind]
        return {"kind": name, "addr": self.addr, "len": self.length}


def stop_json(stop: StopReply | None) -> dict[str, Any] | None:
    if stop is None:
        return None
    return {
        "kind": stop.kind,
        "signal": stop.signal,
        "thread": stop.thread,
        "reason": stop.reason,
        "address": stop.address,
        "why": stop.describe(),
    }


def _note(msg: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} gdbhub: {msg}", file=sys.stderr, flush=True)


def stub_address(handles: Handles) -> tuple[str, str | None, int | None]:
    """("unix", path, None) or ("tcp", host, port) of the instance's gdb stub."""
    ch = handles.channels.get("gdb")
    if ch is None:
        raise errors.UnsupportedError(
            f"{handles.name}: no gdb stub (started before emutui had one? "
            f"'emutui cpu {handles.name} ...' on an attached QEMU asks for one)"
        )
    if ch.kind == "tcp":
        return "tcp", ch.host or "127.0.0.1", ch.port
    return "unix", ch.path, None


class Hub:
    def __init__(self, wd: Path) -> None:
        self.wd = wd
        self.handles = Handles.load(wd)
        self.rsp: RspClient | None = None
        self.td: tdesc_mod.TargetDescription | None = None
        self.threads: list[str] = []
        self.points: list[Point] = self._load_points()
        self.released = False
        self.gthread: str | None = None
        self.stop_event = asyncio.Event()
        self.seq_base = 0  # stop_seq across reconnections
        self.busy = asyncio.Lock()  # one stub exchange (or paused section) at a time

    # -- points survive the hub ---------------------------------------------

    def _load_points(self) -> list[Point]:
        """The points a killed hub left armed in QEMU (QEMU keeps them when the
        client goes without ``D``): known again, so they can be listed and deleted."""
        try:
            raw = json.loads((self.wd / POINTS_FILE).read_text())
            return [Point(int(p["kind"]), int(p["addr"]), int(p["len"])) for p in raw]
        except (OSError, ValueError, KeyError, TypeError):
            return []

    def _save_points(self) -> None:
        tmp = self.wd / f".{POINTS_FILE}.tmp"
        data = [{"kind": p.kind, "addr": p.addr, "len": p.length} for p in self.points]
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(data))
        os.replace(tmp, self.wd / POINTS_FILE)

    # -- the stub ----------------------------------------------------------

    async def _was_running(self) -> bool | None:
        """The VM's run state before we connect (QEMU stops it on connect)."""
        if self.handles.backend != "qemu":
            return None
        try:
            from emutui.control import connected
            from emutui.core.instance import Instance
            from emutui.core.model import InstanceState

            async with asyncio.timeout(3.0):
                async with connected(Instance.load(self.wd), aux=True) as conn:
                    st = await conn.status()
            return st.state is InstanceState.RUNNING
        except (EmutuiError, TimeoutError, OSError) as e:
            _note(f"run state unknown ({e}); leaving the VM as the stub left it")
            return None

    async def attach(self) -> None:
        was_running = await self._was_running()
        kind, where, port = stub_address(self.handles)
        rsp = RspClient(f"{self.handles.name}: gdb stub")
        if kind == "tcp":
            assert where is not None and port is not None
            await rsp.connect_tcp(where, port)
        else:
            assert where is not None
            await rsp.connect_unix(where)
        rsp.stop_seq = self.seq_base
        self.rsp = rsp
        try:
            stop = await rsp.query_stop()
            rsp.last_stop = stop
            if self.td is None:
                self.td = await tdesc_mod.load(lambda a: rsp.read_xfer("features", a))
            self.threads = await rsp.threads()
            self.gthread = None
            for p in self.points:
                # QEMU may still hold it (a killed hub): clear first, never twice armed
                with contextlib.suppress(EmutuiError):
                    await rsp.clear_point(p.kind, p.addr, p.length)
                await rsp.set_point(p.kind, p.addr, p.length)
            if was_running:
                await rsp.cont()
        except BaseException:
            await rsp.close()
            self.rsp = None
            raise
        self.released = False
        _note(
            f"attached: {self.td.architecture}, {len(self.threads)} cpu(s), "
            f"{len(self.points)} point(s) armed, guest {'running' if rsp.running else 'stopped'}"
        )

    async def stub(self) -> RspClient:
        if self.rsp is None or not self.rsp.connected:
            if self.rsp is not None and not self.released:
                raise DisconnectedError(f"{self.handles.name}: the gdb stub connection dropped")
            try:
                await self.attach()
            except BusyError:
                raise BusyError(
                    f"{self.handles.name}: the gdb stub is held by another debugger "
                    "(quit it, then retry)"
                ) from None
        assert self.rsp is not None
        return self.rsp

    async def release(self) -> None:
        rsp = self.rsp
        if rsp is None or not rsp.connected:
            self.released = True
            return
        was_running = rsp.running
        if was_running:
            seq = rsp.stop_seq
            await rsp.interrupt()
            await rsp.wait_stop(seq, STOP_TIMEOUT)
        for p in self.points:
            with contextlib.suppress(EmutuiError):
                await rsp.clear_point(p.kind, p.addr, p.length)
        if was_running:
            await rsp.cont()
        self.seq_base = rsp.stop_seq
        self.released = True
        self.rsp = None
        await rsp.close()
        _note("released the stub for a debugger")

    async def select(self, rsp: RspClient, cpu: int | None) -> str | None:
        if cpu is None:
            return None
        if not self.threads:
            self.threads = await rsp.threads()
        if cpu < 0 or cpu >= len(self.threads):
            raise errors.RangeError(
                f"cpu {cpu} does not exist (the guest has {len(self.threads)}: 0..)"
            )
        t = self.threads[cpu]
        if self.gthread != t:
            await rsp.select_thread("g", t)
            self.gthread = t
        return t

    # -- requests ----------------------------------------------------------

    async def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        fn = getattr(self, f"op_{op}", None) if isinstance(op, str) else None
        if fn is None:
            raise ProtocolError(f"gdb hub: unknown request {op!r}")
        if op in ("wait", "state", "ping", "cont"):
            result: dict[str, Any] = await fn(req)
            return result
        async with self.busy:
            result = await fn(req)
        return result

    def _state(self, rsp: RspClient | None) -> dict[str, Any]:
        return {
            "running": bool(rsp and rsp.running),
            "stop": stop_json(rsp.last_stop if rsp else None),
            "seq": rsp.stop_seq if rsp else self.seq_base,
            "released": self.released,
        }

    async def op_info(self, req: dict[str, Any]) -> dict[str, Any]:
        rsp = await self.stub()
        assert self.td is not None
        return {
            "arch": self.td.architecture,
            "family": self.td.family,
            "pc": self.td.pc_name,
            "sp": self.td.sp_name,
            "registers": [[r.name, r.bitsize, r.regnum, r.group] for r in self.td.registers],
            "cpus": len(self.threads),
            "points": [p.to_json() for p in self.points],
            **self._state(rsp),
        }

    async def op_state(self, req: dict[str, Any]) -> dict[str, Any]:
        rsp = self.rsp if self.rsp is not None and self.rsp.connected else None
        return {"points": [p.to_json() for p in self.points], **self._state(rsp)}

    def _must_be_stopped(self, rsp: RspClient) -> None:
        if rsp.running:
            raise BusyError(
                f"{self.handles.name}: the guest is running; stop it first "
                f"('emutui cpu {self.handles.name} stop')"
            )

    async def op_regs(self, req: dict[str, Any]) -> dict[str, Any]:
        rsp = await self.stub()
        self._must_be_stopped(rsp)
        await self.select(rsp, req.get("cpu") or 0)
        assert self.td is not None
        values = self.td.decode_g(await rsp.read_registers())
        return {
            "values": values,
            "pc": values.get(self.td.pc_name),
            "points": [p.to_json() for p in self.points],
            **self._state(rsp),
        }

    async def op_mem(self, req: dict[str, Any]) -> dict[str, Any]:
        rsp = await self.stub()
        self._must_be_stopped(rsp)
        await self.select(rsp, req.get("cpu") or 0)
        length = int(req["len"])
        if length < 0 or length > 1 << 20:
            raise errors.RangeError("read at most 1 MiB at a time")
        data = await rsp.read_memory(int(req["addr"]), length)
        return {"hex": data.hex()}

    async def op_wmem(self, req: dict[str, Any]) -> dict[str, Any]:
        rsp = await self.stub()
        self._must_be_stopped(rsp)
        await self.select(rsp, req.get("cpu") or 0)
        await rsp.write_memory(int(req["addr"]), bytes.fromhex(str(req["hex"])))
        return {}

    async def op_step(self, req: dict[str, Any]) -> dict[str, Any]:
        rsp = await self.stub()
        self._must_be_stopped(rsp)
        thread = await self.select(rsp, req.get("cpu") or 0)
        n = max(1, int(req.get("n", 1)))
        stop: StopReply | None = None
        for _ in range(n):
            try:
                stop = await rsp.step(thread, timeout=STEP_TIMEOUT)
            except DisconnectedError:
                if not rsp.connected:
                    raise
                # A CPU in hlt with interrupts masked for the step never ends it.
                await rsp.interrupt()
                await rsp.wait_stop(rsp.stop_seq - 1, STOP_TIMEOUT)
                raise BackendError(
                    f"{self.handles.name}: the step did not end: the CPU waits for an "
                    "interrupt (hlt); use cont, or a breakpoint after it"
                ) from None
            rsp.last_stop = stop
            if stop.exited:
                break
        return self._state(rsp)

    async def op_cont(self, req: dict[str, Any]) -> dict[str, Any]:
        rsp = await self.stub()
        seq = rsp.stop_seq
        async with self.busy:
            if not rsp.running:
                await self._step_off_breakpoint(rsp)
                seq = rsp.stop_seq
                await rsp.cont()
        if not req.get("wait"):
            return self._state(rsp)
        limit = req.get("limit")
        stop = await rsp.wait_stop(seq, float(limit) if limit is not None else None)
        if stop is None:
            return {"timeout": True, **self._state(rsp)}
        return self._state(rsp)

    async def _step_off_breakpoint(self, rsp: RspClient) -> None:
        """A breakpoint at PC would stop the guest again at once (QEMU does not
        step over it): step one instruction first, as gdb does."""
        breaks = {p.addr for p in self.points if p.kind in (0, 1)}
        if not breaks or self.td is None:
            return
        self.gthread = None  # continue and step act on the stub's current thread
        pc = self.td.decode_g(await rsp.read_registers()).get(self.td.pc_name)
        if pc in breaks:
            with contextlib.suppress(DisconnectedError):
                rsp.last_stop = await rsp.step(None, timeout=STEP_TIMEOUT)

    async def op_wait(self, req: dict[str, Any]) -> dict[str, Any]:
        rsp = await self.stub()
        after = int(req.get("after", rsp.stop_seq))
        limit = req.get("limit")
        await rsp.wait_stop(after, float(limit) if limit is not None else None)
        return self._state(rsp)

    async def op_stop(self, req: dict[str, Any]) -> dict[str, Any]:
        rsp = await self.stub()
        if rsp.running:
            seq = rsp.stop_seq
            await rsp.interrupt()
            if await rsp.wait_stop(seq, STOP_TIMEOUT) is None:
                raise DisconnectedError(
                    f"{self.handles.name}: the gdb stub did not stop the guest "
                    f"within {STOP_TIMEOUT:.0f} s"
                )
        return self._state(rsp)

    async def op_point(self, req: dict[str, Any]) -> dict[str, Any]:
        rsp = await self.stub()
        kind = POINT_KINDS.get(str(req.get("kind")))
        if kind is None:
            raise ProtocolError(f"gdb hub: unknown point kind {req.get('kind')!r}")
        p = Point(kind, int(req["addr"]), int(req.get("len", 1)))
        running = rsp.running
        # QEMU's stub takes any byte sent while the VM runs as an interrupt:
        # stop, change the points, resume (as gdb does in all-stop mode).
        async with rsp.paused():
            if req.get("remove"):
                if p not in self.points:
                    raise errors.NotFoundError(f"no {req.get('kind')} at 0x{p.addr:x}")
                await rsp.clear_point(p.kind, p.addr, p.length)
                self.points.remove(p)
            elif p not in self.points:
                await rsp.set_point(p.kind, p.addr, p.length)
                self.points.append(p)
        self._save_points()
        return {"points": [q.to_json() for q in self.points], "running": running}

    async def op_clear(self, req: dict[str, Any]) -> dict[str, Any]:
        rsp = await self.stub()
        async with rsp.paused():
            for p in list(self.points):
                await rsp.clear_point(p.kind, p.addr, p.length)
                self.points.remove(p)
        self._save_points()
        return {"points": []}

    async def op_release(self, req: dict[str, Any]) -> dict[str, Any]:
        await self.release()
        return {"released": True}

    async def op_reclaim(self, req: dict[str, Any]) -> dict[str, Any]:
        rsp = await self.stub()
        return self._state(rsp)

    async def op_ping(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"pid": os.getpid()}

    # -- serving -----------------------------------------------------------

    async def client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    break
                if not line:
                    break
                try:
                    req = json.loads(line)
                    if not isinstance(req, dict):
                        raise ValueError("not an object")
                    reply = {"ok": True, **await self.handle(req)}
                except EmutuiError as e:
                    reply = {"ok": False, "error": str(e), "type": type(e).__name__}
                except (ValueError, KeyError, TypeError) as e:
                    reply = {"ok": False, "error": f"bad request: {e}", "type": "ProtocolError"}
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
                if self.rsp is not None and not self.rsp.connected and not self.released:
                    self.stop_event.set()  # the stub went away: so do we
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


async def serve(wd: Path) -> int:
    hub = Hub(wd)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, hub.stop_event.set)
    try:
        await hub.attach()
    except EmutuiError as e:
        _note(f"error: {e}")
        return 1
    path = wd / HUB_SOCK
    tmp = wd / f".{HUB_SOCK}.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    old = os.umask(0o077)
    try:
        server = await asyncio.start_unix_server(hub.client, path=str(tmp), limit=REQUEST_MAX)
    finally:
        os.umask(old)
    os.replace(tmp, path)  # the socket appears only when the hub holds the stub

    async def watch() -> None:
        h = hub.handles
        while not hub.stop_event.is_set():
            await asyncio.sleep(1.0)
            if not proc.is_alive(h.pid, h.pid_start) and not h.options.get("attached"):
                _note("the emulator is gone")
                hub.stop_event.set()
            if hub.rsp is not None and not hub.rsp.connected and not hub.released:
                _note("the stub connection dropped")
                hub.stop_event.set()

    watcher = asyncio.create_task(watch())
    await hub.stop_event.wait()
    watcher.cancel()
    server.close()
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    if hub.rsp is not None and hub.rsp.connected:
        # Leave the guest as a debugger's detach would: no stray breakpoints.
        for p in hub.points:
            with contextlib.suppress(EmutuiError, TimeoutError):
                await hub.rsp.clear_point(p.kind, p.addr, p.length)
        await hub.rsp.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    wd = Path(args[0])
    _note(f"starting for {wd.name}")
    return asyncio.run(serve(wd))


# -- used by the CLI and the TUI --------------------------------------------------


class HubClient:
    """A connection to an instance's gdb hub; starts the hub when none runs."""

    def __init__(self, wd: Path, name: str) -> None:
        self.wd = wd
        self.name = name
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    async def connect(self) -> None:
        path = self.wd / HUB_SOCK
        if not path.exists() or not await self._try_open(path):
            await ensure_hub(self.wd)
            if not await self._try_open(path):
                raise DisconnectedError(f"{self.name}: the gdb hub does not answer")

    async def _try_open(self, path: Path) -> bool:
        try:
            self._reader, self._writer = await asyncio.open_unix_connection(
                str(path), limit=1 << 24
            )
            return True
        except OSError:
            return False

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
            self._writer = None

    async def call(self, op: str, deadline: float | None = CLIENT_TIMEOUT, **args: Any) -> Any:
        if self._writer is None or self._reader is None:
            await self.connect()
        assert self._writer is not None and self._reader is not None
        async with self._lock:
            try:
                self._writer.write(json.dumps({"op": op, **args}).encode() + b"\n")
                await self._writer.drain()
                async with asyncio.timeout(deadline):
                    line = await self._reader.readline()
            except TimeoutError:
                await self.close()
                raise DisconnectedError(f"{self.name}: the gdb hub did not answer {op}") from None
            except OSError as e:
                await self.close()
                raise DisconnectedError(f"{self.name}: the gdb hub went away ({e})") from None
        if not line:
            await self.close()
            raise DisconnectedError(f"{self.name}: the gdb hub went away")
        try:
            reply = json.loads(line)
        except ValueError:
            raise ProtocolError(f"{self.name}: the gdb hub sent garbage") from None
        if not reply.get("ok"):
            cls = getattr(errors, str(reply.get("type")), None)
            if not (isinstance(cls, type) and issubclass(cls, EmutuiError)):
                cls = BackendError
            raise cls(str(reply.get("error")))
        return reply


async def ensure_hub(wd: Path) -> None:
    """Start the instance's hub unless one runs; wait until it holds the stub."""
    from emutui.core.instance import Instance

    inst = Instance.load(wd)
    h = inst.handles
    if h is None:
        raise InstanceDeadError(f"{wd.name}: {inst.error}")
    if not inst.alive():
        raise InstanceDeadError(f"{wd.name} is not running")
    stub_address(h)  # no stub: say so before starting anything
    with inst.lock():
        h = Handles.load(wd)
        pid, start = (h.options.get("helpers") or {}).get("gdbhub") or [None, None]
        if pid and proc.is_alive(pid, start):
            p = None
        else:
            with contextlib.suppress(FileNotFoundError):
                (wd / HUB_SOCK).unlink()
            logpos = (wd / HUB_LOG).stat().st_size if (wd / HUB_LOG).exists() else 0
            p = proc.spawn_detached(
                [sys.executable, "-m", "emutui.core.gdbhub", str(wd)], wd, wd / HUB_LOG
            )
            pid, start = p.pid, proc.start_time(p.pid)
            h.options.setdefault("helpers", {})["gdbhub"] = [pid, start]
            h.save(wd)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if (wd / HUB_SOCK).exists():
            return
        if (p is not None and p.poll() is not None) or not proc.is_alive(pid, start):
            break
        await asyncio.sleep(0.01)
    else:
        raise DisconnectedError(f"{wd.name}: the gdb hub did not start within {START_TIMEOUT} s")
    text = ""
    with contextlib.suppress(OSError), open(wd / HUB_LOG, "rb") as f:
        f.seek(logpos if p is not None else 0)
        text = f.read().decode(errors="replace")
    last = [ln for ln in text.splitlines() if "error:" in ln]
    msg = last[-1].split("error:", 1)[1].strip() if last else "the gdb hub exited"
    if "held by" in msg or "does not answer" in msg:
        raise BusyError(msg)
    raise DisconnectedError(msg)


if __name__ == "__main__":
    sys.exit(main())
