"""`droidrl model init`: a tiny policy with random weights and the project's tokenizer."""

from __future__ import annotations

import argparse
from pathlib import Path

from droidrl.cli.common import console


def cmd_model_init(args: argparse.Namespace) -> int:
    from droidrl.models.presets import init_model  # imports torch: only when asked

    out = init_model(args.preset, Path(args.out), seed=args.seed)
    console.print(f"wrote {args.preset} (seed {args.seed}) to [bold]{out}[/]")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the command on the `droidrl` parser."""
    model = sub.add_parser("model", help="tiny policy models with random weights (CPU runs and tests)")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    init = model_sub.add_parser("init", help="write a randomly initialised model with the project's tokenizer")
    init.add_argument("--preset", choices=["tiny-text", "tiny-vl"], default="tiny-text", help="model preset")
    init.add_argument("--seed", type=int, default=0, help="weight initialisation seed (default 0)")
    init.add_argument("out", help="folder to write the Hugging Face model directory to")
    init.set_defaults(func=cmd_model_init)
