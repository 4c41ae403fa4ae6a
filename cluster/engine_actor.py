"""Engines in Ray actors: `EngineActor` hosts a vLLM or transformers engine; `EngineClient` is its `Engine` face.

`client = await start_engine(EngineSpec("vllm", model_dir))` starts the actor (one GPU when the cluster has
GPUs, none on CPU) and returns a client that meets the `Engine` contract, so a `Router` treats remote and
in-process engines alike. The actor is named `droidrl-engine-<engine name>` in the job's namespace
(`ray.get_actor(actor_name("vllm-0"))`); `revive_engine` is the router's hook that restarts a dead one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from droidrl.rollout.engines.base import Completion, Engine, SamplingParams

log = logging.getLogger(__name__)

EngineKind = Literal["vllm", "transformers"]
ACTOR_PREFIX = "droidrl-engine-"
PING_TIMEOUT_S = 30.0  # an engine actor that does not say its version within this is restarted


def actor_name(engine_name: str) -> str:
    """The Ray actor name of the engine called `engine_name` (e.g. `vllm-0`), for `ray.get_actor`."""
    return f"{ACTOR_PREFIX}{engine_name}"


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
        """Build the engine; returns its name, version, NCCL worker count and this process's pid."""
        self.engine = await build_engine(self.spec)
        workers = int(self.spec.options.get("tensor_parallel_size", 1))
        return {"name": self.engine.name, "version": self.engine.version, "workers": workers, "pid": os.getpid()}

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

    def __init__(
        self, handle: Any, name: str, version: int, workers: int = 1, spec: EngineSpec | None = None, pid: int = 0
    ) -> None:
        self.handle = handle
        self.name = name
        self.workers = workers  # NCCL ranks this engine contributes to a weight broadcast
        self.spec = spec  # what `revive` restarts it from
        self.pid = pid  # the actor's process (on its node)
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
            await asyncio.wait_for(self.handle.close.remote(), PING_TIMEOUT_S)
        finally:
            with contextlib.suppress(Exception):  # already dead: nothing to kill
                ray.kill(self.handle)

    async def revive(self) -> bool:
        """Check the actor; when it is gone (or does not answer) start a new one in its place; True if restarted.

        The new actor loads the spec's model at the spec's version: that directory stays (a weight sync prunes
        its old versions, possibly while a restart loads one), and the caller then pushes the current weights.
        Sessions and requests of the old actor are lost: the router retries them elsewhere.
        """
        import ray

        if self.spec is None:
            raise RuntimeError(f"engine {self.name} has no EngineSpec to restart from; start it with start_engine")
        try:
            await asyncio.wait_for(self.handle.version.remote(), PING_TIMEOUT_S)
            return False
        except Exception as error:  # dead, hung, or alive without an engine: all need a new actor
            first_line = (str(error).strip().splitlines() or [""])[0]
            log.debug("engine %s does not answer (%s: %s); restarting it", self.name, type(error).__name__, first_line)
        if self.spec.options.get("weight_transfer_backend") == "nccl":
            # A new actor is not in the broadcaster's NCCL group and would serve the start weights: keep it out.
            raise RuntimeError(f"engine {self.name} receives weights over NCCL; a restarted engine cannot rejoin")
        with contextlib.suppress(Exception):
            ray.kill(self.handle, no_restart=True)
        await _name_released(actor_name(self.spec.name))
        fresh = await start_engine(self.spec)
        self.handle, self.pid, self._version = fresh.handle, fresh.pid, fresh.version
        return True


async def revive_engine(engine: Engine) -> bool:
    """The `Router`'s revive hook for engine actors (`EngineClient.revive`); other engines are left as they are."""
    if isinstance(engine, EngineClient):
        return await engine.revive()
    return False


async def _name_released(name: str, timeout_s: float = 30.0) -> None:
    """Wait until Ray has released a killed actor's name, so its replacement can take it."""
    import ray

    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        try:
            ray.get_actor(name)
        except ValueError:  # no live actor holds the name
            return
        await asyncio.sleep(0.2)


async def start_engine(spec: EngineSpec) -> EngineClient:
    """Start an `EngineActor` for `spec` and wait until its engine is loaded. Needs `ray.init()` first."""
    import ray

    if not ray.is_initialized():
        raise RuntimeError("start_engine needs a Ray cluster: call ray.init() (or run under `ray job submit`) first")
    num_gpus = spec.num_gpus
    if num_gpus is None:
        tensor_parallel = int(spec.options.get("tensor_parallel_size", 1))
        num_gpus = tensor_parallel if ray.cluster_resources().get("GPU", 0) > 0 else 0
    actor = ray.remote(EngineActor).options(
        num_gpus=num_gpus, num_cpus=spec.num_cpus, name=actor_name(spec.name), max_restarts=0
    )
    handle = actor.remote(spec)
    try:
        info = await handle.start.remote()
    except BaseException:  # a failed or cancelled start must not keep the actor (and its GPU and name)
        ray.kill(handle)
        raise
    log.debug("engine %s started (actor %s, pid %s)", info["name"], actor_name(spec.name), info["pid"])
    return EngineClient(
        handle, name=info["name"], version=info["version"], workers=info["workers"], spec=spec, pid=info["pid"]
    )
