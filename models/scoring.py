"""Teacher-forced logprobs of response tokens under a model: the trainer's recomputation of old logprobs.

The same numbers an engine stores while sampling (log-softmax of the raw logits), computed in one
forward pass over prompt + response; on CPU in float32 they agree with the engine's to ~1e-6.
Vision prompts hold ONE placeholder per image (`<|image_pad|>` for Qwen2.5-VL, `<|image|>` for GLM-4.1V), as the
engines receive them: `expand_images` runs the image processor and widens each placeholder as the model's vision
family (models/vision.py) says.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from droidrl.models.vision import QWEN2_VL, VisionFamily, vision_family


@dataclass
class ImageInputs:
    """A vision prompt as the model reads it: placeholders expanded, pixels and patch grids in image order."""

    ids: list[int]  # the prompt ids with each image placeholder repeated once per merged patch
    pixel_values: Any  # torch tensor (total patches, channels * patch area), or None without images
    image_grid_thw: Any  # torch long tensor (images, 3): temporal, height and width patches, or None


@functools.lru_cache(maxsize=8)
def load_image_processor(path: str) -> Any:
    """The image processor saved with a model directory, on PIL (the fast one needs torchvision)."""
    from transformers import AutoImageProcessor

    try:
        return AutoImageProcessor.from_pretrained(path, backend="pil")
    except (OSError, ValueError) as error:
        raise ValueError(
            f"cannot load an image processor from {path!r} ({error}); the model directory needs a "
            "preprocessor_config.json (droidrl.models.presets.init_model('tiny-vl', ...) writes one)"
        ) from error


def expand_images(
    prompt_ids: Sequence[int],
    images: Sequence[np.ndarray],
    processor: Any,
    image_token_id: int,
    family: VisionFamily = QWEN2_VL,
) -> ImageInputs:
    """Run `processor` on `images` and repeat the i-th `image_token_id` of the prompt as `family` says.

    Qwen2-VL and GLM-4.1V repeat it once per merged patch. This is what vLLM does with a prompt that has one
    placeholder per image; the expanded ids are the model's real context (they count against max_model_len).
    """
    found = sum(1 for t in prompt_ids if t == image_token_id)
    if found != len(images):
        raise ValueError(
            f"the prompt has {found} image placeholder(s) (id {image_token_id}) but {len(images)} image(s) were "
            "given; put exactly one placeholder per image, in order (PromptBuilder does)"
        )
    if not images:
        return ImageInputs(list(prompt_ids), None, None)
    for index, image in enumerate(images):
        if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[-1] == 3):
            shape = getattr(image, "shape", type(image).__name__)
            raise ValueError(f"image {index} must be a uint8 HxWx3 numpy array, got {shape}")
    processed = processor(images=list(images), return_tensors="pt")
    grid = processed["image_grid_thw"]
    merge = int(getattr(processor, "merge_size", 2))
    counts = iter([family.tokens_per_image(row, merge) for row in grid])
    ids: list[int] = []
    for token in prompt_ids:
        ids.extend([token] * next(counts) if token == image_token_id else [token])
    return ImageInputs(ids, processed["pixel_values"], grid)


def mrope_positions(model: Any, ids: Any, mask: Any, image_grid_thw: Any) -> Any:
    """The model's 3D (time, height, width) position ids, shape (3, batch, length), from its vision family.

    Given explicitly so the model never falls back on the `rope_deltas` it caches between calls.
    """
    family = vision_family(model.config)
    if family is None:
        raise ValueError("mrope_positions needs a vision-language model; this one is text-only")
    return family.positions(model, ids, mask, image_grid_thw)


def score(
    model: Any,
    prompt_ids: list[int],
    response_ids: list[int],
    images: Sequence[np.ndarray] | None = None,
    processor: Any = None,
) -> list[float]:
    """Logprob of each response token given the prompt (and its images) and the response tokens before it."""
    return score_batch(model, [(prompt_ids, response_ids)], images=[images or []], processor=processor)[0]


def score_batch(
    model: Any,
    pairs: list[tuple[list[int], list[int]]],
    pad_id: int = 0,
    images: Sequence[Sequence[np.ndarray] | None] | None = None,
    processor: Any = None,
) -> list[list[float]]:
    """`score` for many (prompt, response) pairs in one forward pass.

    Rows are padded on the right: a causal model never attends to later positions, so the padding
    changes no logit that is read and position ids stay 0, 1, 2, ... as in generation. `images[i]`
    are the images of prompt i (one placeholder each); `processor` defaults to the one saved with
    the model.
    """
    import torch

    if not pairs:
        return []
    for prompt, response in pairs:
        if not prompt or not response:
            raise ValueError(
                f"score needs a non-empty prompt and response; got {len(prompt)} prompt and "
                f"{len(response)} response tokens"
            )
    if images is not None and len(images) != len(pairs):
        raise ValueError(f"score_batch got {len(pairs)} pairs but {len(images)} image lists; give one list per pair")
    per_pair = [list(i or []) for i in images] if images is not None else [[] for _ in pairs]
    vision = None
    if any(per_pair):
        family = vision_family(model.config) if hasattr(model.config, "image_token_id") else None
        if family is None:
            raise ValueError("score_batch got images but the model is text-only; score a vision model or drop them")
        if processor is None:
            processor = load_image_processor(str(model.config._name_or_path or model.name_or_path))
        token = family.image_token_id(model.config)
        vision = [
            expand_images(prompt, imgs, processor, token, family)
            for (prompt, _), imgs in zip(pairs, per_pair, strict=True)
        ]
        prompts = [v.ids for v in vision]
    else:
        prompts = [list(prompt) for prompt, _ in pairs]
    sequences = [prompt + list(response) for prompt, (_, response) in zip(prompts, pairs, strict=True)]
    width = max(len(s) for s in sequences)
    ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = torch.tensor(sequence)
        mask[row, : len(sequence)] = 1
    extra: dict[str, Any] = {}
    if vision is not None:
        with_images = [v for v in vision if v.pixel_values is not None]
        grid = torch.cat([v.image_grid_thw for v in with_images])
        extra = {
            "pixel_values": torch.cat([v.pixel_values for v in with_images]),
            "image_grid_thw": grid,
            "position_ids": mrope_positions(model, ids, mask, grid),
        }
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, use_cache=False, **extra).logits.float()
    results: list[list[float]] = []
    for row, (prompt, (_, response)) in enumerate(zip(prompts, pairs, strict=True)):
        # The logits at position i predict token i + 1.
        start = len(prompt) - 1
        rows = torch.log_softmax(logits[row, start : start + len(response)], dim=-1)
        picked = rows.gather(-1, torch.tensor(response, dtype=torch.long)[:, None])[:, 0]
        results.append(picked.tolist())
    return results
