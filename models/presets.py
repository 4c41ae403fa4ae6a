"""Tiny policy models with random weights and the project's own tokenizer, for CPU runs and tests.

`init_model("tiny-text", out)` writes a complete Hugging Face directory (config, safetensors,
tokenizer with a Qwen-style chat template, generation config) that loads in transformers and in
vLLM; "tiny-vl" adds a small vision tower and an image processor (Qwen2.5-VL); "tiny-glm4v" is the
GLM-4.1V architecture of MobileRL-9B and AutoGLM-Phone-9B, with GLM's special tokens and chat format.
Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from droidrl.models.corpus import cache_dir, corpus

PRESETS = ("tiny-text", "tiny-vl", "tiny-glm4v")
# An upper bound on the BPE vocabulary: training stops earlier (~3.7k tokens) once every word of
# the corpus is a single token; text outside the corpus still encodes, byte by byte at worst.
VOCAB_SIZE = 6000
_MIN_FREQUENCY = 1  # the corpus is small: with 2 it stops near 3.6k tokens

# Qwen2 special tokens. The think/answer tags are added tokens that are not "special": they must
# stay in decoded text (the action parser reads them) yet always encode as one id.
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
]
TAG_TOKENS = ["<think>", "</think>", "<answer>", "</answer>"]

# Qwen2's pre-tokenizer split: words, single digits (coordinates tokenize digit by digit), punctuation runs.
_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Qwen2-VL's chat template without the default system message: a list content may hold images.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}"
    "{{- message['content'] -}}"
    "{%- else -%}"
    "{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' or 'image' in part -%}"
    "{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}"
    "{%- elif part['type'] == 'text' -%}"
    "{{- part['text'] -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- endif -%}"
)

# GLM-4.1V's special tokens, in the order of its tokenizer (ids 151329.. in the released checkpoints).
GLM_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "[MASK]",
    "[gMASK]",
    "[sMASK]",
    "<sop>",
    "<eop>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|observation|>",
    "<|begin_of_image|>",
    "<|end_of_image|>",
    "<|begin_of_video|>",
    "<|end_of_video|>",
    "<|image|>",
    "<|video|>",
]

# GLM-4.1V's chat format: `[gMASK]<sop>` once, then `<|role|>\n` before each message, images as
# `<|begin_of_image|><|image|><|end_of_image|>`; the model answers `<think>..</think><answer>..</answer>`
# and stops at `<|user|>` or `<|endoftext|>`.
GLM_CHAT_TEMPLATE = (
    "[gMASK]<sop>"
    "{%- for message in messages -%}"
    "{{- '<|' + message['role'] + '|>\n' -}}"
    "{%- if message['content'] is string -%}"
    "{{- message['content'] -}}"
    "{%- else -%}"
    "{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' or 'image' in part -%}"
    "{{- '<|begin_of_image|><|image|><|end_of_image|>' -}}"
    "{%- elif part['type'] == 'text' -%}"
    "{{- part['text'] -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|assistant|>\n' -}}"
    "{%- endif -%}"
)

# Image sizes for tiny-vl: each 28x28 block becomes one <|image_pad|> token after the 2x2 merge, so
# max_pixels bounds the prompt length an image costs (here at most 256 tokens).
MIN_PIXELS = 28 * 28 * 4
MAX_PIXELS = 28 * 28 * 256


# Larger shapes of the same architectures, for benchmarks on a GPU (benchmarks/gpu_smoke.py): "0.5b" is about
# half a billion parameters, with the released models' head size (128) and grouped-query attention.
SCALES: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {"text": {}, "vision": {}},
    "0.5b": {
        "text": dict(
            hidden_size=1536,
            intermediate_size=4096,
            num_hidden_layers=18,
            num_attention_heads=12,
            num_key_value_heads=2,
        ),
        "vision": dict(depth=8, hidden_size=768, num_heads=6, intermediate_size=2048),
    },
}


def train_tokenizer(vocab_size: int = VOCAB_SIZE, special_tokens: list[str] | None = None) -> Any:
    """A byte-level BPE `tokenizers.Tokenizer` trained on the corpus (cached on disk; deterministic).

    `special_tokens` (default: Qwen2's) are added after the BPE vocabulary, then the think/answer tags.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    special_tokens = SPECIAL_TOKENS if special_tokens is None else special_tokens
    docs = corpus()
    settings = f"|nfc|{vocab_size}|{_MIN_FREQUENCY}|{_SPLIT_PATTERN}|{special_tokens}|{TAG_TOKENS}"
    key = hashlib.sha256(("\x1e".join(docs) + settings).encode()).hexdigest()
    path = cache_dir() / f"tokenizer-{key[:16]}.json"
    if path.exists():
        return Tokenizer.from_file(str(path))
    tokenizer = Tokenizer(models.BPE(byte_fallback=False))
    tokenizer.normalizer = normalizers.NFC()  # as Qwen2: composed and decomposed accents encode alike
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=_MIN_FREQUENCY,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte encodes: no unknown token
        show_progress=False,
    )
    tokenizer.train_from_iterator(docs, trainer)
    # Added after training so, as in Qwen2, they sit after the BPE vocabulary.
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special_tokens])
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in TAG_TOKENS])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tokenizer.save(str(tmp))
    tmp.replace(path)
    return tokenizer


def build_tokenizer() -> Any:
    """The project's `PreTrainedTokenizerFast`: eos <|im_end|>, pad <|endoftext|>, Qwen chat template."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=train_tokenizer(),
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
        additional_special_tokens=SPECIAL_TOKENS[1:],  # keep them listed as Qwen2's tokenizer does
        chat_template=CHAT_TEMPLATE,
        model_max_length=16384,
        padding_side="left",  # batched generation pads on the left
        clean_up_tokenization_spaces=False,
    )


def build_glm_tokenizer() -> Any:
    """The project's tokenizer with GLM-4.1V's special tokens and chat template (eos and pad <|endoftext|>)."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=train_tokenizer(special_tokens=GLM_SPECIAL_TOKENS),
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
        additional_special_tokens=GLM_SPECIAL_TOKENS[1:],
        chat_template=GLM_CHAT_TEMPLATE,
        model_max_length=16384,
        padding_side="left",
        clean_up_tokenization_spaces=False,
        # What Glm4vProcessor reads (and vLLM's GLM-4.1V processor through it).
        extra_special_tokens={"image_token": "<|image|>", "video_token": "<|video|>"},
    )


def _padded_vocab(tokenizer: Any) -> int:
    # A multiple of 64 keeps the embedding matmuls aligned. No token maps to the extra rows (as in
    # Qwen2: 151936 rows, 151665 tokens); a random model can still sample them, in vLLM too.
    return (len(tokenizer) + 63) // 64 * 64


def _text_config_kwargs(tokenizer: Any, scale: str = "tiny") -> dict[str, Any]:
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    return _scaled(
        scale,
        "text",
        dict(
            vocab_size=_padded_vocab(tokenizer),
            hidden_size=128,
            intermediate_size=256,
            num_hidden_layers=2,
            num_attention_heads=2,  # head_dim 64: the smallest vLLM's CPU attention supports
            num_key_value_heads=1,  # grouped-query attention, as in every Qwen2 size
            max_position_embeddings=16384,
            rope_theta=1_000_000.0,
            rms_norm_eps=1e-6,
            tie_word_embeddings=True,
            use_sliding_window=False,
            bos_token_id=pad,
            eos_token_id=eos,
            pad_token_id=pad,
        ),
    )


def _scaled(scale: str, part: str, sizes: dict[str, Any]) -> dict[str, Any]:
    """`sizes` with the `part` ("text" or "vision") shapes of `scale` in place of the tiny ones."""
    if scale not in SCALES:
        raise ValueError(f"unknown model scale {scale!r}; choose one of {', '.join(SCALES)}")
    return {**sizes, **SCALES[scale][part]}


def _generation_config(tokenizer: Any) -> Any:
    from transformers import GenerationConfig

    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    return GenerationConfig(bos_token_id=pad, eos_token_id=[eos, pad], pad_token_id=pad)


def _mrope_section(text: dict[str, Any], rotary_share: float) -> list[int]:
    """(time, height, width) split of the rotary frequencies, in the released [16, 24, 24] : 64 proportion."""
    frequencies = int(text["hidden_size"] // text["num_attention_heads"] * rotary_share) // 2
    time = frequencies // 4
    return [time, (frequencies - time) // 2, frequencies - time - (frequencies - time) // 2]


def _build_text(tokenizer: Any, scale: str = "tiny") -> Any:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(**_text_config_kwargs(tokenizer, scale))
    return Qwen2ForCausalLM(config)


def _build_vl(tokenizer: Any, scale: str = "tiny") -> Any:
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    text = _text_config_kwargs(tokenizer, scale)
    # Multimodal RoPE splits each head's 32 rotary frequencies over (time, height, width);
    # Qwen2.5-VL's [16, 24, 24] is for head_dim 128, this is the same proportion for 64.
    text["rope_parameters"] = {
        "rope_type": "default",
        "rope_theta": text.pop("rope_theta"),
        "mrope_section": _mrope_section(text, rotary_share=1.0),
    }
    vision = dict(
        depth=2,
        hidden_size=128,
        num_heads=2,  # head size 64, as for the text model
        intermediate_size=256,
        patch_size=14,
        spatial_merge_size=2,
        temporal_patch_size=2,
        window_size=112,
        in_chans=3,
    )
    vision = _scaled(scale, "vision", vision)
    vision.update(out_hidden_size=text["hidden_size"], fullatt_block_indexes=[vision["depth"] - 1])
    config = Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=tokenizer.convert_tokens_to_ids("<|image_pad|>"),
        video_token_id=tokenizer.convert_tokens_to_ids("<|image_pad|>"),
        vision_start_token_id=tokenizer.convert_tokens_to_ids("<|vision_start|>"),
        vision_end_token_id=tokenizer.convert_tokens_to_ids("<|vision_end|>"),
        tie_word_embeddings=True,
        **{k: text[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id", "vocab_size")},
    )
    return Qwen2_5_VLForConditionalGeneration(config)


def _build_glm4v(tokenizer: Any, scale: str = "tiny") -> Any:
    from transformers import Glm4vConfig, Glm4vForConditionalGeneration

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in GLM_SPECIAL_TOKENS}
    text = _text_config_kwargs(tokenizer, scale)
    for key in ("tie_word_embeddings", "use_sliding_window"):
        text.pop(key)
    # GLM rotates half of each head (partial_rotary_factor 0.5): 16 of head_dim 64's frequencies, split
    # over (time, height, width) in the proportion of the released [8, 12, 12] for head_dim 128.
    text["rope_parameters"] = {
        "rope_type": "default",
        "rope_theta": 10_000.0,
        "mrope_section": _mrope_section(text, rotary_share=0.5),
        "partial_rotary_factor": 0.5,
    }
    text.pop("rope_theta")
    text.update(bos_token_id=None, eos_token_id=ids["<|endoftext|>"], pad_token_id=ids["<|endoftext|>"])
    vision = dict(
        depth=2,
        hidden_size=128,
        num_heads=2,
        intermediate_size=256,
        image_size=336,
        patch_size=14,
        spatial_merge_size=2,
        temporal_patch_size=2,
        rms_norm_eps=1e-5,
    )
    vision = _scaled(scale, "vision", vision)
    vision["out_hidden_size"] = text["hidden_size"]
    config = Glm4vConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image|>"],
        video_token_id=ids["<|video|>"],
        image_start_token_id=ids["<|begin_of_image|>"],
        image_end_token_id=ids["<|end_of_image|>"],
        video_start_token_id=ids["<|begin_of_video|>"],
        video_end_token_id=ids["<|end_of_video|>"],
        tie_word_embeddings=False,  # as the released GLM-4.1V checkpoints
    )
    return Glm4vForConditionalGeneration(config)


def _glm_generation_config(tokenizer: Any) -> Any:
    from transformers import GenerationConfig

    stop = [tokenizer.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|user|>", "<|observation|>")]
    return GenerationConfig(eos_token_id=stop, pad_token_id=stop[0])


_BUILDERS = {"tiny-text": _build_text, "tiny-vl": _build_vl, "tiny-glm4v": _build_glm4v}


def _save_image_processor(out: Path, glm: bool = False) -> None:
    # Written as JSON rather than through the processor classes: their fast variants need torchvision, which
    # the CPU install lacks; both variants read this file. GLM-4.1V's processor takes the same settings (its
    # released min is 112x112 and max 28*28*15000; these are tiny-vl's sizes).
    config = {
        "image_processor_type": "Glm4vImageProcessor" if glm else "Qwen2VLImageProcessor",
        "processor_class": "Glm4vProcessor" if glm else "Qwen2_5_VLProcessor",
        "do_resize": True,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "do_convert_rgb": True,
        "size": {"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS},
        "patch_size": 14,
        "temporal_patch_size": 2,
        "merge_size": 2,
    }
    if not glm:  # Qwen2-VL's processor also reads the older names
        config.update(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    (out / "preprocessor_config.json").write_text(json.dumps(config, indent=2) + "\n")
    if glm:
        (out / "processor_config.json").write_text(json.dumps({"processor_class": "Glm4vProcessor"}, indent=2) + "\n")


def init_model(preset: str, out: Path, seed: int = 0, scale: str = "tiny") -> Path:
    """Write a randomly initialised `preset` model with the project's tokenizer to `out`; returns `out`.

    Float32 weights: on CPU the engine, the trainer and re-scoring must agree to ~1e-5 in
    logprobs, which bf16 rounding (~1e-2) would hide. Same preset and seed give identical files.
    `scale` other than "tiny" (SCALES) gives the same architecture at benchmark sizes.
    """
    import torch

    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; choose one of {', '.join(PRESETS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    glm = preset == "tiny-glm4v"
    tokenizer = build_glm_tokenizer() if glm else build_tokenizer()
    torch.manual_seed(seed)
    with torch.device("cpu"):
        model = _BUILDERS[preset](tokenizer, scale)
    model = model.to(torch.float32).eval()
    model.generation_config = _glm_generation_config(tokenizer) if glm else _generation_config(tokenizer)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    if preset != "tiny-text":
        _save_image_processor(out, glm)
    return out


def parameter_count(preset: str, scale: str = "tiny") -> int:
    """Parameters of `preset` at `scale`, from its architecture built on the meta device (no memory, no weights)."""
    import torch

    glm = preset == "tiny-glm4v"
    tokenizer = build_glm_tokenizer() if glm else build_tokenizer()
    with torch.device("meta"):
        return sum(p.numel() for p in _BUILDERS[preset](tokenizer, scale).parameters())


def read_safetensors(source: Path) -> dict[str, Any]:
    """Every tensor in a safetensors file, or in all `*.safetensors` files of a directory (HF naming)."""
    from safetensors.torch import load_file

    source = Path(source)
    files = sorted(source.glob("*.safetensors")) if source.is_dir() else [source]
    if not files or not all(f.is_file() for f in files):
        raise FileNotFoundError(f"no safetensors weights at {source}; give a model directory or a .safetensors file")
    tensors: dict[str, Any] = {}
    for path in files:
        tensors.update(load_file(str(path), device="cpu"))
    return tensors
