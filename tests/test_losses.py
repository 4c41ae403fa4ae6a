"""Policy loss on hand-computed numbers: PPO clip-higher, dual clip, TIS cap, KL estimators, aggregation modes."""

import math

import pytest
import torch

from droidrl.algorithms.config import LossConfig
from droidrl.algorithms.losses import agg_loss, kl_penalty, policy_loss

PLAIN = LossConfig(clip_low=0.2, clip_high=0.28, dual_clip=False, tis=False)


def one_token(ratio: float, advantage: float, config: LossConfig = PLAIN):
    """Loss and d loss / d logp for a single token with old logp 0 and the given ratio."""
    logp = torch.tensor([[math.log(ratio)]], dtype=torch.float64, requires_grad=True)
    loss, metrics = policy_loss(
        logp, torch.zeros(1, 1, dtype=torch.float64), torch.tensor([advantage]), torch.ones(1, 1), config
    )
    loss.backward()
    return loss.item(), logp.grad.item(), metrics


def test_ppo_clip_higher_positive_advantage():
    # A = +1: inside [0.8, 1.28] the loss is -ratio with gradient -ratio; above 1.28 it is flat at -1.28.
    loss, grad, m = one_token(1.279, 1.0)
    assert loss == pytest.approx(-1.279) and grad == pytest.approx(-1.279) and m["clip_frac"] == 0.0
    loss, grad, m = one_token(1.281, 1.0)
    assert loss == pytest.approx(-1.28) and grad == 0.0
    assert m["clip_frac"] == 1.0 and m["clip_frac_high"] == 1.0 and m["clip_frac_low"] == 0.0
    # Below the range a positive advantage is not clipped (min of the two objectives keeps the ratio).
    loss, grad, _ = one_token(0.5, 1.0)
    assert loss == pytest.approx(-0.5) and grad == pytest.approx(-0.5)


def test_ppo_clip_low_negative_advantage():
    # A = -1: loss = max(ratio, clip(ratio)); below 0.8 it is flat at 0.8.
    loss, grad, m = one_token(0.801, -1.0)
    assert loss == pytest.approx(0.801) and grad == pytest.approx(0.801)
    loss, grad, m = one_token(0.5, -1.0)
    assert loss == pytest.approx(0.8) and grad == 0.0 and m["clip_frac_low"] == 1.0
    # Above the range a negative advantage keeps the (larger) unclipped ratio.
    loss, grad, _ = one_token(2.0, -1.0)
    assert loss == pytest.approx(2.0) and grad == pytest.approx(2.0)


def test_dual_clip_caps_negative_advantage_loss():
    dual = LossConfig(clip_low=0.2, clip_high=0.28, dual_clip=True, clip_c=3.0, tis=False)
    loss, grad, m = one_token(5.0, -1.0, dual)  # -A * ratio = 5 > -A * c = 3
    assert loss == pytest.approx(3.0) and grad == 0.0 and m["dual_clip_frac"] == 1.0
    loss, grad, m = one_token(2.0, -1.0, dual)  # 2 < 3: untouched
    assert loss == pytest.approx(2.0) and grad == pytest.approx(2.0) and m["dual_clip_frac"] == 0.0
    loss, _, _ = one_token(5.0, -1.0, PLAIN)  # without dual clip the loss is unbounded
    assert loss == pytest.approx(5.0)
    loss, _, m = one_token(5.0, 1.0, dual)  # positive advantages are never dual-clipped
    assert loss == pytest.approx(-1.28) and m["dual_clip_frac"] == 0.0


def test_tis_weight_is_truncated_at_cap():
    config = LossConfig(dual_clip=False, tis=True, tis_cap=2.0)
    logp = torch.zeros(1, 2, dtype=torch.float64, requires_grad=True)
    old = torch.zeros(1, 2, dtype=torch.float64)
    rollout = torch.tensor([[-math.log(3.0), math.log(2.0)]], dtype=torch.float64)  # weights 3 -> 2, and 0.5
    loss, m = policy_loss(logp, old, torch.tensor([1.0]), torch.ones(1, 2), config, rollout_logprobs=rollout)
    # ratio 1, A 1: per-token loss -w = [-2, -0.5]; token-mean -1.25.
    assert loss.item() == pytest.approx(-1.25)
    assert m["is_weight_mean"] == pytest.approx(1.25) and m["is_weight_min"] == pytest.approx(0.5)
    assert m["is_weight_max"] == pytest.approx(3.0) and m["is_capped_frac"] == 0.5
    loss.backward()
    assert logp.grad[0].tolist() == pytest.approx([-1.0, -0.25])  # weight is a constant: d/dlogp = -w / 2 tokens
    with pytest.raises(ValueError, match="rollout_logprobs"):
        policy_loss(logp, old, torch.tensor([1.0]), torch.ones(1, 2), config)


def test_kl_estimators():
    logp = torch.tensor([math.log(0.5)])
    ref = torch.tensor([math.log(0.25)])
    assert kl_penalty(logp, ref, "k1").item() == pytest.approx(math.log(2))  # 0.693147
    assert kl_penalty(logp, ref, "k2").item() == pytest.approx(0.5 * math.log(2) ** 2)  # 0.240227
    assert kl_penalty(logp, ref, "k3").item() == pytest.approx(0.5 + math.log(2) - 1)  # 0.193147
    assert kl_penalty(ref, logp, "k3").item() == pytest.approx(2 - math.log(2) - 1)  # 0.306853, reversed
    assert kl_penalty(torch.tensor([0.0]), torch.tensor([30.0]), "k3").item() == 10.0  # clamped as verl


def test_kl_term_in_loss():
    config = LossConfig(dual_clip=False, tis=False, kl_coef=0.1, kl_estimator="k3")
    logp = torch.full((1, 1), math.log(0.5))
    ref = torch.full((1, 1), math.log(0.25))
    loss, m = policy_loss(logp, logp.clone(), torch.tensor([1.0]), torch.ones(1, 1), config, ref_logprobs=ref)
    assert m["kl"] == pytest.approx(0.193147, abs=1e-5)
    assert loss.item() == pytest.approx(-1.0 + 0.1 * 0.193147, abs=1e-5)
    with pytest.raises(ValueError, match="ref_logprobs"):
        policy_loss(logp, logp.clone(), torch.tensor([1.0]), torch.ones(1, 1), config)
    # kl_coef 0 with a reference: measured, not added.
    loss, m = policy_loss(logp, logp.clone(), torch.tensor([1.0]), torch.ones(1, 1), PLAIN, ref_logprobs=ref)
    assert loss.item() == pytest.approx(-1.0) and m["kl"] == pytest.approx(0.193147, abs=1e-5)


VALUES = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
MASK = torch.tensor([[1, 1, 0], [1, 0, 0]])


def test_aggregation_modes_on_2x3():
    assert agg_loss(VALUES, MASK, "token-mean").item() == pytest.approx(7 / 3)  # (1 + 2 + 4) / 3
    assert agg_loss(VALUES, MASK, "seq-mean-token-mean").item() == pytest.approx(2.75)  # (1.5 + 4) / 2
    assert agg_loss(VALUES, MASK, "seq-mean-token-sum-norm").item() == pytest.approx(7 / 6)  # (3 + 4) / 2 / 3
    assert agg_loss(VALUES, MASK, "seq-mean-token-sum-norm", scale_factor=2).item() == pytest.approx(1.75)
    with pytest.raises(ValueError, match="token-mean"):
        agg_loss(VALUES, MASK, "token-sum")


def test_fully_masked_row_does_not_count():
    mask = torch.tensor([[1, 1, 0], [0, 0, 0]])
    assert agg_loss(VALUES, mask, "seq-mean-token-mean").item() == pytest.approx(1.5)
    assert agg_loss(VALUES, mask, "token-mean").item() == pytest.approx(1.5)


def test_micro_batches_sum_to_the_batch_loss_with_global_counts():
    for mode in LossConfig.AGG_MODES:
        full = agg_loss(VALUES, MASK, mode).item()
        parts = sum(agg_loss(VALUES[i : i + 1], MASK[i : i + 1], mode, num_tokens=3, num_seqs=2).item() for i in (0, 1))
        assert parts == pytest.approx(full), mode


def test_policy_loss_uses_agg_mode():
    # ratio 1 everywhere, advantages per row [1, 2] -> per-token loss [[-1,-1,-1],[-2,-2,-2]] under MASK.
    logp = torch.zeros(2, 3)
    adv = torch.tensor([1.0, 2.0])
    expected = {"token-mean": -4 / 3, "seq-mean-token-mean": -1.5, "seq-mean-token-sum-norm": -4 / 6}
    for mode, value in expected.items():
        config = LossConfig(tis=False, agg_mode=mode)
        loss, m = policy_loss(logp, logp, adv, MASK, config)
        assert loss.item() == pytest.approx(value), mode
        assert m["ratio_mean"] == 1.0 and m["clip_frac"] == 0.0
