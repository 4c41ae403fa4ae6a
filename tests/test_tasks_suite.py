"""Every built-in task template, 20 seeds each: the expert solves it, doing nothing or acting at random
does not, difficulty matches the expert's path length, and setup is deterministic."""

from __future__ import annotations

import random

import pytest
from conftest import device_fingerprint

from droidrl.envs.actions import GRID_MAX, Back, Finish, Swipe, Tap
from droidrl.envs.execute import perform
from droidrl.envs.sim_device import SimDevice
from droidrl.envs.tasks.base import DIFFICULTY_STEPS
from droidrl.envs.tasks.expert import path_length, run_expert
from droidrl.envs.tasks.interruptions import arm_interruptions, plan_interruptions
from droidrl.envs.tasks.registry import templates

SEEDS = range(20)
BASE = "suite-base"
NAMES = list(templates())


@pytest.fixture(scope="module")
def device() -> SimDevice:
    dev = SimDevice()
    dev.save_snapshot(BASE)
    return dev


def _fresh(device: SimDevice, name: str, seed: int, interruptions: float = 0.0):
    device.load_snapshot(BASE)
    task = templates()[name].instance(seed)
    task.setup(device)
    arm_interruptions(device, plan_interruptions(task, interruptions))
    return task


def test_suite_is_large_enough() -> None:
    apps = {package for template in templates().values() for package in template.apps}
    assert len(templates()) >= 60, f"{len(templates())} templates"
    assert len(apps) >= 8, sorted(apps)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.slow
def test_expert_solves_every_seed(device: SimDevice, name: str) -> None:
    low, high = DIFFICULTY_STEPS[templates()[name].difficulty]
    for seed in SEEDS:
        task = _fresh(device, name, seed)
        if task.template.kind == "operation":
            assert task.evaluate(device, None) == 0.0, f"{task.id}: goal already holds after setup"
        actions = run_expert(task, device)
        answer = actions[-1].message
        assert task.evaluate(device, answer) == 1.0, f"{task.id}: expert failed; goal {task.goal!r}; {actions}"
        steps = path_length(actions)
        assert low <= steps <= high, f"{task.id}: expert took {steps} steps, not {task.difficulty} ({low}-{high})"
        assert steps <= task.max_steps // 2 + 1, f"{task.id}: {steps} steps leave no slack in max_steps"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.slow
def test_expert_dismisses_interruptions(device: SimDevice, name: str) -> None:
    for seed in range(3):
        task = _fresh(device, name, seed, interruptions=1.0)
        actions = run_expert(task, device, max_steps=task.max_steps + len(task.apps))
        assert task.evaluate(device, actions[-1].message) == 1.0, f"{task.id} with interruptions: {actions}"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.slow
def test_doing_nothing_fails(device: SimDevice, name: str) -> None:
    for seed in SEEDS:
        task = _fresh(device, name, seed)
        assert task.evaluate(device, "") == 0.0, f"{task.id}: an empty finish scores"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.slow
def test_random_policy_almost_never_succeeds(device: SimDevice, name: str) -> None:
    rng = random.Random(name)
    wins = 0
    for seed in SEEDS:
        task = _fresh(device, name, seed)
        for _ in range(task.max_steps):
            roll = rng.random()
            if roll < 0.8:
                action = Tap((rng.randint(0, GRID_MAX), rng.randint(0, GRID_MAX)))
            elif roll < 0.9:
                action = Swipe((500, rng.randint(300, 800)), (500, rng.randint(200, 800)))
            else:
                action = Back()
            perform(device, action, wait_scale=0.0)
        wins += task.evaluate(device, "") == 1.0
    assert wins <= 1, f"{name}: a random policy solved {wins} of {len(SEEDS)} instances"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.slow
def test_setup_is_deterministic(device: SimDevice, name: str) -> None:
    for seed in (0, 7):
        first = _fresh(device, name, seed)
        one = device_fingerprint(device)
        second = _fresh(device, name, seed)
        assert device_fingerprint(device) == one, f"{first.id}: two setups differ"
        assert first.goal == second.goal and first.params == second.params


def test_finish_is_the_last_expert_action(device: SimDevice) -> None:
    task = _fresh(device, "SystemWifiTurnOff", 0)
    actions = run_expert(task, device)
    assert isinstance(actions[-1], Finish) and not any(isinstance(a, Finish) for a in actions[:-1])
