"""Run metrics: one JSON line per step in <run_dir>/metrics.jsonl, and wandb (offline unless the user set it up)."""

from __future__ import annotations

import json
import math
import os
import uuid
from pathlib import Path
from typing import Any


class Tracker:
    """Writes every `log(metrics, step)` to metrics.jsonl and, unless mode is "disabled", to a wandb run.

    Offline mode needs no account or network: the run lands in <run_dir>/wandb/offline-run-*, for
    `wandb sync` later. A resumed run appends to metrics.jsonl and resumes the same wandb run id.
    """

    def __init__(
        self,
        run_dir: Path,
        mode: str = "offline",
        project: str = "droidrl",
        name: str | None = None,
        config: Any = None,
    ) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a")
        self.run = None
        if mode != "disabled":
            self.run = _start_wandb(Path(run_dir), mode, project, name or Path(run_dir).resolve().name, config)

    @property
    def wandb_dir(self) -> str | None:
        return None if self.run is None else str(Path(self.run.dir).parent)

    def log(self, metrics: dict[str, float], step: int) -> None:
        clean = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and math.isfinite(v)}
        self._file.write(json.dumps({"step": step, **clean}) + "\n")
        self._file.flush()
        if self.run is not None:
            self.run.log(clean, step=step)

    def summary(self, values: dict[str, Any]) -> None:
        if self.run is not None:
            for key, value in values.items():
                self.run.summary[key] = value

    def close(self) -> None:
        self._file.close()
        if self.run is not None:
            self.run.finish()
            self.run = None


def _start_wandb(run_dir: Path, mode: str, project: str, name: str, config: Any) -> Any:
    import wandb

    id_file = run_dir / "wandb_id"
    run_id = id_file.read_text().strip() if id_file.exists() else uuid.uuid4().hex[:8]
    id_file.write_text(run_id)
    os.environ.setdefault("WANDB_SILENT", "true")
    return wandb.init(
        project=project,
        name=name,
        id=run_id,
        resume="allow",
        mode=mode,
        dir=str(run_dir),
        config=config,
        settings=wandb.Settings(console="off", x_disable_stats=True),
    )
