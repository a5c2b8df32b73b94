"""The laptop's end of ``emutui agent``: JSON-RPC requests with deadlines, pushed events.

One reader task per agent; replies find their waiting request by id,
notifications go to their subscription's queue. The agent runs in an
``ssh -T`` session on the host's ControlMaster, so this costs no new
connection. Garbage from the agent, an agent that exits, or one that does not
answer in time is one line (ProtocolError / DisconnectedError / BackendError),
never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from emutui import __version__
from emutui.backends.remote import rpc
from emutui.backends.remote.ssh import SSHHost, last_line
from emutui.core.errors import BackendError, DisconnectedError, EmutuiError, ProtocolError

REQUEST_TIMEOUT = 10.0
EVENT_QUEUE = 10000  # per subscription; beyond it the oldest are dropped and counted


class AgentClient:
    def __init__(self, host: SSHHost) -> None:
        self.host = host
        self.name = host.cfg.name
        self.proc: asyncio.subprocess.Process | None = None
        self.info: dict[str, Any] = {}
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._subs: dict[int, asyncio.Queue[dict[str, Any] | None]] = {}
        self._next = 1
        self._reader: asyncio.Task[None] | None = None
        self._stderr: asyncio.Task[bytes] | None = None
        self.closed_why: str | None = None
        self.dropped_events = 0

    @property
    def connected(self) -> bool:
        return self.proc is not None and self.closed_why is None

    async def start(self) -> None:
        await self.host.ensure_master()
        self.proc = await asyncio.create_subprocess_exec(
            *self.host.session(["agent"]),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=rpc.MAX_LINE,
        )
        self.closed_why = None
        self._reader = asyncio.create_task(self._read())
        assert self.proc.stderr is not None
        self._stderr = asyncio.create_task(self.proc.stderr.read(8192))
        try:
            self.info = await self.call(
                "hello", {"protocol": rpc.PROTOCOL, "version": __version__}, timeout=15
            )
        except EmutuiError:
            await self.close()
            raise

    async def _why_gone(self) -> str:
        """The agent's (or ssh's, or the host shell's) last words."""
        err = b""
        if self._stderr is not None:
            with contextlib.suppress(Exception):
                err = await asyncio.wait_for(asyncio.shield(self._stderr), 2.0)
        rc = None
        if self.proc is not None:
            with contextlib.suppress(TimeoutError):
                rc = await asyncio.wait_for(self.proc.wait(), 2.0)
        text = err.decode("utf-8", "replace")
        if rc == 127 or "not found" in text:
            return f"emutui is not installed on the host ({last_line(text)})"
        return last_line(text) if text.strip() else f"agent exited (status {rc})"

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        why = "agent closed the connection"
        try:
            while True:
                try:
                    line = await self.proc.stdout.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    why = "agent sent a message over the size limit"
                    break
                if not line:
                    why = await self._why_gone()
                    break
                try:
                    msg = rpc.decode(line)
                except ProtocolError as e:
                    why = f"agent sent garbage: {e}"
                    break
                self._dispatch(msg)
        finally:
            self.closed_why = why
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(DisconnectedError(f"{self.name}: {why}"))
            self._pending.clear()
            for q in self._subs.values():
                with contextlib.suppress(asyncio.QueueFull):
                    q.put_nowait(None)
            if self.proc is not None and self.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()

    def _dispatch(self, msg: dict[str, Any]) -> None:
        if "method" in msg and "id" not in msg:
            params = msg.get("params") or {}
            sub = params.get("sub") if isinstance(params, dict) else None
            q = self._subs.get(sub) if isinstance(sub, int) else None
            if q is None:
                return
            if msg["method"] == "event_end":
                item = None
            else:
                item = params.get("event") if isinstance(params.get("event"), dict) else None
                if item is None:
                    return
            if q.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
                self.dropped_events += 1
            q.put_nowait(item)
            return
        mid = msg.get("id")
        fut = self._pending.pop(mid, None) if isinstance(mid, int) else None
        if fut is None or fut.done():
            return
        if "error" in msg:
            try:
                rpc.raise_error(msg["error"], self.name)
            except EmutuiError as e:
                fut.set_exception(e)
        else:
            fut.set_result(rpc.from_wire(msg.get("result")))

    async def call(
        self, method: str, params: dict[str, Any] | None = None, timeout: float = REQUEST_TIMEOUT
    ) -> Any:
        if self.proc is None or self.proc.stdin is None or self.closed_why is not None:
            raise DisconnectedError(f"{self.name}: {self.closed_why or 'not connected'}")
        mid = self._next
        self._next += 1
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[mid] = fut
        try:
            self.proc.stdin.write(rpc.encode(rpc.request(mid, method, rpc.to_wire(params or {}))))
            await self.proc.stdin.drain()
        except (ConnectionError, RuntimeError) as e:
            self._pending.pop(mid, None)
            raise DisconnectedError(f"{self.name}: agent connection lost ({e})") from e
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            self._pending.pop(mid, None)
            raise BackendError(
                f"{self.name}: {method}: no answer from the host within {timeout:.0f} s"
            ) from None

    async def subscribe(self, name: str) -> tuple[int, asyncio.Queue[dict[str, Any] | None]]:
        """Start ``name``'s events now; they queue until read (None: the stream ended)."""
        q: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(EVENT_QUEUE)
        sub = await self.call("subscribe", {"name": name})
        if not isinstance(sub, int):
            raise ProtocolError(f"{self.name}: subscribe answered {sub!r}")
        self._subs[sub] = q
        return sub, q

    async def unsubscribe(self, sub: int) -> None:
        self._subs.pop(sub, None)
        if self.connected:
            with contextlib.suppress(EmutuiError):
                await self.call("unsubscribe", {"sub": sub}, timeout=3)

    async def close(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(Exception):
                proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 3.0)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        if self._stderr is not None:
            self._stderr.cancel()
        self.closed_why = self.closed_why or "closed"
