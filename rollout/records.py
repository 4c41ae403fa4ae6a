"""Trajectory records: one Arrow row per agent turn, written to Parquet with the screenshots as PNG files beside it.

The row is the unit every later stage reads (advantages, the trainer, replay, viewers): exact prompt
and response ids, the sampling logprobs and per-token policy versions, the action, and the
episode's outcome repeated on each of its turns. `pd.read_parquet(path)` loads a file as it is.
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from droidrl.rollout.trajectory import Group, Turn

SCHEMA_VERSION = "1"


@dataclass(frozen=True)
class Column:
    """One record column: where its value lives in the trajectory contract (rollout.trajectory) and its Arrow type."""

    name: str
    level: str  # "run" (the writer's arguments), "group", "episode" or "turn"
    attr: str  # the attribute of that level's object (or of the run: run_id, batch_id)
    type: pa.DataType
    nullable: bool = False


def _col(name: str, level: str, type_: pa.DataType, attr: str | None = None, nullable: bool = False) -> Column:
    return Column(name, level, attr or name, type_, nullable)


# One row per turn; the order is the file's column order. "images" is the one column made by hand:
# the PNG paths (relative to the Parquet file) of the screens the turn's prompt showed (Turn.image_turns).
COLUMNS: tuple[Column, ...] = (
    _col("run_id", "run", pa.string()),
    _col("batch_id", "run", pa.int64()),
    _col("group_id", "group", pa.string()),
    _col("group_index", "group", pa.int64(), "index"),
    _col("start_version", "group", pa.int64()),  # trainer version when the group was admitted
    _col("episode_id", "episode", pa.string()),
    _col("task_id", "episode", pa.string(), "task"),  # "Name:seed"
    _col("template", "episode", pa.string()),
    _col("seed", "episode", pa.int64()),
    _col("difficulty", "episode", pa.string()),
    _col("goal", "episode", pa.string()),
    _col("turn", "turn", pa.int32(), "index"),
    _col("prompt_ids", "turn", pa.list_(pa.int32())),
    _col("response_ids", "turn", pa.list_(pa.int32())),
    _col("logprobs", "turn", pa.list_(pa.float32())),  # sampling logprob of each response id
    _col("versions", "turn", pa.list_(pa.int32())),  # policy version of each response id
    _col("finish_reason", "turn", pa.string()),
    _col("action_text", "turn", pa.string()),  # the decoded response
    _col("action", "turn", pa.string(), nullable=True),  # canonical action string; null when invalid
    _col("valid", "turn", pa.bool_()),
    _col("reason", "turn", pa.string(), nullable=True),  # why the action was invalid or refused
    _col("app", "turn", pa.string()),  # foreground package the turn saw
    _col("images", "turn", pa.list_(pa.string()), "image_turns"),  # PNG paths relative to the Parquet file
    _col("reward", "episode", pa.float64()),  # the episode's checker reward
    _col("success", "episode", pa.bool_()),
    _col("episode_length", "episode", pa.int32(), "length"),
    _col("end_reason", "episode", pa.string()),
    _col("attempts", "episode", pa.int32()),
    _col("device", "episode", pa.string()),
    _col("engine", "episode", pa.string()),
)

TURN_SCHEMA = pa.schema(
    [pa.field(c.name, c.type, nullable=c.nullable) for c in COLUMNS],
    metadata={"droidrl.schema": "turn", "droidrl.schema_version": SCHEMA_VERSION},
)
_TURN_FIELDS = {f.name for f in dataclasses.fields(Turn)}


def groups_to_rows(groups: Sequence[Group], run_id: str, batch_id: int, image_dir: str) -> list[dict[str, Any]]:
    """One dict per turn, in TURN_SCHEMA's fields; images referenced under `image_dir` (relative)."""
    run = {"run_id": run_id, "batch_id": batch_id}
    rows: list[dict[str, Any]] = []
    for group in groups:
        for episode in group.episodes:
            for turn in episode.turns:
                objects = {"group": group, "episode": episode, "turn": turn}
                row = {c.name: run[c.attr] if c.level == "run" else getattr(objects[c.level], c.attr) for c in COLUMNS}
                row["images"] = [_image_path(image_dir, episode.episode_id, i) for i in turn.image_turns]
                rows.append(row)
    return rows


def turn_from_row(row: Any) -> Turn:
    """The Turn a record row was written from (a DataFrame row or a dict); its timings are not recorded."""
    values = {c.attr: row[c.name] for c in COLUMNS if c.level == "turn" and c.attr in _TURN_FIELDS}
    for column in COLUMNS:  # pandas reads a null string as NaN
        if column.nullable and column.attr in values and pd.isna(values[column.attr]):
            values[column.attr] = None
    for name in ("prompt_ids", "response_ids", "versions"):
        values[name] = [int(v) for v in values[name]]
    values["logprobs"] = [float(v) for v in values["logprobs"]]
    values["index"] = int(values["index"])
    values["valid"] = bool(values["valid"])
    values["image_turns"] = [_screen_of(ref) for ref in row["images"]]
    return Turn(**values)


def _screen_of(ref: str) -> int:
    """The screen index in an image path written by `_image_path` (".../screen-NNN.png")."""
    return int(Path(ref).stem.removeprefix("screen-"))


def _image_path(image_dir: str, episode_id: str, screen: int) -> str:
    return f"{image_dir}/{episode_id}/screen-{screen:03d}.png"


def write_groups(groups: Sequence[Group], path: Path | str, run_id: str, batch_id: int) -> Path:
    """Write `groups` as Parquet at `path`, and the screenshots their prompts showed as PNGs beside it.

    Images go to `<stem>-images/<episode_id>/screen-NNN.png` next to the file; rows reference them by
    that relative path. The Parquet file is written to a temporary name, fsynced and renamed, so a reader
    never sees half a file and a crash never leaves a named but empty one.
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
                _write_durably(target, png)
    table = pa.Table.from_pylist(groups_to_rows(groups, run_id, batch_id, image_dir), schema=TURN_SCHEMA)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd")
    _fsync(tmp)  # on disk before the rename makes it count: a crash leaves the old file or the whole new one
    tmp.replace(path)
    _fsync(path.parent)  # the rename itself
    return path


def _fsync(path: Path) -> None:
    """fsync a file or a directory (for a directory: the names created or renamed in it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


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
