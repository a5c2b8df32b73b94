"""What the shell sends and receives on the QMP socket: ``-v`` shows it, ``-l FILE`` logs it.

The tap wraps the client's own send and receive (qemu.qmp's ``_do_send`` and
``_do_recv``), so it sees the bytes' worth of every message: QEMU's greeting,
``qmp_capabilities``, each command with its id, replies and events, whether the
socket is QEMU's or a broker's. No prompt_toolkit here: ``-c`` uses it too.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

Sink = Callable[[str, str], None]  # (direction "->" or "<-", JSON text)


SHOW_MAX = 2000  # longer messages (the 200 KB QMP schema) are cut on the terminal


def stderr_sink(direction: str, text: str) -> None:
    if len(text) > SHOW_MAX:
        text = f"{text[:SHOW_MAX]}… ({len(text)} bytes; -l logs it whole)"
    print(f"{direction} {text}", file=sys.stderr, flush=True)


class Wire:
    """Records each message; ``sink`` prints it (``-v``), ``log`` appends it as JSON lines."""

    def __init__(self, verbose: bool = False, log: Path | None = None) -> None:
        self.sink: Sink | None = stderr_sink if verbose else None
        self.log: IO[str] | None = None
        if log is not None:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self.log = os.fdopen(fd, "a", encoding="utf-8", buffering=1)

    def tap(self, conn: Any) -> bool:
        """Wrap the connector's QMP client; False when it has none (Renode, vrtd)."""
        client = getattr(conn, "client", None)
        send = getattr(client, "_do_send", None)
        recv = getattr(client, "_do_recv", None)
        if send is None or recv is None:
            return False

        def do_send(msg: Any) -> None:
            self.record("->", msg)
            send(msg)

        async def do_recv() -> Any:
            msg = await recv()
            self.record("<-", msg)
            return msg

        client._do_send = do_send  # type: ignore[union-attr]
        client._do_recv = do_recv  # type: ignore[union-attr]
        return True

    def record(self, direction: str, msg: Any) -> None:
        try:
            text = bytes(msg).decode(errors="replace").strip()
        except Exception:  # not a qemu.qmp Message: whatever it prints as
            text = str(msg)
        if self.sink is not None:
            self.sink(direction, text)
        if self.log is not None:
            try:
                obj: Any = json.loads(text)
            except ValueError:
                obj = text
            key = "send" if direction == "->" else "recv"
            self._write({"time": round(time.time(), 6), key: obj})

    def note(self, line: str) -> None:
        """A line the user typed (or gave with -c), so the log reads as the session."""
        if self.log is not None:
            self._write({"time": round(time.time(), 6), "input": line})

    def _write(self, obj: dict[str, Any]) -> None:
        assert self.log is not None
        try:
            self.log.write(json.dumps(obj, default=str) + "\n")
        except (OSError, ValueError):
            self.log = None  # a full disk must not end the session

    def close(self) -> None:
        if self.log is not None:
            try:
                self.log.close()
            except OSError:
                pass
            self.log = None
