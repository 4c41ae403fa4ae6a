"""Group-relative advantages on plain per-episode data: GRPO, Dr. GRPO, per-task normalisation, step broadcast.

Inputs are parallel sequences with one entry per episode (reward, group id, task id, number of steps).
A group is the G episodes sampled for one task instance. Outputs are plain lists of floats; the
learner turns them into tensors. Semantics follow verl's `compute_grpo_outcome_advantage`:
unbiased std (`torch.std`), eps 1e-6 added to the std, and a group of one gets mean 0 and std 1.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Sequence

from droidrl.algorithms.config import AdvantageConfig


def _check_lengths(name: str, values: Sequence, expected: int) -> None:
    if len(values) != expected:
        raise ValueError(f"{name} has {len(values)} entries but rewards has {expected}; pass one per episode")


def _mean_std(values: Sequence[float], weights: Sequence[int], unbiased: bool) -> tuple[float, float]:
    """Mean and std of `values`, each repeated weights[i] times (weights = 1 for plain episode statistics)."""
    count = sum(weights)
    mean = sum(v * w for v, w in zip(values, weights, strict=True)) / count
    squares = sum(w * (v - mean) ** 2 for v, w in zip(values, weights, strict=True))
    dof = count - 1 if unbiased else count
    return mean, math.sqrt(squares / dof) if dof > 0 else 0.0


def group_advantages(
    rewards: Sequence[float],
    group_ids: Sequence[Hashable],
    *,
    norm_by_std: bool = True,
    eps: float = 1e-6,
    unbiased: bool = True,
    steps: Sequence[int] | None = None,
) -> list[float]:
    """GRPO (r - mean) / (std + eps), or Dr. GRPO r - mean when norm_by_std is False, per group.

    With `steps` given, each episode counts once per step in its group's mean and std (MobileRL,
    where every turn is a row of the group); otherwise each episode counts once.
    A group of one episode has mean 0 and std 1, as in verl, so its advantage is its reward.
    """
    _check_lengths("group_ids", group_ids, len(rewards))
    weights = [1] * len(rewards) if steps is None else list(steps)
    _check_lengths("steps", weights, len(rewards))
    if any(w < 1 for w in weights):
        raise ValueError(f"every episode needs at least one step, got steps={weights}")
    members: dict[Hashable, list[int]] = defaultdict(list)
    for index, group in enumerate(group_ids):
        members[group].append(index)
    advantages = [0.0] * len(rewards)
    for indices in members.values():
        values = [float(rewards[i]) for i in indices]
        if len(indices) == 1:
            mean, std = 0.0, 1.0
        else:
            mean, std = _mean_std(values, [weights[i] for i in indices], unbiased)
        for i, value in zip(indices, values, strict=True):
            advantages[i] = (value - mean) / (std + eps) if norm_by_std else value - mean
    return advantages


def task_normalize(
    advantages: Sequence[float],
    task_ids: Sequence[Hashable],
    *,
    mask: Sequence[bool] | None = None,
    eps: float = 1e-6,
    unbiased: bool = True,
) -> list[float]:
    """AgentRL's task advantage normalisation: standardise advantages within each task id.

    Only entries with mask True enter the statistics and are changed (muted groups keep their
    advantage), so groups without signal do not shrink the std of the others. A task with fewer
    than two masked-in entries is left as it is.
    """
    _check_lengths("task_ids", task_ids, len(advantages))
    keep = [True] * len(advantages) if mask is None else [bool(m) for m in mask]
    _check_lengths("mask", keep, len(advantages))
    members: dict[Hashable, list[int]] = defaultdict(list)
    for index, task in enumerate(task_ids):
        if keep[index]:
            members[task].append(index)
    result = [float(a) for a in advantages]
    for indices in members.values():
        if len(indices) < 2:
            continue
        mean, std = _mean_std([result[i] for i in indices], [1] * len(indices), unbiased)
        for i in indices:
            result[i] = (result[i] - mean) / (std + eps)
    return result


def broadcast_to_steps(values: Sequence[float], steps: Sequence[int]) -> list[float]:
    """Repeat each episode's value once per step: the per-row advantages of step-wise samples."""
    _check_lengths("steps", steps, len(values))
    return [float(v) for v, n in zip(values, steps, strict=True) for _ in range(n)]


def compute_advantages(
    rewards: Sequence[float],
    group_ids: Sequence[Hashable],
    config: AdvantageConfig | None = None,
    *,
    task_ids: Sequence[Hashable] | None = None,
    steps: Sequence[int] | None = None,
    mask: Sequence[bool] | None = None,
) -> list[float]:
    """Per-episode advantages as the config says: group advantages, then per-task normalisation if on.

    `steps` (episode lengths) is needed when config.stats_over is "steps"; `mask` marks episodes that
    will be trained on (False for muted ones), used by the per-task statistics.
    """
    config = config or AdvantageConfig()
    if config.stats_over == "steps" and steps is None:
        raise ValueError("algorithm.advantage.stats_over is 'steps': pass steps (the length of each episode)")
    advantages = group_advantages(
        rewards,
        group_ids,
        norm_by_std=config.norm_by_std,
        eps=config.eps,
        unbiased=config.unbiased_std,
        steps=steps if config.stats_over == "steps" else None,
    )
    if config.task_normalize and task_ids is not None:
        advantages = task_normalize(advantages, task_ids, mask=mask, eps=config.eps, unbiased=config.unbiased_std)
    return advantages
