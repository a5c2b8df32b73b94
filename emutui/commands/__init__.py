"""CLI subcommands, one module per family. Each exposes add_parser(subparsers, common)."""

from __future__ import annotations

import argparse

from emutui.config import Config, load_config
from emutui.core.registry import Registry


def registry(args: argparse.Namespace) -> Registry:
    """The state root, with the [history] limits of the config when it has them.

    A config that does not load does not stop commands that need no target
    (ls, stop, logs): the default limits apply.
    """
    from emutui.core.errors import EmutuiError
    from emutui.core.runs import HistoryLimits

    limits = HistoryLimits()
    try:
        cfg = load_config(getattr(args, "config", None), validate=False)
        limits = HistoryLimits.from_config(cfg.history or None)
    except (EmutuiError, UnicodeDecodeError, RecursionError):
        pass
    return Registry(getattr(args, "state_dir", None), history=limits)


def config(args: argparse.Namespace, validate: bool = True) -> Config:
    return load_config(args.config, validate=validate)
