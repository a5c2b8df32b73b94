"""Faults under the TUI: an emulator SIGSTOPped or SIGKILLed while attached. The UI
says so, stays responsive, and the other instances go on."""

from __future__ import annotations

import os
import signal

from emutui.control import start_target
from emutui.core.model import InstanceState
from emutui.tui.app import EmutuiApp
from tests.conftest import needs_qemu
from tests.tui.helpers import until

pytestmark = needs_qemu


def state(app: EmutuiApp, name: str) -> InstanceState | None:
    link = app.links.get(name)
    return link.status.state if link is not None else None


async def test_sigstop_while_attached_is_busy_then_recovers(guest, registry, config):
    other = await start_target(config, registry, "plain", "other", False)
    app = EmutuiApp(registry, config)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(
            pilot,
            lambda: (
                state(app, guest.name) is InstanceState.RUNNING
                and state(app, "other") is InstanceState.RUNNING
            ),
            what="both running",
        )
        os.kill(guest.pid, signal.SIGSTOP)
        try:
            await until(
                pilot,
                lambda: state(app, guest.name) is InstanceState.BUSY,
                what="busy while stopped",
            )
            # the UI still answers and the other instance is still controllable
            link = app.links["other"]
            await link.require().pause()
            await until(
                pilot, lambda: state(app, "other") is InstanceState.PAUSED, what="other paused"
            )
            table = app.screen.query_one("#instances")
            assert "busy" in str(table.get_cell(guest.name, "state"))
        finally:
            os.kill(guest.pid, signal.SIGCONT)
        await until(
            pilot,
            lambda: state(app, guest.name) is InstanceState.RUNNING,
            what="running again after SIGCONT",
        )
    assert other.alive()
