"""Per-task training statistics (attempts, successes, consecutive all-failure epochs), saved as JSON.

An epoch of a task is one finished group of it: the task was sampled, and all G episodes of its
group finished and were reported with `TaskStatsTable.record`. A failed epoch is a group with no
success; f (`failed_epochs`) counts the consecutive failed epochs and goes back to 0 on any success.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

STATS_VERSION = 1


@dataclass
class TaskStats:
    """What training has seen of one task template."""

    attempts: int = 0  # episodes
    successes: int = 0  # episodes with reward >= the success threshold
    epochs: int = 0  # finished groups
    failed_epochs: int = 0  # f: consecutive groups without any success, up to the latest
    last_step: int = -1  # the trainer step of the latest recorded group; -1 if never seen

    @property
    def success_rate(self) -> float:
        """Successes over attempts; 0.0 before any attempt."""
        return self.successes / self.attempts if self.attempts else 0.0


class TaskStatsTable:
    """Statistics for every task seen so far; tasks appear on first use."""

    def __init__(self) -> None:
        self._tasks: dict[str, TaskStats] = {}

    def __contains__(self, task: str) -> bool:
        return task in self._tasks

    def __iter__(self) -> Iterator[str]:
        return iter(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    def get(self, task: str) -> TaskStats:
        """The statistics of `task` (a zeroed record if it was never seen; not stored)."""
        return self._tasks.get(task) or TaskStats()

    def record(self, task: str, rewards: Sequence[float], step: int, success_threshold: float = 0.5) -> TaskStats:
        """Add one finished group of `task` with its episode `rewards`; returns the updated statistics."""
        if len(rewards) == 0:
            raise ValueError(f"task {task!r}: a group needs at least one episode reward, got none")
        stats = self._tasks.setdefault(task, TaskStats())
        wins = sum(1 for reward in rewards if float(reward) >= success_threshold)
        stats.attempts += len(rewards)
        stats.successes += wins
        stats.epochs += 1
        stats.failed_epochs = 0 if wins else stats.failed_epochs + 1
        stats.last_step = max(stats.last_step, int(step))
        return stats

    # -- persistence ------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy of the table."""
        return {"version": STATS_VERSION, "tasks": {name: asdict(stats) for name, stats in self._tasks.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replace the table with `state` (from `state_dict`)."""
        if state.get("version") != STATS_VERSION or not isinstance(state.get("tasks"), dict):
            raise ValueError(
                f"task statistics: expected {{'version': {STATS_VERSION}, 'tasks': {{...}}}}, "
                f"got keys {sorted(state)}; give a file written by TaskStatsTable.save"
            )
        known = {f.name for f in fields(TaskStats)}
        tasks: dict[str, TaskStats] = {}
        for name, values in state["tasks"].items():
            unknown = set(values) - known
            if unknown:
                raise ValueError(
                    f"task statistics for {name!r}: unknown fields {sorted(unknown)}; known: {sorted(known)}"
                )
            tasks[name] = TaskStats(**{key: int(value) for key, value in values.items()})
        self._tasks = tasks

    def save(self, path: str | Path) -> None:
        """Write the table to `path` as JSON, atomically (a crash leaves the old file or the new one)."""
        atomic_write_json(Path(path), self.state_dict())

    @classmethod
    def load(cls, path: str | Path) -> TaskStatsTable:
        """A table read from a file written by `save`."""
        table = cls()
        table.load_state_dict(read_json(Path(path)))
        return table


def atomic_write_json(path: Path, data: Any) -> None:
    """Write `data` as JSON to `path` via a temporary file in the same folder, fsync and rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(data, file, indent=1, sort_keys=True)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    # The rename is durable only once the folder entry is on disk too.
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def read_json(path: Path) -> Any:
    """The JSON in `path`; the error says which file was missing or broken."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"no curriculum state file at {path}; check the path or start without it") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); it was not written by the curriculum's save") from None
