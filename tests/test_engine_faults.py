"""Engine fault tolerance: the router routes around a failing engine, a weight update survives a failed replica,
and a killed engine actor (a real Ray actor running the tiny model) comes back at the current policy version."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import hf_model, perturbed

from droidrl.models.scoring import score
from droidrl.rollout.engines.base import SamplingParams
from droidrl.rollout.engines.router import EngineUnavailable, NoEngineAvailable, Router, RouterConfig
from droidrl.rollout.engines.transformers_engine import TransformersEngine, TransformersEngineConfig
from droidrl.rollout.engines.weight_sync import FileWeightSync, WeightSyncFailed

PROMPT = [3722, 872, 198, 5, 17, 230, 98, 41, 3723, 198]  # any in-vocabulary ids do
SHORT = SamplingParams(max_tokens=4, seed=0)


def hf_engine(model_dir: Path, name: str) -> TransformersEngine:
    return TransformersEngine(TransformersEngineConfig(model=str(model_dir), name=name))


class Breakable:
    """A real engine that can be made to fail (`broken`): generate raises, and weight updates too if `updates`."""

    def __init__(self, engine: TransformersEngine, updates: bool = False) -> None:
        self.engine = engine
        self.name = engine.name
        self.broken = False
        self.updates = updates

    @property
    def version(self) -> int:
        return self.engine.version

    async def generate(self, *args, **kwargs):
        if self.broken and not self.updates:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return await self.engine.generate(*args, **kwargs)

    async def update_weights(self, source: Path, version: int) -> None:
        if self.broken and self.updates:
            raise FileNotFoundError(f"{source} is not visible on this node")
        await self.engine.update_weights(source, version)

    async def close(self) -> None:
        await self.engine.close()


async def until(condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


def test_the_router_skips_a_failing_engine_moves_its_sessions_and_takes_it_back(model_dir: Path) -> None:
    async def scenario() -> None:
        flaky = Breakable(hf_engine(model_dir, "hf-a"))
        router = Router([flaky, hf_engine(model_dir, "hf-b")], config=RouterConfig(retry_after_s=0.2))
        assert (await router.generate(PROMPT, SHORT, session="s1")).engine == "hf-a"
        assert (await router.generate(PROMPT, SHORT, session="s2")).engine == "hf-b"
        flaky.broken = True
        with pytest.raises(EngineUnavailable, match=r"hf-a failed .*illegal memory access"):
            await router.generate(PROMPT, SHORT, session="s1")
        assert router.serving() == {"hf-a": False, "hf-b": True}
        # hf-a is idle and holds fewer sessions, yet new sessions and s1's next turn all go to hf-b.
        for session in ("s3", "s4", "s1"):
            assert (await router.generate(PROMPT, SHORT, session=session)).engine == "hf-b"
        assert router.engine_for("s1") == "hf-b"
        assert router.stats.engine_failures == 1 and router.stats.failed_requests == 1
        assert router.stats.sessions_moved == 1
        flaky.broken = False  # after its back-off it is tried again, and serves
        await until(lambda: router.serving()["hf-a"])
        assert (await router.generate(PROMPT, SHORT, session="s5")).engine == "hf-a"
        assert router.stats.recoveries == 1 and router.stats.engines_lost == 0
        await router.close()

    asyncio.run(scenario())


def test_an_engine_that_keeps_failing_is_given_up_and_then_the_router_says_why(model_dir: Path) -> None:
    async def scenario() -> None:
        dead = Breakable(hf_engine(model_dir, "hf-dead"))
        dead.broken = True
        router = Router([dead], config=RouterConfig(retry_after_s=0.01, max_tries=2))
        failures = 0
        with pytest.raises(NoEngineAvailable, match=r"no engine can be brought back \(hf-dead: generate failed"):
            for _ in range(10):  # each try fails again right after the engine is taken back
                try:
                    await router.generate(PROMPT, SHORT, session="s")
                except NoEngineAvailable:
                    raise
                except EngineUnavailable:
                    failures += 1
        assert failures == 3 and router.stats.engines_lost == 1  # the first failure, then max_tries more
        assert router.serving() == {"hf-dead": False}
        with pytest.raises(NoEngineAvailable):
            await router.update_weights(model_dir, 1)
        await router.close()

    asyncio.run(scenario())


def test_update_weights_with_a_failing_replica_updates_the_others_and_reports_it(
    model_dir: Path, tmp_path: Path
) -> None:
    async def scenario() -> None:
        healthy, broken = hf_engine(model_dir, "hf-ok"), Breakable(hf_engine(model_dir, "hf-broken"), updates=True)
        broken.broken = True
        router = Router([healthy, broken], config=RouterConfig(retry_after_s=0.2))
        sync = FileWeightSync(router, root=tmp_path, copy_from=model_dir)
        assert await sync.update_weights(perturbed(model_dir, seed=1), 1) > 0
        report = sync.last_report
        assert report.version == 1 and report.updated == ["hf-ok"] and report.recovering == ["hf-broken"]
        assert list(report.failed) == ["hf-broken"] and "FileNotFoundError" in report.failed["hf-broken"]
        metrics = sync.metrics()
        assert metrics["engine/weight_update_failures"] == 1 and metrics["engine/update_failed_replicas"] == 1
        assert healthy.version == 1 and broken.version == 0
        # The replica left at version 0 takes no turns: every completion is the new policy's.
        assert router.version == 1 and router.serving() == {"hf-ok": True, "hf-broken": False}
        for session in ("a", "b"):
            completion = await router.generate(PROMPT, SHORT, session=session)
            assert completion.engine == "hf-ok" and completion.versions == [1] * len(completion.token_ids)
        # Once it can load weights again it is brought to version 1 first, then serves.
        broken.broken = False
        await until(lambda: router.serving()["hf-broken"])
        assert broken.version == 1 and router.version == 1
        completion = await router.generate(PROMPT, SHORT, session="c")
        assert completion.engine == "hf-broken" and completion.versions == [1] * len(completion.token_ids)
        await router.close()

    asyncio.run(scenario())


class Hanging(Breakable):
    """A real engine whose weight updates, and generates once `broken`, never finish (a wedged process)."""

    async def generate(self, *args, **kwargs):
        if self.broken:
            await asyncio.sleep(3600)
        return await self.engine.generate(*args, **kwargs)

    async def update_weights(self, source: Path, version: int) -> None:
        await asyncio.sleep(3600)


def test_a_generate_with_no_answer_counts_as_a_failure_of_its_engine(model_dir: Path) -> None:
    async def scenario() -> None:
        wedged = Hanging(hf_engine(model_dir, "hf-wedged"))
        wedged.broken = True
        router = Router([wedged, hf_engine(model_dir, "hf-ok")], config=RouterConfig(hang_after_s=0.5))
        with pytest.raises(EngineUnavailable, match=r"hf-wedged failed \(no answer within 0\.5s\)"):
            await router.generate(PROMPT, SHORT, session="s1")
        assert router.serving() == {"hf-wedged": False, "hf-ok": True}
        assert (await router.generate(PROMPT, SHORT, session="s1")).engine == "hf-ok"
        await router.close()

    asyncio.run(scenario())


def test_a_weight_update_that_hangs_times_out(model_dir: Path, tmp_path: Path) -> None:
    async def scenario() -> None:
        # Behind a router the hung replica is dropped from serving after router.update_timeout_s ...
        healthy, hung = hf_engine(model_dir, "hf-ok"), Hanging(hf_engine(model_dir, "hf-hung"))
        router = Router([healthy, hung], config=RouterConfig(update_timeout_s=0.5, retry_after_s=30))
        await FileWeightSync(router, root=tmp_path / "r", copy_from=model_dir).update_weights(model_dir_state, 1)
        assert router.last_update.failed == {"hf-hung": "no answer within 0.5s"}
        assert router.serving() == {"hf-ok": True, "hf-hung": False} and router.version == 1
        await router.close()
        # ... and a single engine that hangs fails the publish within weight_sync.timeout_s, naming it.
        alone = Hanging(hf_engine(model_dir, "hf-alone"))
        sync = FileWeightSync(alone, root=tmp_path / "a", timeout_s=0.5)
        with pytest.raises(WeightSyncFailed, match=r"hf-alone did not load policy version 1 within 0\.5s"):
            await sync.update_weights(model_dir_state, 1)
        await alone.close()

    model_dir_state = hf_model(model_dir).state_dict()
    asyncio.run(scenario())


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.mark.slow
def test_a_killed_engine_actor_is_restarted_at_the_current_version_and_its_episodes_are_retried(
    ray_cluster: None, model_dir: Path, tokenizer, tmp_path: Path
) -> None:
    import ray

    from droidrl.cluster.engine_actor import EngineSpec, actor_name, revive_engine, start_engine
    from droidrl.rollout.agent import Agent, AgentConfig
    from droidrl.rollout.collector import Collector, CollectorConfig, TaskInstance
    from droidrl.rollout.envpool import LocalEnvPool
    from droidrl.rollout.prompts import PromptConfig

    async def scenario() -> None:
        client = await start_engine(EngineSpec("transformers", str(model_dir), name="hf-chaos"))
        router = Router([client], config=RouterConfig(retry_after_s=0.1), revive=revive_engine)
        sync = FileWeightSync(router, root=tmp_path, copy_from=model_dir)
        await sync.update_weights(perturbed(model_dir, seed=5), 1)
        assert client.version == 1
        first_pid = client.pid
        ray.kill(ray.get_actor(actor_name("hf-chaos")))  # what a chaos run does to a running engine

        # Two episodes were waiting for the model: each loses its turn, is retried, and finishes on the
        # restarted engine at version 1.
        sampling = SamplingParams(temperature=1.0, max_tokens=6)
        agent = Agent(router, tokenizer, AgentConfig(prompt=PromptConfig(observation="xml"), sampling=sampling))
        pool = LocalEnvPool(2, screenshots=False, max_steps=2)
        collector = Collector(agent, pool, CollectorConfig(group_size=2, batch_size=1))
        groups = await collector.collect([TaskInstance("SystemWifiTurnOff", 0)])
        assert len(groups) == 1 and collector.stats.groups_dropped == 0
        assert collector.stats.failures == {"engine": 2} and collector.stats.retried == 2
        assert [e.attempts for e in groups[0].episodes] == [2, 2]
        assert all(e.min_version == 1 for e in groups[0].episodes)
        assert router.stats.engine_failures == 1 and router.stats.restarts == 1 and router.stats.recoveries == 1
        assert client.pid != first_pid and client.version == 1
        assert ray.get_actor(actor_name("hf-chaos")) is not None  # the new actor holds the name

        # The restarted engine serves the published weights exactly.
        completion = await router.generate(PROMPT, SamplingParams(max_tokens=8, seed=3), session="after")
        assert completion.versions == [1] * 8
        expected = score(hf_model(tmp_path / "v00000001"), PROMPT, completion.token_ids)
        assert max(abs(x - y) for x, y in zip(completion.logprobs, expected, strict=True)) < 1e-4
        await router.close()
        pool.close()

    asyncio.run(scenario())


def engine_actor_processes() -> list:
    """This process's descendants that run an engine actor (Ray titles them `ray::EngineActor...`)."""
    import psutil

    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if " ".join(child.cmdline()).startswith("ray::EngineActor"):
                found.append(child)
        except psutil.Error:  # gone meanwhile
            continue
    return found


@pytest.mark.slow
def test_droidrl_train_with_two_engine_actors_survives_one_killed_with_sigkill(
    model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import os
    import signal

    import ray

    from droidrl.cluster.launch import train
    from droidrl.trainer.config import load_config
    from droidrl.trainer.loop import Events

    overrides = [
        "curriculum.tasks=[SystemWifiTurnOff, SystemWifiTurnOn]",
        "curriculum.eval_seeds=[1000000]",
        "rollout.engine=transformers",
        "rollout.max_model_len=2048",
        "env.ray=false",
        "logging.wandb=disabled",
        f"run_dir={tmp_path / 'run'}",
        f"model.path={model_dir}",
        "steps=2",
        "env.phones=4",
        "env.max_steps=2",
        "collector.group_size=2",
        "collector.batch_size=2",
        "collector.max_concurrent_episodes=4",
        "resources.engines=2",  # two engine actors behind a Router
        "eval.before=false",
        "eval.samples=1",
    ]
    killed: list[int] = []

    def kill_an_engine(step: int, _: dict[str, float]) -> None:
        if step == 1:  # between the steps: the next groups' first turns hit the dead engine
            victim = engine_actor_processes()[0]
            killed.append(victim.pid)
            os.kill(victim.pid, signal.SIGKILL)

    caplog.set_level(logging.INFO, logger="droidrl.rollout.engines.router")
    try:
        summary = train(load_config(None, overrides), events=Events(step=kill_an_engine))
    finally:
        ray.shutdown()
    assert summary.steps == 2 and summary.version == 2 and len(killed) == 1
    last = summary.history[-1]
    assert last["collector/groups_dropped"] == 0.0 and last["collector/failures/engine"] >= 1
    assert last["engine/engine_failures"] == 1.0 and last["engine/engines_lost"] == 0.0
    # The console gets one line for the handled failure, without a traceback.
    warnings = [r for r in caplog.records if r.name.endswith("router") and r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "failed" in warnings[0].getMessage() and warnings[0].exc_info is None
