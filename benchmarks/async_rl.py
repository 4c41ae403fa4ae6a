"""End-to-end asynchronous RL: `droidrl train`'s loop at collector.max_staleness 0, 1 and 2, side by side.

For each staleness the real loop (trainer.loop.Run, as `droidrl train` runs it) trains from the same
starting policy: curriculum, collector, admission and staleness bound, AdaGRPO, the DeepSpeed learner,
weight sync to the engine, checkpoints. Reported per run: trained samples and batch turns per hour, time
per phase, the share of the time the learner and the engine are busy, and the success reached.

Two modes:
  real     everything as it runs on this machine (engine, learner and phones share its cores).
  cluster  the engine's generate, the learner's step, the weight sync and each device step take the time
           a GPU node takes for an 8B model (benchmarks/timing_model.py, published figures): the real
           tiny call runs, then waits out the rest of the modelled time. Everything else is the real
           code. Times can be scaled (--scale) to keep the run short or to keep the tiny real work under
           the modelled time; per-hour figures are given in modelled time (wall / scale). The ideal
           speed-up is computed from the synchronous run's own phases: (collect + train + sync) divided
           by max(train + sync, the phone-seconds its episodes held / phones), i.e. the training fully
           overlapped and the phones never idle (no waiting for a batch's slowest episode).

    python benchmarks/async_rl.py --mode cluster [--staleness 0 1 2] [--steps 6] [--scale 0.25]
    python benchmarks/async_rl.py --mode real --steps 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from droidrl.cluster.launch import start_learner, started_rollout
from droidrl.rollout.engines.base import Completion, SamplingParams
from droidrl.trainer.config import TrainConfig, load_config
from droidrl.trainer.loop import Events, Run, TrainSummary, prepare_policy

try:  # run as a script (python benchmarks/async_rl.py) or as a module
    from timing_model import TimingModel
except ImportError:  # pragma: no cover
    from benchmarks.timing_model import TimingModel


# ---- busy-time meters and the cluster-time wrappers ----------------------------------------------


class Busy:
    """Wall time during which at least one call is running (thread-safe: the learner steps in a thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._since = 0.0
        self.seconds = 0.0

    def enter(self) -> None:
        with self._lock:
            if self._running == 0:
                self._since = time.perf_counter()
            self._running += 1

    def exit(self) -> None:
        with self._lock:
            self._running -= 1
            if self._running == 0:
                self.seconds += time.perf_counter() - self._since

    @property
    def running(self) -> int:
        return self._running


class TimedEngine:
    """An Engine that meters its busy time; with a timing model, each generate lasts the modelled time."""

    def __init__(self, engine: Any, model: TimingModel | None) -> None:
        self.engine, self.model = engine, model
        self.name = engine.name
        self.config = getattr(engine, "config", None)  # the agent reads max_model_len from it
        self.busy = Busy()
        self.overruns = 0  # calls whose real tiny generate took longer than the modelled time

    @property
    def version(self) -> int:
        return self.engine.version

    async def generate(
        self, prompt_ids: list[int], sampling: SamplingParams, images: Any = None, session: str | None = None
    ) -> Completion:
        started = time.perf_counter()
        in_flight = self.busy.running + 1
        self.busy.enter()
        try:
            completion = await self.engine.generate(prompt_ids, sampling, images, session=session)
            if self.model is not None:
                target = self.model.generate_s(len(prompt_ids), len(completion.token_ids), in_flight)
                left = target - (time.perf_counter() - started)
                if left > 0:
                    await asyncio.sleep(left)
                else:
                    self.overruns += 1
            return completion
        finally:
            self.busy.exit()

    async def update_weights(self, source: Path, version: int) -> None:
        await self.engine.update_weights(source, version)

    async def close(self) -> None:
        await self.engine.close()


class TimedLearner:
    """A Learner that meters its step time; with a timing model, a step lasts the modelled time for its tokens.

    `real_samples` (cluster mode): the real tiny step trains on at most this many of the samples, so its
    CPU time stays under the modelled time on a small machine; the weights still move, the version
    still goes up and the sync still carries them, and the modelled time is that of every sample.
    """

    def __init__(self, learner: Any, model: TimingModel | None, real_samples: int | None = None) -> None:
        self.learner, self.model, self.real_samples = learner, model, real_samples
        self.busy = Busy()
        self.overruns = 0

    def __getattr__(self, name: str) -> Any:  # version, skip_step, checkpoints, export, close
        return getattr(self.learner, name)

    def train_step(self, samples: Any) -> dict[str, float]:
        started = time.perf_counter()
        self.busy.enter()
        try:
            real = samples if self.real_samples is None else samples[: self.real_samples]
            metrics = self.learner.train_step(real)
            if self.model is not None:
                tokens = sum(len(s.prompt_ids) + len(s.response_ids) for s in samples)
                left = self.model.train_s(tokens) - (time.perf_counter() - started)
                if left > 0:
                    time.sleep(left)  # the loop runs train_step in a thread: the event loop goes on
                else:
                    self.overruns += 1
            return metrics
        finally:
            self.busy.exit()

    async def sync_weights(self, sync: Any) -> float:
        started = time.perf_counter()
        await self.learner.sync_weights(sync)
        if self.model is not None:
            left = self.model.sync_s() - (time.perf_counter() - started)
            if left > 0:
                await asyncio.sleep(left)
        return time.perf_counter() - started


class _TimedLease:
    def __init__(self, lease: Any, model: TimingModel | None) -> None:
        self.lease, self.model, self.id = lease, model, lease.id

    async def _padded(self, call: Any) -> Any:
        started = time.perf_counter()
        result = await call
        if self.model is not None:
            left = self.model.device_s() - (time.perf_counter() - started)
            if left > 0:
                await asyncio.sleep(left)
        return result

    async def reset(self, task: str, seed: int) -> Any:
        return await self._padded(self.lease.reset(task, seed))

    async def step(self, action_text: str) -> Any:
        return await self._padded(self.lease.step(action_text))


class TimedPool:
    """An EnvPool that meters phone-seconds leased; with a timing model, device calls last the modelled step."""

    def __init__(self, pool: Any, model: TimingModel | None) -> None:
        self.pool, self.model = pool, model
        self.leased_s = 0.0  # phone-seconds held by episodes (the work a perfect packing would spread)

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[_TimedLease]:
        async with self.pool.lease() as lease:
            started = time.perf_counter()
            try:
                yield _TimedLease(lease, self.model)
            finally:
                self.leased_s += time.perf_counter() - started

    def stats(self) -> dict[str, int]:
        return self.pool.stats()

    async def start(self) -> None:
        await self.pool.start()

    def close(self) -> None:
        self.pool.close()


# ---- one run -----------------------------------------------------------------------------------------


@dataclass
class Result:
    staleness: int
    summary: TrainSummary
    rl_seconds: float  # from the first admitted group to the last step (evaluation and start-up excluded)
    step_ends: list[float]
    engine_busy: float
    learner_busy: float
    engine_overruns: int
    learner_overruns: int
    phone_seconds: float
    phases: dict[str, float] = field(default_factory=dict)

    def total(self, key: str) -> float:
        return sum(step.get(key, 0.0) for step in self.summary.history)


def overrides(args: argparse.Namespace, staleness: int, run_dir: Path, policy: Path) -> list[str]:
    return [
        f"run_dir={run_dir}",
        f"steps={args.steps}",
        f"model.path={policy}",
        "sft.enabled=false",
        "eval.before=false",
        f"eval.samples={args.eval_samples}",
        "eval.every=0",
        f"checkpoint.every={args.checkpoint_every}",
        "logging.wandb=disabled",
        f"env.phones={args.phones}",
        "env.ray=false",
        f"collector.group_size={args.group_size}",
        f"collector.batch_size={args.batch_size}",
        f"collector.max_concurrent_episodes={args.phones}",
        f"collector.max_staleness={staleness}",
        f"rollout.engine={args.engine}",
        "rollout.save_records=false",
        *args.set,
    ]


async def run_one(
    config: TrainConfig, policy: Path, model: TimingModel | None, staleness: int, real_samples: int | None
) -> Result:
    marks: dict[str, Any] = {"rl": None, "steps": []}

    def phase(name: str, _total: int | None) -> None:
        if name == "rl":
            marks["rl"] = time.perf_counter()

    def step(_index: int, _metrics: dict[str, float]) -> None:
        marks["steps"].append(time.perf_counter())

    run = Run(config, resume=False, events=Events(phase=phase, step=step))
    start_policy = run.prepare()
    assert start_policy == policy
    learner = TimedLearner(start_learner(config, policy), model, real_samples if model is not None else None)
    try:
        async with started_rollout(config, policy) as parts:
            engine = TimedEngine(parts.engine, model)
            pool = TimedPool(parts.pool, model)
            summary = await run.run(policy, learner, engine, pool)
    finally:
        learner.learner.close()
    start = marks["rl"]
    ends = [t - start for t in marks["steps"]]
    return Result(
        staleness=staleness,
        summary=summary,
        rl_seconds=ends[-1] if ends else 0.0,
        step_ends=ends,
        engine_busy=engine.busy.seconds,
        learner_busy=learner.busy.seconds,
        engine_overruns=engine.overruns,
        learner_overruns=learner.overruns,
        phone_seconds=pool.leased_s,
        phases=dict(summary.phase_seconds),
    )


def starting_policy(args: argparse.Namespace, root: Path, console: Console) -> Path:
    """The policy every run starts from: --policy, or the default config's SFT warm start made once here."""
    if args.policy:
        return Path(args.policy)
    config = load_config(None, [f"run_dir={root / 'sft-run'}", "logging.wandb=disabled", *args.set])
    with console.status("SFT warm start (the default config's), once for every run"):
        policy, _ = prepare_policy(config, root / "sft-run", Events())
    return policy


# ---- report ------------------------------------------------------------------------------------------


def report(console: Console, args: argparse.Namespace, results: list[Result], model: TimingModel | None) -> None:
    scale = model.scale if model is not None else 1.0
    base = next((r for r in results if r.staleness == 0), results[0])
    table = Table(title=f"async_rl, mode {args.mode}: {args.steps} steps each, one run per staleness, side by side")
    columns = (
        "max_staleness",
        "RL s (model)",
        "steps/h",
        "samples/h",
        "batch turns/h",
        "speed-up",
        "steady speed-up",
        "collect s",
        "train s",
        "sync s",
        "ckpt s",
        "learner busy",
        "engine busy",
        "phones busy",
        "success (eval)",
        "success (rollout)",
    )
    for col in columns:
        table.add_column(col, justify="right")
    for r in results:
        hours = r.rl_seconds / scale / 3600
        samples = r.total("batch/samples")
        turns = sum(s.get("rollout/episode_length", 0.0) for s in r.summary.history) * args.group_size * args.batch_size
        steady = _steady(r)
        evals = r.summary.evals
        success = f"{evals[-1].rate:.2f} ({evals[-1].successes}/{evals[-1].episodes})" if evals else "-"
        rollout_success = [s.get("rollout/success_rate", 0.0) for s in r.summary.history]
        table.add_row(
            str(r.staleness),
            f"{r.rl_seconds / scale:.0f}",
            f"{len(r.summary.history) / hours:.0f}",
            f"{samples / hours:.0f}",
            f"{turns / hours:.0f}",
            f"{base.rl_seconds / r.rl_seconds:.2f}",
            f"{_steady(base) / steady:.2f}" if steady else "-",
            f"{r.total('time/collect') / scale:.1f}",
            f"{r.total('time/train') / scale:.1f}",
            f"{r.total('time/weight_sync') / scale:.1f}",
            f"{r.phases.get('checkpoint', 0.0) / scale:.1f}",
            f"{r.learner_busy / r.rl_seconds:.0%}",
            f"{r.engine_busy / r.rl_seconds:.0%}",
            f"{r.phone_seconds / (r.rl_seconds * args.phones):.0%}",
            success,
            f"{rollout_success[-1]:.2f}" if rollout_success else "-",
        )
    console.print(table)
    collect, train, sync = (base.total(k) for k in ("time/collect", "time/train", "time/weight_sync"))
    overlap = (collect + train + sync) / max(collect, train + sync) if collect else float("nan")
    packed = base.phone_seconds / args.phones  # the phones' work with no idle phone and no tail
    ideal = (collect + train + sync) / max(packed, train + sync) if collect else float("nan")
    console.print(
        f"ideal from the synchronous run (modelled s): train/collect overlap only (collect {collect / scale:.0f} + "
        f"train {train / scale:.0f} + sync {sync / scale:.0f}) / max(collect, train + sync) = {overlap:.2f}x; "
        f"with the phones' work perfectly packed ({base.phone_seconds / scale:.0f} phone-s / {args.phones} phones = "
        f"{packed / scale:.0f} s): {ideal:.2f}x"
    )
    overruns = {r.staleness: (r.engine_overruns, r.learner_overruns) for r in results}
    if model is not None:
        console.print(f"calls whose real tiny work outlasted the modelled time (engine, learner): {overruns}")
    console.print(
        "speed-up: RL wall time of staleness 0 / this run's; steady: mean step time after the first step "
        "(the pipeline filled); per-hour figures in modelled time (wall / scale)"
    )


def _steady(r: Result) -> float | None:
    ends = r.step_ends
    if len(ends) < 3:
        return None
    return (ends[-1] - ends[0]) / (len(ends) - 1)


# ---- main --------------------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> None:
    console = Console(width=220)
    model = TimingModel(scale=args.scale) if args.mode == "cluster" else None
    root = Path(args.out or tempfile.mkdtemp(prefix="async_rl-"))
    policy = starting_policy(args, root, console)
    results = []
    for staleness in args.staleness:
        config = load_config(None, overrides(args, staleness, root / f"{args.mode}-s{staleness}", policy))
        with console.status(f"mode {args.mode}, max_staleness {staleness}: {args.steps} steps"):
            result = await run_one(config, policy, model, staleness, args.real_samples)
        results.append(result)
        console.print(
            f"max_staleness {staleness}: {result.rl_seconds:.1f} s wall for {len(result.summary.history)} steps, "
            f"step ends {[round(t, 1) for t in result.step_ends]}"
        )
    report(console, args, results, model)
    out = root / f"async_rl-{args.mode}.json"
    out.write_text(json.dumps([_plain(r) for r in results], indent=2, default=str))
    console.print(f"figures: {out}")


def _plain(r: Result) -> dict[str, Any]:
    return {
        "staleness": r.staleness,
        "rl_seconds": r.rl_seconds,
        "step_ends": r.step_ends,
        "engine_busy": r.engine_busy,
        "learner_busy": r.learner_busy,
        "phone_seconds": r.phone_seconds,
        "phases": r.phases,
        "history": r.summary.history,
        "evals": [e.to_dict() for e in r.summary.evals],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("real", "cluster"), default="cluster")
    parser.add_argument("--staleness", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--scale", type=float, default=0.25, help="cluster mode: modelled durations x this")
    parser.add_argument("--engine", default="auto", help="rollout.engine (auto: vllm when installed)")
    parser.add_argument("--phones", type=int, default=16)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--eval-samples", type=int, default=1)
    parser.add_argument("--real-samples", type=int, default=16, help="cluster mode: samples the tiny step trains on")
    parser.add_argument("--checkpoint-every", type=int, default=0)
    parser.add_argument("--policy", help="the starting policy (default: the default config's SFT, made once)")
    parser.add_argument("--out", help="where runs go (default: a temporary directory)")
    parser.add_argument("--set", nargs="*", default=[], help="more dotted overrides for every run")
    args = parser.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
