"""Vision-language architectures behind one seam: how each family's prompts hold images and how its model reads them.

The engines, the learner and re-scoring (models/scoring.py) ask `vision_family(config)` for the image placeholder
token, the number of tokens an image becomes, and the 3D position ids; they never name an architecture. Adding
one (e.g. Qwen3-VL, UI-TARS) is one `VisionFamily` entry in FAMILIES.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class VisionFamily:
    """One vision-language architecture as droidrl drives it.

    A prompt holds ONE placeholder token per image (as vLLM receives it); `tokens_per_image` says how many
    copies it becomes for an image of a given patch grid; `positions` gives the model's position ids for the
    expanded ids (multimodal RoPE: shape (3, batch, length)).
    """

    name: str
    model_types: tuple[str, ...]  # config.model_type values of the checkpoints this family covers
    placeholder: str  # the token a chat template writes once per image
    positions: Callable[[Any, Any, Any, Any], Any]  # (model, ids, mask, image_grid_thw) -> position ids
    tokens_per_image: Callable[[Any, int], int]  # (grid_thw row, processor merge size) -> placeholder copies

    def image_token_id(self, config: Any) -> int:
        """The placeholder's id in this checkpoint (the config names it; tokenizers of a family agree)."""
        return int(config.image_token_id)


def _merged_patches(grid_thw: Any, merge: int) -> int:
    """One token per merge x merge block of patches: Qwen2-VL's and GLM-4.1V's spatial merge."""
    return int(grid_thw.prod()) // merge**2


def _rope_index_positions(model: Any, ids: Any, mask: Any, image_grid_thw: Any) -> Any:
    """Positions from the model's own `get_rope_index` (Qwen2-VL's 3D time/height/width scheme and its heirs)."""
    import torch

    token_types = (ids == int(model.config.image_token_id)).to(torch.int)  # 1 marks image tokens
    inner = model.model if hasattr(model.model, "get_rope_index") else model
    positions, _ = inner.get_rope_index(ids, token_types, image_grid_thw=image_grid_thw, attention_mask=mask)
    return positions


QWEN2_VL = VisionFamily(
    name="Qwen2-VL / Qwen2.5-VL",
    model_types=("qwen2_vl", "qwen2_5_vl"),
    placeholder="<|image_pad|>",
    positions=_rope_index_positions,
    tokens_per_image=_merged_patches,
)
# GLM-4.1V (MobileRL-9B, AutoGLM-Phone-9B): Qwen2-VL's patch merge and 3D RoPE (on half of each head), its own
# tokens; video frames would differ (timestamps between frames), images do not.
GLM4V = VisionFamily(
    name="GLM-4.1V",
    model_types=("glm4v",),
    placeholder="<|image|>",
    positions=_rope_index_positions,
    tokens_per_image=_merged_patches,
)
FAMILIES = (QWEN2_VL, GLM4V)


def vision_family(config: Any) -> VisionFamily | None:
    """The family of a model config; None for a text-only model.

    Raises ValueError for a vision-language architecture droidrl does not know, rather than feeding it another
    family's token layout.
    """
    if getattr(config, "vision_config", None) is None:
        return None
    model_type = getattr(config, "model_type", None)
    for family in FAMILIES:
        if model_type in family.model_types:
            return family
    known = ", ".join(t for f in FAMILIES for t in f.model_types)
    raise ValueError(
        f"droidrl has no vision family for model_type {model_type!r} (it knows {known}); "
        "add a VisionFamily for it in droidrl/models/vision.py"
    )
