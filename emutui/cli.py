"""The ``emutui`` command. Bare ``emutui`` opens the console; subcommands mirror the TUI.

No Textual import on this path: ``emutui ls`` must start at interpreter speed.
Exit 0 on success; 1 with a one-line error (and no traceback) on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import importlib
import json
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from emutui import __version__
from emutui.core.errors import EmutuiError

Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int] | int]

# Subcommands live in small modules; each has ``add_parser(subparsers, common)``
# and the parser sets ``handler``. Imported lazily so a command pays for its own imports.
COMMAND_MODULES = [
    "emutui.commands.lifecycle",  # ls start stop reset pause resume
    "emutui.commands.props",  # prop ls|get|set
    "emutui.commands.mem",  # mem regions|read|write
    "emutui.commands.streams",  # events logs term
    "emutui.commands.runs",  # runs rm prune timeline export
    "emutui.commands.tui",  # demo (and bare emutui)
    "emutui.commands.shell",  # shell
    "emutui.commands.sim",  # sim vrtd|renode
    "emutui.commands.attach",  # attach detach
    "emutui.commands.cpu",  # cpu gdb snap
    "emutui.commands.remote",  # agent (and NAME@HOST on every command)
]


# Commands whose parser is built alone when argv names them: `emutui shell` does not
# import every other command module before its prompt (start-to-prompt, issue 11).
ALONE = {"shell": "emutui.commands.shell"}


def common_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--state-dir",
        default=argparse.SUPPRESS,
        help="instance state root (env EMUTUI_STATE_DIR; default: XDG state dir)",
    )
    p.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        help="config file (env EMUTUI_CONFIG; default ./emutui.toml, then the XDG config dir)",
    )
    p.add_argument(
        "--host",
        default=argparse.SUPPRESS,
        help="run on this lab host ([hosts.NAME] in the config, or any ssh destination)",
    )
    return p


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    common = common_parser()
    parser = argparse.ArgumentParser(
        prog="emutui",
        description="A terminal console for emulators and emulated hardware.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"emutui {__version__}")
    parser.add_argument("--theme", help="TUI theme: dark, light or high-contrast")
    parser.add_argument("--no-mouse", action="store_true", help="TUI without mouse support")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for modname in [only] if only else COMMAND_MODULES:
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name != modname:
                raise
            continue
        mod.add_parser(sub, common)
    return parser


def _defaults(args: argparse.Namespace) -> argparse.Namespace:
    for key in ("state_dir", "config", "host"):
        if not hasattr(args, key):
            setattr(args, key, None)
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    first = argv[0] if argv else ""
    parser = build_parser(ALONE.get(first) if "-h" not in argv and "--help" not in argv else None)
    args = _defaults(parser.parse_args(argv))
    _configure_deadline(args)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        if args.command is None:
            from emutui.commands.tui import run_console

            handler = run_console
        else:
            parser.print_help()
            return 2
    try:
        if args.host or any("@" in a for a in argv):
            from emutui.commands.remote import forward, wants_forward

            if wants_forward(args):
                return forward(args, argv)
        result = handler(args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result or 0)
    except EmutuiError as e:
        print(f"emutui: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `emutui logs x | head`: the reader left; not an error worth a traceback
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        except OSError:
            pass
        return 0
    except OSError as e:
        # The machine's doing, not a bug: an unwritable state dir, a full disk.
        if e.errno not in ENVIRONMENT_ERRNOS:
            raise
        where = f": {e.filename}" if e.filename else ""
        print(f"emutui: {args.command or 'emutui'}: {e.strerror}{where}", file=sys.stderr)
        return 1
    except RecursionError:
        print(
            f"emutui: {args.command or 'emutui'}: input nested too deeply "
            "(a corrupted file in the state dir or the config?)",
            file=sys.stderr,
        )
        return 1


# errno values that say something about the machine (permissions, space), not about emutui
ENVIRONMENT_ERRNOS = {
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.ENOTDIR,
    errno.EMFILE,
    errno.ENFILE,
}


def _configure_deadline(args: argparse.Namespace) -> None:
    """Every request's deadline: $EMUTUI_REQUEST_TIMEOUT, else [ui] request_timeout, read
    from the config only when a command first sends a request."""
    from emutui.core import deadline

    def from_config() -> Any:
        from emutui.config import load_config

        return load_config(args.config, validate=False).ui.get("request_timeout")

    deadline.configure(from_config)


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


if __name__ == "__main__":
    sys.exit(main())
