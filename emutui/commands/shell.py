"""shell NAME [-c CMD]... [--json]: the interactive monitor (QMP, Renode Monitor, vrtd).

It goes through the instance's QMP broker (any number of clients at once);
``--socket`` opens it on any QMP socket without an instance.
With -c, or when standard input is not a terminal, it runs the commands and
prints JSON instead of prompting.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from emutui.commands import registry
from emutui.core.errors import EmutuiError

Sub = argparse._SubParsersAction  # type: ignore[type-arg]


def add_parser(sub: Sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "shell",
        help="interactive monitor: QMP with completion, Renode Monitor, vrtd verbs",
        description=(
            "Interactive monitor for an instance. QEMU: 'cmd key=value', raw JSON, "
            "'!hmp', transactions; Tab completes commands, arguments, enum values, "
            "QOM paths and properties. Renode: Monitor commands. vrtd: devices, bar, "
            "read, write. Commands from -c or from standard input (when it is not a "
            "terminal) run without a prompt and print JSON."
        ),
        parents=[common],
    )
    p.add_argument("name", nargs="?", help="instance name")
    p.add_argument(
        "--socket",
        metavar="PATH|HOST:PORT",
        help="any QMP socket, no instance needed (a QEMU started by a script or by hand)",
    )
    p.add_argument(
        "-c",
        "--command",
        action="append",
        dest="commands",
        metavar="CMD",
        help="run CMD and exit (repeatable); prints the result as JSON",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='one JSON object per command: {"command", "return"} or {"command", "error"}',
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show the wire: each QMP message sent (->) and received (<-)",
    )
    p.add_argument(
        "-l",
        "--log",
        metavar="FILE",
        type=Path,
        help="append the session to FILE: each input line and QMP message, as JSON lines",
    )
    p.add_argument("--no-events", action="store_true", help="do not print live events")
    p.add_argument(
        "--no-history", action="store_true", help="do not read or write the history file"
    )
    p.set_defaults(handler=cmd_shell)


async def cmd_shell(args: argparse.Namespace) -> int:
    from emutui.core.errors import InstanceDeadError

    backend: str
    label: str
    inst: Any = None
    if args.socket:
        if args.name:
            raise EmutuiError("shell: give an instance NAME or --socket, not both")
        backend, label = "qemu", args.socket
    elif args.name:
        inst = registry(args).get(args.name)
        if not inst.alive():
            from emutui.control import dead_message

            raise InstanceDeadError(dead_message(inst))
        backend, label = inst.backend, inst.name
    else:
        raise EmutuiError("shell: give an instance NAME or --socket PATH|HOST:PORT")
    scripted = bool(args.commands) or not sys.stdin.isatty()
    if scripted or args.verbose:
        return await _shell(args, inst, backend, label, scripted, None)
    from emutui.shell.instant import InstantPrompt

    # The prompt before the imports and the connect (see emutui.shell.instant).
    instant = InstantPrompt.show(backend, label)
    try:
        return await _shell(args, inst, backend, label, scripted, instant)
    finally:
        if instant is not None:
            instant.restore()


async def _shell(
    args: argparse.Namespace,
    inst: Any,
    backend: str,
    label: str,
    scripted: bool,
    instant: Any,
) -> int:
    from emutui.shell.modes import make_mode
    from emutui.shell.wire import Wire

    conn: Any
    if inst is None:
        from emutui.backends.qemu.connector import QemuConnector

        # A QEMU connector on a bare QMP socket (PATH or HOST:PORT).
        conn = QemuConnector.for_socket(args.socket)
    else:
        from emutui.control import make_connector

        conn = make_connector(inst, aux=True)
    try:
        wire = Wire(verbose=args.verbose, log=args.log) if args.verbose or args.log else None
    except OSError as e:
        raise EmutuiError(f"cannot open the log {args.log}: {e.strerror}") from None
    if wire is not None:
        wire.tap(conn)  # before connect: the greeting and negotiation are on the wire too
    try:
        await conn.connect()
        mode = make_mode(backend, conn)
        if scripted:
            from emutui.shell.script import run_lines

            lines = args.commands if args.commands else sys.stdin
            return await run_lines(mode, lines, json_lines=args.json, wire=wire)
        from emutui.shell.repl import Shell, history_path

        hist = None if args.no_history else history_path(backend, args.state_dir)
        shell = Shell(
            mode, conn, label, history=hist, events=not args.no_events, wire=wire, instant=instant
        )
        return await shell.interact()
    finally:
        await conn.close()
        if wire is not None:
            wire.close()
