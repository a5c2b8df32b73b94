"""shell NAME [-c CMD]... [--json]: the interactive monitor (QMP, Renode Monitor, vrtd).

It holds the *auxiliary* monitor, so it works while the TUI holds the primary.
With -c, or when standard input is not a terminal, it runs the commands and
prints JSON instead of prompting.
"""

from __future__ import annotations

import argparse
import sys

from emutui.commands import registry

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
    p.add_argument("name", help="instance name")
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


async def cmd_shell(args: argparse.Namespace) -> int:
    from emutui.control import connected
    from emutui.shell.modes import make_mode

    inst = registry(args).get(args.name)
    backend = inst.backend
    scripted = bool(args.commands) or not sys.stdin.isatty()
    async with connected(inst, aux=True) as conn:
        mode = make_mode(backend, conn)
        if scripted:
            from emutui.shell.script import run_lines

            lines = args.commands if args.commands else sys.stdin
            return await run_lines(mode, lines, json_lines=args.json)
        from emutui.shell.repl import Shell, history_path

        hist = None if args.no_history else history_path(backend)
        shell = Shell(mode, conn, inst.name, history=hist, events=not args.no_events)
        return await shell.interact()
