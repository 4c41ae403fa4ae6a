"""Every metric key a training run logs (metrics.jsonl, wandb), with its meaning: the table logging is checked against.

A key with `{...}` stands for a family (`rollout/success_rate/{difficulty}`: one per difficulty).
tests/test_metric_keys.py computes the keys the loop logs and compares them with this table, so a new
metric is added here, with a line saying what it is, or the test fails.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

METRICS: dict[str, str] = {
    # the loop
    "version": "policy version after the step",
    "time/collect": "seconds waiting for the step's groups",
    "time/train": "seconds in the learner's optimizer step",
    "time/weight_sync": "seconds publishing the new weights to the engines",
    "batch/refilled_groups": "groups without signal thrown away and collected again (refill mode)",
    "batch/trained_trajectories": "episodes with a nonzero advantage that trained",
    "batch/samples": "step-wise samples (turns) the learner trained on",
    # rollout: the batch's episodes
    "rollout/reward_mean": "mean checker reward",
    "rollout/success_rate": "fraction of episodes with reward > 0",
    "rollout/success_rate/{difficulty}": "success rate of the batch's episodes of one difficulty",
    "rollout/episode_length": "mean turns per episode",
    "rollout/invalid_rate": "invalid actions per turn",
    "rollout/response_tokens": "response tokens sampled in the batch",
    "rollout/staleness_max": "largest policy lag (trainer version - oldest token version)",
    "rollout/staleness_mean": "mean policy lag",
    # algo: AdaGRPO's batch preparation (algorithms.adagrpo.prepare_batch)
    "algo/success_rate": "fraction of rewards > 0",
    "algo/reward_mean": "mean reward before shaping",
    "algo/shaped_reward_mean": "mean reward after SPA shaping",
    "algo/silent_group_frac": "groups whose rewards are all equal",
    "algo/muted_negatives": "negative episodes muted by dynamic sampling",
    "algo/trained_frac": "episodes kept by the group filter",
    # replay: AdaPR (algorithms.adagrpo.PositiveReplay.stats)
    "replay/size": "trajectories in the buffer",
    "replay/steps": "turns in the buffer",
    "replay/advantage_mean": "mean advantage of the buffer",
    "replay/age_mean": "mean pushes since a trajectory entered",
    "replay/admitted_total": "trajectories ever admitted",
    "replay/evicted_total": "trajectories evicted for room",
    "replay/expired_total": "trajectories expired by age",
    "replay/mixed_trajectories": "replayed trajectories mixed into this step",
    # is: trainer vs engine logprobs (the importance weights' inputs)
    "is/weight_mean": "mean exp(trainer old logprob - engine logprob)",
    "is/weight_max": "largest such weight",
    "is/weight_min": "smallest such weight",
    "is/abs_logprob_diff_max": "largest |trainer - engine| logprob",
    # train: the learner's step (trainer.learner.Learner.train_step; algorithms.losses.policy_loss)
    "train/loss": "the step's loss",
    "train/pg_loss": "policy-gradient part of the loss",
    "train/kl": "KL penalty part of the loss (with a reference model)",
    "train/clip_frac": "tokens whose ratio was clipped",
    "train/clip_frac_low": "tokens clipped below (negative advantage)",
    "train/clip_frac_high": "tokens clipped above (positive advantage)",
    "train/dual_clip_frac": "tokens under the dual clip",
    "train/ratio_mean": "mean importance ratio new/old",
    "train/ratio_max": "largest importance ratio",
    "train/is_weight_mean": "mean truncated importance weight (TIS)",
    "train/is_weight_min": "smallest TIS weight",
    "train/is_weight_max": "largest TIS weight before the cap",
    "train/is_capped_frac": "tokens whose TIS weight hit the cap",
    "train/grad_norm": "global gradient norm before clipping",
    "train/lr": "learning rate this step applied",
    "train/samples": "samples in the step",
    "train/tokens": "response tokens in the step",
    "train/micro_batches": "micro-batches in the step",
    "train/old_rollout_logprob_diff_max": "largest |old - rollout| logprob",
    "train/version": "learner version after the step",
    "train/logprob_s": "seconds recomputing old logprobs",
    "train/step_s": "seconds in the whole learner step",
    # curriculum (curricula.sampler.CurriculumSampler.metrics)
    "curriculum/level": "difficulty level now open",
    "curriculum/trainable_tasks": "tasks with a nonzero sampling weight",
    "curriculum/dropped_tasks": "tasks FCF dropped",
    "curriculum/level_success_rate": "success rate at the current level",
    "curriculum/mean_failures": "mean recorded failures of open tasks",
    # collector (rollout.collector.CollectorStats), run totals
    "collector/groups_admitted": "groups started",
    "collector/groups_finished": "groups delivered",
    "collector/groups_dropped": "groups dropped after failures",
    "collector/groups_discarded": "delivered groups thrown away (refill mode)",
    "collector/episodes": "finished episodes",
    "collector/retried": "episode re-runs after infrastructure failures",
    "collector/turns": "turns played",
    "collector/invalid_actions": "invalid actions",
    "collector/prompt_tokens": "prompt tokens sent",
    "collector/response_tokens": "response tokens sampled",
    "collector/failures/{kind}": "episode failures by kind: device, engine, timeout, error",
    # pool: the phones (rollout.envpool.LocalEnvPool / cluster.env_pool.RayEnvPool stats)
    "pool/devices": "devices in service",
    "pool/free": "devices free now",
    "pool/busy": "devices leased now (Ray pool)",
    "pool/actors": "env actors up (Ray pool)",
    "pool/replaced": "devices given a new phone after a failure",
    "pool/failures": "device failures raised to episodes",
    "pool/restarted_actors": "env actors started anew (Ray pool)",
    "pool/unhealthy": "idle devices a health check found dead (Ray pool)",
    "pool/retired": "devices out for good (Ray pool)",
    "pool/restart_failures": "replacement actors that did not start in time (Ray pool)",
    "pool/collisions": "calls refused because another call held the device; the episode retried (Ray pool)",
    "pool/call_timeouts": "device calls past their timeout: the device replaced, or its wedged actor restarted",
    "pool/replace_failures": "device replacements that failed or timed out; retried, then the slot retired (Ray pool)",
    "pool/lease_timeouts": "leases that found no free device within the lease timeout",
    "pool/wedged_actors": "env actors restarted: they stopped answering or had too many stuck threads (Ray pool)",
    # eval (trainer.evaluation.EvalResult.metrics)
    "eval/success_rate": "evaluation success rate",
    "eval/ci_low": "its 95% Wilson interval, low end",
    "eval/ci_high": "its 95% Wilson interval, high end",
    "eval/episodes": "evaluation episodes",
    "eval/mean_length": "mean turns per evaluation episode",
    "eval/invalid_rate": "invalid actions per evaluation turn",
    "eval/seconds": "seconds the evaluation took",
    "eval/dropped_groups": "evaluation groups dropped after failures",
    "eval/success_rate/{difficulty}": "evaluation success rate of one difficulty",
}

_PATTERNS = [(key, re.compile("^" + re.sub(r"\\\{\w+\\\}", r"[^/]+", re.escape(key)) + "$")) for key in METRICS]


def entry_of(key: str) -> str | None:
    """The table entry that covers `key` (itself, or a `{...}` family), or None."""
    if key in METRICS:
        return key
    return next((entry for entry, pattern in _PATTERNS if pattern.match(key)), None)


def unknown_keys(keys: Iterable[str]) -> list[str]:
    """The keys in `keys` that the table does not list (a logger may warn about them)."""
    return sorted({key for key in keys if entry_of(key) is None})
