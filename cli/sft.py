"""`droidrl sft`: SFT warm start, behaviour cloning on expert (or given) demonstrations."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.progress import Progress
from rich.table import Table

from droidrl.cli.common import CliError, console


def cmd_sft(args: argparse.Namespace) -> int:
    from transformers import AutoTokenizer

    from droidrl.envs.tasks.registry import suites
    from droidrl.rollout.prompts import PromptConfig
    from droidrl.rollout.records import write_groups
    from droidrl.trainer.sft import (
        SFTConfig,
        collect_demonstrations,
        demonstration_samples,
        load_demonstrations,
        run_sft,
    )

    out = Path(args.out)
    model_out = out / "model"
    if model_out.exists():
        raise CliError(f"{model_out} already exists; pick another --out or remove it")
    model = args.model or str(out / "tiny-text")
    if args.model is None and not (Path(model) / "config.json").exists():
        from droidrl.models.presets import init_model

        with console.status("no --model given: writing a tiny-text policy with random weights"):
            init_model("tiny-text", Path(model))
    try:
        config = SFTConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size)
    except ValueError as err:
        raise CliError(str(err)) from None
    if args.demos:
        missing = [p for p in args.demos if not Path(p).exists()]
        if missing:
            raise CliError(f"--demos file(s) not found: {', '.join(missing)}")
        try:
            demos = load_demonstrations(args.demos)
        except ValueError as err:
            raise CliError(str(err)) from None
        source = f"{len(args.demos)} Parquet file(s)"
    else:
        if args.suite not in suites():
            raise CliError(f"unknown suite {args.suite!r}; suites: {', '.join(sorted(suites()))}")
        templates = suites()[args.suite]
        count = max(1, min(args.tasks, len(templates)))
        # Spread over the suite (which lists templates app by app), not its first few templates.
        names = [templates[i * len(templates) // count] for i in range(count)]
        tokenizer = AutoTokenizer.from_pretrained(model)
        with Progress(console=console, transient=True) as progress:
            bar = progress.add_task("expert demonstrations", total=len(names) * args.seeds)
            groups = collect_demonstrations(
                names,
                list(range(args.seeds)),
                tokenizer,
                PromptConfig(observation=args.observation),
                on_episode=lambda episode: progress.advance(bar),
            )
        records = write_groups(groups, out / "demonstrations.parquet", run_id="sft", batch_id=0)
        demos = demonstration_samples(groups)
        solved = sum(e.success for g in groups for e in g.episodes)
        source = f"{solved}/{len(groups)} solved expert episodes ({records})"
    steps_per_epoch = -(-len(demos) // config.batch_size)
    with Progress(console=console, transient=True) as progress:
        bar = progress.add_task(f"SFT on {len(demos)} turns", total=config.epochs * steps_per_epoch)
        result = run_sft(
            model, model_out, demos, config.epochs, config.lr, config, on_step=lambda epoch, m: progress.advance(bar)
        )
    table = Table(title=f"SFT: {result.steps} steps, {result.seconds:.1f} s")
    for col in ("epoch", "response NLL (token mean)"):
        table.add_column(col, justify="right")
    table.add_row("first (1)", f"{result.epoch_losses[0]:.4f}")
    table.add_row(f"last ({len(result.epoch_losses)})", f"{result.epoch_losses[-1]:.4f}")
    console.print(table)
    console.print(f"data: {source}; {result.samples} turns, {result.tokens} response tokens")
    console.print(f"model: [bold]{result.model_dir}[/]")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the command on the `droidrl` parser."""
    sft = sub.add_parser("sft", help="SFT warm start: behaviour cloning on expert (or given) demonstrations")
    sft.add_argument("--model", help="HF model directory (default: a tiny-text policy written under --out)")
    sft.add_argument("--suite", default="easy", help="task suite the expert demonstrates (see droidrl tasks)")
    sft.add_argument("--tasks", type=int, default=8, help="templates of the suite to demonstrate (default 8)")
    sft.add_argument("--seeds", type=int, default=2, help="instances (seeds 0..K-1) per template (default 2)")
    sft.add_argument("--demos", nargs="+", help="trajectory Parquet files to clone instead of expert episodes")
    sft.add_argument("--epochs", type=int, default=3, help="passes over the demonstrations (default 3)")
    sft.add_argument("--lr", type=float, default=1e-4, help="learning rate (default 1e-4)")
    sft.add_argument("--batch-size", type=int, default=8, help="samples per optimizer step (default 8)")
    sft.add_argument("--observation", choices=["xml", "screenshot", "both"], default="xml")
    sft.add_argument("--out", default="runs/sft", help="run folder; the model goes to OUT/model (default runs/sft)")
    sft.set_defaults(func=cmd_sft)
