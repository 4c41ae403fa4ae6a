"""The learner as a Ray actor group: two gloo ranks on CPU take the same step as one learner on all samples,
and export and checkpoint through every rank."""

from __future__ import annotations

import dataclasses
import logging
import random
from pathlib import Path

import pytest
import ray
import torch
from conftest import hf_model

from droidrl.cluster.learner_group import LearnerGroup, combine_metrics, shard_by_tokens
from droidrl.models.presets import read_safetensors
from droidrl.models.scoring import score
from droidrl.trainer.learner import Learner, LearnerConfig
from droidrl.trainer.samples import StepSample, pack_micro_batches


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def samples(model_dir: Path) -> list[StepSample]:
    """Five samples of uneven lengths (the ranks get different micro-batch counts), scored by the initial model."""
    model = hf_model(model_dir)
    rng = random.Random(1)
    out = []
    for k in range(5):
        prompt = [rng.randrange(10, 500) for _ in range(4 + 3 * k)]
        response = [rng.randrange(10, 500) for _ in range(3 + 2 * k)]
        out.append(StepSample(prompt, response, score(model, prompt, response), advantage=(-1.0) ** k * (1 + k / 4)))
    return out


def _fresh(samples: list[StepSample]) -> list[StepSample]:
    return [dataclasses.replace(s, old_logprobs=None) for s in samples]


def test_shards_balance_tokens() -> None:
    samples = [StepSample([1] * (n - 1), [2], [-1.0], 0.0) for n in (10, 3, 7, 7, 2, 12)]
    shards = shard_by_tokens(samples, 2)
    assert shards == [[3, 4, 5], [0, 1, 2]]  # 21 and 20 tokens
    assert shard_by_tokens(samples, 6) == [[5], [0], [2], [3], [1], [4]]


def test_metrics_combine_as_one_learner() -> None:
    ranks = [
        {"loss": 2.0, "clip_frac": 0.5, "ratio_max": 1.1, "tokens": 3.0, "samples": 1.0, "grad_norm": 7.0},
        {"loss": 4.0, "clip_frac": 0.0, "ratio_max": 1.3, "tokens": 1.0, "samples": 2.0, "grad_norm": 7.0},
    ]
    assert combine_metrics(ranks) == {
        "loss": 3.0,
        "clip_frac": 0.375,
        "ratio_max": 1.3,
        "tokens": 4.0,
        "samples": 3.0,
        "grad_norm": 7.0,
    }


def test_two_ranks_step_like_one_learner(model_dir, samples, tmp_path) -> None:
    # adam_eps=1 makes the first update nearly linear in the gradient (see test_learner's micro-batching test);
    # a small token budget gives the ranks 3 and 2 micro-batches, so one of them pads.
    config = LearnerConfig(model=str(model_dir), lr=1e-3, adam_eps=1.0, grad_clip=0.0, max_tokens_per_micro_batch=20)
    single = Learner(config)
    expected_old = single.recompute_logprobs(_fresh(samples))
    expected = single.train_step(_fresh(samples))
    single.export_weights(tmp_path / "single")
    single.close()

    shards = shard_by_tokens(samples, 2)
    assert [len(pack_micro_batches([samples[i] for i in s], 20)) for s in shards] == [3, 2]
    group = LearnerGroup(config, num_workers=2)
    try:
        batch = _fresh(samples)
        old = group.recompute_logprobs(batch)
        for a, b in zip(old, expected_old, strict=True):
            assert a == pytest.approx(b, abs=1e-6)
        assert batch[3].old_logprobs == old[3]
        metrics = group.train_step(_fresh(samples))
        assert group.version == 1 and group.call(lambda learner: learner.version) == [1, 1]
        assert metrics["loss"] == pytest.approx(expected["loss"], abs=1e-6)
        assert metrics["grad_norm"] == pytest.approx(expected["grad_norm"], rel=1e-5)
        assert metrics["tokens"] == expected["tokens"] and metrics["samples"] == 5
        assert metrics["ratio_mean"] == pytest.approx(expected["ratio_mean"], abs=1e-6)
        out = group.export_weights(tmp_path / "group")
        mine, theirs = read_safetensors(out), read_safetensors(tmp_path / "single")
        assert mine.keys() == theirs.keys()
        for name in theirs:
            torch.testing.assert_close(mine[name], theirs[name], rtol=0, atol=1e-5)
        moved = max((mine[n] - t).abs().max().item() for n, t in read_safetensors(model_dir).items())
        assert moved > 1e-4

        # Checkpoint through every rank, take a step, resume, and the step repeats.
        path = group.save_checkpoint(tmp_path / "ckpt", 1, counters={"accepted": 3})
        after = group.train_step(_fresh(samples))
        state = group.load_checkpoint(path)
        assert group.version == 1 and state.counters == {"accepted": 3}
        again = group.train_step(_fresh(samples))
        assert again["loss"] == pytest.approx(after["loss"], abs=1e-6)
    finally:
        group.close()
