"""An async client for Renode's robot port (Robot Framework remote library over XML-RPC).

HTTP/1.0-style exchanges on asyncio streams, one connection per call, so the
event loop never blocks and a dead Renode is noticed at once (a refused or
reset connection) rather than after a socket timeout. The XML is marshalled
with the standard library. One call is in flight per client: Renode serves
requests one at a time on a single thread anyway (spec 1.3), and queuing here
keeps a slow keyword from piling connections onto it.
"""

from __future__ import annotations

import asyncio
import xmlrpc.client
from typing import Any
from xml.parsers.expat import ExpatError

from emutui.core.errors import BackendError, DisconnectedError, ProtocolError

MAX_REPLY = 32 * 1024 * 1024  # a peripherals tree or a memory dump is far smaller


class RobotFault(BackendError):
    """An XML-RPC fault: 1 = unknown keyword, 2 = arguments fit no overload (spec 1.3)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class UnknownKeywordError(RobotFault):
    pass


class KeywordArgumentsError(RobotFault):
    pass


class KeywordFailed(BackendError):
    """``{status: FAIL}``: the keyword ran and failed; the message is Renode's own."""

    def __init__(self, keyword: str, error: str, traceback: str = "") -> None:
        self.keyword = keyword
        self.error = error
        self.traceback = traceback
        super().__init__(clean_error(error))


def clean_error(error: str) -> str:
    """Renode's ``KeywordException: Could not execute command 'x': reason`` as one line."""
    lines = [ln.strip() for ln in error.splitlines() if ln.strip()]
    out = []
    for ln in lines:
        for prefix in ("KeywordException: ", "RecoverableException: "):
            if ln.startswith(prefix):
                ln = ln[len(prefix) :]
        out.append(ln)
    return "; ".join(out) or "keyword failed without a message"


class RobotClient:
    def __init__(
        self,
        host: str,
        port: int,
        timeout: float = 30.0,
        label: str = "renode",
        path: str | None = None,
    ) -> None:
        """A robot port at ``host:port`` (Renode's TCP), or at the unix socket ``path``
        (emutui's Renode stand-in, which other users cannot reach); same HTTP either way."""
        self.host = host
        self.port = port
        self.path = path
        self.timeout = timeout
        self.label = label
        self._lock: asyncio.Lock | None = None
        self._first = True

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    async def call(self, method: str, *params: Any, timeout: float | None = None) -> Any:
        """One XML-RPC call. The very first is retried once (renode#654)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            try:
                return await self._call(method, params, timeout)
            except DisconnectedError:
                if not self._first:
                    raise
                await asyncio.sleep(0.5)
                return await self._call(method, params, timeout)
            finally:
                self._first = False

    async def run_keyword(self, name: str, *args: Any, timeout: float | None = None) -> Any:
        """``run_keyword(name, [args])``: PASS gives ``return`` (None when absent), FAIL raises."""
        reply = await self.call("run_keyword", name, list(args), timeout=timeout)
        if not isinstance(reply, dict) or not isinstance(reply.get("status"), str):
            raise ProtocolError(
                f"{self.label}: run_keyword {name}: expected a result struct with a status, "
                f"got {type(reply).__name__}"
            )
        status = reply["status"]
        if status == "PASS":
            return reply.get("return")
        if status == "FAIL":
            error = reply.get("error")
            tb = reply.get("traceback")
            raise KeywordFailed(name, str(error or ""), str(tb or ""))
        raise ProtocolError(f"{self.label}: run_keyword {name}: unknown status {status!r}")

    async def execute(self, command: str, timeout: float | None = None) -> str:
        """``ExecuteCommand``: the Monitor's text output, its CR noise left for the caller."""
        out = await self.run_keyword("ExecuteCommand", command, timeout=timeout)
        if out is None:
            return ""
        if not isinstance(out, str):
            raise ProtocolError(
                f"{self.label}: ExecuteCommand {command!r}: expected text, got {type(out).__name__}"
            )
        return out

    async def _call(self, method: str, params: tuple[Any, ...], timeout: float | None) -> Any:
        body = xmlrpc.client.dumps(params, method, encoding="utf-8", allow_none=False).encode()
        request = (
            f"POST / HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"User-Agent: emutui\r\nContent-Type: text/xml\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body
        where = (
            f"{self.label} robot socket {self.path}"
            if self.path
            else f"{self.label} robot port {self.host}:{self.port}"
        )
        try:
            async with asyncio.timeout(timeout or self.timeout):
                if self.path:
                    reader, writer = await asyncio.open_unix_connection(self.path)
                else:
                    reader, writer = await asyncio.open_connection(self.host, self.port)
                try:
                    writer.write(request)
                    await writer.drain()
                    raw = await self._read_reply(reader, where)
                finally:
                    writer.close()
                    try:
                        await writer.wait_closed()
                    except OSError:
                        pass
        except TimeoutError as e:
            raise DisconnectedError(
                f"{where}: no answer to {method} within {timeout or self.timeout:g}s "
                f"(Renode serves one call at a time; is a blocking keyword running?)"
            ) from e
        except (
            ConnectionRefusedError,
            ConnectionResetError,
            BrokenPipeError,
            FileNotFoundError,
        ) as e:
            raise DisconnectedError(f"{where}: {e.strerror or e} (is Renode running?)") from e
        except OSError as e:
            raise DisconnectedError(f"{where}: {e.strerror or e}") from e
        return self._parse(raw, where)

    async def _read_reply(self, reader: asyncio.StreamReader, where: str) -> bytes:
        data = bytearray()
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            data += chunk
            if len(data) > MAX_REPLY:
                raise ProtocolError(f"{where}: reply larger than {MAX_REPLY} bytes")
            # Stop as soon as Content-Length says the body is complete (keep-alive servers).
            head, sep, rest = bytes(data).partition(b"\r\n\r\n")
            if sep:
                length = _content_length(head)
                if length is not None and len(rest) >= length:
                    break
        if not data:
            raise DisconnectedError(f"{where}: connection closed without a reply")
        return bytes(data)

    def _parse(self, raw: bytes, where: str) -> Any:
        head, sep, body = raw.partition(b"\r\n\r\n")
        if not sep:
            raise ProtocolError(f"{where}: malformed HTTP reply (no header end)")
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ProtocolError(f"{where}: malformed HTTP status line {status_line[:80]!r}")
        if parts[1] != "200":
            raise ProtocolError(f"{where}: HTTP {status_line[9:80]} (not a Renode robot port?)")
        length = _content_length(head)
        if length is not None:
            if len(body) < length:
                raise ProtocolError(f"{where}: truncated reply ({len(body)} of {length} bytes)")
            body = body[:length]
        try:
            result, _ = xmlrpc.client.loads(body)
        except xmlrpc.client.Fault as f:
            code = f.faultCode if isinstance(f.faultCode, int) else -1
            msg = str(f.faultString)
            if code == 1:
                raise UnknownKeywordError(code, f"{self.label}: {msg}") from None
            if code == 2:
                raise KeywordArgumentsError(code, f"{self.label}: {msg}") from None
            raise RobotFault(code, f"{self.label}: XML-RPC fault {code}: {msg}") from None
        except (ExpatError, xmlrpc.client.ResponseError, ValueError, TypeError, IndexError) as e:
            raise ProtocolError(f"{where}: malformed XML-RPC reply ({e})") from e
        if len(result) != 1:
            raise ProtocolError(f"{where}: XML-RPC reply holds {len(result)} values, expected 1")
        return result[0]


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                return int(value.strip())
            except ValueError:
                return None
    return None
