"""One training-task sampler combining failure curriculum filtering (FCF) and a difficulty curriculum.

Epochs. An epoch of a task is one finished group of it: the task was sampled, all G episodes of its
group finished and `update` reported their rewards. (MobileRL's paper speaks of epochs over the task
set; with B groups per step drawn without replacement, a task meets at most one group per step, so a
per-group epoch is the same thing at the granularity the trainer sees. MobileRL's released code counts
zero-reward step rows instead, which drops tasks far faster; we follow the paper's intent.)

FCF. f = consecutive failed epochs (groups with no success). Training weight exp(-f) while
f <= fcf_max_failures, 0 once past it: the task is dropped. A success in a group that was already in
flight resets f to 0 and brings the task back, as MobileRL's code does. Evaluation ignores FCF.

Difficulty. Levels open in `config.levels` order; earlier levels keep training when a harder one opens.
The newest level's success rate is measured over its last `admit_window` episodes.

Sampling. `sample(n)` draws n instances without replacement among templates in proportion to weight
(a second round if n exceeds the number of trainable templates), each with a seed from
range(seed_pool). `instances()` is the lazy, endless form for `Collector.stream`: it draws a new chunk
only when the previous one is used up, so each draw sees the weights of every update made so far.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from droidrl.curricula.config import CurriculumConfig
from droidrl.curricula.stats import TaskStatsTable, atomic_write_json, read_json
from droidrl.rollout.trajectory import TaskInstance

SAMPLER_VERSION = 1

# What `update` accepts per group: a collector Group (`.instance.task`, `.rewards`), or
# (template name | TaskInstance, rewards).
GroupResult = Any


class CurriculumSampler:
    """Training task instances by FCF weight and difficulty level; the full evaluation set on request.

    `difficulties` (template name -> "easy" | "medium" | "hard") replaces the registry lookup of
    `config.tasks`, for task sets outside the built-in suite; `eval_tasks` then defaults to the same set.
    """

    def __init__(
        self,
        config: CurriculumConfig | None = None,
        difficulties: Mapping[str, str] | None = None,
        eval_tasks: Sequence[str] | None = None,
    ) -> None:
        self.config = config = config or CurriculumConfig()
        if difficulties is None:
            from droidrl.envs.tasks.registry import get_template  # droidrl's templates and android_world's

            difficulties = {name: get_template(name).difficulty for name in config.training_tasks()}
            eval_names = list(eval_tasks) if eval_tasks is not None else config.evaluation_tasks()
        else:
            eval_names = list(eval_tasks) if eval_tasks is not None else list(difficulties)
        if not difficulties:
            raise ValueError(f"curriculum.tasks = {config.tasks!r} holds no task templates; choose a non-empty suite")
        self.tasks: list[str] = list(difficulties)
        self.eval_tasks: list[str] = eval_names
        self.difficulties: dict[str, str] = dict(difficulties)

        if config.difficulty:
            outside = sorted({d for d in self.difficulties.values() if d not in config.levels})
            if outside:
                raise ValueError(
                    f"curriculum.levels = {config.levels} lacks {outside}, which some training tasks have; "
                    "add those levels or remove the tasks from curriculum.tasks"
                )
        present = set(self.difficulties.values())
        self.levels: list[str] = [level for level in config.levels if level in present] or sorted(present)
        self._task_level = {task: self.levels.index(d) if d in self.levels else 0 for task, d in difficulties.items()}
        # Index of the newest admitted level; with the difficulty curriculum off every level is open.
        self.level = 0 if config.difficulty else len(self.levels) - 1
        self._window: deque[int] = deque(maxlen=config.admit_window)
        self._pending: deque[TaskInstance] = deque()
        self._rng = np.random.default_rng(config.seed)
        self.updates = 0  # update() calls so far; the default step number
        self.stats = TaskStatsTable.load(config.init_stats) if config.init_stats else TaskStatsTable()
        self._check_admission()

    # -- weights ----------------------------------------------------------------------------------

    def failures(self, task: str) -> int:
        """f: the consecutive failed epochs of `task`."""
        return self.stats.get(task).failed_epochs

    def fcf_weight(self, task: str) -> float:
        """exp(-f), or 0 once f > fcf_max_failures; 1 when FCF is off."""
        if not self.config.fcf:
            return 1.0
        f = self.failures(task)
        return math.exp(-f) if f <= self.config.fcf_max_failures else 0.0

    def is_dropped(self, task: str) -> bool:
        """True when FCF has removed `task` from training."""
        return self.fcf_weight(task) == 0.0

    def admitted_levels(self) -> list[str]:
        """The difficulty levels training samples from now."""
        return self.levels[: self.level + 1]

    def weights(self) -> dict[str, float]:
        """Unnormalised training weight per training task: FCF weight, or 0 outside the admitted levels."""
        return {t: self.fcf_weight(t) if self._task_level[t] <= self.level else 0.0 for t in self.tasks}

    def level_success_rate(self) -> float:
        """Success rate over the newest level's recent episodes (the admission window); 0.0 when empty."""
        return sum(self._window) / len(self._window) if self._window else 0.0

    # -- sampling ---------------------------------------------------------------------------------

    def sample(self, n: int) -> list[TaskInstance]:
        """`n` training instances drawn by the current weights (without replacement while templates last)."""
        if n < 1:
            raise ValueError(f"sample(n): n must be >= 1, got {n}")
        names, weights = self._trainable()
        drawn: list[TaskInstance] = []
        while len(drawn) < n:
            k = min(n - len(drawn), len(names))
            picks = self._rng.choice(len(names), size=k, replace=False, p=weights / weights.sum())
            seeds = self._rng.integers(0, self.config.seed_pool, size=k)
            drawn.extend(TaskInstance(names[i], int(s)) for i, s in zip(picks, seeds, strict=True))
        return drawn

    def instances(self, batch_size: int = 1) -> Iterator[TaskInstance]:
        """Endless lazy instances for `Collector.stream`, drawn `batch_size` at a time.

        A chunk is drawn only once the previous one is used up, so it sees every update before it.
        Drawn-but-unyielded instances live in the sampler (and its state_dict); one whose task has
        been dropped by FCF meanwhile is skipped. Feed one stream from one sampler.
        """
        while True:
            if not self._pending:
                self._pending.extend(self.sample(batch_size))
            instance = self._pending.popleft()
            if not self.is_dropped(instance.task):
                yield instance

    def __iter__(self) -> Iterator[TaskInstance]:
        return self.instances()

    def eval_instances(self, seeds: Sequence[int] | None = None) -> list[TaskInstance]:
        """Every evaluation task with every seed (`config.eval_seeds` by default): FCF and levels ignored."""
        chosen = list(self.config.eval_seeds if seeds is None else seeds)
        return [TaskInstance(task, int(seed)) for task in self.eval_tasks for seed in chosen]

    def _trainable(self) -> tuple[list[str], np.ndarray]:
        self._check_admission()
        pairs = [(task, w) for task, w in self.weights().items() if w > 0.0]
        if not pairs:
            raise RuntimeError(
                f"every training task is dropped by FCF (f > curriculum.fcf_max_failures = "
                f"{self.config.fcf_max_failures} for all {len(self.tasks)} tasks); raise the limit, set "
                "curriculum.fcf to false, or start from a stronger (e.g. SFT-warmed) policy"
            )
        return [task for task, _ in pairs], np.array([w for _, w in pairs], dtype=np.float64)

    # -- feedback ---------------------------------------------------------------------------------

    def update(self, results: Iterable[GroupResult], step: int | None = None) -> None:
        """Record finished groups (collector Groups or (task, rewards) pairs) after a batch.

        `step` is the trainer step stored as each task's last_step; by default the count of earlier
        update() calls. Unknown tasks are recorded in the statistics but never sampled.
        """
        step = self.updates if step is None else int(step)
        self.updates += 1
        for result in results:
            task, rewards = _unpack(result)
            self.stats.record(task, rewards, step, self.config.success_threshold)
            if self._task_level.get(task) == self.level:
                self._window.extend(int(float(r) >= self.config.success_threshold) for r in rewards)
            self._check_admission()

    def _check_admission(self) -> None:
        """Open the next level while the newest one passes the threshold or has no trainable task left."""
        config = self.config
        while config.difficulty and self.level + 1 < len(self.levels):
            window_full = len(self._window) >= config.admit_window
            passed = window_full and self.level_success_rate() >= config.admit_threshold
            newest = [t for t in self.tasks if self._task_level[t] == self.level]
            exhausted = all(self.is_dropped(t) for t in newest)
            if not (passed or exhausted):
                return
            self.level += 1
            self._window.clear()

    # -- logging ----------------------------------------------------------------------------------

    def metrics(self) -> dict[str, float]:
        """Numbers for the run's logger (curriculum/...)."""
        weights = self.weights()
        open_tasks = [t for t in self.tasks if self._task_level[t] <= self.level]
        return {
            "curriculum/level": float(self.level),
            "curriculum/trainable_tasks": float(sum(1 for w in weights.values() if w > 0)),
            "curriculum/dropped_tasks": float(sum(1 for t in self.tasks if self.is_dropped(t))),
            "curriculum/level_success_rate": self.level_success_rate(),
            "curriculum/mean_failures": (
                sum(self.failures(t) for t in open_tasks) / len(open_tasks) if open_tasks else 0.0
            ),
        }

    # -- state ------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot: RNG, level, admission window, pending instances, statistics."""
        return {
            "version": SAMPLER_VERSION,
            "rng": self._rng.bit_generator.state,
            "level": self.levels[self.level],
            "window": list(self._window),
            "pending": [[i.task, i.seed] for i in self._pending],
            "updates": self.updates,
            "stats": self.stats.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a `state_dict` snapshot: the next samples equal those the saved sampler would draw."""
        if state.get("version") != SAMPLER_VERSION:
            raise ValueError(
                f"curriculum sampler state has version {state.get('version')!r}, expected {SAMPLER_VERSION}; "
                "it was written by a different droidrl"
            )
        if state["level"] not in self.levels:
            raise ValueError(
                f"curriculum sampler state is at level {state['level']!r}, but this task set has levels "
                f"{self.levels}; resume with the same curriculum.tasks and curriculum.levels"
            )
        self._rng.bit_generator.state = state["rng"]
        self.level = self.levels.index(state["level"])
        self._window = deque((int(x) for x in state["window"]), maxlen=self.config.admit_window)
        self._pending = deque(TaskInstance(str(task), int(seed)) for task, seed in state["pending"])
        self.updates = int(state["updates"])
        self.stats.load_state_dict(state["stats"])

    def save(self, path: str | Path) -> None:
        """Write `state_dict` to `path` as JSON, atomically."""
        atomic_write_json(Path(path), self.state_dict())

    def load(self, path: str | Path) -> None:
        """Restore from a file written by `save`."""
        self.load_state_dict(read_json(Path(path)))


def _unpack(result: GroupResult) -> tuple[str, list[float]]:
    """(template name, rewards) of a collector Group or a (task, rewards) pair."""
    if hasattr(result, "instance") and hasattr(result, "rewards"):
        task, rewards = result.instance, result.rewards
    else:
        try:
            task, rewards = result
        except (TypeError, ValueError):
            raise TypeError(
                f"update() takes collector Groups or (task, rewards) pairs, got {type(result).__name__}: {result!r}"
            ) from None
    if isinstance(task, TaskInstance):
        task = task.task
    # A "Name:seed" spec names the same template as "Name".
    return str(task).partition(":")[0], [float(r) for r in rewards]
