"""A gdb stub for an instance that has none yet: HMP ``gdbserver`` on an attached
QEMU, ``machine StartGdbServer PORT`` on Renode (both over their control channel).
New QEMU instances get theirs on the command line (``-gdb chardev:gdb``)."""

from __future__ import annotations

import socket

from emutui.core.errors import BackendError, UnsupportedError
from emutui.core.handles import Channel
from emutui.core.instance import Instance
from emutui.core.paths import socket_path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def ensure_stub(inst: Instance) -> Instance:
    """``inst`` with a ``gdb`` channel, asking the emulator for a stub when needed."""
    h = inst.handles
    if h is None or "gdb" in h.channels:
        return inst
    from emutui.control import connected

    if h.backend == "qemu":
        path = socket_path(inst.wd, "gdb.sock")
        async with connected(inst, aux=True) as conn:
            line = f"gdbserver unix:{path},server=on,wait=off"
            out = str(await conn.hmp(line))  # type: ignore[attr-defined]
        if "Waiting for gdb connection" not in out and out.strip():
            raise BackendError(f"{inst.name}: gdbserver: {out.strip().splitlines()[0]}")
        channel = Channel(role="gdb", kind="unix", path=str(path))
    elif h.backend == "renode":
        port = _free_port()
        async with connected(inst, aux=True) as conn:
            out = str(await conn.command(f"machine StartGdbServer {port}") or "")
        if "error" in out.lower():
            raise BackendError(f"{inst.name}: StartGdbServer: {out.strip().splitlines()[0]}")
        channel = Channel(role="gdb", kind="tcp", host="127.0.0.1", port=port)
    else:
        raise UnsupportedError(f"{inst.name}: {h.backend} has no CPU to debug")
    with inst.lock():
        fresh = Instance.load(inst.wd)
        if fresh.handles is None:
            raise BackendError(f"{inst.name}: handles.json vanished")
        fresh.handles.channels["gdb"] = channel
        fresh.handles.save(inst.wd)
    return fresh
