"""Follow mode is a choice per region, off by default, and shows on the hex view."""

from __future__ import annotations

from pathlib import Path

from emutui.tui.widgets.hexview import HexView, _runs
from emutui.tui.widgets.memory import MemoryPane
from tests.tui.helpers import until
from tests.tui.snapshot_app import build_app
from tests.tui.test_app_fake import started


def test_pages_are_read_in_runs() -> None:
    assert _runs([5, 1, 2, 3, 7, 8]) == [[1, 2, 3], [5], [7, 8]]
    assert _runs([]) == []


async def test_follow_is_per_region_and_visible(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        await pilot.press("5")
        mem = app.screen.query_one(MemoryPane)
        await until(pilot, lambda: len(mem.regions) == 2)
        hv = app.screen.query_one(HexView)
        mem.select_region("edu0.bar0")
        await until(pilot, lambda: hv.mem_region is not None and hv.mem_region.name == "edu0.bar0")
        await hv.wait_loaded()
        conn = app.fake_connectors["pc"]  # type: ignore[attr-defined]
        # MMIO: nothing re-reads the registers unless asked (the window is one read)
        reads = conn.reads
        await pilot.pause(1.2)
        assert conn.reads == reads and not hv.follow and not hv.border_title
        hv.focus()
        await pilot.press("f")
        assert hv.follow and hv.has_class("-following")
        assert "re-reads these registers" in str(hv.border_title)
        await until(pilot, lambda: conn.reads > reads, what="a follow re-read")
        # another region does not inherit it...
        mem.select_region("ram")
        await until(pilot, lambda: hv.mem_region is not None and hv.mem_region.name == "ram")
        assert not hv.follow and not hv.border_title
        # ...and coming back finds it as it was left
        mem.select_region("edu0.bar0")
        await until(pilot, lambda: hv.mem_region is not None and hv.mem_region.name == "edu0.bar0")
        assert hv.follow
        hv.focus()
        await pilot.press("f")
        assert not hv.follow and not hv.has_class("-following")
        assert mem.following == set()
