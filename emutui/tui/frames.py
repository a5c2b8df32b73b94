"""Frame pacing: a frame as soon as the screen changes, 60 a second at most on average.

Textual draws a screen from an interval timer (``screen_update``, 1/60 s) that is
paused while nothing is dirty. After a pause its schedule skips ahead by one whole
period too many (``count = int((now - start) / interval + 1)`` and then
``count + 1``), so a change that lands shortly after a frame waits one to two
periods (17-33 ms) for the next one. A switch of instance is two changes in a row
(the table's cursor, then the console shown), so every switch paid that wait:
it was most of the 45 ms a switch took (issue 15 item 27) and the tail of key to
screen (item 28).

``FrameTimer`` keeps Textual's limit as an average (60 frames a second under a
flood) without the grid, and lets two frames go back to back after a still moment:
a frame the app draws on its own (the uptime column's second ticking over) no longer
makes the echo of a key that lands just after it wait a period (item 28). Ticks that
draw nothing (widgets of hidden panes refreshing) do not count.
``PacedScreen`` gives a screen that timer.
"""

from __future__ import annotations

from asyncio import sleep
from typing import TypeVar

from textual._time import get_time
from textual.screen import UPDATE_PERIOD, Screen
from textual.timer import EventTargetGone, Timer

ResultT = TypeVar("ResultT")


class FrameTimer(Timer):
    """A paused-until-needed timer that ticks as soon as it is resumed, within a budget
    of one tick per ``interval`` on average and at most ``burst`` ticks back to back."""

    burst = 2.0
    free_tick = 0.001  # seconds: a tick this short drew nothing worth counting

    async def _run(self) -> None:
        interval = self._interval
        tokens, then = self.burst, get_time()
        while True:
            await self._active.wait()
            now = get_time()
            tokens = min(self.burst, tokens + (now - then) / interval)
            then = now
            if tokens < 0.999:  # (not 1.0: float error would add a needless wait)
                await sleep((1.0 - tokens) * interval)
                continue  # count the wait, and wait again if paused meanwhile
            try:
                await self._tick(next_timer=now, count=0)
            except EventTargetGone:
                break
            # A tick that drew nothing (a hidden pane's widget asked for a refresh)
            # costs a quarter: two of those each second used up the burst, and the echo
            # of a key that came just after them waited a period. Not nothing: a tick
            # that keeps the timer running (the app exiting skips the callback that
            # pauses it) must still come to a sleep, or the loop never yields.
            tokens -= 1.0 if get_time() - now >= self.free_tick else 0.25


class PacedScreen(Screen[ResultT]):
    """A screen drawn by ``FrameTimer`` instead of Textual's interval timer."""

    _frame_timer: FrameTimer | None = None

    @property
    def _update_timer(self) -> Timer:
        timer = self._frame_timer
        if timer is None:
            timer = FrameTimer(
                self,
                UPDATE_PERIOD,
                name="screen_update",
                callback=self._on_timer_update,
                pause=True,
            )
            timer._start()
            self._timers.add(timer)
            self._frame_timer = timer
        return timer
