"""Weight sync from the trainer to the engines: shared-memory files on one node, an NCCL broadcast across nodes.

Both paths have the same shape: `await sync.update_weights(weights, version)` pushes the trainer's weights
(a module, a name -> tensor mapping, or for NCCL a vLLM `WeightSource`) to every engine and returns once
every engine reports `version`.

- `FileWeightSync` writes safetensors in Hugging Face names to /dev/shm (`write_weights`, atomic) and calls
  `engine.update_weights(dir, version)` (a `Router` fans it out, tolerating failed replicas). It runs
  anywhere, CPU included; `timeout_s` bounds one publish (`WeightSyncFailed` past it).
- `NcclWeightBroadcaster` broadcasts packed fixed-size buckets from trainer rank 0 to the vLLM workers over a
  dedicated NCCL group, using vLLM's own weight-transfer engines on both sides (the receiver is enabled by
  `VLLMConfig.weight_transfer_backend="nccl"`). It needs GPUs; this module stays importable without CUDA.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from droidrl.rollout.engines.base import Engine

DEFAULT_MAX_SHARD_BYTES = 5 << 30  # as save_pretrained: 5 GB shards
DEFAULT_BUCKET_BYTES = 1 << 30  # NCCL bucket size; both sides must agree (vLLM carries it in the handshake)
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def shm_root() -> Path:
    """Where weight files go on one node: /dev/shm (RAM, no disk I/O) when present, else the temp dir."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
    return base / f"droidrl-weights-{os.getuid()}"


def named_tensors(weights: torch.nn.Module | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """name -> tensor in Hugging Face names (a module's state dict, or the mapping as given)."""
    if isinstance(weights, torch.nn.Module):
        return dict(weights.state_dict())
    return dict(weights)


def write_weights(
    weights: torch.nn.Module | Mapping[str, torch.Tensor],
    out_dir: Path,
    *,
    copy_from: Path | None = None,
    dtype: torch.dtype | None = None,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
) -> Path:
    """Write `weights` as safetensors into the new directory `out_dir`, atomically; returns `out_dir`.

    The files are written into a hidden sibling directory that is renamed to `out_dir` at the end, so an
    engine never sees a half-written checkpoint. Tensors that share storage (tied embeddings) are written
    once, under their first name, as `save_pretrained` does. `copy_from` copies a model directory's other
    files (config, tokenizer) so `out_dir` is also a complete Hugging Face model directory.
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(
            f"{out_dir} already exists; write each version to a new directory (e.g. root/v{{version}}) "
            "so engines still reading the previous one are not disturbed"
        )
    tensors = _unique_cpu_tensors(named_tensors(weights), dtype)
    if not tensors:
        raise ValueError("write_weights got no tensors; pass a module or a non-empty name -> tensor mapping")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        _save_shards(tensors, tmp, max_shard_bytes)
        if copy_from is not None:
            _copy_model_files(Path(copy_from), tmp)
        os.rename(tmp, out_dir)  # atomic on one filesystem: the sibling guarantees that
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _unique_cpu_tensors(tensors: Mapping[str, torch.Tensor], dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    seen: set[tuple[int, int, tuple[int, ...]]] = set()
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"weight {name!r} is a {type(tensor).__name__}, not a torch.Tensor")
        full = tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor  # FSDP DTensor shards
        key = (full.untyped_storage().data_ptr(), full.storage_offset(), tuple(full.shape))
        if full.numel() and key in seen:
            continue  # a tied weight: the loader re-ties it from the first name
        seen.add(key)
        out[name] = full.detach().to(device="cpu", dtype=dtype or full.dtype).contiguous()
    return out


def _save_shards(tensors: dict[str, torch.Tensor], directory: Path, max_shard_bytes: int) -> None:
    from safetensors.torch import save_file

    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = tensor
        size += nbytes
    if len(shards) == 1:
        save_file(shards[0], str(directory / "model.safetensors"), metadata={"format": "pt"})
        return
    weight_map: dict[str, str] = {}
    for i, shard in enumerate(shards, start=1):
        filename = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(directory / filename), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard, filename))
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))


def _copy_model_files(source: Path, directory: Path) -> None:
    if not (source / "config.json").exists():
        raise FileNotFoundError(f"copy_from={source} has no config.json; pass a Hugging Face model directory")
    for path in source.iterdir():
        if path.is_file() and not path.name.endswith(_WEIGHT_SUFFIXES) and path.name not in _WEIGHT_INDEXES:
            shutil.copy2(path, directory / path.name)


class WeightSyncFailed(RuntimeError):
    """Publishing a policy version did not finish in time: no engine can be trusted to hold it."""


class FileWeightSync:
    """One node: write the weights to shared memory, then every engine reloads them in place.

    `engine` is any `Engine`; pass a `Router` to update all of its engines (one that fails is reported in
    `metrics()` and brought to the version before it serves again). Each version gets its own directory
    under `root`; the newest `keep` are kept (an engine may still be reading the previous one, and a
    restarted engine loads the newest). `timeout_s` bounds the engine update of one publish.
    """

    def __init__(
        self,
        engine: Engine,
        root: Path | None = None,
        keep: int = 2,
        copy_from: Path | None = None,
        timeout_s: float = 900.0,
    ):
        if keep < 1:
            raise ValueError(f"weight_sync.keep must be >= 1, got {keep}")
        if not timeout_s > 0:
            raise ValueError(f"weight_sync.timeout_s must be > 0, got {timeout_s}")
        self.engine = engine
        self.root = Path(root) if root is not None else shm_root()
        self.keep = keep
        self.copy_from = copy_from
        self.timeout_s = timeout_s
        self.last_report: Any = None  # what the engine's update_weights returned (a Router's WeightUpdateReport)

    async def update_weights(self, weights: torch.nn.Module | Mapping[str, torch.Tensor], version: int) -> float:
        """Publish `weights` as `version` to the engine; returns the seconds it took.

        Raises WeightSyncFailed when the engine did not take them within `timeout_s`.
        """
        start = time.perf_counter()
        path = self.root / f"v{version:08d}"
        if path.exists():  # a retried step: its files are complete (the rename is atomic)
            shutil.rmtree(path)
        # In a thread: serializing a large model takes seconds, and the event loop keeps serving rollouts.
        await asyncio.to_thread(write_weights, weights, path, copy_from=self.copy_from)
        try:
            async with asyncio.timeout(self.timeout_s):
                self.last_report = await self.engine.update_weights(path, version)
        except TimeoutError:
            raise WeightSyncFailed(
                f"engine {self.engine.name} did not load policy version {version} within {self.timeout_s:g}s; "
                "it is stuck or far too slow (check its log), so the run stops rather than train on stale rollouts"
            ) from None
        self._prune()
        return time.perf_counter() - start

    def metrics(self) -> dict[str, float]:
        """engine/* counters of a Router (failures, restarts, sessions moved, ...); empty for a single engine."""
        stats = getattr(self.engine, "stats", None)  # a Router's RouterStats; plain engines keep none
        counters = stats.as_dict() if hasattr(stats, "as_dict") else {}
        out = {f"engine/{name}": float(value) for name, value in counters.items()}
        failed = getattr(self.last_report, "failed", None)
        if failed is not None:
            out["engine/update_failed_replicas"] = float(len(failed))
        return out

    def _prune(self) -> None:
        versions = sorted(p for p in self.root.glob("v*") if p.is_dir())
        for old in versions[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)


# ---- NCCL: trainer rank 0 -> every vLLM worker --------------------------------------------------------------
class _EngineActorsClient:
    """vLLM's `VLLMWeightSyncClient` protocol over droidrl engine actors (`cluster.engine_actor.EngineActor`).

    vLLM's own Ray client sends one init payload to all handles, which suits one data-parallel deployment.
    Our engines are independent, so each gets its own NCCL rank offset here: the trainer is rank 0, engine i's
    workers follow those of engines 0..i-1.
    """

    def __init__(self, handles: Sequence[Any], workers_per_engine: Sequence[int]) -> None:
        self.handles = list(handles)
        self.offsets = [1 + sum(workers_per_engine[:i]) for i in range(len(handles))]
        self.version: int | None = None  # set by the broadcaster before each round

    def init_weight_transfer_engine(self, init_info: dict[str, Any]) -> None:
        import ray

        ray.get(
            [
                handle.init_weight_transfer.remote(dict(init_info, rank_offset=offset))
                for handle, offset in zip(self.handles, self.offsets, strict=True)
            ]
        )

    def start_weight_update(self) -> None:
        import ray

        ray.get([handle.begin_weight_update.remote() for handle in self.handles])

    def update_weights(self, update_info: dict[str, Any]) -> None:
        import ray

        ray.get([handle.receive_weights.remote(update_info) for handle in self.handles])

    def finish_weight_update(self, weight_version: str | None = None) -> None:
        import ray

        if self.version is None:
            raise RuntimeError("finish_weight_update before a version was set; call update_weights(weights, version)")
        ray.get([handle.finish_weight_update.remote(self.version) for handle in self.handles])


def weight_source(weights: Any) -> Any:
    """A vLLM `WeightSource` for a module (FSDP shards are gathered as sent) or a name -> tensor mapping."""
    from vllm.distributed.weight_transfer.base import ModuleSource, ParamMeta, WeightSource

    if isinstance(weights, WeightSource):
        return weights
    if isinstance(weights, torch.nn.Module):
        return ModuleSource(weights)

    class MappingSource(WeightSource):
        def __init__(self, tensors: Mapping[str, torch.Tensor]) -> None:
            self.tensors = dict(tensors)

        def metadata(self) -> list[Any]:
            return [ParamMeta(name, t.dtype, tuple(t.shape)) for name, t in self.tensors.items()]

        def __iter__(self) -> Iterator[tuple[str, torch.Tensor]]:
            yield from self.tensors.items()

    return MappingSource(weights)


class NcclWeightBroadcaster:
    """Across nodes: broadcast the trainer's weights to every vLLM worker in packed fixed-size buckets.

    Runs on every trainer rank (`trainer_rank`); rank 0 sends, the others only take part in the gathers
    the source needs. `engines` are `cluster.engine_actor.EngineClient`s (or anything with `.handle` and
    `.workers`) whose engines were started with `weight_transfer_backend="nccl"`. Per round: all engines
    pause with their requests kept, the buckets stream through NCCL into `model.load_weights`, then every
    engine stamps `version` and resumes.

    NOT YET RUN: written against vLLM 0.32's `NCCLTrainerWeightTransferEngine`, but no GPU machine has
    exercised it. Run it on one before relying on it.
    """

    def __init__(
        self,
        engines: Sequence[Any],
        *,
        master_address: str,
        master_port: int,
        trainer_rank: int = 0,
        bucket_bytes: int = DEFAULT_BUCKET_BYTES,
        num_buffers: int = 2,
    ) -> None:
        if not engines:
            raise ValueError("NcclWeightBroadcaster needs at least one engine")
        self.engines = list(engines)
        self.master_address = master_address
        self.master_port = master_port
        self.trainer_rank = trainer_rank
        self.bucket_bytes = bucket_bytes
        self.num_buffers = num_buffers
        self._client = _EngineActorsClient([e.handle for e in self.engines], [e.workers for e in self.engines])
        self._transfer: Any = None

    @property
    def world_size(self) -> int:
        """The NCCL group: the sending trainer rank plus every engine worker."""
        return 1 + sum(e.workers for e in self.engines)

    def connect(self, weights: Any) -> None:
        """Open the NCCL group with every engine worker (a rendezvous: all of them join at once)."""
        from vllm.distributed.weight_transfer.nccl_engine import (
            NCCLTrainerInitInfo,
            NCCLTrainerWeightTransferEngine,
        )

        # vLLM's recommendation: its NCCL groups break if the CUDA caching allocator uses cuMem.
        os.environ.setdefault("NCCL_CUMEM_ENABLE", "0")
        init_info = NCCLTrainerInitInfo(
            master_address=self.master_address,
            master_port=self.master_port,
            world_size=self.world_size,
            packed=True,
            packed_buffer_size_bytes=self.bucket_bytes,
            packed_num_buffers=self.num_buffers,
            rank=self.trainer_rank,
        )
        self._transfer = NCCLTrainerWeightTransferEngine.trainer_init(
            init_info, client=self._client, source=weight_source(weights)
        )

    async def update_weights(self, weights: Any, version: int) -> float:
        """Broadcast `weights` as `version` to every engine; returns the seconds it took.

        The broadcast runs on the calling thread on purpose: NCCL calls must come from the thread that owns
        the trainer's CUDA device and stream. The engine RPCs run on vLLM's helper thread meanwhile.
        """
        start = time.perf_counter()
        behind = [f"{e.name} has {e.version}" for e in self.engines if e.version > version]
        if behind:
            raise ValueError(f"cannot broadcast version {version}: {', '.join(behind)}; versions only go up")
        if self._transfer is None:
            self.connect(weights)
        self._transfer.source = weight_source(weights)
        self._client.version = version
        self._transfer.send_weights()
        for engine in self.engines:
            engine.mark_version(version)
        return time.perf_counter() - start

    def close(self) -> None:
        """Tear the NCCL group down on the trainer side (engines keep running)."""
        if self._transfer is not None:
            self._transfer.shutdown()
            self._transfer = None
