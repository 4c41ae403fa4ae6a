"""`droidrl sft [CONFIG] [key=value ...]`: SFT warm start, behaviour cloning on expert (or given) demonstrations.

The settings are `droidrl train`'s tree: sft.* (tasks, seeds, demos, epochs, lr, batch_size), model.*,
env.*, seed and run_dir (the model goes to run_dir/model, the expert's episodes to
run_dir/demonstrations.parquet). It runs the warm start `droidrl train` runs (trainer.loop.run_warm_start).
The flags below are spellings of those keys.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.progress import Progress
from rich.table import Table

from droidrl.cli.common import CliError, console
from droidrl.cli.config_args import add_config_args, load, override

FLAGS = {  # flag -> the config keys it sets
    "model": ["model.path"],
    "seeds": ["sft.seeds"],
    "demos": ["sft.demos"],
    "epochs": ["sft.epochs"],
    "lr": ["sft.lr"],
    "batch_size": ["sft.batch_size"],
    "observation": ["model.observation"],
    "out": ["run_dir"],
}
BASE = ["sft.tasks=easy"]  # the expert demonstrates the easy suite unless told otherwise


def cmd_sft(args: argparse.Namespace) -> int:
    from droidrl.trainer.loop import Events, run_warm_start

    if args.demos:
        missing = [p for p in args.demos if not Path(p).exists()]
        if missing:
            raise CliError(f"--demos file(s) not found: {', '.join(missing)}")
    config = load(args, FLAGS, [*BASE, *_spelled_out(args)])
    out = Path(config.run_dir)
    if (out / "model").exists():
        raise CliError(f"{out / 'model'} already exists; pick another run_dir (--out) or remove it")
    policy = Path(config.model.path) if config.model.path else _tiny_policy(config)
    with Progress(console=console, transient=True) as progress:
        bars: dict[str, int] = {}

        def phase(name: str, total: int | None) -> None:
            bars[name] = progress.add_task(name, total=total)

        events = Events(phase=phase, advance=lambda name, done: progress.update(bars[name], completed=done))
        try:
            model_dir, info = run_warm_start(config, policy, out, events, out=out)
        except ValueError as err:
            raise CliError(str(err)) from None
    nll = info["epoch_nll"]
    table = Table(title=f"SFT: {info['steps']} steps, {info['seconds']:.1f} s")
    for col in ("epoch", "response NLL (token mean)"):
        table.add_column(col, justify="right")
    table.add_row("first (1)", f"{nll[0]:.4f}")
    table.add_row(f"last ({len(nll)})", f"{nll[-1]:.4f}")
    console.print(table)
    sources = []
    if info["records"]:
        sources.append(f"{info['demonstrations']}/{info['episodes']} solved expert episodes ({info['records']})")
    if config.sft.demos:
        sources.append(f"{len(config.sft.demos)} Parquet file(s)")
    console.print(f"data: {'; '.join(sources)}; {info['samples']} turns, {info['tokens']} response tokens")
    console.print(f"model: [bold]{model_dir}[/]")
    return 0


def _spelled_out(args: argparse.Namespace) -> list[str]:
    """Flags that are more than one key: --demos alone clones files (no expert); --suite/--tasks pick templates."""
    extra = [override("sft.seeds", 0)] if args.demos and args.seeds is None else []
    if args.suite is not None or args.tasks is not None:
        from droidrl.envs.tasks.registry import suites

        suite = args.suite or "easy"
        if suite not in suites():
            raise CliError(f"unknown suite {suite!r}; suites: {', '.join(sorted(suites()))}")
        templates = suites()[suite]
        count = max(1, min(args.tasks or len(templates), len(templates)))
        # Spread over the suite (which lists templates app by app), not its first few templates.
        extra.append(override("sft.tasks", [templates[i * len(templates) // count] for i in range(count)]))
    return extra


def _tiny_policy(config) -> Path:
    from droidrl.models.presets import init_model

    model = Path(config.run_dir) / "init"
    if not (model / "config.json").exists():
        with console.status(f"no model.path given: writing a {config.model.preset} policy with random weights"):
            init_model(config.model.preset, model, seed=config.seed)
    return model


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the command on the `droidrl` parser."""
    sft = sub.add_parser(
        "sft",
        help="SFT warm start: behaviour cloning on expert (or given) demonstrations ([CONFIG] [key=value ...])",
    )
    add_config_args(sft)
    sft.add_argument("--model", help="HF model directory (model.path; default: a tiny model under run_dir/init)")
    sft.add_argument("--suite", help="the suite the expert demonstrates (sft.tasks; default easy)")
    sft.add_argument("--tasks", type=int, help="templates of the suite to demonstrate, spread over it")
    sft.add_argument("--seeds", type=int, help="sft.seeds: instances (seeds 0..K-1) per template")
    sft.add_argument(
        "--demos", nargs="+", help="sft.demos: trajectory Parquet files to clone instead of expert episodes"
    )
    sft.add_argument("--epochs", type=int, help="sft.epochs: passes over the demonstrations")
    sft.add_argument("--lr", type=float, help="sft.lr: learning rate")
    sft.add_argument("--batch-size", type=int, help="sft.batch_size: samples per optimizer step")
    sft.add_argument("--observation", choices=["xml", "screenshot", "both"], help="model.observation")
    sft.add_argument("--out", help="run_dir: the model goes to OUT/model")
    sft.set_defaults(func=cmd_sft)
