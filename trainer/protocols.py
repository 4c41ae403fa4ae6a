"""What the training loop needs from its collaborators: the `Learner` contract (in-process or a Ray group).

`trainer.learner.Learner` (one DeepSpeed rank in this process) and `cluster.learner_group.LearnerGroup`
(ranks in Ray actors) both meet it; the loop sees only this. The engine contract is
`rollout.engines.base.Engine`, the device pool's `rollout.envpool.EnvPool`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from droidrl.trainer.samples import StepSample


class WeightSync(Protocol):
    """Publishes a learner's weights to the engines (rollout.engines.weight_sync.FileWeightSync)."""

    async def update_weights(self, weights: Any, version: int) -> float:
        """Send `weights` as policy `version`; returns seconds."""
        ...


class Learner(Protocol):
    """Trains the policy on step-wise samples and saves / restores its part of a checkpoint."""

    version: int  # optimizer steps taken (the policy version the engines serve after a sync)

    def train_step(self, samples: Sequence[StepSample]) -> dict[str, float]:
        """One optimizer step on `samples`; the step's metrics (loss, kl, grad_norm, ...)."""
        ...

    def skip_step(self) -> None:
        """A step with nothing to learn from: the version moves on, the weights do not."""
        ...

    async def sync_weights(self, sync: WeightSync) -> float:
        """Publish the current weights as `version`; returns seconds."""
        ...

    def export_weights(self, out_dir: Path) -> Path:
        """Write the current weights as a Hugging Face model directory."""
        ...

    def save_checkpoint(self, root: Path | str, step: int, **parts: Any) -> Path:
        """checkpoints.run_state.save_checkpoint with this learner (sampler, replay, ... in `parts`)."""
        ...

    def load_checkpoint(
        self,
        path: Path | str,
        sampler: Any = None,
        replay: Any = None,
        restore_rng: bool = True,
        verify: str = "sha256",
    ) -> Any:
        """checkpoints.run_state.load_checkpoint into this learner; returns the RunState."""
        ...

    def close(self) -> None:
        """Free the learner."""
        ...
