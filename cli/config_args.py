"""`[CONFIG.yaml] [key=value ...]` for every command: the typed tree of `droidrl train`, plus flag spellings.

A command's older flags (`--phones 2`) are spelled-out overrides of the tree's keys (`env.phones=2`),
so a setting means the same thing in every command; the flags are applied after the overrides.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from droidrl.cli.common import CliError
from droidrl.config.typed import ConfigError

if TYPE_CHECKING:
    from droidrl.trainer.config import TrainConfig


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """The positional `[CONFIG] [KEY=VALUE ...]` arguments."""
    parser.add_argument(
        "config_args",
        nargs="*",
        metavar="[CONFIG] [KEY=VALUE ...]",
        help="a YAML config file (as for droidrl train), then dotted overrides, e.g. env.phones=4",
    )


def override(key: str, value: Any) -> str:
    """`key=value` with the value spelled so that parse_override reads it back unchanged."""
    return f"{key}={json.dumps(value)}"  # JSON is YAML: strings stay strings, lists stay lists


def load(args: argparse.Namespace, flags: Mapping[str, Sequence[str]], base: Sequence[str] = ()) -> TrainConfig:
    """The config from the positional arguments and the given flags (`flags`: flag dest -> the keys it sets).

    `base`: overrides the command applies before the user's (its documented starting point).
    """
    from droidrl.train import split_args
    from droidrl.trainer.config import load_config

    extra = [
        override(key, getattr(args, dest))
        for dest, keys in flags.items()
        if getattr(args, dest, None) is not None
        for key in keys
    ]
    try:
        path, overrides = split_args(args.config_args)
        return load_config(path, [*base, *overrides, *extra])
    except ConfigError as err:
        raise CliError(f"config: {err}") from None
