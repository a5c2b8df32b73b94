"""The qtest side channel: the one way to write guest-physical memory and MMIO.

A line protocol on a unix socket QEMU serves to one client at a time; we
connect per operation so the TUI and the CLI can take turns.
"""

from __future__ import annotations

import asyncio

from emutui.core.errors import BackendError, BusyError, DisconnectedError, ProtocolError


class QtestClient:
    def __init__(self, path: str) -> None:
        self.path = path
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> QtestClient:
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_unix_connection(self.path), 2.0
            )
        except (FileNotFoundError, ConnectionRefusedError) as e:
            raise DisconnectedError(f"qtest socket {self.path} is not answering") from e
        except TimeoutError as e:
            raise BusyError("qtest channel is held by another client") from e
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass

    async def cmd(self, line: str, timeout: float = 2.0) -> str:
        assert self._reader is not None and self._writer is not None
        self._writer.write(line.encode() + b"\n")
        try:
            await self._writer.drain()
            while True:
                raw = await asyncio.wait_for(self._reader.readline(), timeout)
                if not raw:
                    raise DisconnectedError("qtest channel closed")
                reply = raw.decode(errors="replace").strip()
                if reply.startswith("IRQ"):
                    continue  # asynchronous interrupt notices, not our reply
                break
        except TimeoutError as e:
            raise BusyError("qtest channel is held by another client (no reply)") from e
        except (ConnectionResetError, BrokenPipeError) as e:
            raise DisconnectedError("qtest channel closed") from e
        if reply.startswith("OK"):
            return reply[2:].strip()
        if reply.startswith("FAIL"):
            raise BackendError(f"qtest: {reply[4:].strip() or 'command failed'}")
        raise ProtocolError(f"qtest: unexpected reply {reply[:80]!r}")

    async def write(self, addr: int, data: bytes) -> None:
        """Aligned 32-bit words as writel (MMIO wants whole words), the rest as writeb."""
        i = 0
        while i < len(data):
            a = addr + i
            if a % 4 == 0 and len(data) - i >= 4:
                value = int.from_bytes(data[i : i + 4], "little")
                await self.cmd(f"writel 0x{a:x} 0x{value:x}")
                i += 4
            else:
                await self.cmd(f"writeb 0x{a:x} 0x{data[i]:x}")
                i += 1

    async def readl(self, addr: int) -> int:
        reply = await self.cmd(f"readl 0x{addr:x}")
        try:
            return int(reply, 16)
        except ValueError as e:
            raise ProtocolError(f"qtest: bad readl reply {reply!r}") from e
