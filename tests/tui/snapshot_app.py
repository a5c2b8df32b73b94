"""The app on fake instances, for snapshots, screenshots and benches: same picture every run."""

from __future__ import annotations

from pathlib import Path

from emutui.config import Config
from emutui.core.model import Capability
from emutui.core.registry import Registry
from emutui.core.targets import TargetConfig
from emutui.tui.app import EmutuiApp
from tests.tui.fake_cpu import FakeCpu
from tests.tui.fakes import ALL_CAPS, T0, FakeConnector, make_instance, sample_events

RENODE_CAPS = ALL_CAPS - {"memory-write"}
# what the vrtd connector offers: no serial, no pause, no reset, no stop (it is attached)
VRTD_CAPS = frozenset(
    {
        Capability.PROPERTIES,
        Capability.MEMORY,
        Capability.MEMORY_WRITE,
        Capability.COMMANDS,
        Capability.EVENTS,
    }
)


class SnapshotApp(EmutuiApp):
    # The console's scrollbar appears for a frame or two while it replays its
    # log and fits its terminal; a snapshot must not depend on that timing.
    CSS = "ConsoleView { scrollbar-visibility: hidden; }"
    cpu_factory = FakeCpu  # the CPU pane on a fake gdb stub: the test guest, at isr_timer

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        # No tab-underline slides or smooth scrolls half-way through a snapshot.
        self.animation_level = "none"


def build_app(
    tmp: Path, theme: str = "dark", ram_size: int = 128 << 20, banner: bool = False
) -> EmutuiApp:
    # banner=False: an empty serial log, because whether the console shows a
    # replayed line depends on when its terminal is first fitted (a race in
    # the console widget, reported); a snapshot must not.
    insts = [
        make_instance(tmp, "pc", "qemu", "pc", pid=31337, banner=banner),
        make_instance(
            tmp, "q35", "qemu", "q35", pid=31338, age=3725.0, channels=("com1",), banner=banner
        ),
        make_instance(
            tmp,
            "board",
            "renode",
            "board",
            pid=31339,
            simulated=True,
            channels=("uart0",),
            banner=banner,
        ),
        make_instance(tmp, "v80", "vrtd", "v80-sim", simulated=True, attached=True, channels=()),
    ]
    conns: dict[str, FakeConnector] = {}

    def factory(inst):  # type: ignore[no-untyped-def]
        conn = conns.get(inst.name)
        if conn is None:
            conn = conns[inst.name] = FakeConnector(
                inst,
                caps=VRTD_CAPS if inst.backend == "vrtd" else ALL_CAPS,
                events=sample_events(inst.name),
                ram_size=ram_size,
            )
        return conn

    cfg = Config(
        path=None,
        targets={
            "pc": TargetConfig("pc", "qemu", {"machine": "pc"}),
            "q35": TargetConfig("q35", "qemu", {"machine": "q35"}),
        },
    )
    app = SnapshotApp(
        Registry(tmp / "state"),
        cfg,
        theme=theme,
        connector_factory=factory,
        instances=lambda: insts,
        clock=lambda: T0,
        frozen=True,
        lab_label="snapshot lab",
        rescan=False,
    )
    app.fake_connectors = conns  # type: ignore[attr-defined]
    return app
