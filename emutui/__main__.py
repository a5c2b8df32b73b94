import sys

from emutui.cli import main

sys.exit(main())
