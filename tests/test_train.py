"""`droidrl train` end to end on simulated phones: RL steps, kill + resume, ray job submit, learner groups."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from safetensors.torch import load_file

from droidrl.cluster.launch import train
from droidrl.trainer.config import load_config
from droidrl.trainer.loop import Events, prepare_policy

TASKS = "curriculum.tasks=[SystemWifiTurnOff, SystemWifiTurnOn]"

# Small and fast: transformers engine (no vLLM start-up), phones in this process, 2 tasks, tiny groups.
FAST = [
    TASKS,
    "curriculum.eval_seeds=[1000000]",
    "rollout.engine=transformers",
    "rollout.max_model_len=2048",
    "env.ray=false",
    "trainer.lr=1e-4",
    "logging.wandb=disabled",
]


@pytest.fixture(scope="session")
def sft_policy(tmp_path_factory) -> Path:
    """A tiny policy behaviour-cloned on the expert's Wi-Fi episodes: RL from it gets rewards to learn from."""
    run_dir = tmp_path_factory.mktemp("sft-policy")
    config = load_config(
        None, [*FAST, f"run_dir={run_dir}", "sft.seeds=1", "sft.epochs=30", "sft.lr=2e-3", "sft.batch_size=4"]
    )
    policy, info = prepare_policy(config, run_dir, Events())
    assert info is not None and info["epoch_nll"][-1] < 0.5 * info["epoch_nll"][0]
    return policy


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the torch.distributed variables an in-process Learner set:
    a child inheriting RANK / MASTER_PORT would try to join this process's group."""
    launcher = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    return {k: v for k, v in os.environ.items() if k not in launcher} | extra


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _step_rows(run_dir: Path) -> dict[int, dict]:
    return {row["step"]: row for row in _metrics(run_dir) if "version" in row}


def _two_steps(run_dir: Path, policy: Path, *extra: str, fast: list[str] = FAST) -> list[str]:
    """Overrides for 2 RL steps of 2 groups x 4 episodes on 4 phones from `policy`, plus `extra`."""
    return [
        *fast,
        f"run_dir={run_dir}",
        f"model.path={policy}",
        "steps=2",
        "env.phones=4",
        "collector.group_size=4",
        "collector.batch_size=2",
        "collector.max_concurrent_episodes=4",
        *extra,
    ]


def test_train_runs_rl_steps_and_writes_the_run(sft_policy: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    config = load_config(None, _two_steps(run_dir, sft_policy, "eval.samples=2", "logging.wandb=offline"))
    steps: list[int] = []
    summary = train(config, events=Events(step=lambda step, _: steps.append(step)))

    assert summary.steps == 2 and summary.version == 2 and steps == [1, 2]
    assert summary.sft is None  # model.path given: no warm start unless asked
    rows = _step_rows(run_dir)
    assert sorted(rows) == [1, 2] and [rows[s]["version"] for s in (1, 2)] == [1.0, 2.0]
    for row in rows.values():
        assert row["rollout/staleness_max"] == 0.0  # max_staleness 0: synchronous
        assert 0.0 <= row["rollout/success_rate"] <= 1.0 and row["batch/samples"] >= 0
    # The warm-started policy succeeds sometimes, so some batch carries signal and trains.
    assert any(row["rollout/success_rate"] > 0 for row in rows.values())
    assert any("train/loss" in row for row in rows.values())
    evals = json.loads((run_dir / "evals.json").read_text())
    assert [e["step"] for e in evals] == [0, 2] and all(e["episodes"] == 4 for e in evals)
    assert (run_dir / "checkpoints" / "step-2" / "manifest.json").is_file()
    final = load_file(str(summary.final_model / "model.safetensors"))
    start = load_file(str(sft_policy / "model.safetensors"))
    assert any(not (final[k] == start[k]).all() for k in start)  # RL moved the weights
    assert list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))  # wandb, offline, on disk
    report = (run_dir / "report.html").read_text()
    assert "<svg" in report and "<polyline" in report and report.count("<circle") == 2  # 2 steps, 2 evals
    with pytest.raises(FileExistsError, match="--resume"):  # a second start never overwrites a run
        train(config)


def test_refill_mode_replaces_groups_without_signal(sft_policy: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "refill"
    refill = ("algorithm.dynamic_sampling.mode=refill", "eval.before=false", "eval.samples=1")
    config = load_config(None, _two_steps(run_dir, sft_policy, *refill))
    train(config)
    rows = _step_rows(run_dir)
    limit = config.algorithm.dynamic_sampling.refill_limit * config.collector.batch_size
    for row in rows.values():
        # Every trained group has signal, unless this step ran out of refills.
        assert row["algo/silent_group_frac"] == 0.0 or row["batch/refilled_groups"] == limit
    assert rows[2]["collector/groups_discarded"] == sum(row["batch/refilled_groups"] for row in rows.values())


def _resume_overrides(run_dir: Path, policy: Path) -> list[str]:
    # One phone, one episode at a time: the transformers engine then samples each request alone, so
    # a run is bit-for-bit repeatable from its per-turn seeds.
    return [
        *FAST,
        f"run_dir={run_dir}",
        f"model.path={policy}",
        "steps=3",
        "env.phones=1",
        "collector.group_size=4",
        "collector.batch_size=1",
        "collector.max_concurrent_episodes=1",
        "checkpoint.every=1",
        "eval.before=false",
        "eval.samples=1",
    ]


def test_kill_mid_run_then_resume_gives_the_same_steps(sft_policy: Path, tmp_path: Path) -> None:
    straight = tmp_path / "straight"
    train(load_config(None, _resume_overrides(straight, sft_policy)))

    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "droidrl.train", *_resume_overrides(killed, sft_policy)],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "killed.log").open("w"),
        start_new_session=True,
        env=_clean_env(),
    )
    deadline = time.monotonic() + 300
    while not (killed / "checkpoints" / "step-1" / "manifest.json").exists():
        assert process.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)  # mid-run: step 2 is being collected or trained
    process.wait()
    assert not (killed / "final").exists()

    summary = train(load_config(None, _resume_overrides(killed, sft_policy)), resume=True)
    assert summary.steps == 3 and summary.version == 3
    a, b = _step_rows(straight), _step_rows(killed)
    assert sorted(b) == [1, 2, 3]  # step 1 from before the kill, 2 and 3 after it: none lost or repeated
    assert any("train/loss" in a[step] for step in (2, 3))  # the compared steps trained on something
    for step in (2, 3):
        same = {
            k: v
            for k, v in a[step].items()
            if k.startswith(("rollout/", "algo/", "train/", "replay/", "is/", "collector/")) and not k.endswith("_s")
        }
        assert same and {k: b[step][k] for k in same} == same
    final_a = load_file(str(straight / "final" / "model.safetensors"))
    final_b = load_file(str(killed / "final" / "model.safetensors"))
    assert all((final_a[k] == final_b[k]).all() for k in final_a)


@pytest.fixture
def ray_cluster(tmp_path: Path):
    """A real local Ray cluster started with `ray start --head` (dashboard + job server), stopped after."""
    ray_bin = str(Path(sys.executable).with_name("ray"))
    # Token authentication, as Ray >= 2.59 wants for a local cluster: one token for the cluster and the CLI.
    token = tmp_path / "ray-auth-token"
    token.write_text(uuid.uuid4().hex)
    env = _clean_env(
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN_PATH=str(token),
    )
    env.pop("RAY_ADDRESS", None)
    from droidrl.envs.ports import free_server_port

    port, dashboard = free_server_port(), free_server_port()
    start = [
        ray_bin,
        "start",
        "--head",
        f"--port={port}",
        f"--dashboard-port={dashboard}",
        "--dashboard-host=127.0.0.1",
        "--num-cpus=2",
        '--resources={"android": 4}',
        "--disable-usage-stats",
    ]
    result = subprocess.run(start, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        yield ray_bin, f"http://127.0.0.1:{dashboard}", env
    finally:
        subprocess.run([ray_bin, "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_ray_job_submit_runs_the_training_entry_point(sft_policy: Path, tmp_path: Path, ray_cluster) -> None:
    ray_bin, address, env = ray_cluster
    run_dir = tmp_path / "job-run"
    overrides = [
        *[o for o in FAST if o != "env.ray=false"],
        "env.ray=true",  # the phones live in env actors of the cluster the job runs on
        f"run_dir={run_dir}",
        f"model.path={sft_policy}",
        "steps=1",
        "env.phones=4",
        "collector.group_size=2",
        "collector.batch_size=2",
        "collector.max_concurrent_episodes=4",
        "eval.before=false",
        "eval.samples=1",
    ]
    # The words after `--` are the entrypoint; the CLI quotes each one (overrides may hold spaces).
    result = subprocess.run(
        [ray_bin, "job", "submit", f"--address={address}", "--", sys.executable, "-m", "droidrl.train", *overrides],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "succeeded" in result.stdout.lower()
    assert sorted(_step_rows(run_dir)) == [1]
    assert (run_dir / "final" / "config.json").is_file()
    shutil.rmtree(run_dir / "checkpoints")


def test_learner_ranks_engine_replicas_and_phones_all_in_ray_actors(sft_policy: Path, tmp_path: Path) -> None:
    import ray

    run_dir = tmp_path / "group"
    in_ray = [
        "env.ray=true",
        "resources.learner_workers=2",
        "resources.engines=2",  # two engine actors behind a Router; every weight update reaches both
        "eval.before=false",
        "eval.samples=1",
        "checkpoint.every=1",
    ]
    local = [o for o in FAST if o != "env.ray=false"]
    config = load_config(None, _two_steps(run_dir, sft_policy, *in_ray, fast=local))
    try:
        summary = train(config)
    finally:
        ray.shutdown()
    assert summary.steps == 2 and summary.version == 2
    rows = _step_rows(run_dir)
    assert sorted(rows) == [1, 2]
    assert rows[2]["rollout/staleness_max"] == 0.0  # both replicas served version 1 in step 2
    assert (run_dir / "checkpoints" / "step-2" / "manifest.json").is_file()
    assert (summary.final_model / "model.safetensors").is_file()
