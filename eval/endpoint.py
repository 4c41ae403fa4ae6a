"""`droidrl eval`'s policy behind an OpenAI-compatible endpoint, checked before any episode to take screenshots.

Screenshots go through the chat API as data URLs (OpenAIEngine.generate with images).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from droidrl.rollout.engines.base import SamplingParams
from droidrl.rollout.engines.openai_engine import EndpointError, EndpointUnavailable, OpenAIEngine, connect

# How screenshots reach the model, as results.json records it.
CHAT_IMAGES = "chat API: screenshots as base64 PNG data URLs, prompt ids through /detokenize"
COMPLETIONS = "completions API: token-id prompts (no images)"
# A phone-shaped grey image: any vision processor takes it (each side a multiple of 28, as Qwen2-VL's resize wants).
PROBE_SHAPE = (252, 112, 3)
PROBE_TEXT = "Describe the screen."


class EndpointRefused(RuntimeError):
    """The endpoint cannot run the evaluation as planned; the message says which flag or server option fixes it."""


async def start_endpoint(base_url: str, model: str, tokenizer: Any, images: bool, concurrency: int) -> OpenAIEngine:
    """Connect to the endpoint (it answers and serves `model`); with `images`, prove it takes a screenshot.

    The proof is one real turn through the path every episode takes (`generate` with an image: /detokenize,
    then the chat API with a request chat template), one token long, so a server started without
    `--trust-request-chat-template`, a server that is not vLLM, or a text-only served model fails here,
    before any episode, rather than as lost episodes.
    """
    try:
        engine = await connect(base_url, model, max_concurrency=concurrency)
    except (EndpointError, ValueError) as err:
        raise EndpointRefused(str(err)) from None
    if images:
        try:
            await check_images(engine, tokenizer)
        except BaseException:
            await engine.close()
            raise
    return engine


async def check_images(engine: OpenAIEngine, tokenizer: Any) -> None:
    """One greedy token for a user turn showing one screenshot; EndpointRefused naming the fix if refused."""
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": PROBE_TEXT}]}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = tokenizer.encode(text, add_special_tokens=False)
    probe = np.full(PROBE_SHAPE, 128, np.uint8)
    try:
        await engine.generate(ids, SamplingParams(temperature=0.0, max_tokens=1), images=[probe])
    except EndpointUnavailable as err:  # no answer at all (down, or slower than endpoint.timeout_s): not a refusal
        raise EndpointRefused(str(err)) from None
    except EndpointError as err:
        raise EndpointRefused(refusal_message(str(err))) from None


def refusal_message(detail: str) -> str:
    """What to do about a refused screenshot turn, from the endpoint's own words."""
    lowered = detail.lower()
    xml = "or pass --observation xml to evaluate without screenshots (recorded as a deviation)"
    if "trust-request-chat-template" in lowered or ("chat template" in lowered and "trust" in lowered):
        flag = "`vllm serve ... --trust-request-chat-template`"
        return f"screenshots need a request chat template: restart it with {flag}, {xml}"
    if "/detokenize" in detail and "404" in detail:
        return f"screenshots need vLLM's /detokenize, which it lacks: serve the model with vLLM, {xml}"
    return f"it refused a turn with a screenshot ({detail}): serve the vision checkpoint, {xml}"
