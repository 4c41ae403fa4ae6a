"""Seeded interruptions (permission prompts, ads, rate-this-app dialogs) and how an expert dismisses them.

Which apps interrupt is drawn from the task instance's seed, so an episode replays exactly. The
dialog is armed through a global setting and appears once, the next time that app comes to the front.
"""

from __future__ import annotations

import random

from droidrl.envs.actions import Tap
from droidrl.envs.device import Device
from droidrl.envs.sim.systemui import INTERRUPTIONS, INTERRUPTIONS_SETTING
from droidrl.envs.tasks.base import Task, derive_seed
from droidrl.envs.tasks.screen import UiView
from droidrl.envs.tasks.state import put_setting

KINDS = tuple(sorted(INTERRUPTIONS))
_DIALOG_PACKAGES = {spec["package"]: spec["dismiss"] for spec in INTERRUPTIONS.values()}


def plan_interruptions(task: Task, probability: float) -> dict[str, str]:
    """For each app of the task, with `probability`, the kind of dialog it shows on its next start."""
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"interruption probability must be in [0, 1], got {probability}")
    rng = random.Random(derive_seed(task.name, task.seed, "interruptions"))
    plan = {}
    for package in task.apps:
        draw, kind = rng.random(), rng.choice(KINDS)  # always two draws, so plans nest as probability grows
        if draw < probability:
            plan[package] = kind
    return plan


def arm_interruptions(device: Device, plan: dict[str, str]) -> None:
    """Arm the planned dialogs on the device (a no-op setting on phones that are not simulated)."""
    if plan:
        put_setting(device, "global", INTERRUPTIONS_SETTING, ",".join(f"{p}:{k}" for p, k in sorted(plan.items())))


def dismissal(view: UiView) -> Tap | None:
    """The tap that closes an interruption dialog on screen, or None when there is none."""
    for node in view.nodes:
        label = _DIALOG_PACKAGES.get(node.package)
        if label is not None and node.text == label and node.clickable:
            return view.tap(node)
    return None
