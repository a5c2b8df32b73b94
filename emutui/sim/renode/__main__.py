"""``python -m emutui.sim.renode``: the Renode stand-in."""

import sys

from emutui.sim.renode import main

sys.exit(main())
