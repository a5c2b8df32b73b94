"""Instances pane: one row per instance with its live state, uptime and pid."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.coordinate import Coordinate
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
        # Priority: run by the App as the key arrives, not after it has bubbled up
        # through four queues, so `Ctrl+] 1 Down` in one write switches at once.
        Binding("down,j", "cursor_down", "Down", show=False, priority=True),
        Binding("up,k", "cursor_up", "Up", show=False, priority=True),
        Binding("n", "screen.start_target", "Start"),
        Binding("x", "screen.stop_instance", "Stop"),
        Binding("R", "screen.restart_instance", "Restart", show=False),
        Binding("r", "screen.reset_instance", "Reset"),
        Binding("p", "screen.pause_instance", "Pause"),
        Binding("u", "screen.resume_instance", "Resume"),
        Binding("h", "screen.toggle_runs", "Runs", show=False),
    ]

    def __init__(self, clock: Callable[[], float] = time.time, **kw: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kw)  # type: ignore[arg-type]
        self.clock = clock
        # Told at once when the cursor's row changes. RowHighlighted still comes, but
        # as a message: by then the moved cursor has been drawn in a frame of its own,
        # and the console it names waits for the next frame (issue 15 item 27).
        self.on_cursor_row: Callable[[str | None], None] | None = None

    def watch_cursor_coordinate(self, old: Coordinate, new: Coordinate) -> None:
        super().watch_cursor_coordinate(old, new)
        if old.row != new.row and self.on_cursor_row is not None:
            self.on_cursor_row(self.selected_name())

    def on_mount(self) -> None:
        for col in COLUMNS:
            # STATE as wide as its longest word from the start: an auto width only
            # grows, so it would depend on which transient state happened to be drawn.
            width = max(len(s.value) for s in InstanceState) if col == "state" else None
            self.add_column(col.upper(), key=col, width=width)

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

    def _run_cells(
        self, run: Any, name: str, head: bool, count: int, open_: bool
    ) -> dict[str, Text | str]:
        """A kept run: read-only, dim; ``head`` is the row standing for a name with no live one."""
        end = run.end()
        when = time.strftime("%m-%d %H:%M:%S", time.localtime(run.started))
        if head:
            cell = Text(name, "bold dim")
            if count > 1:
                cell.append(f" {'▾' if open_ else '▸'}{count - 1}", "dim")
        else:
            cell = Text(f" └ {when}", "dim")
        return {
            "name": cell,
            "backend": str(end.get("backend", "?")),
            "target": str(end.get("target", "?")),
            "state": Text(str(end.get("how") or "kept"), "dim"),
            "uptime": "-",
            "pid": "-",
        }

    def sync(
        self,
        links: Iterable[InstanceLink],
        kept: Mapping[str, Sequence[Any]] | None = None,
        expanded: Collection[str] = (),
    ) -> None:
        """Bring the rows in line with ``links`` (and the kept runs, collapsed under their
        name unless ``expanded``): add, update changed cells, remove gone."""
        kept = kept or {}
        rows: dict[str, dict[str, Text | str]] = {}
        for link in links:
            cells = self._cells(link)
            runs = kept.get(link.name, ())
            if runs:
                name_cell = Text.assemble(cells["name"])
                name_cell.append(f" {'▾' if link.name in expanded else '▸'}{len(runs)}", "dim")
                cells["name"] = name_cell
            rows[link.name] = cells
            if link.name in expanded:
                for r in runs:
                    rows[r.id] = self._run_cells(r, link.name, False, 0, False)
        for name, runs in kept.items():
            if name in rows or not runs:
                continue
            open_ = name in expanded
            rows[runs[0].id] = self._run_cells(runs[0], name, True, len(runs), open_)
            if open_:
                for r in runs[1:]:
                    rows[r.id] = self._run_cells(r, name, False, 0, False)
        keys = list(rows)
        for key in list(self.rows):
            if key.value not in rows:
                self.remove_row(key)
        current = [k.value for k in self.rows]
        if current != keys[: len(current)]:
            # a run row goes under its name, not at the end: rebuild in order
            selected = self.selected_name()
            self.clear()
            for key, cells in rows.items():
                self.add_row(*(cells[c] for c in COLUMNS), key=key)
            if selected in rows:
                self.move_cursor(row=keys.index(selected))
            return
        for key, cells in rows.items():
            if key not in current:
                self.add_row(*(cells[c] for c in COLUMNS), key=key)
                continue
            for col in COLUMNS:
                if self.get_cell(key, col) != cells[col]:
                    self.update_cell(key, col, cells[col])

    def selected_name(self) -> str | None:
        if self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:
            return None
        return key.value
