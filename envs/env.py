"""`AndroidEnv`: a gymnasium environment over any `Device`, scored by the task checkers of envs/tasks.

One episode is one task instance. `reset` rolls the device back to a snapshot of the task's starting
state (set up once, then cached as its own snapshot); `step` parses the model's text, acts, and
observes. The task checker gives the reward when the episode ends.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from PIL import Image

from droidrl.envs.actions import (
    APP_PACKAGES,
    Action,
    Finish,
    Invalid,
    format_action,
    parse,
    parse_json,
)
from droidrl.envs.device import Device, check_snapshot_name
from droidrl.envs.errors import SnapshotError
from droidrl.envs.execute import ActionRefused, perform
from droidrl.envs.tasks.base import Task, derive_seed
from droidrl.envs.tasks.interruptions import arm_interruptions, plan_interruptions
from droidrl.envs.tasks.registry import TaskSpec, make_task, suites

MAX_XML_CHARS = 2_000_000
MAX_ACTION_TEXT = 100_000
_SAMPLE_CHARSET = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-.,:;=()[]\"'<>/{}")


class AnyText(spaces.Text):
    """A `Text` space holding any string up to `max_length` (UI dumps and model output use all of unicode).

    `sample()` draws from a small ASCII set; `contains` accepts every character.
    """

    def __init__(self, max_length: int, min_length: int = 0) -> None:
        super().__init__(max_length, min_length=min_length, charset=_SAMPLE_CHARSET)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length


@dataclass
class EnvConfig:
    """How episodes run. Every field can be given to `AndroidEnv(...)` or `gymnasium.make(...)` by name."""

    task: Any = None  # default task spec for reset() without options; None samples from `suite`
    suite: str = "all"  # the suite reset() samples from when no task is given
    max_steps: int | None = None  # None: the task's own max_steps
    max_invalid: int = 3  # consecutive invalid actions that end the episode (terminated, checker scores)
    settle_s: float = 0.0  # wait after each action before observing (0.5-1 s on real emulators)
    wait_scale: float = 1.0  # multiplies Wait(seconds); 0 on a simulated phone whose clock does not run
    pixel_budget: int | None = None  # resize screenshots to at most this many pixels, keeping the aspect
    interruptions: float = 0.0  # probability that each app of the task shows a dialog on its first start
    action_format: Literal["autoglm", "json"] = "autoglm"  # do()/finish() or android_world JSON
    base_snapshot: str = "droidrl-base"  # the clean state every task is set up from
    cache_task_snapshots: bool = True  # save each instance's starting state as its own snapshot
    screenshots: bool = True  # False: observations carry no screenshot (text-only agents skip the render)
    # Wall-clock timings in info["timings"]. Off by default: with them on, info differs between two runs of the
    # same seed and actions, which gymnasium's check_env (and any replay comparison) rejects.
    timings: bool = False

    def __post_init__(self) -> None:
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {self.max_steps}")
        if self.max_invalid < 1:
            raise ValueError(f"max_invalid must be at least 1, got {self.max_invalid}")
        if self.settle_s < 0 or self.wait_scale < 0:
            raise ValueError(f"settle_s and wait_scale must be >= 0, got {self.settle_s}, {self.wait_scale}")
        if self.pixel_budget is not None and self.pixel_budget < 64:
            raise ValueError(f"pixel_budget must be at least 64 pixels, got {self.pixel_budget}")
        if not 0.0 <= self.interruptions <= 1.0:
            raise ValueError(f"interruptions is a probability in [0, 1], got {self.interruptions}")
        if self.action_format not in ("autoglm", "json"):
            raise ValueError(f"action_format must be 'autoglm' or 'json', got {self.action_format!r}")
        check_snapshot_name(self.base_snapshot)


def _requires_finish(task: Task) -> bool:
    """Whether the task scores only episodes the agent ended with finish() (android_world's protocol)."""
    return bool(getattr(task.template, "requires_finish", False))


def observation_size(size: tuple[int, int], pixel_budget: int | None) -> tuple[int, int]:
    """(width, height) of observed screenshots: the screen scaled down to fit `pixel_budget`, if given."""
    width, height = size
    if pixel_budget is None or width * height <= pixel_budget:
        return width, height
    scale = math.sqrt(pixel_budget / (width * height))
    return max(1, int(width * scale)), max(1, int(height * scale))


@dataclass
class _Episode:
    task: Task
    max_steps: int
    steps: int = 0
    invalid_run: int = 0
    done: bool = False
    timings: dict[str, float] = field(default_factory=dict)


class AndroidEnv(gym.Env):
    """A phone as a gymnasium environment: text actions in, screenshot + UI XML + app out.

    `device` defaults to a fresh simulated phone (`SimDevice`); any `Device` works, e.g. an
    `AdbDevice` on an emulator. Keyword arguments are `EnvConfig` fields.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 2}

    def __init__(self, device: Device | None = None, render_mode: str | None = None, **config: Any) -> None:
        unknown = set(config) - set(EnvConfig.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown AndroidEnv option(s) {sorted(unknown)}; see EnvConfig")
        self.config = EnvConfig(**config)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        if device is None:
            from droidrl.envs.sim_device import SimDevice

            device = SimDevice()
            if "wait_scale" not in config:
                self.config.wait_scale = 0.0  # the simulated clock is frozen: waiting changes nothing
        self.device = device
        if self.config.suite not in suites():
            raise ValueError(f"unknown suite {self.config.suite!r}; suites: {', '.join(sorted(suites()))}")
        width, height = observation_size(device.size, self.config.pixel_budget)
        observation = {"ui_xml": AnyText(MAX_XML_CHARS), "app": AnyText(256)}
        if self.config.screenshots:
            observation["screenshot"] = spaces.Box(0, 255, (height, width, 3), np.uint8)
        self.observation_space = spaces.Dict(observation)
        self.action_space = AnyText(MAX_ACTION_TEXT)
        self._obs_size = (width, height)
        self._base_saved = False
        self._episode: _Episode | None = None
        self._last_obs: dict[str, Any] | None = None

    # -- gymnasium API -------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"task"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; the only option is 'task'")
        task = self._choose_task(options.get("task", self.config.task), seed)
        restore_s, setup_s = self._restore(task)
        max_steps = self.config.max_steps or task.max_steps
        self._episode = _Episode(task=task, max_steps=max_steps)
        started = time.perf_counter()
        obs = self._observe()
        info = {
            "task": task.id,
            "goal": task.goal,
            "difficulty": task.difficulty,
            "apps": list(task.apps),
            "max_steps": max_steps,
            "step": 0,
        }
        if self.config.timings:
            info["timings"] = {"restore_s": restore_s, "setup_s": setup_s, "observe_s": time.perf_counter() - started}
        return obs, info

    def step(self, action: str | Action) -> tuple[dict, float, bool, bool, dict]:
        episode = self._episode
        if episode is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if episode.done:
            raise gym.error.ResetNeeded("the episode has ended; call reset() to start the next one")
        timings: dict[str, float] = {}
        started = time.perf_counter()
        parsed = self._parse(action)
        timings["parse_s"] = time.perf_counter() - started
        reason = parsed.reason if isinstance(parsed, Invalid) else None
        if reason is None:
            started = time.perf_counter()
            try:
                perform(self.device, parsed, apps=APP_PACKAGES, wait_scale=self.config.wait_scale)
            except ActionRefused as refused:
                reason = str(refused)
            timings["act_s"] = time.perf_counter() - started
            if self.config.settle_s:
                time.sleep(self.config.settle_s)
        episode.steps += 1
        episode.invalid_run = episode.invalid_run + 1 if reason is not None else 0

        terminated = isinstance(parsed, Finish) or episode.invalid_run >= self.config.max_invalid
        truncated = not terminated and episode.steps >= episode.max_steps
        started = time.perf_counter()
        obs = self._observe()
        timings["observe_s"] = time.perf_counter() - started

        info: dict[str, Any] = {
            "task": episode.task.id,
            "goal": episode.task.goal,
            "step": episode.steps,
            "valid": reason is None,
            "reason": reason,
            "action": format_action(parsed) if not isinstance(parsed, Invalid) else None,
            "parsed": parsed,
        }
        if self.config.timings:
            info["timings"] = timings
        reward = 0.0
        if terminated or truncated:
            episode.done = True
            finished = isinstance(parsed, Finish)
            answer = parsed.message if finished else None
            started = time.perf_counter()
            reward = episode.task.evaluate(self.device, answer)
            timings["evaluate_s"] = time.perf_counter() - started
            if not finished and _requires_finish(episode.task):
                # android_world's runner counts success only when the agent said it is done.
                info["checker"] = reward
                reward = 0.0
            info["answer"] = answer
            info["success"] = reward == 1.0
            if episode.invalid_run >= self.config.max_invalid:
                info["end_reason"] = f"{episode.invalid_run} invalid actions in a row"
            elif truncated:
                info["end_reason"] = f"max_steps ({episode.max_steps}) reached"
            else:
                info["end_reason"] = "finish"
        return obs, reward, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self.device.screenshot()

    @property
    def task(self) -> Task | None:
        """The task of the current episode (None before the first reset)."""
        return self._episode.task if self._episode is not None else None

    # -- internals -----------------------------------------------------------------------------

    def _choose_task(self, spec: TaskSpec | None, seed: int | None) -> Task:
        if spec is None:
            names = suites()[self.config.suite]
            name = names[int(self.np_random.integers(len(names)))]
            return make_task(name, int(self.np_random.integers(2**31)))
        if seed is None and isinstance(spec, str) and ":" not in spec:
            seed = int(self.np_random.integers(2**31))
        return make_task(spec, seed)

    def _restore(self, task: Task) -> tuple[float, float]:
        """Put the device in the task's starting state; returns (restore seconds, setup seconds)."""
        if not self._base_saved:
            self.device.save_snapshot(self.config.base_snapshot)
            self._base_saved = True
        plan = plan_interruptions(task, self.config.interruptions)
        name = self._snapshot_name(task, plan)
        # android_world's tasks set themselves up every episode (initialize_task also keeps host-side state).
        cache = self.config.cache_task_snapshots and getattr(task.template, "cache_snapshots", True)
        if cache:
            try:
                return self.device.load_snapshot(name), 0.0
            except SnapshotError:
                pass
        restore_s = self.device.load_snapshot(self.config.base_snapshot)
        started = time.perf_counter()
        task.setup(self.device)
        arm_interruptions(self.device, plan)
        setup_s = time.perf_counter() - started
        if cache:
            self.device.save_snapshot(name)
        return restore_s, setup_s

    def _snapshot_name(self, task: Task, plan: dict[str, str]) -> str:
        # The name must change when anything that shapes the starting state does.
        variant = derive_seed(sorted(plan.items()), self.config.base_snapshot) % 10**8
        return f"task-{task.name}-{task.seed}-{variant}"[:100]

    def _parse(self, action: str | Action) -> Action | Invalid:
        if not isinstance(action, str):
            try:
                format_action(action)
            except ValueError:
                return Invalid(f"not an action: {type(action).__name__}")
            return action
        if self.config.action_format == "json":
            return parse_json(action, self.device.size)
        return parse(action)

    def _observe(self) -> dict[str, Any]:
        obs: dict[str, Any] = {}
        if self.config.screenshots:
            shot = self.device.screenshot()
            if self._obs_size != (shot.shape[1], shot.shape[0]):
                shot = np.asarray(Image.fromarray(shot).resize(self._obs_size, Image.Resampling.BILINEAR))
            obs["screenshot"] = shot
        obs["ui_xml"] = self.device.ui_xml()[:MAX_XML_CHARS]
        obs["app"] = self.device.current_app()
        self._last_obs = obs
        return obs

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)
