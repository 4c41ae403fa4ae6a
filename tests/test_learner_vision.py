"""The learner on each tiny vision model (Qwen2.5-VL, GLM-4.1V): screenshot samples from episodes, logprobs
that match re-scoring with the images, and a policy step that leaves the frozen vision tower alone."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from droidrl.models.scoring import score
from droidrl.rollout.agent import Episode, Turn
from droidrl.rollout.envpool import Observation
from droidrl.rollout.prompts import PromptBuilder, PromptConfig
from droidrl.trainer.learner import Learner, LearnerConfig
from droidrl.trainer.samples import StepSample, samples_from_episode

GOAL = "Open the Contacts app"


@pytest.fixture(scope="module")
def episode(vision_model_dir: Path, phone_screens: list[Observation]) -> Episode:
    """A two-turn screenshot episode (turn 1's prompt shows both screens) with random responses."""
    screens = phone_screens
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(vision_model_dir)
    model = AutoModelForImageTextToText.from_pretrained(vision_model_dir, dtype=torch.float32).eval()
    builder = PromptBuilder(tokenizer, PromptConfig(observation="screenshot", image_turns=2))
    rng = random.Random(0)
    responses = [[rng.randrange(10, 500) for _ in range(6)], [rng.randrange(10, 500) for _ in range(4)]]
    turns = []
    for index in range(2):
        prompt = builder.build(GOAL, screens[: index + 1], responses[:index])
        logprobs = score(model, prompt.ids, responses[index], images=prompt.images)
        turns.append(
            Turn(
                index=index,
                prompt_ids=prompt.ids,
                response_ids=responses[index],
                logprobs=logprobs,
                versions=[0] * len(logprobs),
                finish_reason="length",
                action_text="",
                action=None,
                valid=False,
                reason="test",
                image_turns=list(prompt.image_turns),
                app="",
            )
        )
    screenshots = [s.screenshot_png for s in screens]
    return Episode("e0", "T:0", "T", 0, GOAL, "easy", turns, 1.0, True, "done", screenshots=screenshots)


def _fresh(samples: list[StepSample]) -> list[StepSample]:
    return [dataclasses.replace(s, old_logprobs=None) for s in samples]


def test_vision_samples_recompute_the_engine_logprobs_and_train_the_language_model(vision_model_dir, episode) -> None:
    samples = samples_from_episode(episode, advantage=1.0)
    assert [len(s.images) for s in samples] == [1, 2]
    assert all(img.dtype == np.uint8 and img.ndim == 3 for s in samples for img in s.images)
    # A text-only row of the same model shares micro-batches with the image rows.
    text = StepSample(samples[0].prompt_ids[:5], [40, 41, 42], [0.0, 0.0, 0.0], advantage=-1.0)
    learner = Learner(LearnerConfig(model=str(vision_model_dir), lr=1e-2))
    vision = {n for n, p in learner.model.named_parameters() if "visual" in n.split(".")}
    trainable = {n for n, p in learner.model.named_parameters() if p.requires_grad}
    assert vision and not vision & trainable and trainable
    recomputed = learner.recompute_logprobs([*_fresh(samples), text])
    for sample, logprobs in zip(samples, recomputed[:2], strict=True):
        assert np.max(np.abs(np.array(logprobs) - np.array(sample.rollout_logprobs))) < 1e-5
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(vision_model_dir, dtype=torch.float32).eval()
    assert recomputed[2] == pytest.approx(score(base, text.prompt_ids, text.response_ids), abs=1e-5)
    before = {k: v.clone() for k, v in learner.model.state_dict().items()}
    metrics = learner.train_step(_fresh(samples))
    assert metrics["old_rollout_logprob_diff_max"] < 1e-5 and metrics["micro_batches"] == 1
    after = learner.model.state_dict()
    moved = {k for k, v in before.items() if not torch.equal(after[k], v)}
    assert moved and all("visual" not in k.split(".") for k in moved)
    # The step moved the logprobs the advantage's way (+1 for both turns).
    later = learner.recompute_logprobs(_fresh(samples))
    assert sum(map(sum, later)) > sum(map(sum, recomputed[:2])) + 0.05
    learner.close()


def test_images_on_a_text_model_are_refused(model_dir, episode) -> None:
    sample = samples_from_episode(episode, advantage=1.0)[0]
    learner = Learner(LearnerConfig(model=str(model_dir)))
    with pytest.raises(ValueError, match="text-only"):
        learner.micro_batches([sample])
    learner.close()


@pytest.mark.slow
@pytest.mark.parametrize("setting", [{"zero_stage": 3}, {"lora_rank": 4, "lora_alpha": 8.0}], ids=["zero3", "lora"])
def test_vision_learner_with_zero3_and_lora_exports_a_checkpoint_transformers_reloads(
    vision_model_dir, episode, setting, tmp_path: Path
) -> None:
    """Each family under ZeRO-3 and under LoRA: a step trains the language model only, and the exported HF
    directory reloads through the Auto classes with the trained weights (what an engine or a team loads)."""
    from transformers import AutoModelForImageTextToText

    samples = samples_from_episode(episode, advantage=1.0)
    learner = Learner(LearnerConfig(model=str(vision_model_dir), lr=1e-2, **setting))
    before = {k: v.clone() for k, v in learner.state_dict().items()}
    learner.train_step(_fresh(samples))
    exported = learner.export_weights(tmp_path / "export")
    after = learner.state_dict()
    learner.close()
    moved = {k for k, v in before.items() if not torch.equal(after[k], v)}
    assert moved and all("visual" not in k.split(".") for k in moved)
    reloaded = AutoModelForImageTextToText.from_pretrained(exported, dtype=torch.float32).eval()
    assert type(reloaded).__name__ == json_architecture(vision_model_dir)
    for name, value in reloaded.state_dict().items():
        if name in after:
            assert torch.equal(value, after[name].to(value.dtype)), name
    prompt = samples[1]
    rescored = score(reloaded, prompt.prompt_ids, prompt.response_ids, images=prompt.images)
    assert np.isfinite(rescored).all()


def json_architecture(model_dir: Path) -> str:
    import json

    return json.loads((Path(model_dir) / "config.json").read_text())["architectures"][0]
