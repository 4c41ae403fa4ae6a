"""One rollout run: a policy plays task instances on a device pool; Parquet records and a summary.

This is what `droidrl rollout` runs: generation only (no training), e.g. to measure a checkpoint's
success rate on the simulated suite or to produce trajectories for SFT. The command starts the
engine and the pool (cluster.launch) from the typed config tree and hands them in.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from droidrl.rollout.agent import Agent, AgentConfig
from droidrl.rollout.collector import Collector, CollectorConfig
from droidrl.rollout.engines.base import Engine
from droidrl.rollout.envpool import EnvPool
from droidrl.rollout.records import write_groups
from droidrl.rollout.trajectory import Group, TaskInstance


@dataclass
class RolloutSummary:
    groups: list[Group]
    stats: dict[str, Any]
    pool: dict[str, int]
    seconds: float
    engine: str
    records: Path
    by_difficulty: dict[str, tuple[int, int]] = field(default_factory=dict)  # difficulty -> (successes, episodes)


def draw_instances(names: Sequence[str], count: int, seed: int) -> list[TaskInstance]:
    """`count` instances of templates drawn from `names`, each with its own parameter seed (all fixed by `seed`)."""
    rng = random.Random(seed)
    return [TaskInstance(rng.choice(list(names)), rng.randrange(10**6)) for _ in range(count)]


async def run_rollout(
    engine: Engine,
    kind: str,
    pool: EnvPool,
    model: str | Path,
    agent_config: AgentConfig,
    collector_config: CollectorConfig,
    instances: Sequence[TaskInstance],
    out: Path,
    run_id: str,
    on_group: Callable[[Group], None] | None = None,
) -> RolloutSummary:
    """Play one group per instance with `engine` on `pool`; write out/turns.parquet."""
    from transformers import AutoTokenizer

    agent = Agent(engine, AutoTokenizer.from_pretrained(model), agent_config)
    collector = Collector(agent, pool, collector_config, run_id=run_id)
    groups: list[Group] = []
    started = time.perf_counter()
    async for group in collector.stream(list(instances)):
        groups.append(group)
        if on_group is not None:
            on_group(group)
    seconds = time.perf_counter() - started
    records = write_groups(groups, out / "turns.parquet", run_id=collector.run_id, batch_id=0)
    by_difficulty: dict[str, tuple[int, int]] = {}
    for group in groups:
        for episode in group.episodes:
            wins, total = by_difficulty.get(episode.difficulty, (0, 0))
            by_difficulty[episode.difficulty] = (wins + int(episode.success), total + 1)
    return RolloutSummary(groups, collector.stats.as_dict(), pool.stats(), seconds, kind, records, by_difficulty)
