"""Checkpoints are written off the event loop: the loop keeps running while a (deliberately slow) save writes,
and what the save writes is the run's state at its step, not what the loop changed meanwhile."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

from droidrl.checkpoints import run_state
from droidrl.cluster.launch import train
from droidrl.trainer import loop
from droidrl.trainer.config import load_config
from droidrl.trainer.loop import Events

pytestmark = pytest.mark.slow  # a DeepSpeed learner, an engine and phones: a whole (tiny) training run

PATIENCE_S = 30.0  # how long a held save waits for the loop to show life before it records a stall


class RecordingSampler(loop.CurriculumSampler):
    """The run's curriculum sampler, kept where the test can read its live state."""

    made: ClassVar[list[RecordingSampler]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        RecordingSampler.made.append(self)


class Heartbeat:
    """A task on the run's event loop that counts ticks; started when the RL phase starts (on the loop)."""

    def __init__(self) -> None:
        self.ticks = 0
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._beat())

    async def _beat(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0.005)


def _sampler_state() -> str:
    """The live sampler's state as JSON (read from the save's thread while the loop may change it: retried)."""
    while True:
        try:
            return json.dumps(RecordingSampler.made[-1].state_dict(), sort_keys=True)
        except RuntimeError:  # a container changed size while it was read
            continue


def test_a_slow_checkpoint_write_leaves_the_loop_running_and_saves_the_step_state(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    RecordingSampler.made.clear()
    monkeypatch.setattr(loop, "CurriculumSampler", RecordingSampler)
    heartbeat = Heartbeat()
    at_step: dict[int, str] = {}  # the sampler's state when each step ended (its checkpoint's step)
    held: dict[int, dict[str, Any]] = {}  # what the loop did while each save was held
    real_save = run_state.save_checkpoint
    steps = 3

    def slow_save(root: Any, step: int, learner: Any, **parts: Any) -> Path:
        """The real save, held until the loop shows life (or PATIENCE_S passes): a slow disk, made certain."""
        ticks = heartbeat.ticks
        deadline = time.monotonic() + PATIENCE_S
        seen = {"loop_ran": False, "sampler_moved": False, "thread": threading.current_thread().name}
        while time.monotonic() < deadline:
            seen["loop_ran"] = heartbeat.ticks >= ticks + 3
            # After a step that is not the last, the collector admits the next groups: it draws from the sampler.
            seen["sampler_moved"] = _sampler_state() != at_step[step]
            if seen["loop_ran"] and (seen["sampler_moved"] or step == steps):
                break
            time.sleep(0.01)
        held[step] = seen
        return real_save(root, step, learner, **parts)

    monkeypatch.setattr(run_state, "save_checkpoint", slow_save)

    def on_phase(name: str, _: int | None) -> None:
        if name == "rl":
            heartbeat.start()

    def on_step(step: int, _: dict[str, float]) -> None:
        at_step[step] = _sampler_state()

    run_dir = tmp_path / "run"
    config = load_config(
        None,
        [
            f"run_dir={run_dir}",
            f"model.path={model_dir}",
            "curriculum.tasks=[SystemWifiTurnOff, SystemWifiTurnOn]",
            "curriculum.eval_seeds=[1000000]",
            "rollout.engine=transformers",
            "rollout.max_model_len=2048",
            "rollout.max_tokens=8",
            "env.ray=false",
            "env.phones=2",
            "env.max_steps=2",
            f"steps={steps}",
            "collector.group_size=2",
            "collector.batch_size=1",
            "collector.max_concurrent_episodes=2",
            "checkpoint.every=1",
            "eval.before=false",
            "eval.samples=1",
            "logging.wandb=disabled",
        ],
    )
    summary = train(config, events=Events(phase=on_phase, step=on_step))

    assert summary.steps == steps and sorted(held) == [1, 2, 3]
    for step, seen in held.items():
        # Held in the save, the event loop still ran: the write is not on it.
        assert seen["loop_ran"], f"the event loop stood still while checkpoint step-{step} was written"
        assert seen["thread"] != threading.main_thread().name
    for step in (1, 2):
        # Meanwhile the collector admitted the next step's groups, drawing from the sampler...
        assert held[step]["sampler_moved"], f"the sampler did not move while step-{step} was written"
    # ...and each checkpoint still holds the sampler as it was at its step: the state a resume must draw from.
    for step in (1, 2, 3):
        path = run_dir / "checkpoints" / f"step-{step}"
        run_state.verify_checkpoint(path, "sha256")
        saved = json.loads((path / run_state.SAMPLER).read_text())
        assert json.dumps(saved, sort_keys=True) == at_step[step]
    assert (run_dir / "checkpoints" / "latest").read_text().strip() == f"step-{steps}"
