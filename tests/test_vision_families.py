"""The per-architecture vision seam (models/vision.py): each tiny family resolves to its entry, its placeholder is
the token its chat template writes, an image expands to the count its own HF processor gives, and an unknown
vision architecture is refused by name instead of being fed another family's token layout."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from droidrl.models.scoring import expand_images, load_image_processor
from droidrl.models.vision import GLM4V, QWEN2_VL, vision_family


@pytest.mark.parametrize(("fixture", "family"), [("vl_model_dir", QWEN2_VL), ("glm4v_model_dir", GLM4V)])
def test_each_family_matches_its_checkpoint(fixture: str, family, request: pytest.FixtureRequest) -> None:
    from transformers import AutoConfig, AutoTokenizer

    model_dir: Path = request.getfixturevalue(fixture)
    config = AutoConfig.from_pretrained(model_dir)
    assert vision_family(config) is family
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    assert family.image_token_id(config) == tokenizer.convert_tokens_to_ids(family.placeholder)
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "x"}]}], tokenize=False
    )
    assert rendered.count(family.placeholder) == 1
    # 448x224 on a 14-pixel patch grid with 2x2 merge: 32 x 16 patches -> 128 placeholder copies.
    image = np.zeros((448, 224, 3), np.uint8)
    processor = load_image_processor(str(model_dir))
    token = family.image_token_id(config)
    expanded = expand_images([7, token, 8], [image], processor, token, family)
    assert expanded.ids.count(token) == 128 and expanded.ids[0] == 7 and expanded.ids[-1] == 8
    assert expanded.image_grid_thw.tolist() == [[1, 32, 16]]


def test_text_models_have_no_family_and_unknown_vision_models_are_refused(model_dir: Path) -> None:
    from transformers import AutoConfig

    assert vision_family(AutoConfig.from_pretrained(model_dir)) is None
    unknown = SimpleNamespace(model_type="qwen3_vl", vision_config={}, image_token_id=1)
    with pytest.raises(ValueError, match=r"no vision family for model_type 'qwen3_vl'.*models/vision\.py"):
        vision_family(unknown)
