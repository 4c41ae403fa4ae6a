"""`python -m droidrl.eval ...`: the `droidrl eval` command, for `ray job submit -- python -m droidrl.eval ...`."""

import sys

from droidrl.cli import main

if __name__ == "__main__":
    sys.exit(main(["eval", *sys.argv[1:]]))
