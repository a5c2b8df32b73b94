"""Bare ``emutui`` (the console over every instance) and ``emutui demo``."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

from emutui.commands import config as load_cfg
from emutui.commands import registry as load_registry

Sub = argparse._SubParsersAction  # type: ignore[type-arg]


def add_parser(sub: Sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "demo",
        help="open the console on a ready-made lab (QEMU guests, simulated V80 and Renode)",
        parents=[common],
    )
    p.add_argument("--keep", action="store_true", help="leave the demo instances running on exit")
    # SUPPRESS: do not overwrite the same flags given before the subcommand
    p.add_argument("--no-mouse", action="store_true", default=argparse.SUPPRESS)
    p.add_argument("--theme", default=argparse.SUPPRESS, help="dark, light or high-contrast")
    p.set_defaults(handler=run_demo)


def _ui_options(args: argparse.Namespace, ui: dict[str, Any]) -> tuple[str | None, bool]:
    from emutui.core.errors import ConfigError

    theme = getattr(args, "theme", None) or ui.get("theme")
    if theme is not None and not isinstance(theme, str):
        raise ConfigError(f"ui.theme: expected a string, got {theme!r}")
    mouse = ui.get("mouse", True)
    if not isinstance(mouse, bool):
        raise ConfigError(f"ui.mouse: expected true or false, got {mouse!r}")
    if getattr(args, "no_mouse", False):
        mouse = False
    return theme, mouse


def _say(msg: str) -> None:
    try:
        print(msg, file=sys.stderr, flush=True)
    except OSError:  # the terminal went away (SIGHUP): nobody to tell
        pass


def run_console(args: argparse.Namespace) -> int:
    from emutui.tui.app import EmutuiApp, resolve_theme

    cfg = load_cfg(args)
    reg = load_registry(args)
    try:
        from emutui.commands.attach import ensure_configured_daemons

        ensure_configured_daemons(cfg, reg)
    except ImportError:
        pass
    theme, mouse = _ui_options(args, cfg.ui)
    resolve_theme(theme)  # a typo is a one-line error before the screen switches
    from emutui.commands.remote import tui_hosts

    hosts = tui_hosts(args, cfg)
    if hosts is None:
        app = EmutuiApp(reg, cfg, theme=theme)
    else:  # local instances first, then each host's, named NAME@HOST
        app = EmutuiApp(reg, cfg, theme=theme, instances=hosts.with_local(reg))
    try:
        app.run(mouse=mouse)
    finally:
        if hosts is not None:
            asyncio.run(hosts.close_masters())
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from emutui.demo import create_lab
    from emutui.tui.app import EmutuiApp, resolve_theme

    theme, mouse = _ui_options(args, {})
    resolve_theme(theme)
    # --state-dir / $EMUTUI_STATE_DIR as for every command; else a lab of its own
    where = getattr(args, "state_dir", None) or os.environ.get("EMUTUI_STATE_DIR") or None
    lab = asyncio.run(create_lab(state_dir=Path(where) if where else None))
    for note in lab.notes:
        _say(f"emutui demo: {note}")
    try:
        app = EmutuiApp(
            lab.registry,
            lab.config,
            theme=theme,
            lab_label=lab.label(),
            on_hangup=None if args.keep else lambda: lab.teardown(remove=False),  # runs kept
            quit_question=None
            if args.keep
            else "Quit the demo? The demo lab's instances ("
            + (", ".join(sorted(lab.started)) or "none")
            + ") are stopped; their runs are kept (logs, events, how each ended: "
            + "'emutui ls --all'). (emutui demo --keep leaves them running.)",
        )
        app.run(mouse=mouse)
    finally:
        # Also after SIGHUP (terminal closed): then stderr is gone, so _say must
        # not raise before the teardown has run.
        try:
            if args.keep:
                _say(
                    f"emutui demo: instances left running; state dir {lab.state_dir}\n"
                    f"  EMUTUI_STATE_DIR={lab.state_dir} EMUTUI_CONFIG={lab.config_path} emutui"
                )
            else:
                _say("emutui demo: stopping the demo instances (their runs are kept)…")
        finally:
            if not args.keep:
                signal.signal(signal.SIGHUP, signal.SIG_IGN)  # finish stopping, then go
                # Stopping keeps each run (logs, events, how it ended) in the lab's state dir.
                asyncio.run(lab.teardown(remove=False))
                _say(
                    f"emutui demo: runs kept in {lab.state_dir}: "
                    f"EMUTUI_STATE_DIR={lab.state_dir} emutui ls --all "
                    f"(rm -r {lab.root} removes the lab)"
                )
    return 0
