"""Adopt a QEMU emutui did not start (a script's, pw_emu's, labgrid's, one started by hand).

``emutui attach qemu NAME --qmp PATH|HOST:PORT [--serial CH=PATH|HOST:PORT ...]
[--qtest PATH]`` records an instance whose QMP monitor is served through a QMP
broker (so every emutui client and QEMU's own tools share it) and whose serial
ports are held by a serial hub (so everything the guest prints from now on is
logged). QEMU's pid, when the monitor is a unix socket, is its socket peer's
(SO_PEERCRED): liveness only, never a target for a signal. ``stop`` and
``detach`` end the broker and the hub and leave QEMU running.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from pathlib import Path

from emutui.core import proc, qmpbroker, serialhub
from emutui.core.errors import BackendError, DisconnectedError, EmutuiError
from emutui.core.handles import Channel, Handles
from emutui.core.paths import socket_path
from emutui.core.rotating import DEFAULT_GENERATIONS, DEFAULT_MAX_BYTES

PROBE_TIMEOUT = 3.0


def parse_address(address: str) -> tuple[str, str | None, int | None]:
    """``PATH`` → (unix path, None, None); ``HOST:PORT`` → ("", host, port)."""
    host, sep, port = address.rpartition(":")
    if sep and host and port.isdigit() and "/" not in address:
        return "", host.strip("[]"), int(port)
    return str(Path(address).expanduser().absolute()), None, None


def upstream_of(address: str) -> str:
    """The form the broker and the hub take: a unix path or ``tcp:HOST:PORT``."""
    path, host, port = parse_address(address)
    return path if path else f"tcp:{host}:{port}"


async def probe_qmp(address: str) -> int | None:
    """Connect, read the greeting, leave; QEMU's pid for a unix socket (else None).

    A QEMU monitor serves one client: one someone else holds never greets us.
    """
    path, host, port = parse_address(address)
    try:
        if path:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(path), PROBE_TIMEOUT
            )
        else:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), PROBE_TIMEOUT
            )
    except (OSError, TimeoutError) as e:
        why = getattr(e, "strerror", None) or "no connection"
        raise DisconnectedError(f"QMP socket {address}: {why}") from None
    try:
        try:
            line = await asyncio.wait_for(reader.readline(), PROBE_TIMEOUT)
        except TimeoutError:
            raise DisconnectedError(
                f"QMP socket {address}: no greeting within {PROBE_TIMEOUT:g} s "
                "(another client holds that monitor? QEMU serves one client per -qmp)"
            ) from None
        except (OSError, ValueError) as e:
            raise DisconnectedError(f"QMP socket {address}: {e}") from None
        if b'"QMP"' not in line:
            raise BackendError(f"{address} is not a QMP monitor (it said {line[:60]!r})")
        pid = None
        if path:
            sock = writer.get_extra_info("socket")
            with contextlib.suppress(OSError, AttributeError):
                creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
                pid = struct.unpack("3i", creds)[0] or None
        return pid
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def make_handles(
    name: str,
    wd: Path,
    qmp: str,
    serials: dict[str, str],
    qtest: str | None,
    peer_pid: int | None,
) -> Handles:
    channels: dict[str, Channel] = {"qmp": qmpbroker.channel_for(wd, upstream_of(qmp))}
    for ch, address in serials.items():
        channels[ch] = Channel(
            role="serial",
            kind="unix",
            path=str(socket_path(wd, f"serial-{ch}.sock")),
            log=str(wd / f"serial-{ch}.log"),
            upstream=upstream_of(address),
        )
    if qtest:
        channels["qtest"] = Channel(role="qtest", kind="unix", path=upstream_of(qtest))
    options: dict[str, object] = {
        "attached": True,
        "qmp": qmp,
        "qtest": qtest is not None,
        "log_max_bytes": DEFAULT_MAX_BYTES,
        "log_generations": DEFAULT_GENERATIONS,
    }
    if peer_pid:
        options["peer_pid"] = peer_pid
        options["peer_pid_start"] = proc.start_time(peer_pid)
    return Handles(name=name, backend="qemu", target="attached", channels=channels, options=options)


def parse_serials(specs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for spec in specs:
        ch, eq, address = spec.partition("=")
        if not eq or not address:
            raise EmutuiError(f"--serial {spec!r}: expected CHANNEL=PATH or CHANNEL=HOST:PORT")
        if not ch.replace("-", "").replace("_", "").isalnum() or not ch.isascii():
            raise EmutuiError(f"--serial {spec!r}: channel names are letters, digits, '-', '_'")
        if ch in out or ch in ("qmp", "qmp-aux", "qtest"):
            raise EmutuiError(f"--serial {spec!r}: channel {ch!r} given twice or reserved")
        out[ch] = address
    return out


async def attach(
    wd: Path, name: str, qmp: str, serials: dict[str, str], qtest: str | None
) -> Handles:
    """Probe the monitor, then start the broker and the hub and record the instance in ``wd``.

    Raises with nothing left running when the monitor does not greet or a helper fails.
    """
    if qtest and not parse_address(qtest)[0]:
        raise EmutuiError("--qtest: a unix socket path (QEMU's -qtest unix:PATH,server=on)")
    peer = await probe_qmp(qmp)
    handles = make_handles(name, wd, qmp, serials, qtest, peer)
    hub = serialhub.launch_for(handles, wd)  # its supervisor runs the QMP broker too
    broker = qmpbroker.supervised_spec(handles, wd)
    handles.save(wd)
    try:
        await serialhub.wait_launched(handles, wd, hub)
        await qmpbroker.wait_launched(handles, wd, broker)
    except (EmutuiError, OSError):
        serialhub.stop_helpers(handles)
        raise
    return handles
