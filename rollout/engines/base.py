"""The `Engine` contract every inference engine meets: exact token ids in, ids + logprobs + version out.

Engines never see text. The agent loop owns tokenization, so the ids an engine produced are exactly
the ids that train, and `update_weights` swaps the policy without dropping requests in flight.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np

FinishReason = Literal["stop", "length", "abort"]


@dataclass(frozen=True)
class SamplingParams:
    """How to sample one completion; `stop_token_ids` end it (the id is kept in the output, as vLLM does)."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1  # -1: no top-k cut
    max_tokens: int = 256
    stop_token_ids: tuple[int, ...] = ()
    seed: int | None = None  # per-request seed, for reproducible sampling

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"sampling.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"sampling.top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ValueError(f"sampling.max_tokens must be >= 1, got {self.max_tokens}")


@dataclass(frozen=True)
class Completion:
    """One generated response: its token ids, the sampling logprob of each, and the policy version of each.

    `versions[i]` is the policy version that sampled token i: a request that spans a weight update
    has tokens from two versions, and the trainer sees exactly which.
    """

    token_ids: list[int]
    logprobs: list[float]
    versions: list[int]
    finish_reason: FinishReason
    engine: str = ""  # which engine produced it (router stickiness, debugging)
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (len(self.token_ids) == len(self.logprobs) == len(self.versions)):
            raise ValueError(
                f"completion lengths differ: {len(self.token_ids)} ids, {len(self.logprobs)} logprobs, "
                f"{len(self.versions)} versions"
            )

    @property
    def version(self) -> int:
        """The oldest policy version among its tokens (what a staleness bound must count)."""
        return min(self.versions) if self.versions else -1


@runtime_checkable
class Engine(Protocol):
    """An inference engine holding one copy of the policy."""

    name: str

    @property
    def version(self) -> int:
        """The policy version of the weights now loaded."""
        ...

    async def generate(
        self,
        prompt_ids: list[int],
        sampling: SamplingParams,
        images: list[np.ndarray] | None = None,
        session: str | None = None,
    ) -> Completion:
        """Sample one completion for exact `prompt_ids` (with images for a vision model).

        `session` names the episode, so a router can keep its turns on one engine (warm prefix cache).
        """
        ...

    async def update_weights(self, source: Path, version: int) -> None:
        """Load new weights (a directory of safetensors in HF naming) and report `version` from now on.

        Requests in flight are paused, not dropped: they continue with the new weights, and the
        tokens sampled after the update carry the new version.
        """
        ...

    async def close(self) -> None:
        """Free the engine's resources."""
        ...
