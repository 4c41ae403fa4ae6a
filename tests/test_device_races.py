"""One device, one caller: health probes never meet an episode's call, and a collision is a retryable DeviceFailure.

A real local Ray cluster with simulated phones in `EnvActor`s. Actors get one worker thread and steps
that settle for a while, so a probe queued behind a step is still pending when the next call arrives.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

import pytest
import ray

from droidrl.cluster.env_actor import EnvActor
from droidrl.cluster.env_pool import RayEnvPool
from droidrl.rollout.envpool import DeviceBusy, DeviceFailure

pytestmark = pytest.mark.slow  # starts Ray and waits out settling steps

TASK = "SystemWifiTurnOff"
LAUNCH = 'do(action="Launch", app="Settings")'
HOME = 'do(action="Home")'
SETTLE_S = 2.0  # each step holds its device thread this long


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    ray.init(
        num_cpus=2,
        resources={"android": 16},
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    yield
    ray.shutdown()


def one_thread_actor(name: str, count: int = 2):
    """An actor whose `count` phones share one worker thread; every step settles SETTLE_S."""
    actor = EnvActor.options(num_cpus=0, resources={"android": count}).remote(
        name, count=count, threads=1, env_config={"settle_s": SETTLE_S}
    )
    for i in range(count):
        ray.get(actor.reset.remote(f"{name}/{i}", TASK, i), timeout=60)
    return actor


def test_a_step_that_arrives_during_a_probe_waits_for_it_instead_of_failing():
    # The first `droidrl train` lost an evaluation group this way: the probe ran on a device whose
    # episode was waiting for the model, and the episode's next step met the probe.
    actor = one_thread_actor("race")
    try:
        busy = actor.step.remote("race/0", LAUNCH)  # holds the only thread for SETTLE_S
        time.sleep(0.5)
        health = actor.health.remote()  # race/1 looks idle to the actor: its probe queues behind the step
        time.sleep(0.5)
        step = ray.get(actor.step.remote("race/1", LAUNCH), timeout=60)
        assert step.info["valid"] and step.observation.app == "com.android.settings"
        assert ray.get(health, timeout=60)["race/1"] == "ok"  # probed first, then stepped
        assert ray.get(busy, timeout=60).observation.app == "com.android.settings"
        assert ray.get(actor.info.remote())["collisions"] == 0
    finally:
        ray.kill(actor)


def test_a_second_call_on_a_busy_device_is_a_retryable_device_failure():
    actor = one_thread_actor("twice", count=1)
    try:
        first = actor.step.remote("twice/0", LAUNCH)
        time.sleep(0.5)
        with pytest.raises(DeviceFailure, match="already running a call") as failure:
            ray.get(actor.step.remote("twice/0", HOME), timeout=60)
        assert isinstance(failure.value, DeviceBusy)
        assert ray.get(first, timeout=60).info["valid"]
        info = ray.get(actor.info.remote())
        assert (info["collisions"], info["dead"]) == (1, {})
        assert ray.get(actor.step.remote("twice/0", HOME), timeout=60).observation.app != "com.android.settings"
    finally:
        ray.kill(actor)


def test_the_pool_probes_only_devices_no_episode_holds():
    async def main() -> None:
        pool = RayEnvPool(
            actors=1, devices_per_actor=2, threads_per_actor=1, env={"settle_s": SETTLE_S}, health_interval_s=None
        )
        async with pool:
            async with pool.lease() as first, pool.lease() as second:
                await asyncio.gather(first.reset(TASK, 1), second.reset(TASK, 2))
                stepping = asyncio.create_task(first.step(LAUNCH))  # holds the actor's only thread
                await asyncio.sleep(0.5)
                checking = asyncio.create_task(pool.check_health())  # `second` waits for the model meanwhile
                await asyncio.sleep(0.5)
                result = await second.step(LAUNCH)
                assert result.info["valid"] and result.observation.app == "com.android.settings"
                await asyncio.gather(stepping, checking)
            stats = pool.stats()
            assert (stats["failures"], stats["collisions"], stats["unhealthy"], stats["free"]) == (0, 0, 0, 2)

    asyncio.run(main())


def test_a_collision_in_the_pool_fails_the_episode_retryably_and_keeps_the_device():
    async def main() -> None:
        async with RayEnvPool(
            actors=1, devices_per_actor=1, env={"settle_s": SETTLE_S}, health_interval_s=None
        ) as pool:
            with pytest.raises(DeviceFailure, match="already running a call"):
                async with pool.lease() as device:
                    await device.reset(TASK, 1)
                    # Another caller (not through the pool) uses the device while this episode holds it.
                    intruder = pool.actor_of(device.id).step.remote(device.id, LAUNCH)
                    await asyncio.sleep(0.5)
                    await device.step(HOME)
            await intruder
            stats = pool.stats()
            assert (stats["failures"], stats["collisions"], stats["replaced"], stats["free"]) == (1, 1, 0, 1)
            async with pool.lease() as device:  # the device was fine, and serves the next episode
                assert (await device.reset(TASK, 2)).info["task"] == f"{TASK}:2"

    asyncio.run(main())


class WaitingEngine:
    """The real engine behind a pause before each answer (seeded, 0.1-0.9 s): episodes wait for the model
    out of step with each other, as they do behind a busy engine."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.name = engine.name
        self.pauses = random.Random(0)

    @property
    def version(self) -> int:
        return self.engine.version

    async def generate(self, prompt_ids, sampling, images=None, session=None):
        await asyncio.sleep(self.pauses.uniform(0.1, 0.9))
        return await self.engine.generate(prompt_ids, sampling, images, session)


def test_episodes_collected_while_health_checks_run_lose_no_group(model_dir, tokenizer):
    # The first `droidrl train` in small: an evaluation's episodes wait for the model while the pool's
    # periodic health check runs; no retries allowed, so any collision would drop a group.
    from droidrl.rollout.agent import Agent, AgentConfig
    from droidrl.rollout.collector import Collector, CollectorConfig, TaskInstance
    from droidrl.rollout.engines.base import SamplingParams
    from droidrl.rollout.engines.transformers_engine import TransformersEngine, TransformersEngineConfig
    from droidrl.rollout.prompts import PromptConfig

    engine = TransformersEngine(TransformersEngineConfig(model=str(model_dir), batch_wait_s=0.02))
    sampling = SamplingParams(temperature=1.0, max_tokens=6)
    agent = Agent(
        WaitingEngine(engine), tokenizer, AgentConfig(prompt=PromptConfig(observation="xml"), sampling=sampling)
    )

    async def main() -> tuple[list, dict, dict]:
        pool = RayEnvPool(
            actors=1,
            devices_per_actor=2,
            threads_per_actor=1,
            env={"settle_s": 1.0, "max_steps": 4, "max_invalid": 4},
            health_interval_s=0.2,
        )
        async with pool:
            config = CollectorConfig(group_size=2, batch_size=2, max_concurrent_episodes=2, max_retries=0)
            collector = Collector(agent, pool, config, run_id="race")
            groups = await collector.collect([TaskInstance(TASK, 1), TaskInstance("SystemBluetoothTurnOn", 2)])
            return groups, collector.stats.as_dict(), pool.stats()

    try:
        groups, collected, stats = asyncio.run(main())
    finally:
        asyncio.run(engine.close())
    assert len(groups) == 2 and all(len(group.episodes) == 2 for group in groups)
    assert (collected["groups_dropped"], collected["failures"]) == (0, {})
    assert (stats["collisions"], stats["failures"], stats["unhealthy"]) == (0, 0, 0)
