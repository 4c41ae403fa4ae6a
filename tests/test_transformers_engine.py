"""The transformers engine against the Engine contract: batching, sampling options, stop ids, seeds,
raw logprobs that re-scoring reproduces, and weight updates that land mid-generation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import torch

from droidrl.models.presets import init_model
from droidrl.models.scoring import score, score_batch
from droidrl.rollout.engines.base import Engine, SamplingParams
from droidrl.rollout.engines.transformers_engine import TransformersEngine, TransformersEngineConfig

PROMPTS = [[3722, 84, 2007, 198] * n + [1072, 3723, 198, 3722] for n in (1, 2, 3, 5, 8)]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two policies with the same architecture: version 0 (seed 0) and the "trained" version 1 (seed 1)."""
    root = tmp_path_factory.mktemp("engine-models")
    return init_model("tiny-text", root / "v0", seed=0), init_model("tiny-text", root / "v1", seed=1)


def _engine(path: Path, **overrides) -> TransformersEngine:
    return TransformersEngine(TransformersEngineConfig(model=str(path), **overrides))


def _hf(path: Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path).eval()


def _forward_counter(engine: TransformersEngine) -> list[int]:
    calls = [0]

    def hook(*_: object) -> None:
        calls[0] += 1

    engine.model.register_forward_hook(hook)
    return calls


def test_meets_the_contract_and_batches_concurrent_requests(models: tuple[Path, Path]) -> None:
    async def run():
        engine = _engine(models[0], name="hf-test")
        assert isinstance(engine, Engine) and engine.version == 0
        calls = _forward_counter(engine)
        sampling = [SamplingParams(max_tokens=8 + 4 * i, seed=i) for i in range(len(PROMPTS))]
        together = await asyncio.gather(*(engine.generate(p, s) for p, s in zip(PROMPTS, sampling, strict=True)))
        batched_calls = calls[0]
        alone = [await engine.generate(p, s) for p, s in zip(PROMPTS, sampling, strict=True)]
        await engine.close()
        return together, alone, batched_calls

    together, alone, batched_calls = asyncio.run(run())
    for i, completion in enumerate(together):
        assert len(completion.token_ids) == 8 + 4 * i and completion.finish_reason == "length"
        assert completion.versions == [0] * len(completion.token_ids) and completion.engine == "hf-test"
        assert all(lp < 0 for lp in completion.logprobs)
        assert completion.timings["generate_s"] > 0
    # One batch: as many forward passes as the longest request has tokens, not the sum over requests.
    assert batched_calls == 8 + 4 * (len(PROMPTS) - 1)
    # Seeded sampling does not depend on the batch a request shares (left padding changes nothing).
    assert [c.token_ids for c in together] == [c.token_ids for c in alone]
    assert np.allclose(together[2].logprobs, alone[2].logprobs, atol=1e-5)


def test_logprobs_are_raw_and_rescoring_reproduces_them(models: tuple[Path, Path]) -> None:
    async def run():
        engine = _engine(models[0])
        options = [
            SamplingParams(max_tokens=24, temperature=1.0, seed=1),
            SamplingParams(max_tokens=24, temperature=2.5, seed=2),  # temperature must not change logprobs
            SamplingParams(max_tokens=24, temperature=0.7, top_p=0.5, top_k=20, seed=3),
            SamplingParams(max_tokens=24, temperature=0.0),
        ]
        out = await asyncio.gather(*(engine.generate(PROMPTS[i], s) for i, s in enumerate(options)))
        await engine.close()
        return out

    completions = asyncio.run(run())
    model = _hf(models[0])
    scored = score_batch(model, [(PROMPTS[i], c.token_ids) for i, c in enumerate(completions)])
    for completion, rescored in zip(completions, scored, strict=True):
        assert np.max(np.abs(np.array(completion.logprobs) - rescored)) < 1e-4
    # Greedy picks the argmax of the raw distribution at every step.
    greedy = completions[3]
    with torch.no_grad():
        logits = model(torch.tensor([PROMPTS[3] + greedy.token_ids])).logits[0, len(PROMPTS[3]) - 1 : -1]
    assert greedy.token_ids == logits.argmax(-1).tolist()


def test_sampling_options(models: tuple[Path, Path]) -> None:
    async def run():
        engine = _engine(models[0])
        prompt = PROMPTS[1]
        greedy = await engine.generate(prompt, SamplingParams(max_tokens=12, temperature=0.0))
        top1 = await engine.generate(prompt, SamplingParams(max_tokens=12, top_k=1, seed=5))
        nucleus = await engine.generate(prompt, SamplingParams(max_tokens=12, top_p=1e-6, seed=6))
        seeded = [await engine.generate(prompt, SamplingParams(max_tokens=12, seed=s)) for s in (7, 7, 8)]
        unseeded = await asyncio.gather(*(engine.generate(prompt, SamplingParams(max_tokens=12)) for _ in range(2)))
        # Stop on the third greedy token: generation ends at its first occurrence and keeps it.
        stop_id = greedy.token_ids[2]
        first = greedy.token_ids.index(stop_id)
        stopped = await engine.generate(
            prompt, SamplingParams(max_tokens=12, temperature=0.0, stop_token_ids=(stop_id,))
        )
        await engine.close()
        return greedy, top1, nucleus, seeded, unseeded, stopped, first

    greedy, top1, nucleus, seeded, unseeded, stopped, first = asyncio.run(run())
    assert top1.token_ids == greedy.token_ids and nucleus.token_ids == greedy.token_ids
    assert seeded[0].token_ids == seeded[1].token_ids and seeded[0].logprobs == seeded[1].logprobs
    assert seeded[0].token_ids != seeded[2].token_ids
    assert unseeded[0].token_ids != unseeded[1].token_ids  # each unseeded request draws its own stream
    assert stopped.finish_reason == "stop" and stopped.token_ids == greedy.token_ids[: first + 1]


def test_update_weights_mid_generation(models: tuple[Path, Path]) -> None:
    v0, v1 = models

    async def run():
        engine = _engine(v0)
        before = await engine.generate(PROMPTS[0], SamplingParams(max_tokens=16, seed=1))
        started = asyncio.Event()
        loop = asyncio.get_running_loop()
        calls = [0]

        def after_forward(*_: object) -> None:
            calls[0] += 1
            if calls[0] == 5:
                loop.call_soon_threadsafe(started.set)

        engine.model.register_forward_hook(after_forward)
        long_request = asyncio.create_task(engine.generate(PROMPTS[1], SamplingParams(max_tokens=200, seed=2)))
        await asyncio.wait_for(started.wait(), timeout=30)  # five tokens are out: the request is in flight
        ticks = 0
        update = asyncio.create_task(engine.update_weights(v1, version=1))
        while not update.done():  # the event loop stays free while the worker decodes and loads
            ticks += 1
            await asyncio.sleep(0.001)
        await update
        assert engine.version == 1
        spanning = await long_request
        after = await engine.generate(PROMPTS[0], SamplingParams(max_tokens=16, seed=1))
        await engine.close()
        return before, spanning, after, ticks

    before, spanning, after, ticks = asyncio.run(run())
    assert ticks >= 1
    versions = spanning.versions
    assert len(spanning.token_ids) == 200 and spanning.finish_reason == "length"
    assert versions[:5] == [0] * 5 and versions[-1] == 1 and versions == sorted(versions)
    switch = versions.index(1)
    assert before.versions == [0] * 16 and after.versions == [1] * 16
    assert after.token_ids != before.token_ids  # same seed, new weights
    old, new = _hf(v0), _hf(v1)
    assert np.allclose(before.logprobs, score(old, PROMPTS[0], before.token_ids), atol=1e-4)
    assert np.allclose(after.logprobs, score(new, PROMPTS[0], after.token_ids), atol=1e-4)
    # The tokens sampled before the swap are exactly the old policy's.
    prefix = spanning.token_ids[:switch]
    assert np.allclose(spanning.logprobs[:switch], score(old, PROMPTS[1], prefix), atol=1e-4)


def test_bad_requests_and_close(models: tuple[Path, Path]) -> None:
    async def run():
        engine = _engine(models[0], max_model_len=64)
        sampling = SamplingParams(max_tokens=8, seed=0)
        with pytest.raises(ValueError, match="text-only"):
            await engine.generate(PROMPTS[0], sampling, images=[np.zeros((8, 8, 3), np.uint8)])
        with pytest.raises(ValueError, match="outside the model's vocabulary"):
            await engine.generate([1, 10**6], sampling)
        with pytest.raises(ValueError, match="leaves no room"):
            await engine.generate([5] * 64, sampling)
        with pytest.raises(ValueError, match="unknown names"):
            bad = Path(engine.config.model).parent / "bad"
            bad.mkdir(exist_ok=True)
            from safetensors.torch import save_file

            save_file({"not.a.weight": torch.zeros(2)}, str(bad / "model.safetensors"))
            await engine.update_weights(bad, version=9)
        with pytest.raises(ValueError, match="lack 25 tensors"):
            embed = engine.model.model.embed_tokens.weight.detach().clone()
            save_file({"model.embed_tokens.weight": embed}, str(bad / "model.safetensors"))
            await engine.update_weights(bad, version=9)
        # An export that writes the tied lm_head too is accepted.
        full = {name: t.detach().clone() for name, t in engine.model.state_dict().items()}
        assert "lm_head.weight" in full
        save_file(full, str(bad / "model.safetensors"))
        await engine.update_weights(bad, version=0)
        assert engine.version == 0
        # The context limit ends a completion like max_tokens does.
        capped = await engine.generate([5] * 60, SamplingParams(max_tokens=50, seed=0))
        assert capped.finish_reason == "length" and len(capped.token_ids) == 4
        running = asyncio.create_task(engine.generate(PROMPTS[0], SamplingParams(max_tokens=5000, seed=0)))
        await asyncio.sleep(0.05)
        await engine.close()
        aborted = await running
        with pytest.raises(RuntimeError, match="closed"):
            await engine.generate(PROMPTS[0], sampling)
        return aborted, engine._worker.is_alive()

    aborted, worker_alive = asyncio.run(run())
    assert aborted.finish_reason == "abort" and len(aborted.token_ids) < 60
    assert not worker_alive  # close() ended the decode thread
