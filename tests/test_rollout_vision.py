"""A vision policy (tiny-vl, tiny-glm4v) plays simulated phones from screenshots through the collector, on CPU,
exactly."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoTokenizer

from droidrl.models.scoring import score
from droidrl.rollout.agent import Agent, AgentConfig
from droidrl.rollout.collector import Collector, CollectorConfig, TaskInstance
from droidrl.rollout.engines.base import SamplingParams
from droidrl.rollout.engines.transformers_engine import TransformersEngine, TransformersEngineConfig
from droidrl.rollout.envpool import LocalEnvPool
from droidrl.rollout.prompts import PromptConfig
from droidrl.rollout.records import load_images, read_turns, write_groups


@pytest.fixture(scope="module")
def vl_dir(vision_model_dir: Path) -> Path:
    return vision_model_dir  # each vision family in turn


def test_screenshot_episodes_are_recorded_and_rescored_exactly(vl_dir: Path, tmp_path: Path) -> None:
    async def main():
        engine = TransformersEngine(TransformersEngineConfig(model=str(vl_dir), batch_wait_s=0.05))
        prompt = PromptConfig(observation="screenshot", image_turns=1)
        agent = Agent(
            engine,
            AutoTokenizer.from_pretrained(vl_dir),
            AgentConfig(prompt=prompt, sampling=SamplingParams(max_tokens=6)),
        )
        pool = LocalEnvPool(2, screenshots=True, pixel_budget=120_000, max_steps=2)
        collector = Collector(agent, pool, CollectorConfig(group_size=2, batch_size=2, max_concurrent_episodes=2))
        groups = await collector.collect([TaskInstance("SystemWifiTurnOff", 1), TaskInstance("ClockAlarmDelete", 2)])
        await engine.close()
        return groups

    groups = asyncio.run(main())
    assert len(groups) == 2 and all(len(g.episodes) == 2 for g in groups)
    path = write_groups(groups, tmp_path / "vl.parquet", run_id="vl", batch_id=0)
    turns = read_turns(path)
    assert len(turns) == 8 and all(len(refs) == 1 for refs in turns.images)  # image_turns=1: one screenshot each
    model = AutoModelForImageTextToText.from_pretrained(vl_dir, dtype=torch.float32)
    for row in turns.iloc[[0, 3, 6]].to_dict("records"):
        images = load_images(path, row)
        assert images[0].shape[2] == 3 and images[0].shape[0] * images[0].shape[1] <= 120_000
        expected = score(model, list(row["prompt_ids"]), list(row["response_ids"]), images=images)
        diff = max(abs(a - b) for a, b in zip(row["logprobs"], expected, strict=True))
        assert diff < 1e-4, f"turn {row['episode_id']}/{row['turn']}: {diff}"
