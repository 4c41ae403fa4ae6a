"""The async collector on simulated phones and the tiny model: streaming groups, staleness admission, failures."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from droidrl.rollout.agent import Agent, AgentConfig
from droidrl.rollout.collector import Collector, CollectorConfig, CollectorFailed, Group, TaskInstance
from droidrl.rollout.engines.base import SamplingParams
from droidrl.rollout.engines.transformers_engine import TransformersEngine, TransformersEngineConfig
from droidrl.rollout.envpool import DeviceFailure, LocalEnvPool
from droidrl.rollout.prompts import PromptConfig

TASKS = [
    "SystemWifiTurnOff",
    "ClockStopWatchRunning",
    "ContactsAddContact",
    "MarkorCreateNote",
    "SystemBluetoothTurnOn",
]
MAX_STEPS = 2  # every episode is two turns: enough for history, cheap on a shared CPU


@pytest.fixture(scope="module")
def engine(model_dir: Path):
    engine = TransformersEngine(TransformersEngineConfig(model=str(model_dir), batch_wait_s=0.02))
    yield engine
    asyncio.run(engine.close())


def make_agent(engine, tokenizer, **config) -> Agent:
    sampling = SamplingParams(temperature=1.0, max_tokens=6)
    return Agent(engine, tokenizer, AgentConfig(prompt=PromptConfig(observation="xml"), sampling=sampling, **config))


def make_pool(devices: int) -> LocalEnvPool:
    return LocalEnvPool(devices, screenshots=False, max_steps=MAX_STEPS)


def instances(count: int) -> list[TaskInstance]:
    return [TaskInstance(TASKS[i % len(TASKS)], i) for i in range(count)]


class FailingEngine:
    """The real engine, made to raise on the calls `fails(call_number, session)` picks (a crashed engine)."""

    def __init__(self, engine: TransformersEngine, fails: Callable[[int, str], bool], hang_s: float = 0.0):
        self.engine = engine
        self.fails = fails
        self.hang_s = hang_s
        self.name = engine.name
        self.calls = 0

    @property
    def version(self) -> int:
        return self.engine.version

    async def generate(self, prompt_ids, sampling, images=None, session=None):
        self.calls += 1
        if self.fails(self.calls, session or ""):
            if self.hang_s:
                await asyncio.sleep(self.hang_s)  # a hung engine: the agent's step timeout must fire
            raise RuntimeError("CUDA error: an illegal memory access was encountered (injected)")
        return await self.engine.generate(prompt_ids, sampling, images, session)


class EnginesGone:
    """An engine behind a router whose every engine was given up: each call raises NoEngineAvailable."""

    name = "router"
    version = 0
    calls = 0

    async def generate(self, prompt_ids, sampling, images=None, session=None):
        from droidrl.rollout.engines.router import NoEngineAvailable

        self.calls += 1
        raise NoEngineAvailable("no engine can be brought back (vllm-0: actor died; vllm-1: actor died)")


class DyingDevicePool:
    """A real LocalEnvPool whose device `dying` dies (DeviceFailure) on its first `deaths` steps."""

    def __init__(self, pool: LocalEnvPool, dying: str, deaths: int = 1) -> None:
        self.pool = pool
        self.dying = dying
        self.deaths = deaths
        self.died_on: list[str] = []

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator:
        async with self.pool.lease() as lease:
            yield _DyingLease(lease, self) if lease.id == self.dying else lease

    def stats(self) -> dict[str, int]:
        return self.pool.stats()


class _DyingLease:
    def __init__(self, lease, pool: DyingDevicePool) -> None:
        self.lease, self.pool, self.id = lease, pool, lease.id

    async def reset(self, task: str, seed: int):
        return await self.lease.reset(task, seed)

    async def step(self, action_text: str):
        if self.pool.deaths > 0:
            self.pool.deaths -= 1
            self.pool.died_on.append(self.id)
            raise DeviceFailure(f"{self.id}: adb connection reset by peer (injected)")
        return await self.lease.step(action_text)


def check_group(group: Group, size: int) -> None:
    assert len(group.episodes) == size
    for episode in group.episodes:
        assert episode.task == f"{group.instance.task}:{group.instance.seed}"
        assert episode.length == MAX_STEPS and episode.turns[-1].index == MAX_STEPS - 1
        assert episode.end_reason in (f"max_steps ({MAX_STEPS}) reached", "2 invalid actions in a row")
        assert episode.reward == 0.0 and not episode.success  # random weights solve nothing
        for turn in episode.turns:
            assert len(turn.response_ids) == len(turn.logprobs) == len(turn.versions) >= 1
            assert all(v == 0 for v in turn.versions) and all(lp <= 0 for lp in turn.logprobs)


# ---- streaming and counters --------------------------------------------------------------------


def test_groups_stream_out_as_they_finish_with_counts(engine, tokenizer) -> None:
    collector = Collector(
        make_agent(engine, tokenizer),
        make_pool(2),
        CollectorConfig(group_size=2, batch_size=3, max_concurrent_episodes=2),
        run_id="t1",
    )

    async def run() -> tuple[list[Group], list[int]]:
        groups, finished_when_seen = [], []
        async for group in collector.stream(instances(3)):
            groups.append(group)
            finished_when_seen.append(collector.stats.episodes)
        return groups, finished_when_seen

    groups, finished_when_seen = asyncio.run(run())
    assert sorted(g.instance for g in groups) == sorted(instances(3))
    assert len({g.group_id for g in groups}) == 3 and all(g.group_id.startswith("t1-g") for g in groups)
    for group in groups:
        check_group(group, 2)
        assert group.start_version == 0 and group.min_version == 0
    # Streamed: the first group came out while the others were still running (2 episode slots, 6 episodes).
    assert finished_when_seen[0] < 6
    stats = collector.stats
    episodes = [e for g in groups for e in g.episodes]
    assert (stats.groups_admitted, stats.groups_finished, stats.groups_dropped, stats.episodes) == (3, 3, 0, 6)
    assert stats.retried == 0 and stats.failures == {}
    assert stats.turns == sum(e.length for e in episodes) == 6 * MAX_STEPS
    assert stats.invalid_actions == sum(e.invalid_actions for e in episodes)
    assert stats.response_tokens == sum(e.tokens for e in episodes)
    assert stats.prompt_tokens == sum(len(t.prompt_ids) for e in episodes for t in e.turns)
    assert collector.pool.stats()["free"] == 2  # every device went back


# ---- staleness admission -----------------------------------------------------------------------


def test_eta_0_is_synchronous(engine, tokenizer) -> None:
    collector = Collector(
        make_agent(engine, tokenizer),
        make_pool(2),
        CollectorConfig(group_size=1, batch_size=2, max_concurrent_episodes=2, max_staleness=0),
    )
    seen: list[tuple[int, int]] = []  # (start_version, trainer version when consumed)

    async def run() -> None:
        async for group in collector.stream(instances(4)):
            seen.append((group.start_version, collector.trainer_version))
            if len(seen) == 2:  # batch 0 is complete: nothing of batch 1 may have started
                await asyncio.sleep(0.5)
                assert collector.stats.groups_admitted == 2 and collector.capacity() == 0
                collector.set_trainer_version(1)  # the trainer consumed batch 0 and stepped

    asyncio.run(run())
    assert seen == [(0, 0), (0, 0), (1, 1), (1, 1)]


@pytest.mark.slow
def test_eta_2_runs_two_versions_ahead_and_no_further(engine, tokenizer) -> None:
    collector = Collector(
        make_agent(engine, tokenizer),
        make_pool(2),
        CollectorConfig(group_size=1, batch_size=1, max_concurrent_episodes=2, max_staleness=2),
    )
    seen: list[tuple[int, int]] = []

    async def run() -> None:
        async for group in collector.stream(instances(5)):
            seen.append((group.start_version, collector.trainer_version))
            if len(seen) == 3:  # (eta + 1) * B groups run at version 0; the 4th must wait
                await asyncio.sleep(0.5)
                assert collector.stats.groups_admitted == 3 and collector.capacity() == 0
            if len(seen) >= 3:
                collector.set_trainer_version(len(seen) - 2)

    asyncio.run(run())
    assert [start for start, _ in seen] == [0, 0, 0, 1, 2]
    # Never trained on more than eta versions after it started.
    assert all(consumed - start <= 2 for start, consumed in seen)
    with pytest.raises(ValueError, match="only goes up"):
        collector.set_trainer_version(0)
    # After a resume at version 7 with 8 groups already accepted, the bound still counts from there.
    resumed = Collector(collector.agent, make_pool(1), collector.config)
    resumed.restore(trainer_version=7, accepted=8)
    assert resumed.capacity() == (2 + 7 + 1) * 1 - 8


# ---- failures ----------------------------------------------------------------------------------


def test_a_dying_device_is_retried_on_another_device(engine, tokenizer) -> None:
    # The retry takes a fresh lease; LocalEnvPool hands devices out in FIFO order, so it gets the other
    # phone (RayEnvPool goes further and replaces the dead one).
    pool = DyingDevicePool(make_pool(2), dying="local/0", deaths=1)
    collector = Collector(make_agent(engine, tokenizer), pool, CollectorConfig(group_size=1, batch_size=1))
    groups = asyncio.run(collector.collect(instances(1)))
    assert len(groups) == 1
    check_group(groups[0], 1)
    episode = groups[0].episodes[0]
    assert episode.attempts == 2 and episode.device == "local/1" and pool.died_on == ["local/0"]
    stats = collector.stats
    assert (stats.retried, stats.failures, stats.groups_dropped, stats.episodes) == (1, {"device": 1}, 0, 1)
    assert "adb connection reset" in stats.last_error
    assert pool.stats()["failures"] == 1  # the DeviceFailure went through the lease block: the pool saw it


def test_an_engine_error_and_a_hung_engine_are_retried(engine, tokenizer) -> None:
    failing = FailingEngine(engine, fails=lambda call, session: call in (1, 2), hang_s=0.0)
    collector = Collector(make_agent(failing, tokenizer), make_pool(1), CollectorConfig(group_size=1, batch_size=1))
    groups = asyncio.run(collector.collect(instances(1)))
    assert len(groups) == 1 and groups[0].episodes[0].attempts == 3
    assert collector.stats.failures == {"engine": 2} and collector.stats.retried == 2
    assert "illegal memory access" in collector.stats.last_error

    hung = FailingEngine(engine, fails=lambda call, session: call == 1, hang_s=30.0)
    # Far below the hang, above a step on a loaded machine (at load average ~20 on 2 cores, ordinary
    # 6-token steps took over 3 s and every attempt timed out).
    agent = make_agent(hung, tokenizer, step_timeout_s=10.0)
    collector = Collector(agent, make_pool(1), CollectorConfig(group_size=1, batch_size=1))
    groups = asyncio.run(collector.collect(instances(1)))
    assert len(groups) == 1 and groups[0].episodes[0].attempts == 2
    assert collector.stats.failures == {"timeout": 1}
    assert "agent.step_timeout_s=10.0" in collector.stats.last_error


def test_no_engine_left_stops_the_stream_at_once_naming_why(tokenizer) -> None:
    # Retrying cannot help when the router has given up every engine: the run must stop with the reason,
    # not drop max_consecutive_drops groups first.
    engine = EnginesGone()
    config = CollectorConfig(group_size=2, batch_size=4, max_retries=2, max_consecutive_drops=8)
    collector = Collector(make_agent(engine, tokenizer), make_pool(2), config)
    with pytest.raises(CollectorFailed, match="no engine can be brought back"):
        asyncio.run(collector.collect(instances(4)))
    assert collector.stats.groups_dropped == 0 and collector.stats.retried == 0
    assert engine.calls <= 2  # the first episodes' first calls; no retry went back to the router


@pytest.mark.slow
def test_a_group_is_dropped_after_the_retry_budget_and_the_rest_go_on(engine, tokenizer) -> None:
    # Every attempt of episode 0 of the second group crashes the engine.
    failing = FailingEngine(engine, fails=lambda call, session: "-g000001-e0-" in session)
    collector = Collector(
        make_agent(failing, tokenizer),
        make_pool(2),
        CollectorConfig(group_size=2, batch_size=3, max_concurrent_episodes=2, max_retries=1),
    )
    groups = asyncio.run(collector.collect(instances(3)))
    assert sorted(g.index for g in groups) == [0, 2]  # never yielded as reward 0, and the batch went on
    for group in groups:
        check_group(group, 2)
    stats = collector.stats
    assert (stats.groups_admitted, stats.groups_finished, stats.groups_dropped) == (3, 2, 1)
    assert stats.failures == {"engine": 2} and stats.retried == 1
    assert collector.pool.stats()["free"] == 2


def test_a_bad_task_drops_its_group_without_retries(engine, tokenizer) -> None:
    collector = Collector(make_agent(engine, tokenizer), make_pool(1), CollectorConfig(group_size=1, batch_size=2))
    groups = asyncio.run(collector.collect([TaskInstance("NoSuchTask", 0), TaskInstance("SystemWifiTurnOff", 1)]))
    assert [g.instance.task for g in groups] == ["SystemWifiTurnOff"]
    assert collector.stats.groups_dropped == 1 and collector.stats.retried == 0
    assert "no task template named 'NoSuchTask'" in collector.stats.last_error


def test_a_dead_engine_stops_the_stream_after_max_consecutive_drops(engine, tokenizer) -> None:
    dead = FailingEngine(engine, fails=lambda call, session: True)
    config = CollectorConfig(group_size=1, batch_size=8, max_retries=0, max_consecutive_drops=3)
    collector = Collector(make_agent(dead, tokenizer), make_pool(1), config)
    with pytest.raises(CollectorFailed, match=r"3 groups in a row were dropped .*illegal memory access"):
        asyncio.run(collector.collect(instances(8)))
    assert collector.stats.groups_dropped == 3  # it stopped there instead of burning through the rest


def test_leaving_the_stream_early_cancels_the_running_groups(engine, tokenizer) -> None:
    pool = make_pool(2)
    config = CollectorConfig(group_size=1, batch_size=4, max_concurrent_episodes=2)
    collector = Collector(make_agent(engine, tokenizer), pool, config)

    async def first() -> Group:
        async with contextlib.aclosing(collector.stream(instances(4))) as stream:
            async for group in stream:
                return group
        raise AssertionError("no group came out")

    group = asyncio.run(first())
    check_group(group, 1)
    assert collector.stats.episodes < 4 and collector._running == 0 and collector._streams == 0
    assert pool.stats()["free"] == 2  # the cancelled episodes gave their devices back
