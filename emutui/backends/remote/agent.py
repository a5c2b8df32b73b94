"""``emutui agent``: a lab host's instances served over stdio (JSON-RPC 2.0, one per line).

Run by the laptop as ``ssh -T HOST emutui agent``. It serves what cannot cross
SSH as a socket: discovery, start and stop, and every Connector method (vrtd's
BAR mmaps stay here; reads and writes happen on this host). Serial channels are
not copied through here: the agent tells where the hub's socket is and the
laptop reaches it as an OpenSSH streamlocal forward on the same connection.

One task per request, so a slow instance does not hold up the others; one
connector per instance, kept while the laptop is connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from emutui import __version__
from emutui.backends.base import Connector
from emutui.backends.remote import rpc
from emutui.core.errors import EmutuiError, NotFoundError, ProtocolError

# Connector methods the laptop may call, with how many positional arguments each takes.
CALLS: dict[str, int] = {
    "status": 0,
    "pause": 0,
    "resume": 0,
    "reset": 0,
    "list_props": 1,
    "get_prop": 2,
    "set_prop": 3,
    "regions": 0,
    "read": 3,
    "write": 3,
    "command": 1,
}
SERIAL_CHUNK = 1 << 20


class Agent:
    def __init__(self, state_dir: str | None, config: str | None) -> None:
        from emutui.core.registry import Registry

        self.registry = Registry(state_dir)
        self.config_path = config
        self.conns: dict[str, Connector] = {}
        self.conn_locks: dict[str, asyncio.Lock] = {}
        self.subs: dict[int, asyncio.Task[None]] = {}
        self.next_sub = 1
        self.send: Callable[[dict[str, Any]], Awaitable[None]] | None = None

    # -- plumbing ---------------------------------------------------------------------

    async def handle(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        mid = msg.get("id")
        method = msg.get("method")
        params = msg.get("params", {})
        if not isinstance(method, str):
            return rpc.error(mid, rpc.INVALID_REQUEST, "no method")
        fn = getattr(self, "m_" + method.replace(".", "_"), None)
        if fn is None:
            return rpc.error(mid, rpc.METHOD_NOT_FOUND, f"agent has no method {method!r}")
        if not isinstance(params, dict):
            return rpc.error(mid, rpc.INVALID_PARAMS, "params must be an object")
        try:
            value = await fn(**rpc.from_wire(params))
        except TypeError as e:
            return rpc.error(mid, rpc.INVALID_PARAMS, f"{method}: {e}")
        except EmutuiError as e:
            return rpc.error(mid, rpc.APP_ERROR, str(e), type(e).__name__)
        except OSError as e:
            return rpc.error(mid, rpc.APP_ERROR, f"{method}: {e.strerror or e}", "BackendError")
        return None if mid is None else rpc.result(mid, value)

    def _instance(self, name: str) -> Any:
        from emutui.core.paths import check_name

        return self.registry.get(check_name(name))

    async def _conn(self, name: str) -> Connector:
        lock = self.conn_locks.setdefault(name, asyncio.Lock())
        async with lock:
            conn = self.conns.get(name)
            if conn is None:
                from emutui.control import make_connector

                inst = self._instance(name)
                if not inst.alive():
                    from emutui.control import dead_message
                    from emutui.core.errors import InstanceDeadError

                    raise InstanceDeadError(dead_message(inst))
                conn = make_connector(inst, aux=True)
                await conn.connect()
                self.conns[name] = conn
            return conn

    async def _drop(self, name: str) -> None:
        conn = self.conns.pop(name, None)
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 3.0)

    # -- methods ----------------------------------------------------------------------

    async def m_hello(self, protocol: int, version: str = "") -> dict[str, Any]:
        if protocol != rpc.PROTOCOL:
            raise ProtocolError(
                f"protocol mismatch: this host's emutui {__version__} speaks agent protocol "
                f"{rpc.PROTOCOL}, the local emutui {version or '?'} speaks {protocol}; "
                f"install the same emutui on both"
            )
        return {
            "protocol": rpc.PROTOCOL,
            "version": __version__,
            "host": socket.gethostname(),
            "uid": os.getuid(),
            "state_dir": str(self.registry.root),
        }

    async def m_ls(self) -> list[dict[str, Any]]:
        from emutui.control import probe_status

        insts = await asyncio.to_thread(self.registry.instances)
        statuses = await asyncio.gather(*(probe_status(i) for i in insts))
        rows = []
        for inst, st in zip(insts, statuses, strict=True):
            row = inst.summary()
            row["state"] = st.state.value
            row["detail"] = st.detail
            row["uptime"] = inst.uptime()
            row["serial"] = inst.handles.serial_channels() if inst.handles else []
            if st.state.value == "dead":
                row["log_tail"] = inst.tail(lines=5)  # its last words, as ls shows them
            rows.append(row)
        return rows

    async def m_start(self, target: str, name: str | None = None, paused: bool = False) -> Any:
        from emutui.config import load_config
        from emutui.control import start_target

        cfg = load_config(self.config_path)
        inst = await start_target(cfg, self.registry, target, name, paused)
        return inst.summary()

    async def m_stop(self, name: str) -> None:
        from emutui.control import stop_instance

        await self._drop(name)
        await stop_instance(self.registry, self._instance(name))

    async def m_connect(self, name: str) -> dict[str, Any]:
        conn = await self._conn(name)
        return {
            "capabilities": sorted(c.value for c in conn.capabilities),
            "channels": conn.serial_channels(),
            "execute": getattr(conn, "execute", None) is not None,
        }

    async def m_close(self, name: str) -> None:
        await self._drop(name)

    async def m_call(self, name: str, method: str, args: list[Any] | None = None) -> Any:
        args = list(args or [])
        if method not in CALLS or len(args) != CALLS[method]:
            raise ProtocolError(f"agent: no connector call {method}/{len(args)}")
        conn = await self._conn(name)
        try:
            return await getattr(conn, method)(*args)
        except EmutuiError as e:
            from emutui.core.errors import DisconnectedError, InstanceDeadError

            if isinstance(e, DisconnectedError | InstanceDeadError):
                await self._drop(name)  # the next call connects afresh
            raise

    async def m_execute(self, name: str, command: str, arguments: Any = None) -> Any:
        """QMP's own commands by name (the TUI's completion asks for query-commands)."""
        conn = await self._conn(name)
        execute = getattr(conn, "execute", None)
        if execute is None:
            raise NotFoundError(f"{name}: this backend has no QMP execute")
        return await execute(command, arguments) if arguments else await execute(command)

    async def m_serial_socket(self, name: str, channel: str) -> dict[str, Any]:
        """Where this channel's hub listens (restarting the hub if it died)."""
        inst = self._instance(name)
        h = inst.handles
        ch = h.channels.get(channel) if h else None
        if h is None or ch is None or ch.role != "serial":
            known = ", ".join(h.serial_channels()) if h else "none"
            raise NotFoundError(f"{name}: no serial channel {channel!r} (channels: {known})")
        if ch.kind == "unix" and ch.path:
            if not Path(ch.path).exists() and h.backend == "qemu":
                from emutui.core import serialhub

                await serialhub.ensure_hub(h, inst.wd)
            return {"kind": "unix", "path": ch.path}
        if ch.kind == "tcp" and ch.port:
            return {"kind": "tcp", "host": ch.host or "127.0.0.1", "port": ch.port}
        raise NotFoundError(f"{name}: channel {channel!r} is not a socket ({ch.kind})")

    async def m_log_read(
        self, name: str, channel: str, offset: int = -65536, length: int = SERIAL_CHUNK
    ) -> dict[str, Any]:
        """Bytes of a channel's log (negative offset: from the end), and the log's size."""
        inst = self._instance(name)
        path = inst.serial_log(channel)

        def read() -> tuple[bytes, int, int]:
            try:
                with path.open("rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    start = max(0, size + offset) if offset < 0 else min(offset, size)
                    f.seek(start)
                    return f.read(max(0, min(length, SERIAL_CHUNK))), start, size
            except FileNotFoundError:
                return b"", 0, 0

        data, start, size = await asyncio.to_thread(read)
        return {"data": data, "offset": start, "size": size}

    async def m_journal(self, name: str, limit: int = 2000) -> list[dict[str, Any]]:
        inst = self._instance(name)
        events = await asyncio.to_thread(inst.journal().read, limit)
        return [e.to_json() for e in events]

    async def m_subscribe(self, name: str) -> int:
        """Events of ``name`` pushed as ``event`` notifications until unsubscribe."""
        conn = await self._conn(name)
        sub = self.next_sub
        self.next_sub += 1

        async def pump() -> None:
            assert self.send is not None
            try:
                async for ev in conn.events():
                    await self.send(rpc.notification("event", {"sub": sub, "event": ev.to_json()}))
            except EmutuiError as e:
                await self.send(rpc.notification("event_end", {"sub": sub, "why": str(e)}))
                return
            await self.send(rpc.notification("event_end", {"sub": sub, "why": "closed"}))

        self.subs[sub] = asyncio.create_task(pump())
        return sub

    async def m_unsubscribe(self, sub: int) -> None:
        task = self.subs.pop(sub, None)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        for t in self.subs.values():
            t.cancel()
        for name in list(self.conns):
            await self._drop(name)


async def serve_stdio(state_dir: str | None, config: str | None) -> int:
    """Serve until the laptop closes stdin (the SSH session ended)."""
    loop = asyncio.get_running_loop()
    # Our stdout is the protocol: anything else printed by accident goes to stderr.
    out_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    reader = asyncio.StreamReader(limit=rpc.MAX_LINE)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    w_transport, w_protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(out_fd, "wb", buffering=0)
    )
    writer = asyncio.StreamWriter(w_transport, w_protocol, None, loop)
    agent = Agent(state_dir, config)
    wlock = asyncio.Lock()

    async def send(msg: dict[str, Any]) -> None:
        async with wlock:
            try:
                writer.write(rpc.encode(msg))
                await writer.drain()
            except (ConnectionError, RuntimeError):
                pass

    agent.send = send
    tasks: set[asyncio.Task[None]] = set()

    async def one(msg: dict[str, Any]) -> None:
        reply = await agent.handle(msg)
        if reply is not None:
            await send(reply)

    try:
        while True:
            try:
                line = await reader.readline()
            except (ValueError, asyncio.LimitOverrunError):
                await send(rpc.error(None, rpc.INVALID_REQUEST, "message too long"))
                break
            if not line:
                break
            if not line.strip():
                continue
            try:
                msg = rpc.decode(line)
            except ProtocolError as e:
                await send(rpc.error(None, rpc.PARSE_ERROR, str(e)))
                continue
            t = asyncio.create_task(one(msg))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
        if tasks:  # stdin closed: answer what was asked before going
            await asyncio.wait(tasks, timeout=30)
    finally:
        for t in tasks:
            t.cancel()
        await agent.close()
    return 0
