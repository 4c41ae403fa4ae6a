"""Trajectory records: the Parquet + PNG round trip through pandas; re-scoring stored ids reproduces the logprobs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from droidrl.models.scoring import score_batch
from droidrl.rollout.agent import Agent, AgentConfig
from droidrl.rollout.collector import Collector, CollectorConfig, Group, TaskInstance
from droidrl.rollout.engines.base import SamplingParams
from droidrl.rollout.engines.transformers_engine import TransformersEngine, TransformersEngineConfig
from droidrl.rollout.envpool import LocalEnvPool, Observation
from droidrl.rollout.prompts import PromptConfig
from droidrl.rollout.records import TURN_SCHEMA, TrajectoryWriter, load_images, read_table, read_turns

INSTANCES = [TaskInstance("SystemWifiTurnOff", 3), TaskInstance("ClockStopWatchRunning", 4)]


class TextOnlyView:
    """The real text engine behind a vision prompt: ids pass through, pixels are left out.

    The tiny text model reads the image placeholder as a plain token, so prompts, records and
    re-scoring stay exact while the screenshots travel the whole path to the PNG files.
    """

    def __init__(self, engine: TransformersEngine) -> None:
        self.engine, self.name = engine, engine.name

    @property
    def version(self) -> int:
        return self.engine.version

    async def generate(self, prompt_ids, sampling, images=None, session=None):
        return await self.engine.generate(prompt_ids, sampling, None, session)


@pytest.fixture(scope="module")
def groups(model_dir: Path) -> list[Group]:
    """2 instances x 2 episodes of 3 turns, with the last 2 screenshots in every prompt."""
    engine = TransformersEngine(TransformersEngineConfig(model=str(model_dir)))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    config = AgentConfig(
        prompt=PromptConfig(observation="both", image_turns=2, xml_turns=1), sampling=SamplingParams(max_tokens=8)
    )
    pool = LocalEnvPool(2, screenshots=True, pixel_budget=20_000, max_steps=3, max_invalid=3)
    collector = Collector(Agent(TextOnlyView(engine), tokenizer, config), pool, CollectorConfig(group_size=2))
    try:
        return asyncio.run(collector.collect(INSTANCES))
    finally:
        asyncio.run(engine.close())


def test_parquet_round_trip_through_pandas(groups: list[Group], tmp_path: Path) -> None:
    path = TrajectoryWriter(tmp_path / "records", run_id="run-7").write(groups, batch_id=12)
    assert path == tmp_path / "records" / "batch-000012.parquet"
    assert not list(path.parent.glob(".*tmp*"))  # written under a temporary name, then renamed

    frame = pd.read_parquet(path)  # plain pandas, no droidrl reader needed
    assert list(frame.columns) == TURN_SCHEMA.names
    episodes = {e.episode_id: (g, e) for g in groups for e in g.episodes}
    assert len(frame) == sum(e.length for _, e in episodes.values()) == 12
    for row in frame.itertuples():
        group, episode = episodes[row.episode_id]
        turn = episode.turns[row.turn]
        assert (row.run_id, row.batch_id, row.group_id, row.start_version) == ("run-7", 12, group.group_id, 0)
        assert (row.task_id, row.template, row.seed) == (episode.task, group.instance.task, group.instance.seed)
        assert row.difficulty in ("easy", "medium", "hard") and row.goal == episode.goal
        assert row.prompt_ids.tolist() == turn.prompt_ids and row.response_ids.tolist() == turn.response_ids
        assert np.allclose(row.logprobs, turn.logprobs, atol=1e-5)  # stored as float32
        assert row.versions.tolist() == turn.versions
        assert (row.action_text, row.valid, row.reason, row.finish_reason) == (
            turn.action_text,
            turn.valid,
            turn.reason,
            turn.finish_reason,
        )
        assert pd.isna(row.action)  # random weights never produce a valid action: null, not ""
        assert (row.reward, row.success, row.episode_length, row.end_reason) == (
            episode.reward,
            episode.success,
            episode.length,
            episode.end_reason,
        )
        assert row.device.startswith("local/") and row.engine == "hf-0" and row.attempts == 1
    assert read_turns(path).equals(frame)


def test_images_are_pngs_beside_the_file_referenced_by_relative_path(groups: list[Group], tmp_path: Path) -> None:
    path = TrajectoryWriter(tmp_path, run_id="run").write(groups, batch_id=0)
    frame = pd.read_parquet(path)
    episode = groups[0].episodes[0]
    rows = frame[frame.episode_id == episode.episode_id].sort_values("turn")
    # The last 2 screens keep their screenshot: turn 0 shows screen 0, later turns screens t-1 and t.
    assert [list(refs) for refs in rows.images] == [
        [f"batch-000000-images/{episode.episode_id}/screen-000.png"],
        [f"batch-000000-images/{episode.episode_id}/screen-{i:03d}.png" for i in (0, 1)],
        [f"batch-000000-images/{episode.episode_id}/screen-{i:03d}.png" for i in (1, 2)],
    ]
    shown = load_images(path, rows.iloc[2])
    expected = [Observation("", "", episode.screenshots[i]).screenshot() for i in (1, 2)]
    assert all(np.array_equal(a, b) for a, b in zip(shown, expected, strict=True))
    assert shown[0].shape == (210, 94, 3)  # the pool's pixel budget, not the 1080x2400 screen
    # The final screen, seen by no prompt, is not written.
    assert not (tmp_path / f"batch-000000-images/{episode.episode_id}/screen-003.png").exists()
    assert len(list((tmp_path / "batch-000000-images").rglob("*.png"))) == 4 * 3


def test_rescoring_the_stored_ids_reproduces_the_stored_logprobs(
    groups: list[Group], model_dir: Path, tmp_path: Path
) -> None:
    path = TrajectoryWriter(tmp_path, run_id="run").write(groups, batch_id=1)
    frame = read_turns(path)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype="float32").eval()
    pairs = [(row.prompt_ids.tolist(), row.response_ids.tolist()) for row in frame.itertuples()]
    rescored = score_batch(model, pairs)
    worst = max(
        float(np.max(np.abs(np.asarray(new) - stored))) for new, stored in zip(rescored, frame.logprobs, strict=True)
    )
    assert worst < 1e-4, f"re-scored logprobs differ from the stored ones by up to {worst}"


def test_reader_refuses_files_that_are_not_turn_records(tmp_path: Path) -> None:
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), other)
    with pytest.raises(ValueError, match="not a droidrl turn-records file"):
        read_table(other)


def test_the_parquet_file_is_fsynced_before_its_rename_makes_it_count(
    groups: list[Group], tmp_path: Path, monkeypatch
) -> None:
    import os

    events: list[tuple[str, str]] = []  # ("fsync" | "rename", path) in the order they happened
    real_fsync, real_replace = os.fsync, Path.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(self: Path, target: Path) -> Path:
        events.append(("rename", str(self)))
        return real_replace(self, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(Path, "replace", replace)
    path = TrajectoryWriter(tmp_path / "records", run_id="run").write(groups, batch_id=3)
    (rename,) = [i for i, (kind, _) in enumerate(events) if kind == "rename"]
    tmp = events[rename][1]
    assert Path(tmp).parent == path.parent and Path(tmp).name.startswith(".batch-000003.parquet.tmp")
    assert ("fsync", tmp) in events[:rename]  # the data is on disk before the name says it is there
    assert ("fsync", str(path.parent)) in events[rename:]  # and so is the rename
    pngs = {p for kind, p in events[:rename] if kind == "fsync" and p.endswith(".png")}
    assert pngs == {str(p) for p in path.parent.glob("batch-000003-images/*/*.png")} and pngs
