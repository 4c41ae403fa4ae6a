"""`droidrl rollout`: a policy plays a task suite; Parquet records and a summary."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.progress import Progress
from rich.table import Table

from droidrl.cli.common import CliError, console


def cmd_rollout(args: argparse.Namespace) -> int:
    import asyncio

    from droidrl.rollout.run import RolloutConfig

    model = args.model
    if model is None:
        model = str(Path(args.out) / "tiny-text")
        if not (Path(model) / "config.json").exists():
            from droidrl.models.presets import init_model

            with console.status("no --model given: writing a tiny-text policy with random weights"):
                init_model("tiny-text", Path(model))
    try:
        config = RolloutConfig(
            model=model,
            engine=args.engine,
            suite=args.suite,
            tasks=args.tasks,
            group_size=args.group_size,
            phones=args.phones,
            ray=args.ray,
            observation=args.observation,
            temperature=args.temperature,
            max_tokens=args.max_tokens,
            seed=args.seed,
            out=args.out,
        )
    except ValueError as err:
        raise CliError(str(err)) from None
    with Progress(console=console, transient=True) as progress:
        bar = progress.add_task(f"{config.tasks} groups x {config.group_size} episodes", total=config.tasks)
        summary = asyncio.run(_rollout(config, on_group=lambda group: progress.advance(bar)))
    _print_rollout(summary)
    return 0


async def _rollout(config, on_group):
    from droidrl.cluster.launch import build_engine, engine_kind, open_pool
    from droidrl.rollout.run import run_rollout

    kind = engine_kind(config.engine)
    engine = await build_engine(kind, config.model, config.phones)
    try:
        screenshots = config.observation != "xml"
        pool = await open_pool(config.phones, screenshots, config.ray, 32, {}, health_interval_s=None)
        try:
            return await run_rollout(config, engine, kind, pool, on_group=on_group)
        finally:
            pool.close()
    finally:
        await engine.close()


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
    rollout = sub.add_parser("rollout", help="a policy plays a task suite; writes Parquet records and a summary")
    rollout.add_argument("--model", help="HF model directory (default: a tiny-text policy written under --out)")
    rollout.add_argument("--engine", choices=["auto", "vllm", "transformers"], default="auto")
    rollout.add_argument("--suite", default="easy", help="task suite (see droidrl tasks)")
    rollout.add_argument("--tasks", type=int, default=8, help="task instances, one group each (default 8)")
    rollout.add_argument("--group-size", type=int, default=2, help="episodes per task instance (default 2)")
    rollout.add_argument("--phones", type=int, default=8, help="simulated phones, episodes in flight (default 8)")
    rollout.add_argument("--ray", action="store_true", help="host the phones in Ray actors (local cluster)")
    rollout.add_argument("--observation", choices=["xml", "screenshot", "both"], default="xml")
    rollout.add_argument("--temperature", type=float, default=1.0)
    rollout.add_argument("--max-tokens", type=int, default=64, help="response tokens per turn")
    rollout.add_argument("--seed", type=int, default=0, help="draws the task instances")
    rollout.add_argument("--out", default="runs/rollout", help="folder for turns.parquet (default runs/rollout)")
    rollout.set_defaults(func=cmd_rollout)
