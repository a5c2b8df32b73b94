"""The main screen: instances on top, the focused instance's panes in tabs below."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Vertical
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from emutui.core.errors import EmutuiError
from emutui.core.model import Capability, InstanceState
from emutui.core.sanitize import display_line
from emutui.tui.frames import PacedScreen
from emutui.tui.links import InstanceLink
from emutui.tui.messages import Connected, EventsArrived, InstancesChanged, StatusChanged
from emutui.tui.screens.dialogs import ConfirmScreen
from emutui.tui.widgets.console_pane import ConsolePane
from emutui.tui.widgets.cpu import CpuPane
from emutui.tui.widgets.cpu import supports as cpu_supported
from emutui.tui.widgets.events import EventsPane
from emutui.tui.widgets.footer import KeyFooter
from emutui.tui.widgets.instances import InstanceTable
from emutui.tui.widgets.memory import MemoryPane
from emutui.tui.widgets.props import PropsPane
from emutui.tui.widgets.timeline import TimelinePane

if TYPE_CHECKING:
    from emutui.tui.app import EmutuiApp
    from emutui.tui.screens.start import StartRequest

WIDE = 160  # columns from which the instances move into a sidebar

# tab id -> (title, capabilities any of which shows the tab)
PANES = {
    "console": ("Console", {Capability.SERIAL}),
    "events": ("Events", {Capability.EVENTS, Capability.COMMANDS}),
    "props": ("Properties", {Capability.PROPERTIES}),
    "memory": ("Memory", {Capability.MEMORY}),
    "timeline": ("Timeline", {Capability.SERIAL, Capability.EVENTS}),
}


# action -> the capability that offers it (in the footer, the palette and on its key)
ACTION_NEEDS = {
    "pause_instance": Capability.PAUSE,
    "resume_instance": Capability.PAUSE,
    "reset_instance": Capability.RESET,
    "stop_instance": Capability.STOP,
}


def has_console(link: InstanceLink | None) -> bool:
    """Whether the instance has a serial channel to show (a vrtd card has none)."""
    if link is None:
        return True
    h = link.inst.handles
    return bool(h is None or h.serial_channels())


_PANE_ACTIONS = ("focus_pane", "events_filter", "events_command")


class MainScreen(PacedScreen[None]):
    BINDINGS = [
        Binding("question_mark", "app.help", "Help", key_display="?"),
        # Priority: handled in the App's queue, so a key after "1" in the same read
        # (tmux, a macro, fast fingers) already goes to the pane it selected.
        Binding("1", "focus_pane('instances')", "Instances", show=False, priority=True),
        Binding("2", "focus_pane('console')", "Console", show=False, priority=True),
        Binding("3", "focus_pane('events')", "Events", show=False, priority=True),
        Binding("4", "focus_pane('props')", "Props", show=False, priority=True),
        Binding("5", "focus_pane('memory')", "Memory", show=False, priority=True),
        Binding("6", "focus_pane('cpu')", "CPU", show=False, priority=True),
        Binding("7", "focus_pane('timeline')", "Timeline", show=False, priority=True),
        Binding("slash", "events_filter", "Filter", key_display="/"),
        Binding("colon", "events_command", "Cmd", key_display=":"),
        Binding("t", "app.cycle_theme", "Theme", show=False),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self) -> None:
        super().__init__(id="main")
        self.current: InstanceLink | None = None
        self._select_after: str | None = None  # an instance just started: select it
        self._panes_dirty = False
        self._panes_running = False
        self._pending_show: Callable[[], None] | None = None

    @property
    def emu(self) -> EmutuiApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static("", id="title", classes="title-bar")
        # Narrow: instances above the tabs. Wide (>= WIDE columns): instances and
        # the selected one's details in a sidebar, the tabs beside them.
        with Container(id="body"):
            with Vertical(id="sidebar"):
                yield InstanceTable(clock=self.emu.clock, id="instances")
                yield Static("", id="inst-note", classes="status-line")
                yield Static("", id="inst-detail")
            with TabbedContent(id="panes", initial="console"):
                with TabPane("Console", id="console"):
                    yield ConsolePane(id="console-pane")
                with TabPane("Events", id="events"):
                    yield EventsPane(id="events-pane", frozen_time=self.emu.frozen)
                with TabPane("Properties", id="props"):
                    yield PropsPane(id="props-pane")
                with TabPane("Memory", id="memory"):
                    yield MemoryPane(id="memory-pane")
                with TabPane("CPU", id="cpu"):
                    yield CpuPane(id="cpu-pane")
                with TabPane("Timeline", id="timeline"):
                    yield TimelinePane(id="timeline-pane")
        yield KeyFooter()

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width >= WIDE, "-wide")
        self.set_class(event.size.height >= 40, "-tall")

    def on_mount(self) -> None:
        table = self.query_one(InstanceTable)
        table.on_cursor_row = self._cursor_row
        table.focus()
        self._title()

    def _cursor_row(self, name: str | None) -> None:
        link = self.emu.link_for(name)
        if link is not self.current:
            self.select(link)

    # -- state from the app ---------------------------------------------------------------

    def sync_table(self) -> None:
        self.query_one(InstanceTable).sync(
            self.emu.links.values(),
            getattr(self.emu, "kept", {}),
            getattr(self.emu, "expanded", ()),
        )

    def sync_instances(self) -> None:
        table = self.query_one(InstanceTable)
        self.sync_table()
        self._title()
        if self._select_after is not None and self._select_after in self.emu.links:
            table.move_cursor(row=table.get_row_index(self._select_after))
            self._select_after = None
        name = table.selected_name()
        if name is None:
            if self.current is not None:
                self.select(None)
            else:
                self._note()
        elif self.current is None or self.current.name != name:
            self.select(self.emu.link_for(name))

    def action_toggle_runs(self) -> None:
        """Show or hide the kept runs of the selected name (collapsed by default)."""
        from emutui.core.runs import RUN_RE

        key = self.query_one(InstanceTable).selected_name()
        if key is None:
            return
        m = RUN_RE.match(key)
        name = m.group(2) if m else key
        if not self.emu.kept.get(name):
            self.notify(f"{name} has no kept runs", severity="warning")
            return
        self.emu.expanded ^= {name}
        self.sync_table()

    def _title(self) -> None:
        n = len(self.emu.links)
        label = self.emu.lab_label
        cur = f"  ▸ [b]{_t(self.current.name)}[/]" if self.current else ""
        self.query_one("#title", Static).update(
            f"[b]emutui[/]  {n} instance{'s' if n != 1 else ''}{cur}  [dim]{_t(label)}[/]",
            layout=False,
        )

    @on(InstancesChanged)
    def _instances_changed(self) -> None:
        self.sync_instances()

    @on(StatusChanged)
    def _status_changed(self, message: StatusChanged) -> None:
        self.sync_table()
        if self.current is not None and message.name == self.current.name:
            self._note()
            if message.status.state is InstanceState.DEAD:
                self.request_panes()
                self.refresh_bindings()

    @on(EventsArrived)
    def _events(self, message: EventsArrived) -> None:
        self.query_one(EventsPane).ingest(message.name, message.events, message.history)

    @on(Connected)
    def _connected(self, message: Connected) -> None:
        if self.current is not None and message.name == self.current.name:
            self._note()
            self.request_panes()
            self.refresh_bindings()

    @on(DataTable.RowHighlighted, "#instances")
    def _row(self, event: DataTable.RowHighlighted) -> None:
        # Usually handled already by _cursor_row (told at once); a no-op then.
        self._cursor_row(event.row_key.value if event.row_key else None)

    @on(DataTable.RowSelected, "#instances")
    def _open_console(self, event: DataTable.RowSelected) -> None:
        """Enter on an instance: straight into its console, as in a terminal multiplexer."""
        if not has_console(self.current):
            self._no_console()
            return
        self.query_one("#panes", TabbedContent).active = "console"
        # At once (keys typed right after Enter go to the guest), and again once the
        # console tab is shown, in case it was not.
        pane = self.query_one(ConsolePane)
        pane.action_enter_console()
        table = self.query_one(InstanceTable)

        def again() -> None:
            if self.focused is None or self.focused is table:
                pane.action_enter_console()

        self.call_after_refresh(again)

    def select(self, link: InstanceLink | None) -> None:
        self.current = link
        self._title()
        self._note()
        if not self._show_panes_now():
            self.request_panes()
        self.refresh_bindings()

    def offers(self, action: str) -> bool:
        """Whether the selected instance's backend can do ``action`` (pause, reset, …)."""
        if action == "restart_instance":
            link, cfg = self.current, self.emu.config
            return (
                link is not None
                and not link.inst.is_daemon
                and cfg is not None
                and link.inst.target in cfg.targets
                and (
                    Capability.STOP in link.known_capabilities
                    or link.status.state is InstanceState.DEAD
                )
            )
        need = ACTION_NEEDS.get(action)
        if need is None:
            return True
        link = self.current
        if link is None or link.inst.run is not None:
            return False  # a kept run is read-only
        if action == "stop_instance" and (
            link.inst.is_daemon or link.status.state is InstanceState.DEAD
        ):
            return True  # detaching from a daemon, or cleaning up a dead one
        return need in link.known_capabilities

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        from emutui.tui.keyinput import typing_widget

        # Keys typed into a console or a text field are theirs, not the screen's.
        if typing_widget(self.focused) and action in _PANE_ACTIONS:
            return False
        # Keys for what the backend cannot do are neither offered nor taken.
        return self.offers(action)

    def _detail(self) -> None:
        """The sidebar's facts about the selected instance (wide layout only)."""
        link = self.current
        box = self.query_one("#inst-detail", Static)
        if link is None:
            box.update("")
            return
        inst, h = link.inst, link.inst.handles
        # Markup only in what emutui writes; names, paths, peer text and logs are escaped.
        # a lab host's instance: where it lives there, not our local mirror of its logs
        where = str(inst.wd) if inst.host is None else f"{inst.host}:{inst.summary()['dir']}"
        lines = [
            f"[b]{_t(inst.name)}[/]  {_t(inst.backend)} / {_t(inst.target)}",
            f"state    {link.status.state.value}"
            + (
                f"  [dim]{_t(link.status.detail)}[/]"
                if link.status.detail not in ("", link.status.state.value)
                else ""
            ),
            f"pid      {inst.pid or '-'}",
            f"dir      {_t(where)}",
        ]
        if h is not None:
            chans = ", ".join(f"{k} ({c.role})" for k, c in sorted(h.channels.items()))
            lines.append(f"channels {_t(chans or '-')}")
            if h.simulated:
                lines.append("[i cyan]simulated[/]")
        if link.capabilities:
            lines.append("can      " + ", ".join(sorted(c.value for c in link.capabilities)))
        if link.status.state is InstanceState.DEAD:
            tail = inst.tail(lines=8)
            if tail:
                lines.append("[b]last output[/]")
                lines.extend(f"[dim]{_t(t)}[/]" for t in tail)
        box.update("\n".join(lines))

    def _note(self) -> None:
        self._detail()
        link = self.current
        note = self.query_one("#inst-note", Static)
        if link is None:
            note.update(
                "no instances: press [b]n[/] to start a target from the config"
                if self.emu.config and self.emu.config.targets
                else f"no instances in {_t(self.emu.registry.root)} (add targets to emutui.toml, "
                "then press [b]n[/], or run 'emutui start TARGET')",
                layout=False,
            )
            return
        st = link.status
        if st.state is InstanceState.DEAD:
            from emutui.control import dead_message

            label = "[b]kept[/]" if link.inst.run is not None else "[b red]dead[/]"
            note.update(f"{label}  {_t(dead_message(link.inst))}", layout=False)
        elif st.state in (InstanceState.BUSY, InstanceState.DISCONNECTED, InstanceState.UNKNOWN):
            note.update(f"[b magenta]{st.state.value}[/]  {_t(st.detail)}", layout=False)
        else:
            sim = "  [i cyan]simulated[/]" if link.simulated else ""
            # QEMU's detail is its run state ("running", "inmigrate"): say it once
            detail = "" if st.detail in ("", st.state.value) else f" ({_t(st.detail)})"
            note.update(
                f"[b]{_t(link.name)}[/]  {_t(link.inst.backend)}/{_t(link.inst.target)}  "
                f"{st.state.value}{detail}{sim}",
                layout=False,
            )

    def request_panes(self) -> None:
        """Re-show the panes for the current instance; requests made meanwhile coalesce.

        Not an exclusive worker: cancelling one half-way through removing and
        mounting console tabs leaves the DOM in a state Textual cannot prune.
        """
        self._panes_dirty = True
        if not self._panes_running:
            self._panes_running = True
            self.run_worker(self._panes_loop(), group="panes", exit_on_error=False)

    async def _panes_loop(self) -> None:
        try:
            while self._panes_dirty:
                self._panes_dirty = False
                await self._show_panes(force=True)
        finally:
            self._panes_running = False

    async def _show_panes(self, force: bool = False) -> None:
        link = self.current
        self._pane_tabs(link)
        await self.query_one(ConsolePane).show(link, force=force)
        self._other_panes(link)

    def _show_panes_now(self) -> bool:
        """The common switch, to an instance whose consoles are kept, done at once: the
        table's cursor, the title and the console they name go out in one frame.
        False when the panes need the worker (consoles to build, one running)."""
        link = self.current
        if self._panes_running or link is None:
            return False
        if not self.query_one(ConsolePane).show_kept(link):
            return False
        self._pane_tabs(link)
        self._other_panes(link)
        # The layout now, not when the switcher's own Layout message reaches the
        # screen: a frame drawn before that (keys of one read move focus too) would
        # show the new note over the old console. No repaint of the whole screen: the
        # layout repaints what moved.
        self.refresh(repaint=False, layout=True)
        return True

    def _pane_tabs(self, link: InstanceLink | None) -> None:
        """The tabs ``link`` offers; the first of them when the one shown is not."""
        tabs = self.query_one("#panes", TabbedContent)
        caps = link.capabilities if link is not None and link.conn is not None else None
        if link is not None and link.status.state is InstanceState.DEAD:
            # What a dead instance left behind: its serial logs and its journal.
            caps = frozenset({Capability.SERIAL, Capability.EVENTS})
        usable = link if link is not None and link.conn is not None else None
        for pane_id, (_title, needs) in PANES.items():
            shown = bool(caps is None or caps & needs) and (
                pane_id != "console" or has_console(link)
            )
            (tabs.show_tab if shown else tabs.hide_tab)(pane_id)
        cpu = usable is not None and cpu_supported(usable)
        (tabs.show_tab if cpu else tabs.hide_tab)("cpu")
        if tabs.active and not tabs.get_tab(tabs.active).display:
            # the pane shown is gone for this instance: show the first one it has
            first = next((p for p in PANES if tabs.get_tab(p).display), None)
            if first is not None:
                tabs.active = first

    def _other_panes(self, link: InstanceLink | None) -> None:
        """The pane in view now; the hidden ones after the frame that shows it, so a
        switch of instance is drawn without waiting for them (issue 15 item 27)."""
        tabs = self.query_one("#panes", TabbedContent)
        usable = link if link is not None and link.conn is not None else None
        cpu = usable is not None and cpu_supported(usable)
        shows = {
            "events": lambda: self.query_one(EventsPane).show(link),
            "props": lambda: self.query_one(PropsPane).show(usable),
            "memory": lambda: self.query_one(MemoryPane).show(usable),
            "cpu": lambda: self.query_one(CpuPane).show(usable if cpu else None),
            "timeline": lambda: self.query_one(TimelinePane).show(link),
        }
        now = shows.pop(tabs.active, None)
        if now is not None:
            now()

        def later() -> None:
            # Only the newest, and once: an older one (scheduled before the instance
            # connected, say) running after it would show its panes the stale state
            # (the CPU pane detached again).
            if self._pending_show is not later:
                return
            self._pending_show = None
            if self.current is link:
                for show in shows.values():
                    show()

        # After the frame (a still screen runs these at once), or at once when another
        # pane is picked before that.
        self._pending_show = later
        self.call_after_refresh(later)

    # -- actions ----------------------------------------------------------------------

    def action_focus_pane(self, pane: str) -> None:
        if self._pending_show is not None:
            self._pending_show()  # clears itself
        if pane == "instances":
            # set_focus, not focus(): focus() is deferred, and the next key of a
            # burst (tmux, a fast typist) would still go to the old widget.
            self.set_focus(self.query_one(InstanceTable))
            return
        tabs = self.query_one("#panes", TabbedContent)
        if pane == "console" and not has_console(self.current):
            self._no_console()
            return
        if not tabs.get_tab(pane).display:
            name = self.current.name if self.current else "this instance"
            title = PANES[pane][0] if pane in PANES else pane.upper()
            self.notify(f"{name} has no {title} pane", severity="warning", markup=False)
            return
        tabs.active = pane
        if pane == "console":
            # At once, so the next key of a burst goes there (and again after the
            # refresh that shows the tab, in case it was hidden until now).
            console = self.query_one(ConsolePane)
            console.focus_tabs()
            self.call_after_refresh(console.focus_tabs)
            return
        target = {
            "events": "#ev-list",
            "props": "#prop-tree",
            "memory": "#hexview",
            "cpu": "#disasm",
            "timeline": "#tl-view",
        }[pane]
        self.call_after_refresh(lambda: self.query_one(target).focus())

    def action_console_times(self) -> None:
        """The console's lines with the time each arrived: its channel in the timeline."""
        view = self.query_one(ConsolePane).active_view()
        channel = getattr(view, "channel", None)
        self.query_one(TimelinePane).only_source(channel if isinstance(channel, str) else None)
        self.action_focus_pane("timeline")

    def action_events_filter(self) -> None:
        self.query_one("#panes", TabbedContent).active = "events"
        self.query_one(EventsPane).action_filter()

    def action_events_command(self) -> None:
        self.query_one("#panes", TabbedContent).active = "events"
        self.query_one(EventsPane).action_command()

    @on(ConsolePane.Left)
    def _left_console(self) -> None:
        if self.focused is None:  # the console already moved focus to its tabs
            self.query_one(ConsolePane).focus_tabs()

    def _no_console(self) -> None:
        name = self.current.name if self.current else "this instance"
        self.notify(f"{name} has no serial console", severity="warning")

    def _need(self, cap: Capability, what: str) -> InstanceLink | None:
        link = self.current
        if link is None:
            self.notify("no instance selected", severity="warning")
            return None
        if link.conn is not None and cap not in link.capabilities:
            self.notify(
                f"{link.name}: the {link.inst.backend} backend cannot {what}",
                severity="warning",
                markup=False,
            )
            return None
        return link

    def action_start_target(self) -> None:
        """`n`: as `emutui start TARGET --name NAME [--paused]`, a free name suggested."""
        from emutui.core.paths import check_name
        from emutui.tui.screens.start import StartScreen

        cfg = self.emu.config
        if cfg is None or not cfg.targets:
            self.notify("no targets in the config (emutui.toml)", severity="warning")
            return
        items = [
            (n, f"{t.backend} {t.options.get('machine', '')}")
            for n, t in sorted(cfg.targets.items())
        ]

        def picked(req: StartRequest | None) -> None:
            if req is not None:
                self._start(req.target, req.name, req.paused)

        self.app.push_screen(StartScreen(items, self._taken_names, check_name), picked)

    def _taken_names(self) -> set[str]:
        """Names a new instance cannot have: those of live instances (a dead one's is reused)."""
        return {n for n, lk in self.emu.links.items() if lk.status.state is not InstanceState.DEAD}

    @work(group="lifecycle", exit_on_error=False)
    async def _start(self, target: str, name: str | None = None, paused: bool = False) -> None:
        from emutui import control

        label = name or target
        self.notify(f"starting {label} ({target}){' paused' if paused else ''}…", markup=False)
        try:
            inst = await control.start_target(
                self.emu.config, self.emu.registry, target, name, paused
            )
        except EmutuiError as e:
            self.notify(str(e), title="start failed", severity="error", markup=False)
            return
        self.notify(f"{inst.name} started (pid {inst.pid})", markup=False)
        self._select_after = inst.name
        self.emu.rescan()

    def action_restart_instance(self) -> None:
        """Stop and start the same target under the same name (asks first)."""
        link = self.current
        if link is None or not self.offers("restart_instance"):
            why = (
                "no instance selected"
                if link is None
                else f"{link.name}: target {link.inst.target!r} is not in the config"
                if self.emu.config is None or link.inst.target not in self.emu.config.targets
                else f"{link.name}: the {link.inst.backend} backend cannot be restarted"
            )
            self.notify(why, severity="warning", markup=False)
            return

        def confirmed(ok: bool | None) -> None:
            if ok:
                self._restart(link)

        self.app.push_screen(
            ConfirmScreen(
                f"Restart {link.name}: stop it (pid {link.inst.pid or '-'}) and start target "
                f"{link.inst.target} again under the same name?",
                yes="Restart",
            ),
            confirmed,
        )

    @work(group="lifecycle", exit_on_error=False)
    async def _restart(self, link: InstanceLink) -> None:
        from emutui import control

        name, target = link.name, link.inst.target
        self.emu.stopping.add(name)
        try:
            await self.emu.drop_link(name)
            await control.stop_instance(self.emu.registry, link.inst)
            self.notify(f"{name} stopped; starting {target}…", markup=False)
            inst = await control.start_target(
                self.emu.config, self.emu.registry, target, name, False
            )
        except EmutuiError as e:
            self.notify(str(e), title="restart failed", severity="error", markup=False)
        else:
            self.notify(f"{inst.name} restarted (pid {inst.pid})", markup=False)
            self._select_after = name
        finally:
            self.emu.stopping.discard(name)
        self.emu.rescan()

    def action_stop_instance(self) -> None:
        link = self.current
        if link is None or not self.offers("stop_instance"):
            link = self._need(Capability.STOP, "stop")
        if link is None:
            return
        if link.inst.run is not None:
            self.notify(
                f"{link.name} is a kept run ('emutui rm {link.name}' removes it)",
                severity="warning",
            )
            return
        what = "detach from" if link.inst.is_daemon else "stop"

        def confirmed(ok: bool | None) -> None:
            if ok:
                self._stop(link)

        self.app.push_screen(
            ConfirmScreen(
                f"{what.capitalize()} {link.name} ({link.inst.backend}, pid "
                f"{link.inst.pid or '-'})? Its run is kept (logs, events, how it ended): "
                f"'emutui runs {link.name}' lists it.",
                yes="Stop",
            ),
            confirmed,
        )

    @work(group="lifecycle", exit_on_error=False)
    async def _stop(self, link: InstanceLink) -> None:
        from emutui import control

        self.emu.stopping.add(link.name)
        try:
            from emutui.core.runs import who

            await self.emu.drop_link(link.name)
            await control.stop_instance(self.emu.registry, link.inst, by=f"emutui TUI: {who()}")
        except EmutuiError as e:
            self.notify(str(e), title="stop failed", severity="error", markup=False)
        else:
            self.notify(f"{link.name} stopped", markup=False)
        finally:
            self.emu.stopping.discard(link.name)
        self.emu.rescan()

    def action_reset_instance(self) -> None:
        link = self._need(Capability.RESET, "reset")
        if link is None:
            return

        def confirmed(ok: bool | None) -> None:
            if ok:
                self._control(link, "reset")

        # a backend may say what its reset does (vrtd: which cards, into which shell)
        what = getattr(link.conn, "reset_prompt", None)
        detail = what() if callable(what) else ""
        prompt = f"Reset {link.name}?" + (f"\n{detail}" if detail else "")
        self.app.push_screen(ConfirmScreen(prompt, yes="Reset"), confirmed)

    def action_pause_instance(self) -> None:
        link = self._need(Capability.PAUSE, "pause")
        if link is not None:
            self._control(link, "pause")

    def action_resume_instance(self) -> None:
        link = self._need(Capability.PAUSE, "resume")
        if link is not None:
            self._control(link, "resume")

    @work(group="lifecycle", exit_on_error=False)
    async def _control(self, link: InstanceLink, verb: str) -> None:
        try:
            conn = link.require()
            await getattr(conn, verb)()
        except EmutuiError as e:
            self.notify(str(e), title=f"{verb} failed", severity="error", markup=False)
            return
        link.poll_soon()


def _t(value: object) -> str:
    """Text emutui did not write (names, paths, peer and guest text), safe inside markup."""
    from rich.markup import escape

    return escape(display_line(str(value)))
