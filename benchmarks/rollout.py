"""Rollout throughput: the async collector against the engine's raw speed, and against a lock-step baseline.

(a) Collector tokens/s vs the same engine's raw generate tokens/s on the very prompts the collector
    sent, replayed with the same concurrency (the ratio is the collector's overhead).
(b) With a per-step device latency injected (every reset and step answers `--latency` s later, as a
    real emulator's round trip does), episodes/s of the
    async collector vs a lock-step rollout (all episodes of a wave generate together, then step
    together, and the next wave starts when the slowest episode ends) on the same instances.

    python benchmarks/rollout.py [--engine transformers|vllm] [--model DIR] [--latency 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from transformers import AutoTokenizer

from droidrl.cluster.launch import build_engine
from droidrl.envs.tasks.registry import suites
from droidrl.models.presets import init_model
from droidrl.rollout.agent import Agent, AgentConfig
from droidrl.rollout.collector import Collector, CollectorConfig, TaskInstance
from droidrl.rollout.engines.base import Engine, SamplingParams
from droidrl.rollout.envpool import LocalEnvPool, Observation
from droidrl.rollout.prompts import PromptConfig


def instances(count: int, seed: int) -> list[TaskInstance]:
    """A fixed mix of easy and medium templates, so episode lengths differ (10 and 20 steps at most)."""
    rng = random.Random(seed)
    names = suites()["easy"][:8] + suites()["medium"][:8]
    return [TaskInstance(rng.choice(names), rng.randrange(1000)) for _ in range(count)]


async def run_collector(agent: Agent, pool: Any, work: list[TaskInstance], group_size: int, width: int):
    config = CollectorConfig(
        group_size=group_size, batch_size=len(work), max_concurrent_episodes=width, max_staleness=0
    )
    collector = Collector(agent, pool, config)
    started = time.perf_counter()
    groups = await collector.collect(work)
    return groups, time.perf_counter() - started, collector.stats


async def replay_raw(engine: Engine, prompts: list[list[int]], sampling: SamplingParams, width: int):
    """The same prompts straight to the engine, `width` at a time; returns (response tokens, seconds)."""
    gate = asyncio.Semaphore(width)

    async def one(i: int, ids: list[int]) -> int:
        async with gate:
            completion = await engine.generate(ids, sampling, None, session=f"raw-{i}")
            return len(completion.token_ids)

    started = time.perf_counter()
    tokens = await asyncio.gather(*(one(i, ids) for i, ids in enumerate(prompts)))
    return sum(tokens), time.perf_counter() - started


class SlowLease:
    """A lease whose every reset and step costs `latency` more seconds, like a real emulator's round trip."""

    def __init__(self, lease: Any, latency: float) -> None:
        self.lease, self.latency, self.id = lease, latency, lease.id

    async def reset(self, task: str, seed: int) -> Any:
        await asyncio.sleep(self.latency)
        return await self.lease.reset(task, seed)

    async def step(self, action_text: str) -> Any:
        await asyncio.sleep(self.latency)
        return await self.lease.step(action_text)


class SlowPool:
    """An env pool whose devices answer `latency` seconds later (valid or invalid action alike)."""

    def __init__(self, pool: LocalEnvPool, latency: float) -> None:
        self.pool, self.latency = pool, latency

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[SlowLease]:
        async with self.pool.lease() as lease:
            yield SlowLease(lease, self.latency)

    def stats(self) -> dict[str, int]:
        return self.pool.stats()


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


async def main_async(args: argparse.Namespace) -> None:
    console = Console()
    model = Path(args.model) if args.model else init_model("tiny-text", Path(tempfile.mkdtemp()) / "tiny-text")
    tokenizer = AutoTokenizer.from_pretrained(model)
    with console.status(f"starting the {args.engine} engine"):
        engine = await build_engine(args.engine, model, width=32)
    sampling = SamplingParams(temperature=1.0, max_tokens=args.max_tokens, seed=None)
    prompt = PromptConfig(observation="xml", max_history_turns=args.history)
    agent = Agent(engine, tokenizer, AgentConfig(prompt=prompt, sampling=sampling))
    work = instances(args.instances, args.seed)

    # (a) collector vs raw engine, no device latency
    pool = LocalEnvPool(args.width, max_invalid=1000)
    with console.status("(a) collector"):
        groups, collector_s, stats = await run_collector(agent, pool, work, args.group_size, args.width)
    prompts = [turn.prompt_ids for group in groups for episode in group.episodes for turn in episode.turns]
    with console.status(f"(a) raw generate on the same {len(prompts)} prompts"):
        raw_tokens, raw_s = await replay_raw(engine, prompts, agent.sampling, args.width)
    table = Table(title=f"(a) {args.engine}: collector vs raw generate ({len(prompts)} turns, width {args.width})")
    for col in ("path", "response tokens", "seconds", "tokens/s"):
        table.add_column(col, justify="right")
    table.add_row(
        "collector (env + agent + engine)",
        str(stats.response_tokens),
        f"{collector_s:.1f}",
        f"{stats.response_tokens / collector_s:.0f}",
    )
    table.add_row("raw engine.generate", str(raw_tokens), f"{raw_s:.1f}", f"{raw_tokens / raw_s:.0f}")
    console.print(table)
    console.print(f"collector / raw tokens/s = {(stats.response_tokens / collector_s) / (raw_tokens / raw_s):.2f}")

    # (b) async collector vs lock-step waves, with device latency
    slow = SlowPool(LocalEnvPool(args.width, max_invalid=1000), args.latency)
    with console.status(f"(b) async collector, {args.latency:g} s per step"):
        groups, async_s, _ = await run_collector(agent, slow, work, args.group_size, args.width)
    episodes = sum(len(g.episodes) for g in groups)
    with console.status(f"(b) lock-step, {args.latency:g} s per step"):
        lock_episodes, lock_s = await run_lockstep(agent, slow, work, args.group_size, args.width)
    table = Table(title=f"(b) {episodes} episodes, {args.latency:g} s device latency per step, {args.width} devices")
    for col in ("rollout", "episodes", "seconds", "episodes/s"):
        table.add_column(col, justify="right")
    table.add_row("async collector", str(episodes), f"{async_s:.1f}", f"{episodes / async_s:.2f}")
    table.add_row("lock-step waves", str(lock_episodes), f"{lock_s:.1f}", f"{lock_episodes / lock_s:.2f}")
    console.print(table)
    console.print(f"async / lock-step episodes/s = {(episodes / async_s) / (lock_episodes / lock_s):.2f}")
    await engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("transformers", "vllm"), default="transformers")
    parser.add_argument("--model", help="an HF model directory (default: a fresh tiny-text)")
    parser.add_argument("--instances", type=int, default=8, help="task instances (groups)")
    parser.add_argument("--group-size", type=int, default=2)
    parser.add_argument("--width", type=int, default=8, help="devices, and episodes in flight")
    parser.add_argument("--latency", type=float, default=0.5, help="seconds of device latency per step in (b)")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--history", type=int, default=2, help="earlier turns kept in each prompt")
    parser.add_argument("--seed", type=int, default=0)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
