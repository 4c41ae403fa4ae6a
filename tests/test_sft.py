"""SFT warm start: expert demonstrations recorded exactly as the agent sees its turns, their Parquet round
trip, and behaviour cloning with the DeepSpeed learner (CPU) that lowers the response NLL of the tiny-text
policy, exports a model transformers loads, and greedily reproduces the demonstrated actions."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from droidrl.envs.actions import Invalid, format_action, parse
from droidrl.envs.env import AndroidEnv
from droidrl.envs.tasks.expert import run_expert
from droidrl.rollout.envpool import to_observation
from droidrl.rollout.prompts import PromptBuilder, PromptConfig
from droidrl.rollout.records import read_turns, write_groups
from droidrl.trainer.samples import StepSample
from droidrl.trainer.sft import (
    EXPERT_ENGINE,
    EXPERT_VERSION,
    SFTConfig,
    collect_demonstrations,
    demonstration_samples,
    load_demonstrations,
    run_sft,
)

INSTANCES = [("SystemWifiTurnOff", 0), ("SystemAirplaneModeOn", 3)]


@pytest.fixture(scope="module")
def groups(tokenizer):
    return collect_demonstrations(INSTANCES, None, tokenizer, PromptConfig())


def _expert_path(task: str, seed: int, interruptions: float = 0.0) -> list[str]:
    env = AndroidEnv(screenshots=False, interruptions=interruptions)
    env.reset(seed=seed, options={"task": task})
    return [format_action(a) for a in run_expert(env.task, env.device)]


def test_demonstrations_follow_the_expert_and_succeed(groups, tokenizer) -> None:
    assert [g.instance.task for g in groups] == ["SystemWifiTurnOff", "SystemAirplaneModeOn"]
    for group, (task, seed) in zip(groups, INSTANCES, strict=True):
        (episode,) = group.episodes
        assert episode.success and episode.reward == 1.0 and episode.end_reason == "finish"
        assert episode.task == f"{task}:{seed}" and episode.engine == EXPERT_ENGINE
        expected = _expert_path(task, seed)
        assert [t.action for t in episode.turns] == expected
        assert expected[-1].startswith("finish(")
        for turn, action in zip(episode.turns, expected, strict=True):
            # The response is the answer block, then the end-of-turn token, as a policy must write it.
            assert tokenizer.decode(turn.response_ids) == f"<answer>{action}</answer><|im_end|>"
            assert turn.response_ids[-1] == tokenizer.convert_tokens_to_ids("<|im_end|>")
            parsed = parse(tokenizer.decode(turn.response_ids, skip_special_tokens=True))
            assert not isinstance(parsed, Invalid) and format_action(parsed) == action
            assert turn.valid and turn.reason is None
            assert turn.logprobs == [0.0] * len(turn.response_ids)
            assert turn.versions == [EXPERT_VERSION] * len(turn.response_ids)


def test_demonstrations_dismiss_interruptions(groups, tokenizer) -> None:
    """With app interruption dialogs the expert closes them first, and the agent records those turns too."""
    (group,) = collect_demonstrations([INSTANCES[0]], None, tokenizer, interruptions=1.0)
    (episode,) = group.episodes
    plain = groups[0].episodes[0]
    assert episode.success and episode.length > plain.length
    assert [t.action for t in episode.turns] == _expert_path(*INSTANCES[0], interruptions=1.0)


def test_every_prompt_is_what_the_agent_builds(groups, tokenizer) -> None:
    """Replay each episode on a fresh phone and rebuild every turn's prompt as rollout/agent.py does."""
    builder = PromptBuilder(tokenizer, PromptConfig())
    for group, (task, seed) in zip(groups, INSTANCES, strict=True):
        (episode,) = group.episodes
        env = AndroidEnv(screenshots=False)
        obs, info = env.reset(seed=seed, options={"task": task})
        observations = [to_observation(obs, env.device.size, False)]
        assert episode.goal == info["goal"]
        responses: list[list[int]] = []
        for turn in episode.turns:
            prompt = builder.build(info["goal"], observations, responses, [None] * len(responses))
            assert turn.prompt_ids == prompt.ids, f"{task} turn {turn.index}"
            obs, *_ = env.step(turn.action)
            observations.append(to_observation(obs, env.device.size, False))
            responses.append(turn.response_ids)
    first = groups[0].episodes[0].turns[0]
    assert tokenizer.decode(first.prompt_ids).endswith("<|im_start|>assistant\n")


def test_parquet_round_trip(groups, tmp_path: Path) -> None:
    path = write_groups(groups, tmp_path / "demos.parquet", run_id="sft", batch_id=0)
    frame = read_turns(path)
    assert len(frame) == sum(e.length for g in groups for e in g.episodes)
    assert set(frame["engine"]) == {EXPERT_ENGINE}
    loaded = load_demonstrations([path])
    in_memory = demonstration_samples(groups)
    assert [(s.prompt_ids, s.response_ids, s.episode_id, s.turn) for s in loaded] == [
        (s.prompt_ids, s.response_ids, s.episode_id, s.turn) for s in in_memory
    ]
    assert all(s.advantage == 1.0 for s in loaded)
    # A failed episode (as in human or policy records) is left out unless asked for.
    failed = dataclasses.replace(groups[1], episodes=[dataclasses.replace(groups[1].episodes[0], success=False)])
    mixed = write_groups([groups[0], failed], tmp_path / "mixed.parquet", run_id="sft", batch_id=0)
    kept = load_demonstrations(mixed)
    assert {s.task for s in kept} == {"SystemWifiTurnOff:0"}
    assert len(load_demonstrations(mixed, successful_only=False)) == len(in_memory)
    with pytest.raises(ValueError, match="no demonstration turns"):
        load_demonstrations(write_groups([failed], tmp_path / "bad.parquet", run_id="sft", batch_id=0))


def _response_nll(model, samples: list[StepSample]) -> float:
    """Token-mean negative log-likelihood of the samples' response tokens under a transformers model."""
    total = count = 0.0
    with torch.no_grad():
        for sample in samples:
            ids = torch.tensor([sample.prompt_ids + sample.response_ids])
            logprobs = torch.log_softmax(model(ids).logits[0, :-1].float(), dim=-1)
            picked = logprobs.gather(-1, ids[0, 1:, None])[:, 0][len(sample.prompt_ids) - 1 :]
            total -= float(picked.sum())
            count += len(picked)
    return total / count


def test_sft_step_is_the_token_mean_nll_whatever_the_micro_batching(groups, model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    from droidrl.trainer.learner import Learner, LearnerConfig

    demos = demonstration_samples(groups)
    base = _response_nll(AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval(), demos)
    weights, metrics = [], []
    for budget in (1, 1 << 20):  # one micro-batch per sample, then a single micro-batch
        # adam_eps=1: Adam's first update ~ lr * g / (|g| + 1) is nearly linear in the gradient, so equal
        # weights after the step mean equal gradients (the default eps gives ~ lr * sign(g), noise included).
        config = LearnerConfig(
            model=str(model_dir), lr=1e-3, adam_eps=1.0, grad_clip=0.0, max_tokens_per_micro_batch=budget
        )
        learner = Learner(config)
        try:
            metrics.append(learner.sft_step(demos))
            weights.append(learner.state_dict())
        finally:
            learner.close()
    assert [m["micro_batches"] for m in metrics] == [float(len(demos)), 1.0]
    for m in metrics:
        assert m["loss"] == pytest.approx(base, abs=1e-4)
        assert m["version"] == 1.0 and m["tokens"] == sum(len(s.response_ids) for s in demos)
    assert metrics[0]["grad_norm"] == pytest.approx(metrics[1]["grad_norm"], rel=1e-5)
    for name, tensor in weights[0].items():
        torch.testing.assert_close(tensor, weights[1][name], rtol=0, atol=1e-8, msg=name)
    assert any(
        not torch.equal(weights[0][n], t)
        for n, t in AutoModelForCausalLM.from_pretrained(model_dir).state_dict().items()
    )


def test_sft_clones_the_expert(groups, model_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    demos = demonstration_samples(groups[:1])  # one episode: 5 turns
    assert len(demos) == groups[0].episodes[0].length == 5
    steps: list[dict[str, float]] = []
    result = run_sft(
        model_dir,
        tmp_path / "sft",
        demos,
        epochs=20,
        lr=2e-3,
        config=SFTConfig(batch_size=1),
        on_step=lambda epoch, metrics: steps.append(metrics),
    )
    assert result.steps == len(steps) == 100 and steps[-1]["version"] == 100.0
    assert len(result.epoch_losses) == 20 and result.epoch_losses[-1] < 0.1 * result.epoch_losses[0]
    before = _response_nll(AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval(), demos)
    model = AutoModelForCausalLM.from_pretrained(result.model_dir, dtype=torch.float32).eval()
    after = _response_nll(model, demos)
    assert before > 7.0 and after < 0.1 * before, (before, after)
    # Greedy decoding of the cloned policy writes the demonstrated answers on the trained prompts,
    # the first turn's Launch included (so it reads the prompt, not just the most common answer).
    reproduced = []
    for sample in demos:
        out = model.generate(
            torch.tensor([sample.prompt_ids]), max_new_tokens=len(sample.response_ids), do_sample=False
        )
        reproduced.append(out[0, len(sample.prompt_ids) :].tolist() == sample.response_ids)
    assert reproduced[0] and sum(reproduced) >= 3, reproduced


def test_cli_sft_clones_expert_demos_then_given_parquet(model_dir: Path, tmp_path: Path, capsys) -> None:
    from droidrl.cli import main

    out = tmp_path / "run"
    args = ["sft", "--model", str(model_dir), "--tasks", "2", "--seeds", "1", "--epochs", "2", "--lr", "1e-3"]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "response NLL" in printed and "2/2 solved expert episodes" in printed
    assert (out / "model" / "model.safetensors").exists()
    demos = load_demonstrations(out / "demonstrations.parquet")
    assert len({s.task for s in demos}) == 2
    # The records it wrote are themselves valid --demos input (the human-demonstration path).
    again = ["sft", "--model", str(model_dir), "--demos", str(out / "demonstrations.parquet"), "--epochs", "1"]
    assert main([*again, "--out", str(tmp_path / "again")]) == 0
    assert f"{len(demos)} turns" in capsys.readouterr().out
    assert main([*again, "--out", str(tmp_path / "again")]) == 2  # the model dir exists: refused, not overwritten
    assert "already exists" in capsys.readouterr().out
    assert main(["sft", "--model", str(model_dir), "--demos", str(tmp_path / "none.parquet")]) == 2
    assert "not found" in capsys.readouterr().out
