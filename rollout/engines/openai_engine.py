"""An `Engine` over a running OpenAI-compatible endpoint (`vllm serve`, as MobileRL's evaluation uses one).

`generate` keeps the Engine contract (exact token ids in, ids + logprobs out): the completions API with a
token-id prompt and vLLM's `return_token_ids`, or, with screenshots, the chat API with the prompt's own text
and the images as base64 data URLs. `chat` sends ordinary chat messages and returns text. All share a
concurrency limit, timeouts and retries with back-off. The endpoint's weights are fixed: it evaluates only.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from droidrl.rollout.engines.base import Completion, FinishReason, SamplingParams

_FINISH_REASONS: dict[str, FinishReason] = {"stop": "stop", "length": "length", "abort": "abort"}
# A chat template that renders the text parts of the messages and nothing else: `generate` with images sends
# the prompt already templated (image placeholders in place), so the server must add no role headers.
PASSTHROUGH_TEMPLATE = (
    "{%- for message in messages -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endfor -%}"
)
# Answers worth another try: the server is starting, overloaded or restarting behind a proxy.
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_TRANSIENT = (httpx.TransportError,)  # connect/read/write errors and every httpx timeout


class EndpointError(RuntimeError):
    """The endpoint answered, but refused the request or answered something this engine cannot use."""


class EndpointUnavailable(EndpointError):
    """No answer from the endpoint (down, unreachable, or too slow) after every retry."""


class ModelMismatch(EndpointError):
    """The endpoint does not serve the configured model name."""


@dataclass
class OpenAIConfig:
    """Where the endpoint is and how to talk to it.

    base_url: the API root, e.g. "http://127.0.0.1:8000/v1" (what `vllm serve --port 8000` serves).
    model: the served model name (`vllm serve --served-model-name`, else the model path it was given).
    api_key_env: the environment variable holding the bearer token (vLLM's `--api-key`); unset: none sent.
    max_concurrency: requests in flight at once; the rest wait their turn.
    timeout_s: the longest one request may take (all of it); connect_timeout_s: to open a connection.
    retries: further tries after a connection error, a timeout or a 408/429/5xx answer, with exponential
      back-off from backoff_s up to backoff_max_s (and the server's Retry-After when it sends one).
    version: the policy version reported for every completion (the endpoint's weights never change).
    max_model_len: the context window the agent budgets prompts for; the endpoint's own (vLLM lists
      `max_model_len` in GET /models) when that is smaller or this is None.
    image_format: how screenshots travel in chat messages ("png" is lossless, "jpeg" smaller).
    """

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = 8
    timeout_s: float = 300.0
    connect_timeout_s: float = 10.0
    retries: int = 3
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    version: int = 0
    max_model_len: int | None = None
    image_format: str = "png"
    extra_body: dict[str, Any] = field(default_factory=dict)  # any other request field, sent as is

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"endpoint.base_url must start with http:// or https://, got {self.base_url!r}")
        if not self.model:
            raise ValueError("endpoint.model is empty: give the served model name (see GET /v1/models)")
        if self.max_concurrency < 1:
            raise ValueError(f"endpoint.max_concurrency must be >= 1, got {self.max_concurrency}")
        if self.timeout_s <= 0 or self.connect_timeout_s <= 0:
            raise ValueError(
                f"endpoint.timeout_s and endpoint.connect_timeout_s must be > 0, got "
                f"{self.timeout_s} and {self.connect_timeout_s}"
            )
        if self.retries < 0 or self.backoff_s < 0 or self.backoff_max_s < 0:
            raise ValueError("endpoint.retries, endpoint.backoff_s and endpoint.backoff_max_s must be >= 0")
        if self.max_model_len is not None and self.max_model_len < 16:
            raise ValueError(f"endpoint.max_model_len must be >= 16 or None, got {self.max_model_len}")
        if self.image_format not in ("png", "jpeg"):
            raise ValueError(f"endpoint.image_format must be 'png' or 'jpeg', got {self.image_format!r}")
        self.base_url = self.base_url.rstrip("/")


@dataclass(frozen=True)
class ChatReply:
    """One chat (or text) completion: the text, and the token ids and logprobs when the server sends them."""

    text: str
    finish_reason: FinishReason
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    usage: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


class OpenAIEngine:
    """An `Engine` (and a chat client) for one model behind an OpenAI-compatible endpoint.

    Create it with `await OpenAIEngine.start(config)`, which checks that the endpoint answers and serves
    `config.model` before any episode starts.
    """

    def __init__(self, config: OpenAIConfig, name: str = "openai-0") -> None:
        self.config = config
        self.name = name
        headers = {}
        if token := os.environ.get(config.api_key_env, ""):
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.AsyncClient(
            base_url=config.base_url,
            headers=headers,
            timeout=httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s),
            limits=httpx.Limits(
                max_connections=config.max_concurrency, max_keepalive_connections=config.max_concurrency
            ),
        )
        self._slots = asyncio.Semaphore(config.max_concurrency)
        self._in_flight = 0
        self.max_model_len = config.max_model_len  # the agent reads it to budget prompts

    @classmethod
    async def start(cls, config: OpenAIConfig, name: str = "openai-0") -> OpenAIEngine:
        """Connect, and fail now (EndpointUnavailable, ModelMismatch) rather than in the first episode."""
        engine = cls(config, name)
        try:
            served = {str(entry.get("id")): entry for entry in await engine.models()}
            if config.model not in served:
                raise ModelMismatch(_mismatch_message(config, list(served)))
        except BaseException:
            await engine.close()
            raise
        reported = served[config.model].get("max_model_len")
        if isinstance(reported, int) and reported > 0:  # a longer prompt than the server's window is a 400
            engine.max_model_len = min(reported, engine.max_model_len or reported)
        return engine

    @property
    def version(self) -> int:
        return self.config.version

    @property
    def load(self) -> int:
        """Requests in flight (waiting for a slot or at the endpoint)."""
        return self._in_flight

    async def models(self) -> list[dict[str, Any]]:
        """The models the endpoint serves (GET /models): dicts with at least `id`."""
        body = await self._request("GET", "/models", None)
        return [entry for entry in body.get("data", []) if isinstance(entry, dict) and "id" in entry]

    # ---- the Engine contract -----------------------------------------------------------------------------
    async def generate(
        self,
        prompt_ids: list[int],
        sampling: SamplingParams,
        images: list[np.ndarray] | None = None,
        session: str | None = None,
    ) -> Completion:
        """Sample one completion for exact `prompt_ids`; see `Engine.generate`.

        Without images: the completions API with the ids as the prompt. With images (the completions API
        carries none): the chat API, with the prompt's text (the ids detokenized by the server, image
        placeholders included) rendered as is by a pass-through chat template and the images as data URLs;
        the server must allow request templates (`vllm serve --trust-request-chat-template`).
        """
        if not prompt_ids:
            raise ValueError(f"engine {self.name}: prompt_ids is empty; a prompt needs at least one token")
        if self.max_model_len is not None and len(prompt_ids) >= self.max_model_len:
            raise ValueError(
                f"engine {self.name}: prompt has {len(prompt_ids)} tokens but the endpoint's max_model_len is "
                f"{self.max_model_len}; shorten the history or serve the model with a longer --max-model-len"
            )
        started = time.perf_counter()
        if images:
            token_ids, logprobs, choice = await self._generate_chat(prompt_ids, sampling, images)
        else:
            body = {
                "prompt": [int(t) for t in prompt_ids],
                "logprobs": 0,  # the sampled token's logprob only
                "return_token_ids": True,  # vLLM: the exact ids, not text to re-tokenize
                "return_tokens_as_token_ids": True,  # vLLM: logprob tokens as "token_id:N" (a fallback for the ids)
                "skip_special_tokens": False,
                **_sampling_body(sampling),
            }
            choice = _first_choice(await self._post("/completions", body), self.name)
            token_ids = _completion_token_ids(choice, self.name)
            logprobs = _completion_logprobs(choice, len(token_ids), self.name)
        return Completion(
            token_ids=token_ids,
            logprobs=logprobs,
            versions=[self.version] * len(token_ids),
            finish_reason=_finish_reason(choice),
            engine=self.name,
            timings={"generate_s": time.perf_counter() - started},
        )

    async def _generate_chat(
        self, prompt_ids: list[int], sampling: SamplingParams, images: list[np.ndarray]
    ) -> tuple[list[int], list[float], dict[str, Any]]:
        """`generate` through the chat API: the server detokenizes the ids, the pass-through template keeps them."""
        # vLLM serves /detokenize at the server's root, beside /v1.
        root = self.config.base_url.removesuffix("/v1")
        detokenized = await self._post(f"{root}/detokenize", {"tokens": [int(t) for t in prompt_ids]})
        text = detokenized.get("prompt")
        if not isinstance(text, str):
            raise EndpointError(f"engine {self.name}: /detokenize answered no prompt text: {str(detokenized)[:300]}")
        content = [*(self.image_part(image) for image in images), {"type": "text", "text": text}]
        body = {
            "messages": [{"role": "user", "content": content}],
            "chat_template": PASSTHROUGH_TEMPLATE,  # the text already is the whole templated prompt
            "add_generation_prompt": False,
            "add_special_tokens": False,
            "logprobs": True,
            "return_token_ids": True,
            "skip_special_tokens": False,
            **_sampling_body(sampling),
        }
        choice = _first_choice(await self._post("/chat/completions", body), self.name)
        ids = choice.get("token_ids")
        entries = (choice.get("logprobs") or {}).get("content") or []
        if not isinstance(ids, list) or len(entries) != len(ids):
            raise EndpointError(
                f"engine {self.name}: the chat answer lacks token ids or their logprobs; serve the model with vLLM"
            )
        return [int(t) for t in ids], [float(entry.get("logprob", 0.0)) for entry in entries], choice

    async def update_weights(self, source: Path, version: int) -> None:
        raise EndpointError(
            f"engine {self.name} is the endpoint {self.config.base_url}, whose weights droidrl cannot replace: "
            "use it to evaluate, and train with a vllm or transformers engine"
        )

    async def close(self) -> None:
        await self._client.aclose()

    # ---- chat and text ---------------------------------------------------------------------------------
    async def chat(self, messages: list[dict[str, Any]], sampling: SamplingParams) -> ChatReply:
        """One chat completion for OpenAI-style `messages`.

        Content parts {"type": "image", "image": array | PIL image | PNG/JPEG bytes} become `image_url` parts
        with a base64 data URL; every other part passes through unchanged.
        """
        body = {
            "messages": [self._message(message) for message in messages],
            "logprobs": True,
            "return_token_ids": True,
            **_sampling_body(sampling),
        }
        started = time.perf_counter()
        reply = await self._post("/chat/completions", body)
        choice = _first_choice(reply, self.name)
        message = choice.get("message") or {}
        content = message.get("content") or ""
        token_ids = choice.get("token_ids")
        entries = (choice.get("logprobs") or {}).get("content") or []
        logprobs = [float(entry["logprob"]) for entry in entries if "logprob" in entry] or None
        return ChatReply(
            text=content if isinstance(content, str) else str(content),
            finish_reason=_finish_reason(choice),
            token_ids=[int(t) for t in token_ids] if isinstance(token_ids, list) else None,
            logprobs=logprobs,
            usage=dict(reply.get("usage") or {}),
            timings={"generate_s": time.perf_counter() - started},
        )

    def image_part(self, image: Any) -> dict[str, Any]:
        """An `image_url` content part holding `image` as a base64 data URL in `config.image_format`."""
        return {"type": "image_url", "image_url": {"url": image_data_url(image, self.config.image_format)}}

    def _message(self, message: dict[str, Any]) -> dict[str, Any]:
        content = message.get("content")
        if not isinstance(content, list):
            return dict(message)
        parts = [self.image_part(part["image"]) if part.get("type") == "image" else part for part in content]
        return {**message, "content": parts}

    # ---- HTTP with retries -------------------------------------------------------------------------------
    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._request("POST", path, {"model": self.config.model, **body, **self.config.extra_body})

    async def _request(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        """Send with a slot held; retry what may pass; raise EndpointError/EndpointUnavailable with the cause."""
        config = self.config
        url = path if path.startswith(("http://", "https://")) else f"{config.base_url}{path}"
        self._in_flight += 1
        try:
            async with self._slots:
                for attempt in range(config.retries + 1):
                    delay: float | None = None
                    try:
                        async with asyncio.timeout(config.timeout_s):
                            response = await self._client.request(method, url, json=body)
                    except (TimeoutError, *_TRANSIENT) as err:
                        failure: EndpointError = _unavailable(url, err, config, attempt + 1)
                    else:
                        if response.status_code < 400:
                            return _json(response, url)
                        failure = self._refusal(response, url)
                        if response.status_code not in _RETRY_STATUS:
                            raise failure
                        delay = _retry_after(response)
                    if attempt == config.retries:
                        raise failure
                    backoff = min(config.backoff_max_s, config.backoff_s * 2**attempt) * random.uniform(0.5, 1.0)
                    await asyncio.sleep(backoff if delay is None else min(delay, config.backoff_max_s))
                raise AssertionError("unreachable")  # the loop returns or raises
        finally:
            self._in_flight -= 1

    def _refusal(self, response: httpx.Response, url: str) -> EndpointError:
        detail = _error_detail(response)
        status = response.status_code
        if status == 404 and "model" in detail.lower():
            return ModelMismatch(f"{url} answered 404: {detail}. Set endpoint.model to the served model name")
        if status in (401, 403):
            return EndpointError(
                f"{url} refused the request ({status}: {detail}); put the endpoint's API key in "
                f"${self.config.api_key_env}"
            )
        if status in _RETRY_STATUS:
            return EndpointUnavailable(f"{url} answered {status} after {self.config.retries + 1} tries: {detail}")
        if "chat template" in detail.lower() and "trust" in detail.lower():
            detail += " (generate() with images needs: vllm serve --trust-request-chat-template)"
        return EndpointError(f"{url} refused the request ({status}): {detail}")


# ---- request and response pieces ---------------------------------------------------------------------------
def _sampling_body(sampling: SamplingParams) -> dict[str, Any]:
    body: dict[str, Any] = {
        "max_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
    }
    if sampling.top_k > 0:
        body["top_k"] = sampling.top_k  # vLLM's extension; OpenAI's API has no top-k
    if sampling.stop_token_ids:
        body["stop_token_ids"] = list(sampling.stop_token_ids)  # vLLM's extension
    if sampling.seed is not None:
        body["seed"] = sampling.seed
    return body


def _first_choice(reply: dict[str, Any], name: str) -> dict[str, Any]:
    choices = reply.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise EndpointError(f"engine {name}: the endpoint's answer has no choices: {str(reply)[:300]}")
    return choices[0]


def _completion_token_ids(choice: dict[str, Any], name: str) -> list[int]:
    ids = choice.get("token_ids")
    if isinstance(ids, list):
        return [int(t) for t in ids]
    tokens = (choice.get("logprobs") or {}).get("tokens")
    if isinstance(tokens, list) and all(isinstance(t, str) and t.startswith("token_id:") for t in tokens):
        return [int(t.removeprefix("token_id:")) for t in tokens]
    raise EndpointError(
        f"engine {name}: the endpoint returned text but no token ids; the agent needs the exact ids. Serve the "
        "model with vLLM (it honours return_token_ids), or use OpenAIEngine.chat for text"
    )


def _completion_logprobs(choice: dict[str, Any], count: int, name: str) -> list[float]:
    values = (choice.get("logprobs") or {}).get("token_logprobs")
    if not isinstance(values, list) or len(values) != count:
        raise EndpointError(
            f"engine {name}: the endpoint sent {len(values) if isinstance(values, list) else 'no'} logprobs "
            f"for {count} tokens"
        )
    return [float(v) if v is not None else 0.0 for v in values]


def _finish_reason(choice: dict[str, Any]) -> FinishReason:
    # "tool_calls", "content_filter" and the like: the server stopped the text for its own reasons.
    return _FINISH_REASONS.get(str(choice.get("finish_reason")), "abort")


def _json(response: httpx.Response, url: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise EndpointError(f"{url} answered {response.status_code} with non-JSON: {response.text[:300]!r}") from None
    if not isinstance(body, dict):
        raise EndpointError(f"{url} answered a JSON {type(body).__name__}, not an object: {str(body)[:300]}")
    return body


def _error_detail(response: httpx.Response) -> str:
    """The server's own words: OpenAI's {"error": {"message": ...}}, vLLM's {"message": ...}, or the text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500].strip() or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if body.get("message"):
            return str(body["message"])
    return str(body)[:500]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _unavailable(url: str, err: BaseException, config: OpenAIConfig, tries: int) -> EndpointUnavailable:
    if isinstance(err, TimeoutError | httpx.TimeoutException) and not isinstance(err, httpx.ConnectTimeout):
        why = f"no answer within {config.timeout_s:g}s"
    else:
        why = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    return EndpointUnavailable(
        f"no OpenAI-compatible endpoint answers at {url} ({why}; {tries} tries). Start it (e.g. `vllm serve "
        f"MODEL --served-model-name {config.model}`) or fix endpoint.base_url"
    )


def _mismatch_message(config: OpenAIConfig, served: list[str]) -> str:
    return (
        f"the endpoint {config.base_url} serves {served or 'no models'}, not {config.model!r}: set endpoint.model "
        "to one of them (or start the server with --served-model-name)"
    )


def image_data_url(image: Any, image_format: str = "png") -> str:
    """`data:image/...;base64,...` for an RGB array, a PIL image, or PNG/JPEG bytes (sent as they are)."""
    if isinstance(image, bytes | bytearray):
        data = bytes(image)
        mime = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg" if data.startswith(b"\xff\xd8") else ""
        if not mime:
            raise ValueError("image bytes must be PNG or JPEG")
    else:
        from PIL import Image

        picture = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))
        buffer = io.BytesIO()
        if image_format == "jpeg":
            picture.convert("RGB").save(buffer, format="JPEG", quality=90)
            mime = "image/jpeg"
        else:
            picture.save(buffer, format="PNG")
            mime = "image/png"
        data = buffer.getvalue()
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


async def connect(base_url: str, model: str, **settings: Any) -> OpenAIEngine:
    """`OpenAIEngine.start(OpenAIConfig(base_url, model, **settings))`: the engine `droidrl eval --endpoint` uses."""
    return await OpenAIEngine.start(OpenAIConfig(base_url=base_url, model=model, **settings))
