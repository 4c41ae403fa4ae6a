"""Step-wise training samples from rollout turns, and their packing into padded micro-batches under a token budget.

One agent turn is one sample: prompt ids + response ids, the engine's logprob of each response token, and
the advantage of the episode it belongs to (broadcast to every turn). Tensors are aligned with the targets
(`input_ids[:, 1:]`): position t of a row holds what the logits at t say about token t + 1.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from droidrl.rollout.trajectory import Episode, Group, Turn


@dataclass
class StepSample:
    """One turn to train on; `old_logprobs` are the trainer's own (filled by `Learner.recompute_logprobs`)."""

    prompt_ids: list[int]
    response_ids: list[int]
    rollout_logprobs: list[float]  # the engine's, one per response token
    advantage: float
    versions: list[int] = field(default_factory=list)  # engine policy version of each response token
    old_logprobs: list[float] | None = None
    episode_id: str = ""
    task: str = ""
    turn: int = 0
    # The screenshots the prompt shows (uint8 HxWx3), one per image placeholder in `prompt_ids`, in order.
    images: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.prompt_ids or not self.response_ids:
            raise ValueError(
                f"sample {self.episode_id}#{self.turn} needs a non-empty prompt and response; got "
                f"{len(self.prompt_ids)} prompt and {len(self.response_ids)} response tokens"
            )
        if len(self.rollout_logprobs) != len(self.response_ids):
            raise ValueError(
                f"sample {self.episode_id}#{self.turn}: {len(self.response_ids)} response tokens but "
                f"{len(self.rollout_logprobs)} rollout logprobs; give one logprob per response token"
            )

    @property
    def length(self) -> int:
        """Tokens in the model's input: prompt + response."""
        return len(self.prompt_ids) + len(self.response_ids)


def sample_from_turn(
    turn: Turn, advantage: float, episode_id: str = "", task: str = "", images: Sequence[np.ndarray] = ()
) -> StepSample:
    """The training sample of one agent turn; `images` are the screenshots its prompt shows (`turn.image_turns`)."""
    return StepSample(
        prompt_ids=list(turn.prompt_ids),
        response_ids=list(turn.response_ids),
        rollout_logprobs=list(turn.logprobs),
        advantage=float(advantage),
        versions=list(turn.versions),
        episode_id=episode_id,
        task=task,
        turn=turn.index,
        images=list(images),
    )


def samples_from_episode(episode: Episode, advantage: float) -> list[StepSample]:
    """Every turn of `episode` as a sample carrying the episode's advantage (turns with no response are skipped).

    A turn whose prompt showed screenshots gets them back, decoded from the episode's PNGs.
    """
    return [
        sample_from_turn(turn, advantage, episode.episode_id, episode.task, _turn_images(episode, turn))
        for turn in episode.turns
        if turn.response_ids
    ]


def _turn_images(episode: Episode, turn: Turn) -> list[np.ndarray]:
    from PIL import Image

    images = []
    for screen in turn.image_turns:
        png = episode.screenshots[screen] if screen < len(episode.screenshots) else None
        if png is None:
            raise ValueError(
                f"episode {episode.episode_id} turn {turn.index} showed screen {screen} but its screenshot was not "
                "kept; keep the screenshots of image turns to train a vision model on them"
            )
        images.append(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")))  # as the prompt decoded it
    return images


def samples_from_groups(
    groups: Sequence[Group], advantages: Sequence[Sequence[float]] | Mapping[str, float]
) -> list[StepSample]:
    """Samples of every episode of `groups`.

    `advantages` is either one list per group (one value per episode, in episode order) or a mapping
    episode_id -> advantage, as the algorithms compute them.
    """
    samples: list[StepSample] = []
    for g, group in enumerate(groups):
        for e, episode in enumerate(group.episodes):
            if isinstance(advantages, Mapping):
                if episode.episode_id not in advantages:
                    raise KeyError(f"no advantage for episode {episode.episode_id!r} of group {group.group_id}")
                advantage = advantages[episode.episode_id]
            else:
                if len(advantages[g]) != len(group.episodes):
                    raise ValueError(
                        f"group {group.group_id} has {len(group.episodes)} episodes but {len(advantages[g])} "
                        "advantages; give one per episode"
                    )
                advantage = advantages[g][e]
            samples.extend(samples_from_episode(episode, advantage))
    return samples


@dataclass
class MicroBatch:
    """Right-padded rows; all (rows, width - 1) tensors are aligned with the targets `input_ids[:, 1:]`."""

    indices: list[int]  # each row's position in the sample list it was built from
    input_ids: torch.Tensor  # (rows, width) long
    attention_mask: torch.Tensor  # (rows, width) long
    response_mask: torch.Tensor  # (rows, width - 1) float: 1 where the target is a response token
    rollout_logprobs: torch.Tensor  # (rows, width - 1) float, 0 outside the response
    old_logprobs: torch.Tensor | None  # (rows, width - 1) float, or None when not recomputed yet
    advantages: torch.Tensor  # (rows, width - 1) float: the sample's advantage on its response tokens
    # Vision-language models only (set by the learner): the rows' images in placeholder order and positions.
    pixel_values: torch.Tensor | None = None  # (patches, channels * patch area)
    image_grid_thw: torch.Tensor | None = None  # (images, 3) long
    position_ids: torch.Tensor | None = None  # (3, rows, width) multimodal RoPE, or (rows, width)

    @property
    def tokens(self) -> int:
        """Response tokens (the ones the loss reads)."""
        return int(self.response_mask.sum())

    def vision_inputs(self) -> dict[str, torch.Tensor]:
        """The extra keyword inputs of a vision-language forward pass (empty for text)."""
        names = ("pixel_values", "image_grid_thw", "position_ids")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    def to(self, device: Any) -> MicroBatch:
        """The same batch on `device`."""
        moved = {
            name: value.to(device) if isinstance(value, torch.Tensor) else value
            for name, value in self.__dict__.items()
        }
        return MicroBatch(**moved)


def build_micro_batch(samples: Sequence[StepSample], indices: Sequence[int], pad_id: int = 0) -> MicroBatch:
    """Pad `samples[i] for i in indices` on the right into one micro-batch.

    Right padding keeps position ids 0, 1, 2, ... as in generation, and a causal model never attends
    to the padding after a row's end, so no logit that is read changes.
    """
    rows = [samples[i] for i in indices]
    if not rows:
        raise ValueError("build_micro_batch got no samples")
    width = max(s.length for s in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    response = torch.zeros((len(rows), width - 1))
    rollout = torch.zeros((len(rows), width - 1))
    advantages = torch.zeros((len(rows), width - 1))
    has_old = all(s.old_logprobs is not None for s in rows)
    old = torch.zeros((len(rows), width - 1)) if has_old else None
    for row, sample in enumerate(rows):
        sequence = sample.prompt_ids + sample.response_ids
        ids[row, : len(sequence)] = torch.tensor(sequence)
        mask[row, : len(sequence)] = 1
        # The logits at position t predict token t + 1: the response's targets start at prompt length - 1.
        span = slice(len(sample.prompt_ids) - 1, len(sequence) - 1)
        response[row, span] = 1.0
        rollout[row, span] = torch.tensor(sample.rollout_logprobs)
        advantages[row, span] = sample.advantage
        if old is not None:
            old[row, span] = torch.tensor(sample.old_logprobs)
    return MicroBatch(list(indices), ids, mask, response, rollout, old, advantages)


def pack_micro_batches(
    samples: Sequence[StepSample], max_tokens: int, pad_id: int = 0, max_rows: int | None = None
) -> list[MicroBatch]:
    """Micro-batches of whole samples whose padded size (rows x longest row) stays within `max_tokens`.

    Samples are sorted by length, longest first, so rows of similar length share a batch and little is
    padding. A sample longer than `max_tokens` alone gets a micro-batch of its own (it cannot be split).
    `max_rows` additionally caps the rows per micro-batch.
    """
    if max_tokens < 1:
        raise ValueError(f"trainer.max_tokens_per_micro_batch must be >= 1, got {max_tokens}")
    order = sorted(range(len(samples)), key=lambda i: (-samples[i].length, i))
    groups: list[list[int]] = []
    for index in order:
        current = groups[-1] if groups else None
        # Rows arrive longest first, so the batch's width is its first row's length.
        fits = (
            current is not None
            and (len(current) + 1) * samples[current[0]].length <= max_tokens
            and (max_rows is None or len(current) < max_rows)
        )
        if fits:
            current.append(index)
        else:
            groups.append([index])
    return [build_micro_batch(samples, group, pad_id) for group in groups]
