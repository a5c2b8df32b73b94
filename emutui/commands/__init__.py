"""CLI subcommands, one module per family. Each exposes add_parser(subparsers, common)."""

from __future__ import annotations

import argparse

from emutui.config import Config, load_config
from emutui.core.registry import Registry


def registry(args: argparse.Namespace) -> Registry:
    return Registry(args.state_dir)


def config(args: argparse.Namespace, validate: bool = True) -> Config:
    return load_config(args.config, validate=validate)
