"""Instances pane: one row per instance with its live state, uptime and pid."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from emutui.core.instance import format_uptime
from emutui.core.model import InstanceState
from emutui.tui.links import InstanceLink

STATE_STYLE = {
    InstanceState.RUNNING: "bold green",
    InstanceState.PAUSED: "bold yellow",
    InstanceState.DEAD: "bold red",
    InstanceState.BUSY: "bold magenta",
    InstanceState.DISCONNECTED: "bold red",
    InstanceState.STARTING: "dim",
    InstanceState.UNKNOWN: "dim",
}
COLUMNS = ("name", "backend", "target", "state", "uptime", "pid")


class InstanceTable(DataTable[Text | str]):
    """Rows keyed by instance name; cells are updated in place so the cursor stays put."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("n", "screen.start_target", "Start"),
        Binding("x", "screen.stop_instance", "Stop"),
        Binding("R", "screen.restart_instance", "Restart", show=False),
        Binding("r", "screen.reset_instance", "Reset"),
        Binding("p", "screen.pause_instance", "Pause"),
        Binding("u", "screen.resume_instance", "Resume"),
    ]

    def __init__(self, clock: Callable[[], float] = time.time, **kw: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kw)  # type: ignore[arg-type]
        self.clock = clock

    def on_mount(self) -> None:
        for col in COLUMNS:
            self.add_column(col.upper(), key=col)

    def _cells(self, link: InstanceLink) -> dict[str, Text | str]:
        inst = link.inst
        name = Text(inst.name, "bold")
        # Tags go with the backend, in brackets, so they never read as part of the name.
        tags = [t for t, on in (("sim", link.simulated), ("daemon", inst.is_daemon)) if on]
        backend = Text(inst.backend)
        if tags:
            backend.append(f" [{','.join(tags)}]", "italic cyan")
        state = link.status.state
        alive = state is not InstanceState.DEAD
        created = inst.handles.created if inst.handles else None
        uptime = self.clock() - created if alive and created else None
        return {
            "name": name,
            "backend": backend,
            "target": Text(inst.target),  # Text, not str: a str cell is parsed as markup
            "state": Text(state.value, STATE_STYLE.get(state, "")),
            "uptime": format_uptime(uptime),
            "pid": str(inst.pid) if inst.pid else "-",
        }

    def sync(self, links: Iterable[InstanceLink]) -> None:
        """Bring the rows in line with ``links``: add, update changed cells, remove gone."""
        wanted = {link.name: link for link in links}
        for key in list(self.rows):
            if key.value not in wanted:
                self.remove_row(key)
        existing = {k.value for k in self.rows}
        for name, link in wanted.items():
            cells = self._cells(link)
            if name not in existing:
                self.add_row(*(cells[c] for c in COLUMNS), key=name)
                continue
            for col in COLUMNS:
                if self.get_cell(name, col) != cells[col]:
                    self.update_cell(name, col, cells[col])

    def selected_name(self) -> str | None:
        if self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:
            return None
        return key.value
