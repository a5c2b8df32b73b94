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
from prompt_toolkit.application import get_app_session
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.filters import Condition, is_searching
from prompt_toolkit.formatted_text import FormattedText, PygmentsTokens, StyleAndTextTuples
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import Layout
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.shortcuts import print_formatted_text
from prompt_toolkit.styles import Style

from emutui.core.errors import DisconnectedError, EmutuiError, InstanceDeadError
from emutui.core.model import Event
from emutui.core.sanitize import display_line, sanitize_text
from emutui.shell.completion import Candidate
from emutui.shell.instant import InstantPrompt
from emutui.shell.modes import Mode, QmpMode, Result
from emutui.shell.wire import Wire

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


def history_path(backend: str, state_dir: str | None = None) -> Path | None:
    """``$EMUTUI_SHELL_HISTORY`` (empty: none); else, when the state dir is chosen
    (``--state-dir`` or ``$EMUTUI_STATE_DIR``), a dot file in it, so a lab's history
    stays with the lab; else the XDG state dir. One file per backend."""
    env = os.environ.get("EMUTUI_SHELL_HISTORY")
    if env is not None:
        return Path(env).expanduser() if env else None
    chosen = state_dir or os.environ.get("EMUTUI_STATE_DIR")
    if chosen:
        return Path(chosen).expanduser().absolute() / f".shell_history_{backend}"
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


WIRE_SHOW_MAX = 2000  # -v: longer messages are cut on the terminal
HIGHLIGHT_MAX = 256 * 1024  # larger answers (the whole QMP schema) print plain: lexing is slow


def use_color() -> bool:
    return "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def json_ansi(value: Any, color: bool = True) -> str:
    """Indented JSON with ANSI colours, ready for the terminal.

    Straight through Pygments' terminal formatter: about 0.1 ms for a
    query-status answer, where print_formatted_text(PygmentsTokens) took 5-9 ms
    (it builds a renderer and resolves the style for every call).
    """
    text = json.dumps(value, indent=2, default=str)
    if not color or len(text) > HIGHLIGHT_MAX:
        return text + "\n"
    return _highlight(text)


def _highlight(text: str) -> str:
    from pygments import highlight
    from pygments.formatters import TerminalFormatter  # type: ignore[import-untyped]
    from pygments.lexers.data import JsonLexer  # type: ignore[import-untyped]

    return str(highlight(text, JsonLexer(), TerminalFormatter()))


_SGR = {
    "error": "\x1b[1;31m",
    "dim": "\x1b[90m",
    "info": "\x1b[36m",
    "prompt": "\x1b[1;36m",
    "cont": "\x1b[90m",
}


def styled(kind: str, text: str, color: bool = True) -> str:
    return f"{_SGR[kind]}{text}\x1b[0m" if color else text


def formatted_ansi(text: Any, color_depth: Any = None) -> str:
    """Formatted text (or a str) as a string with ANSI colours, in STYLE."""
    import io

    from prompt_toolkit.data_structures import Size
    from prompt_toolkit.formatted_text import to_formatted_text
    from prompt_toolkit.output.vt100 import Vt100_Output
    from prompt_toolkit.renderer import print_formatted_text as render

    buf = io.StringIO()
    out = Vt100_Output(buf, lambda: Size(rows=40, columns=200), term="xterm")
    render(out, to_formatted_text(text), STYLE, color_depth=color_depth)
    out.flush()
    text = buf.getvalue()
    return text if text.endswith("\n") else text + "\n"


def event_line(ev: Event) -> FormattedText:
    t = time.strftime("%H:%M:%S", time.localtime(ev.timestamp))
    ms = int((ev.timestamp % 1) * 1000)
    data = json.dumps(ev.data, separators=(",", ":"), default=str) if ev.data else ""
    parts: StyleAndTextTuples = [
        ("class:event", "event "),
        ("class:event.time", f"{t}.{ms:03d} "),
        ("class:event.name", display_line(ev.name)),
    ]
    if data:
        parts.append(("class:event", " " + data))
    return FormattedText(parts)


def trim_layout(layout: Layout) -> None:
    """Drop the parts of PromptSession's layout this shell never shows.

    Each is laid out (heights, filters) on every render, and a render follows
    every command: the frame around the input (its alternative is the input
    itself), the validation toolbar (no validator), the system prompt (not
    enabled), the numeric-argument toolbar (Meta+digits), the search toolbar of
    a multi-line prompt (this one is single-line: Ctrl+R searches in the input
    line itself), the multi-column completion menu (the style is the column menu)
    and the right prompt (none). What stays: the input with its column menu,
    and the bottom toolbar. About a third of a render.
    """
    from prompt_toolkit.layout import ConditionalContainer, FloatContainer, HSplit

    root = layout.container
    if not isinstance(root, HSplit) or not root.children:
        return
    first = root.children[0]
    main = getattr(first, "alternative_content", None)
    bottom = root.children[-1]
    if not isinstance(main, FloatContainer) or not isinstance(bottom, ConditionalContainer):
        return  # another prompt_toolkit: keep its layout whole
    main.floats[:] = main.floats[:1]  # the CompletionsMenu
    root.children[:] = [main, bottom]


def freeze_layout_walk(layout: Layout) -> None:
    """Remember the prompt's windows once instead of walking the layout per key.

    prompt_toolkit looks up the key bindings for every key it processes, and the
    lookup lists every control of the layout (``find_all_controls``, a full tree
    walk of ~70 containers): about 26 walks per command, the largest cost of
    typing a line. A PromptSession's tree never changes (its one DynamicContainer
    is the Frame's, which always returns the same body), so the list is computed
    once.
    """
    windows = list(layout.find_all_windows())
    layout.find_all_windows = lambda: iter(windows)  # type: ignore[method-assign]


def fast_typing(app: Any, buffer: Buffer) -> None:
    """Insert a run of typed characters in one go instead of one key binding per key.

    prompt_toolkit resolves the key bindings (a version walk of ~10 nested
    registries and a dozen filters) and runs self-insert for every character:
    about 0.15 ms each, 2 ms for a typed ``query-status``. When a read from the
    terminal starts with plain printable characters, nothing is pending in the
    key processor and the line is being edited plainly (emacs mode, its buffer
    focused, no search, selection, macro, quoted insert or numeric argument),
    self-insert is all those keys would do: they go in as one insert_text, as a
    paste does. Anything else (and whatever follows the run) takes the normal path.
    """
    from prompt_toolkit.enums import EditingMode

    kp = app.key_processor
    feed_multiple = kp.feed_multiple

    def plain() -> bool:
        return (
            app.current_buffer is buffer
            and app.editing_mode == EditingMode.EMACS
            and not app.quoted_insert
            and not app.emacs_state.is_recording
            and buffer.selection_state is None
            and kp.arg is None
            and not kp.input_queue
            and not kp.key_buffer
            and not buffer.read_only()
        )

    def feed(key_presses: list[Any], first: bool = False) -> None:
        n = 0
        for k in key_presses:
            if k.key != k.data or len(k.data) != 1 or not k.data.isprintable():
                break
            n += 1
        if n == 0 or first or not plain():
            feed_multiple(key_presses, first)
            return
        # The rest is queued first, so complete-while-typing sees keys still to come.
        feed_multiple(key_presses[n:])
        buffer.save_to_undo_stack()
        buffer.insert_text("".join(k.data for k in key_presses[:n]))

    kp.feed_multiple = feed


class _Interrupted(Exception):
    """Ctrl+C during a command."""


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
        wire: Wire | None = None,
        instant: InstantPrompt | None = None,
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
        self._command: asyncio.Future[None] | None = None  # the line running now
        self._erased = False  # the prompt was taken off the screen to write above it
        self._queued: list[str] = []  # lines entered while one runs
        self._interrupted = False  # Ctrl+C while it runs
        self._inner: asyncio.Future[Any] | None = None  # its command
        self.color = use_color()
        self.wire = wire
        self.instant = instant  # a prompt already drawn, before prompt_toolkit was imported
        if wire is not None and wire.sink is not None:
            wire.sink = self._show_wire

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
        self.session = session = PromptSession(
            history=open_history(self.history_file),
            completer=EngineCompleter(self),
            complete_while_typing=Condition(self._no_keys_pending),
            bottom_toolbar=self._toolbar,
            style=STYLE,
            enable_history_search=False,
            complete_in_thread=False,
            key_bindings=self._key_bindings(),
        )
        trim_layout(session.app.layout)
        freeze_layout_walk(session.app.layout)
        fast_typing(session.app, session.default_buffer)
        # One Application for the whole session (a new one per line cost ~6 ms of
        # set-up and renders per command): Enter runs the line with the prompt up.
        session.default_buffer.accept_handler = self._accept
        app = session.app
        redraw = app._redraw

        def _redraw(render_as_done: bool = False) -> None:
            # No prompt while a command runs: its answer goes where the prompt was.
            if self._command is not None and not render_as_done:
                return
            if self._erased and not render_as_done:
                # As run_in_terminal does: the rows below the prompt are unknown again
                # (the bottom toolbar waits for them); ask the terminal (CPR).
                self._erased = False
                app._request_absolute_cursor_position()
            redraw(render_as_done)

        app._redraw = _redraw  # type: ignore[method-assign]
        return session

    def _erase(self, app: Any) -> None:
        """The prompt off the screen, cursor where it started; the bytes go out with
        the text written next (the renderer's erase flushes: one write more per
        command to the terminal)."""
        out = app.output
        flush = out.flush
        out.flush = lambda: None
        try:
            app.renderer.erase(leave_alternate_screen=False)
        finally:
            out.flush = flush
        self._erased = True

    def _finish_line(self, text: str) -> None:
        """Leave the prompt line on the screen as typed (no toolbar, no menu), cursor
        on the next line: what prompt_toolkit's final render of a prompt shows."""
        assert self.session is not None
        app = self.session.app
        self._erase(app)
        prompt = "... " if self.pending else f"({self.mode.name}:{self.name}) "
        head = styled("cont" if self.pending else "prompt", prompt, self.color)
        app.output.write_raw(f"{head}{display_line(text)}\n")
        app.output.flush()

    def _accept(self, buff: Buffer) -> bool:
        """Enter: the line stays above, the command runs, the prompt comes back below."""
        if self._command is not None:
            # Typed ahead (several lines in one read): it runs after the one running,
            # shown then, as when each line had its own prompt.
            self._queued.append(buff.text)
        else:
            self._start(buff.text)
        return False  # prompt_toolkit appends to the history and empties the buffer

    def _start(self, line: str) -> None:
        self._finish_line(line)
        self._interrupted = False
        self._command = asyncio.ensure_future(self._run(line))

    async def _run(self, line: str) -> None:
        try:
            await self.handle(line)
        finally:
            self._command = None
            assert self.session is not None
            app = self.session.app
            if self._done:
                self._queued.clear()
                if app.is_running and not app.future.done():  # type: ignore[union-attr]
                    app.exit(exception=EOFError())
            elif self._queued and app.is_running:
                self._start(self._queued.pop(0))
            else:
                app.invalidate()

    def _interrupt(self) -> None:
        """Ctrl+C: cancel the running command, or drop the line being typed."""
        if self._command is not None:
            self._queued.clear()  # and what was typed ahead
            self._interrupted = True
            if self._inner is not None:
                self._inner.cancel()
            return
        assert self.session is not None
        buf = self.session.default_buffer
        self._finish_line(buf.text + ("^C" if buf.text else ""))
        self.pending = ""
        buf.reset()
        self.session.app.invalidate()

    def _no_keys_pending(self) -> bool:
        """Complete while typing, but not on each key of a burst (a paste, a line sent
        at once): only once the keys read so far are all processed."""
        session = self.session
        return session is None or not session.app.key_processor.input_queue

    def _key_bindings(self) -> KeyBindings:
        kb = KeyBindings()

        @kb.add("c-c")
        @kb.add("<sigint>")
        def _ctrl_c(event: KeyPressEvent) -> None:
            self._interrupt()

        @kb.add("enter", filter=is_searching)
        def _run_found(event: KeyPressEvent) -> None:
            # readline: Enter in a Ctrl+R search runs the line found, not just keeps it.
            from prompt_toolkit.search import accept_search

            accept_search()
            if self.session is not None:
                self.session.default_buffer.validate_and_handle()

        return kb

    def banner(self) -> str | None:
        """``Connected to QEMU 7.2.22 (Debian …)``, from the greeting, as qmp-shell says it."""
        greeting = getattr(getattr(self.conn, "client", None), "greeting", None)
        raw = getattr(greeting, "_raw", None)
        try:
            version = raw["QMP"]["version"]  # type: ignore[index]
            q = version["qemu"]
            text = f"Connected to QEMU {int(q['major'])}.{int(q['minor'])}.{int(q['micro'])}"
        except (TypeError, KeyError, ValueError):
            return None
        package = str(version.get("package") or "").strip()
        return f"{text} ({package})" if package else text

    def _show_wire(self, direction: str, text: str) -> None:
        if len(text) > WIRE_SHOW_MAX:  # the QMP schema is 200 KB on one line
            text = f"{text[:WIRE_SHOW_MAX]}… ({len(text)} bytes; -l logs it whole)"
        self.emit(styled("dim", f"{direction} {display_line(text)}", self.color))

    def echo(self, text: Any) -> None:
        session = self.session
        if session is None or not session.app.is_running:
            print_formatted_text(text, style=STYLE)
            return
        self.emit(formatted_ansi(text, session.app.color_depth))

    def emit(self, ansi: str) -> None:
        """Text with ANSI colours to the terminal: straight out between prompts, above
        the prompt while one is up. The fast path for answers.

        Above the prompt is the renderer's erase (cursor back to where the prompt
        starts, erase down), the text, and a redraw of the prompt below it: what
        run_in_terminal does, without its scheduling and without a redraw while a
        command runs (the prompt is down then)."""
        if not ansi.endswith("\n"):
            ansi += "\n"
        app = self.session.app if self.session is not None else None
        if app is not None and app.is_running:
            if app.renderer.last_rendered_screen is not None:  # a prompt is drawn
                self._erase(app)
            app.output.write_raw(ansi)
            app.output.flush()
            app.invalidate()  # the prompt again, below (not while a command runs)
            return
        out = self.session.output if self.session is not None else get_app_session().output
        out.write_raw(ansi)
        out.flush()

    def echo_error(self, msg: str) -> None:
        self.emit(styled("error", "error: ", self.color) + msg)

    def echo_result(self, result: Result) -> None:
        if result.text:
            # Peer text (HMP, Renode's Monitor): through the terminal filter (colours stay)
            text = sanitize_text(str(result.value)).rstrip("\n")
            if text:
                self.emit(text)
            return
        self.emit(json_ansi(result.value, self.color))

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

    async def _when_schema_arrives(self) -> None:
        """Typed before the schema was in: open the menu now, and drop the toolbar's
        "loading" note without waiting for a key."""
        if not isinstance(self.mode, QmpMode):
            return
        await self.mode.schema()
        session = self.session
        if session is None or not session.app.is_running:
            return
        buf = session.default_buffer
        if buf.text and buf.complete_state is None:
            buf.start_completion(select_first=False)
        session.app.invalidate()

    async def interact(self) -> int:
        """Run until .quit, Ctrl+D or the instance going away; returns the exit status."""
        session = self.session or self.make_session()
        await self.mode.prepare()
        hello = self.banner()
        if self.instant is not None:
            if hello:
                self.instant.clear()
            else:
                self.instant.handover()
        if hello:
            self.emit(styled("info", hello, self.color))
        events = asyncio.ensure_future(self._pump_events())
        schema = asyncio.ensure_future(self._when_schema_arrives())
        ctx = patch_stdout(raw=True) if self.patch else contextlib.nullcontext()
        try:
            with ctx:
                while not self._done:
                    try:
                        await session.prompt_async(self._prompt)  # lines run in _accept
                    except KeyboardInterrupt:
                        self.pending = ""
                        continue
                    except EOFError:
                        break
        finally:
            self._done = True  # nothing queued starts while the tasks are cancelled
            for task in (events, schema, self._command):
                if task is None:
                    continue
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
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
        if self.wire is not None:
            self.wire.note(full)
        stripped = full.strip()
        if stripped.startswith(".") and self._meta(stripped):
            return
        try:
            result = await self._interruptible(self.mode.run(full))
        except _Interrupted:
            self.echo_error(
                f"interrupted: {stripped.splitlines()[0][:60]} "
                "(no answer yet; a late one is dropped)"
            )
            return
        except (InstanceDeadError, DisconnectedError) as e:
            self.echo_error(str(e))
            self._rc = 1
            self._done = True
            return
        except EmutuiError as e:
            self.echo_error(str(e))
            return
        self.echo_result(result)

    async def _interruptible(self, coro: Any) -> Any:
        """Await a command; Ctrl+C (SIGINT: the prompt is down) cancels it, not the shell."""
        # The prompt stays up (raw mode): Ctrl+C is a key, and _interrupt cancels
        # this task (or flags it, when the key came in the same read as the Enter).
        task = asyncio.ensure_future(coro)
        self._inner = task
        if self._interrupted:
            task.cancel()
        try:
            return await task
        except asyncio.CancelledError:
            if self._interrupted and task.cancelled():
                raise _Interrupted() from None
            raise
        finally:
            self._inner = None
            self._interrupted = False

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
