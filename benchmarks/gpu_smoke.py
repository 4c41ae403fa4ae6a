"""GPU smoke test: droidrl's learner step against a bare torch step on a random ~0.5B GLM-4.1V or Qwen2.5-VL.

Our learner runs bf16 with DeepSpeed ZeRO-2 over NCCL on one rank; the bare side is a transformers forward +
backward + AdamW step on the same micro-batches. It also reports peak memory.

Needs one NVIDIA GPU, a CUDA torch and DeepSpeed; no Ray, no vLLM, no network. Under 8 minutes on an H100:

    python benchmarks/gpu_smoke.py                     # GLM-4.1V (MobileRL-9B's architecture), 0.5B
    python benchmarks/gpu_smoke.py --family qwen2.5-vl
    python benchmarks/gpu_smoke.py --cpu               # the same script on CPU at tiny size (fp32, gloo): a dry run

It prints one table: tokens/s of each, their ratio (learner / bare: goal near 1; the learner computes logits for
response columns only, so it may exceed 1), the DeepSpeed backend and ZeRO stage in use, and peak GPU memory.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FAMILIES = {"glm4v": "tiny-glm4v", "qwen2.5-vl": "tiny-vl"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--family", choices=sorted(FAMILIES), default="glm4v")
    parser.add_argument("--samples", type=int, default=16, help="turns per step (each one screenshot + its prompt)")
    parser.add_argument("--prompt-tokens", type=int, default=1024, help="text tokens per prompt, besides the image")
    parser.add_argument("--response-tokens", type=int, default=128)
    parser.add_argument("--steps", type=int, default=4, help="timed steps, after one warm-up step")
    parser.add_argument("--cpu", action="store_true", help="dry run on CPU: tiny model, fp32, gloo")
    return parser.parse_args(argv)


def make_samples(model_dir: Path, args: argparse.Namespace) -> list:
    """`args.samples` screenshot turns in the model's own chat format, with random text and responses."""
    from transformers import AutoTokenizer

    from droidrl.trainer.samples import StepSample

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rng = np.random.default_rng(0)
    vocab = min(len(tokenizer), 3000)  # plain BPE tokens, below the special ones
    samples = []
    for index in range(args.samples):
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "x"}]}]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        head = tokenizer.encode(text, add_special_tokens=False)
        filler = rng.integers(10, vocab, args.prompt_tokens).tolist()
        response = rng.integers(10, vocab, args.response_tokens).tolist()
        image = rng.integers(0, 256, (448, 224, 3), dtype=np.uint8)  # a phone screen at 1/5 scale: 128 patches
        samples.append(
            StepSample(
                prompt_ids=head + filler,
                response_ids=response,
                rollout_logprobs=[-1.0] * len(response),
                advantage=1.0 if index % 2 else -1.0,
                versions=[0] * len(response),
                episode_id=f"e{index}",
                images=[image],
            )
        )
    return samples


def learner_rate(model_dir: Path, samples: list, args: argparse.Namespace) -> dict[str, float | str]:
    """droidrl's Learner (DeepSpeed ZeRO-2): tokens/s over the timed steps, and its peak memory."""
    import torch

    from droidrl.trainer.learner import Learner, LearnerConfig

    config = LearnerConfig(
        model=str(model_dir),
        zero_stage=2,
        lr=1e-6,
        precision="fp32" if args.cpu else "bf16",
        recompute_old_logprobs=False,  # time the policy step itself
        max_tokens_per_micro_batch=8192,
    )
    learner = Learner(config)
    backend = torch.distributed.get_backend() if torch.distributed.is_initialized() else "none"
    tokens = sum(s.length for s in samples)
    learner.train_step([_fresh(s) for s in samples])  # warm-up: allocations, kernels, DeepSpeed buckets
    _reset_peak(args)
    started = time.perf_counter()
    for _ in range(args.steps):
        learner.train_step([_fresh(s) for s in samples])
    _sync(args)
    elapsed = time.perf_counter() - started
    result = {"tokens_per_s": tokens * args.steps / elapsed, "peak_gib": _peak_gib(args), "backend": backend}
    learner.close()
    del learner
    return result


def bare_rate(model_dir: Path, samples: list, args: argparse.Namespace) -> dict[str, float | str]:
    """A bare transformers model + torch AdamW on the learner's own micro-batches: tokens/s and peak memory."""
    import torch
    from transformers import AutoModelForImageTextToText

    from droidrl.trainer.learner import Learner, LearnerConfig

    device = "cpu" if args.cpu else "cuda"
    dtype = torch.float32 if args.cpu else torch.bfloat16
    # The learner only packs the batches here (no step), so both sides see exactly the same inputs.
    packer = Learner(LearnerConfig(model=str(model_dir), precision="fp32", zero_stage=0))
    batches = [b.to(device) for b in packer.micro_batches([_fresh(s, True) for s in samples])]
    packer.close()
    del packer
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=dtype).to(device).train()
    for name, param in model.named_parameters():
        param.requires_grad_("visual" not in name.split("."))  # frozen vision tower, as the learner trains
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    tokens = sum(s.length for s in samples)

    def step() -> None:
        for batch in batches:
            logits = model(
                input_ids=batch.input_ids, attention_mask=batch.attention_mask, **batch.vision_inputs()
            ).logits
            logprobs = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, batch.input_ids[:, 1:, None])[..., 0]
            loss = -(logprobs * batch.response_mask * batch.advantages).sum() / batch.response_mask.sum()
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    _reset_peak(args)
    started = time.perf_counter()
    for _ in range(args.steps):
        step()
    _sync(args)
    elapsed = time.perf_counter() - started
    return {"tokens_per_s": tokens * args.steps / elapsed, "peak_gib": _peak_gib(args), "backend": "-"}


def _fresh(sample, with_old: bool = False):
    """A copy of `sample` without old logprobs (each train_step fills them), or with the rollout's as old."""
    import dataclasses

    return dataclasses.replace(sample, old_logprobs=list(sample.rollout_logprobs) if with_old else None)


def _reset_peak(args: argparse.Namespace) -> None:
    if not args.cpu:
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _sync(args: argparse.Namespace) -> None:
    if not args.cpu:
        import torch

        torch.cuda.synchronize()


def _peak_gib(args: argparse.Namespace) -> float:
    if args.cpu:
        return float("nan")
    import torch

    return torch.cuda.max_memory_allocated() / 2**30


def check_machine(args: argparse.Namespace) -> str:
    """What this runs on, or a clear exit when the GPU path cannot run here."""
    import torch

    if args.cpu:
        os.environ["DS_ACCELERATOR"] = "cpu"
        return "CPU (dry run)"
    if not torch.cuda.is_available():
        sys.exit("gpu_smoke: no CUDA device (torch.cuda.is_available() is False); run with --cpu for a dry run")
    try:
        import deepspeed  # noqa: F401
    except ImportError:
        sys.exit("gpu_smoke: DeepSpeed is not installed (pip install deepspeed)")
    return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from rich.console import Console
    from rich.table import Table
    from transformers.utils import logging as hf_logging

    from droidrl.models.presets import init_model, parameter_count

    hf_logging.disable_progress_bar()  # "Loading weights" bars at each of the three loads
    console = Console()
    machine = check_machine(args)
    scale = "tiny" if args.cpu else "0.5b"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu-smoke-") as tmp:
        with console.status(f"building a random {args.family} at scale {scale}"):
            model_dir = init_model(FAMILIES[args.family], Path(tmp) / args.family, scale=scale)
            samples = make_samples(model_dir, args)
        with console.status("droidrl learner steps (DeepSpeed ZeRO-2)"):
            ours = learner_rate(model_dir, samples, args)
        if not args.cpu:
            import torch

            torch.cuda.empty_cache()
        with console.status("bare torch steps"):
            bare = bare_rate(model_dir, samples, args)
    count = parameter_count(FAMILIES[args.family], scale)
    params = f"{count / 1e9:.2f}B parameters" if count > 1e8 else f"{count / 1e6:.1f}M parameters"
    table = Table(title=f"gpu_smoke: {args.family} {scale} ({params}), {machine}")
    for column in ("", "tokens/s", "peak GiB", "distributed backend"):
        table.add_column(column, justify="right")
    table.add_row("droidrl learner (ZeRO-2)", f"{ours['tokens_per_s']:.0f}", f"{ours['peak_gib']:.1f}", ours["backend"])
    table.add_row("bare torch + AdamW", f"{bare['tokens_per_s']:.0f}", f"{bare['peak_gib']:.1f}", bare["backend"])
    console.print(table)
    ratio = ours["tokens_per_s"] / bare["tokens_per_s"]
    tokens = sum(s.length for s in samples)
    console.print(
        f"learner / bare tokens/s: {ratio:.2f}  ({args.samples} samples x {tokens // args.samples} tokens, "
        f"{args.steps} timed steps each, {time.perf_counter() - started:.0f} s in all)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
