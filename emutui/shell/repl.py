"""The interactive shell (prompt_toolkit) and its scripting twin (``-c``, stdin).

Interactive: a PromptSession whose completer adapts the UI-agnostic engine,
a bottom toolbar with the current command's arguments, coloured JSON results,
history in the XDG state dir, and a task that prints events above the prompt
while ``prompt_async`` waits (prompt_toolkit's print_formatted_text runs in
the terminal above a running app, so nothing is interleaved with the input line).

Scripting: the same Mode runs each line and prints JSON, no terminal needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncGenerator, Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import FormattedText, PygmentsTokens, StyleAndTextTuples
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.shortcuts import print_formatted_text
from prompt_toolkit.styles import Style

from emutui.core.errors import DisconnectedError, EmutuiError, InstanceDeadError
from emutui.core.model import Event
from emutui.shell.completion import Candidate
from emutui.shell.modes import Mode, QmpMode, Result

STYLE = Style.from_dict(
    {
        "prompt": "ansicyan bold",
        "prompt.cont": "ansibrightblack",
        "error": "ansired bold",
        "event": "ansimagenta",
        "event.name": "ansimagenta bold",
        "event.time": "ansibrightblack",
        "dim": "ansibrightblack",
        "bottom-toolbar": "noreverse bg:#303030 #d0d0d0",
        "bottom-toolbar.command": "bold #ffffff",
        "bottom-toolbar.current": "bold #ffd75f",
        "bottom-toolbar.optional": "#8a8a8a",
    }
)


# -- history -------------------------------------------------------------------------------


def history_path(backend: str) -> Path | None:
    """``$EMUTUI_SHELL_HISTORY`` (empty: none), else the XDG state dir, one file per backend."""
    env = os.environ.get("EMUTUI_SHELL_HISTORY")
    if env is not None:
        return Path(env).expanduser() if env else None
    from platformdirs import user_state_path

    return user_state_path("emutui") / f"shell_history_{backend}"


def open_history(path: Path | None) -> History:
    """A FileHistory created 0600: monitor lines can hold secrets (object-add secret …)."""
    if path is None:
        return InMemoryHistory()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600)
        os.close(fd)
        os.chmod(path, 0o600)
    except OSError:
        return InMemoryHistory()  # a read-only home must not stop the shell
    return FileHistory(str(path))


# -- rendering -----------------------------------------------------------------------------


def json_tokens(value: Any) -> PygmentsTokens:
    from pygments.lexers.data import JsonLexer  # type: ignore[import-untyped]

    text = json.dumps(value, indent=2, default=str)
    return PygmentsTokens(list(JsonLexer().get_tokens(text)))


def event_line(ev: Event) -> FormattedText:
    t = time.strftime("%H:%M:%S", time.localtime(ev.timestamp))
    ms = int((ev.timestamp % 1) * 1000)
    data = json.dumps(ev.data, separators=(",", ":"), default=str) if ev.data else ""
    parts: StyleAndTextTuples = [
        ("class:event", "event "),
        ("class:event.time", f"{t}.{ms:03d} "),
        ("class:event.name", ev.name),
    ]
    if data:
        parts.append(("class:event", " " + data))
    return FormattedText(parts)


class EngineCompleter(Completer):
    """prompt_toolkit's view of the completion engine (the engine knows nothing of it)."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell

    def _input(self, document: Document) -> tuple[str, int, int]:
        # In a multi-line transaction the engine sees the lines typed so far too.
        pending = self.shell.pending
        prefix = pending + "\n" if pending else ""
        return prefix + document.text, len(prefix) + document.cursor_position, len(prefix)

    def _convert(self, cands: list[Candidate], cursor: int, offset: int) -> Iterator[Completion]:
        for c in cands:
            if c.start < offset:
                continue
            yield Completion(
                c.text,
                start_position=c.start - cursor,
                display=c.display or c.text,
                display_meta=c.meta,
            )

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        text, cursor, offset = self._input(document)
        yield from self._convert(self.shell.mode.engine.complete(text, cursor), cursor, offset)

    async def get_completions_async(
        self, document: Document, complete_event: CompleteEvent
    ) -> AsyncGenerator[Completion, None]:
        text, cursor, offset = self._input(document)
        cands = await self.shell.mode.engine.complete_async(text, cursor)
        for c in self._convert(cands, cursor, offset):
            yield c


# -- the shell -----------------------------------------------------------------------------


class Shell:
    """One shell session over a connected connector."""

    def __init__(
        self,
        mode: Mode,
        conn: Any,
        name: str,
        *,
        history: Path | None = None,
        events: bool = True,
        patch: bool = True,
    ) -> None:
        self.mode = mode
        self.conn = conn
        self.name = name
        self.history_file = history
        self.show_events = events
        self.patch = patch  # patch_stdout for a real terminal; tests pass their own output
        self.pending = ""  # lines of an unfinished transaction
        self.executed: list[str] = []
        self.session: PromptSession[str] | None = None
        self._done = False
        self._rc = 0

    # -- interactive ----------------------------------------------------------------------

    def _prompt(self) -> FormattedText:
        if self.pending:
            return FormattedText([("class:prompt.cont", "... ")])
        return FormattedText([("class:prompt", f"({self.mode.name}:{self.name}) ")])

    def _toolbar(self) -> FormattedText:
        session = self.session
        if session is None:
            return FormattedText([])
        buf = session.default_buffer
        text, cursor = buf.text, buf.cursor_position
        if self.pending:
            text, cursor = self.pending + "\n" + text, len(self.pending) + 1 + cursor
        sig = self.mode.engine.signature(text, cursor)
        if sig is None:
            hint = " Tab completes · .help · Ctrl+D leaves"
            if isinstance(self.mode, QmpMode) and not self.mode.ready:
                hint = " loading the QMP schema…" + hint
            return FormattedText([("class:bottom-toolbar", hint)])
        parts: StyleAndTextTuples = [("class:bottom-toolbar.command", f" {sig.command}")]
        for p in sig.params:
            style = (
                "class:bottom-toolbar.current"
                if p.name == sig.current
                else ("class:bottom-toolbar.optional" if p.optional else "class:bottom-toolbar")
            )
            label = f"{p.name}: {p.type}"
            parts.append(("class:bottom-toolbar", "  "))
            parts.append((style, f"[{label}]" if p.optional else label))
        if sig.note:
            parts.append(("class:bottom-toolbar.optional", f"  — {sig.note}"))
        return FormattedText(parts)

    def make_session(self) -> PromptSession[str]:
        self.session = PromptSession(
            history=open_history(self.history_file),
            completer=EngineCompleter(self),
            complete_while_typing=True,
            bottom_toolbar=self._toolbar,
            style=STYLE,
            enable_history_search=False,
            complete_in_thread=False,
        )
        return self.session

    def echo(self, text: Any) -> None:
        print_formatted_text(text, style=STYLE)

    def echo_error(self, msg: str) -> None:
        self.echo(FormattedText([("class:error", "error: "), ("", msg)]))

    def echo_result(self, result: Result) -> None:
        if result.text:
            text = str(result.value).rstrip("\n")
            if text:
                self.echo(text)
            return
        self.echo(json_tokens(result.value))

    async def _pump_events(self) -> None:
        stream = self.conn.events()
        try:
            async for ev in stream:
                if self.show_events:
                    self.echo(event_line(ev))
        except EmutuiError:
            return
        else:
            # The stream ends when the monitor connection does (QEMU quit or was
            # killed): say so now rather than at the next command, and leave.
            if getattr(self.conn, "connected", True) is False and not self._done:
                self.echo_error(f"{self.name}: the monitor connection closed")
                self._rc = 1
                self._done = True
                app = self.session.app if self.session else None
                if app is not None and app.is_running:
                    app.exit(exception=EOFError())
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    async def interact(self) -> int:
        """Run until .quit, Ctrl+D or the instance going away; returns the exit status."""
        session = self.session or self.make_session()
        await self.mode.prepare()
        events = asyncio.ensure_future(self._pump_events())
        ctx = patch_stdout(raw=True) if self.patch else contextlib.nullcontext()
        try:
            with ctx:
                while not self._done:
                    try:
                        line = await session.prompt_async(self._prompt)
                    except KeyboardInterrupt:
                        self.pending = ""
                        continue
                    except EOFError:
                        break
                    await self.handle(line)
        finally:
            events.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await events
        return self._rc

    async def handle(self, line: str) -> None:
        """One line from the prompt: continue a transaction, run a command, or a shell command."""
        full = f"{self.pending}\n{line}" if self.pending else line
        if self.mode.is_incomplete(full):
            self.pending = full
            return
        self.pending = ""
        if not full.strip() or full.lstrip().startswith("#"):
            return
        self.executed.append(full)
        stripped = full.strip()
        if stripped.startswith(".") and self._meta(stripped):
            return
        try:
            result = await self.mode.run(full)
        except (InstanceDeadError, DisconnectedError) as e:
            self.echo_error(str(e))
            self._rc = 1
            self._done = True
            return
        except EmutuiError as e:
            self.echo_error(str(e))
            return
        self.echo_result(result)

    def _meta(self, line: str) -> bool:
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        if word in (".quit", ".exit", ".q"):
            self._done = True
        elif word in (".help", ".h", ".?"):
            self.echo(self.mode.help(rest))
        elif word == ".events":
            if rest in ("on", "off"):
                self.show_events = rest == "on"
            self.echo(f"events {'on' if self.show_events else 'off'}")
        elif word == ".schema" and isinstance(self.mode, QmpMode):
            schema = self.mode.engine.schema
            if schema is None:
                self.echo_error("the QMP schema is not loaded yet")
            elif rest:
                sig = schema.signature(rest)
                self.echo(json_tokens({n: t + ("?" if o else "") for n, t, o in sig}))
            else:
                self.echo(json_tokens(schema.command_names))
        else:
            return False
        return True

    # -- scripting ------------------------------------------------------------------------

    async def run_lines(
        self,
        lines: Iterable[str],
        out: TextIO | None = None,
        err: TextIO | None = None,
        json_lines: bool = False,
    ) -> int:
        """The scripting path (see emutui.shell.script), for callers holding a Shell."""
        from emutui.shell.script import run_lines

        return await run_lines(self.mode, lines, out, err, json_lines)
