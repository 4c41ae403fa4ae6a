"""Success rates of repeated evaluation runs: the mean over runs, per-run figures and 95% CIs.

Two intervals, for two questions:
- `t_interval` over the runs' success rates (Student t, runs - 1 degrees of freedom): how far the
  mean of R runs of this suite may be from its expectation, i.e. the run-to-run drift MobileRL warns
  of ("1-2 points are not uncommon"). It needs 2 or more runs.
- `wilson_interval` over the pooled episodes (trainer.evaluation's): the binomial interval of the
  success rate, treating episodes as independent draws of the suite's tasks. Repeated runs of one
  instance are correlated, so with runs > 1 this interval is narrower than the truth for the
  task-sampling question; per task it is the interval of that task's R x combinations episodes.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from droidrl.trainer.evaluation import wilson_interval

# Student t's 97.5% quantile for 1..30 degrees of freedom (two-sided 95%, to 6 decimals); beyond, a
# Cornish-Fisher expansion (under 1e-4 off at 31 degrees, closer above).
_T975 = (
    12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157, 2.228139,
    2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905, 2.109816, 2.100922, 2.093024, 2.085963,
    2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272,
)  # fmt: skip
_Z975 = 1.959964


def t_quantile_975(df: int) -> float:
    """The 97.5% quantile of Student's t with `df` degrees of freedom."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df * df)


def t_interval(values: Iterable[float]) -> tuple[float, float] | None:
    """The 95% t interval of the mean of `values`, clipped to [0, 1]; None for fewer than 2 values."""
    values = list(values)
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    half = t_quantile_975(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return max(0.0, mean - half), min(1.0, mean + half)


@dataclass
class Tally:
    """Successes and episodes of one slice (all, a difficulty, a task), overall and per run."""

    successes: int = 0
    episodes: int = 0
    score: float = 0.0  # the sum of protocol scores (partial credit counts here, not in successes)
    per_run: dict[int, list[int]] = field(default_factory=dict)  # run -> [successes, episodes]

    def add(self, run: int, success: bool, score: float) -> None:
        self.successes += int(success)
        self.episodes += 1
        self.score += score
        wins = self.per_run.setdefault(run, [0, 0])
        wins[0] += int(success)
        wins[1] += 1

    def run_rates(self, runs: Iterable[int]) -> list[float | None]:
        """Each run's success rate (None for a run with no episode of this slice yet)."""
        return [self.per_run[r][0] / self.per_run[r][1] if r in self.per_run else None for r in runs]

    def summary(self, runs: list[int]) -> dict[str, Any]:
        """The slice's figures: mean over complete runs with its t CI, pooled rate with its Wilson CI, per run."""
        rates = [rate for rate in self.run_rates(runs) if rate is not None]
        low, high = wilson_interval(self.successes, self.episodes)
        spread = t_interval(rates)
        return {
            "successes": self.successes,
            "episodes": self.episodes,
            "success_rate": self.successes / self.episodes if self.episodes else 0.0,
            "mean_score": self.score / self.episodes if self.episodes else 0.0,
            "wilson95": [low, high],
            "run_mean": statistics.fmean(rates) if rates else None,
            "run_std": statistics.stdev(rates) if len(rates) >= 2 else None,
            "run_t95": None if spread is None else list(spread),
            "runs": {
                str(r): {"successes": s, "episodes": n, "success_rate": s / n, "wilson95": list(wilson_interval(s, n))}
                for r, (s, n) in sorted(self.per_run.items())
            },
        }


def summarise_episodes(records: Iterable[Mapping[str, Any]], runs: list[int]) -> dict[str, Any]:
    """`overall`, `by_difficulty` and `by_task` summaries of finished-episode records (EpisodeStore lines)."""
    overall = Tally()
    by_difficulty: dict[str, Tally] = {}
    by_task: dict[str, Tally] = {}
    for record in records:
        run, success, score = int(record["run"]), bool(record["success"]), float(record["score"])
        overall.add(run, success, score)
        by_difficulty.setdefault(record.get("difficulty") or "?", Tally()).add(run, success, score)
        by_task.setdefault(record["template"], Tally()).add(run, success, score)
    return {
        "overall": overall.summary(runs),
        "by_difficulty": {k: v.summary(runs) for k, v in sorted(by_difficulty.items(), key=_difficulty_order)},
        "by_task": {k: v.summary(runs) for k, v in sorted(by_task.items())},
    }


def _difficulty_order(item: tuple[str, Tally]) -> tuple[int, str]:
    order = {"easy": 0, "medium": 1, "hard": 2}
    return order.get(item[0], 3), item[0]
