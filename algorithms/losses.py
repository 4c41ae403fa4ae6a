"""The clipped, importance-corrected policy-gradient loss on masked [batch, tokens] tensors.

    ratio  = exp(logp - old_logp)                      (log-ratio clamped to +-20, as verl)
    pg     = max(-A * ratio, -A * clip(ratio, 1 - clip_low, 1 + clip_high))      PPO clip, clip-higher
    pg     = min(pg, -A * clip_c)  where A < 0                                    dual clip
    pg     = pg * min(exp(old_logp - rollout_logp), tis_cap)  (weight detached)   TIS
    loss   = agg(pg) + kl_coef * agg(kl(logp, ref_logp))                          optional KL (k1/k2/k3)

`old_logp` are the trainer's logprobs of the sampled tokens under the policy that generated them (recomputed
before the update), `rollout_logp` are the engine's (vLLM) logprobs of the same tokens. Aggregation follows
verl's `agg_loss`; pass `num_tokens` / `num_seqs` of the whole mini-batch when the loss of a micro-batch is
accumulated, so that the summed micro-batch losses equal the mini-batch loss.
"""

from __future__ import annotations

import torch

from droidrl.algorithms.config import LossConfig


def agg_loss(
    values: torch.Tensor,
    mask: torch.Tensor,
    mode: str,
    *,
    num_tokens: float | None = None,
    num_seqs: float | None = None,
    scale_factor: float | None = None,
) -> torch.Tensor:
    """Aggregate per-token values [B, T] under mask [B, T] into a scalar.

    token-mean: sum over valid tokens / num_tokens (default: valid tokens in `mask`).
    seq-mean-token-mean: each sequence's mean over its valid tokens, summed / num_seqs (default: sequences
      with at least one valid token; fully masked rows contribute nothing).
    seq-mean-token-sum-norm: each sequence's token sum, summed / num_seqs / scale_factor (default: T), Dr. GRPO.
    """
    mask = mask.to(values.dtype)
    if values.shape != mask.shape:
        raise ValueError(f"values {tuple(values.shape)} and mask {tuple(mask.shape)} must have the same shape")
    token_counts = mask.sum(dim=-1)
    if num_seqs is None:
        num_seqs = float((token_counts > 0).sum().item())
    if mode == "token-mean":
        denominator = float(mask.sum().item()) if num_tokens is None else num_tokens
        return (values * mask).sum() / max(denominator, 1.0)
    if mode == "seq-mean-token-mean":
        per_seq = (values * mask).sum(dim=-1) / token_counts.clamp(min=1.0)
        return per_seq.sum() / max(num_seqs, 1.0)
    if mode == "seq-mean-token-sum-norm":
        scale = float(values.shape[-1]) if scale_factor is None else scale_factor
        return (values * mask).sum() / max(num_seqs, 1.0) / scale
    raise ValueError(f"unknown loss aggregation mode {mode!r}; use one of {', '.join(LossConfig.AGG_MODES)}")


def kl_penalty(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str) -> torch.Tensor:
    """Per-token KL(pi || ref) estimate from sampled-token logprobs (Schulman's k1, k2, k3).

    k1 = logp - ref; k2 = 0.5 * (logp - ref)^2; k3 = exp(ref - logp) - (ref - logp) - 1, clamped to
    [-10, 10] as verl's "low_var_kl" (non-negative, low variance).
    """
    diff = logprobs - ref_logprobs
    if estimator == "k1":
        return diff
    if estimator == "k2":
        return 0.5 * diff.square()
    if estimator == "k3":
        log_ratio = -diff
        return (log_ratio.exp() - log_ratio - 1).clamp(-10.0, 10.0)
    raise ValueError(f"unknown KL estimator {estimator!r}; use one of {', '.join(LossConfig.KL_ESTIMATORS)}")


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> float:
    count = mask.sum()
    return float(((values * mask).sum() / count).item()) if count > 0 else 0.0


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    config: LossConfig | None = None,
    *,
    rollout_logprobs: torch.Tensor | None = None,
    ref_logprobs: torch.Tensor | None = None,
    num_tokens: float | None = None,
    num_seqs: float | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The policy loss (scalar, differentiable through `logprobs`) and a dict of metrics.

    Shapes: logprobs, old_logprobs, mask, rollout_logprobs, ref_logprobs [B, T]; advantages [B, T] or [B]
    (one per step-wise sample, broadcast over its tokens). `rollout_logprobs` is required when config.tis
    is on; `ref_logprobs` when config.kl_coef > 0 (given with kl_coef 0, the KL is only measured).
    Metrics are means over valid tokens: clip_frac (either side), clip_frac_low (A < 0, ratio below the
    range), clip_frac_high (A > 0, ratio above it), dual_clip_frac, ratio_mean/max, is_weight_mean/min/max,
    is_capped_frac, kl, pg_loss.
    """
    config = config or LossConfig()
    mask = mask.to(logprobs.dtype)
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(-1).expand_as(logprobs)
    for name, tensor in (("old_logprobs", old_logprobs), ("advantages", advantages), ("mask", mask)):
        if tensor.shape != logprobs.shape:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)}, logprobs {tuple(logprobs.shape)}; align them")
    advantages = advantages.to(logprobs.dtype)
    valid = mask > 0

    ratio = (logprobs - old_logprobs).clamp(-20.0, 20.0).exp()
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - config.clip_low, 1.0 + config.clip_high)
    pg = torch.maximum(unclipped, clipped)
    metrics = {
        "clip_frac": _masked_mean((clipped > unclipped).to(mask.dtype), mask),
        "clip_frac_low": _masked_mean(((ratio < 1.0 - config.clip_low) & (advantages < 0)).to(mask.dtype), mask),
        "clip_frac_high": _masked_mean(((ratio > 1.0 + config.clip_high) & (advantages > 0)).to(mask.dtype), mask),
        "ratio_mean": _masked_mean(ratio.detach(), mask),
        "ratio_max": float(ratio.detach()[valid].max().item()) if valid.any() else 0.0,
    }
    if config.dual_clip:
        bound = -advantages * config.clip_c
        dual = (advantages < 0) & (pg > bound)
        pg = torch.where(dual, bound, pg)
        metrics["dual_clip_frac"] = _masked_mean(dual.to(mask.dtype), mask)

    if config.tis:
        if rollout_logprobs is None:
            raise ValueError("algorithm.loss.tis is on: pass rollout_logprobs (the engine's logprobs), or set tis off")
        if rollout_logprobs.shape != logprobs.shape:
            raise ValueError(f"rollout_logprobs has shape {tuple(rollout_logprobs.shape)}; expected {logprobs.shape}")
        raw = (old_logprobs - rollout_logprobs).clamp(-20.0, 20.0).exp().detach()
        weight = raw.clamp(max=config.tis_cap)
        pg = pg * weight
        metrics["is_weight_mean"] = _masked_mean(weight, mask)
        metrics["is_weight_min"] = float(weight[valid].min().item()) if valid.any() else 0.0
        metrics["is_weight_max"] = float(raw[valid].max().item()) if valid.any() else 0.0  # before the cap
        metrics["is_capped_frac"] = _masked_mean((raw > config.tis_cap).to(mask.dtype), mask)

    scale = config.loss_scale_factor
    loss = agg_loss(pg, mask, config.agg_mode, num_tokens=num_tokens, num_seqs=num_seqs, scale_factor=scale)
    metrics["pg_loss"] = float(loss.detach().item())

    if config.kl_coef > 0 and ref_logprobs is None:
        raise ValueError("algorithm.loss.kl_coef > 0 needs ref_logprobs (the reference policy's logprobs)")
    if ref_logprobs is not None:
        kl = kl_penalty(logprobs, ref_logprobs, config.kl_estimator)
        kl_loss = agg_loss(kl, mask, config.agg_mode, num_tokens=num_tokens, num_seqs=num_seqs, scale_factor=scale)
        metrics["kl"] = float(kl_loss.detach().item())
        if config.kl_coef > 0:
            loss = loss + config.kl_coef * kl_loss
    metrics["loss"] = float(loss.detach().item())
    return loss, metrics
