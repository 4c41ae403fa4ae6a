"""The router over real transformers engines (in-process and in a Ray actor), and file-based weight sync."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import hf_model, perturbed

from droidrl.cluster.engine_actor import EngineClient, EngineSpec, start_engine
from droidrl.models.scoring import score
from droidrl.rollout.engines.base import Engine, SamplingParams
from droidrl.rollout.engines.router import Router
from droidrl.rollout.engines.transformers_engine import TransformersEngine, TransformersEngineConfig
from droidrl.rollout.engines.weight_sync import FileWeightSync

PROMPT = [3722, 872, 198, 5, 17, 230, 98, 41, 3723, 198]  # any in-vocabulary ids do
SHORT = SamplingParams(max_tokens=6, seed=0)


def hf_engine(model_dir: Path, name: str) -> TransformersEngine:
    return TransformersEngine(TransformersEngineConfig(model=str(model_dir), name=name))


def test_first_turns_go_to_the_least_loaded_engine_and_later_turns_stick(model_dir: Path) -> None:
    async def scenario() -> None:
        router = Router([hf_engine(model_dir, "hf-a"), hf_engine(model_dir, "hf-b")])
        long = asyncio.ensure_future(router.generate(PROMPT, SamplingParams(max_tokens=150, seed=1), session="s1"))
        await asyncio.sleep(0)  # s1's first turn is routed (to hf-a: a tie goes to the first engine)
        assert router.engine_for("s1") == "hf-a" and router.loads() == {"hf-a": 1, "hf-b": 0}
        second = await router.generate(PROMPT, SHORT, session="s2")  # hf-a is busy
        assert second.engine == "hf-b"
        # s1's next turn stays on hf-a although hf-a is the busier engine.
        again = asyncio.ensure_future(router.generate(PROMPT, SHORT, session="s1"))
        await asyncio.sleep(0)
        assert router.loads() == {"hf-a": 2, "hf-b": 0}
        assert (await again).engine == "hf-a" and (await long).engine == "hf-a"
        assert router.load == 0
        # Both idle: new sessions balance by sessions held (hf-a has s1, hf-b has s2), then by order.
        assert (await router.generate(PROMPT, SHORT, session="s3")).engine == "hf-a"
        assert (await router.generate(PROMPT, SHORT, session="s4")).engine == "hf-b"
        router.end_session("s1")
        router.end_session("s3")  # hf-a now holds no session, hf-b holds two
        assert router.engine_for("s1") is None
        assert (await router.generate(PROMPT, SHORT, session="s5")).engine == "hf-a"
        # No session: least loaded, never pinned.
        assert (await router.generate(PROMPT, SHORT)).engine in {"hf-a", "hf-b"}
        await router.close()

    asyncio.run(scenario())


def test_file_sync_updates_every_engine_and_the_router_version(model_dir: Path, tmp_path: Path) -> None:
    async def scenario() -> None:
        router = Router([hf_engine(model_dir, "hf-a"), hf_engine(model_dir, "hf-b")])
        sync = FileWeightSync(router, root=tmp_path / "weights", keep=2, copy_from=model_dir)
        assert router.version == 0
        for version in (1, 2, 3):
            seconds = await sync.update_weights(perturbed(model_dir, seed=version), version)
            assert seconds > 0
            assert router.version == version and [e.version for e in router.engines] == [version, version]
        assert sorted(p.name for p in (tmp_path / "weights").iterdir()) == ["v00000002", "v00000003"]
        reference = hf_model(tmp_path / "weights" / "v00000003")
        for session in ("a", "b"):  # one session per engine
            completion = await router.generate(PROMPT, SamplingParams(max_tokens=12, seed=4), session=session)
            assert completion.versions == [3] * 12
            expected = score(reference, PROMPT, completion.token_ids)
            assert max(abs(x - y) for x, y in zip(completion.logprobs, expected, strict=True)) < 1e-4
        assert {router.engine_for("a"), router.engine_for("b")} == {"hf-a", "hf-b"}
        await router.close()

    asyncio.run(scenario())


class FailingUpdates:
    """A real engine whose weight updates fail (a node that lost the shared-memory files)."""

    def __init__(self, engine: TransformersEngine) -> None:
        self.engine = engine
        self.name = engine.name

    @property
    def version(self) -> int:
        return self.engine.version

    async def generate(self, *args, **kwargs):
        return await self.engine.generate(*args, **kwargs)

    async def update_weights(self, source: Path, version: int) -> None:
        raise FileNotFoundError(f"{source} is not visible on this node")

    async def close(self) -> None:
        await self.engine.close()


def test_router_version_is_the_oldest_serving_engines(model_dir: Path, tmp_path: Path) -> None:
    async def scenario() -> None:
        healthy = hf_engine(model_dir, "hf-ok")
        router = Router([healthy, FailingUpdates(hf_engine(model_dir, "hf-broken"))])
        sync = FileWeightSync(router, root=tmp_path)
        await sync.update_weights(perturbed(model_dir, seed=1), 1)  # the failed replica is reported, not raised
        assert sync.last_report.failed.keys() == {"hf-broken"}
        # hf-broken still holds version 0 and takes no turns until it has version 1 (tests/test_engine_faults.py).
        assert healthy.version == 1 and router.engines[1].version == 0 and router.version == 1
        await router.close()

    asyncio.run(scenario())


def test_router_rejects_duplicate_names_and_no_engines(model_dir: Path) -> None:
    with pytest.raises(ValueError, match="at least one engine"):
        Router([])
    engine = hf_engine(model_dir, "same")
    with pytest.raises(ValueError, match="distinct names"):
        Router([engine, engine])
    asyncio.run(engine.close())


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_engine_actor_behind_a_router_generates_and_updates(ray_cluster: None, model_dir: Path, tmp_path: Path) -> None:
    async def scenario() -> None:
        remote = await start_engine(EngineSpec("transformers", str(model_dir), name="hf-remote"))
        assert isinstance(remote, EngineClient) and isinstance(remote, Engine)
        assert remote.version == 0 and remote.workers == 1
        router = Router([remote, hf_engine(model_dir, "hf-local")])
        sync = FileWeightSync(router, root=tmp_path, copy_from=model_dir)
        await sync.update_weights(perturbed(model_dir, seed=9), 1)
        assert remote.version == 1 and router.version == 1
        completion = await router.generate(PROMPT, SamplingParams(max_tokens=10, seed=2), session="episode-1")
        assert completion.engine == "hf-remote" and completion.versions == [1] * 10
        expected = score(hf_model(tmp_path / "v00000001"), PROMPT, completion.token_ids)
        assert max(abs(x - y) for x, y in zip(completion.logprobs, expected, strict=True)) < 1e-4
        assert await remote.load() == 0
        await router.close()

    asyncio.run(scenario())
