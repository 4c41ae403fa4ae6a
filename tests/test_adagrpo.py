"""AdaGRPO parts on hand-computed numbers: SPA, group filtering, the AdaPR buffer; the config tree's errors."""

import pickle
import random
from dataclasses import dataclass

import pytest

from droidrl.algorithms.adagrpo import PositiveReplay, filter_groups, prepare_batch, spa_rewards
from droidrl.algorithms.config import (
    AdvantageConfig,
    AlgorithmConfig,
    ConfigError,
    DynamicSamplingConfig,
    ReplayConfig,
)


@dataclass
class Traj:
    """The minimal ReplayItem: reward, length, advantage (name only for the assertions)."""

    name: str
    reward: float
    advantage: float
    length: int = 3


def names(items):
    return [getattr(x, "item", x).name for x in items]


# --- SPA ---


def test_spa_group_lengths_3_5_4():
    # T_min = 3 (shortest success). 5 steps: 1 * (1 - 0.5 * 2 / 5) = 0.8; the failure stays 0.
    assert spa_rewards([1, 1, 0], [3, 5, 4], ["g"] * 3) == pytest.approx([1.0, 0.8, 0.0])
    assert spa_rewards([1, 1, 0], [3, 5, 4], ["g"] * 3, alpha=1.0) == pytest.approx([1.0, 0.6, 0.0])
    # Same as MobileRL's code form with alpha 0.5: raw - max(T - T_min, 0) / (2 T), T_min = 3 here.
    lengths, raw = [2, 7, 3, 9], [0, 1, 1, 1]
    code_form = [r - (max(n - 3, 0) / (2 * n) if r else 0) for r, n in zip(raw, lengths, strict=True)]
    assert spa_rewards(raw, lengths, ["g"] * 4) == pytest.approx(code_form)


def test_spa_groups_are_independent_and_failures_untouched():
    rewards = spa_rewards([1, 1, 0, 0, 1, 1], [2, 4, 9, 1, 10, 5], ["a", "a", "a", "b", "b", "b"])
    # a: T_min 2 -> [1, 1 - 0.5 * 2/4 = 0.75, 0]; b: T_min 5 -> [0, 1 - 0.5 * 5/10 = 0.75, 1].
    assert rewards == pytest.approx([1.0, 0.75, 0.0, 0.0, 0.75, 1.0])
    assert spa_rewards([0, 0], [3, 7], ["g", "g"]) == [0.0, 0.0]


# --- Dynamic sampling ---

REWARDS = [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1]
GROUPS = ["a"] * 3 + ["b"] * 7 + ["c"] * 2


def test_filter_groups_mutes_silent_groups_and_caps_negatives():
    kept = filter_groups(REWARDS, GROUPS, DynamicSamplingConfig(mode="mute"), rng=random.Random(0))
    assert kept.silent_groups == ["a", "c"] and kept.refill == 0
    # group b: 1 success, 6 failures, cap 2 per positive -> 2 failures kept (seeded choice), 4 muted.
    assert kept.muted_negatives == 4
    assert kept.mask == [False] * 3 + [True, False, False, False, True, False, True] + [False, False]
    again = filter_groups(REWARDS, GROUPS, DynamicSamplingConfig(mode="mute"), rng=random.Random(0))
    assert again.mask == kept.mask


def test_filter_groups_refill_and_off():
    kept = filter_groups(REWARDS, GROUPS, DynamicSamplingConfig(mode="refill"), rng=random.Random(0))
    assert kept.refill == 2
    uncapped = filter_groups(REWARDS, GROUPS, DynamicSamplingConfig(max_negatives_per_positive=None))
    assert uncapped.mask == [False] * 3 + [True] * 7 + [False, False] and uncapped.muted_negatives == 0
    off = filter_groups(REWARDS, GROUPS, DynamicSamplingConfig(enabled=False))
    assert off.mask == [True] * 12 and off.refill == 0


def test_prepare_batch_spa_then_grpo():
    config = AlgorithmConfig(advantage=AdvantageConfig(task_normalize=False))
    out = prepare_batch([1, 1, 0], [3, 5, 4], ["g"] * 3, config)
    # shaped [1, 0.8, 0]: mean 0.6, unbiased std sqrt(0.28) = 0.529150.
    assert out.rewards == pytest.approx([1.0, 0.8, 0.0])
    assert out.advantages == pytest.approx([0.755929, 0.377964, -1.133893], abs=1e-5)
    assert out.mask == [True, True, True] and out.refill == 0
    # Plain GRPO (SPA off): [1, 1, 0] -> mean 2/3, std sqrt(1/3) -> [0.57735, 0.57735, -1.1547].
    plain = prepare_batch([1, 1, 0], [3, 5, 4], ["g"] * 3, AlgorithmConfig.grpo())
    assert plain.advantages == pytest.approx([0.57735, 0.57735, -1.154701], abs=1e-5)


def test_prepare_batch_all_success_group_keeps_spa_signal():
    out = prepare_batch([1, 1], [2, 4], ["g", "g"], AlgorithmConfig(advantage=AdvantageConfig(task_normalize=False)))
    # shaped [1, 0.75]: not all equal, so not muted; +-0.125 / std(0.17678) = +-0.70711.
    assert out.mask == [True, True]
    assert out.advantages == pytest.approx([0.707107, -0.707107], abs=1e-5)


# --- AdaPR ---


def small_buffer(**overrides) -> PositiveReplay:
    settings = {"capacity": 3, "top_ratio": 0.5, "max_age": 2, "balance_alpha": 0.5, "replay_ratio": 0.5}
    settings.update(overrides)
    return PositiveReplay(ReplayConfig(**settings))


def test_replay_admission_eviction_expiry_and_mixing():
    buf = small_buffer()
    batch1 = [Traj("A", 1, 1.5), Traj("B", 1, 0.5), Traj("C", 0, -1.0), Traj("D", 1, 0.0)]
    # Quota ceil(0.5 * 4) = 2; candidates are successes with advantage > 0 (D has 0): A, B.
    assert buf.step(batch1) == [] and [e.item.name for e in buf.entries] == ["A", "B"]

    batch2 = [Traj("E", 1, 2.0), Traj("F", 1, 0.2), Traj("G", 0, -2.0), Traj("H", 1, 1.0)]
    replayed = buf.step(batch2)
    # Mixed in before the push: ceil(0.5 * 4) = 2 entries, top stored advantage first, age 0.
    assert names(replayed) == ["A", "B"] and [r.advantage for r in replayed] == [1.5, 0.5]
    assert [r.age for r in replayed] == [0, 0]
    # E and H admitted -> 4 > capacity 3. Scores 0.5 * norm_adv + 0.5 * norm_recency:
    # A 0.5*(1/1.5)+0 = 0.333, B 0, E 0.5+0.5 = 1, H 0.5*(0.5/1.5)+0.5 = 0.667 -> B is evicted.
    assert sorted(e.item.name for e in buf.entries) == ["A", "E", "H"] and buf.evicted_total == 1

    # Third push: A was pushed 2 pushes ago (max_age 2) -> expired before I is admitted.
    assert names(buf.push([Traj("I", 1, 3.0), Traj("J", 0, -3.0)])) == ["I"]
    assert sorted(e.item.name for e in buf.entries) == ["E", "H", "I"] and buf.expired_total == 1
    assert names(buf.sample(4)) == ["I", "E"]  # ceil(0.5 * 4) = 2, by stored advantage
    assert names(buf.sample(100)) == ["I", "E", "H"]  # never more than the buffer holds
    stats = buf.stats()
    assert stats["size"] == 3 and stats["steps"] == 9 and stats["advantage_mean"] == pytest.approx(2.0)


def test_replay_eviction_balances_advantage_and_recency():
    def run(alpha: float) -> list[str]:
        buf = small_buffer(capacity=2, top_ratio=1.0, max_age=10, balance_alpha=alpha)
        buf.push([Traj("X", 1, 2.0)])
        buf.push([Traj("Y", 1, 1.0), Traj("Z", 1, 1.5)])
        return sorted(e.item.name for e in buf.entries)

    # norm_adv X 1, Y 0, Z 0.5; norm_recency X 0, Y 1, Z 1.
    assert run(1.0) == ["X", "Z"]  # advantage only: Y (lowest advantage) goes
    assert run(0.0) == ["Y", "Z"]  # recency only: X (oldest) goes
    assert run(0.5) == ["Y", "Z"]  # X and Y tie at 0.5: the older insertion (X) goes


def test_replay_state_dict_round_trip():
    buf = small_buffer()
    buf.step([Traj("A", 1, 1.5), Traj("B", 1, 0.5), Traj("C", 0, -1.0), Traj("D", 1, 0.0)])
    buf.step([Traj("E", 1, 2.0), Traj("F", 1, 0.2), Traj("G", 0, -2.0), Traj("H", 1, 1.0)])
    state = pickle.loads(pickle.dumps(buf.state_dict()))  # as a checkpoint would store it
    restored = small_buffer()
    restored.load_state_dict(state)
    assert restored.state_dict() == buf.state_dict()
    batch = [Traj("I", 1, 3.0), Traj("J", 0, -3.0), Traj("K", 0, -1.0), Traj("L", 1, 0.1)]
    assert names(restored.step(batch)) == names(buf.step(batch)) == ["E", "A"]
    assert restored.state_dict() == buf.state_dict()
    with pytest.raises(ValueError, match="version"):
        restored.load_state_dict({"version": 99})


def test_replay_off_keeps_nothing():
    buf = small_buffer(enabled=False)
    assert buf.step([Traj("A", 1, 1.5)]) == [] and buf.step([Traj("B", 1, 1.5)]) == [] and len(buf) == 0


# --- config ---


def test_config_switches_and_errors_name_the_key():
    config = AlgorithmConfig.from_dict({"spa": {"enabled": False}, "loss": {"clip_high": 1, "agg_mode": "token-mean"}})
    assert config.spa.enabled is False and config.loss.clip_high == 1.0 and isinstance(config.loss.clip_high, float)
    assert AlgorithmConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match=r"^algorithm\.loss\.clip_hgh: unknown key"):
        AlgorithmConfig.from_dict({"loss": {"clip_hgh": 0.3}})
    with pytest.raises(ConfigError, match=r"^algorithm\.replay\.capacity: expected int, got str"):
        AlgorithmConfig.from_dict({"replay": {"capacity": "256"}})
    with pytest.raises(ConfigError, match=r"^algorithm\.spa\.enabled: expected bool"):
        AlgorithmConfig.from_dict({"spa": {"enabled": 1}})
    with pytest.raises(ConfigError, match=r"^algorithm\.loss\.agg_mode: must be one of"):
        AlgorithmConfig.from_dict({"loss": {"agg_mode": "token-sum"}})
    with pytest.raises(ConfigError, match=r"^algorithm\.spa\.alpha: must be <= 1"):
        AlgorithmConfig.from_dict({"spa": {"alpha": 1.5}})
    with pytest.raises(ConfigError, match=r"^algorithm\.replay: expected a mapping"):
        AlgorithmConfig.from_dict({"replay": False})
