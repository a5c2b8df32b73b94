"""A lingering per-user process that keeps each host's agent running between CLI commands.

``emutui ls`` over several hosts would otherwise start a Python on every host for
every listing. Like OpenSSH's ControlPersist, the first listing starts this
process (detached, on a 0600 socket in the private directory, keyed by the
hosts' configuration); it holds one ``emutui agent`` per host on the hosts'
ControlMasters and answers ``ls`` for all of them in parallel, so a warm listing
costs one round trip to each host plus the host's own listing work. It exits
after ``IDLE`` seconds without a request. Speaks JSON-RPC 2.0, one message per line.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from emutui.backends.remote import rpc
from emutui.backends.remote.ssh import HostConfig, private_dir
from emutui.core.errors import DisconnectedError, EmutuiError

IDLE = float(os.environ.get("EMUTUI_MUX_IDLE", "300"))  # seconds unused before it leaves
START_WAIT = 5.0  # how long a client waits for a mux it started to listen


def key_for(hosts: list[HostConfig]) -> str:
    text = json.dumps([asdict(h) for h in hosts], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def paths_for(hosts: list[HostConfig]) -> tuple[Path, Path, Path]:
    d = private_dir()
    k = key_for(hosts)
    return d / f"mux-{k}.sock", d / f"mux-{k}.json", d / f"mux-{k}.log"


# -- the client (a CLI command) ---------------------------------------------------------


async def _request(sock: Path, method: str, timeout: float) -> Any:
    r, w = await asyncio.wait_for(asyncio.open_unix_connection(str(sock), limit=rpc.MAX_LINE), 2)
    try:
        w.write(rpc.encode(rpc.request(1, method, {})))
        await w.drain()
        line = await asyncio.wait_for(r.readline(), timeout)
    finally:
        w.close()
    msg = rpc.decode(line) if line else None
    if msg is None:
        raise DisconnectedError("the remote-host helper closed the connection")
    if "error" in msg:
        rpc.raise_error(msg["error"], "remote-host helper")
    return rpc.from_wire(msg.get("result"))


async def listing(hosts: list[HostConfig]) -> dict[str, Any]:
    """{host: rows (a list) or why there are none (a string)}, through the mux."""
    sock, spec, log = paths_for(hosts)
    timeout = max(h.connect_timeout for h in hosts) + 15
    try:
        return dict(await _request(sock, "ls", timeout))
    except (OSError, TimeoutError, EmutuiError):
        pass
    # None running (or a dead one's socket): start one, then ask it.
    from emutui.core import proc

    fd = os.open(spec, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump([asdict(h) for h in hosts], f)
    proc.spawn_detached(
        [sys.executable, "-m", "emutui.backends.remote.mux", str(spec), str(sock)],
        private_dir(),
        log,
    )
    deadline = time.monotonic() + START_WAIT
    while time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        if sock.exists():
            break
    return dict(await _request(sock, "ls", timeout))


# -- the mux itself -------------------------------------------------------------------


async def serve(spec: Path, sock: Path) -> int:
    from emutui.backends.remote.connector import RemoteHosts

    hosts = [HostConfig(**h) for h in json.loads(spec.read_text())]
    remote = RemoteHosts(hosts, private_dir() / "mirror")
    last = time.monotonic()
    busy = 0

    async def ls() -> dict[str, Any]:
        async def one(h: Any) -> tuple[str, Any]:
            try:
                rows = await h.call("ls", timeout=h.cfg.connect_timeout + 5)
            except EmutuiError as e:
                return h.name, str(e).removeprefix(f"{h.name}: ")
            return h.name, rows

        return dict(await asyncio.gather(*(one(h) for h in remote.hosts.values())))

    async def client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        nonlocal last, busy
        busy += 1
        try:
            line = await r.readline()
            try:
                msg = rpc.decode(line)
                if msg.get("method") != "ls":
                    reply = rpc.error(msg.get("id"), rpc.METHOD_NOT_FOUND, "only ls")
                else:
                    reply = rpc.result(msg.get("id"), await ls())
            except EmutuiError as e:
                reply = rpc.error(None, rpc.PARSE_ERROR, str(e))
            w.write(rpc.encode(reply))
            await w.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            busy -= 1
            last = time.monotonic()
            w.close()

    # Bind under a temporary name and rename: the socket exists only once it listens.
    tmp = sock.with_name(f".{sock.name}.{os.getpid()}")
    old = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(client, path=str(tmp), limit=rpc.MAX_LINE)
    finally:
        os.umask(old)
    os.replace(tmp, sock)
    ino = os.stat(sock).st_ino
    try:
        while busy or time.monotonic() - last < IDLE:
            await asyncio.sleep(1.0)
            if not sock.exists() or not spec.exists():
                break  # removed (or replaced by another mux): leave
    finally:
        server.close()
        with contextlib.suppress(OSError):
            if os.stat(sock).st_ino == ino:  # ours, not a successor's
                sock.unlink()
        await remote.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(serve(Path(sys.argv[1]), Path(sys.argv[2]))))
