"""`python -m droidrl.cli`: the `droidrl` command."""

import sys

from droidrl.cli import main

sys.exit(main())
