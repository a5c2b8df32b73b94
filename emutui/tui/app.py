"""The Textual App: wiring only (links to instances, screens, themes, palette)."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from textual import events
from textual.app import App, SystemCommand
from textual.css.query import NoMatches
from textual.driver import Driver
from textual.screen import Screen
from textual.theme import Theme
from textual.worker import Worker, WorkerState

from emutui.config import Config
from emutui.core.instance import Instance
from emutui.core.registry import Registry
from emutui.core.runs import Run
from emutui.tui.links import ConnectorFactory, InstanceLink, default_factory
from emutui.tui.messages import InstancesChanged
from emutui.tui.screens.help import HelpScreen
from emutui.tui.screens.main import MainScreen
from emutui.tui.widgets.memory import MemoryPane
from emutui.tui.widgets.props import PropsPane

THEME_DIR = Path(__file__).resolve().parent.parent / "themes"
THEMES = ("dark", "light", "high-contrast")
# Each emutui theme is a TCSS file (themes/NAME.tcss, rules scoped by .theme-NAME
# on the App) on top of a Textual colour theme that sets the $variables.
BASE_THEME = {"dark": "textual-dark", "light": "textual-light", "high-contrast": "emutui-hc"}
RESCAN_PERIOD = 2.0

HIGH_CONTRAST = Theme(
    name="emutui-hc",
    primary="#ffff00",
    secondary="#00ffff",
    accent="#ff00ff",
    foreground="#ffffff",
    background="#000000",
    surface="#000000",
    panel="#1a1a1a",
    success="#00ff00",
    warning="#ffff00",
    error="#ff3030",
    dark=True,
)


def resolve_theme(name: str | None) -> str:
    from emutui.core.errors import ConfigError

    name = (name or "dark").strip().lower()
    if name not in THEMES:
        raise ConfigError(f"unknown theme {name!r} (expected one of: {', '.join(THEMES)})")
    return name


FULL_GC_EVERY = 10.0  # seconds between full garbage collections, at most…
FULL_GC_IDLE = 2.0  # …and only this long after the last key


class EmutuiApp(App[None]):
    TITLE = "emutui"
    CSS_PATH = [Path(__file__).parent / "emutui.tcss", *(THEME_DIR / f"{t}.tcss" for t in THEMES)]

    def __init__(
        self,
        registry: Registry,
        config: Config | None = None,
        *,
        theme: str | None = None,
        connector_factory: ConnectorFactory = default_factory,
        instances: Callable[[], Iterable[Instance]] | None = None,
        clock: Callable[[], float] = time.time,
        frozen: bool = False,
        lab_label: str = "",
        rescan: bool = True,
        on_hangup: Callable[[], Awaitable[None]] | None = None,
        quit_question: str | None = None,
    ) -> None:
        super().__init__()
        self.registry = registry
        self.config = config
        self.factory = connector_factory
        self.list_instances = instances or registry.instances
        self.clock = clock
        self.frozen = frozen  # snapshots: no clocks, no timers that change the picture
        self.lab_label = lab_label
        self.auto_rescan = rescan
        self.links: dict[str, InstanceLink] = {}
        self.stopping: set[str] = set()  # being stopped: a rescan must not bring them back
        # Kept runs (core/runs.py): per name, newest first; shown collapsed under the name.
        self.kept: dict[str, list[Run]] = {}
        self.expanded: set[str] = set()
        self.run_links: dict[str, InstanceLink] = {}
        self.on_hangup = on_hangup
        self.quit_question = quit_question  # asked before q (the demo: q stops the lab)
        self.emutui_theme = resolve_theme(theme)
        self.register_theme(HIGH_CONTRAST)
        self.theme = BASE_THEME[self.emutui_theme]
        self.set_class(True, f"theme-{self.emutui_theme}")
        self.first_frame_at: float | None = None
        self.last_key_at = 0.0  # time.monotonic() of the last key (full GCs wait for a pause)
        from emutui.tui.console_settings import console_settings
        from emutui.tui.keyinput import set_escape_time

        self.console_settings = console_settings(config.ui if config is not None else None)
        set_escape_time(self.console_settings.escape_time)

    def get_driver_class(self) -> type[Driver]:
        # Esc then a key is two keys (emutui/tui/keyinput.py), unless TEXTUAL_DRIVER says otherwise.
        from textual import constants

        if constants.DRIVER is None and sys.platform != "win32":
            from emutui.tui.keyinput import EmutuiDriver

            return EmutuiDriver
        return super().get_driver_class()

    async def on_event(self, event: events.Event) -> None:
        from emutui.tui.keyinput import leave_console_first

        if isinstance(event, events.Key):
            self.last_key_at = time.monotonic()
            if leave_console_first(self, event):
                return
        await super().on_event(event)

    def get_default_screen(self) -> Screen[None]:
        return MainScreen()

    @property
    def main(self) -> MainScreen:
        return self._main_screen()

    def _main_screen(self) -> MainScreen:
        for s in self.screen_stack:
            if isinstance(s, MainScreen):
                return s
        raise LookupError("main screen not mounted")

    def on_mount(self) -> None:
        if not self.is_headless:
            # Textual's writer thread sends each frame to the terminal; with Python's
            # default 5 ms GIL switch interval it waited up to that long behind the
            # event loop (a flooding console's parser, a pane updated after a switch)
            # before the frame left (issue 15 items 27/28). The other threads sleep
            # in select/get, so a shorter interval costs next to nothing.
            sys.setswitchinterval(0.0005)
            # A closed terminal or a kill still ends the app normally, so the
            # demo's teardown (after run() returns) stops what it started.
            import signal

            loop = asyncio.get_running_loop()
            for sig, handler in ((signal.SIGHUP, self._hangup), (signal.SIGTERM, self.exit)):
                try:
                    loop.add_signal_handler(sig, handler)
                except (NotImplementedError, RuntimeError):
                    pass
        self.rescan()
        if self.auto_rescan:
            self.set_interval(RESCAN_PERIOD, self.rescan)
        if not self.frozen:
            self.set_interval(1.0, self._tick_uptime)

    def _hangup(self) -> None:
        self.run_worker(self._after_hangup(), group="hangup", exit_on_error=False)

    async def _after_hangup(self) -> None:
        """The terminal is gone: let go of the instances, run ``on_hangup`` (the demo
        stops its lab), and leave without Textual's shutdown, which restores a
        terminal that no longer exists and can block forever in its writer thread
        (seen with textual 8.2.8 after tmux kill-session)."""
        for name in list(self.links):
            await self.drop_link(name)
        if self.on_hangup is not None:
            try:
                await asyncio.wait_for(self.on_hangup(), 30)
            except Exception:
                pass
        os._exit(129)

    def _full_gc_in_a_pause(self) -> None:
        if time.monotonic() - self.last_key_at >= FULL_GC_IDLE:
            gc.collect()

    def on_ready(self) -> None:
        self.first_frame_at = time.perf_counter()
        # Everything built so far (Textual, widgets, styles) lives as long as the
        # app: take it out of the collector's sight, so a full collection while
        # events or console output pour in costs ~25 ms instead of ~60-90 ms
        # (bench/bench_events.py measures the loop lag).
        gc.freeze()
        if not self.is_headless:
            # A full collection of what is not frozen (scrollbacks, events) still took
            # 15-60 ms every couple of seconds under a console flood: a key pressed then
            # waited for it (issue 15 items 27/28). The oldest generation is collected
            # in pauses of the keyboard instead; the young ones as before.
            young, middle, _ = gc.get_threshold()
            gc.set_threshold(young, middle, 1_000_000)
            self.set_interval(FULL_GC_EVERY, self._full_gc_in_a_pause)
        bench = os.environ.get("EMUTUI_BENCH_FIRST_FRAME")
        if bench:
            # bench/bench_tui_first_frame.py: wall time of the first frame, then of
            # every instance connected, then leave.
            first = time.time()

            def check() -> None:
                if self.links and all(link.conn is not None for link in self.links.values()):
                    Path(bench).write_text(f"{first} {time.time()}\n")
                    self.exit()

            self.set_interval(0.005, check)

    # -- instances ----------------------------------------------------------------------

    def rescan(self) -> None:
        self.run_worker(self._rescan(), group="rescan", exclusive=True, exit_on_error=False)

    async def _rescan(self) -> None:
        refresh = getattr(self.list_instances, "refresh", None)  # remote hosts: in background
        if refresh is not None:
            await refresh()
        found = await asyncio.to_thread(lambda: list(self.list_instances()))
        names = {i.name for i in found}
        changed = await self._rescan_runs()
        for inst in found:
            if inst.name in self.stopping:
                continue
            link = self.links.get(inst.name)
            if link is not None and link.inst.pid == inst.pid:
                continue
            if link is not None:
                await self.drop_link(inst.name)
            self._add_link(inst)
            changed = True
        for name in list(self.links):
            if name not in names:
                await self.drop_link(name)
                changed = True
        if changed:
            self._main_screen().post_message(InstancesChanged())

    async def _rescan_runs(self) -> bool:
        try:
            runs = await asyncio.to_thread(self.registry.runs)
        except Exception:  # an unusable state root is the instances' problem to report
            runs = []
        kept: dict[str, list[Run]] = {}
        for r in reversed(runs):
            kept.setdefault(r.name, []).append(r)
        if {n: [r.id for r in rs] for n, rs in kept.items()} == {
            n: [r.id for r in rs] for n, rs in self.kept.items()
        }:
            return False
        self.kept = kept
        ids = {r.id for r in runs}
        for rid in [k for k in self.run_links if k not in ids]:
            del self.run_links[rid]
        return True

    def link_for(self, key: str | None) -> InstanceLink | None:
        """The link of a live instance by name, or of a kept run by its id (made on demand)."""
        if key is None:
            return None
        link = self.links.get(key)
        if link is not None:
            return link
        link = self.run_links.get(key)
        if link is not None:
            return link
        run = next((r for rs in self.kept.values() for r in rs if r.id == key), None)
        if run is None:
            return None
        from emutui.core.model import InstanceState, InstanceStatus
        from emutui.core.registry import run_instance
        from emutui.core.runs import describe_end

        link = InstanceLink(run_instance(run), self.factory, self._main_screen().post_message)
        link.name = run.id
        link.status = InstanceStatus(InstanceState.DEAD, describe_end(run.end()))
        self.run_links[run.id] = link
        self.run_worker(link._load_history(), group="run-history", exit_on_error=False)
        return link

    def _add_link(self, inst: Instance) -> None:
        screen = self._main_screen()
        link = InstanceLink(inst, self.factory, screen.post_message)
        self.links[inst.name] = link
        self.run_worker(
            link.run(), group=f"inst-{inst.name}", exit_on_error=False, name=f"link {inst.name}"
        )

    async def drop_link(self, name: str) -> None:
        link = self.links.pop(name, None)
        if link is None:
            return
        link.closed = True
        self.workers.cancel_group(self, f"inst-{name}")
        # The table, the header and the panes move on to the instance now selected.
        try:
            self._main_screen().post_message(InstancesChanged())
        except LookupError:
            pass
        if link.conn is not None:
            conn, link.conn = link.conn, None
            await link._close(conn)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # In a console every key belongs to the guest: ^P and ^Q go to it, not to us.
        return not (action in ("command_palette", "quit", "help") and self._in_console())

    def _in_console(self) -> bool:
        from emutui.tui.widgets.console_pane import ConsoleWidget

        return isinstance(self.focused, ConsoleWidget)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # One place for failures of background work: a notice, never a crash.
        if event.state is WorkerState.ERROR:
            err = event.worker.error
            self.log.error(f"worker {event.worker.name} failed: {err!r}")
            self.notify(
                f"{event.worker.name or 'background task'}: {err}", severity="error", markup=False
            )

    def _tick_uptime(self) -> None:
        try:
            self._main_screen().sync_table()
        except (LookupError, NoMatches):  # not composed yet, or being torn down
            pass

    # -- themes, help, palette -------------------------------------------------------------

    def set_emutui_theme(self, name: str) -> None:
        name = resolve_theme(name)
        self.set_class(False, f"theme-{self.emutui_theme}")
        self.emutui_theme = name
        self.set_class(True, f"theme-{name}")
        self.theme = BASE_THEME[name]
        self.notify(f"theme: {name}", markup=False)

    def action_cycle_theme(self) -> None:
        self.set_emutui_theme(THEMES[(THEMES.index(self.emutui_theme) + 1) % len(THEMES)])

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        main = self._main_screen()
        for title, help_, cb in (
            ("Start target", "Start a target from the config", main.action_start_target),
            ("Stop instance", "Stop the selected instance (asks first)", main.action_stop_instance),
            (
                "Restart instance",
                "Stop and start the same target under the same name (asks first)",
                main.action_restart_instance,
            ),
            (
                "Reset instance",
                "Reset the selected instance (asks first)",
                main.action_reset_instance,
            ),
            ("Pause instance", "Pause the selected instance", main.action_pause_instance),
            ("Resume instance", "Resume the selected instance", main.action_resume_instance),
            (
                "Show console",
                "The selected instance's serial consoles",
                lambda: main.action_focus_pane("console"),
            ),
            (
                "Show events",
                "Events of the selected instance",
                lambda: main.action_focus_pane("events"),
            ),
            ("Show properties", "Property tree", lambda: main.action_focus_pane("props")),
            ("Show memory", "Hex view of device memory", lambda: main.action_focus_pane("memory")),
            ("Filter events", "Filter events by name or text", main.action_events_filter),
            ("Monitor command", "Send a monitor (QMP) command", main.action_events_command),
            (
                "Jump to property path",
                "Expand the property tree to a path",
                lambda: main.query_one(PropsPane).action_jump(),
            ),
            (
                "Go to memory offset",
                "Move the hex view",
                lambda: main.query_one(MemoryPane).action_goto(),
            ),
            (
                "Follow memory",
                "Re-read the visible memory twice a second",
                lambda: main.query_one(MemoryPane).action_follow(),
            ),
            ("Help", "Keys of every pane", self.action_help),
        ):
            action = getattr(cb, "__name__", "").removeprefix("action_")
            if not main.offers(action):
                continue  # the selected instance's backend cannot do it
            yield SystemCommand(title, help_, cb)
        for t in THEMES:
            yield SystemCommand(
                f"Theme: {t}", f"Switch to the {t} theme", lambda t=t: self.set_emutui_theme(t)
            )

    async def action_quit(self) -> None:
        if self.quit_question:
            from emutui.tui.screens.dialogs import ConfirmScreen

            def answered(ok: bool | None) -> None:
                if ok:
                    self.run_worker(self._quit(), group="quit", exit_on_error=False)

            if not isinstance(self.screen, ConfirmScreen):
                self.push_screen(ConfirmScreen(self.quit_question, yes="Quit"), answered)
            return
        await self._quit()

    async def _quit(self) -> None:
        for name in list(self.links):
            await self.drop_link(name)
        self.exit()
