"""The trajectory contract's one mapping: Turn -> record row -> Turn, and SFT samples from Parquet equal RL samples.

A hand-made episode whose prompts showed screenshots goes through write_groups; reading the rows
back gives the same Turns, and load_demonstrations gives the samples samples_from_episode makes,
screenshots included.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from droidrl.rollout.records import COLUMNS, TURN_SCHEMA, read_turns, turn_from_row, write_groups
from droidrl.rollout.trajectory import Episode, Group, TaskInstance, Turn
from droidrl.trainer.samples import samples_from_episode
from droidrl.trainer.sft import load_demonstrations

pytestmark = pytest.mark.unit


def _png(shade: int) -> bytes:
    pixels = np.zeros((24, 16, 3), dtype=np.uint8)
    pixels[:, :, 0] = shade
    pixels[3:9, 2:7] = (10, 200, 30)  # something that is not a flat colour
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def _turn(index: int, images: list[int], valid: bool = True) -> Turn:
    return Turn(
        index=index,
        prompt_ids=[1, 2, 3 + index],
        response_ids=[7, 8 + index],
        logprobs=[-0.5, -0.25],
        versions=[3, 3],
        finish_reason="stop",
        action_text=f"<answer>do{index}</answer>",
        action='do(action="Back")' if valid else None,
        valid=valid,
        reason=None if valid else "not an action",
        image_turns=images,
        app="com.android.settings",
    )


def _group() -> Group:
    turns = [_turn(0, [0]), _turn(1, [0, 1]), _turn(2, [], valid=False)]
    episode = Episode(
        episode_id="ep-1",
        task="SystemWifiTurnOff:3",
        template="SystemWifiTurnOff",
        seed=3,
        goal="Turn Wi-Fi off",
        difficulty="easy",
        turns=turns,
        reward=1.0,
        success=True,
        end_reason="finish",
        screenshots=[_png(40), _png(90), None],
        device="local/0",
        engine="hf-0",
    )
    return Group("g-1", 0, TaskInstance("SystemWifiTurnOff", 3), [episode], start_version=3)


def test_schema_is_derived_from_the_contract() -> None:
    assert [f.name for f in TURN_SCHEMA] == [c.name for c in COLUMNS]
    turn_fields = {f.name for f in dataclasses.fields(Turn)} | {"length"}
    episode_fields = {f.name for f in dataclasses.fields(Episode)} | {"length"}
    for column in COLUMNS:
        owner = {"turn": turn_fields, "episode": episode_fields, "group": {"group_id", "index", "start_version"}}
        assert column.level == "run" or column.attr in owner[column.level], column


def test_rows_read_back_as_the_same_turns(tmp_path: Path) -> None:
    group = _group()
    path = write_groups([group], tmp_path / "t.parquet", run_id="r", batch_id=0)
    frame = read_turns(path)
    assert list(frame.turn) == [0, 1, 2] and set(frame.task_id) == {"SystemWifiTurnOff:3"}
    assert [turn_from_row(row) for _, row in frame.iterrows()] == group.episodes[0].turns


def test_sft_samples_from_parquet_are_the_rl_samples_with_their_images(tmp_path: Path) -> None:
    group = _group()
    path = write_groups([group], tmp_path / "demos.parquet", run_id="sft", batch_id=0)
    from_parquet = load_demonstrations(path)  # valid turns of successful episodes
    expected = [s for s in samples_from_episode(group.episodes[0], 1.0) if s.turn in (0, 1)]
    assert len(from_parquet) == 2
    for got, want in zip(from_parquet, expected, strict=True):
        assert (got.prompt_ids, got.response_ids, got.versions, got.turn) == (
            want.prompt_ids,
            want.response_ids,
            want.versions,
            want.turn,
        )
        assert got.rollout_logprobs == pytest.approx(want.rollout_logprobs)
        assert len(got.images) == len(want.images) == len(group.episodes[0].turns[got.turn].image_turns)
        for a, b in zip(got.images, want.images, strict=True):
            assert a.shape == (24, 16, 3) and np.array_equal(a, b)
    assert from_parquet[1].images[1][0, 0, 0] == 90  # the second screen, not the first one twice
