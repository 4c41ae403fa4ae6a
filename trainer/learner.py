"""The DeepSpeed learner: a Hugging Face causal LM under ZeRO-2/3 that recomputes logprobs and takes policy steps.

One `train_step(samples)` is one optimizer step (one policy version): the step-wise samples are packed
into micro-batches under a token budget, each micro-batch's loss is normalised by the token (or
sequence) count of the whole step, so accumulating the micro-batch gradients gives exactly the
full-batch gradient, then DeepSpeed clips and applies AdamW. DeepSpeed runs with
`managed_gradient_accumulation=False`: the step is the accumulation boundary, whatever the number of
micro-batches the packing produced. On CPU it runs with `DS_ACCELERATOR=cpu`, gloo and float32; on
GPU with NCCL and bf16.

Optional parts: a frozen reference policy for the KL term (`loss.kl_coef > 0`), LoRA adapters (peft;
only the adapters train, exports are merged full weights), and vision-language samples whose
screenshots become processor inputs per micro-batch (the vision tower frozen by default).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import math
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from droidrl.algorithms.config import LossConfig
from droidrl.algorithms.losses import policy_loss
from droidrl.models.scoring import ImageInputs, expand_images, load_image_processor, mrope_positions
from droidrl.models.vision import vision_family
from droidrl.rollout.engines.weight_sync import write_weights
from droidrl.trainer.learner_config import (  # noqa: F401  (re-exported: the learner's public config)
    LORA_ADAPTER,
    LORA_TARGETS,
    LearnerConfig,
    lr_factor,
)
from droidrl.trainer.samples import MicroBatch, StepSample, pack_micro_batches

log = logging.getLogger(__name__)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def use_gpu() -> bool:
    """Train on CUDA when a GPU is there and DS_ACCELERATOR does not say cpu."""
    return torch.cuda.is_available() and os.environ.get("DS_ACCELERATOR", "cuda") != "cpu"


def init_distributed() -> None:
    """Initialise torch.distributed for DeepSpeed (once per process).

    Launched by a cluster launcher (RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT set), it joins that
    group; alone it makes a group of one on a free local port. gloo on CPU, NCCL on GPU.
    """
    if not use_gpu():
        # Must be set before deepspeed picks its accelerator (at first use), or it looks for CUDA.
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    import deepspeed
    import torch.distributed as dist

    if dist.is_initialized():
        return
    alone = "RANK" not in os.environ
    if alone:
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1")
    # Alone, the port is picked free and bound a moment later: on a busy machine another process can take it in
    # between (EADDRINUSE), so a group of one tries a few fresh ports. A launched rank keeps its MASTER_PORT.
    for attempt in range(5 if alone else 1):
        if alone:
            os.environ["MASTER_PORT"] = str(_free_port())
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):  # DeepSpeed print()s "... shm_comm_op built successfully"
                deepspeed.init_distributed(dist_backend="nccl" if use_gpu() else "gloo", verbose=False)
        except dist.DistNetworkError as error:
            if not alone or "EADDRINUSE" not in str(error) or attempt == 4:
                raise
            log.debug("port %s was taken before the process group bound it; trying another", os.environ["MASTER_PORT"])
            continue
        finally:
            for line in printed.getvalue().splitlines():
                log.debug("deepspeed: %s", line)
        return


def load_hf_model(path: str, dtype: torch.dtype) -> Any:
    """A causal LM, or an image-text-to-text model when the config has a vision tower."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText

    if getattr(AutoConfig.from_pretrained(path), "vision_config", None) is not None:
        return AutoModelForImageTextToText.from_pretrained(path, dtype=dtype)
    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype)


def sequence_logprobs(model: Any, batch: MicroBatch) -> torch.Tensor:
    """log p(token t + 1 | tokens <= t) for every position of `batch`: (rows, width - 1), float32.

    The same numbers the engines store while sampling: log-softmax of the raw float logits. Only the
    columns where some row has a response token are computed (0 elsewhere): a GUI agent's prompt is
    thousands of tokens and its response tens, so the (rows, width, vocab) logits of the prompt would
    cost most of the step's time and memory for nothing.
    """
    columns = torch.nonzero(batch.response_mask.sum(0) > 0)[:, 0]  # position t predicts token t + 1
    # Rows are right-padded, so the causal mask alone keeps every real token from seeing padding (which
    # only comes after it); without an explicit mask SDPA can take its fused causal kernel instead of
    # materialising (rows, heads, width, width) scores. Padding positions' logits are never read.
    logits = model(
        input_ids=batch.input_ids,
        attention_mask=None,
        use_cache=False,
        logits_to_keep=columns,
        **batch.vision_inputs(),
    ).logits.float()
    targets = batch.input_ids[:, 1:][:, columns]
    # gather - logsumexp: the log-softmax of the sampled token without a second (rows, columns, vocab) tensor.
    picked = logits.gather(-1, targets[..., None])[..., 0] - torch.logsumexp(logits, dim=-1)
    out = torch.zeros(batch.response_mask.shape, dtype=picked.dtype, device=picked.device)
    out[:, columns] = picked
    return out


def merge_lora(state: dict[str, torch.Tensor], scaling: float) -> dict[str, torch.Tensor]:
    """A peft LoRA model's state dict as the plain model's: W + scaling * B @ A under the Hugging Face names."""
    prefix = "base_model.model."
    merged = {
        name.removeprefix(prefix).replace(".base_layer.", "."): tensor
        for name, tensor in state.items()
        if ".lora_" not in name
    }
    for name, lora_a in state.items():
        if f".lora_A.{LORA_ADAPTER}." not in name:
            continue
        module = name.split(".lora_A.")[0]
        lora_b = state[f"{module}.lora_B.{LORA_ADAPTER}.weight"]
        target = module.removeprefix(prefix) + ".weight"
        base = merged[target]
        merged[target] = (base.float() + scaling * (lora_b.float() @ lora_a.float())).to(base.dtype)
    return merged


class Learner:
    """A DeepSpeed engine over a Hugging Face causal LM, trained on step-wise samples.

    Alone it is a group of one; under a launcher (cluster.learner_group) each rank builds one and gets
    its share of the samples: the loss normalisers are over the whole step and every rank runs the
    same number of micro-batches (short ranks add zero-weight passes), so the ranks' gradients add up
    to the single-process one. `version` counts optimizer steps from `config.version`.
    """

    def __init__(self, config: LearnerConfig) -> None:
        init_distributed()
        import deepspeed

        self.config = config
        self.device = torch.device("cuda", torch.cuda.current_device()) if use_gpu() else torch.device("cpu")
        self.bf16 = config.precision == "bf16" or (config.precision == "auto" and use_gpu())
        torch.manual_seed(config.seed)
        model = load_hf_model(config.model, torch.float32)
        model.config.use_cache = False
        self.hf_model = model  # the Hugging Face module (under LoRA, the one peft injected its layers into)
        if config.gradient_checkpointing:
            # Non-reentrant checkpointing works with inputs that need no grad and with ZeRO-3's hooks.
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if config.freeze_vision:
            for name, param in model.named_parameters():
                if "visual" in name.split("."):
                    param.requires_grad_(False)
        if config.lora:
            model = self._add_lora(model)
        self.pad_id = int(getattr(self.hf_model.config, "pad_token_id", None) or 0)
        # Fails here for a vision architecture droidrl has no family for (models/vision.py), before any step.
        self.vision_family = vision_family(self.hf_model.config)
        family = self.vision_family
        self.image_token_id: int | None = family.image_token_id(self.hf_model.config) if family else None
        self._image_processor: Any = None  # loaded with the first vision sample
        # The KL term's reference: the initial policy, frozen. Under LoRA it is the same module with its
        # adapters switched off (no copy); otherwise a second copy, without optimizer state.
        self.reference: Any = None
        if config.loss.kl_coef > 0 and not config.lora:
            self.reference = load_hf_model(config.model, torch.bfloat16 if self.bf16 else torch.float32)
            self.reference.to(self.device).eval().requires_grad_(False)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            params, lr=config.lr, betas=config.betas, eps=config.adam_eps, weight_decay=config.weight_decay
        )
        self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=model,
            optimizer=optimizer,
            lr_scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(step, config)),
            config=self.deepspeed_config(),
        )
        self.version = config.version
        self.steps = 0

    def _add_lora(self, model: Any) -> Any:
        from peft import LoraConfig, get_peft_model

        config = self.config
        lora = LoraConfig(
            r=config.lora_rank,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=list(config.lora_target_modules),
            # The vision tower has MLP projections of the same names; a frozen tower gets no adapters.
            exclude_modules=r".*\.visual\..*" if config.freeze_vision else None,
            bias="none",
        )
        try:
            # get_peft_model freezes every parameter but the adapters.
            return get_peft_model(model, lora, adapter_name=LORA_ADAPTER)
        except ValueError as error:
            raise ValueError(
                f"trainer.lora_target_modules={list(config.lora_target_modules)} does not fit {config.model} "
                f"({error}); name the model's linear layers, e.g. q_proj, v_proj"
            ) from error

    def deepspeed_config(self) -> dict[str, Any]:
        """The DeepSpeed config this learner runs with."""
        config = self.config
        zero: dict[str, Any] = {"stage": config.zero_stage, "overlap_comm": False, "contiguous_gradients": True}
        if config.zero_stage == 3:
            # Export and logprob passes gather full weights anyway; keep small models unpartitioned.
            zero["stage3_param_persistence_threshold"] = 0
        return {
            "train_micro_batch_size_per_gpu": 1,  # nominal: the packing sets the real micro-batches
            "gradient_accumulation_steps": 1,
            "managed_gradient_accumulation": False,  # every step() is the boundary, however many backwards
            "gradient_clipping": config.grad_clip,
            "zero_optimization": zero,
            "bf16": {"enabled": self.bf16},
            "zero_allow_untested_optimizer": True,  # torch AdamW: DeepSpeed's fused Adam needs CUDA ops
            "steps_per_print": 1 << 30,
            "wall_clock_breakdown": False,
        }

    @property
    def model(self) -> Any:
        """The trained module (partitioned under ZeRO-3; a peft model under LoRA)."""
        return self.engine.module

    def micro_batches(self, samples: Sequence[StepSample]) -> list[MicroBatch]:
        """`samples` packed under the config's token budget, with their images as model inputs.

        Image placeholders are expanded to the patch counts first (the packing budget counts the real
        context) and each micro-batch gets the pixels, patch grids and 3D positions of its rows.
        """
        vision: list[ImageInputs] | None = None
        if self.image_token_id is not None:
            token = self.image_token_id
            vision = [
                expand_images(s.prompt_ids, s.images, self._processor(), token, self.vision_family)
                if s.images or token in s.prompt_ids
                else ImageInputs(list(s.prompt_ids), None, None)
                for s in samples
            ]
            samples = [
                dataclasses.replace(s, prompt_ids=v.ids, images=[]) for s, v in zip(samples, vision, strict=True)
            ]
        elif any(s.images for s in samples):
            raise ValueError(f"samples hold images but {self.config.model} is text-only; train a vision model")
        batches = pack_micro_batches(
            samples, self.config.max_tokens_per_micro_batch, self.pad_id, self.config.max_rows_per_micro_batch
        )
        if vision is not None:
            for batch in batches:
                self._add_vision(batch, [vision[i] for i in batch.indices])
        return batches

    def _processor(self) -> Any:
        if self._image_processor is None:
            self._image_processor = load_image_processor(self.config.model)
        return self._image_processor

    def _add_vision(self, batch: MicroBatch, rows: list[ImageInputs]) -> None:
        """Give `batch` its rows' pixels and patch grids (in placeholder order) and explicit positions."""
        with_images = [v for v in rows if v.pixel_values is not None]
        if with_images:
            batch.pixel_values = torch.cat([v.pixel_values for v in with_images])
            batch.image_grid_thw = torch.cat([v.image_grid_thw for v in with_images])
            batch.position_ids = mrope_positions(
                self.hf_model, batch.input_ids, batch.attention_mask, batch.image_grid_thw
            )
        else:
            # Explicit text positions: else the model may reuse rope deltas it cached on an earlier call.
            width = batch.input_ids.shape[1]
            batch.position_ids = torch.arange(width).expand(batch.input_ids.shape[0], width).clone()

    def _steps(self, batches: list[MicroBatch]) -> int:
        """Micro-batches every rank runs this step: the most any rank has (collectives must pair up)."""
        return int(self._all_reduce([float(len(batches))], "max")[0])

    def _all_reduce(self, values: list[float], op: str) -> list[float]:
        import torch.distributed as dist

        if not dist.is_initialized() or dist.get_world_size() == 1:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
        return tensor.cpu().tolist()

    @torch.no_grad()
    def recompute_logprobs(self, samples: Sequence[StepSample]) -> list[list[float]]:
        """The current policy's logprob of each response token; also stored as each sample's `old_logprobs`."""
        was_training = self.engine.training
        self.engine.eval()
        try:
            batches = self.micro_batches(samples)
            for i in range(self._steps(batches)):
                if i >= len(batches):  # another rank has more: a pass that keeps ZeRO-3's gathers paired
                    sequence_logprobs(self.engine, batches[-1].to(self.device))
                    continue
                batch = batches[i].to(self.device)
                logprobs = sequence_logprobs(self.engine, batch).cpu()
                mask = batch.response_mask.cpu() > 0
                for row, index in enumerate(batch.indices):
                    samples[index].old_logprobs = logprobs[row][mask[row]].tolist()
        finally:
            self.engine.train(was_training)
        return [list(s.old_logprobs or []) for s in samples]

    @torch.no_grad()
    def reference_logprobs(self, batch: MicroBatch) -> torch.Tensor:
        """The reference policy's logprobs of `batch` (rows, width - 1): the initial weights, frozen."""
        if self.reference is not None:
            return sequence_logprobs(self.reference, batch).float()
        if not self.config.lora:
            raise ValueError("reference_logprobs needs algorithm.loss.kl_coef > 0 (the learner holds no reference)")
        was_training = self.engine.training
        self.engine.eval()  # no LoRA dropout on the reference: it is the base model
        try:
            with self.model.disable_adapter():
                return sequence_logprobs(self.engine, batch)
        finally:
            self.engine.train(was_training)

    def train_step(self, samples: Sequence[StepSample]) -> dict[str, float]:
        """One optimizer step on `samples` (one policy version); returns the step's metrics."""
        if not samples:
            raise ValueError("train_step got no samples; pass at least one StepSample")
        started = time.perf_counter()
        if any(s.old_logprobs is None for s in samples):
            if self.config.recompute_old_logprobs:
                self.recompute_logprobs(samples)
            else:
                for sample in samples:
                    sample.old_logprobs = list(sample.rollout_logprobs)
        logprob_s = time.perf_counter() - started
        batches = self.micro_batches(samples)
        num_tokens, num_seqs, longest = self._normalisers(samples)
        loss_config = self._loss_config(longest)
        use_kl = loss_config.kl_coef > 0
        self.engine.train()
        totals: dict[str, float] = {}
        for i in range(self._steps(batches)):
            padding = i >= len(batches)
            batch = batches[min(i, len(batches) - 1)].to(self.device)
            ref_logprobs = self.reference_logprobs(batch) if use_kl else None
            logprobs = sequence_logprobs(self.engine, batch)
            if padding:
                # Another rank has more micro-batches: a zero-weight backward keeps the collectives paired.
                self.engine.backward(logprobs.sum() * 0.0, scale_wrt_gas=False)
                continue
            loss, metrics = policy_loss(
                logprobs,
                batch.old_logprobs,
                batch.advantages,
                batch.response_mask,
                loss_config,
                rollout_logprobs=batch.rollout_logprobs,
                ref_logprobs=ref_logprobs,
                num_tokens=num_tokens,
                num_seqs=num_seqs,
            )
            # The loss is already a share of the step's mean: no division by the accumulation count.
            self.engine.backward(loss, scale_wrt_gas=False)
            _accumulate(totals, metrics, batch.tokens)
        lr = float(self.optimizer.param_groups[0]["lr"])  # the rate this step applies (the scheduler moves it)
        self.engine.step()
        self.steps += 1
        self.version += 1
        tokens = sum(len(s.response_ids) for s in samples)
        result = _finish(totals, tokens)
        mismatch = [abs(o - r) for s in samples for o, r in zip(s.old_logprobs or [], s.rollout_logprobs, strict=True)]
        grad_norm = self.engine.get_global_grad_norm()
        result.update(
            grad_norm=float(grad_norm) if grad_norm is not None else float("nan"),
            lr=lr,
            samples=float(len(samples)),
            tokens=float(tokens),
            micro_batches=float(len(batches)),
            old_rollout_logprob_diff_max=max(mismatch) if mismatch else 0.0,
            version=float(self.version),
            logprob_s=logprob_s,
            step_s=time.perf_counter() - started,
        )
        return result

    def sft_step(self, samples: Sequence[StepSample]) -> dict[str, float]:
        """One behaviour-cloning step on `samples` (one policy version): token-mean NLL of the response tokens.

        The same packing, accumulation and DeepSpeed step as `train_step`: each micro-batch's loss is
        its share of the step's token mean, so micro-batching leaves the gradient unchanged. Advantages
        and logprobs of the samples are not read.
        """
        if not samples:
            raise ValueError("sft_step got no samples; pass at least one StepSample")
        started = time.perf_counter()
        batches = self.micro_batches(samples)
        num_tokens, _, _ = self._normalisers(samples)
        self.engine.train()
        total_nll = 0.0
        for i in range(self._steps(batches)):
            padding = i >= len(batches)
            batch = batches[min(i, len(batches) - 1)].to(self.device)
            logprobs = sequence_logprobs(self.engine, batch)
            loss = -(logprobs * batch.response_mask).sum() / num_tokens
            self.engine.backward(loss * 0.0 if padding else loss, scale_wrt_gas=False)
            if not padding:
                total_nll += float(loss.detach())
        lr = float(self.optimizer.param_groups[0]["lr"])
        self.engine.step()
        self.steps += 1
        self.version += 1
        grad_norm = self.engine.get_global_grad_norm()
        return {
            "loss": total_nll,
            "nll": total_nll,
            "grad_norm": float(grad_norm) if grad_norm is not None else float("nan"),
            "lr": lr,
            "samples": float(len(samples)),
            "tokens": float(sum(len(s.response_ids) for s in samples)),
            "micro_batches": float(len(batches)),
            "version": float(self.version),
            "step_s": time.perf_counter() - started,
        }

    def _normalisers(self, samples: Sequence[StepSample]) -> tuple[float, float, int]:
        """Response tokens and sequences of the whole step per rank, and its longest response.

        DeepSpeed averages gradients over ranks, so each rank divides by the step's counts / world size:
        the ranks' losses then add up to the single-process loss of the whole step.
        """
        import torch.distributed as dist

        world = dist.get_world_size() if dist.is_initialized() else 1
        tokens, seqs = self._all_reduce([sum(len(s.response_ids) for s in samples), len(samples)], "sum")
        (longest,) = self._all_reduce([max((len(s.response_ids) for s in samples), default=0)], "max")
        return tokens / world, seqs / world, int(longest)

    def _loss_config(self, longest: int) -> LossConfig:
        config = self.config.loss
        if config.agg_mode == "seq-mean-token-sum-norm" and config.loss_scale_factor is None:
            # "The padded length" must be the step's, not each micro-batch's, or packing changes the gradient.
            return dataclasses.replace(config, loss_scale_factor=float(longest))
        return config

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The full weights in Hugging Face names, on CPU (gathered from the ZeRO-3 partitions; LoRA merged)."""
        if self.config.zero_stage == 3:
            gathered = self.engine._zero3_consolidated_16bit_state_dict() or {}  # empty except on rank 0
            state = {k: v.detach().cpu() for k, v in gathered.items()}
        else:
            state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        if self.config.lora and state:
            return merge_lora(state, self.config.lora_alpha / self.config.lora_rank)
        return state

    def export_weights(self, out_dir: Path) -> Path:
        """Write the current weights to the new directory `out_dir` as a complete HF model dir; returns it.

        Safetensors in Hugging Face names plus the source model's config and tokenizer, written
        atomically (rollout.engines.weight_sync.write_weights); the engines load it with
        `update_weights(out_dir, learner.version)`.
        """
        import torch.distributed as dist

        weights = self.state_dict()
        rank = dist.get_rank() if dist.is_initialized() else 0
        if rank == 0:
            write_weights(weights, Path(out_dir), copy_from=Path(self.config.model))
        return Path(out_dir)

    def skip_step(self) -> None:
        """A step with nothing to learn from (every group muted): the policy version moves on, the weights do not."""
        self.version += 1

    async def sync_weights(self, sync: Any) -> float:
        """Publish the current weights as `self.version` through a weight sync (FileWeightSync); returns seconds."""
        return await sync.update_weights(self.state_dict(), self.version)

    def save_checkpoint(self, root: Path | str, step: int, **parts: Any) -> Path:
        """The whole run at `step` (checkpoints.run_state.save_checkpoint with this learner); `parts`: sampler, ..."""
        from droidrl.checkpoints.run_state import save_checkpoint

        return save_checkpoint(root, step, self, **parts)

    def load_checkpoint(
        self,
        path: Path | str,
        sampler: Any = None,
        replay: Any = None,
        restore_rng: bool = True,
        verify: str = "sha256",
    ) -> Any:
        """checkpoints.run_state.load_checkpoint into this learner, `sampler` and `replay`; returns the RunState."""
        from droidrl.checkpoints.run_state import load_checkpoint

        return load_checkpoint(path, self, sampler, replay, restore_rng=restore_rng, verify=verify)

    def close(self) -> None:
        """Free the DeepSpeed engine and the reference (the process group stays for the next learner)."""
        self.engine.destroy()
        self.reference = None


_SUMMED = ("loss", "pg_loss", "kl")  # each micro-batch's value is its share of the step's: they add up


def _accumulate(totals: dict[str, float], metrics: dict[str, float], tokens: int) -> None:
    """Fold one micro-batch's loss metrics in: sums, extremes, or token-weighted means."""
    for name, value in metrics.items():
        if name.endswith("_max"):
            totals[name] = max(totals.get(name, -math.inf), value)
        elif name.endswith("_min"):
            totals[name] = min(totals.get(name, math.inf), value)
        elif name in _SUMMED:
            totals[name] = totals.get(name, 0.0) + value
        else:
            totals[name] = totals.get(name, 0.0) + value * tokens


def _finish(totals: dict[str, float], tokens: int) -> dict[str, float]:
    """The step's metrics: token-weighted sums become means over the step's response tokens."""
    return {
        name: value if name in _SUMMED or name.endswith(("_max", "_min")) else value / max(tokens, 1)
        for name, value in totals.items()
    }
