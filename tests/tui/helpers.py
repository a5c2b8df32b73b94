"""Helpers for Pilot tests: wait for a condition while the app runs, read what a widget shows."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual.pilot import Pilot
from textual.widget import Widget


async def until(
    pilot: Pilot, cond: Callable[[], object], timeout: float = 15.0, what: str = ""
) -> None:
    """Let the app run until ``cond()`` is true (no wall-clock assertion: a generous cap)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if cond():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what or cond}")


def widget_text(widget: Widget) -> str:
    """The text a Line-API widget shows now, row by row."""
    rows = []
    for y in range(widget.size.height):
        strip = widget.render_line(y)
        rows.append("".join(seg.text for seg in strip).rstrip())
    return "\n".join(rows)
