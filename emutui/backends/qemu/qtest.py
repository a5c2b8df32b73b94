"""The qtest side channel: MMIO reads at the wire's speed, and memory writes.

A line protocol on a unix socket QEMU serves to one client at a time; we
connect per operation so the TUI and the CLI can take turns (a second client
waits in the listen queue until the first leaves, which takes milliseconds).

Reads are pipelined: many ``readl``/``readq`` lines go out before the replies
are read, and QEMU answers them in order (one ``OK 0x…`` per request). QEMU
may interleave asynchronous ``IRQ raise N`` / ``IRQ lower N`` lines (only after
an ``irq_intercept_*``, which we never send, but a shared socket must not
confuse us); they are skipped. Every operation has a deadline: a QEMU that is
stopped (SIGSTOP) or a channel held by someone else is reported, never a hang.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import struct
from pathlib import Path

from emutui.core.errors import BackendError, BusyError, DisconnectedError, ProtocolError

DEADLINE = 2.0  # seconds for one operation's first reply
LOCK_WAIT = 5.0  # seconds to wait for another emutui client to finish with the channel
PER_REQUEST = 100e-6  # added to the deadline per pipelined request (QEMU needs ~5 µs)
WINDOW = 1024  # requests in flight: bounded by what the socket buffers hold both ways
_CMD = {4: "readl", 8: "readq", 2: "readw", 1: "readb"}
_FMT = {4: "I", 8: "Q", 2: "H", 1: "B"}


class QtestClient:
    def __init__(self, path: str, deadline: float = DEADLINE) -> None:
        self.path = path
        self.deadline = deadline
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._buf = b""
        self._lines: list[bytes] = []
        self._lock_fd: int | None = None

    async def __aenter__(self) -> QtestClient:
        await self._lock()
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_unix_connection(self.path), self.deadline
            )
        except (FileNotFoundError, ConnectionRefusedError) as e:
            self._unlock()
            raise DisconnectedError(f"qtest socket {self.path} is not answering") from e
        except TimeoutError as e:
            self._unlock()
            raise BusyError("qtest channel is held by another client") from e
        except OSError as e:
            self._unlock()
            raise DisconnectedError(f"qtest socket {self.path}: {e.strerror or e}") from e
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
                try:
                    await self._writer.wait_closed()
                except OSError:
                    pass
        finally:
            self._unlock()

    # -- one client at a time ----------------------------------------------------------

    async def _lock(self) -> None:
        """Take ``qtest.lock`` beside the socket: emutui clients queue here, not in
        QEMU's listen queue. QEMU serves one qtest client and a backlog of one; a
        third client's connect overflows it, and asyncio then reads from a socket
        that never connected (EINVAL). Where no lock file can be made (a socket
        in someone else's directory, attached), go without."""
        self._lock_fd = None
        try:
            fd = os.open(Path(self.path).with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return
        loop = asyncio.get_running_loop()
        until = loop.time() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._lock_fd = fd
                return
            except BlockingIOError:
                if loop.time() > until:
                    os.close(fd)
                    raise BusyError(
                        f"qtest channel busy for {LOCK_WAIT:.0f} s (another emutui client)"
                    ) from None
                await asyncio.sleep(0.002)
            except OSError:
                os.close(fd)
                return

    def _unlock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock

    # -- the wire ----------------------------------------------------------------------

    async def _replies(self, n: int) -> list[bytes]:
        """The next ``n`` reply lines, IRQ notices skipped, read in large chunks."""
        assert self._reader is not None
        out: list[bytes] = []
        while len(out) < n:
            if not self._lines:
                chunk = await self._reader.read(1 << 16)
                if not chunk:
                    raise DisconnectedError("qtest channel closed")
                parts = (self._buf + chunk).split(b"\n")
                self._buf = parts.pop()
                self._lines = parts
                self._lines.reverse()  # pop() from the end is cheap
                continue
            line = self._lines.pop()
            if line.startswith(b"IRQ"):
                continue  # asynchronous interrupt notice, not a reply
            out.append(line)
        return out

    async def _run(self, lines: list[str]) -> list[bytes]:
        """Send every line (pipelined, WINDOW in flight), return the replies in order."""
        assert self._writer is not None
        timeout = self.deadline + PER_REQUEST * len(lines)
        replies: list[bytes] = []
        try:
            async with asyncio.timeout(timeout):
                chunks = [lines[i : i + WINDOW] for i in range(0, len(lines), WINDOW)]
                if chunks:
                    self._writer.write(("\n".join(chunks[0]) + "\n").encode())
                for i, chunk in enumerate(chunks):
                    if i + 1 < len(chunks):  # keep the next window on the wire while we read
                        self._writer.write(("\n".join(chunks[i + 1]) + "\n").encode())
                    replies += await self._replies(len(chunk))
                await self._writer.drain()
        except TimeoutError as e:
            raise BusyError(
                f"qtest: no reply within {timeout:.1f} s "
                "(QEMU stopped, or another client holds the channel)"
            ) from e
        except (ConnectionResetError, BrokenPipeError) as e:
            raise DisconnectedError("qtest channel closed") from e
        except OSError as e:
            raise DisconnectedError(f"qtest channel: {e.strerror or e}") from e
        return replies

    @staticmethod
    def _ok(reply: bytes) -> str:
        text = reply.decode(errors="replace").strip()
        if text.startswith("OK"):
            return text[2:].strip()
        if text.startswith("FAIL"):
            raise BackendError(f"qtest: {text[4:].strip() or 'command failed'}")
        raise ProtocolError(f"qtest: unexpected reply {text[:80]!r}")

    async def cmd(self, line: str) -> str:
        return self._ok((await self._run([line]))[0])

    # -- operations --------------------------------------------------------------------

    async def write(self, addr: int, data: bytes) -> None:
        """Aligned 32-bit words as writel (MMIO wants whole words), the rest as writeb."""
        lines: list[str] = []
        i = 0
        while i < len(data):
            a = addr + i
            if a % 4 == 0 and len(data) - i >= 4:
                value = int.from_bytes(data[i : i + 4], "little")
                lines.append(f"writel 0x{a:x} 0x{value:x}")
                i += 4
            else:
                lines.append(f"writeb 0x{a:x} 0x{data[i]:x}")
                i += 1
        for reply in await self._run(lines):
            self._ok(reply)

    async def read_words(self, addr: int, count: int, width: int = 4) -> bytes:
        """``count`` accesses of ``width`` bytes from ``addr`` on, little-endian, pipelined."""
        op = _CMD.get(width)
        if op is None:
            raise ValueError(f"no qtest access of {width} bytes")
        lines = [f"{op} 0x{a:x}" for a in range(addr, addr + count * width, width)]
        values: list[int] = []
        for reply in await self._run(lines):
            if reply.startswith(b"OK "):
                try:
                    values.append(int(reply[3:], 16))
                    continue
                except ValueError:
                    pass
            value = self._ok(reply)  # FAIL or garbage: its one-line error
            raise ProtocolError(f"qtest: bad {op} reply {value[:40]!r}")
        try:
            return struct.pack(f"<{len(values)}{_FMT[width]}", *values)
        except struct.error as e:
            raise ProtocolError(f"qtest: {op} value out of range") from e

    async def readl(self, addr: int) -> int:
        return int.from_bytes(await self.read_words(addr, 1, 4), "little")
