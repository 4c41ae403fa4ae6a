"""AdaGRPO as MobileRL defines it: SPA reward shaping, AdaPR positive replay, and DAPO-style group filtering.

One RL step, on plain per-episode lists (one entry per episode; a group = the G episodes of one task instance):

    shaped = spa_rewards(rewards, lengths, group_ids, alpha)            # successes: shorter is better
    kept   = filter_groups(shaped, group_ids, config, rng=rng)          # mute / refill all-equal groups
    adv    = compute_advantages(shaped, group_ids, ..., mask=kept.mask) # advantages.py
    replayed = replay.step(trajectories_with_advantages)                # AdaPR: earlier positives + push

`prepare_batch` does the first three in that order. The replay buffer holds any objects that follow the
`ReplayItem` protocol (reward, length, advantage); it never looks inside them otherwise.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from droidrl.algorithms.advantages import compute_advantages
from droidrl.algorithms.config import AlgorithmConfig, DynamicSamplingConfig, ReplayConfig


def _groups(group_ids: Sequence[Hashable]) -> dict[Hashable, list[int]]:
    """Episode indices per group, groups in order of first appearance."""
    members: dict[Hashable, list[int]] = defaultdict(list)
    for index, group in enumerate(group_ids):
        members[group].append(index)
    return members


# --- SPA: shortest-path reward adjustment -------------------------------------------------------------


def spa_rewards(
    rewards: Sequence[float], lengths: Sequence[int], group_ids: Sequence[Hashable], alpha: float = 0.5
) -> list[float]:
    """r * (1 - alpha * (T - T_min) / T) for each success (reward > 0); failures keep their reward.

    T is the episode's number of steps and T_min the shortest success in its group. With binary
    rewards and alpha 0.5 this is MobileRL's `raw_score - max(T - T_min, 0) / (2 T)`.
    """
    if not (len(rewards) == len(lengths) == len(group_ids)):
        raise ValueError(
            f"rewards ({len(rewards)}), lengths ({len(lengths)}) and group_ids ({len(group_ids)}) "
            "must have one entry per episode"
        )
    if any(n < 1 for n in lengths):
        raise ValueError(f"every episode needs a length of at least one step, got {list(lengths)}")
    shaped = [float(r) for r in rewards]
    for indices in _groups(group_ids).values():
        successes = [i for i in indices if rewards[i] > 0]
        if not successes:
            continue
        shortest = min(lengths[i] for i in successes)
        for i in successes:
            shaped[i] = rewards[i] * (1.0 - alpha * (lengths[i] - shortest) / lengths[i])
    return shaped


# --- Dynamic sampling: groups without signal, and the negatives cap --------------------------------------


@dataclass
class GroupFilter:
    """Which episodes train. mask[i] False: muted (refill mode: dropped; the caller collects `refill` groups)."""

    mask: list[bool]
    silent_groups: list[Hashable]  # groups whose rewards are all equal: zero advantage, no signal
    refill: int  # groups the caller should collect again (refill mode), else 0
    muted_negatives: int  # failures muted by the negatives-per-positive cap


def filter_groups(
    rewards: Sequence[float],
    group_ids: Sequence[Hashable],
    config: DynamicSamplingConfig | None = None,
    *,
    rng: random.Random | None = None,
) -> GroupFilter:
    """DAPO-style: mute (or drop for refill) groups whose rewards are all equal; cap failures per success.

    Use the rewards the advantages are computed from (after SPA): an all-success group whose
    lengths differ still carries SPA's signal and is kept. In mixed groups with k successes
    (reward > 0), at most floor(cap * k) failures are kept, chosen at random with `rng` (MobileRL's
    `mute_uid_all_zero_reward` uses cap 2). With config.enabled False everything is kept.
    """
    config = config or DynamicSamplingConfig()
    if len(rewards) != len(group_ids):
        raise ValueError(f"rewards ({len(rewards)}) and group_ids ({len(group_ids)}) need one entry per episode")
    mask = [True] * len(rewards)
    if not config.enabled:
        return GroupFilter(mask, [], 0, 0)
    rng = rng or random.Random(0)
    silent: list[Hashable] = []
    muted = 0
    for group, indices in _groups(group_ids).items():
        if len(indices) > 1 and len({float(rewards[i]) for i in indices}) == 1:
            silent.append(group)
            for i in indices:
                mask[i] = False
            continue
        if config.max_negatives_per_positive is None:
            continue
        positives = [i for i in indices if rewards[i] > 0]
        negatives = [i for i in indices if rewards[i] <= 0]
        allowed = math.floor(config.max_negatives_per_positive * len(positives))
        if positives and len(negatives) > allowed:
            keep = set(rng.sample(negatives, allowed))
            for i in negatives:
                if i not in keep:
                    mask[i] = False
                    muted += 1
    refill = len(silent) if config.mode == "refill" else 0
    return GroupFilter(mask, silent, refill, muted)


# --- The per-step pipeline on plain data ------------------------------------------------------------------


@dataclass
class BatchAdvantages:
    """Per-episode results of `prepare_batch`; broadcast them to step rows with advantages.broadcast_to_steps."""

    rewards: list[float]  # after SPA
    advantages: list[float]
    mask: list[bool]  # False: muted, do not train (loss mask 0)
    refill: int  # groups to collect again (dynamic sampling in refill mode)
    metrics: dict[str, float] = field(default_factory=dict)


def prepare_batch(
    rewards: Sequence[float],
    lengths: Sequence[int],
    group_ids: Sequence[Hashable],
    config: AlgorithmConfig | None = None,
    *,
    task_ids: Sequence[Hashable] | None = None,
    rng: random.Random | None = None,
) -> BatchAdvantages:
    """SPA (if on) -> group filter (if on) -> advantages (group, then per task over kept episodes)."""
    config = config or AlgorithmConfig()
    shaped = spa_rewards(rewards, lengths, group_ids, config.spa.alpha) if config.spa.enabled else list(rewards)
    kept = filter_groups(shaped, group_ids, config.dynamic_sampling, rng=rng)
    advantages = compute_advantages(
        shaped, group_ids, config.advantage, task_ids=task_ids, steps=lengths, mask=kept.mask
    )
    count = max(len(rewards), 1)
    groups = max(len(set(group_ids)), 1)
    metrics = {
        "success_rate": sum(r > 0 for r in rewards) / count,
        "reward_mean": sum(rewards) / count,
        "shaped_reward_mean": sum(shaped) / count,
        "silent_group_frac": len(kept.silent_groups) / groups,
        "muted_negatives": float(kept.muted_negatives),
        "trained_frac": sum(kept.mask) / count,
    }
    return BatchAdvantages(shaped, advantages, kept.mask, kept.refill, metrics)


# --- AdaPR: adaptive positive replay ----------------------------------------------------------------------


class ReplayItem(Protocol):
    """What the replay buffer needs from a trajectory; anything else on it is carried along untouched.

    reward: the episode's reward (> 0 means success); length: its number of steps; advantage: its
    episode advantage after normalisation (what it will be trained with when replayed). Items are
    stored by reference and must be picklable for checkpoints.
    """

    reward: float
    length: int
    advantage: float


@dataclass
class Replayed:
    """One trajectory drawn from the buffer, to be trained with its stored advantage."""

    item: Any
    advantage: float
    age: int  # pushes since it entered the buffer (0: pushed at the previous step)


@dataclass
class _Entry:
    item: Any
    advantage: float
    pushed_at: int  # push counter value when it entered
    order: int  # insertion sequence number: a stable tie-break


class PositiveReplay:
    """AdaPR buffer (MobileRL `replay_buffer.py`): high-advantage successes, replayed with stored advantages.

    - push: admits the top ceil(top_ratio * len(batch)) successful trajectories (reward > 0 and
      advantage > 0; a zero advantage would train nothing) by advantage; then, while over capacity,
      evicts the entry with the lowest balance_alpha * norm_advantage + (1 - balance_alpha) * norm_recency
      (min-max normalised over the buffer; ties: the oldest insertion goes); entries pushed max_age or
      more pushes ago are purged.
    - sample(batch_size): the top ceil(replay_ratio * batch_size) entries by stored advantage (ties:
      newer first), as MobileRL's `sample_for_training`. Nothing is removed; expiry bounds reuse.
    - step(batch): sample for this batch, then push it, so a trajectory is never replayed in the step
      that produced it; each entry is then available to at most max_age later steps.
    """

    def __init__(self, config: ReplayConfig | None = None) -> None:
        self.config = config or ReplayConfig()
        self.entries: list[_Entry] = []
        self.pushes = 0
        self._next_order = 0
        self.admitted_total = 0
        self.evicted_total = 0
        self.expired_total = 0

    def __len__(self) -> int:
        return len(self.entries)

    def push(self, batch: Sequence[ReplayItem]) -> list[ReplayItem]:
        """Admit this step's best successes; returns the admitted items (before any eviction)."""
        self.pushes += 1
        self._purge()
        if not self.config.enabled:
            return []
        quota = math.ceil(self.config.top_ratio * len(batch))
        candidates = [(i, item) for i, item in enumerate(batch) if item.reward > 0 and item.advantage > 0]
        candidates.sort(key=lambda pair: (-float(pair[1].advantage), pair[0]))
        admitted = [item for _, item in candidates[:quota]]
        for item in admitted:
            self.entries.append(_Entry(item, float(item.advantage), self.pushes, self._next_order))
            self._next_order += 1
        self.admitted_total += len(admitted)
        self._evict_to_capacity()
        return admitted

    def sample(self, batch_size: int) -> list[Replayed]:
        """The entries to mix into a training batch of `batch_size` on-policy trajectories."""
        if not self.config.enabled or not self.entries:
            return []
        count = min(math.ceil(self.config.replay_ratio * batch_size), len(self.entries))
        ranked = sorted(self.entries, key=lambda e: (-e.advantage, -e.order))
        return [Replayed(e.item, e.advantage, self.pushes - e.pushed_at) for e in ranked[:count]]

    def step(self, batch: Sequence[ReplayItem]) -> list[Replayed]:
        """Replay for this step (drawn before the push), then push this step's trajectories."""
        replayed = self.sample(len(batch))
        self.push(batch)
        return replayed

    def _purge(self) -> None:
        alive = [e for e in self.entries if self.pushes - e.pushed_at < self.config.max_age]
        self.expired_total += len(self.entries) - len(alive)
        self.entries = alive

    def _evict_to_capacity(self) -> None:
        while len(self.entries) > self.config.capacity:
            scores = self._eviction_scores()
            victim = min(range(len(self.entries)), key=lambda i: (scores[i], self.entries[i].order))
            del self.entries[victim]
            self.evicted_total += 1

    def _eviction_scores(self) -> list[float]:
        def normalise(values: list[float]) -> list[float]:
            low, high = min(values), max(values)
            return [0.0 if high == low else (v - low) / (high - low) for v in values]

        advantage = normalise([e.advantage for e in self.entries])
        recency = normalise([float(e.pushed_at) for e in self.entries])
        a = self.config.balance_alpha
        return [a * adv + (1 - a) * rec for adv, rec in zip(advantage, recency, strict=True)]

    def stats(self) -> dict[str, float]:
        """Buffer state for logging."""
        advantages = [e.advantage for e in self.entries]
        return {
            "size": float(len(self.entries)),
            "steps": float(sum(int(e.item.length) for e in self.entries)),
            "advantage_mean": sum(advantages) / len(advantages) if advantages else 0.0,
            "age_mean": sum(self.pushes - e.pushed_at for e in self.entries) / len(self.entries)
            if self.entries
            else 0.0,
            "admitted_total": float(self.admitted_total),
            "evicted_total": float(self.evicted_total),
            "expired_total": float(self.expired_total),
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly (items are stored as they are: they must be picklable)."""
        return {
            "version": 1,
            "pushes": self.pushes,
            "next_order": self._next_order,
            "totals": [self.admitted_total, self.evicted_total, self.expired_total],
            "entries": [
                {"item": e.item, "advantage": e.advantage, "pushed_at": e.pushed_at, "order": e.order}
                for e in self.entries
            ],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from state_dict(); a smaller configured capacity evicts down to it."""
        if state.get("version") != 1:
            raise ValueError(f"replay buffer state has version {state.get('version')!r}; this code reads version 1")
        self.pushes = int(state["pushes"])
        self._next_order = int(state["next_order"])
        self.admitted_total, self.evicted_total, self.expired_total = (int(v) for v in state["totals"])
        self.entries = [
            _Entry(e["item"], float(e["advantage"]), int(e["pushed_at"]), int(e["order"])) for e in state["entries"]
        ]
        self._evict_to_capacity()
