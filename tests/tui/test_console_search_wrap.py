"""Console search says when it wraps round the end of the scrollback (issue 15 item 15)."""

from __future__ import annotations

from pathlib import Path

from emutui.tui.widgets.console import ConsoleView
from tests.tui.test_console import ConsoleApp, fake_instance, rendered, wait_until


async def test_search_next_says_when_it_wraps(tmp_path: Path) -> None:
    inst = fake_instance(tmp_path, b"".join(b"line %d\r\n" % i for i in range(30)))
    view = ConsoleView(inst, "com1", None, scrollback=50)
    app = ConsoleApp(view)
    async with app.run_test(size=(40, 10)) as pilot:
        await wait_until(pilot, lambda: any("line 29" in ln for ln in rendered(view)))
        assert view.search("line 2") and not view.search_wrapped  # newest: line 29
        hits = []
        for _ in range(12):  # line 28 … line 2, then round to the newest again
            assert view.search_next()
            hits.append(view.search_wrapped)
        assert hits.count(True) == 1
