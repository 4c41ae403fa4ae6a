"""The curriculum's configuration: which tasks train and evaluate, FCF and the difficulty curriculum.

Every validation error names the dotted key (`curriculum.<field>`) and says what to give instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from droidrl.envs.tasks.base import DIFFICULTIES


def _key(name: str) -> str:
    return f"curriculum.{name}"


@dataclass
class CurriculumConfig:
    """How training task instances are chosen.

    Task sets
    - `tasks`: the training templates: a suite name from `droidrl.envs.tasks.registry.suites()`
      ("all", "easy", "medium", "hard", an app package, ...) or a list of template names.
    - `eval_tasks`: the evaluation templates (same forms); None means the same as `tasks`. Evaluation
      always uses this whole set: neither FCF nor the difficulty curriculum touches it.
    - `seed_pool`: training instance seeds are drawn uniformly from range(seed_pool).
    - `eval_seeds`: the seeds of every evaluation instance (by default outside range(seed_pool), so
      evaluation instances are held-in templates with unseen parameters).
    - `seed`: seeds the sampler's numpy Generator.

    Failure curriculum filtering (FCF, MobileRL's `AndroidWorldCurriculumManager`)
    - `fcf`: on/off. A task whose group has no success gets one more consecutive failed epoch f;
      any success resets f to 0. Its sampling weight is exp(-f) while f <= `fcf_max_failures`, and 0
      (dropped from training) once f > `fcf_max_failures` (MobileRL's code: weight 0 past f = 3).
    - `success_threshold`: an episode counts as a success when its reward is >= this.

    Difficulty curriculum
    - `difficulty`: on/off. Training starts on the first level of `levels` that has tasks; the next
      level is admitted (and earlier levels keep training) when the success rate over the last
      `admit_window` episodes of the newest level is >= `admit_threshold`, or when every task of
      the newest level has been dropped by FCF.

    Persistence
    - `init_stats`: a task-statistics JSON file saved by an earlier run (`TaskStatsTable.save`): its
      failure history seeds this run, as MobileRL's `curriculum.init` does.
    """

    tasks: str | list[str] = "all"
    eval_tasks: str | list[str] | None = None
    seed_pool: int = 1_000_000
    eval_seeds: list[int] = field(default_factory=lambda: [1_000_000, 1_000_001])
    seed: int = 0
    fcf: bool = True
    fcf_max_failures: int = 3
    success_threshold: float = 0.5
    difficulty: bool = True
    levels: list[str] = field(default_factory=lambda: list(DIFFICULTIES))
    admit_threshold: float = 0.5
    admit_window: int = 64
    init_stats: str | None = None

    def __post_init__(self) -> None:
        self._check_task_set("tasks", self.tasks, allow_none=False)
        self._check_task_set("eval_tasks", self.eval_tasks, allow_none=True)
        for name in ("fcf", "difficulty"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{_key(name)} must be true or false, got {getattr(self, name)!r}")
        self._check_int("seed", self.seed, minimum=0)
        self._check_int("seed_pool", self.seed_pool, minimum=1)
        self._check_int("fcf_max_failures", self.fcf_max_failures, minimum=0)
        self._check_int("admit_window", self.admit_window, minimum=1)
        if not isinstance(self.eval_seeds, list | tuple) or not self.eval_seeds:
            raise TypeError(f"{_key('eval_seeds')} must be a non-empty list of integer seeds, got {self.eval_seeds!r}")
        for seed in self.eval_seeds:
            if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                raise ValueError(f"{_key('eval_seeds')} must hold integers >= 0, got {seed!r}")
        self.eval_seeds = list(self.eval_seeds)
        for name in ("success_threshold", "admit_threshold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{_key(name)} must be a number in [0, 1], got {value!r}")
        if not isinstance(self.levels, list | tuple) or not self.levels:
            raise TypeError(f"{_key('levels')} must be a non-empty list of difficulties, got {self.levels!r}")
        for level in self.levels:
            if level not in DIFFICULTIES:
                raise ValueError(f"{_key('levels')}: unknown difficulty {level!r}; use some of {list(DIFFICULTIES)}")
        if len(set(self.levels)) != len(self.levels):
            raise ValueError(f"{_key('levels')} lists a difficulty twice: {self.levels!r}")
        self.levels = list(self.levels)
        if self.init_stats is not None and not isinstance(self.init_stats, str):
            raise TypeError(f"{_key('init_stats')} must be a path string or null, got {self.init_stats!r}")

    @staticmethod
    def _check_int(name: str, value: object, minimum: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{_key(name)} must be an integer, got {value!r}")
        if value < minimum:
            raise ValueError(f"{_key(name)} must be >= {minimum}, got {value}")

    @staticmethod
    def _check_task_set(name: str, value: object, allow_none: bool) -> None:
        if value is None and allow_none:
            return
        if isinstance(value, str):
            if not value:
                raise ValueError(f"{_key(name)} is empty: give a suite name such as 'all' or a list of task names")
            return
        if not isinstance(value, list | tuple) or not value or not all(isinstance(v, str) and v for v in value):
            raise TypeError(f"{_key(name)} must be a suite name or a non-empty list of task names, got {value!r}")

    def training_tasks(self) -> list[str]:
        """The training template names, resolved against the registry (errors name `curriculum.tasks`)."""
        return resolve_tasks(self.tasks, "tasks")

    def evaluation_tasks(self) -> list[str]:
        """The evaluation template names: `eval_tasks`, or `tasks` when that is None."""
        if self.eval_tasks is None:
            return self.training_tasks()
        return resolve_tasks(self.eval_tasks, "eval_tasks")


def resolve_tasks(spec: str | list[str], key: str = "tasks") -> list[str]:
    """Template names for a suite name or a list of names, in registry/list order, without duplicates."""
    from droidrl.envs.tasks import android_world_suite
    from droidrl.envs.tasks.registry import get_template, suites, templates  # imports every task module

    all_templates = templates()
    # android_world's tasks and suites (aw.Name, androidworld...) exist only where android_world imports.
    wanted = [spec] if isinstance(spec, str) else list(spec)
    if any(android_world_suite.is_android_world_name(name) for name in wanted):
        android_world_suite.require(_key(key))
    named = suites()
    if isinstance(spec, str):
        if spec in named:
            return list(named[spec])
        if spec in all_templates:
            return [spec]
        if android_world_suite.is_android_world_name(spec):
            try:
                return [get_template(spec).name]
            except KeyError as err:
                raise ValueError(f"{_key(key)}: {err.args[0]}") from None
        raise ValueError(f"{_key(key)}: {spec!r} is neither a suite ({', '.join(sorted(named))}) nor a task name")
    names: list[str] = []
    for name in spec:
        if name in named:  # a suite inside a list: its templates (mixing e.g. androidworld with droidrl's)
            names.extend(n for n in named[name] if n not in names)
            continue
        if android_world_suite.is_android_world_name(name):
            try:
                name = get_template(name).name
            except KeyError as err:
                raise ValueError(f"{_key(key)}: {err.args[0]}") from None
        elif name not in all_templates:
            close = [t for t in all_templates if name.lower() in t.lower()][:5]
            hint = f" Did you mean: {', '.join(close)}?" if close else " Run `droidrl tasks` for the list."
            raise ValueError(f"{_key(key)}: no task template named {name!r}.{hint}")
        if name not in names:
            names.append(name)
    return names
