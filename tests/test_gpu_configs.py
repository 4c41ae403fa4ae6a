"""The GPU configs teams launch (MobileRL-9B / AutoGLM-Phone-9B on GLM-4.1V, Qwen2.5-VL-7B): every key resolves,
the resource request is consistent, `--print-config` shows them, and the documented launch command names the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from droidrl.config.typed import to_dict
from droidrl.trainer.config import check_resources, load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# Each GPU config and the tiny model of the family it is meant for.
GPU_CONFIGS = {"mobilerl_9b_gpu.yaml": "glm4v_model_dir", "qwen25vl_7b_gpu.yaml": "vl_model_dir"}


def _leaves(data: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.mark.parametrize("name", sorted(GPU_CONFIGS))
def test_gpu_config_resolves_and_asks_for_a_consistent_cluster(
    name: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = request.getfixturevalue(GPU_CONFIGS[name])
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")  # a cluster is joined at run time: no local GPU count check
    config = load_config(CONFIGS / name, [f"model.path={model}"])
    written = _leaves(yaml.safe_load((CONFIGS / name).read_text()))
    resolved = _leaves(to_dict(config))
    for key, value in written.items():  # every key of the file lands on a field, with the file's value
        if key == "model.path":
            continue
        assert key in resolved, key
        assert resolved[key] == value, (key, resolved[key], value)
    resources = config.resources
    assert resources.learner_workers + resources.engines == resources.gpus  # one GPU each, none idle
    check_resources(config, gpus=resources.gpus, cpus=16)  # a node with exactly that many GPUs suffices
    assert config.env.phones % config.env.phones_per_actor == 0
    assert config.collector.max_concurrent_episodes <= config.env.phones
    assert config.collector.batch_size * config.collector.group_size <= config.collector.max_concurrent_episodes
    assert config.model.observation != "xml" and config.trainer.freeze_vision  # vision checkpoints
    assert config.trainer.precision == "bf16" and config.rollout.engine == "vllm"
    header = (CONFIGS / name).read_text().split("\n\n")[0]
    assert f"python -m droidrl.train configs/{name}" in header and "ray job submit" in header


def test_gpu_config_with_too_few_gpus_names_the_key(vl_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    with pytest.raises(ValueError, match=r"resources\.gpus: 4 learner workers and 4 engine replicas"):
        load_config(CONFIGS / "qwen25vl_7b_gpu.yaml", [f"model.path={vl_model_dir}", "resources.gpus=6"])


def test_print_config_shows_the_gpu_config(glm4v_model_dir: Path, tmp_path: Path) -> None:
    env = {"RAY_ADDRESS": "127.0.0.1:1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    config = str(CONFIGS / "mobilerl_9b_gpu.yaml")
    result = subprocess.run(
        [sys.executable, "-m", "droidrl.train", config, f"model.path={glm4v_model_dir}", "--print-config"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    printed = yaml.safe_load(result.stdout)
    assert printed["model"]["path"] == str(glm4v_model_dir)
    assert printed["resources"] == {"gpus": 8, "learner_workers": 4, "engines": 4}
    assert printed["trainer"]["zero_stage"] == 3 and printed["collector"]["max_staleness"] == 1
