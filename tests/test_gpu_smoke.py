"""benchmarks/gpu_smoke.py, dry-run on CPU (tiny GLM-4.1V, fp32, gloo): the script a GPU node runs works end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_smoke.py"


@pytest.mark.slow
def test_gpu_smoke_dry_run_prints_both_rates_and_their_ratio(tmp_path: Path) -> None:
    args = ["--cpu", "--samples", "2", "--prompt-tokens", "64", "--response-tokens", "8", "--steps", "1"]
    # Without the launcher variables an in-process learner test leaves behind (its MASTER_PORT is bound here).
    launcher = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    env = {k: v for k, v in os.environ.items() if k not in launcher}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "glm4v tiny" in out and "droidrl learner (ZeRO-2)" in out and "bare torch + AdamW" in out
    assert "gloo" in out  # DeepSpeed really initialised its process group
    ratio = float(out.split("learner / bare tokens/s:")[1].split()[0])
    assert 0.05 < ratio < 20


def test_gpu_smoke_without_cuda_says_so() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "no CUDA device" in done.stderr and "--cpu" in done.stderr
