"""One rollout run from the command line: a policy plays a suite on a device pool; Parquet records and a summary.

This is `droidrl rollout`: generation only (no training), e.g. to measure a checkpoint's success
rate on the simulated suite or to produce trajectories for SFT. The command starts the engine and
the pool (cluster.launch) and hands them in.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from droidrl.envs.tasks.registry import suites
from droidrl.rollout.agent import Agent, AgentConfig
from droidrl.rollout.collector import Collector, CollectorConfig
from droidrl.rollout.engines.base import Engine, SamplingParams
from droidrl.rollout.envpool import EnvPool
from droidrl.rollout.prompts import PromptConfig
from droidrl.rollout.records import write_groups
from droidrl.rollout.trajectory import Group, TaskInstance


@dataclass
class RolloutConfig:
    """Everything `droidrl rollout` needs; each field is a command-line flag."""

    model: str  # an HF model directory
    engine: str = "auto"  # auto (vllm if installed, else transformers), vllm, transformers
    suite: str = "easy"
    tasks: int = 8  # task instances (groups), drawn from the suite with `seed`
    group_size: int = 2
    phones: int = 8  # devices, and episodes in flight
    ray: bool = False  # devices in Ray actors (a local cluster unless one is running) instead of this process
    observation: str = "xml"
    temperature: float = 1.0
    max_tokens: int = 64
    history: int | None = 4  # earlier turns kept in each prompt
    seed: int = 0
    out: str = "runs/rollout"

    def __post_init__(self) -> None:
        if self.engine not in ("auto", "vllm", "transformers"):
            raise ValueError(f"engine must be auto, vllm or transformers, got {self.engine!r}")
        if self.suite not in suites():
            raise ValueError(f"unknown suite {self.suite!r}; suites: {', '.join(sorted(suites()))}")
        for name in ("tasks", "group_size", "phones", "max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (Path(self.model) / "config.json").exists():
            raise ValueError(f"model {self.model!r} is not a Hugging Face model directory (no config.json)")


@dataclass
class RolloutSummary:
    groups: list[Group]
    stats: dict[str, Any]
    pool: dict[str, int]
    seconds: float
    engine: str
    records: Path
    by_difficulty: dict[str, tuple[int, int]] = field(default_factory=dict)  # difficulty -> (successes, episodes)


def draw_instances(suite: str, count: int, seed: int) -> list[TaskInstance]:
    rng = random.Random(seed)
    names = suites()[suite]
    return [TaskInstance(rng.choice(names), rng.randrange(10**6)) for _ in range(count)]


async def run_rollout(
    config: RolloutConfig,
    engine: Engine,
    kind: str,
    pool: EnvPool,
    on_group: Callable[[Group], None] | None = None,
) -> RolloutSummary:
    """Play `config.tasks` groups with `engine` on `pool` (both started by the command: cluster.launch)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(config.model)
    sampling = SamplingParams(temperature=config.temperature, max_tokens=config.max_tokens)
    prompt = PromptConfig(observation=config.observation, max_history_turns=config.history)
    agent = Agent(engine, tokenizer, AgentConfig(prompt=prompt, sampling=sampling))
    collector_config = CollectorConfig(
        group_size=config.group_size, batch_size=config.tasks, max_concurrent_episodes=config.phones
    )
    collector = Collector(agent, pool, collector_config, run_id=f"rollout-{config.seed}")
    groups: list[Group] = []
    started = time.perf_counter()
    try:
        async for group in collector.stream(draw_instances(config.suite, config.tasks, config.seed)):
            groups.append(group)
            if on_group is not None:
                on_group(group)
    finally:
        seconds = time.perf_counter() - started
    records = write_groups(groups, Path(config.out) / "turns.parquet", run_id=collector.run_id, batch_id=0)
    by_difficulty: dict[str, tuple[int, int]] = {}
    for group in groups:
        for episode in group.episodes:
            wins, total = by_difficulty.get(episode.difficulty, (0, 0))
            by_difficulty[episode.difficulty] = (wins + int(episode.success), total + 1)
    return RolloutSummary(groups, collector.stats.as_dict(), pool.stats(), seconds, kind, records, by_difficulty)
