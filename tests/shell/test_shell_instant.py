"""The prompt drawn before prompt_toolkit is up, and the one Application per session
(issue 11 item 3, interactive speed): nothing typed early is lost, the terminal is
given back as it was, and a failed start leaves no prompt behind."""

from __future__ import annotations

import os
import termios
from pathlib import Path

from emutui.core.instance import Instance
from tests.conftest import needs_qemu
from tests.shell.ptyrun import PtyShell


def echo_on(fd: int) -> bool:
    return bool(termios.tcgetattr(fd)[3] & termios.ECHO)


def test_failed_connect_takes_the_prompt_away_and_restores_the_terminal(tmp_path: Path) -> None:
    s = PtyShell("--socket", str(tmp_path / "nothing.sock"))
    try:
        assert s.wait() == 1
        assert "(qmp:" in s.plain()  # the prompt was up at once …
        after = s.raw[s.raw.index(b"(qmp:") :]
        assert b"\r\x1b[K" in after  # … and taken off the line before the error
        assert "emutui:" in s.plain()
        assert "Traceback" not in s.plain()
        assert echo_on(s.fd)
    finally:
        s.close()


@needs_qemu
def test_keys_typed_before_prompt_toolkit_is_up_run(guest: Instance, tmp_path: Path) -> None:
    env = dict(os.environ, EMUTUI_SHELL_HISTORY=str(tmp_path / "hist"))
    s = PtyShell(guest.name, env=env)
    try:
        s.expect("(qmp:")  # the early prompt: prompt_toolkit is not imported yet
        s.send("query-status\r")  # the terminal keeps it, unechoed, until the shell reads
        s.expect('"running": true')
        assert s.plain().count("query-status") == 1  # not echoed by the terminal too
        mark = len(s.plain())
        s.send("query-na")
        s.send("\x03")  # Ctrl+C drops the line, the session goes on
        s.expect("query-na^C", start=mark)
        s.send("query-name\r")
        s.expect("{}", start=mark)
        s.send("\x04")
        assert s.wait() == 0
        assert echo_on(s.fd)  # prompt_toolkit gave back our mode; we gave back the original
    finally:
        s.close()


def test_trimmed_layout_keeps_the_input_its_menu_search_and_toolbar() -> None:
    from prompt_toolkit.application import create_app_session
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.layout.controls import BufferControl, SearchBufferControl
    from prompt_toolkit.layout.menus import CompletionsMenuControl
    from prompt_toolkit.output import DummyOutput

    from emutui.shell.repl import Shell

    with create_pipe_input() as inp, create_app_session(input=inp, output=DummyOutput()):
        shell = Shell(None, None, "x", history=None)  # type: ignore[arg-type]
        session = shell.make_session()
        layout = session.app.layout
        assert len(layout.container.get_children()) == 2  # the input (with floats), the toolbar
        controls = [w.content for w in layout.find_all_windows()]
        assert any(
            isinstance(c, BufferControl) and c.buffer is session.default_buffer for c in controls
        )
        assert any(isinstance(c, SearchBufferControl) for c in controls)  # Ctrl+R
        assert sum(isinstance(c, CompletionsMenuControl) for c in controls) == 1
        assert any(
            "bottom-toolbar" in str(getattr(w, "style", "")) for w in layout.find_all_windows()
        )


@needs_qemu
def test_lines_typed_ahead_run_one_after_the_other(guest: Instance, tmp_path: Path) -> None:
    env = dict(os.environ, EMUTUI_SHELL_HISTORY=str(tmp_path / "hist"))
    s = PtyShell(guest.name, env=env)
    try:
        s.expect("(qmp:")
        s.expect("Connected to QEMU")
        mark = len(s.plain())
        s.send("query-name\rquery-status\r!info status\r")  # one read: no bracketed paste
        s.expect("VM status: running", start=mark)
        text = s.plain()[mark:]
        # each line, then its answer, in the order typed (not run at the same time)
        order = [
            text.index("query-name"),
            text.index("{}"),
            text.index("query-status"),
            text.index('"running": true'),
            text.index("!info status"),
            text.index("VM status: running"),
        ]
        assert order == sorted(order), text
        s.send("\x04")
        assert s.wait() == 0
    finally:
        s.close()
