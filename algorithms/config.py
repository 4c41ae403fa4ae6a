"""The `algorithm` section of the training config: advantages, policy loss and AdaGRPO parts, each switchable.

Every part has an on/off flag so an ablation is one dotted override away, e.g.
`algorithm.spa.enabled=false`, `algorithm.replay.enabled=false`, `algorithm.advantage.norm_by_std=false`
(Dr. GRPO), `algorithm.loss.tis=false`. Defaults follow MobileRL's released training config
(`glm_mobilerl.yaml`) except where a comment says otherwise. Errors name the full dotted key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from droidrl.config.typed import ConfigError, fail, from_dict  # noqa: F401  (re-exported)


def _check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        fail(key, f"must be one of {', '.join(choices)}; got {value!r}")


def _check_range(key: str, value: float, low: float | None = None, high: float | None = None) -> None:
    if low is not None and value < low:
        fail(key, f"must be >= {low}; got {value!r}")
    if high is not None and value > high:
        fail(key, f"must be <= {high}; got {value!r}")


@dataclass
class AdvantageConfig:
    """Group-relative advantages (GRPO / Dr. GRPO) and AgentRL's per-task re-normalisation."""

    KEY: ClassVar[str] = "algorithm.advantage"

    norm_by_std: bool = True  # False = Dr. GRPO: (r - mean) only
    eps: float = 1e-6  # verl and MobileRL: (r - mean) / (std + 1e-6)
    unbiased_std: bool = True  # torch.std default (Bessel), as verl's compute_grpo_outcome_advantage
    # "episodes": group statistics over the G episodes (standard GRPO). "steps": over step rows, so a long
    # episode counts once per step, as MobileRL's verl fork does (each turn is a row of the uid group).
    stats_over: str = "episodes"
    # AgentRL task_adv_normalize: re-standardise per task id (MobileRL: on, per data source). Applies only when
    # the caller passes task ids; it divides by a std again, so turn it off for a pure Dr. GRPO run.
    task_normalize: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        _check_range(f"{self.KEY}.eps", self.eps, low=0.0)
        _check_choice(f"{self.KEY}.stats_over", self.stats_over, ("episodes", "steps"))


@dataclass
class LossConfig:
    """Clipped, importance-corrected policy loss with optional KL to a reference policy."""

    KEY: ClassVar[str] = "algorithm.loss"
    AGG_MODES: ClassVar[tuple[str, ...]] = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm")
    KL_ESTIMATORS: ClassVar[tuple[str, ...]] = ("k1", "k2", "k3")

    # Ratio clamp [1 - clip_low, 1 + clip_high]. DAPO clip-higher 0.2 / 0.28 by default; MobileRL used 0.5 / 1.2.
    clip_low: float = 0.2
    clip_high: float = 0.28
    dual_clip: bool = True  # for negative advantages the loss is capped at -A * clip_c
    clip_c: float = 3.0
    # Truncated importance weight min(exp(old_logp - rollout_logp), tis_cap) between the trainer's old
    # logprobs and the rollout engine's (engine mismatch and staleness); MobileRL caps at 2.
    tis: bool = True
    tis_cap: float = 2.0
    kl_coef: float = 0.0  # 0 = no KL term (DAPO); MobileRL used 0.001 with k3 (verl "low_var_kl")
    kl_estimator: str = "k3"
    agg_mode: str = "token-mean"
    # seq-mean-token-sum-norm divides each sequence's token sum by this constant; None = the padded length.
    loss_scale_factor: float | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        _check_range(f"{self.KEY}.clip_low", self.clip_low, low=0.0, high=1.0)
        _check_range(f"{self.KEY}.clip_high", self.clip_high, low=0.0)
        if self.dual_clip and self.clip_c <= 1.0:
            fail(f"{self.KEY}.clip_c", f"must be > 1 for dual clip (it bounds -A * ratio); got {self.clip_c!r}")
        if self.tis and self.tis_cap <= 0:
            fail(f"{self.KEY}.tis_cap", f"must be > 0; got {self.tis_cap!r}")
        _check_range(f"{self.KEY}.kl_coef", self.kl_coef, low=0.0)
        _check_choice(f"{self.KEY}.kl_estimator", self.kl_estimator, self.KL_ESTIMATORS)
        _check_choice(f"{self.KEY}.agg_mode", self.agg_mode, self.AGG_MODES)
        if self.loss_scale_factor is not None and self.loss_scale_factor <= 0:
            fail(f"{self.KEY}.loss_scale_factor", f"must be > 0 or null; got {self.loss_scale_factor!r}")


@dataclass
class SPAConfig:
    """Shortest-path reward adjustment: r * (1 - alpha * (T - T_min) / T) for successes."""

    KEY: ClassVar[str] = "algorithm.spa"

    enabled: bool = True
    alpha: float = 0.5  # MobileRL's code: penalty (T - T_min) / (2 T)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        _check_range(f"{self.KEY}.alpha", self.alpha, low=0.0, high=1.0)


@dataclass
class ReplayConfig:
    """AdaPR: a buffer of high-advantage successful trajectories replayed with their stored advantages."""

    KEY: ClassVar[str] = "algorithm.replay"

    enabled: bool = True
    capacity: int = 256  # trajectories
    top_ratio: float = 0.25  # admit up to ceil(top_ratio * batch trajectories) per push
    balance_alpha: float = 0.5  # eviction score = a * norm_advantage + (1 - a) * norm_recency; lowest goes
    max_age: int = 4  # an entry pushed max_age or more pushes ago is purged
    replay_ratio: float = 1.0  # replay up to ceil(replay_ratio * batch trajectories) per step

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        _check_range(f"{self.KEY}.capacity", self.capacity, low=1)
        _check_range(f"{self.KEY}.top_ratio", self.top_ratio, low=0.0, high=1.0)
        _check_range(f"{self.KEY}.balance_alpha", self.balance_alpha, low=0.0, high=1.0)
        _check_range(f"{self.KEY}.max_age", self.max_age, low=1)
        _check_range(f"{self.KEY}.replay_ratio", self.replay_ratio, low=0.0)


@dataclass
class DynamicSamplingConfig:
    """DAPO-style handling of groups without signal, and a cap on negatives per positive."""

    KEY: ClassVar[str] = "algorithm.dynamic_sampling"

    enabled: bool = True
    # "mute": keep all-equal groups but give them loss mask 0 (MobileRL); "refill": drop them and tell the
    # caller how many groups to collect again (DAPO).
    mode: str = "mute"
    max_negatives_per_positive: float | None = 2.0  # MobileRL mutes failures beyond 2 x successes; None = no cap
    refill_limit: int = 2  # refill mode: at most refill_limit x batch_size groups discarded per step

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        _check_choice(f"{self.KEY}.mode", self.mode, ("mute", "refill"))
        _check_range(f"{self.KEY}.refill_limit", self.refill_limit, low=0)
        if self.max_negatives_per_positive is not None:
            _check_range(f"{self.KEY}.max_negatives_per_positive", self.max_negatives_per_positive, low=0.0)


@dataclass
class AlgorithmConfig:
    """The whole `algorithm` section."""

    KEY: ClassVar[str] = "algorithm"

    advantage: AdvantageConfig = field(default_factory=AdvantageConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    spa: SPAConfig = field(default_factory=SPAConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    dynamic_sampling: DynamicSamplingConfig = field(default_factory=DynamicSamplingConfig)

    @classmethod
    def grpo(cls) -> AlgorithmConfig:
        """Plain GRPO: every AdaGRPO part and AgentRL's per-task normalisation off (the ablation baseline)."""
        return cls(
            advantage=AdvantageConfig(task_normalize=False),
            spa=SPAConfig(enabled=False),
            replay=ReplayConfig(enabled=False),
            dynamic_sampling=DynamicSamplingConfig(enabled=False),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, key: str = "algorithm") -> AlgorithmConfig:
        """Build from plain data (YAML), rejecting unknown keys and wrong types with the dotted key."""
        return from_dict(cls, data or {}, key)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
