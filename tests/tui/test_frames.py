"""Frame pacing (emutui/tui/frames.py) on a fake clock: when a change is drawn."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from emutui.tui import frames


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Target:
    """What a Timer needs of its target and of the app: to be alive."""

    _exit = False
    features: frozenset[str] = frozenset()

    def _handle_exception(self, error: Exception) -> None:
        raise error


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(frames, "get_time", c)

    async def sleep(seconds: float) -> None:
        c.now += seconds
        await asyncio.sleep(0)

    monkeypatch.setattr(frames, "sleep", sleep)
    return c


def run_ticks(clock: Clock, changes: list[tuple[float, float]]) -> list[float]:
    """Resume the timer at each (time, cost of the frame); returns when each tick ran."""
    ticks: list[float] = []
    cost = {"next": 0.0}

    async def main() -> None:
        from textual._context import active_app

        active_app.set(Target())  # type: ignore[arg-type]  # Timer._tick reads app._exit
        target = Target()
        timer: Any = None

        async def tick() -> None:
            ticks.append(clock.now)
            clock.now += cost["next"]
            timer.pause()  # as Screen._on_timer_update does

        timer = frames.FrameTimer(target, 1 / 60, callback=tick, pause=True)  # type: ignore[arg-type]
        timer._start()
        for at, frame_cost in changes:
            while clock.now < at:
                clock.now = at
            cost["next"] = frame_cost
            timer.resume()
            for _ in range(100):
                await asyncio.sleep(0)
        timer.stop()

    asyncio.run(main())
    return ticks


def test_a_change_after_a_still_moment_is_drawn_at_once(clock: Clock) -> None:
    ticks = run_ticks(clock, [(100.5, 0.004)])
    assert ticks == [100.5]


def test_two_frames_go_back_to_back_then_the_rate_is_kept(clock: Clock) -> None:
    # three costly changes in the same instant: two at once, the third a period later
    ticks = run_ticks(clock, [(100.5, 0.004), (100.504, 0.004), (100.508, 0.004)])
    assert ticks[:2] == [100.5, 100.504]
    assert ticks[2] > 100.508
    assert ticks[2] == pytest.approx(100.5 + 1 / 60, abs=0.004)


def test_ticks_that_draw_nothing_do_not_use_the_budget(clock: Clock) -> None:
    # the uptime tick's empty frames, then a key's echo right behind them
    ticks = run_ticks(clock, [(100.5, 0.0), (100.5001, 0.0), (100.5002, 0.0), (100.503, 0.004)])
    assert ticks[-1] == 100.503


def test_a_timer_left_running_still_yields(clock: Clock) -> None:
    """When the callback does not pause the timer (Textual skips it while the app
    exits), the loop must still come to a sleep, or stopping it hangs for ever."""
    done: list[bool] = []

    async def main() -> None:
        from textual._context import active_app

        active_app.set(Target())  # type: ignore[arg-type]
        calls: list[float] = []

        async def tick() -> None:
            calls.append(clock.now)  # and no pause()

        timer = frames.FrameTimer(Target(), 1 / 60, callback=tick, pause=True)  # type: ignore[arg-type]
        timer._start()
        task = timer._task
        timer.resume()
        for _ in range(50):
            await asyncio.sleep(0)
        timer.stop()
        for _ in range(50):
            await asyncio.sleep(0)
        done.append(task is not None and task.done())

    asyncio.run(main())
    assert done == [True]
