"""The learner as a group of Ray actors: one DeepSpeed rank per actor, one torch.distributed group, one policy.

`LearnerGroup` mirrors `trainer.learner.Learner`: `train_step(samples)` splits the samples across the
ranks (balanced by tokens) and every rank takes its share of the one optimizer step. The learner
normalises the loss over the whole step and pads short ranks with zero-weight micro-batches, so the
summed gradient equals a single process's on all the samples.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ray

from droidrl.trainer.learner import LearnerConfig
from droidrl.trainer.samples import StepSample


class LearnerWorker:
    """A Ray actor body: one rank of the group, holding one `Learner`. Wrapped with `ray.remote` by the group."""

    def __init__(self, rank: int, world_size: int) -> None:
        self.rank = rank
        self.world_size = world_size
        self.learner: Any = None

    def address(self) -> tuple[str, int]:
        """This node's address and a free port: rank 0's become the group's MASTER_ADDR / MASTER_PORT."""
        from droidrl.trainer.learner import _free_port

        return ray.util.get_node_ip_address(), _free_port()

    def start(self, config: LearnerConfig, master_addr: str, master_port: int) -> int:
        """Join the process group and build the learner (blocks until every rank has joined); returns the rank."""
        # Ray gives each GPU actor its own CUDA_VISIBLE_DEVICES, so the local device is always 0.
        os.environ.update(
            RANK=str(self.rank),
            WORLD_SIZE=str(self.world_size),
            LOCAL_RANK="0",
            MASTER_ADDR=master_addr,
            MASTER_PORT=str(master_port),
        )
        from droidrl.trainer.learner import Learner

        self.learner = Learner(config)
        return self.rank

    def call(self, method: str | Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`learner.<method>(*args)` when `method` is a name, else `method(learner, *args)`."""
        if isinstance(method, str):
            return getattr(self.learner, method)(*args, **kwargs)
        return method(self.learner, *args, **kwargs)

    def version(self) -> int:
        return int(self.learner.version)


def shard_by_tokens(samples: Sequence[StepSample], shards: int) -> list[list[int]]:
    """Sample indices for each of `shards` ranks, longest first to the rank with the fewest tokens so far.

    Every rank gets at least one sample when there are at least `shards` samples; each shard is in
    the samples' order.
    """
    loads = [0] * shards
    out: list[list[int]] = [[] for _ in range(shards)]
    for index in sorted(range(len(samples)), key=lambda i: (-samples[i].length, i)):
        rank = min(range(shards), key=lambda r: (loads[r], len(out[r]), r))
        out[rank].append(index)
        loads[rank] += samples[index].length
    return [sorted(shard) for shard in out]


class LearnerGroup:
    """`num_workers` Ray actors training one policy with DeepSpeed (one rank each).

    num_cpus / num_gpus are each actor's resources (default: 1 CPU on CPU, 1 GPU on GPU);
    actor_options go to Ray's `.options()` (e.g. a placement group strategy).
    """

    def __init__(
        self,
        config: LearnerConfig,
        num_workers: int,
        *,
        num_cpus: float = 1,
        num_gpus: float | None = None,
        actor_options: dict[str, Any] | None = None,
    ) -> None:
        if num_workers < 1:
            raise ValueError(f"trainer.num_workers must be >= 1, got {num_workers}")
        if num_gpus is None:
            num_gpus = 1 if ray.cluster_resources().get("GPU", 0) >= num_workers else 0
        self.config = config
        self.num_workers = num_workers
        env = {} if num_gpus else {"DS_ACCELERATOR": "cpu"}
        options: dict[str, Any] = {"num_cpus": num_cpus, "num_gpus": num_gpus, "runtime_env": {"env_vars": env}}
        options.update(actor_options or {})
        worker = ray.remote(LearnerWorker).options(**options)
        self.workers = [worker.remote(rank, num_workers) for rank in range(num_workers)]
        master_addr, master_port = ray.get(self.workers[0].address.remote())
        # All ranks must start together: each blocks in init_process_group until the others join.
        ray.get([w.start.remote(config, master_addr, master_port) for w in self.workers])
        self.version = config.version

    def call(self, method: str | Callable[..., Any], *args: Any, **kwargs: Any) -> list[Any]:
        """Run `learner.<method>(*args)` (or `method(learner, *args)`) on every rank at once; the ranks' results."""
        return ray.get([w.call.remote(method, *args, **kwargs) for w in self.workers])

    def _sharded(self, method: str, samples: Sequence[StepSample]) -> tuple[list[list[int]], list[Any]]:
        if len(samples) < self.num_workers:
            raise ValueError(
                f"{method} got {len(samples)} samples for {self.num_workers} learner ranks; give every rank at "
                "least one sample (a larger batch, or fewer trainer.num_workers)"
            )
        shards = shard_by_tokens(samples, self.num_workers)
        jobs = [
            w.call.remote(method, [samples[i] for i in shard]) for w, shard in zip(self.workers, shards, strict=True)
        ]
        return shards, ray.get(jobs)

    def train_step(self, samples: Sequence[StepSample]) -> dict[str, float]:
        """One optimizer step on `samples` across the ranks; returns the step's metrics (as a single learner's)."""
        _, results = self._sharded("train_step", samples)
        self.version += 1
        return combine_metrics(results)

    def sft_step(self, samples: Sequence[StepSample]) -> dict[str, float]:
        """One behaviour-cloning step on `samples` across the ranks."""
        _, results = self._sharded("sft_step", samples)
        self.version += 1
        return combine_metrics(results)

    def recompute_logprobs(self, samples: Sequence[StepSample]) -> list[list[float]]:
        """The current policy's logprobs of each sample's response; also stored as each sample's `old_logprobs`."""
        shards, results = self._sharded("recompute_logprobs", samples)
        for shard, logprobs in zip(shards, results, strict=True):
            for index, values in zip(shard, logprobs, strict=True):
                samples[index].old_logprobs = values
        return [list(s.old_logprobs or []) for s in samples]

    def skip_step(self) -> None:
        """Advance the version on every rank without training (see Learner.skip_step)."""
        self.call("skip_step")
        self.version += 1

    def state_dict(self) -> dict[str, Any]:
        """The full weights, from rank 0 (every rank joins the ZeRO-3 gather)."""
        return self.call("state_dict")[0]

    async def sync_weights(self, sync: Any) -> float:
        """Publish the current weights as `self.version` through a weight sync (FileWeightSync); returns seconds."""
        return await sync.update_weights(self.state_dict(), self.version)

    def export_weights(self, out_dir: Path) -> Path:
        """Write the current weights as an HF model dir (rank 0 writes; every rank joins the ZeRO-3 gather)."""
        self.call("export_weights", Path(out_dir))
        return Path(out_dir)

    def save_checkpoint(self, root: Path | str, step: int, **kwargs: Any) -> Path:
        """checkpoints.run_state.save_checkpoint on every rank; sampler, replay, groups and counters go to rank 0.

        The RNG states saved are this (driver) process's, where the sampling happens.
        """
        from droidrl.checkpoints import run_state

        kwargs.setdefault("rng_states", run_state.capture_rng_states())
        rank0_only = ("sampler", "replay", "buffered_groups", "counters")
        others = {k: v for k, v in kwargs.items() if k not in rank0_only}
        jobs = [
            w.call.remote(_save_on_rank, str(root), step, **(kwargs if rank == 0 else others))
            for rank, w in enumerate(self.workers)
        ]
        return Path(ray.get(jobs)[0])

    def load_checkpoint(
        self,
        path: Path | str,
        sampler: Any = None,
        replay: Any = None,
        restore_rng: bool = True,
        verify: str = "sha256",
    ) -> Any:
        """Load a checkpoint: DeepSpeed state on every rank, sampler, replay and RNGs here; returns the RunState."""
        from droidrl.checkpoints import run_state

        results = self.call(_load_on_rank, str(path), verify)
        # The driver's parts, through the same function with a learner that has nothing left to load.
        elsewhere = _LoadedElsewhere()
        state = run_state.load_checkpoint(path, elsewhere, sampler, replay, restore_rng=restore_rng, verify="none")
        self.version = int(results[0])
        return state

    def close(self) -> None:
        """Free the learners and end the actors."""
        try:
            self.call("close")
        finally:
            for worker in self.workers:
                ray.kill(worker)
            self.workers = []


def _save_on_rank(learner: Any, root: str, step: int, **kwargs: Any) -> str:
    from droidrl.checkpoints import run_state

    return str(run_state.save_checkpoint(root, step, learner, **kwargs))


def _load_on_rank(learner: Any, path: str, verify: str) -> int:
    from droidrl.checkpoints import run_state

    run_state.load_checkpoint(path, learner, restore_rng=False, verify=verify)
    return int(learner.version)


class _LoadedElsewhere:
    """A stand-in learner (and its engine) for the driver's half of `load_checkpoint`: the ranks loaded theirs."""

    def __init__(self) -> None:
        self.version = 0
        self.steps = 0
        self.engine = self

    def load_checkpoint(self, *_: Any, **__: Any) -> tuple[str, None]:
        return "loaded on the learner ranks", None


def combine_metrics(results: Sequence[dict[str, float]]) -> dict[str, float]:
    """One step's metrics from the ranks' own: as one learner on all the samples would report them.

    Each rank's loss terms are its share of the step's mean times the world size (DeepSpeed averages
    the ranks' gradients), so they average; counts add; extremes and timings take the extreme; other
    loss metrics are token-weighted means. grad_norm, lr and version are the same on every rank.
    """
    tokens = [r["tokens"] for r in results]
    total = sum(tokens) or 1.0
    combined: dict[str, float] = {}
    for name in results[0]:
        values = [r[name] for r in results]
        if name in ("loss", "pg_loss", "kl", "nll"):
            combined[name] = sum(values) / len(values)
        elif name in ("samples", "tokens"):
            combined[name] = sum(values)
        elif name.endswith("_max") or name.endswith("_s") or name == "micro_batches":
            combined[name] = max(values)
        elif name.endswith("_min"):
            combined[name] = min(values)
        elif name in ("grad_norm", "lr", "version"):
            combined[name] = values[0]
        else:
            combined[name] = sum(v * t for v, t in zip(values, tokens, strict=True)) / total
    return combined
