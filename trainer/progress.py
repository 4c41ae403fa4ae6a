"""The console of `droidrl train`: a progress bar per phase, one line per evaluation, and the closing summary."""

from __future__ import annotations

import math

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console()


class Display:
    """Progress bars for each phase of the run and a line per RL step (the `Events` of trainer.loop)."""

    def __init__(self, verbose: bool = False) -> None:
        self.verbose = verbose
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=20),  # leaves room for the step line on an 80-column terminal
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=console,
        )
        self.current: int | None = None

    def phase(self, name: str, total: int | None) -> None:
        if not self.verbose:  # a library imported during the last phase may have attached its own console handler
            from droidrl.trainer.logs import tame_library_loggers

            tame_library_loggers()
        self._finish()
        self.current = self.progress.add_task(name, total=total, info="")

    def advance(self, _: str, done: int) -> None:
        if self.current is not None:
            self.progress.update(self.current, completed=done)

    def step(self, step: int, metrics: dict[str, float]) -> None:
        get = metrics.get
        loss = get("train/loss")
        # A batch without signal is not trained on (its loss is missing or nan): say so instead of "nan".
        trained = f"loss {loss:.3f}" if loss is not None and math.isfinite(loss) else "no update"
        info = (
            f"success {get('rollout/success_rate', 0):.0%}  reward {get('rollout/reward_mean', 0):.2f}"
            f"  {trained}  invalid {get('rollout/invalid_rate', 0):.0%}"
        )
        if self.current is not None:
            self.progress.update(self.current, info=info)

    def evaluated(self, result) -> None:
        low, high = result.interval
        console.print(
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
        f"run: {summary.run_dir} (report.html, config.yaml, metrics.jsonl, evals.json, checkpoints/, logs/, "
        f"wandb/); final policy: {summary.final_model}"
    )
