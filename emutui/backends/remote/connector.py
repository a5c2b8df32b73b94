"""Instances of lab hosts on the laptop: the same Instance and Connector as local ones.

``RemoteHosts`` holds, per host, one SSH ControlMaster and one ``emutui agent``
on it, reconnecting when the host comes back. ``RemoteInstance`` is an
Instance named ``NAME@HOST`` whose files are a private local mirror (serial
logs and journal fetched from the host), so panes that read history from files
work unchanged. ``RemoteConnector`` sends each Connector call to the agent
(one round trip), takes events as pushed notifications, and opens serial
channels as streamlocal forwards of the host's serial hub sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

from emutui.backends.base import BaseConnector, SerialStream, SocketSerial
from emutui.backends.remote.client import AgentClient
from emutui.backends.remote.ssh import HostConfig, SSHHost
from emutui.core.errors import DisconnectedError, EmutuiError, NotFoundError, UnsupportedError
from emutui.core.handles import Channel, Handles
from emutui.core.instance import Instance
from emutui.core.model import (
    Capability,
    Event,
    InstanceState,
    InstanceStatus,
    MemoryRegion,
    PropertyNode,
)

RETRY = 2.0  # seconds between reconnection attempts to a host that went away
MIRROR_MAX = 8 << 20  # a mirrored serial log is cut back to its last half beyond this
FETCH = 1 << 20


class RemoteHost:
    """One lab host: its ssh master, its agent, its last listing."""

    def __init__(self, cfg: HostConfig) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.ssh = SSHHost(cfg)
        self.agent: AgentClient | None = None
        self.error = ""
        self.rows: list[dict[str, Any]] = []
        self.listed_at = 0.0
        self._lock = asyncio.Lock()
        self._next_try = 0.0

    async def client(self) -> AgentClient:
        """The connected agent, (re)started when needed; one line when the host is away."""
        async with self._lock:
            if self.agent is not None and self.agent.connected:
                return self.agent
            if self.agent is not None:
                self.error = self.agent.closed_why or "connection lost"
                with contextlib.suppress(Exception):
                    await self.agent.close()
                self.agent = None
            now = time.monotonic()
            if now < self._next_try and self.error:
                raise DisconnectedError(f"{self.name}: {self.error}")
            agent = AgentClient(self.ssh)
            try:
                await agent.start()
            except EmutuiError as e:
                self.error = str(e).removeprefix(f"{self.name}: ")
                self._next_try = time.monotonic() + RETRY
                raise DisconnectedError(f"{self.name}: {self.error}") from e
            self.agent = agent
            self.error = ""
            return agent

    async def call(self, method: str, params: dict[str, Any] | None = None, **kw: Any) -> Any:
        agent = await self.client()
        return await agent.call(method, params, **kw)

    async def refresh(self) -> None:
        try:
            rows = await self.call("ls", timeout=self.cfg.connect_timeout + 5)
        except EmutuiError as e:
            # Keep the instances shown (their consoles keep their scrollback); the
            # host's own row says it is away until it answers again.
            self.error = str(e).removeprefix(f"{self.name}: ")
            return
        self.rows = [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
        self.listed_at = time.time()

    async def close(self) -> None:
        if self.agent is not None:
            await self.agent.close()
            self.agent = None


class RemoteHosts:
    """Every configured host; ``__call__`` lists their instances (cached, never blocks)."""

    def __init__(self, hosts: Iterable[HostConfig], mirror_root: Path) -> None:
        self.hosts = {h.name: RemoteHost(h) for h in hosts}
        self.mirror_root = mirror_root
        self._refreshing: asyncio.Task[None] | None = None

    def __call__(self) -> list[Instance]:
        out: list[Instance] = []
        for host in self.hosts.values():
            if host.error:
                out.append(RemoteInstance.placeholder(self, host))
            for row in host.rows:
                out.append(RemoteInstance.from_row(self, host, row))
        return out

    def with_local(self, registry: Any) -> Callable[[], list[Instance]]:
        """The TUI's instance list: this machine's first, then every host's.

        The function carries ``refresh`` (the app calls it before each rescan),
        which only starts fetching: the UI never waits on SSH.
        """

        def everything() -> list[Instance]:
            return [*registry.instances(), *self()]

        everything.refresh = self.refresh  # type: ignore[attr-defined]
        return everything

    async def refresh(self) -> None:
        """Start a refresh of every host in the background (the UI never waits on SSH)."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self.refresh_now())

    async def refresh_now(self) -> None:
        await asyncio.gather(*(h.refresh() for h in self.hosts.values()))

    def host(self, name: str) -> RemoteHost:
        try:
            return self.hosts[name]
        except KeyError:
            raise NotFoundError(
                f"no host {name!r} (hosts: {', '.join(self.hosts) or 'none'})"
            ) from None

    async def close_masters(self) -> None:
        """Leaving the TUI: nothing of ours stays on the hosts' connections."""
        for h in self.hosts.values():
            await h.ssh.exit_master()

    async def close(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
        await asyncio.gather(*(h.close() for h in self.hosts.values()), return_exceptions=True)


class RemoteInstance(Instance):
    """``NAME@HOST``: what the host's agent listed, with a local mirror for its logs."""

    hosts: RemoteHosts
    rhost: RemoteHost
    remote_name: str
    row: dict[str, Any]

    @classmethod
    def from_row(cls, hosts: RemoteHosts, host: RemoteHost, row: dict[str, Any]) -> RemoteInstance:
        rname = str(row.get("name", "?"))
        chans = {str(c): Channel(role="serial", kind="remote") for c in row.get("serial") or []}
        pid = row.get("pid")
        h = Handles(
            name=rname,
            backend=str(row.get("backend", "?")),
            target=str(row.get("target", "?")),
            pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
            channels=chans,
            created=float(row.get("created") or 0.0),
            simulated=bool(row.get("simulated")),
            options={"remote": host.name, "attached": bool(row.get("attached"))},
        )
        digest = hashlib.sha256(f"{host.name}\0{rname}".encode()).hexdigest()[:16]
        inst = cls(name=f"{rname}@{host.name}", wd=hosts.mirror_root / digest, handles=h)
        inst.hosts, inst.rhost, inst.remote_name, inst.row = hosts, host, rname, row
        return inst

    @classmethod
    def placeholder(cls, hosts: RemoteHosts, host: RemoteHost) -> RemoteInstance:
        """A row for a host we cannot reach: the list says why instead of hiding it."""
        inst = cls.from_row(hosts, host, {"name": "", "backend": "ssh", "target": host.cfg.ssh})
        inst.name = f"@{host.name}"
        inst.error = host.error
        inst.row = {"state": "disconnected", "detail": host.error}
        return inst

    @property
    def is_placeholder(self) -> bool:
        return self.remote_name == ""

    @property
    def host(self) -> str | None:
        return self.rhost.name

    @property
    def is_daemon(self) -> bool:
        return bool(self.row.get("attached"))

    def alive(self) -> bool:
        return self.is_placeholder or self.row.get("state") != "dead"

    def process_state(self) -> InstanceState:
        return InstanceState.UNKNOWN if self.alive() else InstanceState.DEAD

    def uptime(self) -> float | None:
        up = self.row.get("uptime")
        return float(up) if isinstance(up, int | float) else None

    def summary(self) -> dict[str, Any]:
        return super().summary() | {"name": self.name, "host": self.rhost.name,
                                    "dir": str(self.row.get("dir", ""))}  # fmt: skip

    def mirror(self) -> Path:
        self.wd.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(self.wd, 0o700)
        return self.wd

    def connector(self) -> RemoteConnector:
        return RemoteConnector(self)


class RemoteConnector(BaseConnector):
    backend_name = "remote"

    def __init__(self, instance: RemoteInstance) -> None:
        super().__init__(instance)
        self.rinst = instance
        self.host = instance.rhost
        self.remote = instance.remote_name
        self.capabilities = frozenset()
        self.backend_name = instance.backend
        self._execute_ok = False
        self._agent: AgentClient | None = None
        self._sub: tuple[int, asyncio.Queue[dict[str, Any] | None]] | None = None

    async def _call(self, method: str, *args: Any, timeout: float = 10.0) -> Any:
        return await self.host.call(
            "call", {"name": self.remote, "method": method, "args": list(args)}, timeout=timeout
        )

    async def connect(self) -> None:
        if self.rinst.is_placeholder:
            raise DisconnectedError(f"{self.host.name}: {self.host.error or 'not connected'}")
        info = await self.host.call("connect", {"name": self.remote})
        caps = set()
        for c in info.get("capabilities") or []:
            with contextlib.suppress(ValueError):
                caps.add(Capability(c))
        self.capabilities = frozenset(caps)
        self._execute_ok = bool(info.get("execute"))
        if Capability.EVENTS in self.capabilities:
            # Subscribed now, not at the first read: nothing between is missed.
            self._agent = await self.host.client()
            self._sub = await self._agent.subscribe(self.remote)
        await self._sync_journal()

    async def close(self) -> None:
        # The agent keeps the host-side connection for the next one; only our events go.
        if self._sub is not None and self._agent is not None:
            sub, self._sub = self._sub, None
            await self._agent.unsubscribe(sub[0])

    async def status(self) -> InstanceStatus:
        st = await self._call("status")
        try:
            state = InstanceState(st.get("state"))
        except (ValueError, AttributeError):
            state = InstanceState.UNKNOWN
        return InstanceStatus(state, str(st.get("detail", "")) if isinstance(st, dict) else "")

    async def pause(self) -> None:
        await self._call("pause")

    async def resume(self) -> None:
        await self._call("resume")

    async def reset(self) -> None:
        await self._call("reset")

    async def stop(self) -> None:
        await self.host.call("stop", {"name": self.remote}, timeout=30)

    async def list_props(self, path: str) -> list[PropertyNode]:
        items = await self._call("list_props", path)
        return [PropertyNode(**i) for i in items or [] if isinstance(i, dict)]

    async def get_prop(self, path: str, name: str) -> Any:
        return await self._call("get_prop", path, name)

    async def set_prop(self, path: str, name: str, value: Any) -> None:
        await self._call("set_prop", path, name, value)

    async def regions(self) -> list[MemoryRegion]:
        if self._regions is None:
            items = await self._call("regions")
            self._regions = [MemoryRegion(**i) for i in items or [] if isinstance(i, dict)]
        return self._regions

    async def read(self, region: str, offset: int, length: int) -> bytes:
        data = await self._call("read", region, offset, length, timeout=30)
        if not isinstance(data, bytes):
            raise DisconnectedError(f"{self.name}: read answered {type(data).__name__}")
        return data

    async def write(self, region: str, offset: int, data: bytes) -> None:
        await self._call("write", region, offset, data, timeout=30)

    async def command(self, line: str) -> Any:
        return await self._call("command", line, timeout=30)

    async def execute(self, cmd: str, arguments: dict[str, Any] | None = None) -> Any:
        if not self._execute_ok:
            raise UnsupportedError(f"{self.name}: no QMP on this backend")
        params: dict[str, Any] = {"name": self.remote, "command": cmd}
        if arguments:
            params["arguments"] = arguments
        return await self.host.call("execute", params)

    async def _events(self) -> AsyncIterator[Event]:
        if self._sub is None:
            return
        q = self._sub[1]
        while (obj := await q.get()) is not None:
            ev = Event.from_json(obj)
            yield Event(ev.name, ev.data, ev.timestamp, self.name)
        raise DisconnectedError(f"{self.name}: event stream ended")

    def events(self) -> AsyncIterator[Event]:
        return self._events()

    # -- serial: a forward of the host's hub socket, history from the host's log -------

    async def serial(self, channel: str) -> SerialStream:
        where = await self.host.call("serial_socket", {"name": self.remote, "channel": channel})
        if where.get("kind") == "unix":
            remote = str(where["path"])
        else:
            remote = f"{where.get('host', '127.0.0.1')}:{int(where['port'])}"
        local = await self.host.ssh.forward(remote)
        await self.sync_log(channel)
        return await SocketSerial.open_unix(local)

    async def sync_log(self, channel: str) -> Path:
        """Bring the local mirror of a channel's log up to the host's (what we missed)."""
        mirror = self.rinst.mirror()
        log = mirror / f"serial-{channel}.log"
        state_file = mirror / f".serial-{channel}.pos"
        try:
            pos = int(state_file.read_text())
        except (OSError, ValueError):
            pos = 0
        first = await self.host.call(
            "log_read", {"name": self.remote, "channel": channel, "offset": -FETCH, "length": 0}
        )
        size = int(first.get("size", 0))
        if size < pos:  # rotated or a new run on the host: start over from what it has
            pos = 0
        pos = max(pos, size - FETCH)
        with open(log, "ab") as f:
            while pos < size:
                got = await self.host.call(
                    "log_read",
                    {"name": self.remote, "channel": channel, "offset": pos, "length": FETCH},
                )
                data = got.get("data") or b""
                if not data:
                    break
                f.write(data)
                pos += len(data)
        state_file.write_text(str(pos))
        if log.stat().st_size > MIRROR_MAX:
            keep = log.read_bytes()[-MIRROR_MAX // 2 :]
            log.write_bytes(keep)
        return log

    async def _sync_journal(self) -> None:
        try:
            events = await self.host.call("journal", {"name": self.remote, "limit": 2000})
        except EmutuiError:
            return
        mirror = self.rinst.mirror()
        lines = "".join(json.dumps(e) + "\n" for e in events if isinstance(e, dict))
        tmp = mirror / ".events.tmp"
        tmp.write_text(lines)
        tmp.replace(mirror / "events.jsonl")
