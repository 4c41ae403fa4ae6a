"""Engines in Ray actors: `EngineActor` hosts a vLLM or transformers engine; `EngineClient` is its `Engine` face.

`client = await start_engine(EngineSpec("vllm", model_dir))` starts the actor (one GPU when the cluster has
GPUs, none on CPU) and returns a client that meets the `Engine` contract, so a `Router` treats remote and
in-process engines alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from droidrl.rollout.engines.base import Completion, Engine, SamplingParams

EngineKind = Literal["vllm", "transformers"]


@dataclass
class EngineSpec:
    """Which engine an actor hosts and what it asks Ray for."""

    kind: EngineKind
    model: str  # a Hugging Face model directory
    name: str = "engine-0"
    version: int = 0  # the policy version of the weights in `model`
    options: dict[str, Any] = field(default_factory=dict)  # VLLMConfig fields, or TransformersEngine arguments
    num_gpus: float | None = None  # None: one per tensor-parallel rank when the cluster has GPUs, else 0
    num_cpus: float = 1

    def __post_init__(self) -> None:
        if self.kind not in ("vllm", "transformers"):
            raise ValueError(f"engine.kind must be 'vllm' or 'transformers', got {self.kind!r}")


async def build_engine(spec: EngineSpec) -> Engine:
    """Build the engine `spec` names, in this process (an actor calls it; tests may too)."""
    if spec.kind == "vllm":
        from droidrl.rollout.engines.vllm_engine import VLLMConfig, VLLMEngine

        on_gpu = _has_cuda()
        config = (
            VLLMConfig(model=spec.model, **spec.options) if on_gpu else VLLMConfig.for_cpu(spec.model, **spec.options)
        )
        return await VLLMEngine.start(config, name=spec.name, version=spec.version)
    from droidrl.rollout.engines.transformers_engine import TransformersEngine, TransformersEngineConfig

    return TransformersEngine(
        TransformersEngineConfig(model=spec.model, name=spec.name, version=spec.version, **spec.options)
    )


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


class EngineActor:
    """A Ray actor body holding one engine. Wrap it with `ray.remote` (as `start_engine` does)."""

    def __init__(self, spec: EngineSpec) -> None:
        self.spec = spec
        self.engine: Any = None

    async def start(self) -> dict[str, Any]:
        """Build the engine; returns its name, version and NCCL worker count."""
        self.engine = await build_engine(self.spec)
        workers = int(self.spec.options.get("tensor_parallel_size", 1))
        return {"name": self.engine.name, "version": self.engine.version, "workers": workers}

    async def generate(
        self, prompt_ids: list[int], sampling: SamplingParams, images: list[np.ndarray] | None, session: str | None
    ) -> Completion:
        return await self._engine().generate(prompt_ids, sampling, images, session=session)

    async def update_weights(self, source: str, version: int) -> int:
        await self._engine().update_weights(Path(source), version)
        return self.engine.version

    async def version(self) -> int:
        return self._engine().version

    async def load(self) -> int:
        """Requests in flight on this engine."""
        return int(getattr(self._engine(), "load", 0))

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.close()
            self.engine = None

    # The NCCL weight path (vLLM engines started with weight_transfer_backend="nccl"); see weight_sync.py.
    async def init_weight_transfer(self, init_info: dict[str, Any]) -> None:
        await self._vllm().init_weight_transfer(init_info)

    async def begin_weight_update(self) -> None:
        await self._vllm().begin_weight_update()

    async def receive_weights(self, update_info: dict[str, Any]) -> None:
        await self._vllm().receive_weights(update_info)

    async def finish_weight_update(self, version: int) -> None:
        await self._vllm().finish_weight_update(version)

    def _engine(self) -> Any:
        if self.engine is None:
            raise RuntimeError(f"engine actor {self.spec.name} is not started (or was closed); call start() first")
        return self.engine

    def _vllm(self) -> Any:
        engine = self._engine()
        if not hasattr(engine, "receive_weights"):
            raise RuntimeError(f"engine {self.spec.name} is a {self.spec.kind} engine; NCCL weight sync needs vLLM")
        return engine


class EngineClient:
    """The `Engine` contract over an `EngineActor` handle: a router mixes these with in-process engines."""

    def __init__(self, handle: Any, name: str, version: int, workers: int = 1) -> None:
        self.handle = handle
        self.name = name
        self.workers = workers  # NCCL ranks this engine contributes to a weight broadcast
        self._version = version

    @property
    def version(self) -> int:
        """The version the actor last confirmed (updates go through this client or `mark_version`)."""
        return self._version

    def mark_version(self, version: int) -> None:
        """Record a version pushed by another path (the NCCL broadcaster talks to the actor directly)."""
        self._version = version

    async def generate(
        self,
        prompt_ids: list[int],
        sampling: SamplingParams,
        images: list[np.ndarray] | None = None,
        session: str | None = None,
    ) -> Completion:
        return await self.handle.generate.remote(prompt_ids, sampling, images, session)

    async def update_weights(self, source: Path, version: int) -> None:
        self._version = await self.handle.update_weights.remote(str(source), version)

    async def load(self) -> int:
        """Requests in flight on the actor's engine."""
        return await self.handle.load.remote()

    async def close(self) -> None:
        import ray

        try:
            await self.handle.close.remote()
        finally:
            ray.kill(self.handle)


async def start_engine(spec: EngineSpec) -> EngineClient:
    """Start an `EngineActor` for `spec` and wait until its engine is loaded. Needs `ray.init()` first."""
    import ray

    if not ray.is_initialized():
        raise RuntimeError("start_engine needs a Ray cluster: call ray.init() (or run under `ray job submit`) first")
    num_gpus = spec.num_gpus
    if num_gpus is None:
        tensor_parallel = int(spec.options.get("tensor_parallel_size", 1))
        num_gpus = tensor_parallel if ray.cluster_resources().get("GPU", 0) > 0 else 0
    actor = ray.remote(EngineActor).options(num_gpus=num_gpus, num_cpus=spec.num_cpus)
    handle = actor.remote(spec)
    try:
        info = await handle.start.remote()
    except Exception:
        ray.kill(handle)
        raise
    return EngineClient(handle, name=info["name"], version=info["version"], workers=info["workers"])
