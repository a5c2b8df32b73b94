"""The backend protocol: what every emulator or daemon connector offers.

A backend without a capability says so in ``capabilities`` and raises
UnsupportedError from the matching method; the TUI hides what is not there.
Everything the TUI can do is a coroutine here, so a test can call it without a screen.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from emutui.core.errors import DisconnectedError, NotFoundError, UnsupportedError
from emutui.core.handles import Handles
from emutui.core.model import Capability, Event, InstanceStatus, MemoryRegion, PropertyNode
from emutui.core.targets import TargetConfig

if TYPE_CHECKING:
    from emutui.core.instance import Instance


class SerialStream(Protocol):
    """A byte stream to one serial channel of a guest."""

    async def read(self, n: int = 65536) -> bytes:
        """Some bytes, at most n; b"" at end of stream."""
        ...

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


class SocketSerial:
    """SerialStream over an asyncio stream pair (unix or TCP socket)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open_unix(cls, path: str, timeout: float = 2.0) -> SocketSerial:
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_unix_connection(path, limit=1 << 20), timeout
            )
        except FileNotFoundError as e:
            raise DisconnectedError(f"serial socket {path} does not exist") from e
        except ConnectionRefusedError as e:
            raise DisconnectedError(f"serial socket {path} refused the connection") from e
        except TimeoutError as e:
            raise DisconnectedError(f"serial socket {path}: connect timed out") from e
        return cls(r, w)

    @classmethod
    async def open_tcp(cls, host: str, port: int, timeout: float = 2.0) -> SocketSerial:
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=1 << 20), timeout
            )
        except (ConnectionRefusedError, OSError) as e:
            raise DisconnectedError(f"serial {host}:{port}: {e.strerror or e}") from e
        except TimeoutError as e:
            raise DisconnectedError(f"serial {host}:{port}: connect timed out") from e
        return cls(r, w)

    async def read(self, n: int = 65536) -> bytes:
        try:
            return await self._reader.read(n)
        except (ConnectionResetError, BrokenPipeError):
            return b""

    async def write(self, data: bytes) -> None:
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (ConnectionResetError, BrokenPipeError) as e:
            raise DisconnectedError("serial channel closed") from e

    async def close(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except (ConnectionResetError, BrokenPipeError):
            pass


@runtime_checkable
class Connector(Protocol):
    """A live connection to one instance."""

    capabilities: frozenset[Capability]

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def status(self) -> InstanceStatus: ...

    async def pause(self) -> None: ...

    async def resume(self) -> None: ...

    async def reset(self) -> None: ...

    async def stop(self) -> None:
        """Stop the emulator: graceful first, then signals; nothing left behind."""
        ...

    def events(self) -> AsyncIterator[Event]:
        """Events as they arrive, until the connection closes."""
        ...

    def serial_channels(self) -> list[str]: ...

    async def serial(self, channel: str) -> SerialStream: ...

    async def list_props(self, path: str) -> list[PropertyNode]: ...

    async def get_prop(self, path: str, name: str) -> Any: ...

    async def set_prop(self, path: str, name: str, value: Any) -> None: ...

    async def regions(self) -> list[MemoryRegion]: ...

    async def read(self, region: str, offset: int, length: int) -> bytes: ...

    async def write(self, region: str, offset: int, data: bytes) -> None: ...

    async def command(self, line: str) -> Any:
        """One raw monitor command (QMP, Renode monitor, vrtd), for the shell and events pane."""
        ...


class BaseConnector:
    """Defaults that say "unsupported" clearly; backends override what they have."""

    capabilities: frozenset[Capability] = frozenset()
    backend_name = "?"

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.name = instance.name
        self._regions: list[MemoryRegion] | None = None

    def _unsupported(self, what: str) -> UnsupportedError:
        return UnsupportedError(f"{self.name}: the {self.backend_name} backend cannot {what}")

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def pause(self) -> None:
        raise self._unsupported("pause")

    async def resume(self) -> None:
        raise self._unsupported("resume")

    async def reset(self) -> None:
        raise self._unsupported("reset")

    async def stop(self) -> None:
        raise self._unsupported("stop")

    async def _no_events(self) -> AsyncIterator[Event]:
        return
        yield  # pragma: no cover  (makes this an async generator)

    def events(self) -> AsyncIterator[Event]:
        return self._no_events()

    def serial_channels(self) -> list[str]:
        h = self.instance.handles
        return h.serial_channels() if h else []

    async def serial(self, channel: str) -> SerialStream:
        raise self._unsupported("open serial channels")

    async def list_props(self, path: str) -> list[PropertyNode]:
        raise self._unsupported("list properties")

    async def get_prop(self, path: str, name: str) -> Any:
        raise self._unsupported("read properties")

    async def set_prop(self, path: str, name: str, value: Any) -> None:
        raise self._unsupported("write properties")

    async def regions(self) -> list[MemoryRegion]:
        raise self._unsupported("list memory regions")

    async def find_region(self, name: str) -> MemoryRegion:
        regions = await self.regions()
        for r in regions:
            if r.name == name:
                return r
        known = ", ".join(r.name for r in regions) or "none"
        raise NotFoundError(f"{self.name}: no memory region {name!r} (regions: {known})")

    async def read(self, region: str, offset: int, length: int) -> bytes:
        raise self._unsupported("read memory")

    async def write(self, region: str, offset: int, data: bytes) -> None:
        raise self._unsupported("write memory")

    def write_refusal(self, region: MemoryRegion) -> str | None:
        """Why ``region`` cannot be written here, in the words ``write`` would use; None
        if it can. The TUI asks before offering an edit, so both say the same."""
        if Capability.MEMORY_WRITE not in self.capabilities:
            return f"{self.name}: the {self.backend_name} backend cannot write memory"
        if not region.writable:
            return f"{self.name}: {region.name} is read-only"
        return None

    async def command(self, line: str) -> Any:
        raise self._unsupported("run monitor commands")


StartFn = Callable[[TargetConfig, Path, str, bool], Awaitable[Handles]]
ConnectorFn = Callable[["Instance", bool], Connector]


@dataclass(frozen=True)
class BackendSpec:
    """How emutui starts, validates and connects to one kind of backend.

    ``start(target, wd, name, paused)`` launches the emulator detached, records
    Handles in ``wd`` and returns them; the emulator is left running unless
    ``paused``. ``connector(instance, aux)`` makes an unconnected Connector;
    ``aux`` picks the auxiliary monitor (CLI, shell) over the primary (TUI) where
    there are two; a QEMU instance's QMP broker serves all of them on one.
    ``validate(target)`` raises ConfigError naming file, key and expectation.
    """

    name: str
    validate: Callable[[TargetConfig], None]
    connector: ConnectorFn
    start: StartFn | None = None  # None for daemons we attach to (vrtd)
    attach: Callable[[TargetConfig, Path, str], Awaitable[Handles]] | None = None
