"""JSON-RPC 2.0 over a byte stream, one message per line (JSON text has no raw newline).

Shared by ``emutui agent`` (the host) and the laptop's client. Values that JSON
cannot carry cross as tagged objects: bytes as ``{"$b64": ...}``; dataclasses
(Event, PropertyNode, MemoryRegion, InstanceStatus) as plain objects rebuilt by
the caller that knows which one it asked for.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
from typing import Any

from emutui.core import errors

PROTOCOL = 1  # bumped when a method changes meaning; checked in the hello exchange
MAX_LINE = 64 << 20  # one message; a 120x40 hex page is ~2 KiB, a log chunk 1 MiB

# JSON-RPC's own codes, and one for "an emutui error on the host".
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
APP_ERROR = -32000

# An EmutuiError raised on the host is raised again on the laptop with its own type.
ERROR_TYPES: dict[str, type[errors.EmutuiError]] = {
    cls.__name__: cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, errors.EmutuiError)
}


def to_wire(obj: Any) -> Any:
    if isinstance(obj, bytes | bytearray | memoryview):
        return {"$b64": base64.b64encode(bytes(obj)).decode("ascii")}
    if isinstance(obj, enum.Enum):
        return obj.value
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_wire(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_wire(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [to_wire(v) for v in obj]
    if isinstance(obj, float) and obj != obj:  # NaN has no JSON spelling
        return None
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    return str(obj)


def from_wire(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"$b64"} and isinstance(obj["$b64"], str):
            try:
                return base64.b64decode(obj["$b64"], validate=True)
            except ValueError as e:
                raise errors.ProtocolError(f"agent sent bad base64: {e}") from e
        return {k: from_wire(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_wire(v) for v in obj]
    return obj


def encode(msg: dict[str, Any]) -> bytes:
    return json.dumps(msg, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """One message, or ProtocolError naming what was wrong with it."""
    try:
        msg = json.loads(line)
    except (ValueError, RecursionError) as e:
        shown = line[:60].decode("utf-8", "replace")
        raise errors.ProtocolError(f"not JSON-RPC: {shown!r}") from e
    if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0":
        raise errors.ProtocolError("not a JSON-RPC 2.0 message")
    return msg


def request(mid: int, method: str, params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": mid, "method": method, "params": params}


def notification(method: str, params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params}


def result(mid: Any, value: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": mid, "result": to_wire(value)}


def error(mid: Any, code: int, message: str, etype: str | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if etype:
        err["data"] = {"type": etype}
    return {"jsonrpc": "2.0", "id": mid, "error": err}


def raise_error(err: Any, where: str) -> None:
    """Turn a JSON-RPC error object into the EmutuiError the host raised."""
    if not isinstance(err, dict):
        raise errors.ProtocolError(f"{where}: malformed error from the agent")
    message = str(err.get("message", "error"))
    data = err.get("data")
    etype = data.get("type") if isinstance(data, dict) else None
    cls = ERROR_TYPES.get(str(etype), errors.BackendError)
    raise cls(message)
