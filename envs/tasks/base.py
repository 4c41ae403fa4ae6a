"""Task templates and instances: seeded parameters, setup, a checker and an expert, as one small record.

A template is declared once (`TaskTemplate(...)`); `template.instance(seed)` draws its parameters
deterministically, the way android_world derives one random stream per task instance.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from droidrl.envs.actions import Action
from droidrl.envs.device import Device

Difficulty = Literal["easy", "medium", "hard"]
Kind = Literal["operation", "query"]
DIFFICULTIES: tuple[Difficulty, ...] = ("easy", "medium", "hard")
# Expert path length (actions before `finish`) per difficulty, as MobileRL/android_world bucket tasks.
DIFFICULTY_STEPS: dict[str, tuple[int, int]] = {"easy": (1, 4), "medium": (5, 10), "hard": (11, 10_000)}
DEFAULT_MAX_STEPS: dict[str, int] = {"easy": 10, "medium": 20, "hard": 40}

Params = dict[str, Any]
ParamsFn = Callable[[random.Random], Params]
SetupFn = Callable[[Device, Params], None]
EvaluateFn = Callable[[Device, Params, "str | None"], float]
ExpertFn = Callable[[Device, Params], Action]


def difficulty_for(path_length: int) -> Difficulty:
    """The difficulty bucket of an expert path of `path_length` actions."""
    for name in DIFFICULTIES:
        low, high = DIFFICULTY_STEPS[name]
        if low <= path_length <= high:
            return name
    raise ValueError(f"path length must be at least 1, got {path_length}")


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from the parts' text (sha256), stable across Python versions and processes."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _no_params(rng: random.Random) -> Params:
    return {}


def _no_setup(device: Device, params: Params) -> None:
    return None


@dataclass(frozen=True)
class TaskTemplate:
    """A family of task instances that differ only in their seeded parameters.

    - `goal`: `str.format` text over the parameters ("Turn {state} Wi-Fi.").
    - `params(rng)`: draws the parameters; only `rng` may be a source of randomness.
    - `setup(device, params)`: from the clean base snapshot (home screen), prepares the device state
      the goal starts from, through the `Device` API only (so it works on any phone).
    - `evaluate(device, params, answer)`: 1.0 when the goal is reached (partial credit allowed),
      reading state as a checker on a real phone would; `answer` is `finish(message=...)`'s text.
    - `expert(device, params)`: the next action from the current screen (`Finish` when done). It may
      read the device like a checker but only acts through the returned action.
    """

    name: str
    apps: tuple[str, ...]
    goal: str
    difficulty: Difficulty
    kind: Kind
    evaluate: EvaluateFn
    expert: ExpertFn
    params: ParamsFn = _no_params
    setup: SetupFn = _no_setup
    max_steps: int | None = None
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.difficulty not in DIFFICULTIES:
            raise ValueError(f"task {self.name}: difficulty must be one of {DIFFICULTIES}, got {self.difficulty!r}")
        if self.kind not in ("operation", "query"):
            raise ValueError(f"task {self.name}: kind must be 'operation' or 'query', got {self.kind!r}")
        if not self.apps:
            raise ValueError(f"task {self.name}: list the packages it uses in apps=")

    def instance(self, seed: int) -> Task:
        """The instance of this template for `seed` (same seed, same parameters and goal)."""
        rng = random.Random(derive_seed(self.name, seed))
        params = self.params(rng)
        goal = self.goal.format(**params)
        max_steps = self.max_steps or DEFAULT_MAX_STEPS[self.difficulty]
        return Task(template=self, seed=int(seed), params=params, goal=goal, max_steps=max_steps)


@dataclass(frozen=True)
class Task:
    """One task instance: a template with its parameters drawn for `seed`."""

    template: TaskTemplate
    seed: int
    params: Params = field(compare=False)
    goal: str
    max_steps: int

    @property
    def name(self) -> str:
        return self.template.name

    @property
    def id(self) -> str:
        """`Name:seed`, the form `droidrl play` and `reset(options={"task": ...})` accept."""
        return f"{self.template.name}:{self.seed}"

    @property
    def difficulty(self) -> Difficulty:
        return self.template.difficulty

    @property
    def apps(self) -> tuple[str, ...]:
        return self.template.apps

    def setup(self, device: Device) -> None:
        self.template.setup(device, self.params)

    def evaluate(self, device: Device, answer: str | None = None) -> float:
        score = float(self.template.evaluate(device, self.params, answer))
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"task {self.id}: evaluate returned {score}, outside [0, 1]")
        return score

    def expert(self, device: Device) -> Action:
        return self.template.expert(device, self.params)
