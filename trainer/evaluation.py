"""Success rate of a policy on the evaluation set, with Wilson 95% confidence intervals, per difficulty and task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from droidrl.rollout.agent import Agent
from droidrl.rollout.collector import Collector, CollectorConfig, Group, TaskInstance
from droidrl.rollout.envpool import EnvPool

log = logging.getLogger(__name__)


def wilson_interval(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a binomial rate (95% for z = 1.96); (0, 1) when total is 0."""
    if total == 0:
        return 0.0, 1.0
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(a: tuple[int, int], b: tuple[int, int], z: float = 1.96) -> tuple[float, float]:
    """Newcombe's interval for rate(b) - rate(a) from the two Wilson intervals (hybrid score method)."""
    (sa, na), (sb, nb) = a, b
    pa, pb = sa / max(na, 1), sb / max(nb, 1)
    la, ua = wilson_interval(sa, na, z)
    lb, ub = wilson_interval(sb, nb, z)
    diff = pb - pa
    lower = diff - math.sqrt((pb - lb) ** 2 + (ua - pa) ** 2)
    upper = diff + math.sqrt((ub - pb) ** 2 + (pa - la) ** 2)
    return lower, upper


@dataclass
class EvalResult:
    """Successes and episodes of one evaluation, overall and split by difficulty and by task template."""

    step: int
    successes: int
    episodes: int
    by_difficulty: dict[str, tuple[int, int]] = field(default_factory=dict)
    by_task: dict[str, tuple[int, int]] = field(default_factory=dict)
    mean_length: float = 0.0
    invalid_rate: float = 0.0
    seconds: float = 0.0
    dropped_groups: int = 0  # lost to infrastructure failures: not counted as failures, reported instead
    rerun_groups: int = 0  # dropped once, then played again (the counts hold their second run)
    drop_reasons: list[str] = field(default_factory=list)  # why each group was dropped, reruns included

    @property
    def rate(self) -> float:
        return self.successes / self.episodes if self.episodes else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.successes, self.episodes)

    def metrics(self) -> dict[str, float]:
        low, high = self.interval
        out = {"eval/success_rate": self.rate, "eval/ci_low": low, "eval/ci_high": high}
        out |= {"eval/episodes": float(self.episodes), "eval/mean_length": self.mean_length}
        out |= {"eval/invalid_rate": self.invalid_rate, "eval/seconds": self.seconds}
        out["eval/dropped_groups"] = float(self.dropped_groups)
        for difficulty, (wins, total) in self.by_difficulty.items():
            out[f"eval/success_rate/{difficulty}"] = wins / total if total else 0.0
        return out

    def to_dict(self) -> dict:
        low, high = self.interval
        return {
            "step": self.step,
            "successes": self.successes,
            "episodes": self.episodes,
            "success_rate": self.rate,
            "ci95": [low, high],
            "by_difficulty": {k: list(v) for k, v in self.by_difficulty.items()},
            "by_task": {k: list(v) for k, v in self.by_task.items()},
            "mean_length": self.mean_length,
            "invalid_rate": self.invalid_rate,
            "seconds": self.seconds,
            "dropped_groups": self.dropped_groups,
            "rerun_groups": self.rerun_groups,
            "drop_reasons": list(self.drop_reasons),
        }


def summarise(groups: Iterable[Group], step: int, seconds: float = 0.0) -> EvalResult:
    """Count the successes of finished groups."""
    result = EvalResult(step=step, successes=0, episodes=0, seconds=seconds)
    turns = invalid = 0
    for group in groups:
        for episode in group.episodes:
            win = int(episode.success)
            result.successes += win
            result.episodes += 1
            turns += episode.length
            invalid += episode.invalid_actions
            for table, key in ((result.by_difficulty, episode.difficulty), (result.by_task, episode.template)):
                wins, total = table.get(key, (0, 0))
                table[key] = (wins + win, total + 1)
    result.mean_length = turns / result.episodes if result.episodes else 0.0
    result.invalid_rate = invalid / turns if turns else 0.0
    return result


async def evaluate(
    agent: Agent,
    pool: EnvPool,
    instances: Sequence[TaskInstance],
    samples: int,
    step: int,
    concurrency: int,
    run_id: str = "eval",
    records: Path | None = None,
    reruns: int = 1,
) -> EvalResult:
    """Play every instance `samples` times with `agent` (its own sampling settings) and count successes.

    A separate collector with no staleness bound: evaluation never holds back or counts toward training.
    A group dropped after its episodes ran out of retries (an infrastructure failure) is played again,
    up to `reruns` more rounds, so one bad moment of a device or an engine does not take its instance
    out of the estimate; what is still missing after them is `dropped_groups`. `records`: a Parquet path
    where the episodes are kept (turn records, as training's rollouts/), for the report's trajectory viewer.
    """
    started = time.perf_counter()
    groups: list[Group] = []
    reasons: list[str] = []
    todo = list(instances)
    rerun = 0
    for attempt in range(1 + reruns):
        name = f"{run_id}-{step}" + (f"-rerun{attempt}" if attempt else "")
        config = CollectorConfig(
            group_size=samples,
            batch_size=max(1, len(todo)),
            max_concurrent_episodes=concurrency,
            # A broken engine fails the evaluation loudly; a rerun round only reports what is still missing.
            max_consecutive_drops=None if attempt else max(1, len(todo) // 2),
        )
        collector = Collector(agent, pool, config, run_id=name)
        with _drop_reasons(name) as dropped:
            finished = await collector.collect(todo)
        groups += finished
        reasons += dropped or ([collector.stats.last_error] * collector.stats.groups_dropped)
        todo = _missing(todo, finished)
        if not todo or attempt == reruns:
            break
        rerun += len(todo)
        log.warning(f"evaluation at step {step}: {len(todo)} dropped group(s) played again")
    result = summarise(groups, step, time.perf_counter() - started)
    result.dropped_groups = len(todo)
    result.rerun_groups = rerun
    result.drop_reasons = reasons
    if records is not None and groups:
        from droidrl.rollout.records import write_groups

        await asyncio.to_thread(write_groups, groups, records, f"{run_id}-{step}", step)
    return result


def _missing(instances: Sequence[TaskInstance], finished: Sequence[Group]) -> list[TaskInstance]:
    """The instances (with repeats) that no finished group played."""
    left = Counter(group.instance for group in finished)
    missing = []
    for instance in instances:
        if left[instance] > 0:
            left[instance] -= 1
        else:
            missing.append(instance)
    return missing


class _DropLog(logging.Handler):
    """Keeps the reasons the collector logs for the groups of one collector (its run id) that it drops."""

    def __init__(self, run_id: str) -> None:
        super().__init__(logging.WARNING)
        self.prefix = f"{run_id}-g"
        self.reasons: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        if " dropped: " in str(record.msg) and args and str(args[0]).startswith(self.prefix):
            self.reasons.append(record.getMessage())


@contextlib.contextmanager
def _drop_reasons(run_id: str) -> Iterator[list[str]]:
    """The collector's one log line per dropped group ("group G (task:seed) dropped: why"), for this run id."""
    handler = _DropLog(run_id)
    logger = logging.getLogger("droidrl.rollout.collector")
    logger.addHandler(handler)
    try:
        yield handler.reasons
    finally:
        logger.removeHandler(handler)
