"""The metric keys the training loop logs are exactly those trainer/metric_keys.py lists, with their meaning.

The keys come from the code that makes them: the loop's own functions on a hand-made batch, the loss on
small tensors, the learner's and the Ray pool's literal keys read from their sources, an evaluation
result. A key logged but not listed fails, and so does a listed key nothing produces any more.
"""

from __future__ import annotations

import ast
import asyncio
import random
from pathlib import Path

import pytest
import torch

from droidrl.algorithms.adagrpo import PositiveReplay
from droidrl.algorithms.losses import policy_loss
from droidrl.curricula.sampler import CurriculumSampler
from droidrl.rollout.collector import CollectorStats
from droidrl.rollout.envpool import LocalEnvPool
from droidrl.rollout.trajectory import Episode, Group, TaskInstance, Turn
from droidrl.trainer.config import load_config
from droidrl.trainer.evaluation import EvalResult
from droidrl.trainer.loop import build_batch, importance_metrics, rollout_metrics
from droidrl.trainer.metric_keys import METRICS, entry_of, unknown_keys

ROOT = Path(__file__).resolve().parents[1]


def _episode(index: int, reward: float, difficulty: str) -> Episode:
    turn = Turn(0, [1, 2, 3], [4, 5], [-0.5, -0.7], [0, 0], "stop", "x", None, False, "bad", [], "app")
    return Episode(f"e{index}", "T:1", "T", 1, "goal", difficulty, [turn], reward, reward > 0, "finish")


def _groups() -> list[Group]:
    return [
        Group("g0", 0, TaskInstance("SystemWifiTurnOff", 1), [_episode(0, 1.0, "easy"), _episode(1, 0.0, "easy")], 0),
        Group("g1", 1, TaskInstance("SystemWifiTurnOn", 2), [_episode(2, 1.0, "hard"), _episode(3, 0.0, "hard")], 0),
    ]


def _literal_keys(path: Path, prefix: str) -> set[str]:
    """String constants in `path` that look like metric keys under `prefix` (e.g. "time/")."""
    tree = ast.parse(path.read_text())
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.startswith(prefix)
        and not node.value.endswith("/")  # the fixed part of an f-string such as f"time/{name}"
    }


def _learner_update_keys() -> set[str]:
    """The keyword names of `result.update(...)` in Learner.train_step (what it adds to the loss metrics)."""
    tree = ast.parse((ROOT / "trainer" / "learner.py").read_text())
    step = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "train_step")
    calls = [
        n
        for n in ast.walk(step)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "update"
    ]
    return {keyword.arg for call in calls for keyword in call.keywords if keyword.arg}


def _ray_pool_keys() -> set[str]:
    """The keys of RayEnvPool.stats(): its dict literal and its counters (read from cluster/env_pool.py)."""
    tree = ast.parse((ROOT / "cluster" / "env_pool.py").read_text())
    pool = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "RayEnvPool")
    keys: set[str] = set()
    for node in ast.walk(pool):
        if isinstance(node, ast.FunctionDef) and node.name in ("stats", "__init__"):
            for d in ast.walk(node):
                if isinstance(d, ast.Dict) and (node.name == "stats" or _assigns_counters(node, d)):
                    keys |= {k.value for k in d.keys if isinstance(k, ast.Constant)}
    return keys


def _assigns_counters(function: ast.FunctionDef, d: ast.Dict) -> bool:
    return any(
        isinstance(a, ast.Assign) and a.value is d and ast.unparse(a.targets[0]) == "self.counters"
        for a in ast.walk(function)
    )


def logged_keys() -> set[str]:
    config = load_config(None, [])
    groups = _groups()
    keys = set(rollout_metrics(groups, version=1))
    samples, algo = build_batch(groups, config, PositiveReplay(config.algorithm.replay), random.Random(0))
    keys |= set(algo)
    for sample in samples:
        sample.old_logprobs = [v + 0.01 for v in sample.rollout_logprobs]
    keys |= set(importance_metrics(samples))
    # The learner's step: the loss's metrics (with a reference model for the KL) plus its own.
    logprobs = torch.tensor([[-0.4, -0.6], [-1.0, -0.2]])
    loss_config = config.algorithm.loss
    loss_config.kl_coef = 0.001
    _, loss = policy_loss(
        logprobs,
        logprobs - 0.1,
        torch.tensor([1.0, -1.0]),
        torch.ones(2, 2),
        loss_config,
        rollout_logprobs=logprobs - 0.2,
        ref_logprobs=logprobs + 0.1,
    )
    keys |= {f"train/{k}" for k in {*loss, *_learner_update_keys()}}
    keys |= set(CurriculumSampler(config.curriculum).metrics())
    stats = CollectorStats(failures={"device": 1}).as_dict()
    keys |= {f"collector/{k}" for k, v in stats.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    keys |= {f"collector/failures/{k}" for k in stats["failures"]}
    keys |= {f"pool/{k}" for k in LocalEnvPool(1).stats()} | {f"pool/{k}" for k in _ray_pool_keys()}
    keys |= _literal_keys(ROOT / "trainer" / "loop.py", "time/") | _literal_keys(ROOT / "trainer" / "loop.py", "batch/")
    keys |= {"version", "replay/mixed_trajectories"}  # set by the loop itself
    result = EvalResult(step=1, successes=1, episodes=2, by_difficulty={"easy": (1, 2)}, seconds=1.0)
    return keys | set(result.metrics())


@pytest.fixture(scope="module")
def keys() -> set[str]:
    asyncio.set_event_loop(asyncio.new_event_loop())
    return logged_keys()


def test_every_logged_key_is_in_the_table(keys: set[str]) -> None:
    assert unknown_keys(keys) == []


def test_every_table_entry_is_still_logged(keys: set[str]) -> None:
    produced = {entry_of(key) for key in keys}
    assert sorted(set(METRICS) - produced) == []


def test_each_entry_says_what_it_is() -> None:
    assert all(len(meaning.split()) >= 2 for meaning in METRICS.values())
    assert unknown_keys(["rollout/success_rate/easy", "train/loss", "train/nonsense"]) == ["train/nonsense"]
