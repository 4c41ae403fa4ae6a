"""trainer.evaluation: a group dropped by an infrastructure failure is played again, so the evaluation is complete."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from droidrl.rollout.agent import Agent, AgentConfig
from droidrl.rollout.collector import TaskInstance
from droidrl.rollout.engines.base import SamplingParams
from droidrl.rollout.engines.transformers_engine import TransformersEngine, TransformersEngineConfig
from droidrl.rollout.envpool import DeviceFailure, LocalEnvPool
from droidrl.rollout.prompts import PromptConfig
from droidrl.trainer.evaluation import evaluate


class FlakyPool:
    """A real LocalEnvPool whose first `deaths` steps in episodes of `task` fail as a dead device does."""

    def __init__(self, pool: LocalEnvPool, deaths: int, task: str) -> None:
        self.pool = pool
        self.deaths = deaths
        self.task = task

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator:
        async with self.pool.lease() as lease:
            yield _FlakyLease(lease, self)

    def stats(self) -> dict[str, int]:
        return self.pool.stats()


class _FlakyLease:
    def __init__(self, lease, pool: FlakyPool) -> None:
        self.lease, self.pool, self.id = lease, pool, lease.id
        self.task = ""

    async def reset(self, task: str, seed: int):
        self.task = task
        return await self.lease.reset(task, seed)

    async def step(self, action_text: str):
        if self.task == self.pool.task and self.pool.deaths > 0:
            self.pool.deaths -= 1
            raise DeviceFailure(f"{self.id}: adb connection reset by peer (injected)")
        return await self.lease.step(action_text)


@pytest.fixture(scope="module")
def engine(model_dir: Path):
    engine = TransformersEngine(TransformersEngineConfig(model=str(model_dir), batch_wait_s=0.02))
    yield engine
    asyncio.run(engine.close())


TASKS = ["SystemWifiTurnOff", "SystemWifiTurnOn", "SystemBluetoothTurnOn", "SystemBluetoothTurnOff"]


def _agent(engine, tokenizer) -> Agent:
    sampling = SamplingParams(temperature=1.0, max_tokens=6)
    return Agent(engine, tokenizer, AgentConfig(prompt=PromptConfig(observation="xml"), sampling=sampling))


def _evaluate(engine, tokenizer, deaths: int):
    # One phone, one episode at a time; the Wi-Fi task's device dies `deaths` times. Its episode has 3 attempts
    # (1 + max_retries 2): 3 deaths drop its group once, 6 drop it again when it is played again.
    pool = FlakyPool(LocalEnvPool(1, screenshots=False, max_steps=2), deaths=deaths, task=TASKS[0])
    instances = [TaskInstance(task, i) for i, task in enumerate(TASKS)]
    return asyncio.run(evaluate(_agent(engine, tokenizer), pool, instances, samples=1, step=3, concurrency=1))


def test_a_group_dropped_by_failures_is_played_again_and_the_evaluation_is_complete(engine, tokenizer) -> None:
    result = _evaluate(engine, tokenizer, deaths=3)
    assert result.episodes == 4 and result.by_task == {task: (0, 1) for task in TASKS}
    assert result.dropped_groups == 0 and result.rerun_groups == 1
    assert len(result.drop_reasons) == 1 and "injected" in result.drop_reasons[0]
    assert result.to_dict()["rerun_groups"] == 1 and result.metrics()["eval/dropped_groups"] == 0.0


def test_a_group_that_keeps_failing_is_reported_dropped_with_its_reasons(engine, tokenizer) -> None:
    result = _evaluate(engine, tokenizer, deaths=6)
    assert result.episodes == 3 and TASKS[0] not in result.by_task
    assert result.dropped_groups == 1 and result.rerun_groups == 1
    assert len(result.drop_reasons) == 2 and all("eval-3" in reason for reason in result.drop_reasons)
    assert result.to_dict()["drop_reasons"] == result.drop_reasons
