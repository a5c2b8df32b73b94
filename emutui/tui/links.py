"""One live link per instance: connect the primary monitor, stream events, poll status.

Each link runs as one asyncio worker (group ``inst-NAME``) on the App, so
cancelling the group tears the instance's connection down. Connector errors
become states and notices, never exceptions that reach Textual: one broken
instance must not disturb the others.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from textual.message import Message

from emutui.backends.base import Connector
from emutui.core.errors import BusyError, EmutuiError, InstanceDeadError
from emutui.core.instance import Instance
from emutui.core.model import Capability, Event, InstanceState, InstanceStatus
from emutui.tui.messages import Connected, EventsArrived, StatusChanged

POLL_PERIOD = 1.0  # status poll; death is noticed within this
MIN_POLL_GAP = 0.1
RETRY_PERIOD = 2.0  # reconnect after busy/disconnected
EVENT_FLUSH = 0.05  # events are posted in batches at most 20 times a second
HISTORY_EVENTS = 2000

ConnectorFactory = Callable[[Instance], Connector]


def default_factory(inst: Instance) -> Connector:
    from emutui.control import make_connector

    # A QEMU instance's QMP broker serves every client; ``aux`` only matters for
    # instances started before the broker existed.
    return make_connector(inst, aux=False)


class InstanceLink:
    """The UI's view of one instance: its connector (when connected) and last status."""

    def __init__(
        self, inst: Instance, factory: ConnectorFactory, post: Callable[[Message], Any]
    ) -> None:
        self.inst = inst
        self.name = inst.name
        self.factory = factory
        self.post = post
        self.conn: Connector | None = None
        self.status = InstanceStatus(InstanceState.STARTING, "connecting")
        self.error: str = ""
        self.commands: list[str] = []  # monitor command names, for completion
        self._poll_now = asyncio.Event()
        self.closed = False
        self._last_caps: frozenset[Capability] = frozenset()

    # -- what panes ask ---------------------------------------------------------------

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self.conn.capabilities if self.conn is not None else frozenset()

    @property
    def known_capabilities(self) -> frozenset[Capability]:
        """What the backend can do, as of the last connection (kept while reconnecting)."""
        return self.conn.capabilities if self.conn is not None else self._last_caps

    @property
    def connected(self) -> bool:
        return self.conn is not None and self.status.state not in (
            InstanceState.DEAD,
            InstanceState.BUSY,
            InstanceState.DISCONNECTED,
        )

    @property
    def simulated(self) -> bool:
        return bool(self.inst.handles and self.inst.handles.simulated)

    def require(self) -> Connector:
        """The live connector, or an error that says why there is none."""
        if self.conn is None:
            if self.status.state is InstanceState.DEAD:
                raise InstanceDeadError(f"{self.name} is dead")
            detail = self.error or self.status.detail or self.status.state.value
            raise BusyError(f"{self.name}: not connected ({detail})")
        return self.conn

    def poll_soon(self) -> None:
        self._poll_now.set()

    # -- the worker -------------------------------------------------------------------

    def _set(self, state: InstanceState, detail: str = "") -> None:
        st = InstanceStatus(state, detail)
        if st != self.status:
            self.status = st
            self.post(StatusChanged(self.name, st))

    async def run(self) -> None:
        await self._load_history()
        try:
            while not self.closed:
                if not self.inst.alive():
                    self._set(InstanceState.DEAD, "process gone")
                    return
                conn: Connector | None = None
                try:
                    conn = self.factory(self.inst)
                    await conn.connect()
                except BusyError as e:
                    self.error = str(e)
                    self._set(InstanceState.BUSY, str(e))
                    await self._close(conn)
                    await asyncio.sleep(RETRY_PERIOD)
                    continue
                except InstanceDeadError as e:
                    self.error = str(e)
                    self._set(InstanceState.DEAD, str(e))
                    await self._close(conn)
                    return
                except EmutuiError as e:
                    self.error = str(e)
                    state = (
                        InstanceState.DISCONNECTED
                        if self.inst.is_daemon or self.inst.host
                        else InstanceState.UNKNOWN
                    )
                    self._set(state, str(e))
                    await self._close(conn)
                    await asyncio.sleep(RETRY_PERIOD)
                    continue
                self.conn = conn
                self._last_caps = conn.capabilities
                self.error = ""
                await self._fetch_commands(conn)
                self.post(Connected(self.name))
                try:
                    await self._serve(conn)
                finally:
                    self.conn = None
                    await self._close(conn)
                if not self.inst.alive():
                    self._set(InstanceState.DEAD, "process gone")
                    return
                await asyncio.sleep(RETRY_PERIOD)
        finally:
            self.closed = True

    async def _serve(self, conn: Connector) -> None:
        """Events and status polling until the connection or the process goes."""
        events = asyncio.create_task(self._pump_events(conn))
        try:
            while True:
                if not self.inst.alive():
                    return
                try:
                    st = await asyncio.wait_for(conn.status(), 5.0)
                except TimeoutError:
                    self._set(InstanceState.BUSY, "monitor not answering")
                except EmutuiError as e:
                    if not self.inst.alive() or isinstance(e, InstanceDeadError):
                        return
                    self.error = str(e)
                    self._set(InstanceState.DISCONNECTED, str(e))
                    return
                else:
                    self._set(st.state, st.detail)
                self._poll_now.clear()
                try:
                    await asyncio.wait_for(self._poll_now.wait(), POLL_PERIOD)
                    # Woken by an event: poll soon, but an event flood must not
                    # become a query-status flood.
                    await asyncio.sleep(MIN_POLL_GAP)
                except TimeoutError:
                    pass
        finally:
            events.cancel()

    async def _pump_events(self, conn: Connector) -> None:
        if Capability.EVENTS not in conn.capabilities:
            return
        batch: list[Event] = []
        last = time.monotonic()
        flusher = asyncio.create_task(self._flush_loop(batch))
        try:
            async for ev in conn.events():
                batch.append(ev)
                self._poll_now.set()  # STOP/RESUME: show the new state at once
                now = time.monotonic()
                if now - last > EVENT_FLUSH and len(batch) > 500:
                    self._flush(batch)
                    last = now
        except EmutuiError:
            pass
        finally:
            flusher.cancel()
            self._flush(batch)
            self._poll_now.set()

    async def _flush_loop(self, batch: list[Event]) -> None:
        while True:
            await asyncio.sleep(EVENT_FLUSH)
            self._flush(batch)

    def _flush(self, batch: list[Event]) -> None:
        if batch:
            self.post(EventsArrived(self.name, list(batch)))
            batch.clear()

    async def _load_history(self) -> None:
        try:
            events = await asyncio.to_thread(self.inst.journal().read, HISTORY_EVENTS)
        except OSError:
            return
        if events:
            self.post(EventsArrived(self.name, events, history=True))

    async def _fetch_commands(self, conn: Connector) -> None:
        if Capability.COMMANDS not in conn.capabilities:
            return
        execute = getattr(conn, "execute", None)
        if execute is None:
            return
        try:
            cmds = await asyncio.wait_for(execute("query-commands"), 2.0)
            self.commands = sorted(str(c.get("name")) for c in cmds or [] if isinstance(c, dict))
        except (EmutuiError, TimeoutError):
            self.commands = []

    async def _close(self, conn: Connector | None) -> None:
        if conn is None:
            return
        try:
            await asyncio.wait_for(conn.close(), 3.0)
        except Exception:  # closing a broken connection must not take the UI down
            pass
