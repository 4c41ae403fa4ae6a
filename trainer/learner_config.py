"""The learner's configuration (the `trainer` section) and its learning-rate schedule; imports no torch.

Kept apart from trainer/learner.py so a config can be checked in well under a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from droidrl.algorithms.config import LossConfig
from droidrl.config.typed import ConfigError

LR_SCHEDULES = ("constant", "linear", "cosine")
# The attention and MLP projections of Qwen2-style (and Llama-style) decoder layers.
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
LORA_ADAPTER = "default"  # peft's adapter name
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class LearnerConfig:
    """How the learner trains.

    max_tokens_per_micro_batch bounds rows x longest row of one forward pass (memory); it does not
    change the gradient. lr_schedule: linear warmup over warmup_steps, then constant, or a linear
    or cosine decay to min_lr_ratio * lr at total_steps. precision "auto": bf16 on GPU, fp32 on CPU
    (CPU logprobs must match the engine's to ~1e-5, which bf16 rounding would hide). lora_rank > 0
    trains LoRA adapters (alpha / rank scaling) on lora_target_modules instead of the full model.
    """

    # The run fills these in: the policy it trains, the loss (`algorithm.loss`), the version, the run's seed.
    FILLED_BY_RUN: ClassVar[tuple[str, ...]] = ("model", "loss", "version", "seed")

    model: str = ""  # a Hugging Face model directory
    zero_stage: int = 2
    lr: float = 1e-6
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    total_steps: int | None = None  # needed by the linear and cosine schedules
    min_lr_ratio: float = 0.0
    grad_clip: float = 1.0  # max global grad norm; 0 turns clipping off
    max_tokens_per_micro_batch: int = 8192
    max_rows_per_micro_batch: int | None = None
    gradient_checkpointing: bool = False
    precision: str = "auto"
    freeze_vision: bool = True  # a vision-language model trains its language model only
    recompute_old_logprobs: bool = True  # False: the engine's logprobs serve as old logprobs (no TIS signal)
    loss: LossConfig = field(default_factory=LossConfig)
    version: int = 0  # the policy version of the weights in `model`
    seed: int = 0
    lora_rank: int = 0  # 0: full fine-tuning
    lora_alpha: float = 32.0
    lora_dropout: float = 0.0
    lora_target_modules: tuple[str, ...] = LORA_TARGETS

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:  # every wrong value at once, each naming its key
            raise ConfigError(problems)

    def problems(self) -> list[str]:
        """What is wrong with this config, one message per key (nan and inf are refused: nan passes `<`)."""
        problems: list[str] = []

        def check(ok: bool, message: str) -> None:
            if not ok:
                problems.append(message)

        for name in ("lr", "weight_decay", "adam_eps", "min_lr_ratio", "grad_clip", "lora_alpha", "lora_dropout"):
            value = getattr(self, name)
            check(math.isfinite(value), f"trainer.{name} must be a finite number, got {value!r}")
        if problems:
            return problems
        check(self.zero_stage in (0, 1, 2, 3), f"trainer.zero_stage must be 0, 1, 2 or 3, got {self.zero_stage}")
        check(self.lr > 0, f"trainer.lr must be > 0, got {self.lr}")
        check(self.weight_decay >= 0, f"trainer.weight_decay must be >= 0, got {self.weight_decay}")
        check(self.adam_eps > 0, f"trainer.adam_eps must be > 0, got {self.adam_eps}")
        check(
            len(self.betas) == 2 and all(math.isfinite(b) and 0 <= b < 1 for b in self.betas),
            f"trainer.betas must be two numbers in [0, 1), got {list(self.betas)!r}",
        )
        check(
            self.lr_schedule in LR_SCHEDULES,
            f"trainer.lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}",
        )
        check(self.warmup_steps >= 0, f"trainer.warmup_steps must be >= 0, got {self.warmup_steps}")
        check(
            self.total_steps is None or self.total_steps >= 1,
            f"trainer.total_steps must be >= 1 or null, got {self.total_steps}",
        )
        check(
            self.lr_schedule == "constant" or bool(self.total_steps),
            f"trainer.lr_schedule={self.lr_schedule!r} needs trainer.total_steps (the decay length)",
        )
        check(0 <= self.min_lr_ratio <= 1, f"trainer.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        check(
            self.precision in PRECISIONS,
            f"trainer.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}",
        )
        check(self.grad_clip >= 0, f"trainer.grad_clip must be >= 0 (0: no clipping), got {self.grad_clip}")
        check(
            self.max_tokens_per_micro_batch >= 1,
            f"trainer.max_tokens_per_micro_batch must be >= 1, got {self.max_tokens_per_micro_batch}",
        )
        check(
            self.max_rows_per_micro_batch is None or self.max_rows_per_micro_batch >= 1,
            f"trainer.max_rows_per_micro_batch must be >= 1 or null, got {self.max_rows_per_micro_batch}",
        )
        check(self.lora_rank >= 0, f"trainer.lora_rank must be >= 0 (0: no LoRA), got {self.lora_rank}")
        if self.lora_rank > 0:
            check(self.lora_alpha > 0, f"trainer.lora_alpha must be > 0, got {self.lora_alpha}")
            check(0 <= self.lora_dropout < 1, f"trainer.lora_dropout must be in [0, 1), got {self.lora_dropout}")
            check(
                bool(self.lora_target_modules),
                "trainer.lora_target_modules must name at least one module (e.g. q_proj)",
            )
        return problems

    @property
    def lora(self) -> bool:
        """Whether LoRA adapters train instead of the full model."""
        return self.lora_rank > 0


def lr_factor(step: int, config: LearnerConfig) -> float:
    """The learning-rate multiplier after `step` optimizer steps (warmup, then the schedule's decay)."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.lr_schedule == "constant":
        return 1.0
    span = max(1, (config.total_steps or 1) - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    decay = 1.0 - progress if config.lr_schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))
    return config.min_lr_ratio + (1.0 - config.min_lr_ratio) * decay
