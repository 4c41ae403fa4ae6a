"""The `droidrl` command end to end: `farm` boots and checks simulated phones; `train --help`, `tasks` and `play`."""

import os
import subprocess
import sys
from pathlib import Path


def test_farm_boots_and_checks_phones(tmp_path):
    env = dict(os.environ, COLUMNS="120", HOME=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "droidrl.cli", "farm", "--phones", "2"],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "droidrl farm: boots 2 simulated phones" in result.stdout
    rows = [line for line in result.stdout.splitlines() if "emulator-" in line]
    assert len(rows) == 2
    for row in rows:
        assert row.count("yes") == 2 and "1080x2400" in row


def test_farm_rejects_bad_phone_count():
    result = subprocess.run(
        [sys.executable, "-m", "droidrl.cli", "farm", "--phones", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--phones must be >= 1, got 0" in result.stdout


def _droidrl(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "droidrl.cli", *args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd
    )


def test_tasks_lists_templates_and_suites():
    result = _droidrl("tasks")
    assert result.returncode == 0, result.stderr
    assert "SystemWifiTurnOff" in result.stdout and "Turn off Wi-Fi." in result.stdout
    assert "Suites" in result.stdout and "easy" in result.stdout
    bad = _droidrl("tasks", "--suite", "nope")
    assert bad.returncode == 2 and "unknown suite 'nope'" in bad.stdout


def test_play_solves_a_task_and_writes_the_viewer(tmp_path):
    result = _droidrl("play", "SystemWifiTurnOff", "--seed", "4", "--interruptions", "1", "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "solved: reward 1 (finish)" in result.stdout
    page = (tmp_path / "index.html").read_text()
    assert "Turn off Wi-Fi." in page and "do(action=&quot;Launch&quot;, app=&quot;Settings&quot;)" in page
    steps = sorted(p.name for p in tmp_path.glob("step_*.png"))
    assert len(steps) == 6 and (tmp_path / "final.png").stat().st_size > 1000  # 4 moves, 1 dismissal, finish


def test_play_unknown_task_is_a_clear_error():
    result = _droidrl("play", "WifiOff")
    assert result.returncode == 2 and "no task template named 'WifiOff'" in result.stdout


def test_rollout_plays_a_suite_and_writes_records(tmp_path):
    import pandas as pd

    result = _droidrl(
        "rollout", "--engine", "transformers", "--tasks", "2", "--group-size", "2", "--phones", "2",
        "--max-tokens", "8", "--out", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Rollout with transformers" in result.stdout and "4 episodes" in result.stdout
    turns = pd.read_parquet(tmp_path / "turns.parquet")
    assert turns.episode_id.nunique() == 4 and set(turns.difficulty) == {"easy"}
    assert all(len(ids) == len(lps) for ids, lps in zip(turns.response_ids, turns.logprobs, strict=True))


def test_rollout_bad_config_is_a_clear_error(tmp_path):
    result = _droidrl("rollout", "--model", str(tmp_path), "--out", str(tmp_path))
    assert result.returncode == 2 and "is not a Hugging Face model directory" in result.stdout


def test_train_help_and_print_config_start_nothing(tmp_path):
    result = _droidrl("train", "--help")
    assert result.returncode == 0 and "[CONFIG] [KEY=VALUE ...]" in result.stdout and "--resume" in result.stdout
    result = _droidrl("train", "configs/default.yaml", "steps=3", "--print-config", cwd=Path(__file__).parents[1])
    assert result.returncode == 0, result.stderr
    assert "steps: 3\n" in result.stdout and "run_dir: runs/train\n" in result.stdout
    result = _droidrl("train", "steps=-1")
    assert result.returncode == 2 and "steps: must be >= 0; got -1" in result.stderr
