"""The ``renode-standin`` executable, so a target's ``binary`` can point at the stand-in."""

from __future__ import annotations

import sys


def main() -> int:
    from emutui.sim.renode import main as standin_main

    return standin_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
