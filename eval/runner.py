"""Run an evaluation: every (run, task instance) episode not yet in the store, persisted as it finishes.

Each episode runs through a collector of its own (group of one), so it gets the collector's retries
on a fresh device after an infrastructure failure, and an episode id (hence per-turn sampling seeds)
fixed by its key alone: a resumed evaluation plays a missing episode exactly as an uninterrupted one
would have. An episode whose retries run out is reported and left out of the store, so the next
invocation tries it again; it is never scored 0.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from droidrl.envs.actions import Finish, parse
from droidrl.eval.protocols import Protocol, protocol_score
from droidrl.eval.store import EpisodeStore, Key, episode_key, key_text
from droidrl.eval.suites import EvalInstance
from droidrl.rollout.agent import Agent
from droidrl.rollout.collector import Collector, CollectorConfig
from droidrl.rollout.envpool import EnvPool
from droidrl.rollout.trajectory import Episode, TaskInstance


class EvalAborted(RuntimeError):
    """Too many episodes in a row were lost to the infrastructure: something is broken for good."""


@dataclass
class Plan:
    """The episodes of an evaluation: `runs` repeats of every instance, run by run."""

    instances: list[EvalInstance]
    runs: int

    def episodes(self) -> list[tuple[Key, EvalInstance]]:
        return [(episode_key(run, i.task, i.seed), i) for run in range(self.runs) for i in self.instances]


@dataclass
class RunStats:
    """What this invocation did (the store holds what all invocations did)."""

    played: int = 0
    dropped: int = 0
    retried: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def episode_record(key: Key, protocol: Protocol, episode: Episode, screens: list[str | None]) -> dict[str, Any]:
    """The store's line for a finished episode: outcome under the protocol, turns as text, screen paths."""
    run, task, seed = key
    score = protocol_score(protocol, episode.reward, episode.end_reason)
    last = parse(episode.turns[-1].action_text) if episode.turns else None
    return {
        "run": run,
        "task": task,
        "seed": seed,
        "task_id": episode.task,
        "template": episode.template,
        "difficulty": episode.difficulty,
        "goal": episode.goal,
        "reward": float(episode.reward),  # the checker's verdict
        "score": score,  # the verdict under the protocol's rules
        "success": score >= 1.0,
        "finished": episode.end_reason == "finish",
        "end_reason": episode.end_reason,
        "answer": last.message if isinstance(last, Finish) else None,
        "length": episode.length,
        "invalid_actions": episode.invalid_actions,
        "response_tokens": episode.tokens,
        "attempts": episode.attempts,
        "engine": episode.engine,
        "device": episode.device,
        "episode_id": episode.episode_id,
        "seconds": round(episode.timings.get("episode_s", 0.0), 3),
        "turns": [
            {
                "action_text": turn.action_text,
                "action": turn.action,
                "valid": turn.valid,
                "reason": turn.reason,
                "app": turn.app,
                "finish_reason": turn.finish_reason,
                "response_tokens": len(turn.response_ids),
                "prompt_tokens": len(turn.prompt_ids),
            }
            for turn in episode.turns
        ],
        "screens": screens,
        "finished_at": time.time(),
    }


async def run_plan(
    agent: Agent,
    pool: EnvPool,
    protocol: Protocol,
    plan: Plan,
    store: EpisodeStore,
    concurrency: int,
    max_retries: int = 2,
    max_consecutive_drops: int = 8,
    on_episode: Callable[[dict[str, Any]], None] | None = None,
    on_problem: Callable[[str], None] | None = None,
) -> RunStats:
    """Play every planned episode missing from `store`, at most `concurrency` at once; each is appended when done."""
    pending = [(key, instance) for key, instance in plan.episodes() if key not in store]
    stats = RunStats()
    slots = asyncio.Semaphore(concurrency)
    drops_in_row = 0
    started = time.perf_counter()

    def problem(message: str) -> None:
        if on_problem is not None:
            on_problem(message)

    async def one(key: Key, instance: EvalInstance) -> None:
        nonlocal drops_in_row
        async with slots:
            run, task, seed = key
            config = CollectorConfig(group_size=1, batch_size=1, max_concurrent_episodes=1, max_retries=max_retries)
            collector = Collector(agent, pool, config, run_id=f"eval-r{run}-{task}-{seed}")
            groups = await collector.collect([TaskInstance(task, seed)])
        counters = collector.stats
        stats.retried += counters.retried
        for kind, count in counters.failures.items():
            stats.failures[kind] = stats.failures.get(kind, 0) + count
        if not groups:
            stats.dropped += 1
            drops_in_row += 1
            problem(
                f"{key_text(key)}: lost to the infrastructure after {1 + max_retries} attempts "
                f"({_kinds(counters.failures)}; last: {counters.last_error}); not recorded, a rerun plays it again"
            )
            if drops_in_row >= max_consecutive_drops:
                raise EvalAborted(
                    f"{drops_in_row} episodes in a row were lost (max {max_consecutive_drops}); last error: "
                    f"{counters.last_error}"
                )
            return
        drops_in_row = 0
        if counters.retried:
            last = counters.last_error
            problem(f"{key_text(key)}: retried {counters.retried}x after {_kinds(counters.failures)}; last: {last}")
        episode = groups[0].episodes[0]
        screens = await asyncio.to_thread(store.write_screens, key, episode.screenshots)
        record = episode_record(key, protocol, episode, screens)
        await asyncio.to_thread(store.append, record)
        stats.played += 1
        if on_episode is not None:
            on_episode(record)

    tasks = [asyncio.create_task(one(key, instance)) for key, instance in pending]
    try:
        for finished in asyncio.as_completed(tasks):
            await finished  # the first failure (EvalAborted, a bug) stops the evaluation
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        stats.seconds = time.perf_counter() - started
    return stats


def _kinds(failures: dict[str, int]) -> str:
    return ", ".join(f"{kind} failure x{count}" for kind, count in sorted(failures.items())) or "no failure counted"
