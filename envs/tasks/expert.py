"""Run a task's expert on a device: dismiss interruptions, then follow the template's next-action rule."""

from __future__ import annotations

from droidrl.envs.actions import Action, Finish
from droidrl.envs.device import Device
from droidrl.envs.execute import perform
from droidrl.envs.tasks.base import Task
from droidrl.envs.tasks.interruptions import dismissal
from droidrl.envs.tasks.screen import UiView


def expert_action(task: Task, device: Device) -> Action:
    """The expert's next action on the current screen: close an interruption first, else ask the template."""
    tap = dismissal(UiView.of(device))
    return tap if tap is not None else task.expert(device)


def run_expert(task: Task, device: Device, max_steps: int | None = None) -> list[Action]:
    """Play the expert from the current state until it finishes; returns its actions (the last is Finish).

    Raises RuntimeError when it has not finished within `max_steps` (default: the task's max_steps),
    which means the expert is wrong for this instance.
    """
    limit = max_steps or task.max_steps
    actions: list[Action] = []
    for _ in range(limit):
        action = expert_action(task, device)
        actions.append(action)
        if isinstance(action, Finish):
            return actions
        perform(device, action, wait_scale=0.0)
    raise RuntimeError(f"expert for {task.id} did not finish in {limit} steps; last actions: {actions[-5:]}")


def path_length(actions: list[Action]) -> int:
    """Steps that act on the device: the expert path without its final finish."""
    return sum(not isinstance(action, Finish) for action in actions)
