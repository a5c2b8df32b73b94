"""The TUI with two lab hosts (both this machine through its own sshd)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from emutui.backends.remote.connector import RemoteHosts
from emutui.config import parse_config
from emutui.core.model import InstanceState
from emutui.core.registry import Registry
from emutui.tui.app import EmutuiApp
from emutui.tui.widgets.console_pane import ConsolePane
from tests.conftest import needs_qemu
from tests.remote.conftest import Lab
from tests.remote.sshd import Sshd
from tests.tui.helpers import until, widget_text

pytestmark = needs_qemu


async def test_tui_shows_both_hosts_instances_and_their_consoles(
    lab: Lab, sshd: Sshd, tmp_path: Path
) -> None:
    for h in ("lab1", "lab2"):
        r = subprocess.run(
            [sys.executable, "-m", "emutui", "--state-dir", str(lab.hosts[h]),
             "--config", str(lab.host_config), "start", "guest"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
    with lab.config.open("a") as f:  # and a host that is down
        f.write(sshd.host_toml("closed", lab.hosts["lab1"], None))
    cfg = parse_config(lab.config, validate=False)
    mirror = tmp_path / "mirror"
    mirror.mkdir(mode=0o700)
    hosts = RemoteHosts(cfg.hosts.values(), mirror)
    local = Registry(tmp_path / "local")
    app = EmutuiApp(local, cfg, instances=hosts.with_local(local))
    try:
        async with app.run_test(size=(120, 40)) as pilot:

            def running(name: str) -> bool:
                link = app.links.get(name)
                return link is not None and link.status.state is InstanceState.RUNNING

            await until(pilot, lambda: running("guest@lab1") and running("guest@lab2"),
                        timeout=40, what="both hosts' guests running")  # fmt: skip

            # The host that is down is one row that says so, and says why.
            def down() -> bool:
                link = app.links.get("@closed")
                return link is not None and link.status.state is InstanceState.DISCONNECTED

            await until(pilot, down, timeout=40, what="the down host's row")
            assert "refused" in app.links["@closed"].status.detail.lower()
            app.main.select(app.links["guest@lab1"])
            await pilot.press("2")
            pane = app.screen.query_one(ConsolePane)
            await until(pilot, lambda: pane.active_view() is not None, what="console tab")
            view = pane.active_view()
            assert view is not None
            await until(pilot, lambda: "ready (COM1)" in widget_text(view), timeout=20,
                        what="the host's banner, from its log")  # fmt: skip
            # Keys typed before the forward is up are dropped, as on a local console.
            await until(pilot, lambda: getattr(view, "state", "") == "ATTACHED", timeout=30,
                        what="console attached through the forward")  # fmt: skip
            await pilot.press("enter")
            await pilot.press(*"typed-from-the-laptop", "enter")
            await until(pilot, lambda: "typed-from-the-laptop" in widget_text(view),
                        timeout=30, what="echo over ssh")  # fmt: skip
    finally:
        await hosts.close()
        await hosts.close_masters()
