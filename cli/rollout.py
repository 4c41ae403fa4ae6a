"""`droidrl rollout [CONFIG] [key=value ...]`: a policy plays tasks on simulated phones; Parquet records and a summary.

The settings are `droidrl train`'s tree: model.*, rollout.* (engine, sampling), env.* (phones, Ray),
curriculum.tasks (the templates drawn from), collector.batch_size (groups to play),
collector.group_size, seed and run_dir (where turns.parquet goes). The flags below are spellings of
those keys. One starting point differs from training's, and says so: curriculum.tasks=easy (BASE).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from rich.progress import Progress
from rich.table import Table

from droidrl.cli.common import CliError, console
from droidrl.cli.config_args import add_config_args, load

FLAGS = {  # flag -> the config keys it sets
    "model": ["model.path"],
    "engine": ["rollout.engine"],
    "suite": ["curriculum.tasks"],
    "tasks": ["collector.batch_size"],
    "group_size": ["collector.group_size"],
    "phones": ["env.phones", "collector.max_concurrent_episodes"],
    "ray": ["env.ray"],
    "observation": ["model.observation"],
    "temperature": ["rollout.temperature"],
    "max_tokens": ["rollout.max_tokens"],
    "seed": ["seed"],
    "out": ["run_dir"],
}


BASE = ["curriculum.tasks=easy"]  # a quick look at a policy plays the easy suite unless told otherwise


def cmd_rollout(args: argparse.Namespace) -> int:
    config = load(args, FLAGS, BASE)
    model = config.model.path
    if model is None:
        model = str(Path(config.run_dir) / "init")
        if not (Path(model) / "config.json").exists():
            from droidrl.models.presets import init_model

            with console.status(f"no model.path given: writing a {config.model.preset} policy with random weights"):
                init_model(config.model.preset, Path(model), seed=config.seed)
    groups = config.collector.batch_size
    with Progress(console=console, transient=True) as progress:
        bar = progress.add_task(f"{groups} groups x {config.collector.group_size} episodes", total=groups)
        summary = asyncio.run(_rollout(config, model, on_group=lambda group: progress.advance(bar)))
    _print_rollout(summary)
    return 0


async def _rollout(config, model: str, on_group):
    from droidrl.cluster.launch import started_rollout
    from droidrl.rollout.run import draw_instances, run_rollout
    from droidrl.trainer.loop import agent_config

    try:
        names = config.curriculum.training_tasks()
    except ValueError as err:
        raise CliError(str(err)) from None
    instances = draw_instances(names, config.collector.batch_size, config.seed)
    async with started_rollout(config, model) as parts:
        return await run_rollout(
            parts.engine,
            parts.kind,
            parts.pool,
            model,
            agent_config(config, config.rollout.temperature, config.seed),
            config.collector,
            instances,
            Path(config.run_dir),
            run_id=f"rollout-{config.seed}",
            on_group=on_group,
        )


def _print_rollout(summary) -> None:
    table = Table(title=f"Rollout with {summary.engine}: {summary.seconds:.1f} s")
    for col in ("difficulty", "episodes", "success rate"):
        table.add_column(col, justify="right")
    for difficulty, (wins, total) in sorted(summary.by_difficulty.items()):
        table.add_row(difficulty, str(total), f"{wins / total:.1%}")
    console.print(table)
    stats = summary.stats
    invalid = stats["invalid_actions"] / max(1, stats["turns"])
    console.print(
        f"{stats['episodes']} episodes, {stats['turns']} turns, invalid actions {invalid:.1%}, "
        f"{stats['response_tokens'] / summary.seconds:.0f} generated tokens/s; retried {stats['retried']}, "
        f"dropped groups {stats['groups_dropped']}; records: {summary.records}"
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the command on the `droidrl` parser."""
    rollout = sub.add_parser(
        "rollout",
        help="a policy plays tasks; writes Parquet records and a summary ([CONFIG] [key=value ...] as for train)",
    )
    add_config_args(rollout)
    rollout.add_argument("--model", help="HF model directory (model.path; default: a tiny model under run_dir/init)")
    rollout.add_argument("--engine", choices=["auto", "vllm", "transformers"], help="rollout.engine")
    rollout.add_argument("--suite", help="curriculum.tasks: a task suite (see droidrl tasks); default easy")
    rollout.add_argument("--tasks", type=int, help="collector.batch_size: task instances, one group each")
    rollout.add_argument("--group-size", type=int, help="collector.group_size: episodes per task instance")
    rollout.add_argument("--phones", type=int, help="env.phones (and collector.max_concurrent_episodes)")
    rollout.add_argument("--ray", action="store_const", const=True, help="env.ray=true: phones in Ray actors")
    rollout.add_argument("--observation", choices=["xml", "screenshot", "both"], help="model.observation")
    rollout.add_argument("--temperature", type=float, help="rollout.temperature")
    rollout.add_argument("--max-tokens", type=int, help="rollout.max_tokens: response tokens per turn")
    rollout.add_argument("--seed", type=int, help="seed: draws the task instances")
    rollout.add_argument("--out", help="run_dir: the folder for turns.parquet")
    rollout.set_defaults(func=cmd_rollout)
