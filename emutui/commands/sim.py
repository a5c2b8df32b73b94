"""``emutui sim vrtd|renode``: the simulators, as foreground processes."""

from __future__ import annotations

import argparse
import importlib


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "sim",
        help="run a simulator: vrtd (a V80 card daemon) or renode (a Renode stand-in)",
        parents=[common],
    )
    p.add_argument("which", choices=["vrtd", "renode"])
    p.add_argument("rest", nargs=argparse.REMAINDER, help="the simulator's own options")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Each simulator parses its own command line (Renode's stand-in must accept Renode's).
    mod = importlib.import_module(f"emutui.sim.{args.which}")
    rc: int = mod.main(list(args.rest))
    return rc
