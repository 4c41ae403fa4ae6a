"""Group advantages on hand-computed numbers (GRPO, Dr. GRPO, per-task normalisation, step broadcast)."""

import math

import pytest

from droidrl.algorithms.advantages import broadcast_to_steps, compute_advantages, group_advantages, task_normalize
from droidrl.algorithms.config import AdvantageConfig


def test_grpo_unbiased_std_matches_verl():
    # mean 0.5; unbiased std (torch.std, as verl) = sqrt(4 * 0.25 / 3) = 0.57735 -> 0.5 / 0.57735 = 0.8660.
    adv = group_advantages([1, 0, 0, 1], ["g"] * 4)
    assert adv == pytest.approx([0.8660254, -0.8660254, -0.8660254, 0.8660254], abs=1e-5)


def test_grpo_population_std_gives_one():
    # population std = 0.5 -> 0.5 / (0.5 + 1e-6) = 0.999998.
    adv = group_advantages([1, 0, 0, 1], ["g"] * 4, unbiased=False)
    assert adv == pytest.approx([1, -1, -1, 1], abs=1e-5)


def test_dr_grpo_has_no_std():
    assert group_advantages([1, 0, 0, 1], ["g"] * 4, norm_by_std=False) == [0.5, -0.5, -0.5, 0.5]


def test_groups_are_separate_and_all_equal_group_is_zero():
    # group a = [1, 1]: zero; group b = [0, 1]: mean 0.5, unbiased std sqrt(0.5) = 0.70711.
    adv = group_advantages([1, 0, 1, 1], ["a", "b", "a", "b"])
    assert adv == pytest.approx([0.0, -0.7071068, 0.0, 0.7071068], abs=1e-5)


def test_single_episode_group_keeps_its_reward():
    # verl: a group of one has mean 0 and std 1.
    assert group_advantages([1.0, 0.0], ["a", "b"]) == pytest.approx([1.0, 0.0], abs=1e-5)


def test_step_weighted_statistics_mobilerl():
    # rewards [1, 0] with 3 and 1 steps: rows 1,1,1,0 -> mean 0.75, unbiased var (3*0.0625 + 0.5625)/3 = 0.25.
    adv = group_advantages([1, 0], ["g", "g"], steps=[3, 1])
    assert adv == pytest.approx([0.5, -1.5], abs=1e-5)


def test_task_normalize_per_task_and_mask():
    # task x: [1, -1] mean 0, std sqrt(2); task y: [3, 1] mean 2, std sqrt(2).
    adv = task_normalize([1, -1, 3, 1], ["x", "x", "y", "y"])
    assert adv == pytest.approx([0.7071068, -0.7071068, 0.7071068, -0.7071068], abs=1e-5)
    # index 1 muted: task x has one entry left, so it is left alone; index 1 keeps its value.
    adv = task_normalize([1, -1, 3, 1], ["x", "x", "y", "y"], mask=[True, False, True, True])
    assert adv == pytest.approx([1, -1, 0.7071068, -0.7071068], abs=1e-5)


def test_broadcast_to_steps():
    assert broadcast_to_steps([0.5, -1.0], [2, 3]) == [0.5, 0.5, -1.0, -1.0, -1.0]
    with pytest.raises(ValueError, match="one per episode"):
        broadcast_to_steps([0.5], [2, 3])


def test_compute_advantages_config():
    # Two groups of the same task: g1 [1, 0] -> +-0.7071, g2 [1, 1, 0, 0] -> +-0.8660 (unbiased).
    rewards = [1, 0, 1, 1, 0, 0]
    groups = ["g1", "g1", "g2", "g2", "g2", "g2"]
    plain = compute_advantages(rewards, groups, AdvantageConfig(task_normalize=False), task_ids=["t"] * 6)
    assert plain == pytest.approx([0.7071068, -0.7071068, 0.8660254, 0.8660254, -0.8660254, -0.8660254], abs=1e-5)
    # Task normalisation over all six: mean 0, unbiased std sqrt((2*0.5 + 4*0.75)/5) = sqrt(0.8).
    normed = compute_advantages(rewards, groups, AdvantageConfig(task_normalize=True), task_ids=["t"] * 6)
    scale = math.sqrt(0.8)
    assert normed == pytest.approx([a / scale for a in plain], abs=1e-5)
    with pytest.raises(ValueError, match="stats_over"):
        compute_advantages(rewards, groups, AdvantageConfig(stats_over="steps"))


def test_length_mismatch_names_the_argument():
    with pytest.raises(ValueError, match="group_ids has 3 entries but rewards has 4"):
        group_advantages([1, 0, 0, 1], ["g"] * 3)
