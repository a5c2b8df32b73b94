"""``emutui demo``'s lab: what it starts, what it says is missing, and that leaving stops it all."""

from __future__ import annotations

import shutil

from emutui import demo
from emutui.core.model import InstanceState
from emutui.tui.app import EmutuiApp
from tests.conftest import needs_qemu
from tests.tui.helpers import until


@needs_qemu
async def test_demo_lab_starts_everything_and_teardown_stops_it() -> None:
    lab = await demo.create_lab(progress=False)
    try:
        insts = {i.name: i for i in lab.registry.instances()}
        assert {"pc", "q35"} <= set(insts), lab.notes
        assert all(insts[n].alive() for n in ("pc", "q35"))
        if "v80" in insts:
            assert insts["v80"].is_daemon and insts["v80"].handles.simulated
        app = EmutuiApp(lab.registry, lab.config, lab_label=lab.label())
        async with app.run_test(size=(120, 40)) as pilot:
            await until(
                pilot,
                lambda: (
                    len(app.links) == len(insts)
                    and all(lk.status.state is InstanceState.RUNNING for lk in app.links.values())
                ),
                timeout=30,
                what="every demo instance running in the TUI",
            )
    finally:
        insts_left = lab.registry.instances()
        pids = [i.pid for i in insts_left if i.pid]
        # the simulated card's daemon is recorded in its handles like any helper
        pids += [
            i.handles.options["sim_pid"]
            for i in insts_left
            if i.handles and "sim_pid" in i.handles.options
        ]
        await lab.teardown()
    from emutui.core import proc

    assert not any(proc.exists(p) for p in pids)
    assert not lab.root.exists()


async def test_demo_without_qemu_says_so(monkeypatch) -> None:
    real_which = shutil.which
    monkeypatch.setattr(
        demo.shutil, "which", lambda name, *a, **k: None if "qemu" in name else real_which(name)
    )
    lab = await demo.create_lab(progress=False)
    try:
        names = {i.name for i in lab.registry.instances()}
        assert "pc" not in names and "q35" not in names
        assert any("qemu-system-x86_64 not installed" in n for n in lab.notes)
        assert "not installed" in lab.label()
    finally:
        await lab.teardown()
