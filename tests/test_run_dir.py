"""The run directory: one run at a time (an fcntl lock the kernel drops on exit or crash), crash leftovers removed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from droidrl.checkpoints.run_dir import (
    LOCK_FILE,
    SET_ASIDE_METRICS,
    RunDirBusy,
    clean_leftovers,
    lock_run_dir,
    set_aside_metrics,
)
from droidrl.trainer.config import load_config

HOLD = """
import sys, time
from droidrl.checkpoints.run_dir import lock_run_dir
with lock_run_dir(sys.argv[1]):
    (open(sys.argv[1] + "/mine.txt", "w")).write("first run")
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def holder(tmp_path: Path):
    """Another process holding tmp_path/run's lock, as a running `droidrl train` does; killed afterwards."""
    run_dir = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    yield run_dir, process
    if process.poll() is None:
        process.kill()
    process.wait()


def _config(run_dir: Path, *extra: str):
    return load_config(None, [f"run_dir={run_dir}", "logging.wandb=disabled", *extra])


def test_a_second_run_on_a_locked_run_dir_is_refused_naming_the_holder(holder) -> None:
    from droidrl.cluster.launch import train

    run_dir, process = holder
    before = sorted(p.name for p in run_dir.iterdir())
    lock_text = (run_dir / LOCK_FILE).read_text()
    assert json.loads(lock_text)["pid"] == process.pid
    busy = rf"{run_dir} is in use by another droidrl run \(pid {process.pid} on "
    with pytest.raises(RunDirBusy, match=busy), lock_run_dir(run_dir):
        pass
    with pytest.raises(RunDirBusy, match=rf"pid {process.pid}"):
        train(_config(run_dir))
    # The refused run wrote nothing; the first one is undisturbed.
    assert sorted(p.name for p in run_dir.iterdir()) == before
    assert (run_dir / LOCK_FILE).read_text() == lock_text and (run_dir / "mine.txt").read_text() == "first run"
    assert process.poll() is None


@pytest.mark.slow
def test_the_cli_refuses_a_resume_on_a_busy_run_dir_at_once(holder) -> None:
    run_dir, process = holder
    result = subprocess.run(
        [sys.executable, "-m", "droidrl.train", f"run_dir={run_dir}", "logging.wandb=disabled", "--resume"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert f"is in use by another droidrl run (pid {process.pid}" in " ".join(result.stderr.split())
    assert process.poll() is None


def test_the_kernel_releases_the_lock_when_the_holder_dies(holder) -> None:
    run_dir, process = holder
    os.kill(process.pid, signal.SIGKILL)  # a crash: no clean-up code runs
    process.wait()
    with lock_run_dir(run_dir) as lock:
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    with lock_run_dir(run_dir):  # released on exit, so it can be taken again
        pass


def test_one_process_cannot_hold_a_run_dir_twice(tmp_path: Path) -> None:
    busy = rf"in use by this process \(pid {os.getpid()}\)"
    with lock_run_dir(tmp_path / "run"), pytest.raises(RunDirBusy, match=busy), lock_run_dir(tmp_path / "run"):
        pass


def _leftovers(run_dir: Path) -> tuple[list[Path], list[Path]]:
    """(what crashed writers leave, what a run keeps), created under run_dir."""
    junk = [
        run_dir / "weights" / ".v000003.tmp-1a2b3c4d" / "model.safetensors",
        run_dir / "rollouts" / ".step-000002.parquet.tmp4242",
        run_dir / "checkpoints" / ".tmp-step-4" / "run_state.pkl",
        run_dir / "checkpoints" / ".trash-step-2-4242" / "manifest.json",
        run_dir / "checkpoints" / ".latest.tmp4242",
    ]
    kept = [
        run_dir / "weights" / "v000002" / "model.safetensors",
        run_dir / "rollouts" / "step-000001.parquet",
        run_dir / "checkpoints" / "step-3" / "manifest.json",
        run_dir / "checkpoints" / "latest",
    ]
    for path in junk + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    return junk, kept


def test_crash_leftovers_are_removed_and_nothing_else(tmp_path: Path) -> None:
    junk, kept = _leftovers(tmp_path)
    removed = clean_leftovers(tmp_path)
    assert sorted(removed) == sorted(p if p.parent.name in ("rollouts", "checkpoints") else p.parent for p in junk)
    assert not any(p.exists() for p in junk) and all(p.exists() for p in kept)


def test_train_cleans_leftovers_under_the_lock_before_it_prepares(tmp_path: Path, monkeypatch) -> None:
    from droidrl.cluster import launch
    from droidrl.trainer import loop

    run_dir = tmp_path / "run"
    junk, kept = _leftovers(run_dir)
    seen = {}

    def prepare(self) -> Path:
        seen["junk"] = [p for p in junk if p.exists()]
        with pytest.raises(RunDirBusy), lock_run_dir(run_dir):  # the lock is held while the run prepares
            pass
        raise KeyboardInterrupt  # stop here: no need to train

    monkeypatch.setattr(loop.Run, "prepare", prepare)
    with pytest.raises(KeyboardInterrupt):
        launch.train(_config(run_dir))
    assert seen["junk"] == [] and all(p.exists() for p in kept)
    with lock_run_dir(run_dir):  # released when train() ends, even by an exception
        pass


def test_a_resume_sets_aside_the_metric_rows_of_the_steps_it_runs_again(tmp_path: Path) -> None:
    # The interrupted run logged steps 1-3 (and an eval at 2) but its newest good checkpoint is step 1;
    # it died writing step 3's row.
    rows = [{"step": 0, "eval/success_rate": 0.5}, {"step": 1, "version": 1.0}, {"step": 2, "version": 2.0}]
    rows += [{"step": 2, "eval/success_rate": 0.6}]
    lines = [json.dumps(row) + "\n" for row in rows] + ['{"step": 3, "vers']
    (tmp_path / "metrics.jsonl").write_text("".join(lines))

    assert set_aside_metrics(tmp_path, 1) == 3
    assert (tmp_path / "metrics.jsonl").read_text() == "".join(lines[:2])  # steps 2 and 3 will be logged anew
    assert (tmp_path / SET_ASIDE_METRICS).read_text() == "".join(lines[2:]) + "\n"
    assert set_aside_metrics(tmp_path, 1) == 0 and set_aside_metrics(tmp_path / "none", 1) == 0
    assert not list(tmp_path.glob(".metrics.jsonl.tmp*"))


def test_a_resumed_run_exports_its_final_policy_over_the_interrupted_runs(tmp_path: Path) -> None:
    from droidrl.trainer.loop import Run

    class Exporter:  # Learner.export_weights writes only new directories, as the real one does
        def export_weights(self, out: Path) -> Path:
            out.mkdir()
            (out / "model.safetensors").write_text("this run's")
            return out

    (tmp_path / "final").mkdir()
    (tmp_path / "final" / "model.safetensors").write_text("the interrupted run's")  # killed after its export
    run = Run(_config(tmp_path), resume=True)
    assert run._export_final(Exporter()) == tmp_path / "final"
    assert (tmp_path / "final" / "model.safetensors").read_text() == "this run's"
    assert not list(tmp_path.glob(".final.stale-*"))
