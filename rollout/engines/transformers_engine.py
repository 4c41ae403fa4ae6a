"""A pure-PyTorch engine on a Hugging Face model: batched decode with a KV cache in a worker thread.

For CPU runs, tests and debugging where vLLM is too heavy. It meets the `Engine` contract exactly:
the logprob of each sampled token is the log-softmax of the raw logits (vLLM's "raw_logprobs"), and
a weight update lands between two decode steps, so requests in flight carry on with new weights.
A vision model (Qwen2.5-VL, e.g. the tiny-vl preset) takes images: each prompt holds one
`<|image_pad|>` per image, which the engine expands to the image's patch count (as vLLM does)
before a prefill that runs the vision tower; text and image requests share batches.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from droidrl.models.scoring import ImageInputs, expand_images, load_image_processor, mrope_positions
from droidrl.rollout.engines.base import Completion, FinishReason, SamplingParams


@dataclass
class TransformersEngineConfig:
    """How to run one engine: batch limits and the model's dtype."""

    model: str  # a Hugging Face model directory (config.json + safetensors)
    name: str = "hf-0"
    max_batch: int = 16  # requests decoded together
    batch_wait_s: float = 0.005  # how long the first request waits for others to join its batch
    max_model_len: int | None = None  # None: the model's max_position_embeddings
    dtype: str = "float32"  # float32 keeps engine and trainer logprobs equal to ~1e-6 on CPU
    version: int = 0  # policy version of the weights in `model`
    seed: int = 0  # seeds the sampling of requests that give no seed of their own

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"transformers_engine.max_batch must be >= 1, got {self.max_batch}")
        if self.batch_wait_s < 0:
            raise ValueError(f"transformers_engine.batch_wait_s must be >= 0, got {self.batch_wait_s}")


@dataclass
class _Request:
    prompt_ids: list[int]  # with image placeholders expanded: the model's real context
    sampling: SamplingParams
    generator: Any  # torch.Generator for this request's sampling
    future: Future[Completion]
    submitted: float
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    finish: FinishReason | None = None
    vision: ImageInputs | None = None  # pixels and patch grids of the request's images


_STOP = object()  # tells the worker to exit


class TransformersEngine:
    """An `Engine` holding one Hugging Face causal LM; concurrent `generate` calls share decode steps."""

    def __init__(self, config: TransformersEngineConfig, model: Any = None) -> None:
        import torch

        self.config = config
        self.name = config.name
        dtype = getattr(torch, config.dtype)
        self.model = model if model is not None else _load_model(config.model, dtype)
        self.model.eval()
        # A vision-language model names its image placeholder token; a text-only one has none.
        image_token = getattr(self.model.config, "image_token_id", None)
        self.image_token_id: int | None = int(image_token) if image_token is not None else None
        self._image_processor: Any = None  # loaded on the first request with images
        text_config = _text_config(self.model.config)  # a vision model keeps these in its text config
        self.max_model_len = config.max_model_len or int(text_config.max_position_embeddings)
        self.pad_id = int(getattr(self.model.config, "pad_token_id", None) or text_config.pad_token_id or 0)
        self._version = config.version
        self._seeds = itertools.count(config.seed * 1_000_003)  # distinct streams for unseeded requests
        # Held for each decode step and for each weight swap: a swap always lands between two steps.
        self._weights_lock = threading.Lock()
        self._queue: queue.Queue[Any] = queue.Queue()
        self._closed = False
        # Makes "not closed, so enqueue" atomic against close(): no request can land behind the stop mark.
        self._submit_lock = threading.Lock()
        self._worker = threading.Thread(target=self._run, name=f"{self.name}-decode", daemon=True)
        self._worker.start()

    @property
    def version(self) -> int:
        return self._version

    async def generate(
        self,
        prompt_ids: list[int],
        sampling: SamplingParams,
        images: list[np.ndarray] | None = None,
        session: str | None = None,
    ) -> Completion:
        import torch

        if images and self.image_token_id is None:
            raise ValueError(
                f"engine {self.name} is text-only and got {len(images)} image(s); load a vision model (e.g. the "
                "tiny-vl preset), or build the prompt from the UI XML"
            )
        if not prompt_ids:
            raise ValueError("prompt_ids is empty; give at least one token id")
        vocab = int(_text_config(self.model.config).vocab_size)
        bad = [t for t in prompt_ids if not 0 <= t < vocab]
        if bad:
            raise ValueError(f"prompt_ids has ids outside the model's vocabulary [0, {vocab}): {bad[:5]}")
        vision = None
        context = list(prompt_ids)
        if self.image_token_id is not None and (images or self.image_token_id in prompt_ids):
            # The image processor takes milliseconds per screenshot: off the event loop.
            vision = await asyncio.to_thread(self._expand_images, context, list(images or []))
            context = vision.ids
        if len(context) >= self.max_model_len:
            raise ValueError(
                f"prompt of {len(context)} tokens (image placeholders expanded) leaves no room to generate "
                f"(max_model_len {self.max_model_len}); shorten the history or raise max_model_len"
            )
        seed = sampling.seed if sampling.seed is not None else next(self._seeds)
        generator = torch.Generator().manual_seed(seed)
        future: Future[Completion] = Future()
        with self._submit_lock:
            if self._closed:
                raise RuntimeError(f"engine {self.name} is closed; create a new TransformersEngine")
            request = _Request(context, sampling, generator, future, time.perf_counter(), vision=vision)
            self._queue.put(request)
        return await asyncio.wrap_future(future)

    def _expand_images(self, prompt_ids: list[int], images: list[np.ndarray]) -> ImageInputs:
        if self._image_processor is None:
            self._image_processor = load_image_processor(str(self.config.model))
        assert self.image_token_id is not None
        return expand_images(prompt_ids, images, self._image_processor, self.image_token_id)

    async def update_weights(self, source: Path, version: int) -> None:
        await asyncio.to_thread(self._load_weights, Path(source), version)

    def _load_weights(self, source: Path, version: int) -> None:
        import torch

        from droidrl.models.presets import read_safetensors

        tensors = read_safetensors(source)  # read outside the lock: decoding goes on meanwhile
        # Every name of every parameter: a tied lm_head.weight may or may not be in the files.
        params = dict(self.model.named_parameters(remove_duplicate=False))
        params.update(_checkpoint_names(self.model, params))  # as save_pretrained writes them
        unknown = sorted(set(tensors) - set(params))
        if unknown:
            raise ValueError(f"weights in {source} do not fit model {self.name}: unknown names {unknown[:5]}")
        covered = {id(params[name]) for name in tensors}
        missing = sorted(name for name, param in params.items() if id(param) not in covered)
        if missing:  # a partial export would silently mix two policies
            raise ValueError(f"weights in {source} lack {len(missing)} tensors of model {self.name}: {missing[:5]}")
        with self._weights_lock, torch.no_grad():
            for name, tensor in tensors.items():
                target = params[name]
                if target.shape != tensor.shape:
                    raise ValueError(
                        f"{source}: {name} has shape {tuple(tensor.shape)}, model has {tuple(target.shape)}"
                    )
                target.copy_(tensor)
            self._version = version

    async def close(self) -> None:
        with self._submit_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        await asyncio.to_thread(self._worker.join)

    # ---- worker thread ---------------------------------------------------------------------------------

    def _run(self) -> None:
        import torch

        torch.set_grad_enabled(False)
        while True:
            batch = self._collect()
            if batch is None:
                self._abort_pending()
                return
            try:
                self._decode(batch)
            except Exception as err:  # a bug or OOM must reach the callers, not kill the thread silently
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(err)
            if self._closed:
                self._abort_pending()
                return

    def _collect(self) -> list[_Request] | None:
        first = self._queue.get()
        if first is _STOP:
            return None
        batch = [first]
        deadline = time.perf_counter() + self.config.batch_wait_s
        while len(batch) < self.config.max_batch:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.perf_counter()))
            except queue.Empty:
                break
            if item is _STOP:
                self._queue.put(_STOP)  # exit after this batch (close() has set _closed)
                break
            batch.append(item)
        return batch

    def _abort_pending(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                item.finish = "abort"
                self._resolve(item, time.perf_counter())

    def _decode(self, batch: list[_Request]) -> None:
        """Prefill the left-padded batch, then decode step by step until every request has finished."""
        import torch
        from transformers import DynamicCache

        started = time.perf_counter()
        width = max(len(r.prompt_ids) for r in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, request in enumerate(batch):
            ids[row, width - len(request.prompt_ids) :] = torch.tensor(request.prompt_ids)
            mask[row, width - len(request.prompt_ids) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        images = [r.vision for r in batch if r.vision is not None and r.vision.pixel_values is not None]
        prefill: dict[str, Any] = {}  # the images go into the first forward pass only: then they are in the cache
        if images:
            grid = torch.cat([v.image_grid_thw for v in images])
            prefill = {"pixel_values": torch.cat([v.pixel_values for v in images]), "image_grid_thw": grid}
            positions = mrope_positions(self.model, ids, mask, grid)  # (3, rows, width)
        cache = DynamicCache(config=self.model.config)
        active = list(range(len(batch)))  # rows of the cache still decoding, as indices into batch
        while active:
            if self._closed:
                for index in active:
                    batch[index].finish = "abort"
                break
            with self._weights_lock:
                version = self._version
                out = self.model(
                    input_ids=ids,
                    attention_mask=mask,
                    position_ids=positions,
                    past_key_values=cache,
                    use_cache=True,
                    **prefill,
                )
            prefill = {}
            logits = out.logits[:, -1, :].float()
            logprobs = torch.log_softmax(logits, dim=-1)  # raw: before temperature, top-k, top-p
            next_ids = torch.empty(len(active), dtype=torch.long)
            still: list[int] = []
            for row, index in enumerate(active):
                request = batch[index]
                token = _sample(logits[row], request.sampling, request.generator)
                next_ids[row] = token
                request.token_ids.append(token)
                request.logprobs.append(float(logprobs[row, token]))
                request.versions.append(version)
                request.finish = _finished(request, self.max_model_len)
                if request.finish is None:
                    still.append(row)
                else:
                    self._resolve(request, started)
            if len(still) < len(active):  # drop finished rows from the cache: no wasted compute on them
                keep = torch.tensor(still, dtype=torch.long)
                cache.batch_select_indices(keep)
                mask, positions, next_ids = mask[keep], positions[..., keep, :], next_ids[keep]
                active = [active[row] for row in still]
            ids = next_ids[:, None]
            mask = torch.cat([mask, torch.ones((len(active), 1), dtype=torch.long)], dim=-1)
            positions = _next_positions(positions)
        for index in active:
            self._resolve(batch[index], started)

    def _resolve(self, request: _Request, started: float) -> None:
        now = time.perf_counter()
        completion = Completion(
            token_ids=request.token_ids,
            logprobs=request.logprobs,
            versions=request.versions,
            finish_reason=request.finish or "abort",
            engine=self.name,
            timings={"queue_s": max(0.0, started - request.submitted), "generate_s": now - started},
        )
        if not request.future.done():
            request.future.set_result(completion)


def _load_model(path: str, dtype: Any) -> Any:
    """A causal LM, or an image-text-to-text model when the config has a vision tower."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText

    config = AutoConfig.from_pretrained(path)
    if getattr(config, "vision_config", None) is not None:
        return AutoModelForImageTextToText.from_pretrained(path, dtype=dtype)
    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype)


def _checkpoint_names(model: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters under the names `save_pretrained` gives them, where those differ from the module names.

    transformers 5 renames some models' weights on load (Qwen2.5-VL: `model.layers.*` in the file is
    `model.language_model.layers.*` in the module); an exported checkpoint keeps the file names.
    """
    try:
        from transformers.core_model_loading import revert_weight_conversion

        saved = revert_weight_conversion(model, dict(params))
    except Exception:  # an older or newer transformers without this helper: module names only
        return {}
    known = {id(p) for p in params.values()}
    # Only pure renames: a converted (e.g. split or merged) tensor is a new object and cannot be copied into.
    return {name: tensor for name, tensor in saved.items() if id(tensor) in known}


def _text_config(config: Any) -> Any:
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def _next_positions(positions: Any) -> Any:
    """Position ids of the next token of each row: (rows, 1), or (3, rows, 1) for multimodal RoPE.

    After an image the three axes differ and the next text position is one past the largest of
    them (Qwen2-VL's rope delta); for text alone that is the last position + 1.
    """
    if positions.ndim == 2:
        return positions[:, -1:] + 1
    top = positions.amax(dim=0).amax(dim=-1)  # (rows,)
    return (top + 1).view(1, -1, 1).expand(3, -1, 1)


def _finished(request: _Request, max_model_len: int) -> FinishReason | None:
    if request.token_ids[-1] in request.sampling.stop_token_ids:
        return "stop"
    if len(request.token_ids) >= request.sampling.max_tokens:
        return "length"
    if len(request.prompt_ids) + len(request.token_ids) >= max_model_len:
        return "length"
    return None


def _sample(logits: Any, sampling: SamplingParams, generator: Any) -> int:
    """One token from a row of raw logits, as vLLM samples: temperature, top-k, top-p, then a draw.

    The draw is argmax(probs / q) with q ~ Exponential(1) from the request's generator (vLLM's way):
    the random numbers do not depend on the probabilities, so a seeded request gives the same
    tokens whatever batch it shares.
    """
    import torch

    if sampling.temperature == 0:
        return int(torch.argmax(logits))
    scaled = logits / sampling.temperature
    if 0 < sampling.top_k < scaled.numel():
        kth = torch.topk(scaled, sampling.top_k).values[-1]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    probs = torch.softmax(scaled, dim=-1)
    if sampling.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        # Keep the smallest prefix whose mass reaches top_p (the top token always stays).
        outside = sorted_probs.cumsum(-1) - sorted_probs >= sampling.top_p
        sorted_probs = sorted_probs.masked_fill(outside, 0.0)
        probs = torch.zeros_like(probs).scatter(0, order, sorted_probs)
        probs = probs / probs.sum()
    q = torch.empty_like(probs).exponential_(1.0, generator=generator)
    return int(torch.argmax(probs / q))
