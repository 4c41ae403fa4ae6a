"""The evaluation set: a suite's task instances, seeded the way android_world seeds its suite.

`suite_instances` is the one place a suite name becomes instances, for droidrl's templates and for
android_world's suites (envs/tasks/android_world_suite.py) alike.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

DEFAULT_TASK_SEED = 30  # android_world's `task_random_seed` default (MobileRL evaluates with it)


@dataclass(frozen=True, order=True)
class EvalInstance:
    """One task instance of the evaluation set: the template (or task spec) name and its parameter seed."""

    task: str
    seed: int
    difficulty: str = ""


def instance_seed(task_seed: int, name: str, index: int) -> int:
    """android_world's instance seed (`suite_utils`): sha256 of "{seed}_{name}_{index}", modulo 2**32."""
    digest = hashlib.sha256(f"{task_seed}_{name}_{index}".encode()).hexdigest()
    return int(digest, 16) % 2**32


def suite_instances(
    suite: str | list[str], task_seed: int = DEFAULT_TASK_SEED, combinations: int = 1
) -> list[EvalInstance]:
    """The instances of `suite` (a suite name, a task name, or a list of task names): `combinations` per task.

    Names resolve against droidrl's registry, which lists android_world's suites (`androidworld`, ...) and
    tasks (`aw.Name`) where android_world imports; each instance's seed is android_world's hash of
    (task_random_seed, name, index), so `androidworld` is exactly android_world's `create_suite`.
    """
    from droidrl.curricula.config import resolve_tasks
    from droidrl.envs.tasks.android_world_suite import is_android_world_name
    from droidrl.envs.tasks.registry import get_template

    if combinations < 1:
        raise ValueError(f"--combinations must be >= 1, got {combinations}")
    try:
        names = resolve_tasks(suite, "tasks")
    except ValueError as err:
        raise ValueError(str(err).replace("curriculum.tasks", "--suite", 1)) from None
    instances = []
    for name in names:
        difficulty = str(getattr(get_template(name), "difficulty", ""))
        # android_world hashes its registry name: aw.SystemWifiTurnOff's seeds are SystemWifiTurnOff's there.
        seed_name = name.partition(".")[2] if is_android_world_name(name) else name
        for index in range(combinations):
            instances.append(EvalInstance(name, instance_seed(task_seed, seed_name, index), difficulty))
    return instances
