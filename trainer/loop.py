"""The `droidrl train` loop: SFT warm start, then online RL with evaluation, checkpoints and metrics.

One RL step: the curriculum sampler feeds task instances to the collector, which streams finished
groups under the staleness bound; B groups make a batch; AdaGRPO shapes rewards (SPA), computes group
advantages, mutes groups without signal and mixes in replayed positives (AdaPR); the learner takes
one optimizer step on the step-wise samples; the new weights reach the engine as the next policy
version; the collector is told, and admits the next groups.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import random
import shutil
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from droidrl.algorithms.adagrpo import PositiveReplay, prepare_batch
from droidrl.checkpoints.run_dir import SET_ASIDE_METRICS, STALE_FINAL, set_aside_metrics
from droidrl.checkpoints.run_state import (
    NoUsableCheckpoint,
    find_latest,
    select_checkpoint,
    set_aside_newer,
    snapshot_parts,
)
from droidrl.curricula.config import resolve_tasks
from droidrl.curricula.sampler import CurriculumSampler
from droidrl.rollout.agent import Agent, AgentConfig
from droidrl.rollout.collector import Collector, CollectorStats
from droidrl.rollout.engines.base import Engine, SamplingParams
from droidrl.rollout.engines.weight_sync import FileWeightSync, WeightSyncFailed
from droidrl.rollout.envpool import EnvPool
from droidrl.rollout.prompts import PromptConfig
from droidrl.rollout.records import write_groups
from droidrl.rollout.trajectory import Episode, Group
from droidrl.trainer.config import TrainConfig, env_options
from droidrl.trainer.evaluation import EvalResult, evaluate
from droidrl.trainer.protocols import Learner
from droidrl.trainer.report import write_report
from droidrl.trainer.samples import StepSample, samples_from_episode
from droidrl.trainer.tracking import Tracker

log = logging.getLogger(__name__)

START_FILE = "start.json"  # which policy the learner was built from: a resume must build it the same way


@dataclass
class Trajectory:
    """An episode as the replay buffer keeps it: its shaped reward, length and advantage (ReplayItem)."""

    episode: Episode
    reward: float
    length: int
    advantage: float


@dataclass
class TrainSummary:
    """What a `train` call did."""

    run_dir: Path
    steps: int
    version: int
    evals: list[EvalResult]
    final_model: Path | None
    seconds: float
    phase_seconds: dict[str, float]
    sft: dict[str, Any] | None = None
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class Events:
    """Callbacks for a user interface (progress bars); each may be None."""

    phase: Callable[[str, int | None], None] | None = None  # a phase starts: name, total units (None: unknown)
    advance: Callable[[str, int], None] | None = None  # units of the current phase done
    step: Callable[[int, dict[str, float]], None] | None = None  # an RL step finished: step, metrics
    evaluated: Callable[[EvalResult], None] | None = None

    def emit(self, name: str, *args: Any) -> None:
        callback = getattr(self, name)
        if callback is not None:
            callback(*args)


# ---- the batch: groups -> step-wise samples ----------------------------------------------------------


def build_batch(
    groups: Sequence[Group], config: TrainConfig, replay: PositiveReplay, rng: random.Random
) -> tuple[list[StepSample], dict[str, float]]:
    """AdaGRPO on B groups: SPA, dynamic sampling, advantages, AdaPR; the step-wise samples to train on."""
    episodes = [episode for group in groups for episode in group.episodes]
    prepared = prepare_batch(
        rewards=[e.reward for e in episodes],
        lengths=[max(1, e.length) for e in episodes],
        group_ids=[group.group_id for group in groups for _ in group.episodes],
        config=config.algorithm,
        task_ids=[e.template for e in episodes],
        rng=rng,
    )
    trajectories = [
        Trajectory(e, reward, max(1, e.length), advantage)
        for e, reward, advantage in zip(episodes, prepared.rewards, prepared.advantages, strict=True)
    ]
    kept = [t for t, keep in zip(trajectories, prepared.mask, strict=True) if keep and t.advantage != 0.0]
    replayed = replay.step(kept) if config.algorithm.replay.enabled else []
    samples = [s for t in kept for s in samples_from_episode(t.episode, t.advantage)]
    samples += [s for r in replayed for s in samples_from_episode(r.item.episode, r.advantage)]
    metrics = {f"algo/{k}": v for k, v in prepared.metrics.items()}
    metrics |= {f"replay/{k}": v for k, v in replay.stats().items()}
    metrics["replay/mixed_trajectories"] = float(len(replayed))
    metrics["batch/trained_trajectories"] = float(len(kept))
    metrics["batch/samples"] = float(len(samples))
    return samples, metrics


def rollout_metrics(groups: Sequence[Group], version: int) -> dict[str, float]:
    """Rewards, success by difficulty, lengths, invalid actions and staleness of one batch of groups."""
    episodes = [e for g in groups for e in g.episodes]
    turns = sum(e.length for e in episodes)
    out = {
        "rollout/reward_mean": float(np.mean([e.reward for e in episodes])) if episodes else 0.0,
        "rollout/success_rate": float(np.mean([e.success for e in episodes])) if episodes else 0.0,
        "rollout/episode_length": turns / len(episodes) if episodes else 0.0,
        "rollout/invalid_rate": sum(e.invalid_actions for e in episodes) / turns if turns else 0.0,
        "rollout/response_tokens": float(sum(e.tokens for e in episodes)),
    }
    by_difficulty: dict[str, list[bool]] = {}
    for e in episodes:
        by_difficulty.setdefault(e.difficulty or "unknown", []).append(e.success)
    for difficulty, wins in by_difficulty.items():
        out[f"rollout/success_rate/{difficulty}"] = float(np.mean(wins))
    lags = [version - e.min_version for e in episodes if e.min_version >= 0]
    out["rollout/staleness_max"] = float(max(lags)) if lags else 0.0
    out["rollout/staleness_mean"] = float(np.mean(lags)) if lags else 0.0
    return out


def importance_metrics(samples: Sequence[StepSample]) -> dict[str, float]:
    """How far the trainer's recomputed old logprobs are from the engine's (the TIS weights' inputs)."""
    diffs = [
        o - r
        for s in samples
        if s.old_logprobs is not None
        for o, r in zip(s.old_logprobs, s.rollout_logprobs, strict=True)
    ]
    if not diffs:
        return {}
    weights = np.exp(np.asarray(diffs))
    return {
        "is/weight_mean": float(weights.mean()),
        "is/weight_max": float(weights.max()),
        "is/weight_min": float(weights.min()),
        "is/abs_logprob_diff_max": float(np.abs(diffs).max()),
    }


# ---- the parts of a run -----------------------------------------------------------------------------


def prompt_config(config: TrainConfig) -> PromptConfig:
    return PromptConfig(observation=config.model.observation, max_history_turns=config.model.history)


def agent_config(config: TrainConfig, temperature: float, seed: int) -> AgentConfig:
    sampling = SamplingParams(
        temperature=temperature, top_p=config.rollout.top_p, max_tokens=config.rollout.max_tokens, seed=seed
    )
    return AgentConfig(prompt=prompt_config(config), sampling=sampling, max_steps=config.env.max_steps)


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def prepare_policy(config: TrainConfig, run_dir: Path, events: Events) -> tuple[Path, dict[str, Any] | None]:
    """The policy RL starts from: model.path, or a fresh tiny model; then SFT on demonstrations when enabled."""
    from droidrl.models.presets import init_model

    if config.model.path is not None:
        policy = Path(config.model.path)
    else:
        events.emit("phase", "init model", None)
        policy = init_model(config.model.preset, run_dir / "init", seed=config.seed)
    if not config.sft_enabled:
        return policy, None
    return run_warm_start(config, policy, run_dir, events)


def run_warm_start(
    config: TrainConfig, policy: Path, run_dir: Path, events: Events, out: Path | None = None
) -> tuple[Path, dict[str, Any]]:
    """SFT: expert demonstrations recorded through the same agent loop as RL (same prompts), plus any files.

    Both `droidrl train` (out: run_dir/sft) and `droidrl sft` (out: its run_dir) run this: the expert's
    episodes go to out/demonstrations.parquet, the cloned model to out/model.
    """
    from transformers import AutoTokenizer

    from droidrl.trainer.sft import (
        SFTConfig,
        collect_demonstrations_async,
        demonstration_samples,
        load_demonstrations,
        run_sft,
    )

    out = run_dir / "sft" if out is None else out
    sft = config.sft
    samples: list[StepSample] = []
    info: dict[str, Any] = {"demonstrations": 0, "episodes": 0, "records": None}
    if sft.seeds > 0:
        names = resolve_tasks(sft.tasks if sft.tasks is not None else config.curriculum.tasks, "tasks")
        events.emit("phase", "expert demonstrations", len(names) * sft.seeds)
        tokenizer = AutoTokenizer.from_pretrained(policy)
        done = 0

        def count(_: Episode) -> None:
            nonlocal done
            done += 1
            events.emit("advance", "expert demonstrations", done)

        groups = asyncio.run(
            collect_demonstrations_async(
                names,
                list(range(sft.seeds)),
                tokenizer,
                on_episode=count,
                agent_config=agent_config(config, config.rollout.temperature, config.seed),
                max_model_len=config.rollout.max_model_len,
                **env_options(config),
            )
        )
        info["records"] = str(write_groups(groups, out / "demonstrations.parquet", run_id="sft", batch_id=0))
        samples += demonstration_samples(groups)
        info["demonstrations"] = sum(1 for g in groups for e in g.episodes if e.success)
        info["episodes"] = sum(len(g.episodes) for g in groups)
    if sft.demos:
        samples += load_demonstrations(sft.demos)
    if not samples:
        raise ValueError("sft is enabled but there are no demonstrations: set sft.seeds >= 1 or give sft.demos")
    steps_per_epoch = -(-len(samples) // sft.batch_size)
    events.emit("phase", "sft", sft.epochs * steps_per_epoch)
    done_steps = 0

    def on_step(_: int, __: dict[str, float]) -> None:
        nonlocal done_steps
        done_steps += 1
        events.emit("advance", "sft", done_steps)

    result = run_sft(
        policy,
        out / "model",
        samples,
        epochs=sft.epochs,
        lr=sft.lr,
        config=SFTConfig(
            batch_size=sft.batch_size,
            max_tokens_per_micro_batch=sft.max_tokens_per_micro_batch,
            zero_stage=config.trainer.zero_stage,
            grad_clip=config.trainer.grad_clip,
            seed=config.seed,
        ),
        on_step=on_step,
    )
    info |= {
        "samples": result.samples,
        "tokens": result.tokens,
        "steps": result.steps,
        "epoch_nll": result.epoch_losses,
        "seconds": result.seconds,
    }
    return result.model_dir, info


# ---- the run ----------------------------------------------------------------------------------------


class Run:
    """The live parts of one training run and the loop over them."""

    def __init__(
        self, config: TrainConfig, resume: bool, events: Events | None = None, resume_from: int | None = None
    ) -> None:
        self.config = config
        self.resume = resume or resume_from is not None
        self.resume_from = resume_from  # a checkpoint step to resume from; None: the newest valid one
        self.resume_path: Path | None = None
        self.events = events or Events()
        self.run_dir = Path(config.run_dir)
        self.checkpoints = self.run_dir / "checkpoints"
        self.phase_seconds: dict[str, float] = {}
        self.evals: list[EvalResult] = []
        self.history: list[dict[str, float]] = []
        self.sft: dict[str, Any] | None = None
        self.step = 0
        self.rng = random.Random(config.seed)
        self._saving: asyncio.Task[float] | None = None  # the checkpoint being written in a thread

    # -- set-up ------------------------------------------------------------------------------------

    def prepare(self) -> Path:
        """Check the run directory, write the config, and make (or find) the starting policy."""
        latest = find_latest(self.checkpoints)
        start_file = self.run_dir / START_FILE
        if self.resume:
            if not start_file.exists():
                raise NoUsableCheckpoint(f"--resume: no checkpoint under {self.checkpoints}; start the run without it")
            self.resume_path, warnings = select_checkpoint(
                self.checkpoints, self.resume_from, self.config.checkpoint.verify
            )
            for warning in warnings:
                log.warning(warning)
            for moved in set_aside_newer(self.checkpoints, int(self.resume_path.name.removeprefix("step-"))):
                log.warning(f"{moved.name}: newer than the checkpoint this run resumes from, set aside (never loaded)")
            start = json.loads(start_file.read_text())
            self.sft = start.get("sft")
            return Path(start["policy"])
        if latest is not None:
            raise FileExistsError(
                f"{self.run_dir} already holds checkpoints (newest {latest.name}): pass --resume to continue it, "
                "or choose another run_dir"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.yaml").write_text(self.config.to_yaml())
        seed_everything(self.config.seed)
        started = time.perf_counter()
        policy, self.sft = prepare_policy(self.config, self.run_dir, self.events)
        self.phase_seconds["sft"] = time.perf_counter() - started
        start_file.write_text(json.dumps({"policy": str(policy), "sft": self.sft}, indent=2))
        return policy

    async def run(self, policy: Path, learner: Learner, engine: Engine, pool: EnvPool) -> TrainSummary:
        """Train with the parts already started (cluster.launch starts them, and closes them afterwards)."""
        from transformers import AutoTokenizer

        config = self.config
        started = time.perf_counter()
        sampler = CurriculumSampler(config.curriculum)
        replay = PositiveReplay(config.algorithm.replay)
        state = None
        if self.resume:  # every learner rank loads its DeepSpeed state
            # prepare() chose resume_path and verified its files just now
            verify = "none" if self.resume_path else config.checkpoint.verify
            state = learner.load_checkpoint(self.resume_path or self.checkpoints, sampler, replay, verify=verify)
            self.step = state.step
            if "loop_rng" in state.counters:
                self.rng.setstate(state.counters["loop_rng"])
            moved = set_aside_metrics(self.run_dir, state.step)
            if moved:  # those steps run again: left in place, each would be in metrics.jsonl twice
                log.warning(
                    f"{moved} metric rows the interrupted run logged after step {state.step} moved to "
                    f"{SET_ASIDE_METRICS}; the steps after {state.step} run again"
                )
        tracker = Tracker(
            self.run_dir, config.logging.wandb, config.logging.project, config.logging.name, _plain(config)
        )
        try:
            sync = FileWeightSync(engine, root=self.run_dir / "weights", copy_from=policy)
            if learner.version != 0:  # resumed: the engine serves the checkpoint's weights
                await learner.sync_weights(sync)
            tokenizer = AutoTokenizer.from_pretrained(policy)
            agent = Agent(engine, tokenizer, agent_config(config, config.rollout.temperature, config.seed))
            eval_agent = Agent(engine, tokenizer, agent_config(config, config.eval.temperature, config.seed + 1))
            collector = Collector(agent, pool, config.collector, run_id="train")
            buffered: list[Group] = []
            if state is not None:
                state.restore_collector(collector)
                buffered = list(state.buffered_groups)
                self.evals = [EvalResult(**e) for e in state.counters.get("evals", [])]
                if "collector_stats" in state.counters:  # counters run on across the interruption
                    collector.stats = CollectorStats(**state.counters["collector_stats"])
                self.phase_seconds = dict(state.counters.get("phase_seconds", self.phase_seconds))
            elif config.eval.before:
                await self._evaluate(eval_agent, pool, sampler, tracker)
            await self._train(learner, sampler, replay, collector, sync, eval_agent, pool, tracker, buffered)
            if self.step > 0 and (not self.evals or self.evals[-1].step != self.step):
                await self._evaluate(eval_agent, pool, sampler, tracker)
            final = self._export_final(learner) if self.step > 0 else None
        finally:
            tracker.close()
        return TrainSummary(
            run_dir=self.run_dir,
            steps=self.step,
            version=learner.version,
            evals=self.evals,
            final_model=final,
            seconds=time.perf_counter() - started + self.phase_seconds.get("sft", 0.0),
            phase_seconds=self.phase_seconds,
            sft=self.sft,
            history=self.history,
        )

    def _export_final(self, learner: Learner) -> Path:
        """The final policy as an HF model dir, run_dir/final; one an interrupted run exported is replaced.

        A run killed after its export and resumed (from that checkpoint, or an older one when it was
        damaged) exports again: the old directory goes first, as the exporter writes only new ones.
        """
        final = self.run_dir / "final"
        if final.exists():
            stale = self.run_dir / f"{STALE_FINAL}{os.getpid()}"
            os.replace(final, stale)
            shutil.rmtree(stale)
            log.warning(f"{final} was exported by an interrupted run; exported again from this one")
        return learner.export_weights(final)

    # -- the loop -----------------------------------------------------------------------------------

    async def _train(
        self,
        learner: Learner,
        sampler: CurriculumSampler,
        replay: PositiveReplay,
        collector: Collector,
        sync: FileWeightSync,
        eval_agent: Agent,
        pool: EnvPool,
        tracker: Tracker,
        buffered: list[Group],
    ) -> None:
        config = self.config
        batch_size = config.collector.batch_size
        if self.step >= config.steps:
            return
        self.events.emit("phase", "rl", config.steps)
        self.events.emit("advance", "rl", self.step)
        stream = collector.stream(sampler.instances(batch_size))
        try:
            async with contextlib.aclosing(stream):
                while self.step < config.steps:
                    waited = time.perf_counter()
                    discarded = await self._fill(buffered, stream, collector, sampler)
                    batch, buffered[:] = buffered[:batch_size], buffered[batch_size:]
                    metrics = {"time/collect": time.perf_counter() - waited, "batch/refilled_groups": float(discarded)}
                    metrics |= await self._step(learner, sampler, replay, batch, sync)
                    for name in ("collect", "train", "weight_sync"):
                        self.phase_seconds[name] = self.phase_seconds.get(name, 0.0) + metrics[f"time/{name}"]
                    self.step += 1
                    metrics |= sampler.metrics()
                    stats = collector.stats.as_dict()
                    metrics |= {f"collector/{k}": float(v) for k, v in _numbers(stats).items()}
                    metrics |= {f"collector/failures/{k}": float(v) for k, v in stats["failures"].items()}
                    metrics |= {f"pool/{k}": float(v) for k, v in _numbers(pool.stats()).items()}
                    metrics["version"] = float(learner.version)
                    self.history.append(metrics)
                    tracker.log(metrics, self.step)
                    self.events.emit("step", self.step, metrics)
                    self.events.emit("advance", "rl", self.step)
                    last = self.step == config.steps
                    if last or (config.checkpoint.every and self.step % config.checkpoint.every == 0):
                        # Captured before the collector may admit the next groups: the sampler state then
                        # holds every instance not started yet, and a resume draws exactly what this run
                        # draws next. Written in a thread: episodes in flight and the next batch go on.
                        self._start_checkpoint(learner, sampler, replay, collector, buffered)
                    if last:  # admitting more groups now would only start episodes to cancel
                        break
                    collector.set_trainer_version(learner.version)
                    if config.eval.every and self.step % config.eval.every == 0:
                        await self._evaluate(eval_agent, pool, sampler, tracker)
        finally:  # a checkpoint still being written completes (or raises) before the run goes on or ends
            await self._checkpoint_written()

    async def _fill(
        self, buffered: list[Group], stream: AsyncIterator[Group], collector: Collector, sampler: CurriculumSampler
    ) -> int:
        """Take groups from the stream until a batch is buffered; returns how many were thrown away.

        DAPO refill (algorithm.dynamic_sampling.mode=refill): a group whose rewards are all equal carries
        no signal; it still counts for the curriculum, then it is discarded and another is collected in
        its place, up to `refill_limit` per step (past it the batch trains as it is, muted groups included).
        """
        sampling = self.config.algorithm.dynamic_sampling
        refill = sampling.enabled and sampling.mode == "refill"
        limit = sampling.refill_limit * self.config.collector.batch_size
        discarded = 0
        while len(buffered) < self.config.collector.batch_size:
            group = await anext(stream)
            if refill and discarded < limit and len(set(group.rewards)) == 1:
                sampler.update([group], step=self.step)
                collector.discard(1)
                discarded += 1
                continue
            buffered.append(group)
        return discarded

    async def _step(
        self,
        learner: Learner,
        sampler: CurriculumSampler,
        replay: PositiveReplay,
        batch: list[Group],
        sync: FileWeightSync,
    ) -> dict[str, float]:
        metrics = rollout_metrics(batch, learner.version)
        if self.config.rollout.save_records:  # every trained turn, as `droidrl rollout` writes them
            path = self.run_dir / "rollouts" / f"step-{self.step + 1:06d}.parquet"
            await asyncio.to_thread(write_groups, batch, path, "train", self.step + 1)
        sampler.update(batch, step=self.step)
        samples, algo = build_batch(batch, self.config, replay, self.rng)
        metrics |= algo
        await self._checkpoint_written()  # the learner's state is being saved: it must not move until it is
        started = time.perf_counter()
        if samples:
            # In a thread: the event loop keeps serving episodes still running (max_staleness > 0).
            metrics |= {f"train/{k}": v for k, v in (await asyncio.to_thread(learner.train_step, samples)).items()}
            metrics |= importance_metrics(samples)
        else:  # nothing to learn from (every group silent): the policy version still moves on
            learner.skip_step()
        metrics["time/train"] = time.perf_counter() - started
        # Bounded: the engines get sync.timeout_s, gathering and writing the weights as long again. A replica that
        # failed is reported (engine/* metrics) and serves again only at this version; WeightSyncFailed stops the run.
        try:
            async with asyncio.timeout(2 * sync.timeout_s):
                metrics["time/weight_sync"] = await learner.sync_weights(sync)
        except TimeoutError:
            raise WeightSyncFailed(
                f"publishing policy version {learner.version} took over {2 * sync.timeout_s:g}s"
            ) from None
        metrics |= sync.metrics()
        return metrics

    async def _evaluate(self, agent: Agent, pool: EnvPool, sampler: CurriculumSampler, tracker: Tracker) -> None:
        instances = sampler.eval_instances()
        self.events.emit("phase", f"eval at step {self.step}", None)
        keep = self.config.rollout.save_records  # the episodes, for the report's trajectory viewer
        result = await evaluate(
            agent,
            pool,
            instances,
            samples=self.config.eval.samples,
            step=self.step,
            concurrency=self.config.collector.max_concurrent_episodes,
            records=self.run_dir / "evals" / f"step-{self.step:06d}.parquet" if keep else None,
        )
        self.evals.append(result)
        self.phase_seconds["eval"] = self.phase_seconds.get("eval", 0.0) + result.seconds
        tracker.log(result.metrics(), self.step)
        (self.run_dir / "evals.json").write_text(json.dumps([e.to_dict() for e in self.evals], indent=2))
        write_report(self.run_dir, self.evals)
        self.events.emit("evaluated", result)

    def _start_checkpoint(
        self, learner: Learner, sampler: CurriculumSampler, replay: PositiveReplay, collector: Collector, buffered: list
    ) -> None:
        """Capture the run's state at this step now, and write the checkpoint in a thread (`_checkpoint_written`).

        Everything the loop goes on changing (sampler, replay buffer, buffered groups, counters, RNGs)
        is copied here, on the loop, with no await in between, so the checkpoint holds this step's state
        whatever the loop does while the files are written. The learner's weights and optimizer are
        not copied: they do not move until `_checkpoint_written` (the next learner call waits for it).
        The write keeps all of save_checkpoint's guarantees (temporary dir, fsync, rename, manifest, latest).
        """
        counters = {
            "accepted": collector.accepted,
            "next_index": collector.next_index,
            "trainer_version": learner.version,
            "loop_rng": self.rng.getstate(),
            "evals": [dataclasses.asdict(e) for e in self.evals],
            "collector_stats": collector.stats.as_dict(),
            "phase_seconds": dict(self.phase_seconds),
        }
        parts = snapshot_parts(sampler=sampler, replay=replay, buffered_groups=buffered, counters=counters)
        root, step, keep = self.checkpoints, self.step, self.config.checkpoint.keep

        def write() -> float:
            started = time.perf_counter()
            # every learner rank writes its optimizer partition (a LearnerGroup waits for its Ray actors)
            learner.save_checkpoint(root, step, keep=keep, **parts)
            return time.perf_counter() - started

        self._saving = asyncio.ensure_future(asyncio.to_thread(write))

    async def _checkpoint_written(self) -> None:
        """Wait for the checkpoint being written, if any; its error, if it failed, is raised here."""
        saving, self._saving = self._saving, None
        if saving is not None:
            seconds = await saving
            self.phase_seconds["checkpoint"] = self.phase_seconds.get("checkpoint", 0.0) + seconds


def _numbers(values: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _plain(config: TrainConfig) -> dict[str, Any]:
    from droidrl.config.typed import to_dict

    return to_dict(config)
