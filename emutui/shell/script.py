"""The shell without a terminal: ``emutui shell NAME -c CMD`` and commands from stdin.

Kept apart from repl.py so a one-shot command does not pay for importing
prompt_toolkit (about 100 ms, more than the command itself).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import TextIO

from emutui.core.errors import DisconnectedError, EmutuiError, InstanceDeadError
from emutui.shell.modes import Mode, Result
from emutui.shell.wire import Wire

_HELP = (".help", ".h", ".?")


async def run_lines(
    mode: Mode,
    lines: Iterable[str],
    out: TextIO | None = None,
    err: TextIO | None = None,
    json_lines: bool = False,
    wire: Wire | None = None,
) -> int:
    """Run each command, printing JSON; errors go to stderr and make the status 1.

    Results print as indented JSON (text answers, HMP or the Renode Monitor, as
    text). ``json_lines``: one object per line, ``{"command", "return"}`` or
    ``{"command", "error"}``, so a script reading stdout sees failures too.
    The session goes on after an error, except when the instance is gone.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    rc = 0
    pending = ""
    for raw in lines:
        raw = raw.rstrip("\r\n")
        full = f"{pending}\n{raw}" if pending else raw
        if mode.is_incomplete(full):
            pending = full  # a multi-line transaction( … )
            continue
        pending = ""
        line = full.strip()
        if not line or line.startswith("#"):
            continue
        if wire is not None:
            wire.note(line)
        try:
            if line.split()[0] in _HELP:
                await mode.prepare(wait=True)  # help on a QMP command reads the schema
                result = Result(mode.help(line.partition(" ")[2].strip()), text=True)
            else:
                result = await mode.run(line)
        except EmutuiError as e:
            rc = 1
            print(f"emutui: {one_line(line)}: {e}", file=err)
            if json_lines:
                print(json.dumps({"command": line, "error": error_object(e)}), file=out)
            out.flush()
            if isinstance(e, InstanceDeadError | DisconnectedError):
                break
            continue
        if json_lines:
            print(json.dumps({"command": line, "return": result.value}, default=str), file=out)
        elif result.text:
            text = str(result.value)
            out.write(text if text.endswith("\n") or not text else text + "\n")
        else:
            print(json.dumps(result.value, indent=2, default=str), file=out)
        out.flush()
    if pending:
        print(f"emutui: unfinished transaction at end of input: {one_line(pending)}", file=err)
        rc = 1
    return rc


def error_object(e: EmutuiError) -> dict[str, str]:
    """QMP's own ``{"class", "desc"}`` when QEMU said no; otherwise ours, same shape."""
    return {"class": e.error_class or type(e).__name__, "desc": e.desc or str(e)}


def one_line(text: str, n: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= n else flat[: n - 1] + "…"
