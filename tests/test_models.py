"""The tiny models: the project's tokenizer (round trip, special tokens, chat template), model sizes,
loading through transformers' Auto classes, and tiny-vl generating from a screenshot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from droidrl.cli import main as cli_main
from droidrl.envs.actions import Tap, format_action, parse
from droidrl.models.corpus import SYSTEM_PROMPT, corpus
from droidrl.models.presets import (
    GLM_SPECIAL_TOKENS,
    MAX_PIXELS,
    MIN_PIXELS,
    SPECIAL_TOKENS,
    TAG_TOKENS,
    init_model,
    read_safetensors,
)
from droidrl.models.scoring import score, score_batch


@pytest.fixture(scope="session")
def tiny_text(model_dir: Path) -> Path:
    return model_dir  # the shared session model (conftest); `tokenizer` comes from there too


@pytest.fixture(scope="module")
def model(tiny_text: Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_text)


def test_directory_has_every_file(tiny_text: Path) -> None:
    names = {p.name for p in tiny_text.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
    } <= names


def test_corpus_covers_apps_goals_actions_and_prompt() -> None:
    text = "\n".join(corpus())
    assert SYSTEM_PROMPT in text
    assert "<hierarchy" in text and 'resource-id="com.google.android.contacts' in text
    assert 'do(action="Tap", element=[' in text and "finish(message=" in text
    assert 2_000_000 < len(text) < 30_000_000  # big enough to learn from, small enough to build in seconds


def test_tokenizer_round_trip(tokenizer) -> None:
    texts = [
        SYSTEM_PROMPT,
        format_action(Tap((512, 88))),
        'do(action="Type", text="Café 😀 \\"quoted\\"\\n") <answer>x</answer>',
        "<|im_start|>user\nTurn off Wi‑Fi.<|im_end|>\n",
        "  leading and trailing spaces  \t\n",
    ]
    for text in texts:
        assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text


def test_tokenizer_is_compact_on_its_domain(tokenizer) -> None:
    # UI XML packs to ~0.25 tokens per char (bounds digits are one token each); the prompt to less.
    xml = next(doc for doc in corpus() if doc.startswith("<?xml"))
    assert len(tokenizer.encode(xml, add_special_tokens=False)) < 0.3 * len(xml)
    assert len(tokenizer.encode(SYSTEM_PROMPT)) < 0.3 * len(SYSTEM_PROMPT)
    assert 3_000 <= len(tokenizer) <= 8_192
    # Digits are single tokens (Qwen2's split), so grid coordinates are always 3 short tokens.
    assert tokenizer.tokenize("[512, 88]") == ["[", "5", "1", "2", ",", "Ġ", "8", "8", "]"]


def test_special_tokens_are_single_ids(tokenizer) -> None:
    for token in SPECIAL_TOKENS + TAG_TOKENS:
        ids = tokenizer.encode(token, add_special_tokens=False)
        assert len(ids) == 1 and tokenizer.convert_ids_to_tokens(ids[0]) == token
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    # No BOS is prepended (Qwen2 has none): the engines see exactly the ids of the text.
    assert tokenizer.encode("hi") == tokenizer.encode("hi", add_special_tokens=False)
    # Think/answer tags survive skip_special_tokens: the action parser reads them.
    ids = tokenizer.encode('<|im_start|>assistant\n<answer>finish(message="ok")</answer><|im_end|>')
    assert tokenizer.decode(ids, skip_special_tokens=True) == 'assistant\n<answer>finish(message="ok")</answer>'


def test_chat_template_is_qwen_style(tokenizer) -> None:
    messages = [
        {"role": "system", "content": "SYS"},
        {"role": "user", "content": "Open Clock"},
        {"role": "assistant", "content": '<answer>do(action="Launch", app="Clock")</answer>'},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "next"}]},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nSYS<|im_end|>\n"
        "<|im_start|>user\nOpen Clock<|im_end|>\n"
        '<|im_start|>assistant\n<answer>do(action="Launch", app="Clock")</answer><|im_end|>\n'
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>next<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    ids = tokenizer.apply_chat_template(messages[:2], add_generation_prompt=True, return_dict=False)
    assert ids == tokenizer.encode(
        tokenizer.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=True)
    )
    # The action string the policy would answer parses back to the action.
    assert parse('do(action="Launch", app="Clock")').app == "Clock"


def test_tiny_text_config_and_sizes(tiny_text: Path, model, tokenizer) -> None:
    config = json.loads((tiny_text / "config.json").read_text())
    assert config["architectures"] == ["Qwen2ForCausalLM"] and config["dtype"] == "float32"
    assert config["hidden_size"] // config["num_attention_heads"] == 64  # vLLM's CPU attention needs 64
    assert config["vocab_size"] % 64 == 0 and config["vocab_size"] >= len(tokenizer)
    assert config["eos_token_id"] == tokenizer.eos_token_id and config["tie_word_embeddings"] is True
    assert model.dtype == torch.float32
    assert 0.5e6 < sum(p.numel() for p in model.parameters()) < 2e6
    generation = json.loads((tiny_text / "generation_config.json").read_text())
    assert tokenizer.eos_token_id in generation["eos_token_id"]


def test_same_seed_same_weights_other_seed_differs(tiny_text: Path, tmp_path: Path) -> None:
    again = read_safetensors(init_model("tiny-text", tmp_path / "again", seed=0))
    other = read_safetensors(init_model("tiny-text", tmp_path / "other", seed=1))
    first = read_safetensors(tiny_text)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["model.embed_tokens.weight"], other["model.embed_tokens.weight"])
    assert (tiny_text / "tokenizer.json").read_bytes() == (tmp_path / "other" / "tokenizer.json").read_bytes()


def test_model_generates_and_scores(model, tokenizer) -> None:
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Turn off Wi-Fi."}], add_generation_prompt=True, return_dict=False
    )
    out = model.generate(torch.tensor([prompt]), max_new_tokens=6, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    response = out[0, len(prompt) :].tolist()
    assert len(response) == 6 or response[-1] in (tokenizer.eos_token_id, tokenizer.pad_token_id)
    lp = score(model, prompt, response)
    # Greedy tokens are the argmax: their logprob is the row maximum.
    logits = model(torch.tensor([prompt + response])).logits[0]
    best = torch.log_softmax(logits, -1).max(-1).values[len(prompt) - 1 : len(prompt) - 1 + len(response)]
    assert np.allclose(lp, best.tolist(), atol=1e-5)
    # A batch with rows of different lengths gives the same numbers as one row at a time.
    short = (prompt[:3], response[:2])
    assert np.allclose(score_batch(model, [(prompt, response), short])[1], score(model, *short), atol=1e-5)
    with pytest.raises(ValueError, match="non-empty prompt and response"):
        score(model, prompt, [])


def test_cli_model_init(tmp_path: Path) -> None:
    assert cli_main(["model", "init", "--preset", "tiny-text", "--seed", "3", str(tmp_path / "m")]) == 0
    assert (tmp_path / "m" / "model.safetensors").is_file()


def test_unknown_preset_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown model preset 'huge'.*tiny-text"):
        init_model("huge", tmp_path)


def test_tiny_vl_generates_from_a_screenshot(tmp_path: Path) -> None:
    from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

    path = init_model("tiny-vl", tmp_path / "tiny-vl")
    tokenizer = AutoTokenizer.from_pretrained(path)
    # backend="pil": the default (fast) image processor needs torchvision, which the CPU install lacks.
    processor = AutoImageProcessor.from_pretrained(path, backend="pil")
    model = AutoModelForImageTextToText.from_pretrained(path)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert model.config.vision_config.hidden_size // model.config.vision_config.num_heads == 64
    screen = np.random.default_rng(0).integers(0, 255, (2400, 1080, 3), dtype=np.uint8)
    pixels = processor(images=[screen], return_tensors="pt")
    t, h, w = pixels["image_grid_thw"][0].tolist()
    assert MIN_PIXELS <= (h * 14) * (w * 14) <= MAX_PIXELS  # the processor resized the screenshot into bounds
    pads = t * h * w // 4  # one <|image_pad|> per 2x2 merged patch
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Tap Contacts"}]}],
        add_generation_prompt=True,
        return_dict=False,
    )
    pad = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    at = prompt.index(pad)
    prompt = prompt[:at] + [pad] * pads + prompt[at + 1 :]
    out = model.generate(
        input_ids=torch.tensor([prompt]),
        max_new_tokens=4,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
        **pixels,
    )
    assert out.shape[1] > len(prompt)
    # The image matters: another screenshot changes the next-token distribution.
    other = processor(images=[255 - screen], return_tensors="pt")
    with torch.no_grad():
        a = model(input_ids=torch.tensor([prompt]), **pixels).logits[0, -1]
        b = model(input_ids=torch.tensor([prompt]), **other).logits[0, -1]
    assert not torch.allclose(a, b)


# ---- tiny-glm4v: the GLM-4.1V architecture of MobileRL-9B and AutoGLM-Phone-9B -----------------------------
def test_tiny_glm4v_is_shaped_like_the_released_checkpoints(glm4v_model_dir: Path) -> None:
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoTokenizer

    names = {p.name for p in glm4v_model_dir.iterdir()}
    assert {"config.json", "generation_config.json", "preprocessor_config.json", "tokenizer.json"} <= names
    config = AutoConfig.from_pretrained(glm4v_model_dir)
    assert config.architectures == ["Glm4vForConditionalGeneration"] and config.model_type == "glm4v"
    tokenizer = AutoTokenizer.from_pretrained(glm4v_model_dir)
    ids = tokenizer.convert_tokens_to_ids(GLM_SPECIAL_TOKENS)
    assert ids == list(range(ids[0], ids[0] + len(GLM_SPECIAL_TOKENS)))  # in GLM's order, as 151329..151344
    assert config.image_token_id == tokenizer.convert_tokens_to_ids("<|image|>")
    assert config.image_start_token_id == tokenizer.convert_tokens_to_ids("<|begin_of_image|>")
    assert config.text_config.rope_parameters["partial_rotary_factor"] == 0.5
    assert sum(config.text_config.rope_parameters["mrope_section"]) == 64 * 0.5 / 2  # half of head_dim 64 rotates
    generation = json.loads((glm4v_model_dir / "generation_config.json").read_text())
    stops = tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|user|>", "<|observation|>"])
    assert generation["eos_token_id"] == stops  # as the released generation_config
    processor = json.loads((glm4v_model_dir / "preprocessor_config.json").read_text())
    assert processor["image_processor_type"] == "Glm4vImageProcessor" and processor["merge_size"] == 2
    model = AutoModelForImageTextToText.from_pretrained(glm4v_model_dir)  # the path any released checkpoint takes
    assert type(model).__name__ == "Glm4vForConditionalGeneration"


def test_tiny_glm4v_chat_format(glm4v_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(glm4v_model_dir)
    messages = [
        {"role": "system", "content": "SYS"},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Open Clock"}]},
        {"role": "assistant", "content": '<think>t</think><answer>do(action="Launch", app="Clock")</answer>'},
        {"role": "user", "content": "next"},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "[gMASK]<sop><|system|>\nSYS"
        "<|user|>\n<|begin_of_image|><|image|><|end_of_image|>Open Clock"
        '<|assistant|>\n<think>t</think><answer>do(action="Launch", app="Clock")</answer>'
        "<|user|>\nnext<|assistant|>\n"
    )
    for token in [*GLM_SPECIAL_TOKENS, *TAG_TOKENS]:
        assert len(tokenizer.encode(token, add_special_tokens=False)) == 1
    assert tokenizer.decode(tokenizer.encode("<answer>x</answer><|user|>"), skip_special_tokens=True) == (
        "<answer>x</answer>"
    )


def test_tiny_glm4v_prompt_builder_finds_the_image_placeholder_and_turn_end(glm4v_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    from droidrl.rollout.prompts import ChatFormat

    chat = ChatFormat.from_tokenizer(AutoTokenizer.from_pretrained(glm4v_model_dir))
    assert chat.image_placeholder == "<|begin_of_image|><|image|><|end_of_image|>"
    assert chat.end_text == "<|user|>"  # the model's turn ends where GLM stops generating
