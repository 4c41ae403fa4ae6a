"""The DeepSpeed learner on CPU (gloo, fp32) with the tiny-text policy and completions its engine really sampled:
logprob recomputation, policy steps that move logprobs the advantage's way, micro-batching that leaves the
gradient unchanged, ZeRO-3, and weight export that transformers loads."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
import torch

from droidrl.rollout.agent import Episode, Turn
from droidrl.rollout.collector import Group, TaskInstance
from droidrl.rollout.engines.base import Completion, SamplingParams
from droidrl.rollout.engines.transformers_engine import TransformersEngine, TransformersEngineConfig
from droidrl.trainer.learner import Learner, LearnerConfig, lr_factor
from droidrl.trainer.samples import StepSample, build_micro_batch, pack_micro_batches, samples_from_groups

GOALS = ["Open the Clock app", "Turn on Wi-Fi", "Send a message to Bob", "Delete the first contact"]
GROUP = 3  # episodes (completions) per goal


@pytest.fixture(scope="module")
def groups(model_dir: Path, tokenizer) -> list[Group]:
    """GOALS x GROUP one-turn episodes whose turn is a completion the transformers engine sampled."""
    prompts = [
        tokenizer.apply_chat_template([{"role": "user", "content": goal}], add_generation_prompt=True, tokenize=True)
        for goal in GOALS
    ]
    prompts = [list(p["input_ids"]) if isinstance(p, dict) or hasattr(p, "keys") else list(p) for p in prompts]

    async def sample() -> list[list[Completion]]:
        engine = TransformersEngine(TransformersEngineConfig(model=str(model_dir), max_batch=16))
        try:
            jobs = [
                engine.generate(prompt, SamplingParams(max_tokens=6 + 2 * k, seed=10 * g + k))
                for g, prompt in enumerate(prompts)
                for k in range(GROUP)
            ]
            done = await asyncio.gather(*jobs)
        finally:
            await engine.close()
        return [done[g * GROUP : (g + 1) * GROUP] for g in range(len(prompts))]

    completions = asyncio.run(sample())
    out = []
    for g, (goal, prompt) in enumerate(zip(GOALS, prompts, strict=True)):
        episodes = []
        for k, completion in enumerate(completions[g]):
            turn = Turn(
                index=0,
                prompt_ids=prompt,
                response_ids=completion.token_ids,
                logprobs=completion.logprobs,
                versions=completion.versions,
                finish_reason=completion.finish_reason,
                action_text="",
                action=None,
                valid=False,
                reason="test",
                image_turns=[],
                app="com.android.launcher3",
            )
            episodes.append(
                Episode(f"e{g}-{k}", f"T{g}:0", f"T{g}", 0, goal, "easy", [turn], float(k == 0), k == 0, "done")
            )
        out.append(Group(f"g{g}", g, TaskInstance(f"T{g}", 0), episodes, start_version=0))
    return out


@pytest.fixture(scope="module")
def samples(groups: list[Group]) -> list[StepSample]:
    """The episode that succeeded in each group has advantage +1, the two others -0.5."""
    return samples_from_groups(groups, [[1.0, -0.5, -0.5] for _ in groups])


def _fresh(samples: list[StepSample]) -> list[StepSample]:
    return [dataclasses.replace(s, old_logprobs=None) for s in samples]


def _learner(model_dir: Path, **overrides) -> Learner:
    overrides.setdefault("lr", 1e-3)
    return Learner(LearnerConfig(model=str(model_dir), **overrides))


def _max_diff(samples: list[StepSample], logprobs: list[list[float]]) -> float:
    """The largest |recomputed - engine| logprob over all response tokens."""
    pairs = zip(samples, logprobs, strict=True)
    return max(abs(a - b) for s, lp in pairs for a, b in zip(lp, s.rollout_logprobs, strict=True))


def _mean_logprob(logprobs: list[list[float]], samples: list[StepSample], positive: bool) -> float:
    picked = [sum(lp) / len(lp) for lp, s in zip(logprobs, samples, strict=True) if (s.advantage > 0) == positive]
    return sum(picked) / len(picked)


def test_samples_broadcast_the_episode_advantage_and_keep_engine_ids(groups, samples) -> None:
    assert len(samples) == len(GOALS) * GROUP
    first = samples[0]
    turn = groups[0].episodes[0].turns[0]
    assert first.prompt_ids == turn.prompt_ids and first.response_ids == turn.response_ids
    assert first.rollout_logprobs == turn.logprobs and first.episode_id == "e0-0" and first.task == "T0:0"
    assert [s.advantage for s in samples[:3]] == [1.0, -0.5, -0.5]
    with pytest.raises(ValueError, match="3 episodes but 2 advantages"):
        samples_from_groups(groups, [[1.0, 0.0]] * len(groups))


def test_micro_batch_tensors_are_aligned_with_targets() -> None:
    a = StepSample([5, 6, 7], [8, 9], [-0.1, -0.2], advantage=2.0)
    b = StepSample([1, 2], [3, 4, 5, 6], [-1.0, -2.0, -3.0, -4.0], advantage=-1.0, old_logprobs=[-1, -2, -3, -4])
    batch = build_micro_batch([a, b], [0, 1], pad_id=0)
    assert batch.input_ids.tolist() == [[5, 6, 7, 8, 9, 0], [1, 2, 3, 4, 5, 6]]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]]
    # Position t predicts token t + 1: a's response (8, 9) is predicted at positions 2 and 3.
    assert batch.response_mask.tolist() == [[0, 0, 1, 1, 0], [0, 1, 1, 1, 1]]
    assert batch.rollout_logprobs[0].tolist() == pytest.approx([0, 0, -0.1, -0.2, 0])
    assert batch.advantages.tolist() == [[0, 0, 2, 2, 0], [0, -1, -1, -1, -1]]
    assert batch.old_logprobs is None  # a has none yet
    assert batch.tokens == 6


def test_packing_respects_the_token_budget_longest_first() -> None:
    lengths = [10, 3, 7, 7, 2, 12]
    samples = [StepSample([1] * (n - 1), [2], [-1.0], 0.0) for n in lengths]
    batches = pack_micro_batches(samples, max_tokens=16)
    assert [b.indices for b in batches] == [[5], [0], [2, 3], [1, 4]]
    assert all(b.input_ids.numel() <= 16 for b in batches)
    assert sorted(i for b in batches for i in b.indices) == list(range(len(lengths)))
    # A sample over the budget still trains, alone; max_rows caps rows.
    assert [b.indices for b in pack_micro_batches(samples, max_tokens=5)] == [[5], [0], [2], [3], [1], [4]]
    assert [b.indices for b in pack_micro_batches(samples, max_tokens=100, max_rows=4)] == [[5, 0, 2, 3], [1, 4]]


def test_lr_schedule_warms_up_then_decays() -> None:
    config = LearnerConfig(model="unused", lr=1.0, lr_schedule="cosine", warmup_steps=2, total_steps=6)
    factors = [lr_factor(step, config) for step in range(7)]
    assert factors == pytest.approx([0.5, 1.0, 1.0, 0.8535534, 0.5, 0.1464466, 0.0])
    with pytest.raises(ValueError, match="total_steps"):
        LearnerConfig(model="unused", lr_schedule="linear")


def test_recomputed_logprobs_equal_the_engine_and_steps_follow_the_advantage(model_dir, samples) -> None:
    learner = _learner(model_dir)
    batch = _fresh(samples)
    before = {k: v.clone() for k, v in learner.model.state_dict().items()}
    old = learner.recompute_logprobs(batch)
    diff = _max_diff(batch, old)
    assert diff < 1e-4, f"trainer and engine logprobs differ by {diff}"

    # PPO epochs on the same samples: old logprobs stay those of step 0, so the surrogate loss can fall.
    losses = [learner.train_step(batch)["loss"] for _ in range(4)]
    after = learner.recompute_logprobs(_fresh(samples))
    assert learner.version == 4
    changed = max((learner.model.state_dict()[k] - v).abs().max().item() for k, v in before.items())
    assert changed > 1e-4
    assert losses[0] == pytest.approx(
        -sum(s.advantage * len(s.response_ids) for s in batch) / sum(len(s.response_ids) for s in batch), abs=1e-6
    )  # ratio 1 at step 0: the loss is minus the token-mean advantage
    assert losses[-1] < losses[0] - 0.05, losses
    assert _mean_logprob(after, batch, True) > _mean_logprob(old, batch, True) + 0.05
    assert _mean_logprob(after, batch, False) < _mean_logprob(old, batch, False) - 0.05
    learner.close()


def test_micro_batching_leaves_the_step_unchanged(model_dir, samples) -> None:
    # adam_eps=1 makes Adam's first update ~ lr * g / (|g| + 1): nearly linear in the gradient, so equal
    # weights after the step mean equal gradients (with the default eps the update is ~ lr * sign(g)).
    results = {}
    for budget in (4096, 40):
        learner = _learner(model_dir, max_tokens_per_micro_batch=budget, adam_eps=1.0, grad_clip=0.0)
        metrics = learner.train_step(_fresh(samples))
        results[budget] = (metrics, {k: v.clone() for k, v in learner.model.state_dict().items()})
        learner.close()
    (full, full_weights), (micro, micro_weights) = results[4096], results[40]
    assert full["micro_batches"] == 1 and micro["micro_batches"] >= 4
    assert micro["grad_norm"] == pytest.approx(full["grad_norm"], rel=1e-5)
    assert micro["loss"] == pytest.approx(full["loss"], abs=1e-6)
    for name, weight in full_weights.items():
        torch.testing.assert_close(micro_weights[name], weight, rtol=0, atol=1e-8)


def test_export_loads_in_transformers_and_matches(model_dir, samples, tmp_path) -> None:
    from transformers import AutoModelForCausalLM

    learner = _learner(model_dir)
    learner.train_step(_fresh(samples))
    out = learner.export_weights(tmp_path / "v1")
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    loaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    mine = learner.model.state_dict()
    for name, tensor in loaded.state_dict().items():
        torch.testing.assert_close(tensor, mine[name], rtol=0, atol=0)
    # The exported policy scores the samples as the learner does.
    scored = learner.recompute_logprobs(_fresh(samples))
    from droidrl.models.scoring import score

    assert score(loaded, samples[0].prompt_ids, samples[0].response_ids) == pytest.approx(scored[0], abs=1e-5)
    with pytest.raises(FileExistsError):
        learner.export_weights(out)
    learner.close()


def test_zero3_with_gradient_checkpointing_trains_like_zero2(model_dir, samples, tmp_path) -> None:
    norms = {}
    for stage in (2, 3):
        learner = _learner(model_dir, zero_stage=stage, gradient_checkpointing=True)
        batch = _fresh(samples)
        old = learner.recompute_logprobs(batch)
        assert _max_diff(batch, old) < 1e-4
        norms[stage] = learner.train_step(batch)["grad_norm"]
        out = learner.export_weights(tmp_path / f"stage{stage}")
        learner.close()
    assert norms[3] == pytest.approx(norms[2], rel=1e-5)
    from droidrl.models.presets import read_safetensors

    two, three = read_safetensors(tmp_path / "stage2"), read_safetensors(out)
    assert two.keys() == three.keys()
    # One AdamW step of lr 1e-3: the update is ~lr * sign(g), so a gradient near Adam's eps that differs in
    # rounding between the two stages moves a weight by a fraction of lr; 1e-5 is 1% of the step.
    for name in two:
        torch.testing.assert_close(three[name], two[name], rtol=0, atol=1e-5)


def test_lr_schedule_drives_the_optimizer(model_dir, samples) -> None:
    learner = _learner(model_dir, lr=1e-3, lr_schedule="linear", warmup_steps=1, total_steps=3)
    rates = [learner.train_step(_fresh(samples[:2]))["lr"] for _ in range(3)]
    assert rates == pytest.approx([1e-3, 1e-3, 0.5e-3])
    learner.close()
