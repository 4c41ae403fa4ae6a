"""MobileRL / AutoGLM-Phone prompts in GLM-4.1V's chat format (tiny-glm4v): screenshots as GLM image blocks, turns
closed by GLM's stop token, and both coordinate modes of its answers (a point and a box on the 0-999 grid)."""

from __future__ import annotations

from pathlib import Path

import pytest

from droidrl.envs.actions import Tap, parse
from droidrl.rollout.envpool import Observation
from droidrl.rollout.prompts import PromptBuilder, PromptConfig

GOAL = "Open the Contacts app"
IMAGE = "<|begin_of_image|><|image|><|end_of_image|>"


@pytest.fixture(scope="module")
def tokenizer(glm4v_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(glm4v_model_dir)


def test_a_two_turn_screenshot_prompt_is_in_glm_format(tokenizer, phone_screens: list[Observation]) -> None:
    builder = PromptBuilder(tokenizer, PromptConfig(observation="both", image_turns=2))
    answer = '<think>Contacts is on the home screen.</think><answer>do(action="Tap", element=[500, 300])</answer>'
    response = tokenizer.encode(answer, add_special_tokens=False)
    prompt = builder.build(GOAL, phone_screens, [response])
    text = tokenizer.decode(prompt.ids)
    assert text.startswith("[gMASK]<sop><|system|>\n") and text.endswith("<|assistant|>\n")
    assert text.count(IMAGE) == 2 and len(prompt.images) == 2  # MobileRL's last two screenshots
    assert GOAL in text and "click long-click" in text  # the compressed UI XML rides along (with_xml)
    assert answer + "<|user|>" in text  # the model's turn ends with GLM's stop token, then the next screen
    image_id = tokenizer.convert_tokens_to_ids("<|image|>")
    assert prompt.ids.count(image_id) == 2  # one placeholder per image, expanded by the engine


@pytest.mark.parametrize(
    ("answer", "point"),
    [
        ('do(action="Tap", element=[500, 300])', (500, 300)),
        ('do(action="Tap", element=[100, 200, 300, 400])', (200, 300)),  # box mode: its centre
    ],
)
def test_both_coordinate_modes_parse_from_a_glm_answer(tokenizer, answer: str, point: tuple[int, int]) -> None:
    reply = f"<think>t</think><answer>{answer}</answer><|user|>"
    ids = tokenizer.encode(reply, add_special_tokens=False)
    decoded = tokenizer.decode(ids, skip_special_tokens=True)
    assert parse(decoded) == Tap(point)
