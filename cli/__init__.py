"""The `droidrl` command: one module per subcommand, each registering itself with `add_parser`.

`droidrl train` (the main job) has its own parser in droidrl/train.py, which is also the
`python -m droidrl.train` entry point that `ray job submit` runs.
"""

from __future__ import annotations

import argparse
import sys

from droidrl.cli import eval as evaluate
from droidrl.cli import farm, model, play, rollout, sft, tasks
from droidrl.cli.common import CliError, console

COMMANDS = (farm, tasks, play, model, rollout, sft, evaluate)


def build_parser() -> argparse.ArgumentParser:
    """The `droidrl` parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="droidrl", description="Online RL for Android GUI agents.")
    sub = parser.add_subparsers(dest="command", required=True)
    # Listed for the help text only: main() hands `train ...` to droidrl.train's own parser.
    sub.add_parser("train", help="the main job: SFT warm start then online RL (see droidrl train --help)")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `droidrl ARGV`; returns the exit status (2: a problem the user can fix)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["train"]:  # its own parser: a config file, dotted overrides and options in any order
        from droidrl.train import main as train_main

        return train_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CliError as err:
        console.print(f"[red]error:[/] {err}")
        return 2
