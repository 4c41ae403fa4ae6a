"""The learner's reference policy (KL term) and LoRA adapters on the tiny-text model, CPU/gloo/fp32:
KL starts at zero and pulls back toward the initial policy, LoRA trains adapters only, exports merged
weights that transformers loads, and resumes from a checkpoint."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest
import torch
from conftest import hf_model

from droidrl.algorithms.config import LossConfig
from droidrl.checkpoints import run_state
from droidrl.models.presets import read_safetensors
from droidrl.models.scoring import score
from droidrl.trainer.learner import Learner, LearnerConfig
from droidrl.trainer.samples import StepSample

GOALS = ["Open the Clock app", "Turn on Wi-Fi", "Send a message to Bob", "Delete the first contact"]
LR_KL, STEPS_KL = 3e-3, 5  # Adam with lr 1e-2 overshoots: the KL would oscillate, not shrink
LORA = dict(lora_rank=4, lora_alpha=8.0)


@pytest.fixture(scope="module")
def samples(model_dir: Path, tokenizer) -> list[StepSample]:
    """One random response per goal, scored by the initial model (the engine's logprobs), advantages +1 / -1."""
    model = hf_model(model_dir)
    rng = random.Random(0)
    out = []
    for g, goal in enumerate(GOALS):
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": goal}], add_generation_prompt=True)
        prompt = list(prompt["input_ids"]) if hasattr(prompt, "keys") else list(prompt)
        response = [rng.randrange(10, 500) for _ in range(5 + g)]
        logprobs = score(model, prompt, response)
        out.append(StepSample(prompt, response, logprobs, advantage=1.0 if g % 2 == 0 else -1.0, episode_id=f"e{g}"))
    return out


def _fresh(samples: list[StepSample]) -> list[StepSample]:
    return [dataclasses.replace(s, old_logprobs=None) for s in samples]


def _learner(model_dir: Path, kl_coef: float = 0.0, **overrides) -> Learner:
    overrides.setdefault("lr", 1e-2)
    loss = LossConfig(kl_coef=kl_coef, kl_estimator="k3")
    return Learner(LearnerConfig(model=str(model_dir), loss=loss, **overrides))


def test_kl_starts_at_zero_and_pulls_toward_the_reference(model_dir, samples) -> None:
    kls = {}
    for coef in (1e-8, 2.0):  # 1e-8: the KL is measured but exerts no pull
        learner = _learner(model_dir, kl_coef=coef, lr=LR_KL)
        assert learner.reference is not None
        assert not any(p.requires_grad for p in learner.reference.parameters())
        metrics = [learner.train_step(_fresh(samples)) for _ in range(STEPS_KL)]
        kls[coef] = [m["kl"] for m in metrics]
        # The KL term joins the policy loss with its coefficient.
        last = metrics[-1]
        assert last["loss"] == pytest.approx(last["pg_loss"] + coef * last["kl"], rel=1e-5, abs=1e-7)
        # The reference stays the initial policy while the policy moves.
        batch = learner.micro_batches(samples)[0]
        initial = [score(hf_model(model_dir), samples[i].prompt_ids, samples[i].response_ids) for i in batch.indices]
        ref = learner.reference_logprobs(batch)
        for row, logprobs in enumerate(initial):
            picked = ref[row][batch.response_mask[row] > 0].tolist()
            assert picked == pytest.approx(logprobs, abs=1e-5)
        learner.close()
    free, pulled = kls[1e-8], kls[2.0]
    assert free[0] == 0.0 and pulled[0] == 0.0  # policy == reference at the first step
    assert free[-1] > 1e-4
    # k3's gradient is zero at the reference, so the first updates are the same; from then on the KL pulls back.
    # After one pulled Adam step the two KLs are still within noise of each other (which is smaller depends on
    # the tiny model, whose tokenizer is trained on the simulated apps' text); the pull shows from the next on.
    assert pulled[1] == pytest.approx(free[1], rel=1e-5)
    assert all(p < f for p, f in zip(pulled[3:], free[3:], strict=True)) and pulled[-1] < 0.5 * free[-1], (free, pulled)


def test_lora_trains_adapters_only_and_starts_at_the_base_model(model_dir, samples) -> None:
    learner = _learner(model_dir, **LORA)
    trainable = [name for name, p in learner.model.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    targets = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in trainable}
    assert targets == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    # lora_B starts at zero: the adapted model is exactly the base model.
    base = hf_model(model_dir)
    recomputed = learner.recompute_logprobs(_fresh(samples))
    for sample, logprobs in zip(samples, recomputed, strict=True):
        assert logprobs == pytest.approx(score(base, sample.prompt_ids, sample.response_ids), abs=1e-6)
    learner.close()


def test_lora_step_keeps_base_weights_and_exports_merged(model_dir, samples, tmp_path) -> None:
    from transformers import AutoModelForCausalLM

    initial = read_safetensors(model_dir)
    learner = _learner(model_dir, **LORA)
    for _ in range(2):
        learner.train_step(_fresh(samples))
    state = {k: v.clone() for k, v in learner.model.state_dict().items()}
    # The base weights did not move; the adapters did.
    q_base = "base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight"
    torch.testing.assert_close(state[q_base], initial["model.layers.0.self_attn.q_proj.weight"], rtol=0, atol=0)
    lora_b = state["base_model.model.model.layers.0.self_attn.q_proj.lora_B.default.weight"]
    lora_a = state["base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight"]
    assert lora_b.abs().max() > 1e-4

    out = learner.export_weights(tmp_path / "v2")
    exported = read_safetensors(out)
    assert exported.keys() == initial.keys()  # plain Hugging Face names, no adapter tensors
    merged_q = initial["model.layers.0.self_attn.q_proj.weight"] + (8.0 / 4) * lora_b @ lora_a
    torch.testing.assert_close(exported["model.layers.0.self_attn.q_proj.weight"], merged_q, rtol=0, atol=1e-6)
    assert (
        exported["model.layers.0.mlp.down_proj.weight"] - initial["model.layers.0.mlp.down_proj.weight"]
    ).abs().max() > 1e-5
    torch.testing.assert_close(exported["model.norm.weight"], initial["model.norm.weight"], rtol=0, atol=0)
    # The merged export scores the samples as the adapted learner does.
    loaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    recomputed = learner.recompute_logprobs(_fresh(samples))
    assert score(loaded, samples[1].prompt_ids, samples[1].response_ids) == pytest.approx(recomputed[1], abs=1e-5)
    learner.close()


def test_lora_with_kl_uses_the_base_model_as_reference(model_dir, samples) -> None:
    learner = _learner(model_dir, kl_coef=1.0, **LORA)
    assert learner.reference is None  # no copy: the adapters are switched off instead
    kls = [learner.train_step(_fresh(samples))["kl"] for _ in range(3)]
    assert kls[0] == 0.0 and kls[-1] > 1e-6
    batch = learner.micro_batches(samples)[0]
    ref = learner.reference_logprobs(batch)
    policy = torch.tensor(learner.recompute_logprobs([samples[i] for i in batch.indices])[0])
    base = score(hf_model(model_dir), samples[batch.indices[0]].prompt_ids, samples[batch.indices[0]].response_ids)
    assert ref[0][batch.response_mask[0] > 0].tolist() == pytest.approx(base, abs=1e-6)
    assert (policy - torch.tensor(base)).abs().max() > 1e-5  # the adapted policy itself has moved
    learner.close()


def test_lora_checkpoint_resumes_the_adapters(model_dir, samples, tmp_path) -> None:
    learner = _learner(model_dir, **LORA)
    learner.train_step(_fresh(samples))
    path = run_state.save_checkpoint(tmp_path / "ckpt", 1, learner)
    after_save = learner.train_step(_fresh(samples))
    expected = learner.recompute_logprobs(_fresh(samples))
    learner.close()

    resumed = _learner(model_dir, **LORA)
    run_state.load_checkpoint(path, resumed, restore_rng=False)
    assert resumed.version == 1 and resumed.steps == 1
    again = resumed.train_step(_fresh(samples))
    assert again["loss"] == pytest.approx(after_save["loss"], abs=1e-6)
    got = resumed.recompute_logprobs(_fresh(samples))
    for a, b in zip(got, expected, strict=True):
        assert a == pytest.approx(b, abs=1e-6)
    resumed.close()


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ValueError, match=r"trainer\.lora_rank must be >= 0"):
        LearnerConfig(model="unused", lora_rank=-1)
    with pytest.raises(ValueError, match=r"trainer\.lora_dropout"):
        LearnerConfig(model="unused", lora_rank=4, lora_dropout=1.0)
    with pytest.raises(ValueError, match=r"trainer\.lora_target_modules"):
        LearnerConfig(model="unused", lora_rank=4, lora_target_modules=())
