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


async def test_demo_honours_a_state_dir_and_stops_only_its_own(tmp_path, monkeypatch) -> None:
    """--state-dir / $EMUTUI_STATE_DIR: the demo's instances go there, its config into a
    dot dir, and teardown stops what it started, nothing else, and leaves the dir."""
    real_which = shutil.which
    monkeypatch.setattr(  # no QEMU guests: this is about where things go
        demo.shutil, "which", lambda name, *a, **k: None if "qemu" in name else real_which(name)
    )
    state = tmp_path / "state"
    state.mkdir(mode=0o700)  # an existing state root must be private (issue 10 finding 3)
    mine = state / "mine"
    mine.mkdir()
    (mine / ".lock").write_text("")  # someone's own instance in the same state dir
    lab = await demo.create_lab(progress=False, state_dir=state)
    try:
        assert lab.state_dir == state and lab.root == state / ".demo"
        assert lab.config_path.parent == state / ".demo"
    finally:
        await lab.teardown()
    assert state.is_dir() and (mine / ".lock").exists() and not lab.root.exists()


async def test_kept_demo_lab_goes_with_its_last_instance(tmp_path) -> None:
    """A kept demo's temporary lab is removed by the stop that empties it."""
    root = tmp_path / "lab"
    (root / "state").mkdir(parents=True)
    (root / demo.MARKER).write_text("")
    (root / "emutui.toml").write_text("")
    (root / "state" / "pc").mkdir()
    assert not demo.remove_if_empty_lab(root / "state")  # an instance is left
    (root / "state" / "pc").rmdir()
    assert demo.remove_if_empty_lab(root / "state") and not root.exists()
    other = tmp_path / "plain"
    other.mkdir()
    assert not demo.remove_if_empty_lab(other) and other.exists()  # not a demo lab


def test_shell_history_follows_the_state_dir(tmp_path, monkeypatch) -> None:
    from emutui.shell.repl import history_path

    monkeypatch.delenv("EMUTUI_SHELL_HISTORY", raising=False)
    monkeypatch.delenv("EMUTUI_STATE_DIR", raising=False)
    assert history_path("qemu", str(tmp_path)) == tmp_path / ".shell_history_qemu"
    monkeypatch.setenv("EMUTUI_STATE_DIR", str(tmp_path / "s"))
    assert history_path("qemu") == tmp_path / "s" / ".shell_history_qemu"
    monkeypatch.delenv("EMUTUI_STATE_DIR")
    assert history_path("qemu").name == "shell_history_qemu"  # XDG state dir


async def test_demo_q_asks_before_stopping_the_lab(tmp_path) -> None:
    from emutui.tui.screens.dialogs import ConfirmScreen
    from tests.tui.snapshot_app import build_app

    app = build_app(tmp_path)
    app.quit_question = "Quit the demo? The demo lab's instances (pc) are stopped."
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: len(app.links) == 4)
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert not isinstance(app.screen, ConfirmScreen) and app.is_running
        await pilot.press("q", "y")
        await until(pilot, lambda: not app.is_running, what="quit after yes")


def test_demo_teardown_takes_what_was_started_from_its_console(tmp_path) -> None:
    """In the user's state dir the demo stops what it started, and what was started
    from its console since (a target of its config), never the user's own."""
    import time

    from emutui.config import Config
    from emutui.core.handles import Handles
    from emutui.core.instance import Instance
    from emutui.core.targets import TargetConfig

    lab = demo.DemoLab(tmp_path, tmp_path, tmp_path / ".demo" / "emutui.toml", own_state_dir=False)
    lab.config = Config(path=None, targets={"board": TargetConfig("board", "renode", {})})
    lab.started = {"pc"}

    def inst(name: str, target: str, created: float) -> Instance:
        h = Handles(name=name, backend="renode", target=target, pid=1, created=created)
        return Instance(name=name, wd=tmp_path / name, handles=h)

    now = time.time()
    assert lab.is_demos(inst("pc", "pc", now))
    assert lab.is_demos(inst("board-2", "board", now + 1))  # `n` in the demo
    assert not lab.is_demos(inst("board", "board", now - 3600))  # the user's, from before
    assert not lab.is_demos(inst("mine", "other", now + 1))
