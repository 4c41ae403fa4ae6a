"""Trajectory records: one Arrow row per agent turn, written to Parquet with the screenshots as PNG files beside it.

The row is the unit every later stage reads (advantages, the trainer, replay, viewers): exact prompt
and response ids, the sampling logprobs and per-token policy versions, the action, and the
episode's outcome repeated on each of its turns. `pd.read_parquet(path)` loads a file as it is.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from droidrl.rollout.collector import Group

SCHEMA_VERSION = "1"

TURN_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("batch_id", pa.int64(), nullable=False),
        pa.field("group_id", pa.string(), nullable=False),
        pa.field("group_index", pa.int64(), nullable=False),
        pa.field("start_version", pa.int64(), nullable=False),  # trainer version when the group was admitted
        pa.field("episode_id", pa.string(), nullable=False),
        pa.field("task_id", pa.string(), nullable=False),  # "Name:seed"
        pa.field("template", pa.string(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("difficulty", pa.string(), nullable=False),
        pa.field("goal", pa.string(), nullable=False),
        pa.field("turn", pa.int32(), nullable=False),
        pa.field("prompt_ids", pa.list_(pa.int32()), nullable=False),
        pa.field("response_ids", pa.list_(pa.int32()), nullable=False),
        pa.field("logprobs", pa.list_(pa.float32()), nullable=False),  # sampling logprob of each response id
        pa.field("versions", pa.list_(pa.int32()), nullable=False),  # policy version of each response id
        pa.field("finish_reason", pa.string(), nullable=False),
        pa.field("action_text", pa.string(), nullable=False),  # the decoded response
        pa.field("action", pa.string(), nullable=True),  # canonical action string; null when invalid
        pa.field("valid", pa.bool_(), nullable=False),
        pa.field("reason", pa.string(), nullable=True),  # why the action was invalid or refused
        pa.field("app", pa.string(), nullable=False),  # foreground package the turn saw
        pa.field("images", pa.list_(pa.string()), nullable=False),  # PNG paths relative to the Parquet file
        pa.field("reward", pa.float64(), nullable=False),  # the episode's checker reward
        pa.field("success", pa.bool_(), nullable=False),
        pa.field("episode_length", pa.int32(), nullable=False),
        pa.field("end_reason", pa.string(), nullable=False),
        pa.field("attempts", pa.int32(), nullable=False),
        pa.field("device", pa.string(), nullable=False),
        pa.field("engine", pa.string(), nullable=False),
    ],
    metadata={"droidrl.schema": "turn", "droidrl.schema_version": SCHEMA_VERSION},
)


def groups_to_rows(groups: Sequence[Group], run_id: str, batch_id: int, image_dir: str) -> list[dict[str, Any]]:
    """One dict per turn, in TURN_SCHEMA's fields; images referenced under `image_dir` (relative)."""
    rows: list[dict[str, Any]] = []
    for group in groups:
        for episode in group.episodes:
            for turn in episode.turns:
                rows.append(
                    {
                        "run_id": run_id,
                        "batch_id": batch_id,
                        "group_id": group.group_id,
                        "group_index": group.index,
                        "start_version": group.start_version,
                        "episode_id": episode.episode_id,
                        "task_id": episode.task,
                        "template": episode.template,
                        "seed": episode.seed,
                        "difficulty": episode.difficulty,
                        "goal": episode.goal,
                        "turn": turn.index,
                        "prompt_ids": turn.prompt_ids,
                        "response_ids": turn.response_ids,
                        "logprobs": turn.logprobs,
                        "versions": turn.versions,
                        "finish_reason": turn.finish_reason,
                        "action_text": turn.action_text,
                        "action": turn.action,
                        "valid": turn.valid,
                        "reason": turn.reason,
                        "app": turn.app,
                        "images": [_image_path(image_dir, episode.episode_id, i) for i in turn.image_turns],
                        "reward": episode.reward,
                        "success": episode.success,
                        "episode_length": episode.length,
                        "end_reason": episode.end_reason,
                        "attempts": episode.attempts,
                        "device": episode.device,
                        "engine": episode.engine,
                    }
                )
    return rows


def _image_path(image_dir: str, episode_id: str, screen: int) -> str:
    return f"{image_dir}/{episode_id}/screen-{screen:03d}.png"


def write_groups(groups: Sequence[Group], path: Path | str, run_id: str, batch_id: int) -> Path:
    """Write `groups` as Parquet at `path`, and the screenshots their prompts showed as PNGs beside it.

    Images go to `<stem>-images/<episode_id>/screen-NNN.png` next to the file; rows reference them by
    that relative path. The Parquet file is written to a temporary name and renamed, so a reader never
    sees half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image_dir = f"{path.stem}-images"
    for group in groups:
        for episode in group.episodes:
            shown = sorted({i for turn in episode.turns for i in turn.image_turns})
            for screen in shown:
                png = episode.screenshots[screen] if screen < len(episode.screenshots) else None
                if png is None:
                    raise ValueError(
                        f"episode {episode.episode_id}: screen {screen} was shown to the model but its screenshot "
                        "was not kept"
                    )
                target = path.parent / _image_path(image_dir, episode.episode_id, screen)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(png)
    table = pa.Table.from_pylist(groups_to_rows(groups, run_id, batch_id, image_dir), schema=TURN_SCHEMA)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)
    return path


class TrajectoryWriter:
    """Writes each batch of groups as `<directory>/batch-NNNNNN.parquet` (plus its images)."""

    def __init__(self, directory: Path | str, run_id: str) -> None:
        self.directory = Path(directory)
        self.run_id = run_id

    def write(self, groups: Sequence[Group], batch_id: int) -> Path:
        return write_groups(groups, self.directory / f"batch-{batch_id:06d}.parquet", self.run_id, batch_id)


def read_table(path: Path | str) -> pa.Table:
    """A records file as an Arrow table; refuses files that are not droidrl turn records."""
    table = pq.read_table(path)
    metadata = table.schema.metadata or {}
    if metadata.get(b"droidrl.schema") != b"turn":
        raise ValueError(f"{path} is not a droidrl turn-records file (no droidrl.schema=turn in its metadata)")
    version = metadata.get(b"droidrl.schema_version", b"?").decode()
    if version != SCHEMA_VERSION:
        raise ValueError(f"{path} has turn-record schema version {version}; this droidrl reads {SCHEMA_VERSION}")
    return table


def read_turns(path: Path | str) -> pd.DataFrame:
    """A records file as a pandas DataFrame (id lists become numpy arrays, as pd.read_parquet gives them)."""
    return read_table(path).to_pandas()


def load_images(path: Path | str, row: Any) -> list[np.ndarray]:
    """The screenshots of one row's prompt (a DataFrame row or a dict), as uint8 HxWx3 arrays."""
    base = Path(path).parent
    return [np.asarray(Image.open(io.BytesIO((base / ref).read_bytes())).convert("RGB")) for ref in row["images"]]
