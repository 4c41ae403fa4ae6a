"""The transformers engine on each vision family (tiny-vl: Qwen2.5-VL, tiny-glm4v: GLM-4.1V): screenshot prompts
from PromptBuilder, placeholder expansion, batching with text requests, seeded determinism, and re-scoring that
reproduces the logprobs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import torch

from droidrl.models.presets import init_model
from droidrl.models.scoring import expand_images, load_image_processor, score, score_batch
from droidrl.rollout.engines.base import SamplingParams
from droidrl.rollout.engines.transformers_engine import TransformersEngine, TransformersEngineConfig
from droidrl.rollout.envpool import Observation
from droidrl.rollout.prompts import Prompt, PromptBuilder, PromptConfig

GOAL = "Open the Contacts app"


@pytest.fixture(scope="module")
def model_dir(vision_model_dir: Path) -> Path:
    return vision_model_dir  # this module's model is a vision-language one, of each family in turn


@pytest.fixture(scope="module")
def screens(phone_screens: list[Observation]) -> list[Observation]:
    return phone_screens


@pytest.fixture(scope="module")
def prompts(model_dir: Path, screens: list[Observation]) -> dict[str, Prompt]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    vision = PromptBuilder(tokenizer, PromptConfig(observation="screenshot", image_turns=2))
    answer = '<answer>do(action="Home")</answer>' + tokenizer.eos_token
    response = tokenizer.encode(answer, add_special_tokens=False)
    return {
        "one": vision.build(GOAL, screens[:1], []),
        "two": vision.build(GOAL, screens, [response]),  # turn 1: both screens keep their image
        "text": PromptBuilder(tokenizer, PromptConfig(observation="xml")).build(GOAL, screens[:1], []),
    }


@pytest.fixture(scope="module")
def engine(model_dir: Path):
    engine = TransformersEngine(TransformersEngineConfig(model=str(model_dir), name="hf-vl"))
    yield engine
    asyncio.run(engine.close())


def _generate(engine: TransformersEngine, *requests: tuple[Prompt, SamplingParams]):
    async def run():
        return await asyncio.gather(*(engine.generate(p.ids, s, images=p.images) for p, s in requests))

    return asyncio.run(run())


def _forward_counter(engine: TransformersEngine) -> list[int]:
    calls = [0]

    def hook(*_: object) -> None:
        calls[0] += 1

    handle = engine.model.register_forward_hook(hook)
    calls.append(handle)  # type: ignore[arg-type]
    return calls


def test_generates_from_a_screenshot_prompt(engine: TransformersEngine, prompts: dict[str, Prompt]) -> None:
    prompt = prompts["one"]
    pad = engine.image_token_id
    assert len(prompt.images) == 1 and prompt.ids.count(pad) == 1  # one placeholder: the engine expands it
    calls = _forward_counter(engine)
    (completion,) = _generate(engine, (prompt, SamplingParams(max_tokens=12, temperature=1.0, seed=7)))
    calls[1].remove()
    assert len(completion.token_ids) == 12 and completion.finish_reason == "length"
    assert completion.versions == [0] * 12 and completion.engine == "hf-vl"
    assert all(lp < 0 for lp in completion.logprobs)
    assert calls[0] == 12  # one prefill with the image, then one step per further token: the KV cache is used
    # The model's own multimodal positions (from mm_token_type_ids, as in HF generate) give the same
    # logprobs over the expanded prompt: the placeholder expansion and the engine's 3D positions are right.
    vision = expand_images(prompt.ids, prompt.images, load_image_processor(str(engine.config.model)), pad)
    assert len(vision.ids) == len(prompt.ids) - 1 + int(vision.image_grid_thw.prod()) // 4
    ids = torch.tensor([vision.ids + completion.token_ids])
    with torch.no_grad():
        logits = engine.model(
            input_ids=ids,
            pixel_values=vision.pixel_values,
            image_grid_thw=vision.image_grid_thw,
            mm_token_type_ids=(ids == pad).int(),
        ).logits[0]
    engine.model.model.rope_deltas = None  # that call cached its rope deltas in the model: clear them
    reference = torch.log_softmax(logits[len(vision.ids) - 1 : -1].float(), dim=-1)
    reference = reference.gather(-1, torch.tensor(completion.token_ids)[:, None])[:, 0]
    assert np.max(np.abs(reference.numpy() - np.array(completion.logprobs))) < 1e-4
    # Seeded: the same request gives the same tokens and logprobs.
    (again,) = _generate(engine, (prompt, SamplingParams(max_tokens=12, temperature=1.0, seed=7)))
    assert again.token_ids == completion.token_ids
    assert np.allclose(again.logprobs, completion.logprobs, atol=1e-6)
    # The image matters: the same prompt with the inverted screenshot gives other logprobs.
    inverted = Prompt(prompt.ids, [255 - prompt.images[0]], prompt.image_turns, prompt.first_turn)
    (greedy,) = _generate(engine, (prompt, SamplingParams(max_tokens=4, temperature=0.0)))
    (other,) = _generate(engine, (inverted, SamplingParams(max_tokens=4, temperature=0.0)))
    assert abs(greedy.logprobs[0] - other.logprobs[0]) > 1e-4 or greedy.token_ids != other.token_ids
    rescored = score(engine.model, prompt.ids, greedy.token_ids, images=inverted.images)
    assert not np.allclose(rescored, greedy.logprobs, atol=1e-4)


def test_rescoring_reproduces_the_engine_logprobs(
    engine: TransformersEngine, prompts: dict[str, Prompt], model_dir: Path
) -> None:
    from transformers import AutoModelForImageTextToText

    requests = [
        (prompts["one"], SamplingParams(max_tokens=16, temperature=1.0, seed=1)),
        (prompts["two"], SamplingParams(max_tokens=10, temperature=1.5, seed=2)),
        (prompts["text"], SamplingParams(max_tokens=8, temperature=1.0, seed=3)),
    ]
    assert len(prompts["two"].images) == 2
    # Image requests reach the queue after their image processing: a longer batch wait lets all three meet.
    batcher = TransformersEngine(TransformersEngineConfig(model=str(model_dir), batch_wait_s=0.5))
    calls = _forward_counter(batcher)
    together = _generate(batcher, *requests)
    asyncio.run(batcher.close())
    assert calls[0] == 16  # image and text requests shared one batch: the longest request's token count
    alone = [_generate(engine, request)[0] for request in requests]
    for a, b in zip(together, alone, strict=True):
        assert a.token_ids == b.token_ids  # seeded sampling does not depend on the batch
        assert np.allclose(a.logprobs, b.logprobs, atol=1e-4)
    trainer = AutoModelForImageTextToText.from_pretrained(model_dir).eval()  # a separate copy, as the trainer has
    expected = score_batch(
        trainer,
        [(p.ids, c.token_ids) for (p, _), c in zip(requests, together, strict=True)],
        pad_id=engine.pad_id,
        images=[p.images for p, _ in requests],
        processor=load_image_processor(str(model_dir)),
    )
    for completion, logprobs in zip(together, expected, strict=True):
        assert np.max(np.abs(np.array(completion.logprobs) - np.array(logprobs))) < 1e-4
    single = score(trainer, prompts["two"].ids, together[1].token_ids, images=prompts["two"].images)
    assert np.max(np.abs(np.array(single) - np.array(together[1].logprobs))) < 1e-4


def test_update_weights_from_a_vision_checkpoint(model_dir: Path, prompts: dict[str, Prompt]) -> None:
    """An exported checkpoint of the same family (file names differ from module names in transformers 5) loads in place."""
    trained = init_model(model_dir.name, model_dir.parent / f"{model_dir.name}-v1", seed=1)
    request = (prompts["one"], SamplingParams(max_tokens=6, temperature=0.0))
    updated = TransformersEngine(TransformersEngineConfig(model=str(model_dir)))
    fresh = TransformersEngine(TransformersEngineConfig(model=str(trained), version=1))
    (before,) = _generate(updated, request)
    asyncio.run(updated.update_weights(trained, version=1))
    (after,) = _generate(updated, request)
    (expected,) = _generate(fresh, request)
    for engine in (updated, fresh):
        asyncio.run(engine.close())
    assert before.versions == [0] * 6 and after.versions == [1] * 6
    assert not np.allclose(before.logprobs, after.logprobs, atol=1e-4)
    assert after.token_ids == expected.token_ids
    assert np.allclose(after.logprobs, expected.logprobs, atol=1e-5)


def test_bad_image_requests(engine: TransformersEngine, prompts: dict[str, Prompt]) -> None:
    prompt = prompts["one"]
    sampling = SamplingParams(max_tokens=2, seed=0)

    async def run():
        with pytest.raises(ValueError, match="1 image placeholder"):
            await engine.generate(prompt.ids, sampling, images=prompt.images * 2)
        with pytest.raises(ValueError, match="1 image placeholder"):
            await engine.generate(prompt.ids, sampling)  # a placeholder but no image
        with pytest.raises(ValueError, match="HxWx3"):
            await engine.generate(prompt.ids, sampling, images=[np.zeros((8, 8), np.uint8)])

    asyncio.run(run())
    with pytest.raises(ValueError, match="text-only"):
        score_batch(_TextOnly(), [(prompt.ids, [1])], images=[prompt.images])


class _TextOnly:
    class config:  # mimics a model's config attribute
        pass
