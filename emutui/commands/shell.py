"""shell NAME [-c CMD]... [--json]: the interactive monitor (QMP, Renode Monitor, vrtd).

It holds the *auxiliary* monitor, so it works while the TUI holds the primary.
With -c, or when standard input is not a terminal, it runs the commands and
prints JSON instead of prompting.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
    p.add_argument("--no-events", action="store_true", help="do not print live events")
    p.add_argument(
        "--no-history", action="store_true", help="do not read or write the history file"
    )
    p.set_defaults(handler=cmd_shell)


@asynccontextmanager
async def on_socket(address: str) -> AsyncIterator[Any]:
    """A QEMU connector on a bare QMP socket (``PATH`` or ``HOST:PORT``)."""
    from emutui.backends.qemu.connector import QemuConnector

    conn = QemuConnector.for_socket(address)
    try:
        await conn.connect()
        yield conn
    finally:
        await conn.close()


async def cmd_shell(args: argparse.Namespace) -> int:
    from emutui.control import connected
    from emutui.shell.modes import make_mode

    if args.socket:
        if args.name:
            raise EmutuiError("shell: give an instance NAME or --socket, not both")
        conn_cm = on_socket(args.socket)
        backend, label = "qemu", args.socket
    elif args.name:
        inst = registry(args).get(args.name)
        conn_cm = connected(inst, aux=True)
        backend, label = inst.backend, inst.name
    else:
        raise EmutuiError("shell: give an instance NAME or --socket PATH|HOST:PORT")
    scripted = bool(args.commands) or not sys.stdin.isatty()
    async with conn_cm as conn:
        mode = make_mode(backend, conn)
        if scripted:
            from emutui.shell.script import run_lines

            lines = args.commands if args.commands else sys.stdin
            return await run_lines(mode, lines, json_lines=args.json)
        from emutui.shell.repl import Shell, history_path

        hist = None if args.no_history else history_path(backend)
        shell = Shell(mode, conn, label, history=hist, events=not args.no_events)
        return await shell.interact()
