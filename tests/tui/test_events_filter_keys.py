"""Events pane filter: Enter (and Esc) hand the keyboard back to the list at once.

Keys typed right behind Enter (one read from the terminal, or before the next frame)
went into the filter box too: Textual forwards each key to the focused widget as it
leaves the App's queue, and the box still had focus until the Enter it had been sent
bubbled back up to the App's bindings and the deferred focus() ran.

The keys are posted to the App together, as the driver delivers one read: Pilot's
press() waits for the app to go idle after every key, so it cannot show this.
"""

from __future__ import annotations

from pathlib import Path

from textual import events
from textual.widgets import Input

from emutui.tui.widgets.events import EventList, EventsPane
from tests.tui.helpers import until
from tests.tui.snapshot_app import build_app
from tests.tui.test_app_fake import started


async def test_keys_in_the_same_read_as_enter_or_esc_leave_the_filter(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        await pilot.press("3")
        pane = app.screen.query_one(EventsPane)
        box = pane.query_one("#ev-filter", Input)
        await until(pilot, lambda: len(pane.event_list.items) == 6)
        await pilot.press("slash", *"tray")
        await until(pilot, lambda: pane.filter_text == "tray")
        for key, ch in (("enter", "\r"), ("k", "k"), ("j", "j")):
            app.post_message(events.Key(key, ch))
        await until(pilot, lambda: isinstance(app.focused, EventList))
        await pilot.pause()  # until the app is idle: every key posted has been handled
        assert box.value == "tray" and pane.filter_text == "tray"
        # Esc clears the filter and closes the box; what follows is the list's too.
        await pilot.press("slash")
        assert app.focused is box
        for key, ch in (("escape", "\x1b"), ("k", "k")):
            app.post_message(events.Key(key, ch))
        # k moves the list's cursor up from the last row (it is not eaten by the box)
        await until(pilot, lambda: pane.event_list.cursor == len(pane.event_list.rows) - 2)
        assert box.value == "" and pane.filter_text == ""
        assert isinstance(app.focused, EventList)
        # Keys before Enter in the same read are the filter's, those after it the list's.
        await pilot.press("slash", "ctrl+a", "ctrl+k")
        await until(pilot, lambda: pane.filter_text == "")
        for key in ("r", "e", "s", "enter", "k"):
            app.post_message(events.Key(key, None if key == "enter" else key))
        await until(pilot, lambda: isinstance(app.focused, EventList))
        await until(pilot, lambda: pane.filter_text == "res")
        await pilot.pause()
        assert box.value == "res" and box.display  # a filter on: its box stays shown
