"""Backend-neutral operations shared by the CLI, the shell and the TUI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from emutui.backends import get_backend
from emutui.backends.base import Connector
from emutui.config import Config
from emutui.core.errors import EmutuiError, InstanceDeadError, UnsupportedError
from emutui.core.instance import Instance
from emutui.core.model import InstanceState, InstanceStatus
from emutui.core.paths import release_socket_dir
from emutui.core.registry import Registry


def make_connector(inst: Instance, aux: bool = True) -> Connector:
    remote = getattr(inst, "connector", None)  # NAME@HOST: the host's agent serves it
    if callable(remote):
        conn: Connector = remote()
        return conn
    if inst.handles is None:
        raise InstanceDeadError(f"{inst.name}: instance directory is unreadable: {inst.error}")
    return get_backend(inst.handles.backend).connector(inst, aux)


@asynccontextmanager
async def connected(
    inst: Instance, aux: bool = True, events: bool = True
) -> AsyncIterator[Connector]:
    """``events=False``: a one-shot command that never reads events; a QMP broker
    then sends it none (a flood of events cannot stand between it and its reply)."""
    if not inst.alive():
        raise InstanceDeadError(dead_message(inst))
    conn = make_connector(inst, aux)
    if not events and hasattr(conn, "want_events"):
        conn.want_events = False
    await conn.connect()
    try:
        yield conn
    finally:
        await conn.close()


def dead_message(inst: Instance) -> str:
    if inst.run is not None:
        from emutui.core.runs import describe_end

        return f"run {inst.run.id}: {describe_end(inst.run.end())} (read-only)"
    if inst.handles is None:
        return f"{inst.name}: {inst.error or 'no handles'}; 'emutui stop {inst.name}' cleans it up"
    tail = inst.tail(lines=3)
    last = f"; last output: {' | '.join(tail)}" if tail else ""
    return f"{inst.name} is dead (pid {inst.pid} is gone){last}"


async def start_target(
    cfg: Config, registry: Registry, target_name: str, name: str | None, paused: bool
) -> Instance:
    target = cfg.target(target_name)
    spec = get_backend(target.backend)
    if spec.start is None:
        raise UnsupportedError(
            f"{target_name}: backend {target.backend!r} is attached to, not started "
            f"(use 'emutui attach')"
        )
    name = name or target_name
    with registry.name_lock(name):
        wd = registry.create(name)
        try:
            await spec.start(target, wd, name, paused)
        except BaseException:
            # No half-made instance is left behind; the error carries the emulator's last words.
            inst = Instance.load(wd)
            if inst.handles is None or not inst.alive():
                release_socket_dir(wd)
                registry.remove(inst)
            raise
    return Instance.load(wd)


async def probe_status(inst: Instance, timeout: float = 2.0) -> InstanceStatus:
    """Status for listings: dead and stopped processes are answered without a round trip."""
    state = inst.process_state()
    if state is InstanceState.DEAD:
        return InstanceStatus(InstanceState.DEAD, inst.error or "process gone")
    try:
        async with asyncio.timeout(timeout):
            async with connected(inst, aux=True) as conn:
                return await conn.status()
    except TimeoutError:
        return InstanceStatus(InstanceState.BUSY, "no answer")
    except EmutuiError as e:
        from emutui.core.errors import BusyError, DisconnectedError

        if isinstance(e, BusyError):
            return InstanceStatus(InstanceState.BUSY, str(e))
        if isinstance(e, DisconnectedError) and inst.is_daemon:
            return InstanceStatus(InstanceState.DISCONNECTED, str(e))
        if not inst.alive():
            return InstanceStatus(InstanceState.DEAD, "process gone")
        return InstanceStatus(InstanceState.UNKNOWN, str(e))


async def stop_instance(registry: Registry, inst: Instance, by: str | None = None) -> None:
    """Stop a live instance (a dead one is just found dead) and keep its run.

    The directory is not deleted: it becomes a kept run (core/runs.py) with an
    end record saying how it ended and who ended it. An attached daemon is only
    detached: a real vrtd is never touched, while a simulator emutui itself
    started (the demo's) is ended with it.
    """
    from emutui.core import proc, serialhub

    if inst.host is not None:  # NAME@HOST: the host's emutui stops it and keeps its run
        await make_connector(inst).stop()
        return
    if inst.run is not None:
        raise EmutuiError(f"{inst.ref} is a kept run, not a live instance ('emutui rm' removes it)")
    registry.get(inst.name)  # a name of ours under the root, never a path
    how = "found dead"
    with registry.name_lock(inst.name), inst.lock():
        # What is on disk now, not what the caller loaded earlier: a restarted hub
        # or a restarted emulator of the same name has other pids.
        if inst.wd.exists():
            inst = Instance.load(inst.wd)
        h = inst.handles
        if h is not None and inst.is_daemon:
            how = "detached"
            sim_pid, sim_start = h.options.get("sim_pid"), h.options.get("sim_pid_start")
            if h.simulated and isinstance(sim_pid, int):
                proc.terminate(sim_pid, sim_start if isinstance(sim_start, int) else None)
            # An attached QEMU: end emutui's own helpers (QMP broker, serial hub) only.
            serialhub.stop_helpers(h, inst.wd)
        elif h is not None and inst.alive():
            how = "stopped"
            await make_connector(inst, aux=True).stop()
        elif h is not None and h.pid:
            proc.terminate(h.pid, h.pid_start)
            serialhub.stop_helpers(h, inst.wd)
        release_socket_dir(inst.wd)  # before the move: its name hashes this path
        if inst.wd.exists():
            registry.keep_run(inst, how, by=by)


def parse_value(text: str) -> Any:
    """A CLI value: JSON when it parses (numbers, true, objects), else the string itself."""
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text
