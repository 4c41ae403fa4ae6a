"""AdaGRPO against plain GRPO and against itself with each part switched off, on the same budget.

One SFT warm start is shared; every variant then trains `--steps` RL steps from it with the same seed
and is evaluated on the same held-in set (95% Wilson intervals). Prints a table and writes
OUT/ablation.json. Example (about 5 minutes a variant on 2 CPU cores):

    python benchmarks/ablation.py --steps 12 --out runs/ablation
    python benchmarks/ablation.py --variants adagrpo grpo -- collector.group_size=4
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from droidrl.cluster.launch import train
from droidrl.trainer.config import load_config
from droidrl.trainer.evaluation import difference_interval, wilson_interval
from droidrl.trainer.loop import Events, prepare_policy

GRPO = [
    "algorithm.advantage.task_normalize=false",
    "algorithm.spa.enabled=false",
    "algorithm.replay.enabled=false",
    "algorithm.dynamic_sampling.enabled=false",
]
VARIANTS: dict[str, list[str]] = {
    "adagrpo": [],
    "grpo": GRPO,
    "no_spa": ["algorithm.spa.enabled=false"],
    "no_replay": ["algorithm.replay.enabled=false"],
    "no_dynamic_sampling": ["algorithm.dynamic_sampling.enabled=false"],
    "no_fcf": ["curriculum.fcf=false"],
}

console = Console()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12, help="RL steps per variant")
    parser.add_argument("--out", default="runs/ablation")
    parser.add_argument("--config", default=None, help="a YAML config the variants start from")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("overrides", nargs="*", help="dotted overrides for every variant (after --)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    base = [*args.overrides, f"steps={args.steps}", "logging.wandb=disabled"]
    warm = load_config(args.config, [*base, f"run_dir={out / 'warm-start'}"])
    started = time.perf_counter()
    with console.status("SFT warm start (shared by every variant)"):
        policy, _ = prepare_policy(warm, out / "warm-start", Events())
    console.print(f"warm start: {policy} ({time.perf_counter() - started:.0f} s)")

    results: dict[str, dict] = {}
    for index, name in enumerate(args.variants):
        overrides = [*base, *VARIANTS[name], f"run_dir={out / name}", f"model.path={policy}", "sft.enabled=false"]
        if index > 0:
            overrides.append("eval.before=false")  # the starting policy is the same for every variant
        config = load_config(args.config, overrides)
        with console.status(f"{name}: {args.steps} RL steps"):
            summary = train(config)
        final = summary.evals[-1]
        results[name] = {
            "overrides": VARIANTS[name],
            "successes": final.successes,
            "episodes": final.episodes,
            "seconds": summary.seconds,
        }
        if summary.evals[0].step == 0:
            results["start"] = {"successes": summary.evals[0].successes, "episodes": summary.evals[0].episodes}
        console.print(f"{name}: {final.successes}/{final.episodes} ({summary.seconds:.0f} s)")
    (out / "ablation.json").write_text(json.dumps(results, indent=2))
    print_table(results, args.steps)


def print_table(results: dict[str, dict], steps: int) -> None:
    start = results.get("start")
    table = Table(title=f"Ablation: success rate after {steps} RL steps from one SFT warm start")
    for column in ("variant", "success rate", "95% CI", "change vs start (95% CI)", "wall s"):
        table.add_column(column, justify="right")
    if start:
        low, high = wilson_interval(start["successes"], start["episodes"])
        rate = start["successes"] / start["episodes"]
        table.add_row("start (SFT)", f"{rate:.1%}", f"{low:.1%} - {high:.1%}", "", "")
    for name, result in results.items():
        if name == "start":
            continue
        wins, total = result["successes"], result["episodes"]
        low, high = wilson_interval(wins, total)
        change = ""
        if start:
            d_low, d_high = difference_interval((start["successes"], start["episodes"]), (wins, total))
            change = f"{wins / total - start['successes'] / start['episodes']:+.1%} ({d_low:+.1%}, {d_high:+.1%})"
        table.add_row(name, f"{wins / total:.1%}", f"{low:.1%} - {high:.1%}", change, f"{result['seconds']:.0f}")
    console.print(table)


if __name__ == "__main__":
    main()
