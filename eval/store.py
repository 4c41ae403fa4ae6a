"""The evaluation's durable record: one JSON line per finished episode, appended and fsynced, plus its screens.

An episode is keyed by (run index, task, instance seed). Its screens are written (and fsynced) first,
then its line is appended with one write and fsynced, so a line on disk means a whole episode with
its screens. A process killed mid-append leaves at most a torn last line: `open` cuts it off (that
episode is simply run again) and reports it. Nothing is ever rewritten in place.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

EPISODES_FILE = "episodes.jsonl"
SCREENS_DIR = "screens"
SCREEN_WIDTH = 540  # screens are kept at this width: enough for the viewer, a tenth of a phone's pixels

Key = tuple[int, str, int]  # (run, task, seed)


def episode_key(run: int, task: str, seed: int) -> Key:
    return int(run), str(task), int(seed)


def key_text(key: Key) -> str:
    """`r0/Task/seed`: the key as the console and the screens folder name it."""
    run, task, seed = key
    return f"r{run}/{task}/{seed}"


@dataclass
class Opened:
    """What `EpisodeStore.open` found: the finished records by key, and what it repaired."""

    records: dict[Key, dict[str, Any]]
    torn_bytes: int = 0  # bytes of a half-written last line, cut off
    duplicates: int = 0  # lines for a key already seen (the first is kept)


class EpisodeStore:
    """episodes.jsonl and screens/ under an evaluation's output folder."""

    def __init__(self, out: Path | str) -> None:
        self.out = Path(out)
        self.path = self.out / EPISODES_FILE
        self.records: dict[Key, dict[str, Any]] = {}

    def open(self) -> Opened:
        """Read what earlier runs finished (creating the folder and file); cut a torn last line off."""
        self.out.mkdir(parents=True, exist_ok=True)
        self.path.touch(exist_ok=True)
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1  # everything after the last newline is a torn append
        opened = Opened({}, torn_bytes=len(data) - end)
        for line in data[:end].splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                key = episode_key(record["run"], record["task"], record["seed"])
            except (ValueError, KeyError, TypeError) as err:
                raise ValueError(f"{self.path}: a line is not an episode record ({err}); edited by hand?") from err
            if key in opened.records:
                opened.duplicates += 1
                continue
            opened.records[key] = record
        if opened.torn_bytes:
            with open(self.path, "r+b") as f:
                f.truncate(end)
                f.flush()
                os.fsync(f.fileno())
        self.records = dict(opened.records)
        return opened

    def __contains__(self, key: Key) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records.values())

    def screens_dir(self, key: Key) -> Path:
        run, task, seed = key
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in task)
        return self.out / SCREENS_DIR / f"r{run}" / f"{safe}-{seed}"

    def write_screens(self, key: Key, pngs: list[bytes | None]) -> list[str | None]:
        """Save screen i as screens/r<run>/<task>-<seed>/<i>.png (scaled to SCREEN_WIDTH); paths relative to out."""
        folder = self.screens_dir(key)
        folder.mkdir(parents=True, exist_ok=True)
        paths: list[str | None] = []
        for i, png in enumerate(pngs):
            if png is None:
                paths.append(None)
                continue
            path = folder / f"{i:03d}.png"
            _write_synced(path, _scaled_png(png))
            paths.append(path.relative_to(self.out).as_posix())
        _fsync_dir(folder)
        return paths

    def append(self, record: dict[str, Any]) -> None:
        """Append one finished episode (its screens already written); durable when this returns."""
        key = episode_key(record["run"], record["task"], record["seed"])
        if key in self.records:
            raise ValueError(f"episode {key_text(key)} is already recorded in {self.path}")
        line = (json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            written = os.write(fd, line)  # one write: a crash leaves the whole line, none of it, or a torn tail
            if written != len(line):
                raise OSError(f"short write to {self.path}: {written} of {len(line)} bytes")
            os.fsync(fd)
        finally:
            os.close(fd)
        self.records[key] = record


def _scaled_png(png: bytes) -> bytes:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    if image.width > SCREEN_WIDTH:
        image = image.resize((SCREEN_WIDTH, max(1, round(image.height * SCREEN_WIDTH / image.width))))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
