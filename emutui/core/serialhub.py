"""The serial hub: one small process per instance that owns its serial ports.

Why a process of its own: a QEMU chardev socket serves exactly one client, and
QEMU's own ``logfile=`` grows without bound. The hub is that one client from
before the guest's first instruction until QEMU exits, so

- every byte the guest prints lands in ``serial-<ch>.log`` even while no
  emutui runs, rotated by size so a flooding guest cannot fill the disk;
- any number of clients (the TUI console, ``emutui term``, a test) attach to
  ``serial-<ch>.hub.sock`` at once: output fans out to all, input from any
  goes to the guest;
- a slow client is dropped at a high-water mark instead of stalling the guest
  or growing memory (it reattaches and replays from the log).

The emulator stays the server on its own sockets, so a dead hub can simply be
restarted; it reconnects to the ports. The hub runs under a supervisor
(``emutui.core.supervisor``) that restarts it at once when it dies, with or
without a client, and if the supervisor is gone too the next client restarts
both (``ensure_hub``). What the guest printed meanwhile is lost (the emulator
drops it), so the new hub writes the gap into the log, as
``[emutui: capture gap 12:01:02.123 to 12:01:03.050 (0.927 s), serialhub restarted]``, and
appends it to ``capture-gaps.jsonl``, which ``emutui ls`` counts.

Run as ``python -m emutui.core.serialhub SPEC.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from emutui.core import proc, qmpbroker, supervisor
from emutui.core.errors import BackendError
from emutui.core.handles import Handles
from emutui.core.instance import option_int
from emutui.core.rotating import DEFAULT_GENERATIONS, DEFAULT_MAX_BYTES
from emutui.core.timeindex import TimedLog

CLIENT_HIGH_WATER = 16 * 1024 * 1024
UPSTREAM_CONNECT_TIMEOUT = 10.0
HUB_LOG = "serialhub.log"
GAPS_FILE = "capture-gaps.jsonl"
SUPERVISOR_STATE = "serialhub.pids.json"


@dataclass
class PortSpec:
    channel: str
    upstream: str  # the emulator's socket: a unix path, or "tcp:HOST:PORT"
    listen: str  # the hub's socket for clients
    log: str


@dataclass
class HubSpec:
    ports: list[PortSpec]
    max_bytes: int = DEFAULT_MAX_BYTES
    generations: int = DEFAULT_GENERATIONS
    emulator_pid: int | None = None
    emulator_start: int | None = None

    def save(self, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> HubSpec:
        obj = json.loads(path.read_text())
        ports = [PortSpec(**p) for p in obj.pop("ports")]
        return cls(ports=ports, **obj)


class Port:
    def __init__(self, spec: PortSpec, hub: HubSpec) -> None:
        self.spec = spec
        # TimedLog: the log plus a side index of arrival times (core/timeindex.py)
        self.log = TimedLog(Path(spec.log), hub.max_bytes, hub.generations)
        self.clients: set[asyncio.StreamWriter] = set()
        self.up_writer: asyncio.StreamWriter | None = None
        self.done = asyncio.Event()

    async def run(self) -> None:
        up_reader, self.up_writer = await self._connect_upstream()
        gap = os.environ.get(supervisor.GAP_ENV)
        if gap:
            self._record_gap(gap)
        watch = None
        if self.spec.upstream.startswith("tcp:"):
            watch = asyncio.create_task(self._watch_tcp_peers())
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.spec.listen)
        server = await asyncio.start_unix_server(self._client, path=self.spec.listen)
        os.chmod(self.spec.listen, 0o600)
        try:
            while True:
                try:
                    data = await up_reader.read(65536)
                except (ConnectionResetError, BrokenPipeError):
                    data = b""
                if not data:
                    break
                # The log first: it is the record, clients are a view of it.
                self.log.write(data)
                for w in list(self.clients):
                    if w.transport.get_write_buffer_size() > CLIENT_HIGH_WATER:
                        _note(f"{self.spec.channel}: dropping a client that stopped reading")
                        self._drop(w)
                        continue
                    w.write(data)
        finally:
            if watch is not None:
                watch.cancel()
            server.close()
            for w in list(self.clients):
                self._drop(w)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.spec.listen)
            self.log.close()
            self.done.set()

    async def _connect_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        deadline = time.monotonic() + UPSTREAM_CONNECT_TIMEOUT
        while True:
            try:
                if self.spec.upstream.startswith("tcp:"):
                    # Renode's UART socket terminals are TCP ("tcp:HOST:PORT").
                    host, _, port = self.spec.upstream[4:].rpartition(":")
                    return await asyncio.open_connection(host, int(port), limit=1 << 20)
                return await asyncio.open_unix_connection(self.spec.upstream, limit=1 << 20)
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.01)

    async def _watch_tcp_peers(self) -> None:
        """A real Renode's terminal is TCP: any local user can connect to it, and the
        one it serves gets the UART. Say so, in the log where the owner reads the
        UART, whenever another connection to that port shows up (/proc/net/tcp)."""
        assert self.up_writer is not None
        sock = self.up_writer.get_extra_info("sockname")
        own = int(sock[1]) if isinstance(sock, tuple) and len(sock) > 1 else -1
        port = int(self.spec.upstream.rpartition(":")[2])
        seen: set[int] = set()
        while True:
            for local_port, uid in tcp_clients_of(port):
                if local_port == own or local_port in seen:
                    continue
                seen.add(local_port)
                msg = (
                    f"another connection (uid {uid}) to this UART's TCP terminal "
                    f"127.0.0.1:{port}: it may get what is typed or printed here"
                )
                self.log.write(f"\r\n[emutui: warning: {msg}]\r\n".encode())
                _note(f"{self.spec.channel}: {msg}")
            await asyncio.sleep(TCP_WATCH_PERIOD)

    def _record_gap(self, since_text: str) -> None:
        """The hub before this one died: say in the log (and the gaps file) what is missing."""
        try:
            since = float(since_text)
        except ValueError:
            return
        why = os.environ.get(GAP_WHY_ENV, "hub restarted")
        now = time.time()
        self.log.write(gap_marker(since, now, why))
        rec = {"channel": self.spec.channel, "from": since, "to": now, "why": why}
        gaps = Path(self.spec.log).parent / GAPS_FILE
        fd = os.open(gaps, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (json.dumps(rec) + "\n").encode())
        finally:
            os.close(fd)
        _note(f"{self.spec.channel}: capture gap of {now - since:.3f} s recorded ({why})")

    def _drop(self, w: asyncio.StreamWriter) -> None:
        self.clients.discard(w)
        w.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.clients.add(writer)
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    break
                if self.up_writer is not None:
                    self.up_writer.write(data)
                    await self.up_writer.drain()
        except (ConnectionResetError, BrokenPipeError):
            pass
        finally:
            self._drop(writer)


GAP_WHY_ENV = supervisor.GAP_WHY_ENV
TCP_WATCH_PERIOD = 1.0


def tcp_clients_of(port: int) -> list[tuple[int, int]]:
    """(local port, uid) of every established loopback connection to ``port``."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) < 8 or parts[3] != "01":  # 01: ESTABLISHED
                continue
            try:
                local_port = int(parts[1].rpartition(":")[2], 16)
                rem_port = int(parts[2].rpartition(":")[2], 16)
                uid = int(parts[7])
            except ValueError:
                continue
            if rem_port == port:
                out.append((local_port, uid))
    return out


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t % 1 * 1000):03d}"


def gap_marker(since: float, until: float, why: str) -> bytes:
    """The line a restarted hub writes where the log has a hole (plain text, no escapes)."""
    span = f"{_clock(since)} to {_clock(until)} ({max(0.0, until - since):.3f} s)"
    return f"\r\n[emutui: capture gap {span}, {why}]\r\n".encode()


def count_gaps(wd: Path) -> int:
    """How many capture gaps the hubs of the instance in ``wd`` recorded."""
    try:
        with open(wd / GAPS_FILE, "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def _note(msg: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} serialhub: {msg}", file=sys.stderr, flush=True)


async def serve(spec: HubSpec) -> int:
    ports = [Port(p, spec) for p in spec.ports]
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(p.run()) for p in ports]

    # Every port ends when the emulator closes it (or fails); the hub ends with the
    # last of them, or at once on SIGTERM.
    async def all_ports() -> None:
        await asyncio.gather(*tasks, return_exceptions=True)

    ports_done = asyncio.create_task(all_ports())
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait([ports_done, waiter], return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    for t in tasks:
        t.cancel()
    await asyncio.gather(ports_done, return_exceptions=True)
    for t in tasks:
        if t.done() and not t.cancelled() and t.exception() is not None:
            _note(f"port failed: {t.exception()!r}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    spec = HubSpec.load(Path(args[0]))
    _note(f"serving {', '.join(p.channel for p in spec.ports)}")
    return asyncio.run(serve(spec))


# -- used by launchers and connectors ----------------------------------------------


def spec_for(handles: Handles) -> HubSpec:
    ports = [
        PortSpec(channel=name, upstream=ch.upstream, listen=ch.path, log=ch.log)
        for name, ch in handles.channels.items()
        if ch.role == "serial" and ch.upstream and ch.path and ch.log
    ]
    return HubSpec(
        ports=ports,
        max_bytes=option_int(handles.options, "log_max_bytes", DEFAULT_MAX_BYTES),
        generations=option_int(handles.options, "log_generations", DEFAULT_GENERATIONS),
        # an attached QEMU's pid is its monitor's socket peer: watched, never signalled
        emulator_pid=handles.pid or option_int(handles.options, "peer_pid", 0) or None,
        emulator_start=handles.pid_start
        or option_int(handles.options, "peer_pid_start", 0)
        or None,
    )


def launch_for(
    handles: Handles, wd: Path, gap_since: float | None = None, why: str = ""
) -> HubSpec | None:
    """Spawn the hub (under its supervisor) for ``handles``' serial channels; record it.

    It may be launched together with the emulator: it retries its upstream
    sockets until they exist, so its interpreter start overlaps the emulator's.
    """
    spec = spec_for(handles)
    # The QMP broker runs under the same supervisor: killed with no client around,
    # it is restarted at once instead of by the next client (QEMU drops events meanwhile).
    broker = qmpbroker.child_for(handles, wd)
    if not spec.ports and broker is None:
        return None
    for port in spec.ports:  # a killed hub leaves its sockets; "ready" means new ones
        with contextlib.suppress(FileNotFoundError):
            os.unlink(port.listen)
    pid, start = spawn(spec, wd, gap_since, why, [broker] if broker else [])
    handles.options.setdefault("helpers", {})["serialhub"] = [pid, start]
    return spec if spec.ports else None


async def wait_launched(
    handles: Handles,
    wd: Path,
    spec: HubSpec | None,
    emulator_gone: Callable[[], str | None] | None = None,
) -> None:
    """Returns once the hub holds every port; raises BackendError if it died trying.

    ``emulator_gone`` returns a message once the emulator has exited: that message
    (the emulator's own last words) is raised at once instead of waiting for a hub
    that can no longer connect.
    """
    if spec is None:
        return
    pid = int(handles.options["helpers"]["serialhub"][0])
    if not await wait_ready(spec, pid, emulator_gone=emulator_gone):
        why = emulator_gone() if emulator_gone else None
        if why:
            raise BackendError(why)
        tail = (wd / HUB_LOG).read_text(errors="replace").strip().splitlines()[-2:]
        raise BackendError("serial hub did not start: " + " | ".join(tail))


async def start_for(
    handles: Handles, wd: Path, gap_since: float | None = None, why: str = ""
) -> None:
    """Spawn the hub for ``handles``' serial channels, record it, wait until it is ready."""
    await wait_launched(handles, wd, launch_for(handles, wd, gap_since, why))


def hub_alive(handles: Handles, wd: Path) -> bool:
    """The supervisor, or failing that the hub it last started, is running."""
    rec = (handles.options.get("helpers") or {}).get("serialhub") or [None, None]
    if isinstance(rec, list) and len(rec) == 2 and proc.is_alive(rec[0], rec[1]):
        return True
    # The hub itself, not any child: the supervisor's QMP broker outlives a killed
    # supervisor just as well, and says nothing about the serial ports.
    ids = supervisor.read_state(wd / SUPERVISOR_STATE).get("serialhub") or []
    return len(ids) == 2 and proc.is_alive(ids[0], ids[1])


async def ensure_hub(handles: Handles, wd: Path) -> bool:
    """Restart a dead hub and its supervisor (both killed); True when one was started.

    Output the guest printed while no hub ran is gone: the emulator drops it. The
    new hub records the gap, from the last write to the log on.
    """
    if hub_alive(handles, wd):
        return False
    if not proc.is_alive(handles.pid, handles.pid_start):
        return False
    since = time.time()
    for ch in handles.channels.values():
        if ch.role == "serial" and ch.log:
            with contextlib.suppress(OSError):
                since = min(since, os.stat(ch.log).st_mtime)
    with open(wd / HUB_LOG, "a") as log:
        log.write(
            f"{time.strftime('%Y-%m-%dT%H:%M:%S')} serialhub: found dead with its supervisor, "
            "restarting; what the guest printed while no hub ran was not captured\n"
        )
    await start_for(handles, wd, since, "hub and supervisor restarted by a client")
    handles.save(wd)
    return True


def stop_helpers(handles: Handles, wd: Path | None = None) -> None:
    """SIGTERM (then SIGKILL) every helper process recorded in ``handles``, then (with
    ``wd``) the children the supervisor last recorded: a supervisor killed under us
    leaves them running, and an attached QEMU's broker would outlive the detach."""
    helpers = handles.options.get("helpers")
    entries = list(helpers.values()) if isinstance(helpers, dict) else []
    if wd is not None:
        entries += list(supervisor.read_state(wd / SUPERVISOR_STATE).values())
    for entry in entries:
        # handles.json is a file anyone with access to the dir could have edited:
        # a malformed entry is skipped, never a reason to stop stopping. Only a
        # process whose start time matches is signalled (proc.terminate).
        if not isinstance(entry, list | tuple) or len(entry) != 2:
            continue
        pid, start = entry
        if isinstance(pid, int) and not isinstance(pid, bool) and pid > 1:
            proc.terminate(pid, start if isinstance(start, int) else None, grace=1.0)


def spawn(
    spec: HubSpec,
    wd: Path,
    gap_since: float | None = None,
    why: str = "",
    more: list[supervisor.ChildSpec] | None = None,
) -> tuple[int, int | None]:
    """Start a detached supervisor that runs (and restarts) the hub for ``spec`` (when it
    has ports) and the children in ``more``; returns the supervisor's pid and start time."""
    spec_path = wd / "serialhub.json"
    spec.save(spec_path)
    hub = (
        [
            supervisor.ChildSpec(
                name="serialhub",
                argv=[sys.executable, "-m", "emutui.core.serialhub", str(spec_path)],
                log=str(wd / HUB_LOG),
                module="emutui.core.serialhub",  # forked: a restart costs no interpreter start
                args=[str(spec_path)],
            )
        ]
        if spec.ports
        else []
    )
    sup = supervisor.SupervisorSpec(
        children=hub + (more or []),
        state=str(wd / SUPERVISOR_STATE),
        emulator_pid=spec.emulator_pid,
        emulator_start=spec.emulator_start,
        cwd=str(wd),
        env={GAP_WHY_ENV: why} if why else {},
        initial_gap=gap_since,
    )
    sup_path = wd / "supervisor.json"
    sup.save(sup_path)
    p = proc.spawn_detached(
        [sys.executable, "-m", "emutui.core.supervisor", str(sup_path)], wd, wd / HUB_LOG
    )
    return p.pid, proc.start_time(p.pid)


async def wait_ready(
    spec: HubSpec,
    pid: int,
    timeout: float = 10.0,
    emulator_gone: Callable[[], str | None] | None = None,
) -> bool:
    """True once every hub socket exists (so it holds every upstream port)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(os.path.exists(p.listen) for p in spec.ports):
            return True
        if not proc.exists(pid):
            return False
        if emulator_gone is not None and emulator_gone():
            return False
        await asyncio.sleep(0.005)
    return False


if __name__ == "__main__":
    sys.exit(main())
